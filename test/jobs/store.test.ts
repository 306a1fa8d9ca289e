import { expect } from "chai";
import type { JobSpec } from "../../src/jobs/job.js";
import { type KeptCommand, MemoryJobStore } from "../../src/jobs/store.js";
import { GUARD_MS, lastMoment, recordOf } from "../../src/jobs/stored.js";

const command = (jobId: string, slaveId: string): KeptCommand => ({
  jobId,
  slaveId,
  expiresAt: Date.now() + 60_000,
  deliveries: 0,
  startedAt: Date.now(),
});

const spec = (over: Partial<JobSpec> = {}): JobSpec => ({
  id: "20260101000000000-abcdef",
  masterId: "k",
  data: "x",
  selector: "",
  timeout: 1_000,
  deliverWithin: 2_000,
  targets: ["a", "b", "c"],
  unansweredMasters: [],
  startedAt: new Date(1_000_000),
  ...over,
});

describe("jobs: the in-memory store", () => {
  it("keeps commands per slave in order, reads without taking, removes each once", async () => {
    const store = new MemoryJobStore({ perSlave: 10, total: 100 });
    for (const job of ["j1", "j2", "j3"]) expect(await store.keep(command(job, "s"))).to.equal(undefined);
    expect((await store.kept("s")).map((c) => c.jobId)).to.deep.equal(["j1", "j2", "j3"]);
    expect((await store.kept("s")).length).to.equal(3);
    expect(await store.remove(command("j2", "s"))).to.equal(true);
    expect(await store.remove(command("j2", "s"))).to.equal(false);
    expect((await store.kept("s")).map((c) => c.jobId)).to.deep.equal(["j1", "j3"]);
    expect(await store.keptAmong(["s", "t"])).to.deep.equal(["s"]);
    expect(store.size).to.equal(2);
  });

  it("refuses past the per-slave and the total bound, saying which", async () => {
    const store = new MemoryJobStore({ perSlave: 2, total: 3 });
    await store.keep(command("j1", "s"));
    await store.keep(command("j2", "s"));
    expect(await store.keep(command("j3", "s"))).to.match(/per-slave bound/);
    await store.keep(command("j1", "t"));
    expect(await store.keep(command("j1", "u"))).to.match(/total bound/);
  });
});

describe("jobs: a job read back from a store", () => {
  it("keeps the first result per target, in the order recorded, and ignores non-targets", () => {
    const s = spec();
    const record = recordOf(
      {
        spec: s,
        results: [
          { slaveId: "b", masterId: "m2", status: "ok", data: "1", latencyMs: 10, deliveries: 1 },
          { slaveId: "b", masterId: "m3", status: "ok", data: "2", latencyMs: 20, deliveries: 2 },
          { slaveId: "zz", masterId: "m3", status: "ok", latencyMs: 20, deliveries: 1 },
        ],
      },
      s.startedAt.getTime() + 100,
    );
    expect(record.results.map((r) => `${r.slaveId}@${r.masterId}`)).to.deep.equal(["b@m2"]);
    expect(record.summary).to.include({ targets: 3, ok: 1, pending: 2 });
    expect(record.summary.finishedAt).to.equal(undefined);
  });

  it("past the job's last moment, a target without a result did not return (expired with deliverWithin, else timeout)", () => {
    const s = spec();
    expect(lastMoment(s)).to.equal(1_000_000 + 2_000 + 1_000 + GUARD_MS);
    const results = [{ slaveId: "a", masterId: "m1", status: "ok" as const, latencyMs: 5, deliveries: 1 }];
    const before = recordOf({ spec: s, results }, lastMoment(s));
    expect(before.summary.pending).to.equal(2);
    const after = recordOf({ spec: s, results }, lastMoment(s) + 1);
    expect(after.summary).to.include({ ok: 1, expired: 2, pending: 0 });
    expect(after.results[1]).to.include({ slaveId: "b", status: "expired", masterId: "" });
    expect(after.results[1]?.error).to.match(/^did not return: .*master k/);
    expect(after.summary.finishedAt?.getTime()).to.equal(lastMoment(s));
    const noDeliverWithin = spec({ deliverWithin: undefined });
    expect(recordOf({ spec: noDeliverWithin, results: [] }, lastMoment(noDeliverWithin) + 1).summary).to.include({ timeout: 3 });
  });
});
