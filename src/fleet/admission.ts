/** What Admission decides about one new stream. */
export type AdmissionDecision =
  | { admitted: true }
  /** `report`: refusals since the last report, when one is due (at most one per REPORT_EVERY_MS), else undefined. */
  | { admitted: false; retryAfterMs: number; report: number | undefined };

/** A storm refuses thousands of streams a second: the master says so in one line per this interval. */
const REPORT_EVERY_MS = 10_000;

/**
 * Admission of new streams: a token bucket of `rate` streams a second and
 * `burst` at once, read from the clock on each call (no timer to own).
 *
 * A refused stream is told when to come back, and no two refused in a row
 * are told the same time: each takes the next free slot of the bucket's
 * refill (1000 / rate ms apart) after those already promised. A storm of N
 * slaves is so spread over N / rate seconds rather than returning at once
 * to be refused again. Promises are hints, not reservations: whoever comes
 * first when a token is there takes it, and a slave that comes back to an
 * empty bucket gets a later slot. The slave adds jitter of its own.
 */
export class Admission {
  private tokens: number;
  private refilledAt: number;
  /** The time up to which refill slots have been promised to refused streams. */
  private promisedUntil = 0;
  private unreported = 0;
  private reportedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
    this.refilledAt = Number.NEGATIVE_INFINITY;
  }

  /** Whether admission is on (a rate of 0 admits everything). */
  get enabled(): boolean {
    return this.rate > 0;
  }

  /** Takes a token if one is there; otherwise says when to try again. `now` in ms (performance.now()). */
  admit(now: number): AdmissionDecision {
    if (!this.enabled) return { admitted: true };
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens--;
      return { admitted: true };
    }
    const spacing = 1000 / this.rate;
    const nextToken = now + (1 - this.tokens) * spacing;
    const slot = Math.max(this.promisedUntil, nextToken);
    this.promisedUntil = slot + spacing;
    this.unreported++;
    let report: number | undefined;
    if (now - this.reportedAt >= REPORT_EVERY_MS) {
      report = this.unreported;
      this.unreported = 0;
      this.reportedAt = now;
    }
    return { admitted: false, retryAfterMs: Math.max(1, Math.ceil(slot - now)), report };
  }

  private refill(now: number): void {
    const elapsed = now - this.refilledAt;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
    this.refilledAt = now;
  }
}
