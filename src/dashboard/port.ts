import type {
  ClosedSlaveInfo,
  ClusterStatus,
  CustomInput,
  FleetPage,
  FleetSummary,
  FleetView,
  MasterInfo,
  SlaveInfo,
  WatchListener,
} from "../model.js";

/*
 * The dashboard's ports: what it needs of the master and of the metrics,
 * declared here in terms of model.ts only. The dashboard is an adapter; if
 * it named the Master class, src/master.ts (which loads the dashboard) and
 * the dashboard would import each other. Master satisfies DashboardMaster
 * structurally, and a test can hand the dashboard a fake.
 */

/**
 * What the dashboard uses of a master: a few reads, two sends, the watch (the
 * live feed: local events and, in a cluster, every master's) and, in a
 * cluster, the fleet-wide view (every master's slaves, the masters).
 */
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
  /** Follows every slave and master event in reach; returns the function that stops it. */
  watch(listener: WatchListener): () => void;
  /** "off" without a cluster: then the dashboard shows the local fleet only, as it always did. */
  readonly clusterState: ClusterStatus;
  /** Every slave of the cluster (those `selector` matches) with its master; partial, naming the masters that did not answer. */
  fleet(options?: { selector?: string }): Promise<FleetView>;
  /** One page of fleet() in (id, master) order after `pageToken`; each master answers only its next slice. */
  fleetPage(options: { selector?: string; pageSize?: number; pageToken?: string }): Promise<FleetPage>;
  /** Every master's count and RTT percentiles, listing nobody. */
  fleetSummary(): Promise<FleetSummary>;
  /** The masters known alive, this one first. */
  masters(): MasterInfo[];
}

/** Something that renders Prometheus text: a MasterMetrics' registry. */
export interface MetricsSource {
  readonly registry: { metrics(): Promise<string>; readonly contentType: string };
}
