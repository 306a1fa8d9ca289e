/** What DuplicateIds decides about a new stream for an id. */
export type DuplicateDecision =
  | { refused: false }
  /** `started`: this refusal starts the cool-down (the one that warns); `count`: connections of the id counted in the window. */
  | { refused: true; started: boolean; retryAfterMs: number; count: number };

/**
 * Damps two live slaves that share an id on one master (each reconnects
 * when the other replaces it, forever), with the policy of a cluster's
 * claim damper (cluster/claim-damper.ts), so one id behaves the same on a
 * lone master and across masters:
 *
 * - every accepted connection of an id is counted over a sliding window of
 *   `window` ms;
 * - the newest wins while at most `limit` were counted within the window;
 * - the next one, when it would replace a live holder, starts a cool-down
 *   of `cooldown` ms: it and every new connection of the id during the
 *   cool-down are refused, and the holder keeps its stream;
 * - a connection of the id with no holder (it left) is always accepted;
 * - after the cool-down the newest wins once and counting starts afresh.
 *
 * So a fight costs at most `limit - 1` kicks, then none for `cooldown`.
 * Times are read from the clock given (no timer); the maps hold only ids
 * seen within the last window or cool-down and are swept as they grow.
 */
export class DuplicateIds {
  private readonly recent = new Map<string, number[]>();
  /** Ids cooling down, with the time the cool-down ends. */
  private readonly cooling = new Map<string, number>();
  /** Size of `recent` plus `cooling` at which the next sweep runs. */
  private sweepAt = 1_024;

  constructor(
    private readonly limit: number,
    private readonly window: number,
    private readonly cooldown: number,
  ) {}

  /** Whether damping is on (a limit or cool-down of 0 lets the newest always win). */
  get enabled(): boolean {
    return this.limit > 0 && this.cooldown > 0;
  }

  /** Counts a new connection of `slaveId` at `now` (ms); `held`: a live connection of the id would be replaced. */
  admit(slaveId: string, held: boolean, now: number): DuplicateDecision {
    if (!this.enabled) return { refused: false };
    if (this.recent.size + this.cooling.size >= this.sweepAt) this.sweep(now);
    const until = this.cooling.get(slaveId);
    if (until !== undefined) {
      if (now < until) {
        if (held) return { refused: true, started: false, retryAfterMs: Math.ceil(until - now), count: 0 };
        return { refused: false };
      }
      this.cooling.delete(slaveId);
    }
    const times = (this.recent.get(slaveId) ?? []).filter((t) => now - t < this.window);
    if (held && times.length >= this.limit) {
      this.recent.delete(slaveId);
      this.cooling.set(slaveId, now + this.cooldown);
      return { refused: true, started: true, retryAfterMs: this.cooldown, count: times.length + 1 };
    }
    times.push(now);
    // Only the last `limit` times matter; a lone slave reconnecting fast does not grow the list.
    if (times.length > this.limit) times.shift();
    this.recent.set(slaveId, times);
    return { refused: false };
  }

  /** Whether `slaveId` is cooling down at `now`. */
  damped(slaveId: string, now: number): boolean {
    const until = this.cooling.get(slaveId);
    return until !== undefined && now < until;
  }

  /** Forgets ended windows and cool-downs. */
  private sweep(now: number): void {
    for (const [id, times] of this.recent) if (times.every((t) => now - t >= this.window)) this.recent.delete(id);
    for (const [id, until] of this.cooling) if (now >= until) this.cooling.delete(id);
    this.sweepAt = Math.max(1_024, 2 * (this.recent.size + this.cooling.size));
  }
}
