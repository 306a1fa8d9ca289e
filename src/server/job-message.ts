import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Job as JobMessage,
  type JobResult as JobResultMessage,
  type JobResultSchema,
  JobResultStatus as JobResultStatusMessage,
  type JobSchema,
  type JobStarted as JobStartedMessage,
  type JobStartedSchema,
  type JobSummary as JobSummaryMessage,
  JobSummarySchema,
} from "../../gen/netsync/v1/admin_pb.js";
import type { JobRecord, JobResult, JobResultStatus, JobSummary } from "../model.js";

/*
 * Jobs between the model (model.ts: JobResult, JobSummary, JobRecord) and the
 * admin API's messages, both ways: the service writes them, AdminClient reads
 * them back into the same shapes Master.run() and Master.job() give.
 */

const STATUS: Record<JobResultStatus, JobResultStatusMessage> = {
  ok: JobResultStatusMessage.OK,
  error: JobResultStatusMessage.ERROR,
  timeout: JobResultStatusMessage.TIMEOUT,
  "not-connected": JobResultStatusMessage.NOT_CONNECTED,
  expired: JobResultStatusMessage.EXPIRED,
};

const STATUS_OF = new Map<JobResultStatusMessage, JobResultStatus>(
  Object.entries(STATUS).map(([name, value]) => [value, name as JobResultStatus]),
);

/** What a job started with: its id, its targets, and the masters that did not answer when they were resolved. */
export interface JobStartedInfo {
  jobId: string;
  targets: string[];
  unansweredMasters: string[];
  masterId: string;
}

/** `slaveIds`: the targets the message lists, when fewer than all of them (the rest in JobTargets, or another page). */
export function jobStartedMessage(
  started: JobStartedInfo,
  slaveIds: string[] = started.targets,
): MessageInitShape<typeof JobStartedSchema> {
  return {
    jobId: started.jobId,
    slaveIds,
    unansweredMasters: started.unansweredMasters,
    masterId: started.masterId,
    targetCount: started.targets.length,
  };
}

/**
 * Splits ids into runs of at most `budget` bytes as repeated string fields:
 * each id costs its UTF-8 bytes plus a tag and a length prefix. At least one
 * run, maybe empty; one id over the budget still gets a run of its own (ids
 * are at most 256 bytes).
 */
export function splitIds(ids: readonly string[], budget: number): string[][] {
  const runs: string[][] = [[]];
  let left = budget;
  for (const id of ids) {
    const size = Buffer.byteLength(id) + 3;
    const current = runs[runs.length - 1] as string[];
    if (size > left && current.length > 0) {
      runs.push([id]);
      left = budget - size;
    } else {
      current.push(id);
      left -= size;
    }
  }
  return runs;
}

export function jobStartedOf(message: JobStartedMessage | undefined): JobStartedInfo {
  return {
    jobId: message?.jobId ?? "",
    targets: [...(message?.slaveIds ?? [])],
    unansweredMasters: [...(message?.unansweredMasters ?? [])],
    masterId: message?.masterId ?? "",
  };
}

export function jobResultMessage(result: JobResult): MessageInitShape<typeof JobResultSchema> {
  return {
    slaveId: result.slaveId,
    masterId: result.masterId,
    status: STATUS[result.status],
    data: result.data ?? "",
    error: result.error ?? "",
    latency: durationFromMs(result.latencyMs),
    deliveries: result.deliveries,
  };
}

/** A result as the model has it; an unknown status (a newer master) reads as "error", saying so. */
export function jobResultOf(message: JobResultMessage): JobResult {
  const status = STATUS_OF.get(message.status);
  const error = status ? message.error : `unknown result status ${message.status}${message.error ? `: ${message.error}` : ""}`;
  return {
    slaveId: message.slaveId,
    masterId: message.masterId,
    status: status ?? "error",
    ...(status === "ok" ? { data: message.data } : {}),
    ...(error ? { error } : {}),
    latencyMs: message.latency ? durationMs(message.latency) : 0,
    deliveries: message.deliveries,
  };
}

export function jobSummaryMessage(summary: JobSummary): MessageInitShape<typeof JobSummarySchema> {
  return {
    jobId: summary.jobId,
    targets: summary.targets,
    ok: summary.ok,
    error: summary.error,
    timeout: summary.timeout,
    notConnected: summary.notConnected,
    expired: summary.expired,
    pending: summary.pending,
    startedAt: timestampFromDate(summary.startedAt),
    finishedAt: summary.finishedAt ? timestampFromDate(summary.finishedAt) : undefined,
  };
}

export function jobSummaryOf(message: JobSummaryMessage | undefined): JobSummary {
  const m = message ?? create(JobSummarySchema);
  return {
    jobId: m.jobId,
    targets: m.targets,
    ok: m.ok,
    error: m.error,
    timeout: m.timeout,
    notConnected: m.notConnected,
    expired: m.expired,
    pending: m.pending,
    startedAt: m.startedAt ? timestampDate(m.startedAt) : new Date(0),
    ...(m.finishedAt ? { finishedAt: timestampDate(m.finishedAt) } : {}),
  };
}

/**
 * A cached job as GetJob (with its results) and ListJobs (`withResults`
 * false) answer it; `targets`, when given, the ones it lists (a page, or
 * ListJobs' first few), and then only their results.
 */
export function jobMessage(record: JobRecord, withResults = true, targets?: string[]): MessageInitShape<typeof JobSchema> {
  let results = withResults ? record.results : [];
  if (targets && withResults) {
    const listed = new Set(targets);
    results = results.filter((r) => listed.has(r.slaveId));
  }
  return {
    started: jobStartedMessage(
      {
        jobId: record.id,
        targets: record.targets,
        unansweredMasters: record.unansweredMasters,
        masterId: record.masterId,
      },
      targets,
    ),
    data: record.data,
    selector: record.selector,
    timeout: durationFromMs(record.timeout),
    deliverWithin: record.deliverWithin !== undefined ? durationFromMs(record.deliverWithin) : undefined,
    summary: jobSummaryMessage(record.summary),
    results: results.map(jobResultMessage),
  };
}

export function jobRecordOf(message: JobMessage): JobRecord {
  const started = jobStartedOf(message.started);
  const summary = jobSummaryOf(message.summary);
  return {
    id: started.jobId,
    masterId: started.masterId,
    data: message.data,
    selector: message.selector,
    timeout: message.timeout ? durationMs(message.timeout) : 0,
    ...(message.deliverWithin ? { deliverWithin: durationMs(message.deliverWithin) } : {}),
    targets: started.targets,
    unansweredMasters: started.unansweredMasters,
    startedAt: summary.startedAt,
    results: message.results.map(jobResultOf),
    summary,
  };
}
