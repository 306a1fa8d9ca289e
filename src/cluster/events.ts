import type { ClusterSlave } from "./types.js";

/**
 * A slave event as masters exchange it on the cluster's events subject, so
 * every master's watchers (AdminService.Watch, the dashboard's feed) see the
 * whole fleet. Plain numbers, like ClusterSlave.
 */
export interface ClusterEvent {
  kind: "connected" | "disconnected" | "evicted" | "replaced";
  /** When it happened, ms since the epoch, by the sending master's clock. */
  at: number;
  /** The slave, with its master (the sender). */
  slave: ClusterSlave;
  details: string;
  /** Why it left (a CloseReason); absent for "connected". */
  reason?: string;
}

const KINDS = new Set(["connected", "disconnected", "evicted", "replaced"]);
const REASONS = new Set(["disconnected", "evicted", "replaced", "shutdown", "error"]);

/** Whether `value` (from the network) is a well-formed ClusterEvent. */
export function isClusterEvent(value: unknown): value is ClusterEvent {
  if (typeof value !== "object" || value === null) return false;
  const e = value as Record<string, unknown>;
  const slave = e.slave as Record<string, unknown> | undefined;
  return (
    typeof e.kind === "string" &&
    KINDS.has(e.kind) &&
    Number.isFinite(e.at) &&
    typeof e.details === "string" &&
    (e.reason === undefined || (typeof e.reason === "string" && REASONS.has(e.reason))) &&
    typeof slave === "object" &&
    slave !== null &&
    typeof slave.id === "string" &&
    typeof slave.peer === "string" &&
    typeof slave.masterId === "string" &&
    Number.isFinite(slave.connectedAt) &&
    Number.isFinite(slave.lastSeen) &&
    typeof slave.labels === "object" &&
    slave.labels !== null
  );
}
