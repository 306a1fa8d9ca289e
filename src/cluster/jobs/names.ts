import type { KeptCommand, StoredSpec } from "../../jobs/store.js";
import type { JobResult, JobResultStatus, JobSummary } from "../../model.js";
import { decodeToken, encodeToken } from "../subjects.js";

/** Job ids enter subjects and KV keys: NetSync's own are "yyyymmddhhmmssSSS-xxxxxx"; anything else read from NATS is ignored. */
const JOB_ID = /^[0-9A-Za-z_-]{1,64}$/;

export function isJobId(id: unknown): id is string {
  return typeof id === "string" && JOB_ID.test(id);
}

/**
 * The names of one cluster's job store (cluster names are one subject token
 * of [A-Za-z0-9_-], so they fit stream and bucket names too):
 *
 * - stream `NETSYNC_<c>_JOB_RESULTS`, subjects `netsync.<c>.jobs.<jobId>.results.<slave>`:
 *   one message per subject, the first wins (discard new per subject);
 * - stream `NETSYNC_<c>_JOB_PENDING`, subjects `netsync.<c>.pending.<slave>`: the
 *   commands kept for one slave, in the order kept, at most `perSlave` (the server refuses more);
 * - KV bucket `netsync_<c>_jobs`: `<jobId>` the spec, `<jobId>.targets.<n>` a large
 *   job's targets, `<jobId>.done` the asking master's final counts;
 * - core subject `netsync.<c>.jobs.<jobId>.taking`: "I am delivering a kept command" (not stored).
 *
 * Slave ids enter subjects as base64url (subjects.ts).
 */
export class JobNames {
  readonly prefix: string;
  readonly resultsStream: string;
  readonly pendingStream: string;
  readonly bucket: string;

  constructor(readonly cluster: string) {
    this.prefix = `netsync.${cluster}`;
    this.resultsStream = `NETSYNC_${cluster}_JOB_RESULTS`;
    this.pendingStream = `NETSYNC_${cluster}_JOB_PENDING`;
    this.bucket = `netsync_${cluster}_jobs`;
  }

  /** The results stream's subjects (2.9 checks a consumer's filter against these literally: `*`, not `>`). */
  get allResults(): string {
    return `${this.prefix}.jobs.*.results.*`;
  }

  results(jobId: string): string {
    return `${this.prefix}.jobs.${jobId}.results.*`;
  }

  result(jobId: string, slaveId: string): string {
    return `${this.prefix}.jobs.${jobId}.results.${encodeToken(slaveId)}`;
  }

  taking(jobId: string): string {
    return `${this.prefix}.jobs.${jobId}.taking`;
  }

  get allPending(): string {
    return `${this.prefix}.pending.*`;
  }

  pending(slaveId: string): string {
    return `${this.prefix}.pending.${encodeToken(slaveId)}`;
  }

  /** The slave id of a pending subject, or undefined for another subject. */
  slaveOfPending(subject: string): string | undefined {
    const head = `${this.prefix}.pending.`;
    if (!subject.startsWith(head)) return undefined;
    const token = subject.slice(head.length);
    return token.length > 0 && !token.includes(".") ? decodeToken(token) : undefined;
  }
}

// --- what is stored, as JSON ---------------------------------------------------------

/** The KV value under `<jobId>`: the spec, with the targets inline when they are few, else in `chunks` more keys. */
export interface StoredHead {
  v: 1;
  id: string;
  masterId: string;
  data: string;
  selector: string;
  timeout: number;
  deliverWithin?: number;
  unansweredMasters: string[];
  /** Ms since the epoch. */
  startedAt: number;
  targetCount: number;
  /** The targets, when they fit in one value with the rest; else in `<jobId>.targets.<n>` for n < chunks. */
  targets?: string[];
  chunks: number;
}

export function specOfHead(head: StoredHead): StoredSpec {
  return {
    id: head.id,
    masterId: head.masterId,
    data: head.data,
    selector: head.selector,
    timeout: head.timeout,
    ...(head.deliverWithin !== undefined ? { deliverWithin: head.deliverWithin } : {}),
    unansweredMasters: head.unansweredMasters,
    startedAt: new Date(head.startedAt),
  };
}

export function decodeHead(text: string): StoredHead | undefined {
  const h = parse(text);
  if (!h) return undefined;
  if (h.v !== 1 || !isJobId(h.id) || typeof h.masterId !== "string" || typeof h.data !== "string") return undefined;
  if (typeof h.timeout !== "number" || typeof h.startedAt !== "number" || typeof h.chunks !== "number") return undefined;
  if (typeof h.targetCount !== "number" || !Array.isArray(h.unansweredMasters)) return undefined;
  if (h.targets !== undefined && !isStrings(h.targets)) return undefined;
  return h as unknown as StoredHead;
}

export function decodeTargets(text: string): string[] | undefined {
  const t = parse(text);
  return isStrings(t) ? t : undefined;
}

/** A pending message's body; the slave is its subject's last token. */
interface KeptBody {
  job: string;
  exp: number;
  dlv: number;
  st: number;
}

export function encodeKept(command: KeptCommand): string {
  const body: KeptBody = { job: command.jobId, exp: command.expiresAt, dlv: command.deliveries, st: command.startedAt };
  return JSON.stringify(body);
}

export function decodeKept(text: string, slaveId: string, ref: number): KeptCommand | undefined {
  const b = parse(text);
  if (!b || !isJobId(b.job) || typeof b.exp !== "number" || typeof b.dlv !== "number" || typeof b.st !== "number") return undefined;
  return { jobId: b.job, slaveId, expiresAt: b.exp, deliveries: b.dlv, startedAt: b.st, ref };
}

const STATUSES: readonly JobResultStatus[] = ["ok", "error", "timeout", "not-connected", "expired"];

export function decodeResult(text: string): JobResult | undefined {
  const r = parse(text);
  if (!r || typeof r.slaveId !== "string" || typeof r.masterId !== "string" || !STATUSES.includes(r.status as JobResultStatus))
    return undefined;
  if (typeof r.latencyMs !== "number" || typeof r.deliveries !== "number") return undefined;
  if ((r.data !== undefined && typeof r.data !== "string") || (r.error !== undefined && typeof r.error !== "string")) return undefined;
  return r as unknown as JobResult;
}

export function decodeSummary(text: string): JobSummary | undefined {
  const s = parse(text);
  if (!s || !isJobId(s.jobId) || typeof s.targets !== "number" || typeof s.startedAt !== "string") return undefined;
  const summary = s as unknown as JobSummary & { startedAt: string; finishedAt?: string };
  return {
    ...summary,
    startedAt: new Date(summary.startedAt),
    ...(summary.finishedAt !== undefined ? { finishedAt: new Date(summary.finishedAt) } : {}),
  };
}

export function decodeTaking(text: string): { slaveId: string; until: number } | undefined {
  const t = parse(text);
  return t && typeof t.slaveId === "string" && typeof t.until === "number" ? { slaveId: t.slaveId, until: t.until } : undefined;
}

function parse(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}
