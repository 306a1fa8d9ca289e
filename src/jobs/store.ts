import type { JobResult, JobSummary } from "../model.js";
import type { JobSpec } from "./job.js";

/**
 * A command kept for a slave that could not be reached, until it is
 * delivered or `expiresAt` passes. In a shared store another master may read
 * it (the one the slave connects to), so times are wall-clock.
 */
export interface KeptCommand {
  jobId: string;
  slaveId: string;
  /** Ms since the epoch past which it is not delivered but reported "expired". */
  expiresAt: number;
  /** Times it was written to the slave before it was kept (a stream that broke before the reply counts). */
  deliveries: number;
  /** When its job started, ms since the epoch (results count their latency from it). */
  startedAt: number;
  /** The store's handle of it (a stream sequence), set by keep(). */
  ref?: number;
}

/** A job's spec as another master reads it to deliver a kept command: everything but the targets. */
export type StoredSpec = Omit<JobSpec, "targets">;

/** A job read back from a store: its spec and the results recorded so far, in the order they were recorded. */
export interface StoredJob {
  spec: JobSpec;
  results: JobResult[];
  /** The asking master's final counts, when it saw the job end (absent if it died first). */
  summary?: JobSummary;
}

/** What a store tells the master that follows one of its jobs: results recorded by others, and deliveries under way. */
export interface JobFollower {
  /** A result another master recorded (the first one recorded for its slave). */
  result(result: JobResult): void;
  /** Another master is delivering a kept command to `slaveId` and will have its result by `until` (ms since the epoch). */
  taking(slaveId: string, until: number): void;
}

/** What settle() came to: this result was recorded first, another was, or it waits for the store to come back. */
export type SettleOutcome = "won" | "lost" | "queued";

/**
 * Where jobs keep what must outlive a request: the job's spec, one result
 * per target (the first one recorded wins), and commands kept for slaves
 * that are not connected. The runner (runner.ts) calls it; it knows nothing
 * of how it is kept. {@link MemoryJobStore} is this process's memory (a lone
 * master, or a cluster without JetStream): the asking master delivers what it
 * kept when it hears the slave connect anywhere, and a master that dies
 * loses it all. A shared store (the cluster's JetStream, src/cluster/jobs/)
 * is read by every master: the master a slave connects to delivers what is
 * kept for it, whichever master asked, and results outlive the master that
 * asked.
 */
export interface JobStore {
  /** "memory", "jetstream": for the logs. */
  readonly kind: string;
  /** Whether every master reads it: then the holder of a slave delivers what is kept for it, and jobs are found on any master. */
  readonly shared: boolean;
  /** Records a job before its first delivery. Rejects when it cannot (the job is then not started). */
  record(spec: JobSpec): Promise<void>;
  /**
   * Records a target's result, unless one was recorded for that slave
   * before ("lost"). "queued": the store is unreachable; it is recorded when
   * it comes back (and may then lose).
   */
  settle(jobId: string, result: JobResult): Promise<SettleOutcome>;
  /** The asking master saw the job end: its final counts, for listings. */
  finish(jobId: string, summary: JobSummary): void;
  /** Keeps a command (sets its `ref`); resolves with why it was refused, or undefined once kept. */
  keep(command: KeptCommand): Promise<string | undefined>;
  /** What is kept for one slave, oldest first (left in place: remove() each once delivered or expired). */
  kept(slaveId: string): Promise<KeptCommand[]>;
  /** Forgets a kept command; true if it was still kept (so nobody else delivered or expired it). */
  remove(command: KeptCommand): Promise<boolean>;
  /** Among `held` (this master's slaves), those something is kept for; a shared store's question after it (re)connects. */
  keptAmong(held: readonly string[]): Promise<string[]>;
  /** A job's spec, for a master delivering a kept command of a job it did not start. */
  spec(jobId: string): Promise<StoredSpec | undefined>;
  /** Follows the results others record for a job this master runs; returns the function that stops it. */
  follow(jobId: string, follower: JobFollower): () => void;
  /** Says (best effort) that this master is delivering `command` and will have its result by `until`. */
  taking(command: KeptCommand, until: number): void;
  /** A job by id, with its results so far (undefined if unknown or past the retention). */
  read(jobId: string): Promise<StoredJob | undefined>;
  /** Recent jobs, newest first, without their results. */
  list(limit: number): Promise<StoredJob[]>;
  /**
   * Calls `listener` when what is kept may need delivering again: the store
   * (re)connected, so slaves held here may have commands kept while it was
   * away. Returns the function that stops it.
   */
  onWake(listener: () => void): () => void;
  close(): Promise<void>;
}

