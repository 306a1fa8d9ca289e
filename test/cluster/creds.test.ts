// --cluster-creds end to end: nats-server in operator (JWT) mode, its operator, accounts and users
// made here with the nats.js nkeys/jwt libraries (operator.ts), masters that present a .creds file
// (JWT + NKey seed), through the library and through the real CLI.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { format } from "node:util";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import { killAllCli, runCli } from "../cli-process.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, startSlave, waitFor } from "../helpers.js";
import { freePort } from "../support/net.js";
import { clusterMaster, echoSlave, mastersConverged, placement } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";
import { OperatorSetup, type UserCreds } from "./operator.js";

/** A logger recording every line ("type message"), debug included. */
function recordingLogger() {
  const lines: string[] = [];
  const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
  return { lines, logger };
}

/** Fails if `text` holds any part of the secrets of `creds`: the seed, the JWT, or the JWT's signature. */
function expectNoSecret(text: string, creds: UserCreds, where: string): void {
  const signature = creds.jwt.split(".")[2]!;
  expect(text, `${where} holds the NKey seed`).not.to.include(creds.seed);
  expect(text, `${where} holds the seed's body`).not.to.include(creds.seed.slice(2, 20));
  expect(text, `${where} holds the user JWT`).not.to.include(creds.jwt.slice(0, 60));
  expect(text, `${where} holds the JWT's signature`).not.to.include(signature);
  expect(text, `${where} holds a creds file`).not.to.match(/BEGIN (NATS USER JWT|USER NKEY SEED)/);
}

/** `netsync master` on a free port in the cluster at `url` with `--cluster-creds creds`. */
async function cliMaster(name: string, url: string, creds: string) {
  const port = await freePort();
  const args = ["master", "--port", String(port), "--name", name, "--cluster", url, "--cluster-creds", creds];
  return { run: runCli([...args, "--heartbeat-interval", "100ms", "--heartbeat-timeout", "1s"]), address: `127.0.0.1:${port}` };
}

describe("cluster credentials: NATS in operator mode (JWT + NKey)", function () {
  this.timeout(20_000);
  let setup: OperatorSetup;
  let server: NatsServer;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    setup = await OperatorSetup.create();
    server = new NatsServer({ config: setup.writeServerConfig() });
    await server.start();
  });
  after(async () => {
    await server?.kill();
    setup?.dispose();
  });
  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("a library master and a CLI master with --cluster-creds join, list each other and route both ways; no secret is logged", async () => {
    const libCreds = await setup.user("lib");
    const cliCreds = await setup.user("cli");
    const { lines, logger } = recordingLogger();
    const lib = await clusterMaster("lib", [server.url], { credsFile: libCreds.path }, { logger });
    const cli = await cliMaster("cli", server.url, cliCreds.path);
    await cli.run.waitFor(/connected to NATS/, 10_000);
    // The CLI beats every second (the default): the library master hears it within one beat.
    await mastersConverged([lib], ["lib", "cli"], 5_000);
    const admin = adminClient(cli.address);
    await waitFor(async () => (await admin.listMasters()).masters.length === 2, 5_000, "the CLI master to list two masters");
    const listed = await admin.listMasters();
    expect(listed.clusterConnected).to.equal(true);
    expect(listed.masters.map((m) => m.id).sort()).to.deep.equal(["cli", "lib"]);

    // A routed send from the CLI master (AdminService Send) to a slave held by the library master.
    await echoSlave(lib, "on-lib");
    const sent = await admin.send("on-lib", "hello", { timeout: 2_000 });
    expect(sent.masterId).to.equal("lib");
    expect(sent.reply?.result).to.deep.equal({ case: "data", value: "echo:hello" });
    // And the other way: a slave of the CLI master, reached from the library master over NATS.
    await startSlave(cli.address, { id: "on-cli", onCommand: (c) => `echo:${c.data}` });
    await waitFor(
      async () => placement((await lib.fleet({ timeout: 500 })).slaves).includes("on-cli@cli"),
      5_000,
      "on-cli in the library master's fleet view",
    );
    const routed = await lib.routeRequest("on-cli", "back");
    expect([routed.masterId, routed.reply.result]).to.deep.equal(["cli", { case: "data", value: "echo:back" }]);

    cli.run.child.kill("SIGTERM");
    await cli.run.exit;
    expect(lines.some((l) => /connected to NATS/.test(l))).to.equal(true);
    expectNoSecret(lines.join("\n"), libCreds, "the library master's log");
    expectNoSecret(cli.run.output(), cliCreds, "the CLI master's output");
  });

  it("creds NATS refuses (another operator's account; a seed not matching its JWT): one clear error, no secret, local service intact", async () => {
    const good = await clusterMaster("good", [server.url], { credsFile: (await setup.user("good")).path });

    // A user of an account this server's operator never signed.
    const stranger = await setup.stranger("stranger");
    const { lines, logger } = recordingLogger();
    const bad = await clusterMaster("stranger", [server.url], { credsFile: stranger.path }, { logger });
    await echoSlave(bad, "s1");
    // Two retries after the first refusal (authRetryInterval 300 ms), each logged at debug only.
    await waitFor(() => lines.filter((l) => /NATS still unavailable/.test(l)).length >= 2, 5_000, "two refused retries");
    const errors = lines.filter((l) => l.startsWith("error"));
    console.log(`      ${errors.join("\n      ")}`);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(/refused this master's cluster credentials/);
    expect(errors[0]).to.match(/authorization violation/i);
    expect(errors[0]).to.include(stranger.path);
    expectNoSecret(lines.join("\n"), stranger, "the refused master's log");
    // Its own slaves are served; cluster-wide calls answer locally and say the cluster is away.
    expect(await bad.request("s1", "x")).to.equal("echo:x");
    expect(bad.clusterState).to.not.equal("connected");
    const view = await adminClient(bad.address).listSlaves();
    expect(placement(view.slaves)).to.deep.equal(["s1@stranger"]);
    expect(good.masters().map((m) => m.id)).to.deep.equal(["good"]);

    // Through the CLI: a well-formed creds file whose seed is another user's, so the JWT's nonce signature fails.
    const mine = await setup.user("mine");
    const other = await setup.user("other");
    const mismatched = join(setup.dir, "mismatched.creds");
    writeFileSync(mismatched, credsText(mine.jwt, other.seed), { mode: 0o600 });
    const cli = await cliMaster("mismatched", server.url, mismatched);
    await cli.run.waitFor(/refused this master's cluster credentials/, 10_000);
    const slaves = runCli(["slaves", "--master", cli.address]);
    expect((await slaves.exit).code, slaves.output()).to.equal(0);
    expect(slaves.stdout()).to.equal("no slaves\n");
    cli.run.child.kill("SIGTERM");
    await cli.run.exit;
    expect(cli.run.output()).to.include(mismatched);
    expectNoSecret(cli.run.output(), mine, "the CLI master's output");
    expectNoSecret(cli.run.output(), other, "the CLI master's output");
    expect(good.masters().map((m) => m.id)).to.deep.equal(["good"]);
  });
});

/** A .creds file as nsc writes it. */
function credsText(jwt: string, seed: string): string {
  return [
    "-----BEGIN NATS USER JWT-----",
    jwt,
    "------END NATS USER JWT------",
    "",
    "************************* IMPORTANT *************************",
    "NKEY Seed printed below can be used to sign and prove identity.",
    "NKEYs are sensitive and should be treated as secrets.",
    "",
    "-----BEGIN USER NKEY SEED-----",
    seed,
    "------END USER NKEY SEED------",
    "",
    "*************************************************************",
    "",
  ].join("\n");
}
