import type { RunEvent } from "../../admin-client.js";
import type { JobRecord, JobResult, JobResultStatus, JobSummary } from "../../model.js";
import type { JobStartedInfo } from "../../server/job-message.js";
import { formatDuration } from "../duration.js";
import { printJsonLine, table, warnUnanswered } from "../output.js";
import type { ClientSecurityFlags } from "../security.js";
import { ExitStatus } from "../usage.js";
import { withAdmin } from "./admin.js";

export type RunFlags = {
  master: string;
  data: string;
  to?: string[];
  selector?: string;
  all?: boolean;
  timeout: number;
  deliverWithin?: number;
  json?: boolean;
} & ClientSecurityFlags;
export type JobFlags = { master: string; json?: boolean } & ClientSecurityFlags;
export type JobsFlags = { master: string; limit?: number; json?: boolean } & ClientSecurityFlags;

/** `netsync run` exits with this when a target did not answer ok (or none was targeted); 0 means every one did. */
export const EXIT_NOT_ALL_OK = 1;
/** Exit code after Ctrl-C stopped following a job (128 + SIGINT); the job runs on. */
const EXIT_INTERRUPTED = 130;

/** Ids named in a summary line before "and N more". */
const LISTED = 10;
/** Widest id column; longer ids push their line's other columns right. */
const MAX_ID_WIDTH = 32;

const count = (n: number) => n.toLocaleString("en-US");

const WORDS: Record<JobResultStatus, string> = {
  ok: "ok",
  error: "error",
  timeout: "timed out",
  "not-connected": "not connected",
  expired: "expired",
};

/** Whether a result counts as "did not return": the slave never answered (timeout, not connected, expired). */
const notReturned = (result: JobResult) => result.status !== "ok" && result.status !== "error";

/** A reply or error on one line: as is when it is plain text, else JSON-quoted (newlines and control characters escaped). */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  return /[\x00-\x1f\x7f]/.test(text) ? JSON.stringify(text) : text;
}

/** The id column's width for these targets. */
export function idWidth(targets: readonly string[]): number {
  return Math.min(MAX_ID_WIDTH, Math.max(0, ...targets.map((id) => id.length)));
}

/** "w1  ok             12 ms  up 3 days": the slave, its status, how long it took (if the command reached it), the reply or error. */
export function resultLine(result: JobResult, width: number): string {
  const latency = result.deliveries > 0 ? `${count(result.latencyMs)} ms` : "-";
  const detail = result.status === "ok" ? (result.data ?? "") : (result.error ?? "");
  const again = result.deliveries > 1 ? ` (delivered ${result.deliveries} times)` : "";
  return `${result.slaveId.padEnd(width)}  ${result.status.padEnd(13)}  ${latency.padStart(8)}  ${oneLine(detail)}${again}`.trimEnd();
}

/**
 * "9,998 ok, 1 error, 1 did not return: w7 (not connected)": the counts, and
 * the first ids (in id order) of the targets that did not return (timed out,
 * not connected or expired), then "and N more".
 */
export function summaryLine(summary: JobSummary, results: Iterable<JobResult>): string {
  if (summary.targets === 0) return "no targets: no slave matched, nothing ran";
  const parts = [`${count(summary.ok)} ok`];
  if (summary.error > 0) parts.push(`${count(summary.error)} error${summary.error === 1 ? "" : "s"}`);
  const missing = summary.timeout + summary.notConnected + summary.expired;
  if (missing > 0) {
    const named = [...results]
      .filter(notReturned)
      .sort((a, b) => (a.slaveId < b.slaveId ? -1 : a.slaveId > b.slaveId ? 1 : 0))
      .slice(0, LISTED)
      .map((r) => `${r.slaveId} (${WORDS[r.status]})`);
    const more = missing - named.length;
    parts.push(`${count(missing)} did not return: ${named.join(", ")}${more > 0 ? ` and ${count(more)} more` : ""}`);
  }
  if (summary.pending > 0) parts.push(`${count(summary.pending)} pending`);
  return parts.join(", ");
}

/** Whether the job is done and every target answered ok (and there was one). */
export function allOk(summary: JobSummary): boolean {
  return summary.targets > 0 && summary.pending === 0 && summary.ok === summary.targets;
}

// --- JSON lines: times in epoch ms, absent values null ---------------------------

export function startedJson(started: JobStartedInfo) {
  return {
    type: "started" as const,
    jobId: started.jobId,
    masterId: started.masterId,
    targets: started.targets,
    unansweredMasters: started.unansweredMasters,
  };
}

export function resultJson(result: JobResult) {
  return {
    type: "result" as const,
    slaveId: result.slaveId,
    masterId: result.masterId,
    status: result.status,
    data: result.data ?? null,
    error: result.error ?? null,
    latencyMs: result.latencyMs,
    deliveries: result.deliveries,
  };
}

function countsJson(summary: JobSummary) {
  return {
    jobId: summary.jobId,
    targets: summary.targets,
    ok: summary.ok,
    error: summary.error,
    timeout: summary.timeout,
    notConnected: summary.notConnected,
    expired: summary.expired,
    pending: summary.pending,
    startedAt: summary.startedAt.getTime(),
    finishedAt: summary.finishedAt?.getTime() ?? null,
  };
}

export function summaryJson(summary: JobSummary) {
  return { type: "summary" as const, ...countsJson(summary) };
}

