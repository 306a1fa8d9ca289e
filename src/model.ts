import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Custom, CustomSchema, Reply } from "../gen/netsync/v1/netsync_pb.js";
import type { Labels } from "./labels.js";
import type { Selector } from "./selector.js";

/**
 * The plain data NetSync's parts exchange and its users read: slaves and
 * their events, the options that pick slaves, masters and the answers of
 * fleet-wide calls. Types only, importing nothing that runs, so every layer
 * (the fleet core, the adapters, the composition root) can share them
 * without importing each other.
 */

/** Why a slave left the registry. */
export type CloseReason = "disconnected" | "evicted" | "replaced" | "shutdown" | "error";

/** A read-only view of one connected slave, as the registry snapshot gives it. */
export interface SlaveInfo {
  readonly id: string;
  /** Remote address of the slave's connection, "host:port". */
  readonly peer: string;
  readonly connectedAt: Date;
  readonly lastSeen: Date;
  /** Round-trip time of the latest answered Ping, in ms; undefined before the first Pong. */
  readonly rttMs: number | undefined;
  readonly pingsSent: number;
  readonly pongsReceived: number;
  readonly commandsSent: number;
  /** Labels the slave declared when it connected. */
  readonly labels: Labels;
}

/** A slave that left, as kept in the registry's bounded history. */
export interface ClosedSlaveInfo {
  readonly slave: SlaveInfo;
  readonly closedAt: Date;
  readonly reason: CloseReason;
  readonly details: string;
}

/** Payload of the master's slave events. */
export interface SlaveEvent {
  slave: SlaveInfo;
  reason: CloseReason | "connected";
  /** Human-readable detail, as logged and as sent in the stream status. */
  details: string;
}

export interface MasterEvents {
  "slave:connected": [SlaveEvent];
  /** Removed for silence (heartbeat timeout) or for not reading its stream. */
  "slave:evicted": [SlaveEvent];
  /** Removed because the stream ended: closed, cancelled, failed, replaced or shut down. */
  "slave:disconnected": [SlaveEvent];
  /** A Custom command sent by a slave. */
  command: [slaveId: string, command: Custom];
  /** The master's own event loop stalled this long; that time is excused from every deadline. */
  stalled: [lagMs: number];
}

/** A Custom command, given as its data or as a message init. */
export type CustomInput = string | MessageInitShape<typeof CustomSchema>;

/** Which slaves a call applies to. */
export interface SelectOptions {
  /** A label selector ("region=eu,role!=db", "tier in (a,b)"), parsed or as text; default every slave. */
  selector?: Selector | string;
}

export interface RequestOptions {
  /** How long to wait for the reply, in ms. Default 10 s. */
  timeout?: number;
}

/**
 * The order of connections to one slave id across masters: the wall-clock
 * time the stream was accepted, then the accepting master's id, then that
 * master's own sequence number. Totally ordered, so every master decides
 * "which is newer" the same way whatever order the claims arrive in (see
 * cluster/epoch.ts). Skewed clocks between masters shift who counts as newer
 * by the skew (run NTP).
 */
export interface Epoch {
  /** Date.now() at accept, made non-decreasing per master by EpochClock. */
  at: number;
  master: string;
  seq: number;
}

/** Connection state of a cluster node to NATS. */
export type ClusterState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

/** Whether a master is in a cluster and, if so, its link to NATS. */
export type ClusterStatus = "off" | ClusterState;

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

/** Options of one page of the fleet-wide listing (Master.fleetPage, AdminService ListSlaves). */
export interface FleetPageOptions extends FleetOptions {
  /** Most slaves in the page (1 or more; 0 or absent: 1,000). Fewer may come: only an empty nextPageToken ends the listing. */
  pageSize?: number;
  /** The nextPageToken of the previous page with the same selector; "" or absent for the first page. */
  pageToken?: string;
  /** Bytes the page's slaves may take in all, as `sizeOf` weighs them; the first slave always fits. Default no bound. */
  maxBytes?: number;
  /** The weight of one slave against `maxBytes`. */
  sizeOf?: (slave: FleetSlaveInfo) => number;
}

/**
 * One page of the fleet in (id, master) order. The token is a position, not
 * a snapshot: a slave that connects or leaves between two pages is listed or
 * not as it was when each page was taken, never twice on one master.
 */
export interface FleetPage {
  slaves: FleetSlaveInfo[];
  /** Pass it as pageToken for the next page; "" when the listing is complete. */
  nextPageToken: string;
  /** The masters that answered this page (with their counts), the answering one first. */
  masters: MasterInfo[];
  /** Known masters that did not answer this page in time: their slaves are missing from it. */
  unanswered: string[];
  clusterAvailable: boolean;
}

