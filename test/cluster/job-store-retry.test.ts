// A master whose JetStream job store fails to open for a reason that can pass (here: its NATS user may not
// create streams, until the operator fixes the configuration and reloads it) tries again in the background;
// before, it kept jobs in memory until its next reconnect, and with a steady connection that was never.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { format } from "node:util";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import { cleanup, startSlave, waitFor, within } from "../helpers.js";
import { clusterMaster } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

/**
 * JetStream in the file (a reload of a file without it shuts JetStream down, whatever -js said at
 * start) and one user, "m"; `denyCreate` keeps it from creating streams (the job store's and its bucket's).
 */
const config = (storeDir: string, denyCreate: boolean) =>
  `jetstream { store_dir: ${JSON.stringify(storeDir)} }\n` +
  `authorization {\n  users = [\n    { user: "m", password: "p"${denyCreate ? ', permissions: { publish: { deny: ["$JS.API.STREAM.CREATE.>"] } }' : ""} }\n  ]\n}\n`;

describe("cluster job store: a failure that can pass is tried again", function () {
  this.timeout(40_000);
  let dir: string;
  let server: NatsServer;

  before(function () {
    if (!haveNatsServer()) this.skip();
  });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "netsync-js-retry-"));
    writeFileSync(join(dir, "nats.conf"), config(join(dir, "js"), true));
    server = new NatsServer({ config: join(dir, "nats.conf") });
    await server.start();
  });

  afterEach(async () => {
    await cleanup();
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stream creation refused, then allowed by a reload: the master opens the store without reconnecting, and jobs are kept there", async () => {
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
    const url = `nats://m:p@127.0.0.1:${server.port}`;
    const master = await clusterMaster("m1", [url], {}, { logger });
    await waitFor(() => lines.some((l) => /job store did not open/.test(l)), 20_000, "the warn line");
    expect(master.jobStore).to.equal("memory");
    expect(
      lines.filter((l) => /no usable JetStream/.test(l)),
      "not taken for a NATS without JetStream",
    ).to.deep.equal([]);

    writeFileSync(join(dir, "nats.conf"), config(join(dir, "js"), false));
    server.reload();
    await waitFor(
      () => master.jobStore === "jetstream",
      20_000,
      () => `the store to open after the reload:\n${lines.join("\n")}`,
    );
    expect(
      lines.filter((l) => /disconnected|reconnect/i.test(l)),
      "opened without a reconnect",
    ).to.deep.equal([]);
    await startSlave(master.address, { id: "w1", onCommand: (c) => `ok ${c.data}` });
    const job = await master.run("x", { ids: ["w1"], timeout: 5_000 });
    expect(await within(job.done, 5_000, "the job")).to.deep.include({ ok: 1 });
    expect((await master.getJob(job.id))?.results.map((r) => r.status)).to.deep.equal(["ok"]);
  });
});
