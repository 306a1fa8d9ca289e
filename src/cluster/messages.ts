import { type Code, isCode } from "../code.js";
import { type Epoch, isEpoch } from "./epoch.js";
import { type ClusterEvent, isClusterEvent } from "./events.js";
import type { ClusterReply, ClusterSlave } from "./types.js";

/**
 * The messages masters exchange over NATS, as JSON. Every one carries the
 * cluster name: subjects already separate clusters, and a message naming
 * another cluster (a misconfigured or hostile publisher) is dropped.
 */
export type ClusterMessage =
  | BeatMessage
  | LeaveMessage
  | ClaimMessage
  | WhoMessage
  | RouteMessage
  | BatchMessage
  | ResultsMessage
  | AnswerMessage
  | ListMessage
  | PageMessage
  | SummaryMessage
  | BroadcastMessage
  | PartMessage
  | EventsMessage;

/** A master's heartbeat on the members subject. */
export interface BeatMessage {
  kind: "beat";
  cluster: string;
  id: string;
  address: string;
  slavesHeld: number;
  /** The sender's membership interval: receivers expire it after a few of these. */
  interval: number;
  /** Random per process, to tell two masters that share an id apart. */
  instance: string;
}

/** A master closing: drop it now rather than after missed beats. */
export interface LeaveMessage {
  kind: "leave";
  cluster: string;
  id: string;
  instance: string;
}

/** "I hold this id with this epoch", on the id's own claim subject (one claim per message). */
export interface ClaimMessage {
  kind: "claim";
  cluster: string;
  master: string;
  slaveId: string;
  epoch: Epoch;
}

/** "Who holds this id?", on its lookup subject: every holder answers, to the asker (a request) or with a claim (a watcher's question). */
export interface WhoMessage {
  kind: "who";
  cluster: string;
  slaveId: string;
}

/** A send or request routed to the master holding `slaveId`. */
export interface RouteMessage {
  kind: "send" | "request";
  cluster: string;
  from: string;
  slaveId: string;
  data: string;
  /** For a request: the slave's reply timeout. */
  timeoutMs: number;
  /**
   * When the asking master stops waiting, in ms since the epoch (its clock).
   * A holder that gets the message later than this (plus an allowance for
   * clock skew) has been stalled: it does not act on it, so a command whose
   * caller already gave up, or was served by the slave's new holder, never
   * runs late.
   */
  deadline?: number;
  /** The call's id, the same on every attempt: the holder passes it to the slave as Custom.command_id, so a repeat runs once. */
  commandId?: string;
  /** A job's delivery (commandId is the job's id): a holder with the cluster's job store records the reply as the job's result. */
  job?: { startedAt: number; deliveries: number };
}

/**
 * One job's command routed to a master for many of the slaves it holds (a
 * job's fan-out: one message per holder and turn instead of one request per
 * slave). Sent as a request: the holder answers at once (an AnswerMessage
 * naming, in `notHeld`, the ids it does not hold: the asker routes those one
 * by one), writes the command to the rest, and publishes their outcomes to
 * `inbox` as they come, several per ResultsMessage.
 */
export interface BatchMessage {
  kind: "batch";
  cluster: string;
  from: string;
  slaveIds: string[];
  data: string;
  /** The slaves' reply timeout. */
  timeoutMs: number;
  /** As RouteMessage.deadline: a holder that gets the batch later than this (plus an allowance) was stalled and writes nothing. */
  deadline: number;
  /** The job's id: Custom.command_id for every slave of the batch. */
  commandId: string;
  /** Where the outcomes go (the asker's inbox for this job). */
  inbox: string;
  job?: { startedAt: number; deliveries: number };
}

/** One outcome of a batch: the slave's reply, or why there is none. */
export interface BatchResult {
  slaveId: string;
  reply?: ClusterReply;
  error?: { code: Code; message: string };
  /** The holder recorded the reply as the job's result (a BatchMessage with `job`). */
  recorded?: boolean;
  /** The slave's stream ended before it replied and it is back, on a newer one: ask again (its command_id makes the repeat run once). */
  again?: boolean;
}

/** Outcomes of a batch's slaves, from their holder to the asker's inbox. */
export interface ResultsMessage {
  kind: "results";
  cluster: string;
  masterId: string;
  commandId: string;
  results: BatchResult[];
}

