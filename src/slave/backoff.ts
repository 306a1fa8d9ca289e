import { DEFAULTS } from "../defaults.js";

/** Options of {@link Backoff}. */
export interface BackoffOptions {
  /** First cap on the wait, in ms. Default 100. */
  initial?: number;
  /** Growth of the cap per failed attempt. Default 2. */
  factor?: number;
  /** Largest cap, in ms. Default 10 000. */
  max?: number;
  /** Source of randomness in [0, 1); injectable for tests. Default Math.random. */
  random?: () => number;
}

/**
 * Exponential backoff with full jitter: the n-th wait is uniform in
 * [0, min(max, initial * factor^n)). Full jitter spreads a fleet that lost
 * its master at the same instant, so a restarted master is not hit by every
 * slave in the same millisecond.
 */
export class Backoff {
  private attempt = 0;
  private readonly initial: number;
  private readonly factor: number;
  private readonly max: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initial = options.initial ?? DEFAULTS.backoff.initial;
    this.factor = options.factor ?? DEFAULTS.backoff.factor;
    this.max = options.max ?? DEFAULTS.backoff.max;
    this.random = options.random ?? Math.random;
  }

  /** The cap of the next wait, before jitter. */
  get cap(): number {
    return Math.min(this.max, this.initial * this.factor ** this.attempt);
  }

  /** Returns the next wait in ms and moves to the next attempt. */
  next(): number {
    const wait = Math.floor(this.random() * this.cap);
    this.attempt++;
    return wait;
  }

  /** Back to the first attempt, after a healthy session. */
  reset(): void {
    this.attempt = 0;
  }
}
