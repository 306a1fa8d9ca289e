import { compareEpochs, type Epoch, sameEpoch } from "./epoch.js";

/** The newest claim heard for one slave id: which master holds it, since when. */
export interface Holder {
  readonly master: string;
  readonly epoch: Epoch;
}

/**
 * Who holds the slaves this master has dealt with, as the claims it heard
 * (of contested ids it holds), the answers to its lookups and routed calls,
 * and its fleet listings (hints) say it:
 * newest epoch wins, whatever order they arrive in. A cache, bounded to
 * `capacity` ids (the least recently learned go first): an id not in it is
 * asked for on its own subject, which costs one request as well. The router addresses a routed
 * call to the holder named here (one NATS round trip, to one master) instead
 * of to the slave's subject, where every master still subscribed competes in
 * a queue group — a stalled master that has not yet released a slave that
 * moved would get half of those calls and answer none.
 *
 * Entries leave by compare-and-delete: a release names the epoch it ends, so
 * the release of an old connection never erases a newer claim. Callers can
 * wait for a newer claim of one id: a call to a holder that stops answering
 * is sent again to the slave's new holder the moment its claim arrives.
 */
export class HolderDirectory {
  private readonly byId = new Map<string, Holder>();
  private readonly waiters = new Map<string, Set<(holder: Holder) => void>>();

  constructor(private readonly capacity = 100_000) {}

  get size(): number {
    return this.byId.size;
  }

  get(slaveId: string): Holder | undefined {
    return this.byId.get(slaveId);
  }

  /** Records a claim unless a newer one is known; returns whether it is now the holder (and wakes the id's waiters if it changed). */
  learn(slaveId: string, master: string, epoch: Epoch): boolean {
    const known = this.byId.get(slaveId);
    if (known && compareEpochs(known.epoch, epoch) >= 0) return known.master === master && sameEpoch(known.epoch, epoch);
    const holder = { master, epoch };
    // Re-inserted, so the Map's order is the order ids were last learned in: the oldest goes when full.
    if (known) this.byId.delete(slaveId);
    else if (this.byId.size >= this.capacity) this.byId.delete(this.byId.keys().next().value!);
    this.byId.set(slaveId, holder);
    const waiting = this.waiters.get(slaveId);
    if (waiting) for (const wake of [...waiting]) wake(holder);
    return true;
  }

  /**
   * Records that a listing just named `master` as the holder of `slaveId`,
   * unless something is known of the id already. With no epoch of its own,
   * a hint is older than any claim or answer, which replace it as they come.
   */
  hint(slaveId: string, master: string): void {
    if (!this.byId.has(slaveId)) this.learn(slaveId, master, { at: 0, master, seq: 0 });
  }

  /** The connection of `epoch` ended: forgets it unless a newer claim replaced it meanwhile. */
  release(slaveId: string, epoch: Epoch): void {
    const known = this.byId.get(slaveId);
    if (known && sameEpoch(known.epoch, epoch)) this.byId.delete(slaveId);
  }

  /** A master left or expired: none of its claims can be served by it any more. */
  forgetMaster(master: string): number {
    let forgotten = 0;
    for (const [slaveId, holder] of this.byId) {
      if (holder.master !== master) continue;
      this.byId.delete(slaveId);
      forgotten++;
    }
    return forgotten;
  }

  /**
   * Calls `wake` with each claim of `slaveId` newer than what is known now,
   * until the returned function is called (which the caller must do, so no
   * waiter outlives its call).
   */
  onNewer(slaveId: string, wake: (holder: Holder) => void): () => void {
    let set = this.waiters.get(slaveId);
    if (!set) {
      set = new Set();
      this.waiters.set(slaveId, set);
    }
    set.add(wake);
    return () => {
      const current = this.waiters.get(slaveId);
      if (!current) return;
      current.delete(wake);
      if (current.size === 0) this.waiters.delete(slaveId);
    };
  }

  clear(): void {
    this.byId.clear();
  }
}
