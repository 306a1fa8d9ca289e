import { create } from "@bufbuild/protobuf";
import { type Reply, ReplySchema } from "../../gen/netsync/v1/netsync_pb.js";
import type { CloseReason, FleetSlaveInfo, MasterInfo, SlaveInfo, WatchEvent } from "../model.js";
import type { ClusterEvent } from "./events.js";
import type { ClusterMember, ClusterReply, ClusterSlave } from "./types.js";

/**
 * Between the cluster's wire data (plain numbers, a Reply's oneof as JSON)
 * and the master's model (Dates, protobuf messages): the only place the two
 * meet.
 */

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

/** A local slave event as it goes out to the other masters. */
export function clusterEventOf(event: WatchEvent & { slave: FleetSlaveInfo; kind: ClusterEvent["kind"] }): ClusterEvent {
  const out: ClusterEvent = {
    kind: event.kind,
    at: event.at.getTime(),
    slave: clusterSlaveOf(event.slave, event.masterId),
    details: event.details,
  };
  if (event.reason) out.reason = event.reason;
  return out;
}

/** Another master's slave event, as a watch delivers it. */
export function watchEventOf(event: ClusterEvent): WatchEvent {
  const out: WatchEvent = {
    kind: event.kind,
    slave: fleetSlaveOf(event.slave),
    masterId: event.slave.masterId,
    at: new Date(event.at),
    details: event.details,
  };
  if (event.reason) out.reason = event.reason as CloseReason;
  return out;
}
