import { randomBytes } from "node:crypto";
import { Code } from "../code.js";
import { JOB_DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { pace } from "../fleet/pacer.js";
import type { Logger } from "../logger.js";
import type { CustomInput, JobResult, JobResultStatus, RoutedReplyResult, RunOptions } from "../model.js";
import { Selector } from "../selector.js";
import { validateSlaveId } from "../wire.js";
import { Job } from "./job.js";
import { JobCache } from "./job-cache.js";
import { PendingDeliveries } from "./pending.js";

/** Longest a Node timer waits (ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long past its last possible result a job waits before it names the targets that never got one. */
const GUARD_MS = 5_000;

/**
 * What a job needs of the master it runs on, and nothing else: resolving a
 * selector in reach (the fleet, or every master of a cluster), one request
 * to one slave wherever it is held, and word of slaves connecting. The
 * composition root builds it over the master's scope.
 */
export interface JobHost {
  readonly masterId: string;
  /** The ids of every slave in reach the selector matches, and the masters that did not answer. */
  resolve(selector: Selector): Promise<{ ids: string[]; unanswered: string[] }>;
  /**
   * Writes the command (with its command_id) to the slave wherever it is
   * held and waits `timeout` ms for its Reply. Rejects with a NetSyncError:
   * NOT_FOUND (no master holds it), RESOURCE_EXHAUSTED (not written),
   * UNAVAILABLE (its stream ended before the Reply, or the cluster is
   * unreachable), DEADLINE_EXCEEDED (written, no Reply in time).
   */
  request(slaveId: string, custom: { data: string; commandId: string }, timeout: number): Promise<RoutedReplyResult>;
  /** Whether a master in reach is known to hold the slave now; from memory, maybe stale. */
  reachable(slaveId: string): boolean;
  /** Calls `listener` with the id of each slave that connects anywhere in reach; returns the function that stops it. */
  watchConnects(listener: (slaveId: string) => void): () => void;
}

export interface JobsConfig {
  /** Default per-slave reply timeout (ms). */
  timeout: number;
  /** Longest deliverWithin accepted (ms): the slaves' command logs must remember ids at least this long. */
  maxDeliverWithin: number;
  pending: { perSlave: number; total: number };
  cache: { entries: number; maxAgeMs: number };
  /** How often slaves with pending commands that a master is known to hold are tried again (ms): connect events may be missed. */
  retryInterval: number;
  log: Logger;
}

/**
 * Runs jobs: one command on a fixed set of slaves, each result kept. It
 * resolves the targets once at start, writes the command to each paced (no
 * turn of the event loop longer than ~10 ms, so heartbeats keep time during
 * a fan-out to the whole fleet), and turns what each request came to into a
 * result. With deliverWithin, a command that could not be delivered, or
 * whose stream broke before its Reply, is kept (bounded) and delivered again,
 * in order per slave, when the slave connects anywhere in reach; the job's id
 * is the command's command_id on every delivery, so the slave runs it once.
 * Kept in this process's memory: a master that dies loses its pending
 * deliveries and its running jobs' results (see README, Jobs).
 */
export class JobRunner {
  private readonly host: JobHost;
  private readonly config: JobsConfig;
  private readonly cache: JobCache;
  private readonly pending: PendingDeliveries;
  /** Timers each running job owns: its deliverWithin expiry and its guard. */
  private readonly timers = new Map<string, NodeJS.Timeout[]>();
  /** Writes per job and slave, for JobResult.deliveries. */
  private readonly deliveries = new Map<string, Map<string, number>>();
  private retryTimer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  private closed = false;

  constructor(host: JobHost, config: Partial<JobsConfig> & { log: Logger }) {
    this.host = host;
    this.config = { ...JOB_DEFAULTS, ...config };
    this.cache = new JobCache(this.config.cache);
    this.pending = new PendingDeliveries(this.config.pending);
  }

  /** Commands kept for slaves that are not connected. */
  get pendingCount(): number {
    return this.pending.size;
  }

  get(jobId: string): Job | undefined {
    return this.cache.get(jobId);
  }

  /** Recent jobs, newest first. */
  list(limit = 100): Job[] {
    return this.cache.list(limit);
  }

  /**
   * Starts a job and returns it as soon as its targets are fixed; the
   * command is being written meanwhile. Rejects with INVALID_ARGUMENT for a
   * bad option, id or selector, FAILED_PRECONDITION once closed.
   */
  async run(custom: CustomInput, options: RunOptions = {}): Promise<Job> {
    if (this.closed) throw new NetSyncError("master is closed", Code.FAILED_PRECONDITION);
    const data = typeof custom === "string" ? custom : (custom.data ?? "");
    const timeout = checkDuration("timeout", options.timeout ?? this.config.timeout, MAX_TIMER_MS);
    const deliverWithin =
      options.deliverWithin === undefined || options.deliverWithin === 0
        ? undefined
        : checkDuration("deliverWithin", options.deliverWithin, this.config.maxDeliverWithin);
    let targets: string[];
    let unanswered: string[] = [];
    let selectorText = "";
    if (options.ids !== undefined) {
      for (const id of options.ids) {
        const problem = validateSlaveId(id);
        if (problem) throw new NetSyncError(`bad target "${id}": ${problem}`, Code.INVALID_ARGUMENT);
      }
      targets = [...new Set(options.ids)].sort();
    } else {
      const selector = Selector.from(options.selector);
      selectorText = selector.toString();
      const resolved = await this.host.resolve(selector);
      targets = [...new Set(resolved.ids)].sort();
      unanswered = resolved.unanswered;
    }
    const job = new Job({
      id: newJobId(),
      masterId: this.host.masterId,
      data,
      selector: selectorText,
      timeout,
      ...(deliverWithin !== undefined ? { deliverWithin } : {}),
      targets,
      unansweredMasters: unanswered,
      startedAt: new Date(),
    });
    this.cache.add(job);
    if (job.finished) return job;
    this.deliveries.set(job.id, new Map());
    this.own(job, deliverWithin);
    void job.done.then(() => this.release(job));
    const expiresAt = performance.now() + (deliverWithin ?? 0);
    // Paced: a job to the whole fleet writes to each stream in turns that leave the heartbeat room.
    void pace(targets, (slaveId) => this.deliver(job, slaveId, expiresAt), { stopped: () => this.closed });
    return job;
  }

  /**
   * Ends every running job: their outstanding targets get "expired" (with
   * deliverWithin) or "not-connected", saying the master shut down, since
   * nothing kept in memory survives it. Stops every timer.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    this.pending.clear();
    for (const job of this.cache.running()) {
      for (const slaveId of job.targets) {
        if (!job.waitsFor(slaveId)) continue;
        const status = job.deliverWithin !== undefined ? "expired" : "not-connected";
        this.settle(job, slaveId, { status, error: `master ${this.host.masterId} shut down before a result came` }, "");
      }
    }
    for (const timers of this.timers.values()) for (const timer of timers) clearTimeout(timer);
    this.timers.clear();
  }

  // --- delivering --------------------------------------------------------------

  private deliver(job: Job, slaveId: string, expiresAt: number): void {
    if (this.closed || !job.waitsFor(slaveId)) return;
    const counts = this.deliveries.get(job.id);
    this.host.request(slaveId, { data: job.data, commandId: job.id }, job.timeout).then(
      ({ reply, masterId }) => {
        const delivered = bump(counts, slaveId);
        if (reply.result.case === "error") {
          this.settle(job, slaveId, { status: "error", error: reply.result.value }, masterId, delivered);
        } else {
          const value = reply.result.case === "data" ? reply.result.value : "";
          this.settle(job, slaveId, { status: "ok", data: value }, masterId, delivered);
        }
      },
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.UNAVAILABLE);
        const written = error.code !== Code.NOT_FOUND && error.code !== Code.RESOURCE_EXHAUSTED;
        const delivered = written ? bump(counts, slaveId) : (counts?.get(slaveId) ?? 0);
        if (error.code === Code.DEADLINE_EXCEEDED) {
          this.settle(job, slaveId, { status: "timeout", error: error.message }, "", delivered);
          return;
        }
        if (!isUndelivered(error.code)) {
          this.settle(job, slaveId, { status: "error", error: error.message }, "", delivered);
          return;
        }
        this.undelivered(job, slaveId, expiresAt, error.message, delivered);
      },
    );
  }

  /** The command did not reach the slave, or its Reply was lost with the stream: keep it for later, or say so now. */
  private undelivered(job: Job, slaveId: string, expiresAt: number, why: string, delivered: number): void {
    if (this.closed || !job.waitsFor(slaveId)) return;
    if (job.deliverWithin === undefined) {
      this.settle(job, slaveId, { status: "not-connected", error: why }, "", delivered);
      return;
    }
    if (performance.now() >= expiresAt) {
      this.settle(job, slaveId, { status: "expired", error: `not delivered within ${job.deliverWithin} ms (${why})` }, "", delivered);
      return;
    }
    const refused = this.pending.add({ jobId: job.id, slaveId, expiresAt });
    if (refused) {
      this.settle(job, slaveId, { status: "expired", error: `not kept for later delivery: ${refused}` }, "", delivered);
      return;
    }
    this.followConnects();
  }

  /** Delivers what is pending for a slave that connected (or is known held), oldest first. */
  private drain(slaveId: string): void {
    if (!this.pending.has(slaveId)) return;
    for (const delivery of this.pending.take(slaveId)) {
      const job = this.cache.get(delivery.jobId);
      if (job) this.deliver(job, slaveId, delivery.expiresAt);
    }
    if (this.pending.size === 0) this.stopFollowing();
  }

  /** Listens for connects, and tries known-held slaves now and then, only while something is pending. */
  private followConnects(): void {
    this.unwatch ??= this.host.watchConnects((slaveId) => this.drain(slaveId));
    this.retryTimer ??= setInterval(() => {
      for (const slaveId of [...this.pending.slaves()]) if (this.host.reachable(slaveId)) this.drain(slaveId);
      if (this.pending.size === 0) this.stopFollowing();
    }, this.config.retryInterval);
  }

  private stopFollowing(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
  }

  // --- a job's own timers and end ----------------------------------------------

  private own(job: Job, deliverWithin: number | undefined): void {
    const timers: NodeJS.Timeout[] = [];
    if (deliverWithin !== undefined) {
      // What is still pending when deliverWithin runs out expires; deliveries in flight keep their reply timeout.
      timers.push(
        setTimeout(() => {
          for (const d of this.pending.removeJob(job.id, job.targets)) {
            const delivered = this.deliveries.get(job.id)?.get(d.slaveId) ?? 0;
            this.settle(job, d.slaveId, { status: "expired", error: `not delivered within ${deliverWithin} ms` }, "", delivered);
          }
          if (this.pending.size === 0) this.stopFollowing();
        }, deliverWithin),
      );
    }
    // Every request settles by its timeout; this names any target that still has no result (it never should).
    const last = Math.min(MAX_TIMER_MS, (deliverWithin ?? 0) + job.timeout + GUARD_MS);
    timers.push(
      setTimeout(() => {
        for (const slaveId of job.targets) {
          if (!job.waitsFor(slaveId)) continue;
          this.config.log.warn(`job ${job.id}: no result for slave ${slaveId} by its last moment; reporting it as timed out`);
          this.settle(job, slaveId, { status: "timeout", error: "no result came in time" }, "");
        }
      }, last),
    );
    this.timers.set(job.id, timers);
  }

  private release(job: Job): void {
    for (const timer of this.timers.get(job.id) ?? []) clearTimeout(timer);
    this.timers.delete(job.id);
    this.deliveries.delete(job.id);
    const summary = job.summary();
    const others = summary.targets - summary.ok;
    this.config.log.info(
      `job ${job.id} done: ${summary.ok} ok` +
        (others > 0 ? ` of ${summary.targets} (${describeMissing(summary)})` : ` of ${summary.targets}`),
    );
  }

  private settle(
    job: Job,
    slaveId: string,
    outcome: { status: JobResultStatus; data?: string; error?: string },
    masterId: string,
    deliveries = 0,
  ): void {
    const result: JobResult = {
      slaveId,
      masterId,
      status: outcome.status,
      ...(outcome.data !== undefined ? { data: outcome.data } : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      latencyMs: Date.now() - job.startedAt.getTime(),
      deliveries,
    };
    job.settle(result);
  }
}

/** Codes that mean the command may not have run (not written, or its stream ended before the Reply): worth delivering again. */
function isUndelivered(code: Code): boolean {
  return code === Code.NOT_FOUND || code === Code.UNAVAILABLE || code === Code.RESOURCE_EXHAUSTED;
}

function bump(counts: Map<string, number> | undefined, slaveId: string): number {
  const next = (counts?.get(slaveId) ?? 0) + 1;
  counts?.set(slaveId, next);
  return next;
}

function checkDuration(name: string, value: number, max: number): number {
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new NetSyncError(`${name} must be a positive number of ms, at most ${max} (got ${value})`, Code.INVALID_ARGUMENT);
  }
  return value;
}

/** "1 error, 2 not connected", the parts of a summary that are not ok. */
export function describeMissing(summary: {
  error: number;
  timeout: number;
  notConnected: number;
  expired: number;
  pending: number;
}): string {
  const parts: string[] = [];
  if (summary.error) parts.push(`${summary.error} error`);
  if (summary.timeout) parts.push(`${summary.timeout} timeout`);
  if (summary.notConnected) parts.push(`${summary.notConnected} not connected`);
  if (summary.expired) parts.push(`${summary.expired} expired`);
  if (summary.pending) parts.push(`${summary.pending} pending`);
  return parts.join(", ");
}

/**
 * A job id that sorts by start time, like Salt's jids: UTC yyyymmddhhmmssSSS,
 * then 6 random hex digits so two masters starting a job in the same ms differ.
 */
function newJobId(): string {
  const stamp = new Date().toISOString().replace(/[-:TZ.]/g, "");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}
