import { expect } from "chai";
import { Job } from "../../src/jobs/job.js";
import { JobCache } from "../../src/jobs/job-cache.js";

/** A job to `n` targets started at `at` (ms), finished (every target ok) unless `running`. */
function jobOf(id: string, n: number, at: number, running = false): Job {
  const targets = Array.from({ length: n }, (_, i) => `s${i}`);
  const job = new Job({
    id,
    masterId: "m",
    data: "",
    selector: "",
    timeout: 1_000,
    targets,
    unansweredMasters: [],
    startedAt: new Date(at),
  });
  if (!running) for (const slaveId of targets) job.settle({ slaveId, masterId: "m", status: "ok", data: "", latencyMs: 1, deliveries: 1 });
  return job;
}

describe("jobs: the job cache", () => {
  it("bounds the results held: the oldest finished jobs go first, running ones and the newest stay", () => {
    const cache = new JobCache({ entries: 100, maxAgeMs: 60_000, results: 10 }, () => 1_000);
    cache.add(jobOf("a", 4, 1));
    cache.add(jobOf("b", 4, 2, true));
    cache.add(jobOf("c", 2, 3));
    expect(cache.results).to.equal(10);
    cache.add(jobOf("d", 3, 4));
    // 13 held: "a" (finished, oldest) goes; "b" runs and stays.
    expect(cache.list(10).map((j) => j.id)).to.deep.equal(["d", "c", "b"]);
    expect(cache.results).to.equal(9);
    cache.add(jobOf("e", 20, 5));
    // Over by far: every finished job but the newest goes.
    expect(cache.list(10).map((j) => j.id)).to.deep.equal(["e", "b"]);
    expect(cache.results).to.equal(24);
  });

  it("without a results bound, keeps up to `entries` jobs and drops those past maxAgeMs", () => {
    let now = 1_000;
    const cache = new JobCache({ entries: 2, maxAgeMs: 500 }, () => now);
    for (const [i, id] of ["a", "b", "c"].entries()) cache.add(jobOf(id, 1_000, 900 + i));
    expect(cache.list(10).map((j) => j.id)).to.deep.equal(["c", "b"]);
    now = 2_000;
    expect(cache.get("c")).to.equal(undefined);
    expect(cache.size).to.equal(0);
  });
});
