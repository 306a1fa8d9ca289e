import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CloseReason as CloseReasonProto, type SlaveSchema } from "../../gen/netsync/v1/admin_pb.js";
import type { CloseReason, SlaveInfo } from "../model.js";

/** A slave as the AdminService sends it (ListSlaves, Watch): one conversion, so both give the same message. */

const CLOSE_REASONS: Record<CloseReason, CloseReasonProto> = {
  evicted: CloseReasonProto.EVICTED,
  disconnected: CloseReasonProto.DISCONNECTED,
  replaced: CloseReasonProto.REPLACED,
  shutdown: CloseReasonProto.SHUTDOWN,
  error: CloseReasonProto.ERROR,
};

export function closeReasonMessage(reason: CloseReason): CloseReasonProto {
  return CLOSE_REASONS[reason];
}

/** Like durationFromMs, but keeps sub-millisecond RTTs (as nanos). */
function toDuration(ms: number): Duration {
  const seconds = Math.floor(ms / 1000);
  return create(DurationSchema, { seconds: BigInt(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) });
}

export function slaveMessage(info: SlaveInfo): MessageInitShape<typeof SlaveSchema> {
  return {
    id: info.id,
    peer: info.peer,
    connectedAt: timestampFromDate(info.connectedAt),
    lastSeen: timestampFromDate(info.lastSeen),
    rtt: info.rttMs === undefined ? undefined : toDuration(info.rttMs),
    pingsSent: BigInt(info.pingsSent),
    pongsReceived: BigInt(info.pongsReceived),
    commandsSent: BigInt(info.commandsSent),
    labels: { ...info.labels },
  };
}
