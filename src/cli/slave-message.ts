import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type ClosedSlave, CloseReason, type Slave as SlaveMessage, SlaveSchema } from "../../gen/netsync/v1/admin_pb.js";
import type { SlaveJson } from "../slave-json.js";

/*
 * The admin API's protobuf Slave in the JSON shape /api/slaves uses
 * (slave-json.ts): protobuf's own JSON form would print Timestamps as ISO
 * strings, uint64 as strings and the RTT as "0.0326s".
 */

export function slaveMessageJson(s: SlaveMessage): SlaveJson {
  return {
    id: s.id,
    labels: { ...s.labels },
    peer: s.peer,
    connectedAt: s.connectedAt ? timestampMs(s.connectedAt) : 0,
    lastSeen: s.lastSeen ? timestampMs(s.lastSeen) : 0,
    rttMs: s.rtt ? Number(s.rtt.seconds) * 1000 + s.rtt.nanos / 1e6 : null,
    pingsSent: Number(s.pingsSent),
    pongsReceived: Number(s.pongsReceived),
    commandsSent: Number(s.commandsSent),
    masterId: s.masterId,
  };
}

/** A closed slave: the slave's shape plus when, why and the details; `closedAt` tells it from a connected one. */
export interface ClosedSlaveJson extends SlaveJson {
  closedAt: number;
  reason: string;
  details: string;
}

export function closedSlaveJson(c: ClosedSlave): ClosedSlaveJson {
  return {
    ...slaveMessageJson(c.slave ?? create(SlaveSchema)),
    closedAt: c.closedAt ? timestampMs(c.closedAt) : 0,
    reason: closeReasonName(c.reason),
    details: c.details,
  };
}

export function closeReasonName(reason: CloseReason): string {
  return CloseReason[reason]?.toLowerCase() ?? String(reason);
}