/** The holding master's answer to a RouteMessage (or its acknowledgement of a BatchMessage). */
export interface AnswerMessage {
  kind: "answer";
  cluster: string;
  masterId: string;
  written?: boolean;
  reply?: ClusterReply;
  error?: { code: Code; message: string };
  /** The epoch the answering master holds the slave with: the asking master learns its holder from it. */
  epoch?: Epoch;
  /**
   * Set with a NOT_FOUND error by a master that has just released this route:
   * NATS still had its subscription when the request went out, so another
   * master may hold the slave now. The requester asks again.
   */
  released?: boolean;
  /** The answering master recorded the reply as the job's result (a RouteMessage with `job`). */
  recorded?: boolean;
  /** Acknowledging a batch: the ids it does not hold (left, moved, or never here); it writes to the others. */
  notHeld?: string[];
}

export interface ListMessage {
  kind: "list";
  cluster: string;
  from: string;
  selector?: string;
}

/**
 * One master's slice of a fleet page: its first `limit` slaves after `after`
 * (or from it, `inclusive`) in id order that `selector` matches, in one
 * answer of at most `maxBytes` (and half the server's max_payload).
 */
export interface PageMessage {
  kind: "page";
  cluster: string;
  from: string;
  selector?: string;
  /** Absent: from the first id. */
  after?: string;
  inclusive?: boolean;
  limit: number;
  maxBytes?: number;
  /** Answer with the ids alone (a job resolving its targets), not the slaves. */
  idsOnly?: boolean;
}

/** "Your count and your slaves' RTTs": the dashboard's fleet summary, without listing anyone. */
export interface SummaryMessage {
  kind: "summary";
  cluster: string;
  from: string;
}

export interface BroadcastMessage {
  kind: "broadcast";
  cluster: string;
  from: string;
  data: string;
  selector?: string;
  /** Acknowledge first (an `accepted` part), then answer the count: an asker that sets it waits longer for a master that acknowledged. */
  ack?: boolean;
}

/** One part of a master's answer to a list or broadcast (a list may need several: NATS caps a message at 1 MiB by default). */
export interface PartMessage {
  kind: "part";
  cluster: string;
  masterId: string;
  address: string;
  slavesHeld: number;
  part: number;
  parts: number;
  slaves?: ClusterSlave[];
  /** A page answer asked for ids only: the ids, in order. */
  ids?: string[];
  /** A page answer: the last id examined (absent when none was). */
  last?: string;
  /** A page answer: every id after the cursor was examined. */
  done?: boolean;
  /** A summary answer: the RTT histogram of the master's slaves, [bucket, count, …]. */
  rtt?: number[];
  count?: number;
  /** Not a part of the answer: the request was received and is being acted on; the answer follows. */
  accepted?: boolean;
}

/** Slave events of the sending master, published on the events subject for every master's watchers. */
export interface EventsMessage {
  kind: "events";
  cluster: string;
  from: string;
  events: ClusterEvent[];
}

export function encodeMessage(message: ClusterMessage): string {
  return JSON.stringify(message);
}

const KINDS = new Set([
  "beat",
  "leave",
  "claim",
  "who",
  "send",
  "request",
  "batch",
  "results",
  "answer",
  "list",
  "page",
  "summary",
  "broadcast",
  "part",
  "events",
]);

/**
 * Parses a message and checks the fields this node relies on; undefined for
 * anything malformed or of another cluster (never throws: the input comes
 * from the network).
 */
