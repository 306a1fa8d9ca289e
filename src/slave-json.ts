import type { FleetSlaveInfo, SlaveInfo } from "./model.js";

/**
 * One slave as JSON, the one shape every NetSync output uses: the
 * dashboard's /api/slaves and `netsync slaves --json`. Times are Unix ms and
 * counters plain numbers (no ISO strings, no int64 strings, no "0.03s"
 * durations), so a script reads both the same way.
 */
export interface SlaveJson {
  id: string;
  labels: SlaveInfo["labels"];
  peer: string;
  /** When its stream was accepted, Unix ms. */
  connectedAt: number;
  /** When the master last heard from it, Unix ms. */
  lastSeen: number;
  /** RTT of the latest answered Ping in ms; null before the first Pong. */
  rttMs: number | null;
  pingsSent: number;
  pongsReceived: number;
  commandsSent: number;
  /** The master holding its stream, where the answer spans a cluster; absent where only one master's slaves are listed. */
  masterId?: string;
}

export function slaveJson(slave: SlaveInfo | FleetSlaveInfo | (SlaveInfo & { readonly masterId?: string })): SlaveJson {
  const json: SlaveJson = {
    id: slave.id,
    labels: slave.labels,
    peer: slave.peer,
    connectedAt: slave.connectedAt.getTime(),
    lastSeen: slave.lastSeen.getTime(),
    rttMs: slave.rttMs ?? null,
    pingsSent: slave.pingsSent,
    pongsReceived: slave.pongsReceived,
    commandsSent: slave.commandsSent,
  };
  if ("masterId" in slave && slave.masterId !== undefined) json.masterId = slave.masterId;
  return json;
}