export interface PendingBounds {
  /** Commands kept for one slave at once. */
  perSlave: number;
  /** Commands kept for every slave at once. */
  total: number;
}

/**
 * Jobs kept in this process's memory: the spec and results live in the
 * runner's Job objects (so record and settle only say yes), and kept
 * commands in per-slave queues, bounded per slave and in total: no bound is
 * a way to lose a master to memory when a large job targets slaves that
 * never come back. A refusal is the job's answer for that slave ("expired",
 * saying which bound), never a silent drop.
 */
export class MemoryJobStore implements JobStore {
  readonly kind = "memory";
  readonly shared = false;
  private readonly bySlave = new Map<string, KeptCommand[]>();
  private count = 0;

  constructor(private readonly bounds: PendingBounds) {}

  /** Commands kept now. */
  get size(): number {
    return this.count;
  }

  /** Slaves with something kept. */
  slaves(): IterableIterator<string> {
    return this.bySlave.keys();
  }

  async record(): Promise<void> {}

  async settle(): Promise<SettleOutcome> {
    return "won";
  }

  finish(): void {}

  async keep(command: KeptCommand): Promise<string | undefined> {
    if (this.count >= this.bounds.total) {
      return `the master already keeps ${this.bounds.total} pending deliveries (its total bound)`;
    }
    const queue = this.bySlave.get(command.slaveId);
    if (queue && queue.length >= this.bounds.perSlave) {
      return `${this.bounds.perSlave} commands are already pending for slave ${command.slaveId} (the per-slave bound)`;
    }
    if (queue) queue.push(command);
    else this.bySlave.set(command.slaveId, [command]);
    this.count++;
    return undefined;
  }

  async kept(slaveId: string): Promise<KeptCommand[]> {
    return [...(this.bySlave.get(slaveId) ?? [])];
  }

  async remove(command: KeptCommand): Promise<boolean> {
    return this.removeNow(command);
  }

  /** remove(), at once. */
  removeNow(command: KeptCommand): boolean {
    const queue = this.bySlave.get(command.slaveId);
    const at = queue?.findIndex((c) => c.jobId === command.jobId) ?? -1;
    if (!queue || at < 0) return false;
    queue.splice(at, 1);
    if (queue.length === 0) this.bySlave.delete(command.slaveId);
    this.count--;
    return true;
  }

  async keptAmong(held: readonly string[]): Promise<string[]> {
    return held.filter((id) => this.bySlave.has(id));
  }

  async spec(): Promise<StoredSpec | undefined> {
    return undefined;
  }

  follow(): () => void {
    return () => {};
  }

  taking(): void {}

  async read(): Promise<StoredJob | undefined> {
    return undefined;
  }

  async list(): Promise<StoredJob[]> {
    return [];
  }

  onWake(): () => void {
    return () => {};
  }

  async close(): Promise<void> {
    this.bySlave.clear();
    this.count = 0;
  }
}

/**
 * What the cluster adapter needs of the job runner to give it a shared
 * store: the bounds and retention to build it with, and where to attach it.
 */
export interface JobStoreSink {
  readonly bounds: {
    pending: PendingBounds;
    /** Jobs kept for reading: `maxAgeMs` is the shared store's retention. */
    cache: { entries: number; maxAgeMs: number };
    maxDeliverWithin: number;
  };
  /** Keeps every job started from now on in `store`. */
  useStore(store: JobStore): void;
  /** Refuses new jobs (UNAVAILABLE, saying `why`) until useStore() or useMemory(). */
  requireStore(why: string): void;
  /** Accepts new jobs into this master's memory again: the cluster has no shared store. */
  useMemory(): void;
}
