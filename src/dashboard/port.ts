import type { ClosedSlaveInfo, CustomInput, MasterEvents, SlaveInfo } from "../model.js";

/*
 * The dashboard's ports: what it needs of the master and of the metrics,
 * declared here in terms of model.ts only. The dashboard is an adapter; if
 * it named the Master class, src/master.ts (which loads the dashboard) and
 * the dashboard would import each other. Master satisfies DashboardMaster
 * structurally, and a test can hand the dashboard a fake.
 */

/** The fleet events the live feed follows. */
export type DashboardEvent = "slave:connected" | "slave:evicted" | "slave:disconnected";

/** What the dashboard uses of a master: a few reads, two sends and the fleet events. */
export interface DashboardMaster {
  readonly id: string;
  /** Connected slaves now. */
  readonly size: number;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  /** Slaves that left, newest first, as far as the bounded history reaches. */
  recentlyClosed(): ClosedSlaveInfo[];
  /** Connected slaves, those matching `selector` when given; INVALID_ARGUMENT for a malformed one. */
  slaves(options?: { selector?: string }): SlaveInfo[];
  /** Sends to one slave; returns 1 if it was written, 0 if no such slave is connected or it does not read. */
  send(slaveId: string, custom: CustomInput): number;
  /** Sends to every slave, or those matching `selector`; returns how many it was written to. */
  broadcast(custom: CustomInput, options?: { selector?: string }): number;
  on<E extends DashboardEvent>(event: E, listener: (...args: MasterEvents[E]) => void): unknown;
  off<E extends DashboardEvent>(event: E, listener: (...args: MasterEvents[E]) => void): unknown;
}

/** Something that renders Prometheus text: a MasterMetrics' registry. */
export interface MetricsSource {
  readonly registry: { metrics(): Promise<string>; readonly contentType: string };
}
