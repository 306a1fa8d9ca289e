import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { getLogger, type Logger } from "../logger.js";
import { type ClusterMessage, decodeMessage, encodeMessage } from "./messages.js";
import type { LinkState } from "./nats-link.js";
import type { ResolvedClusterOptions } from "./options.js";
import { type ClusterStats, emptyStats } from "./stats.js";
import { Subjects } from "./subjects.js";
import type { ClusterState, LocalFleet } from "./types.js";

/**
 * What the parts of a cluster node (presence, claims, router, scatter) share,
 * and the only way they reach each other's world: the local fleet, the
 * connection, the subjects, the log and the counters. None of them imports
 * the node itself, so they can be driven alone (a fake host in tests).
 */
export interface ClusterHost {
  readonly fleet: LocalFleet;
  readonly options: ResolvedClusterOptions;
  readonly clusterName: string;
  readonly subjects: Subjects;
  readonly log: Logger;
  /** The node's metrics totals: each part counts its own. */
  readonly counters: ClusterStats;
  /** The connection, if there is one: it may be reconnecting (answers to requests already received still go out on it). */
  readonly nc: NatsConnection | undefined;
  /** Whether NATS answers now and the node is not closing: publish nothing new otherwise. */
  readonly connected: boolean;
  /** The node is closing: start no timer, act on no message. */
  readonly closing: boolean;
  /** A subscription callback that ignores subscription errors and never lets a handler's exception into nats.js. */
  handler(fn: (msg: Msg) => void): (err: Error | null, msg: Msg) => void;
  /** A received message of this cluster, or undefined (another cluster's, or malformed). */
  decode(msg: Msg): ClusterMessage | undefined;
  /** Publishes, logging (at debug) rather than throwing when the connection refuses it. */
  publish(nc: NatsConnection, subject: string, message: ClusterMessage): void;
  /** Answers a request on its reply subject, if there is still a connection to answer on. */
  respond(reply: string, message: ClusterMessage): void;
}

/** The node's host: its state over the link it is given (the node owns and drives the link). */
export class NodeHost implements ClusterHost {
  readonly clusterName: string;
  readonly subjects: Subjects;
  readonly log: Logger;
  readonly counters: ClusterStats = emptyStats();
  closing = false;

  constructor(
    readonly fleet: LocalFleet,
    readonly options: ResolvedClusterOptions,
    private readonly link: { readonly nc: NatsConnection | undefined; readonly state: LinkState },
  ) {
    this.clusterName = options.clusterName;
    this.subjects = new Subjects(options.clusterName);
    this.log = options.logger ?? getLogger("cluster");
  }

  /** "connected" only while NATS answers; "closed" from the moment the node starts closing. */
  get state(): ClusterState {
    return this.closing ? "closed" : this.link.state;
  }

  get nc(): NatsConnection | undefined {
    return this.link.nc;
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  handler(fn: (msg: Msg) => void): (err: Error | null, msg: Msg) => void {
    return (err, msg) => {
      if (err || this.closing) return;
      try {
        fn(msg);
      } catch (error) {
        this.log.error(`cluster message handler failed on ${msg.subject}: ${(error as Error).message}`);
      }
    };
  }

  decode(msg: Msg): ClusterMessage | undefined {
    return decodeMessage(msg.string(), this.clusterName);
  }

  publish(nc: NatsConnection, subject: string, message: ClusterMessage): void {
    try {
      nc.publish(subject, encodeMessage(message));
    } catch (err) {
      this.log.debug(`cannot publish to ${subject}: ${(err as Error).message}`);
    }
  }

  respond(reply: string, message: ClusterMessage): void {
    const nc = this.link.nc;
    if (nc) this.publish(nc, reply, message);
  }
}
