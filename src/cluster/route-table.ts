import { compareEpochs, type Epoch, sameEpoch } from "./epoch.js";

/** One held slave: the epoch of its local connection and whatever handle (a subscription) goes with it. */
export interface Route<H> {
  readonly slaveId: string;
  readonly epoch: Epoch;
  handle: H | undefined;
}

/**
 * The slaves this master holds, by id, each with its connection's epoch.
 * Removal is compare-and-delete: the cleanup of an old connection never
 * drops the route of a newer one under the same id.
 */
export class RouteTable<H> {
  private readonly byId = new Map<string, Route<H>>();

  get size(): number {
    return this.byId.size;
  }

  get(slaveId: string): Route<H> | undefined {
    return this.byId.get(slaveId);
  }

  /**
   * Records `epoch` for `slaveId` unless a newer one is held. Returns the
   * route now in force and whether it is new (no route before).
   */
  add(slaveId: string, epoch: Epoch): { route: Route<H>; added: boolean; stale: boolean } {
    const existing = this.byId.get(slaveId);
    if (existing && compareEpochs(existing.epoch, epoch) > 0) return { route: existing, added: false, stale: true };
    const route: Route<H> = { slaveId, epoch, handle: existing?.handle };
    this.byId.set(slaveId, route);
    return { route, added: existing === undefined, stale: false };
  }

  /** Removes the route of `slaveId` only if it still has exactly `epoch`; returns it if removed. */
  remove(slaveId: string, epoch: Epoch): Route<H> | undefined {
    const existing = this.byId.get(slaveId);
    if (!existing || !sameEpoch(existing.epoch, epoch)) return undefined;
    this.byId.delete(slaveId);
    return existing;
  }

  values(): IterableIterator<Route<H>> {
    return this.byId.values();
  }

  clear(): void {
    this.byId.clear();
  }
}
