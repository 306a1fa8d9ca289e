import { EventEmitter } from "node:events";
import type { ClusterNode } from "../../src/cluster/cluster-node.js";
import { compareEpochs, type Epoch, EpochClock } from "../../src/cluster/epoch.js";
import type { ClusterReply, ClusterSlave, LocalBatchHandlers, LocalFleet } from "../../src/cluster/types.js";
import { Code } from "../../src/code.js";
import { NetSyncError } from "../../src/errors.js";

interface FakeSlave {
  slave: ClusterSlave;
  epoch: Epoch;
}

export interface FakeFleetEvents {
  /** The cluster ended a local connection: a newer one exists on `byMaster`. */
  replaced: [slaveId: string, byMaster: string];
  sent: [slaveId: string, data: string];
}

/** "k=v,k2!=v2" against labels (enough of the selector syntax for these tests). */
function matches(labels: Record<string, string>, selector?: string): boolean {
  if (!selector) return true;
  return selector.split(",").every((term) => {
    const negated = term.includes("!=");
    const [key, value] = term.split(negated ? "!=" : "=") as [string, string];
    return negated ? labels[key] !== value : labels[key] === value;
  });
}

/**
 * A master as the cluster core sees it, without gRPC: slaves are entries
 * that answer requests with "<id>:<data>" (or per-slave handlers), and every
 * send is recorded.
 */
export class FakeFleet extends EventEmitter<FakeFleetEvents> implements LocalFleet {
  readonly held = new Map<string, FakeSlave>();
  readonly sentLog: { slaveId: string; data: string }[] = [];
  readonly replacedLog: { slaveId: string; byMaster: string; epoch: Epoch }[] = [];
  readonly clock: EpochClock;
  node: ClusterNode | undefined;

  constructor(
    readonly id: string,
    readonly address = `127.0.0.1:${50000 + Math.floor(Math.random() * 10000)}`,
  ) {
    super();
    this.clock = new EpochClock(id);
  }

  get size(): number {
    return this.held.size;
  }

  /** A slave connects here: registered locally, then announced to the cluster. */
  connect(slaveId: string, labels: Record<string, string> = {}): Epoch {
    const epoch = this.clock.next();
    const now = Date.now();
    const slave: ClusterSlave = {
      id: slaveId,
      peer: "127.0.0.1:1",
      connectedAt: now,
      lastSeen: now,
      pingsSent: 0,
      pongsReceived: 0,
      commandsSent: 0,
      labels,
      masterId: this.id,
    };
    this.held.set(slaveId, { slave, epoch });
    this.node?.slaveAdded(slaveId, epoch);
    return epoch;
  }

  /** A slave's stream ends; `epoch` defaults to its current one. */
  disconnect(slaveId: string, epoch?: Epoch): void {
    const entry = this.held.get(slaveId);
    const which = epoch ?? entry?.epoch;
    if (!which) return;
    if (entry && compareEpochs(entry.epoch, which) === 0) this.held.delete(slaveId);
    this.node?.slaveRemoved(slaveId, which);
  }

  slaves(selector?: string): ClusterSlave[] {
    return Array.from(this.held.values(), (e) => e.slave).filter((s) => matches(s.labels, selector));
  }

  page(selector: string | undefined, after: string | undefined, inclusive: boolean, limit: number, scanLimit: number, maxBytes = Infinity) {
    const ids = [...this.held.keys()].sort().filter((id) => after === undefined || id > after || (inclusive && id === after));
    const slaves: ClusterSlave[] = [];
    let last: string | undefined;
    let scanned = 0;
    let bytes = 0;
    for (const id of ids) {
      if (slaves.length >= limit || scanned >= scanLimit) return { slaves, last, done: false };
      const { slave } = this.held.get(id)!;
      if (matches(slave.labels, selector)) {
        bytes += Buffer.byteLength(JSON.stringify(slave)) + 1;
        if (bytes > maxBytes && slaves.length > 0) return { slaves, last, done: false };
        slaves.push(slave);
      }
      scanned++;
      last = id;
    }
    return { slaves, last, done: true };
  }

  pageIds(
    selector: string | undefined,
    after: string | undefined,
    inclusive: boolean,
    limit: number,
    scanLimit: number,
    maxBytes = Infinity,
  ) {
    // Its own walk, not page(): a test can tell an ids-only answer from a listing of the slaves.
    const ids: string[] = [];
    let last: string | undefined;
    let bytes = 0;
    for (const id of this.ids(selector)) {
      if (!(after === undefined || id > after || (inclusive && id === after))) continue;
      if (ids.length >= Math.min(limit, scanLimit)) return { ids, last, done: false };
      bytes += id.length + 3;
      if (bytes > maxBytes && ids.length > 0) return { ids, last, done: false };
      ids.push(id);
      last = id;
    }
    return { ids, last, done: true };
  }

  ids(selector?: string): string[] {
    return this.slaves(selector)
      .map((slave) => slave.id)
      .sort();
  }

  rttHistogram(): number[] {
    return [];
  }

  send(slaveId: string, data: string): boolean {
    if (!this.held.has(slaveId)) return false;
    this.sentLog.push({ slaveId, data });
    this.emit("sent", slaveId, data);
    return true;
  }

  async requestReply(slaveId: string, data: string, timeoutMs: number): Promise<ClusterReply> {
    if (!this.held.has(slaveId)) throw new NetSyncError(`no slave with id "${slaveId}"`, Code.NOT_FOUND);
    if (data === "hang") {
      await new Promise((resolve) => setTimeout(resolve, timeoutMs));
      throw new NetSyncError(`no reply from ${slaveId} within ${timeoutMs} ms`, Code.DEADLINE_EXCEEDED);
    }
    if (data === "fail") return { case: "error", value: "handler failed" };
    return { case: "data", value: `${this.id}:${slaveId}:${data}` };
  }

  /** requestReply() per slave sent to, each outcome to `handlers` (enough of the fleet's request batch for the node). */
  requestMany(data: string, _commandId: string, timeoutMs: number, handlers: LocalBatchHandlers) {
    let closed = false;
    return {
      send: (slaveId: string) => {
        this.requestReply(slaveId, data, timeoutMs).then(
          (reply) => closed || handlers.reply(slaveId, reply),
          (err: unknown) => closed || handlers.fail(slaveId, NetSyncError.from(err, Code.INTERNAL)),
        );
      },
      close: () => {
        closed = true;
      },
    };
  }

  async broadcast(data: string, selector?: string): Promise<number> {
    const targets = this.slaves(selector);
    for (const s of targets) this.sentLog.push({ slaveId: s.id, data });
    return targets.length;
  }

  replaced(slaveId: string, epoch: Epoch, byMaster: string): void {
    const entry = this.held.get(slaveId);
    if (!entry || compareEpochs(entry.epoch, epoch) >= 0) return;
    this.replacedLog.push({ slaveId, byMaster, epoch: entry.epoch });
    this.held.delete(slaveId);
    this.node?.slaveRemoved(slaveId, entry.epoch);
    this.emit("replaced", slaveId, byMaster);
  }
}