/** A cached job without its results (they follow as result lines), its counts as `summary`. */
export function jobJson(record: JobRecord) {
  return {
    type: "job" as const,
    id: record.id,
    masterId: record.masterId,
    data: record.data,
    selector: record.selector,
    timeoutMs: record.timeout,
    deliverWithinMs: record.deliverWithin ?? null,
    targets: record.targets,
    unansweredMasters: record.unansweredMasters,
    startedAt: record.startedAt.getTime(),
    summary: countsJson(record.summary),
  };
}

// --- the commands --------------------------------------------------------------

/**
 * `netsync run`: AdminService.Run, one line per slave as its result comes,
 * then the summary line; exits 0 only if every target answered ok. Ctrl-C
 * stops following (the job runs on on the master) and exits 130.
 */
export async function run(opts: RunFlags): Promise<void> {
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  let jobId: string | undefined;
  let summary: JobSummary | undefined;
  try {
    await withAdmin(opts, async (admin) => {
      const events = admin.run(opts.data, {
        ...(opts.to ? { ids: opts.to } : {}),
        ...(opts.selector !== undefined ? { selector: opts.selector } : {}),
        all: opts.all ?? false,
        timeout: opts.timeout,
        ...(opts.deliverWithin !== undefined ? { deliverWithin: opts.deliverWithin } : {}),
        signal: abort.signal,
      });
      summary = await follow(events, opts.json ?? false, (id) => (jobId = id));
    });
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  if (!summary) {
    // Only an abort ends the stream without a summary (a broken one throws).
    process.stderr.write(`stopped following job ${jobId ?? "(not started)"}; it runs on: netsync job ${jobId ?? "ID"} shows it\n`);
    throw new ExitStatus(EXIT_INTERRUPTED);
  }
  if (!allOk(summary)) throw new ExitStatus(EXIT_NOT_ALL_OK);
}

/** Prints a Run stream's events as they come; resolves with the summary, or undefined if the stream ended before it. */
async function follow(events: AsyncIterable<RunEvent>, json: boolean, onStart: (jobId: string) => void): Promise<JobSummary | undefined> {
  const results: JobResult[] = [];
  let width = 0;
  for await (const event of events) {
    switch (event.type) {
      case "started":
        onStart(event.jobId);
        width = idWidth(event.targets);
        if (json) printJsonLine(startedJson(event));
        else
          process.stdout.write(
            `job ${event.jobId} on ${count(event.targets.length)} slave${event.targets.length === 1 ? "" : "s"} via ${event.masterId}\n`,
          );
        warnUnanswered(event.unansweredMasters, "their slaves are not among the targets");
        break;
      case "result":
        results.push(event.result);
        if (json) printJsonLine(resultJson(event.result));
        else process.stdout.write(`${resultLine(event.result, width)}\n`);
        break;
      case "summary":
        if (json) printJsonLine(summaryJson(event.summary));
        else process.stdout.write(`${summaryLine(event.summary, results)}\n`);
        return event.summary;
    }
  }
  return undefined;
}

/** `netsync job ID`: AdminService.GetJob: what the job was, each result so far, the targets still pending, the summary. */
export async function showJob(jobId: string, opts: JobFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    const job = await admin.getJob(jobId);
    if (opts.json) {
      printJsonLine(jobJson(job));
      for (const result of job.results) printJsonLine(resultJson(result));
      return;
    }
    const s = job.summary;
    const state = s.finishedAt ? `finished after ${formatDuration(s.finishedAt.getTime() - s.startedAt.getTime())}` : "running";
    const targeted = job.selector ? ` (selector ${job.selector})` : "";
    const wait = `timeout ${formatDuration(job.timeout)}${job.deliverWithin !== undefined ? `, deliver within ${formatDuration(job.deliverWithin)}` : ""}`;
    const lines = [
      `job      ${job.id}`,
      `master   ${job.masterId}`,
      `started  ${job.startedAt.toISOString()}, ${state}`,
      `data     ${oneLine(job.data)}`,
      `targets  ${count(job.targets.length)}${targeted}, ${wait}`,
      "",
    ];
    const width = idWidth(job.targets);
    for (const result of job.results) lines.push(resultLine(result, width));
    const answered = new Set(job.results.map((r) => r.slaveId));
    for (const id of job.targets) if (!answered.has(id)) lines.push(`${id.padEnd(width)}  pending`);
    if (job.results.length > 0 || answered.size < job.targets.length) lines.push("");
    lines.push(summaryLine(s, job.results));
    process.stdout.write(`${lines.join("\n")}\n`);
    warnUnanswered(job.unansweredMasters, "their slaves were not among the targets");
  });
}

/** `netsync jobs`: AdminService.ListJobs, newest first, as a table or one JSON object per job. */
export async function listJobs(opts: JobsFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    const jobs = await admin.listJobs(opts.limit ?? 0);
    if (opts.json) {
      for (const job of jobs) printJsonLine(jobJson(job));
      return;
    }
    if (jobs.length === 0) {
      process.stdout.write("no jobs\n");
      return;
    }
    const rows = jobs.map((job) => {
      const s = job.summary;
      const data = oneLine(job.data);
      return [
        job.id,
        job.startedAt.toISOString(),
        job.masterId,
        count(s.targets),
        count(s.ok),
        count(s.error),
        count(s.timeout + s.notConnected + s.expired),
        count(s.pending),
        data.length > 40 ? `${data.slice(0, 39)}…` : data,
      ];
    });
    process.stdout.write(`${table(["JOB", "STARTED", "MASTER", "TARGETS", "OK", "ERROR", "NOT RETURNED", "PENDING", "DATA"], rows)}\n`);
  });
}
