import { expect } from "chai";
import type { JobResult } from "../../src/index.js";
import type { Master } from "../../src/master.js";
import { cleanup, startSlave, waitFor, within } from "../helpers.js";
import { clusterMaster, echoSlave, mastersConverged, metric as metricOf } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

/** Every result of a job by slave: status and master. */
async function outcomes(job: AsyncIterable<JobResult>): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const r of job) out.set(r.slaveId, `${r.status}@${r.masterId}`);
  return out;
}

/** A metric of `master` (listening with metricsPort 0), summed over its labels. */
const metric = (master: Master, name: string) => metricOf(master.metricsPort!, name);

describe("jobs in a cluster: one batch per holding master", function () {
  this.timeout(20_000);
  let server: NatsServer;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
  });
  beforeEach(async () => {
    server = new NatsServer();
    await server.start();
  });
  afterEach(async () => {
    await cleanup();
    await server.kill();
  });

  async function masters(names: string[]): Promise<Master[]> {
    const list = await Promise.all(names.map((name) => clusterMaster(name, [server.url], {}, { metricsPort: 0 })));
    await mastersConverged(list, names);
    return list;
  }

  it("a job to slaves on three masters sends each other master its slaves in a few messages, not one request per slave; every result names its master", async () => {
    const [m1, m2, m3] = (await masters(["m1", "m2", "m3"])) as [Master, Master, Master];
    const runs = new Map<string, number>();
    const count = (id: string) => (c: { data: string }) => {
      runs.set(id, (runs.get(id) ?? 0) + 1);
      return `${id}:${c.data}`;
    };
    const expected = new Map<string, string>();
    for (const [master, prefix] of [
      [m1, "a"],
      [m2, "b"],
      [m3, "c"],
    ] as const) {
      for (let i = 0; i < 25; i++) {
        const id = `${prefix}${String(i).padStart(2, "0")}`;
        await startSlave(master.address, { id, onCommand: count(id) });
        expected.set(id, `ok@${master.id}`);
      }
    }
    await waitFor(() => m1.size === 25 && m2.size === 25 && m3.size === 25, 5_000, "75 slaves");
    await Promise.all([m1, m2, m3].map((m) => m.clusterFlush()));

    const job = await m1.run("go", { selector: "", timeout: 3_000 });
    expect(job.targets).to.have.length(75);
    const results = await within(outcomes(job), 8_000, "every result");
    expect(results).to.deep.equal(expected);
    expect((await job.done).ok).to.equal(75);
    expect([...runs.values()].every((n) => n === 1)).to.equal(true);
    // The listing named every holder: 50 remote slaves went in batches, one or a few per holder (one per turn of the fan-out).
    const batches = await metric(m1, "netsync_cluster_job_batches_total");
    expect(batches).to.be.within(2, 6);
    expect(await metric(m1, "netsync_cluster_routed_via_total")).to.equal(50);
    expect(await metric(m2, "netsync_cluster_served_total")).to.equal(25);
    expect(await metric(m3, "netsync_cluster_served_total")).to.equal(25);
  });

  it("a slave that moved since its holder was learned is answered 'not held' and routed alone to its new master, run once", async () => {
    const [m1, m2, m3] = (await masters(["m1", "m2", "m3"])) as [Master, Master, Master];
    const runs = new Map<string, number>();
    const counted = (id: string, master: Master) =>
      startSlave(master.address, {
        id,
        onCommand: (c) => {
          runs.set(`${id}:${c.data}`, (runs.get(`${id}:${c.data}`) ?? 0) + 1);
          return `${id} on ${master.id}`;
        },
      });
    const mover = await counted("mover", m2);
    await echoSlave(m2, "stays");
    await waitFor(() => m2.has("mover"), 2_000, "mover on m2");
    await m2.clusterFlush();
    // m1 learns that m2 holds both (the listing hints it).
    const first = await m1.run("one", { selector: "", timeout: 2_000 });
    expect(await within(first.done, 5_000, "the first job")).to.include({ ok: 2 });

    // mover goes to m3: the claim reaches m2 (the old holder), not m1, whose directory still names m2.
    await mover.close();
    await waitFor(() => !m2.has("mover"), 2_000, "mover gone from m2");
    await counted("mover", m3);
    await waitFor(() => m3.has("mover"), 2_000, "mover on m3");
    await m3.clusterFlush();
    const rerouted = await metric(m1, "netsync_cluster_rerouted_total");

    const job = await m1.run("two", { ids: ["mover", "stays"], timeout: 2_000 });
    const results = await within(outcomes(job), 5_000, "both results");
    expect(results).to.deep.equal(
      new Map([
        ["mover", "ok@m3"],
        ["stays", "ok@m2"],
      ]),
    );
    expect(job.record().results.find((r) => r.slaveId === "mover")?.data).to.equal("mover on m3");
    expect(await metric(m1, "netsync_cluster_rerouted_total")).to.be.greaterThan(rerouted);
    expect(runs.get("mover:two")).to.equal(1);
  });

  it("a holder that has let go of the whole cluster: its slaves' commands are refused or time out, none hangs, and the job ends by its last moment", async () => {
    const [m1, m2] = (await masters(["m1", "m2"])) as [Master, Master];
    await echoSlave(m2, "far1");
    await echoSlave(m2, "far2");
    await echoSlave(m1, "near");
    await m2.clusterFlush();
    const first = await m1.run("warm", { selector: "", timeout: 1_000 });
    expect(await within(first.done, 5_000, "the first job")).to.include({ ok: 3 });
    // m2 closes (a leave): m1's directory forgets its claims, so the batch is never sent there; the slaves are nowhere.
    await m2.close();
    await waitFor(() => m1.masters().length === 1, 3_000, "m2 gone from m1's view");
    const job = await m1.run("x", { ids: ["far1", "far2", "near"], timeout: 1_000 });
    const results = await within(outcomes(job), 5_000, "every result");
    expect(results.get("near")).to.equal("ok@m1");
    expect(results.get("far1")).to.match(/^not-connected@/);
    expect(results.get("far2")).to.match(/^not-connected@/);
  });
});
