import type { Job } from "./job.js";

export interface JobCacheBounds {
  /** Jobs kept at most; the oldest goes first. */
  entries: number;
  /** How long a job is kept after it started, in ms. */
  maxAgeMs: number;
  /**
   * Results the jobs kept may hold in all (a job counts one per target): past
   * it the oldest finished jobs go first, so a cache of large jobs stays
   * bounded in memory, not only in jobs. The newest job is always kept.
   */
  results?: number;
}

/**
 * Recent jobs by id, for GetJob and ListJobs (Salt's job cache, bounded):
 * a finished job stays until it is older than `maxAgeMs` or `entries` newer
 * ones push it out (or the results of newer ones, past `results`); a running job is never dropped (its results still
 * arrive), so the cache may hold more than `entries` while that many run.
 * No timer: entries age out as new ones arrive and when read.
 */
export class JobCache {
  private readonly byId = new Map<string, Job>();
  /** Results the jobs kept hold, finished or not: the sum of their targets. */
  private held = 0;

  constructor(
    private readonly bounds: JobCacheBounds,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** Results the jobs kept hold in all (one per target). */
  get results(): number {
    return this.held;
  }

  add(job: Job): void {
    const previous = this.byId.get(job.id);
    if (previous) this.held -= previous.targets.length;
    this.byId.set(job.id, job);
    this.held += job.targets.length;
    this.prune();
  }

  get(jobId: string): Job | undefined {
    this.prune();
    return this.byId.get(jobId);
  }

  /** Newest first. */
  list(limit: number): Job[] {
    this.prune();
    const jobs = [...this.byId.values()];
    const out: Job[] = [];
    for (let i = jobs.length - 1; i >= 0 && out.length < limit; i--) out.push(jobs[i] as Job);
    return out;
  }

  /** Running jobs (their deliveries and timers are still owned by the runner). */
  running(): Job[] {
    return [...this.byId.values()].filter((job) => !job.finished);
  }

  private prune(): void {
    const now = this.now();
    let excess = this.byId.size - this.bounds.entries;
    let over = this.bounds.results === undefined ? 0 : this.held - this.bounds.results;
    let left = this.byId.size;
    // Insertion order is start order: look at the oldest first, skipping running ones (and never the newest).
    for (const [id, job] of this.byId) {
      left--;
      const old = now - job.startedAt.getTime() > this.bounds.maxAgeMs;
      if (!old && excess <= 0 && (over <= 0 || left === 0)) break;
      if (!job.finished) continue;
      this.byId.delete(id);
      this.held -= job.targets.length;
      excess--;
      over -= job.targets.length;
    }
  }
}
