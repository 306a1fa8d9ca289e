/** A command kept for a slave that is not connected, until it connects or `expiresAt` passes. */
export interface PendingDelivery {
  jobId: string;
  slaveId: string;
  /** performance.now() past which it is expired. */
  expiresAt: number;
}

export interface PendingBounds {
  /** Commands kept for one slave at once. */
  perSlave: number;
  /** Commands kept for every slave at once. */
  total: number;
}

/**
 * Commands waiting for their slave, per slave in the order they were kept,
 * in memory, bounded per slave and in total: no bound is a way to lose a
 * master to memory when a large job targets slaves that never come back.
 * A refusal is the job's answer for that slave ("expired", saying which
 * bound), never a silent drop.
 */
export class PendingDeliveries {
  private readonly bySlave = new Map<string, PendingDelivery[]>();
  private count = 0;

  constructor(private readonly bounds: PendingBounds) {}

  get size(): number {
    return this.count;
  }

  /** Slaves with something pending. */
  slaves(): IterableIterator<string> {
    return this.bySlave.keys();
  }

  has(slaveId: string): boolean {
    return this.bySlave.has(slaveId);
  }

  /** Keeps a delivery; returns why it was refused, or undefined once kept. */
  add(delivery: PendingDelivery): string | undefined {
    if (this.count >= this.bounds.total) {
      return `the master already keeps ${this.bounds.total} pending deliveries (its total bound)`;
    }
    const queue = this.bySlave.get(delivery.slaveId);
    if (queue && queue.length >= this.bounds.perSlave) {
      return `${this.bounds.perSlave} commands are already pending for slave ${delivery.slaveId} (the per-slave bound)`;
    }
    if (queue) queue.push(delivery);
    else this.bySlave.set(delivery.slaveId, [delivery]);
    this.count++;
    return undefined;
  }

  /** Takes every delivery pending for `slaveId`, oldest first. */
  take(slaveId: string): PendingDelivery[] {
    const queue = this.bySlave.get(slaveId);
    if (!queue) return [];
    this.bySlave.delete(slaveId);
    this.count -= queue.length;
    return queue;
  }

  /** Removes the deliveries of one job (it expired or ended); returns them. */
  removeJob(jobId: string, slaveIds: Iterable<string>): PendingDelivery[] {
    const removed: PendingDelivery[] = [];
    for (const slaveId of slaveIds) {
      const queue = this.bySlave.get(slaveId);
      if (!queue) continue;
      const kept = queue.filter((d) => d.jobId !== jobId);
      if (kept.length === queue.length) continue;
      for (const d of queue) if (d.jobId === jobId) removed.push(d);
      this.count -= queue.length - kept.length;
      if (kept.length === 0) this.bySlave.delete(slaveId);
      else this.bySlave.set(slaveId, kept);
    }
    return removed;
  }

  clear(): PendingDelivery[] {
    const all = [...this.bySlave.values()].flat();
    this.bySlave.clear();
    this.count = 0;
    return all;
  }
}
