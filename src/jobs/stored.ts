import type { JobRecord, JobResult } from "../model.js";
import { Job, type JobSpec } from "./job.js";
import type { StoredJob } from "./store.js";

/** How long past its last possible result a job waits before it names the targets that never got one. */
export const GUARD_MS = 5_000;

/**
 * The last moment a target of this job can get a result, in ms since the
 * epoch: a command may be delivered until deliverWithin runs out, and its
 * reply may then take `timeout`; GUARD_MS more for the result to travel.
 */
export function lastMoment(spec: Pick<JobSpec, "startedAt" | "deliverWithin" | "timeout">): number {
  return spec.startedAt.getTime() + (spec.deliverWithin ?? 0) + spec.timeout + GUARD_MS;
}

/** The result a reader shows for a target that has none past the job's last moment. */
export function didNotReturn(spec: JobSpec, slaveId: string): JobResult {
  const last = lastMoment(spec);
  return {
    slaveId,
    masterId: "",
    status: spec.deliverWithin !== undefined ? "expired" : "timeout",
    error:
      `did not return: no result was recorded by ${new Date(last).toISOString()} ` +
      `(the job's last moment; master ${spec.masterId}, which ran it, may have stopped before it ended)`,
    latencyMs: last - spec.startedAt.getTime(),
    deliveries: 0,
  };
}

/**
 * A job read back from a store, as the job cache shows one: its results in
 * the order they were recorded (the first per target), and, once the job's
 * last moment has passed, a "did not return" result for each target that
 * has none (its asking master died, or NATS lost what was on its way).
 */
export function recordOf(stored: StoredJob, now = Date.now(), withResults = true): JobRecord {
  const job = new Job(stored.spec);
  for (const result of stored.results) job.settle(result);
  if (!job.finished && now > lastMoment(stored.spec)) {
    for (const slaveId of stored.spec.targets) if (job.waitsFor(slaveId)) job.settle(didNotReturn(stored.spec, slaveId));
  }
  const record = job.record();
  if (record.summary.pending === 0) {
    // When the last result came, not when it was read: a result's latency counts from the job's start.
    const latest = record.results.reduce((max, r) => Math.max(max, r.latencyMs), 0);
    record.summary.finishedAt = stored.summary?.finishedAt ?? new Date(stored.spec.startedAt.getTime() + latest);
  }
  return withResults ? record : { ...record, results: [] };
}
