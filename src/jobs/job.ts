import type { JobRecord, JobResult, JobResultStatus, JobSummary } from "../model.js";

/** What a job is made of when it starts; its targets never change after. */
export interface JobSpec {
  id: string;
  masterId: string;
  data: string;
  selector: string;
  timeout: number;
  deliverWithin?: number;
  targets: string[];
  unansweredMasters: string[];
  startedAt: Date;
}

type Listener = (result: JobResult) => void;

/**
 * One command run on a fixed set of slaves, and what became of it on each:
 * exactly one result per target, the first one settled (a second result for
 * the same slave, say from a redelivery racing a late reply, is ignored).
 * Read it as it goes (`for await (const result of job)`, any number of
 * readers, each sees every result from the first), or wait for `done`.
 */
export class Job implements AsyncIterable<JobResult> {
  readonly id: string;
  readonly targets: readonly string[];
  readonly startedAt: Date;
  /** Resolves with the counts once every target has its result; never rejects. */
  readonly done: Promise<JobSummary>;
  private readonly spec: JobSpec;
  private readonly results: JobResult[] = [];
  /** Results by slave, made on the first resultOf() and kept up to date from then on (most jobs are never asked). */
  private bySlave: Map<string, JobResult> | undefined;
  private readonly outstanding: Set<string>;
  private readonly counts: Record<JobResultStatus, number> = { ok: 0, error: 0, timeout: 0, "not-connected": 0, expired: 0 };
  private readonly listeners = new Set<Listener>();
  private finishedAt: Date | undefined;
  private resolveDone!: (summary: JobSummary) => void;

  constructor(spec: JobSpec) {
    this.spec = spec;
    this.id = spec.id;
    this.targets = spec.targets;
    this.startedAt = spec.startedAt;
    this.outstanding = new Set(spec.targets);
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    if (this.outstanding.size === 0) this.finish();
  }

  get finished(): boolean {
    return this.finishedAt !== undefined;
  }

  /** Targets with no result yet. */
  get pending(): number {
    return this.outstanding.size;
  }

  /** Whether `slaveId` is a target still waiting for its result. */
  waitsFor(slaveId: string): boolean {
    return this.outstanding.has(slaveId);
  }

  /** Masters that did not answer when the selector was resolved. */
  get unansweredMasters(): readonly string[] {
    return this.spec.unansweredMasters;
  }

  /** The command's data. */
  get data(): string {
    return this.spec.data;
  }

  get masterId(): string {
    return this.spec.masterId;
  }

  get deliverWithin(): number | undefined {
    return this.spec.deliverWithin;
  }

  get timeout(): number {
    return this.spec.timeout;
  }

  /** Records a target's result; false (and ignored) for a slave that is not a target or already has one. */
  settle(result: JobResult): boolean {
    if (!this.outstanding.delete(result.slaveId)) return false;
    this.results.push(result);
    this.bySlave?.set(result.slaveId, result);
    this.counts[result.status]++;
    for (const listener of this.listeners) listener(result);
    if (this.outstanding.size === 0) this.finish();
    return true;
  }

  /** The result of one target, if it has come. */
  resultOf(slaveId: string): JobResult | undefined {
    this.bySlave ??= new Map(this.results.map((result) => [result.slaveId, result]));
    return this.bySlave.get(slaveId);
  }

  summary(): JobSummary {
    const c = this.counts;
    return {
      jobId: this.id,
      targets: this.targets.length,
      ok: c.ok,
      error: c.error,
      timeout: c.timeout,
      notConnected: c["not-connected"],
      expired: c.expired,
      pending: this.outstanding.size,
      startedAt: this.startedAt,
      ...(this.finishedAt ? { finishedAt: this.finishedAt } : {}),
    };
  }

  /** The job as the cache keeps it: a snapshot, results in the order they came (none with `withResults` false). */
  record(withResults = true): JobRecord {
    const s = this.spec;
    return {
      id: s.id,
      masterId: s.masterId,
      data: s.data,
      selector: s.selector,
      timeout: s.timeout,
      ...(s.deliverWithin !== undefined ? { deliverWithin: s.deliverWithin } : {}),
      targets: [...s.targets],
      unansweredMasters: [...s.unansweredMasters],
      startedAt: s.startedAt,
      results: withResults ? [...this.results] : [],
      summary: this.summary(),
    };
  }

  /**
   * Follows the results: every one so far at once, then each as it comes,
   * until the last. `listener` runs synchronously inside settle(): it must be
   * quick and must not throw. Returns the function that stops following.
   */
  follow(listener: Listener, onDone?: (summary: JobSummary) => void): () => void {
    for (const result of [...this.results]) listener(result);
    if (this.finished) {
      onDone?.(this.summary());
      return () => {};
    }
    this.listeners.add(listener);
    let stopped = false;
    void this.done.then((summary) => {
      if (!stopped) onDone?.(summary);
    });
    return () => {
      stopped = true;
      this.listeners.delete(listener);
    };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<JobResult> {
    const queue: JobResult[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const stop = this.follow(
      (result) => {
        queue.push(result);
        wake?.();
      },
      () => {
        ended = true;
        wake?.();
      },
    );
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          yield next;
          continue;
        }
        if (ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      stop();
    }
  }

  private finish(): void {
    this.finishedAt = new Date();
    this.listeners.clear();
    this.resolveDone(this.summary());
  }
}
