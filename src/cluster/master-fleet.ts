import type { Reply } from "../../gen/netsync/v1/netsync_pb.js";
import type { Logger } from "../logger.js";
import type { SlaveInfo } from "../model.js";
import { ClusterNode } from "./cluster-node.js";
import { clusterReplyOf, clusterSlaveOf } from "./convert.js";
import { compareEpochs, type Epoch, EpochClock } from "./epoch.js";
import type { ClusterOptions } from "./options.js";
import type { ClusterObserver } from "./stats.js";
import type { ClusterReply, ClusterSlave, LocalFleet } from "./types.js";

/**
 * What the cluster needs of a Master: its local-only operations (never the
 * ones that fall back to the cluster, or a routed call could bounce back out)
 * and its connections' epochs. The Master builds one from private closures.
 */
export interface LocalMaster {
  readonly id: string;
  readonly address: string;
  readonly size: number;
  slaves(selector?: string): SlaveInfo[];
  send(slaveId: string, data: string): boolean;
  requestReply(slaveId: string, data: string, timeoutMs: number): Promise<Reply>;
  broadcast(data: string, selector?: string): number;
  /** The epoch of the local connection of `slaveId`, if one is held. */
  epochOf(slaveId: string): Epoch | undefined;
  /** Ends the local connection of `slaveId` with UNAVAILABLE if it still has exactly `epoch` (the same object). */
  endReplaced(slaveId: string, epoch: Epoch, byMaster: string): void;
}

/** The Master as the cluster core's {@link LocalFleet}. */
export class MasterFleet implements LocalFleet {
  constructor(private readonly master: LocalMaster) {}

  get id(): string {
    return this.master.id;
  }

  get address(): string {
    return this.master.address;
  }

  get size(): number {
    return this.master.size;
  }

  slaves(selector?: string): ClusterSlave[] {
    const id = this.master.id;
    return this.master.slaves(selector).map((slave) => clusterSlaveOf(slave, id));
  }

  send(slaveId: string, data: string): boolean {
    return this.master.send(slaveId, data);
  }

  async requestReply(slaveId: string, data: string, timeoutMs: number): Promise<ClusterReply> {
    return clusterReplyOf(await this.master.requestReply(slaveId, data, timeoutMs));
  }

  broadcast(data: string, selector?: string): number {
    return this.master.broadcast(data, selector);
  }

  /** Compare-and-delete: only a local connection older than `epoch` ends; a newer local one is kept (the core re-claims it). */
  replaced(slaveId: string, epoch: Epoch, byMaster: string): void {
    const local = this.master.epochOf(slaveId);
    if (local === undefined || compareEpochs(local, epoch) >= 0) return;
    this.master.endReplaced(slaveId, local, byMaster);
  }
}

/** A master's membership: the node (not started) and the clock that stamps its connections. */
export interface MasterCluster {
  node: ClusterNode;
  clock: EpochClock;
}

/**
 * Builds the cluster side of a master; the Master loads this module with a
 * dynamic import() only when it has a `cluster` option, so a master on its
 * own never loads NATS.
 */
export function createMasterCluster(
  master: LocalMaster,
  options: ClusterOptions,
  extras: { observer?: ClusterObserver; logger?: Logger },
): MasterCluster {
  const node = new ClusterNode(new MasterFleet(master), { ...options, ...extras });
  return { node, clock: new EpochClock(master.id) };
}
