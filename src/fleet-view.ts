import { create } from "@bufbuild/protobuf";
import { type Reply, ReplySchema } from "../gen/netsync/v1/netsync_pb.js";
import type { ClusterMember, ClusterReply, ClusterSlave, ClusterState } from "./cluster/types.js";
import type { SlaveInfo } from "./fleet/slave-connection.js";
import type { SelectOptions } from "./master.js";

/**
 * The Master's cluster-wide answers (Master.fleet(), routeSend(),
 * routeRequest(), broadcastFleet(), masters()) and their conversion from the
 * cluster core's plain messages. Only types reach into src/cluster, so a
 * master without a cluster loads no NATS code through this file.
 */

/** A slave anywhere in the cluster, with the id of the master holding its stream. */
export interface FleetSlaveInfo extends SlaveInfo {
  readonly masterId: string;
}

/** A master of the cluster as the answering master knows it. */
export interface MasterInfo {
  readonly id: string;
  /** "host:port" its slaves and admin clients dial. */
  readonly address: string;
  readonly slavesHeld: number;
  /** When the answering master last heard from it (now, for itself). */
  readonly lastHeard: Date;
  /** Whether it is the answering master. */
  readonly self: boolean;
}

/** Whether a master is in a cluster and, if so, its link to NATS. */
export type ClusterStatus = "off" | ClusterState;

export interface FleetOptions extends SelectOptions {
  /** How long to wait for each other master, in ms. Default the cluster's gatherTimeout (1 s). */
  timeout?: number;
}

/** Fleet-wide answers are partial: `unanswered` names the masters whose part is missing. */
export interface FleetView {
  slaves: FleetSlaveInfo[];
  /** The masters whose slaves are listed, the answering one first. */
  masters: MasterInfo[];
  /** Known masters that did not answer in time (every other one while NATS is unreachable). */
  unanswered: string[];
  /** False without a cluster, or while NATS is unreachable: then only local slaves are listed. */
  clusterAvailable: boolean;
}

export interface FleetBroadcastResult {
  written: number;
  /** How many on each master that answered, by master id. */
  byMaster: Record<string, number>;
  unanswered: string[];
  clusterAvailable: boolean;
}

/** Where a routed send was served. */
export interface RoutedSendResult {
  written: boolean;
  masterId: string;
}

/** A slave's Reply and the master that held the slave. */
export interface RoutedReplyResult {
  reply: Reply;
  masterId: string;
}

export function fleetSlaveOf(slave: ClusterSlave): FleetSlaveInfo {
  return {
    id: slave.id,
    peer: slave.peer,
    connectedAt: new Date(slave.connectedAt),
    lastSeen: new Date(slave.lastSeen),
    rttMs: slave.rttMs,
    pingsSent: slave.pingsSent,
    pongsReceived: slave.pongsReceived,
    commandsSent: slave.commandsSent,
    labels: slave.labels,
    masterId: slave.masterId,
  };
}

export function clusterSlaveOf(slave: SlaveInfo, masterId: string): ClusterSlave {
  const out: ClusterSlave = {
    id: slave.id,
    peer: slave.peer,
    connectedAt: slave.connectedAt.getTime(),
    lastSeen: slave.lastSeen.getTime(),
    pingsSent: slave.pingsSent,
    pongsReceived: slave.pongsReceived,
    commandsSent: slave.commandsSent,
    labels: { ...slave.labels },
    masterId,
  };
  if (slave.rttMs !== undefined) out.rttMs = slave.rttMs;
  return out;
}

export function masterInfoOf(member: ClusterMember): MasterInfo {
  return {
    id: member.id,
    address: member.address,
    slavesHeld: member.slavesHeld,
    lastHeard: new Date(member.lastHeard),
    self: member.self,
  };
}

export function replyOf(reply: ClusterReply): Reply {
  return create(ReplySchema, { result: { case: reply.case, value: reply.value } });
}

export function clusterReplyOf(reply: Reply): ClusterReply {
  return reply.result.case === "error" ? { case: "error", value: reply.result.value } : { case: "data", value: reply.result.value ?? "" };
}
