import { type Epoch, sameEpoch } from "./epoch.js";

/**
 * Damps two live slaves fighting over one id (each reconnects when the other
 * replaces it, forever). The policy, the same on every master holding the
 * id (each hears every claim of an id it holds, on the id's own subject;
 * the Claims count only contested ids, see claims.ts):
 *
 * - every distinct claim (id, epoch) is counted per id over a sliding window
 *   of `window` ms; re-announcing the same epoch (after a reconnect, or to
 *   answer an older claim) does not count;
 * - claims 1 to `limit` within the window are acted on (newest wins);
 * - the claim that would be number `limit + 1` starts a cool-down of
 *   `cooldown` ms for that id: it and every claim of the id during the
 *   cool-down are held back (not published, and not acted on when received);
 * - when the cool-down ends, `onCooldownEnd(id)` runs: each master
 *   re-announces the connection it holds for the id, the newest wins once,
 *   and counting starts afresh.
 *
 * So one id causes at most `limit - 1` replacements per window, then none
 * for `cooldown`, then one: with the defaults (3 in 10 s, 30 s) a fight
 * costs about one kick every 15 s instead of one per reconnect backoff.
 * During a cool-down both connections stay up; routed messages reach one
 * of them (route subscriptions are a queue group).
 */
export class ClaimDamper {
  private readonly recent = new Map<string, { at: number; epoch: Epoch }[]>();
  private readonly cooling = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly limit: number,
    private readonly window: number,
    private readonly cooldown: number,
    private readonly onCooldownEnd: (slaveId: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a claim; false if it must be held back (the id is cooling down, or this claim starts a cool-down). */
  admit(slaveId: string, epoch: Epoch): boolean {
    if (this.cooling.has(slaveId)) return false;
    const now = this.now();
    const claims = (this.recent.get(slaveId) ?? []).filter((c) => now - c.at < this.window);
    if (claims.some((c) => sameEpoch(c.epoch, epoch))) {
      this.recent.set(slaveId, claims);
      return true;
    }
    if (claims.length >= this.limit && this.cooldown > 0) {
      this.recent.delete(slaveId);
      const timer = setTimeout(() => {
        this.cooling.delete(slaveId);
        this.onCooldownEnd(slaveId);
      }, this.cooldown);
      timer.unref();
      this.cooling.set(slaveId, timer);
      return false;
    }
    claims.push({ at: now, epoch });
    this.recent.set(slaveId, claims);
    return true;
  }

  /** Whether `slaveId` has a window open or is cooling down: it was contested lately. */
  tracks(slaveId: string): boolean {
    return this.recent.has(slaveId) || this.cooling.has(slaveId);
  }

  /** Ids with a window open or cooling down. */
  get size(): number {
    return this.recent.size + this.cooling.size;
  }

  /** Whether claims of `slaveId` are being held back. */
  damped(slaveId: string): boolean {
    return this.cooling.has(slaveId);
  }

  /** Forgets windows that ended (call now and then so ids seen once do not pile up). */
  sweep(): void {
    const now = this.now();
    for (const [id, claims] of this.recent) {
      if (claims.every((c) => now - c.at >= this.window)) this.recent.delete(id);
    }
  }

  /** Cancels every cool-down timer, without running their callbacks. */
  clear(): void {
    for (const timer of this.cooling.values()) clearTimeout(timer);
    this.cooling.clear();
    this.recent.clear();
  }
}
