import { expect } from "chai";
import type { JobResult } from "../../src/index.js";
import { cleanup, createSlave, gate, once, startMaster, startSlave, waitFor, within } from "../helpers.js";

/** Every result of a job, by slave id, once it is done. */
async function resultsOf(job: AsyncIterable<JobResult>): Promise<Map<string, JobResult>> {
  const out = new Map<string, JobResult>();
  for await (const result of job) out.set(result.slaveId, result);
  return out;
}

describe("jobs (Master.run)", function () {
  this.timeout(10_000);
  afterEach(cleanup);

  it("gives every target one result: ok, error, timeout and not-connected, each named", async () => {
    const master = await startMaster({ name: "m1" });
    const mute = gate();
    await startSlave(master.address, { id: "ok", onCommand: (c) => `ran ${c.data}` });
    await startSlave(master.address, {
      id: "throws",
      onCommand: () => {
        throw new Error("disk full");
      },
    });
    await startSlave(master.address, { id: "mute", onCommand: () => mute.promise });
    const job = await master.run("uptime", { ids: ["ok", "throws", "mute", "gone"], timeout: 300 });
    expect(job.targets).to.deep.equal(["gone", "mute", "ok", "throws"]);
    const results = await within(resultsOf(job), 3_000, "every result");
    mute.release();
    expect(results.get("ok")).to.include({ status: "ok", data: "ran uptime", masterId: "m1", deliveries: 1 });
    expect(results.get("throws")).to.include({ status: "error", masterId: "m1" });
    expect(results.get("throws")?.error).to.contain("disk full");
    expect(results.get("mute")).to.include({ status: "timeout" });
    expect(results.get("gone")).to.include({ status: "not-connected", deliveries: 0 });
    const summary = await job.done;
    expect(summary).to.include({ targets: 4, ok: 1, error: 1, timeout: 1, notConnected: 1, expired: 0, pending: 0 });
    expect(summary.finishedAt).to.be.instanceOf(Date);
    expect(master.job(job.id)?.record().results).to.have.length(4);
    expect(master.jobs().map((j) => j.id)).to.deep.equal([job.id]);
  });

  it("resolves a selector to the connected slaves it matches, fixed at start", async () => {
    const master = await startMaster();
    await startSlave(master.address, { id: "db1", labels: { role: "db" }, onCommand: () => "db" });
    await startSlave(master.address, { id: "db2", labels: { role: "db" }, onCommand: () => "db" });
    await startSlave(master.address, { id: "web", labels: { role: "web" }, onCommand: () => "web" });
    const job = await master.run("x", { selector: "role=db" });
    expect(job.targets).to.deep.equal(["db1", "db2"]);
    const summary = await within(job.done, 3_000, "the job");
    expect(summary).to.include({ targets: 2, ok: 2 });
    const empty = await master.run("x", { selector: "role=none" });
    expect(await within(empty.done, 1_000, "an empty job")).to.include({ targets: 0, pending: 0 });
  });

  it("gives jobs started in the same millisecond ids that sort in start order, so the newest is listed first", async () => {
    const master = await startMaster();
    const started: string[] = [];
    // Empty jobs start in well under a millisecond each: many share one.
    for (let i = 0; i < 50; i++) started.push((await master.run("x", { selector: "role=none" })).id);
    expect([...started].sort()).to.deep.equal(started);
    expect(new Set(started).size).to.equal(50);
    expect(master.jobs().map((j) => j.id)).to.deep.equal([...started].reverse());
    expect((await master.listJobs(50)).map((j) => j.id)).to.deep.equal([...started].reverse());
  });

  it("refuses bad options with INVALID_ARGUMENT", async () => {
    const master = await startMaster();
    for (const options of [{ timeout: 0 }, { deliverWithin: 11 * 60_000 }, { ids: [""] }, { selector: "role in" }]) {
      const err = await master.run("x", options).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(options)).to.have.property("code", 3);
    }
  });

  it("with deliverWithin, delivers to a slave that connects later, and expires what never gets through", async () => {
    const master = await startMaster();
    const job = await master.run("hello", { ids: ["late", "never"], timeout: 1_000, deliverWithin: 800 });
    expect(master.pendingDeliveries).to.equal(2);
    let runs = 0;
    await startSlave(master.address, {
      id: "late",
      onCommand: (c) => {
        runs++;
        return `got ${c.data}`;
      },
    });
    const results = await within(resultsOf(job), 3_000, "every result");
    expect(results.get("late")).to.include({ status: "ok", data: "got hello", deliveries: 1 });
    expect(results.get("never")).to.include({ status: "expired", deliveries: 0 });
    expect(results.get("never")?.error).to.contain("not delivered within 800 ms");
    expect(runs).to.equal(1);
    expect(master.pendingDeliveries).to.equal(0);
  });

  it("redelivers a command whose stream broke before the reply to the slave's next stream", async () => {
    const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 200 });
    let runs = 0;
    const started = gate();
    const finish = gate();
    const slave = await startSlave(master.address, {
      id: "flaky",
      onCommand: async () => {
        runs++;
        started.release();
        await finish.promise;
        return "done once";
      },
    });
    const job = await master.run("work", { ids: ["flaky"], timeout: 2_000, deliverWithin: 5_000 });
    await within(started.promise, 2_000, "the first run");
    // The stream breaks while the handler runs: the master hears "left before replying" and keeps the command.
    const gone = once(master, "slave:disconnected", 2_000);
    await slave.close();
    await gone;
    await waitFor(() => master.pendingDeliveries === 1, 2_000, "the command kept");
    finish.release();
    // The same process could not be reused after close(): a new Slave with the same id stands in for its restart,
    // sharing the handler (and so the count), but not the command log: this checks redelivery, not dedupe.
    const again = createSlave(master.address, {
      id: "flaky",
      onCommand: async () => {
        runs++;
        return "second run";
      },
    });
    const [result] = [...(await within(resultsOf(job), 3_000, "the result")).values()];
    expect(result).to.include({ status: "ok", deliveries: 2 });
    expect(runs).to.equal(2);
    await again.close();
  });

  it("a slave answers a redelivered command from its command log, without running it again", async () => {
    const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 200 });
    let runs = 0;
    await startSlave(master.address, {
      id: "once",
      onCommand: () => {
        runs++;
        return `run ${runs}`;
      },
    });
    const first = await master.requestReply("once", { data: "x", commandId: "cmd-1" });
    const second = await master.requestReply("once", { data: "x", commandId: "cmd-1" });
    expect(first.result).to.deep.equal({ case: "data", value: "run 1" });
    expect(second.result).to.deep.equal({ case: "data", value: "run 1" });
    expect(runs).to.equal(1);
  });

  it("a bound on pending deliveries refuses with a clear expired result", async () => {
    const master = await startMaster();
    const jobs = [];
    for (let i = 0; i < 101; i++) jobs.push(await master.run(`c${i}`, { ids: ["away"], deliverWithin: 60_000, timeout: 500 }));
    const last = jobs[100];
    const [result] = [...(await within(resultsOf(last!), 2_000, "the refused one")).values()];
    expect(result).to.include({ status: "expired" });
    expect(result?.error).to.contain("per-slave bound");
    expect(master.pendingDeliveries).to.equal(100);
    // Close ends the rest: none is left without a result.
    await master.close();
    for (const job of jobs) expect((await job.done).expired).to.equal(1);
  });

  it("delivers pending commands in the order they were kept", async () => {
    const master = await startMaster();
    const jobs = [];
    for (let i = 0; i < 5; i++) jobs.push(await master.run(`c${i}`, { ids: ["ordered"], deliverWithin: 5_000 }));
    const seen: string[] = [];
    await startSlave(master.address, {
      id: "ordered",
      onCommand: (c) => {
        seen.push(c.data);
        return c.data;
      },
    });
    await within(Promise.all(jobs.map((j) => j.done)), 3_000, "every job");
    expect(seen).to.deep.equal(["c0", "c1", "c2", "c3", "c4"]);
  });
});