/** Fleet-wide counts without listing anyone: what the dashboard's summary shows. */
export interface FleetSummary {
  /** Slaves held by the masters that answered. */
  connected: number;
  /** Median and 99th percentile RTT of those slaves, ms (null when none has one yet); in a cluster within ±2.2 % (merged histograms). */
  rttP50: number | null;
  rttP99: number | null;
  /** The masters that answered, with their counts, the answering one first. */
  masters: MasterInfo[];
  /** Known masters that did not answer: their slaves are missing from the figures. */
  unanswered: string[];
  clusterAvailable: boolean;
}

export interface FleetBroadcastResult {
  written: number;
  /** How many on each master that answered, by master id. */
  byMaster: Record<string, number>;
  /** Known masters that did not acknowledge the broadcast in time (the gather timeout), or are gone. */
  unanswered: string[];
  clusterAvailable: boolean;
  /**
   * Masters that acknowledged the broadcast (so they are writing it to their
   * slaves) but whose count did not arrive within the cluster's
   * `broadcastTimeout`: not in `byMaster` nor `written`, and not unanswered.
   * Present only when there is one.
   */
  pending?: string[];
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
  /** Set when the holding master recorded the reply as a job's result in the cluster's job store (a job's routed delivery). */
  recorded?: boolean;
}

/** What a watch reports (AdminService.Watch, Master.watch, the dashboard's feed). */
export type WatchEventKind = "connected" | "disconnected" | "evicted" | "replaced" | "master_joined" | "master_left";

/** One slave or master event, local or from another master of the cluster. */
export interface WatchEvent {
  kind: WatchEventKind;
  /** The slave it happened to, with its master; undefined for master events. */
  slave?: FleetSlaveInfo;
  /** The master it happened on (for master events, the master that joined or left). */
  masterId: string;
  at: Date;
  details: string;
  /** Why the slave left: only for disconnected, evicted and replaced. */
  reason?: CloseReason;
}

/** Receives watch events; must return quickly and never throw (it runs inside the fleet's event path). */
export type WatchListener = (event: WatchEvent) => void;

// --- jobs ----------------------------------------------------------------------

/** What became of a job's command on one slave (AdminService's JobResultStatus). */
export type JobResultStatus = "ok" | "error" | "timeout" | "not-connected" | "expired";

/** One slave's result of a job. */
export interface JobResult {
  slaveId: string;
  /** The master that delivered the command to the slave ("" when none did). */
  masterId: string;
  status: JobResultStatus;
  /** The reply's data, with "ok". */
  data?: string;
  /** The handler's error ("error"), or what kept the command from the slave. */
  error?: string;
  /** From the job's start to this result, in ms. */
  latencyMs: number;
  /** Times the command was written to the slave (more than 1 after a redelivery; the slave ran it once). */
  deliveries: number;
}

/** Which slaves a job targets, and how long it waits for them. */
export interface RunOptions {
  /** These slaves, connected or not; else those the selector matches (fleet-wide), every slave when empty. */
  ids?: readonly string[];
  selector?: Selector | string;
  /** How long each slave has to reply once the command is written to it, in ms. Default 10 s. */
  timeout?: number;
  /**
   * Keep the command for a target that is not connected, or whose stream
   * breaks before it replied, and deliver it when it connects again (on any
   * master in reach) for at most this long, in ms; then "expired". Default:
   * no redelivery ("not-connected" at once). At most 10 minutes.
   */
  deliverWithin?: number;
}

/** A job's counts. */
export interface JobSummary {
  jobId: string;
  targets: number;
  ok: number;
  error: number;
  timeout: number;
  notConnected: number;
  expired: number;
  /** Targets with no result yet. */
  pending: number;
  startedAt: Date;
  /** When the last result came; undefined while running. */
  finishedAt?: Date;
}

/** A job as the job cache keeps it. */
export interface JobRecord {
  id: string;
  /** The master that accepted it. */
  masterId: string;
  data: string;
  /** The selector it was run with ("" for ids, or every slave). */
  selector: string;
  timeout: number;
  deliverWithin?: number;
  /** The slaves targeted, in id order, fixed at start. */
  targets: string[];
  /** Masters that did not answer when the selector was resolved: their slaves are not targets. */
  unansweredMasters: string[];
  startedAt: Date;
  /** The results so far, in the order they came. */
  results: JobResult[];
  summary: JobSummary;
}
