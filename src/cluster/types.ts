import type { NetSyncError } from "../errors.js";
import type { ClusterState, Epoch } from "../model.js";

// A fleet broadcast and a routed send carry nothing that needs converting: the node answers with the model's own
// FleetBroadcastResult and RoutedSendResult (src/model.ts), not with copies of them.

export type { ClusterState };

/** One slave as the cluster exchanges it: the master's SlaveInfo as plain numbers, its labels and its holder. */
export interface ClusterSlave {
  id: string;
  peer: string;
  /** When its stream was accepted, ms since the epoch. */
  connectedAt: number;
  /** When its master last heard from it, ms since the epoch. */
  lastSeen: number;
  rttMs?: number;
  pingsSent: number;
  pongsReceived: number;
  commandsSent: number;
  labels: Record<string, string>;
  /** Id of the master holding its stream. */
  masterId: string;
}

/** What a slave answered to a request: its Reply's oneof. */
export interface ClusterReply {
  case: "data" | "error";
  value: string;
}

/**
 * The local master as the cluster core sees it: the only way the core reads
 * or touches local slaves. ClusterScope implements it over the fleet; tests use a fake.
 */
/** What becomes of each local slave of a LocalFleet.requestMany() batch: its reply, or why there is none (a NetSyncError). */
export interface LocalBatchHandlers {
  reply(slaveId: string, reply: ClusterReply): void;
  fail(slaveId: string, error: NetSyncError): void;
}

export interface LocalFleet {
  /** This master's id (its `name`), e.g. "m1". */
  readonly id: string;
  /** "host:port" slaves and admin clients dial. */
  readonly address: string;
  /** Slaves held. */
  readonly size: number;
  /** Snapshot of local slaves, `selector` already applied. */
  slaves(selector?: string): ClusterSlave[];
  /**
   * The first `limit` local slaves after `after` (from it when `inclusive`)
   * in id order that `selector` matches, examining at most `scanLimit` ids
   * and ending before the JSON of the slaves would pass `maxBytes` (the first
   * is always there); `last` is the last id examined, `done` that none is
   * left after it.
   */
  page(
    selector: string | undefined,
    after: string | undefined,
    inclusive: boolean,
    limit: number,
    scanLimit: number,
    maxBytes?: number,
  ): { slaves: ClusterSlave[]; last: string | undefined; done: boolean };
  /** As page(), the ids alone: what a job resolving its targets needs (no slave is converted or weighed in full). */
  pageIds(
    selector: string | undefined,
    after: string | undefined,
    inclusive: boolean,
    limit: number,
    scanLimit: number,
    maxBytes?: number,
  ): { ids: string[]; last: string | undefined; done: boolean };
  /** The ids of the local slaves `selector` matches, sorted. */
  ids(selector?: string): string[];
  /** The RTTs of the local slaves as a histogram on the wire: [bucket, count, …] (src/fleet/rtt-histogram.ts). */
  rttHistogram(): number[];
  /**
   * Writes a Custom to a local slave; false if unknown or not keeping up. `commandId` (a routed call's, the
   * same on every attempt) lets the slave run a command it may get twice only once (Custom.command_id).
   */
  send(slaveId: string, data: string, commandId?: string): boolean;
  /** Writes a Custom and waits for the Reply; rejects with a NetSyncError (NOT_FOUND, DEADLINE_EXCEEDED, …). */
  requestReply(slaveId: string, data: string, timeoutMs: number, commandId?: string): Promise<ClusterReply>;
  /**
   * A job's command to many local slaves (the fleet's request batch): one
   * encoding, each outcome to `handlers` as it comes, a reply in the
   * cluster's wire form; `close()` once they are no longer wanted.
   */
  requestMany(
    data: string,
    commandId: string,
    timeoutMs: number,
    handlers: LocalBatchHandlers,
  ): { send(slaveId: string): void; close(): void };
  /** Writes a Custom to every local slave matching `selector`, paced over turns of the event loop; resolves with how many. */
  broadcast(data: string, selector?: string): Promise<number>;
  /**
   * A newer connection for `slaveId` exists on master `byMaster`: end the
   * local one with UNAVAILABLE "replaced by a newer connection on master
   * <byMaster>" if its epoch is older than `epoch` (the core only calls this
   * when it holds an older epoch, but the fleet must compare: the local
   * connection may have changed since).
   */
  replaced(slaveId: string, epoch: Epoch, byMaster: string): void;
}

/** A master of the cluster as this node knows it. */
export interface ClusterMember {
  id: string;
  address: string;
  slavesHeld: number;
  /** When this node last heard from it, ms since the epoch (now, for itself). */
  lastHeard: number;
  /** Whether it is this node. */
  self: boolean;
}

/** Fleet-wide answers are partial: `unanswered` names the masters whose part is missing. */
export interface FleetSlaves {
  slaves: ClusterSlave[];
  /** The masters whose slaves are listed, this one first. */
  masters: ClusterMember[];
  /** Known masters that did not answer in time (every other one when NATS is unreachable). */
  unanswered: string[];
  /** False when this node was not connected to NATS: only local slaves are listed. */
  clusterAvailable: boolean;
}

/** The ids of the cluster's slaves a selector matches, by master (a job's targets). */
export interface FleetIds {
  /** This master's first, then each other master that answered in full. */
  byMaster: { masterId: string; ids: string[] }[];
  unanswered: string[];
  clusterAvailable: boolean;
}

/** One page of the cluster's fleet, in the cluster's wire data (see src/slave-pages.ts). */
export interface FleetSlavesPage {
  slaves: ClusterSlave[];
  nextPageToken: string;
  /** The masters that answered the page, this one first. */
  masters: ClusterMember[];
  unanswered: string[];
  clusterAvailable: boolean;
}

/** Every answering master's count and RTT histogram. */
export interface FleetCounts {
  /** Merged RTT histogram, [bucket, count, …] pairs of every answering master in turn. */
  rtt: number[][];
  masters: ClusterMember[];
  unanswered: string[];
  clusterAvailable: boolean;
}

/** A routed request's answer in the cluster's wire data: the Reply's oneof, and the master that held the slave. */
export interface RoutedReply {
  reply: ClusterReply;
  masterId: string;
  /** The holder recorded the reply as a job's result (a job's delivery, and a job store open there). */
  recorded?: boolean;
}