export function decodeMessage(text: string, cluster: string): ClusterMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const m = value as Record<string, unknown>;
  if (m.cluster !== cluster || typeof m.kind !== "string" || !KINDS.has(m.kind)) return undefined;
  const str = (k: string) => typeof m[k] === "string";
  const num = (k: string) => Number.isFinite(m[k]);
  switch (m.kind) {
    case "beat":
      return str("id") && str("address") && num("slavesHeld") && num("interval") && str("instance")
        ? (m as unknown as BeatMessage)
        : undefined;
    case "leave":
      return str("id") && str("instance") ? (m as unknown as LeaveMessage) : undefined;
    case "claim":
      return str("master") && str("slaveId") && isEpoch(m.epoch) ? (m as unknown as ClaimMessage) : undefined;
    case "who":
      return str("slaveId") ? (m as unknown as WhoMessage) : undefined;
    case "send":
    case "request":
      return str("from") &&
        str("slaveId") &&
        str("data") &&
        num("timeoutMs") &&
        (m.deadline === undefined || num("deadline")) &&
        (m.commandId === undefined || str("commandId")) &&
        (m.job === undefined || isJobDelivery(m.job))
        ? (m as unknown as RouteMessage)
        : undefined;
    case "batch":
      return str("from") &&
        isStrings(m.slaveIds) &&
        str("data") &&
        num("timeoutMs") &&
        num("deadline") &&
        str("commandId") &&
        str("inbox") &&
        (m.job === undefined || isJobDelivery(m.job))
        ? (m as unknown as BatchMessage)
        : undefined;
    case "results":
      return str("masterId") && str("commandId") && Array.isArray(m.results) && m.results.every(isBatchResult)
        ? (m as unknown as ResultsMessage)
        : undefined;
    case "answer": {
      if (!str("masterId") || (m.released !== undefined && typeof m.released !== "boolean")) return undefined;
      if (m.recorded !== undefined && typeof m.recorded !== "boolean") return undefined;
      if (m.epoch !== undefined && !isEpoch(m.epoch)) return undefined;
      if (m.notHeld !== undefined && !isStrings(m.notHeld)) return undefined;
      if (!isError(m.error) || !isReply(m.reply)) return undefined;
      return m as unknown as AnswerMessage;
    }
    case "list":
      return str("from") && (m.selector === undefined || str("selector")) ? (m as unknown as ListMessage) : undefined;
    case "page":
      return str("from") &&
        (m.selector === undefined || str("selector")) &&
        (m.after === undefined || str("after")) &&
        (m.inclusive === undefined || typeof m.inclusive === "boolean") &&
        Number.isInteger(m.limit) &&
        (m.limit as number) >= 1 &&
        (m.maxBytes === undefined || num("maxBytes")) &&
        (m.idsOnly === undefined || typeof m.idsOnly === "boolean")
        ? (m as unknown as PageMessage)
        : undefined;
    case "summary":
      return str("from") ? (m as unknown as SummaryMessage) : undefined;
    case "broadcast":
      return str("from") &&
        str("data") &&
        (m.selector === undefined || str("selector")) &&
        (m.ack === undefined || typeof m.ack === "boolean")
        ? (m as unknown as BroadcastMessage)
        : undefined;
    case "part":
      return str("masterId") &&
        str("address") &&
        num("slavesHeld") &&
        Number.isInteger(m.part) &&
        Number.isInteger(m.parts) &&
        (m.parts as number) >= 1 &&
        (m.slaves === undefined || Array.isArray(m.slaves)) &&
        (m.ids === undefined || isStrings(m.ids)) &&
        (m.count === undefined || num("count")) &&
        (m.last === undefined || str("last")) &&
        (m.done === undefined || typeof m.done === "boolean") &&
        (m.rtt === undefined || Array.isArray(m.rtt)) &&
        (m.accepted === undefined || typeof m.accepted === "boolean")
        ? (m as unknown as PartMessage)
        : undefined;
    case "events":
      return str("from") && Array.isArray(m.events) && m.events.every(isClusterEvent) ? (m as unknown as EventsMessage) : undefined;
    default:
      return undefined;
  }
}

/**
 * Splits `slaves` into JSON-sized parts of at most about `budget` bytes
 * each (one slave over the budget still gets a part of its own); at least
 * one part, maybe empty.
 */
export function splitSlaves(slaves: ClusterSlave[], budget: number): ClusterSlave[][] {
  const parts: ClusterSlave[][] = [[]];
  let size = 0;
  for (const slave of slaves) {
    const bytes = Buffer.byteLength(JSON.stringify(slave)) + 1;
    const current = parts[parts.length - 1]!;
    if (current.length > 0 && size + bytes > budget) {
      parts.push([slave]);
      size = bytes;
    } else {
      current.push(slave);
      size += bytes;
    }
  }
  return parts;
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

/** Absent, or an error as an answer carries it. */
function isError(value: unknown): boolean {
  if (value === undefined) return true;
  const error = value as { code?: unknown; message?: unknown } | null;
  return typeof error === "object" && error !== null && isCode(error.code) && typeof error.message === "string";
}

/** Absent, or a slave's reply as an answer carries it. */
function isReply(value: unknown): boolean {
  if (value === undefined) return true;
  const reply = value as { case?: unknown; value?: unknown } | null;
  return (
    typeof reply === "object" && reply !== null && (reply.case === "data" || reply.case === "error") && typeof reply.value === "string"
  );
}

function isBatchResult(value: unknown): boolean {
  const r = value as Record<string, unknown> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    typeof r.slaveId === "string" &&
    isError(r.error) &&
    isReply(r.reply) &&
    (r.recorded === undefined || typeof r.recorded === "boolean") &&
    (r.again === undefined || typeof r.again === "boolean")
  );
}

function isJobDelivery(value: unknown): boolean {
  const j = value as { startedAt?: unknown; deliveries?: unknown } | null;
  return typeof j === "object" && j !== null && Number.isFinite(j.startedAt) && Number.isInteger(j.deliveries);
}
