import { create } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { LogLevels } from "consola";
import { type Command, CommandSchema, CustomSchema, type Reply } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import { DecodeFailure, Encoded, rejectCall } from "../grpc-adapter.js";
import { formatLabels } from "../labels.js";
import type { Logger } from "../logger.js";
import type { ClosedSlaveInfo, CloseReason, CustomInput, Epoch, MasterEvents, SlaveInfo } from "../model.js";
import type { Selector } from "../selector.js";
import type { PageCursor } from "../slave-pages.js";
import { SLAVE_ID_METADATA_KEY } from "../wire.js";
import { StreamGate } from "./gate.js";
import { type HeartbeatHost, HeartbeatScheduler } from "./heartbeat.js";
import { pace } from "./pacer.js";
import { PingSlots } from "./ping-slots.js";
import { Registry } from "./registry.js";
import { type BatchFleet, type BatchHandlers, RequestBatch } from "./request-batch.js";
import { addRtt, type RttHistogram } from "./rtt-histogram.js";
import { SlaveConnection, type SyncCall } from "./slave-connection.js";
import type { MasterObserver, MasterStats } from "./stats.js";

/** New connections accepted one after another share a ping slot, this many at a time (see PingSlots). */
const PING_SLOT_BLOCK = 32;

/** Why an eviction happened, as counted in metrics. */
type EvictionKind = "heartbeat_timeout" | "slow_consumer" | "rate_limit";

/** Emits one of the master's events; the composition root decides where they go. */
export type Notify = <K extends keyof MasterEvents>(event: K, ...args: MasterEvents[K]) => void;

/**
 * What a scope learns of local streams as they come and go. A cluster scope
 * stamps each with an epoch (the newer of two connections of one id wins
 * across masters) and claims or releases its route; without one, nothing is
 * stamped. Called synchronously: it must never wait on the network.
 */
export interface StreamTracker {
  stamp(): Epoch;
  added(slaveId: string, epoch: Epoch): void;
  removed(slaveId: string, epoch: Epoch): void;
}

export interface FleetConfig {
  heartbeatInterval: number;
  heartbeatTimeout: number;
  heartbeatSliceSize: number;
  maxPendingBytes: number;
  maxMessagesPerSecond: number;
  historySize: number;
  /** New streams admitted per second and at once (a token bucket); a rate of 0 admits all. */
  admission: { rate: number; burst: number };
  /** Damping of one id replaced again and again (see DuplicateIds). */
  duplicateIds: { limit: number; window: number; cooldown: number };
  log: Logger;
  notify: Notify;
  /** Receives RTT and reply latencies; only set when metrics are on, so the pong path stays bare otherwise. */
  observer?: MasterObserver;
}

type State = "idle" | "open" | "closing" | "closed";

/** A paced broadcast: its one encoding, the slaves it has not been written to yet, and how many it was written to. */
interface FanOut {
  readonly message: Encoded;
  readonly owed: Set<SlaveConnection>;
  written: number;
}

/**
 * The local fleet: the slaves whose streams this process holds. It accepts
 * streams, dispatches what they send, pings them on one schedule, evicts the
 * silent and the slow, and writes commands to them. It coordinates: the
 * scheduler decides when, the ping slots who, each SlaveConnection holds its
 * own state and timers. It knows no adapter: the gRPC server hands it calls,
 * a scope (local or cluster) reads it, the composition root wires them.
 */
export class Fleet {
  readonly stats: MasterStats = {
    connected: 0,
    connectionsTotal: 0,
    pingsSent: 0,
    pongsReceived: 0,
    commandsSent: 0,
    evictions: { heartbeat_timeout: 0, slow_consumer: 0, rate_limit: 0 },
    disconnects: { disconnected: 0, replaced: 0, shutdown: 0, error: 0 },
    refused: { rate: 0, duplicate_id: 0 },
  };
  /** Set by a cluster scope while it runs. */
  tracker: StreamTracker | undefined;
  private readonly config: FleetConfig;
  private readonly log: Logger;
  /** Whether debug lines are wanted; checked first so the pong path builds no strings otherwise. */
  private readonly debug: boolean;
  private readonly heartbeat: HeartbeatScheduler<SlaveConnection>;
  /** Which slice of a round each connection is pinged in. */
  private readonly slots: PingSlots<SlaveConnection>;
  private readonly registry: Registry;
  /** Which new streams are let in: admission rate, the id and labels they declare, duplicate ids. */
  private readonly gate: StreamGate;
  private nextRequestId = 0n;
  /** Paced broadcasts under way or waiting their turn, oldest first; `fanOutTail` settles when the last one is done. */
  private readonly fanOuts: FanOut[] = [];
  private fanOutTail: Promise<void> = Promise.resolve();
  /** Connections ended but maybe never read by their peer, each with a pending reset; close() disposes of them. */
  private readonly ending = new Set<SlaveConnection>();
  private state: State = "idle";

  constructor(config: FleetConfig) {
    this.config = config;
    this.log = config.log;
    this.debug = this.log.level >= LogLevels.debug;
    this.registry = new Registry(config.historySize);
    this.gate = new StreamGate(config, this.stats.refused, this.log);
    // The scheduler's host is private: rounds and expiries are not part of the fleet's API.
    const host: HeartbeatHost<SlaveConnection> = {
      ping: (seq, now, slice, slices) => this.pingSlice(seq, now, slice, slices),
      expire: (connection, silentMs) => this.expire(connection, silentMs),
      pause: (lagMs) => {
        this.log.warn(`master stalled for ${Math.round(lagMs)} ms; that time is not held against any slave`);
        this.config.notify("stalled", lagMs);
      },
    };
    this.heartbeat = new HeartbeatScheduler(host, {
      interval: config.heartbeatInterval,
      timeout: config.heartbeatTimeout,
      minSliceSize: config.heartbeatSliceSize,
    });
    this.slots = new PingSlots(this.heartbeat.slices, PING_SLOT_BLOCK);
  }

  /** Starts the heartbeat and accepting streams. */
  start(): void {
    if (this.state !== "idle") return;
    this.state = "open";
    this.heartbeat.start();
  }

  /** Stops the heartbeat and refuses new streams; the slaves held stay until close(). */
  stop(): void {
    if (this.state === "closed") return;
    this.state = "closing";
    this.heartbeat.stop();
  }

  /** Ends every stream with UNAVAILABLE "master shutting down" and stops every timer. */
  close(): void {
    this.stop();
    for (const connection of this.ending) connection.dispose();
    this.ending.clear();
    for (const connection of Array.from(this.registry.values())) {
      this.drop(connection, "shutdown", "master shutting down", Code.UNAVAILABLE);
    }
    this.slots.clear();
    this.state = "closed";
  }

  // --- reading the fleet -----------------------------------------------------

  /** Number of connected slaves. */
  get size(): number {
    return this.registry.size;
  }

  /** Whether a slave with this id is connected. */
  has(slaveId: string): boolean {
    return this.registry.get(slaveId) !== undefined;
  }

  /** The epoch of the local connection of `slaveId`, if one is held and stamped. */
  epochOf(slaveId: string): Epoch | undefined {
    return this.registry.get(slaveId)?.epoch;
  }

  /** Connected slaves, as a snapshot; those the selector matches when it is not empty. */
  slaves(selector?: Selector): SlaveInfo[] {
    if (!selector || selector.empty) return this.registry.snapshot();
    const out: SlaveInfo[] = [];
    for (const connection of this.registry.values()) if (selector.matches(connection.labels)) out.push(connection.info());
    return out;
  }

  /**
   * One master's part of a fleet page: the first `limit` slaves after
   * `cursor` in id order that the selector matches, reading the sorted ids
   * (never the whole fleet). At most `scanLimit` ids are examined: a
   * selector that matches little does not turn one answer into a scan of
   * every slave. `last` is the last id examined, `done` that none is left.
   * `take`, when given, sees each match before it is added and may end the
   * answer there by returning false (a byte budget; the first match is
   * always added).
   */
  page(
    selector: Selector | undefined,
    cursor: PageCursor | undefined,
    limit: number,
    scanLimit = Number.POSITIVE_INFINITY,
    take?: (slave: SlaveInfo) => boolean,
  ): { slaves: SlaveInfo[]; last: string | undefined; done: boolean } {
    const every = !selector || selector.empty;
    const slaves: SlaveInfo[] = [];
    let last: string | undefined;
    let scanned = 0;
    for (const connection of this.registry.inOrder(cursor?.id, cursor?.inclusive)) {
      if (slaves.length >= limit || scanned >= scanLimit) return { slaves, last, done: false };
      if (every || selector.matches(connection.labels)) {
        const info = connection.info();
        if (take && !take(info) && slaves.length > 0) return { slaves, last, done: false };
        slaves.push(info);
      }
      scanned++;
      last = connection.id;
    }
    return { slaves, last, done: true };
  }

  /** The RTTs of the connected slaves that have one, as a histogram (a cluster's summary merges them). */
  rttHistogram(): RttHistogram {
    const histogram: RttHistogram = new Map();
    for (const connection of this.registry.values()) if (connection.rttMs !== undefined) addRtt(histogram, connection.rttMs);
    return histogram;
  }

  /** The RTTs of the connected slaves that have one, unsorted. */
  rtts(): number[] {
    const out: number[] = [];
    for (const connection of this.registry.values()) if (connection.rttMs !== undefined) out.push(connection.rttMs);
    return out;
  }

  /**
   * The ids of the connected slaves the selector matches (all when empty),
   * in id order: what a job needs to fix its targets, without building a
   * SlaveInfo of each. In order because a job keeps its targets sorted: the
   * registry's sorted ids spare it a Set and a sort of every id in the turn
   * that starts it.
   */
  ids(selector?: Selector): string[] {
    if (!selector || selector.empty) return this.registry.ids();
    const out: string[] = [];
    for (const connection of this.registry.inOrder()) if (selector.matches(connection.labels)) out.push(connection.id);
    return out;
  }

  /** Slaves that left recently (bounded by historySize), newest first. */
  recentlyClosed(): ClosedSlaveInfo[] {
    return this.registry.recentlyClosed();
  }

  // --- commands to local slaves ----------------------------------------------

  /** Writes a Custom command to one slave; 1 if it was written, else 0. */
  send(slaveId: string, custom: CustomInput): number {
    const connection = this.registry.get(slaveId);
    if (!connection) return 0;
    return this.writeCustom(connection, encodeCustom(custom)) ? 1 : 0;
  }

  /**
   * Writes a Custom command to every slave the selector matches (all when
   * empty) and resolves with how many it was written to. The slaves are
   * those connected now; the writes are paced (pacer.ts): turns that cost the
   * event loop about 10 ms each, the HTTP/2 flush they leave behind included,
   * so heartbeats, pongs and expiries keep their timing while it runs (in one
   * turn, a fan-out to 10,000 held the loop over a second: issue 19; the
   * encoding is still done once). Fan-outs run one after another, and a
   * command written to a slave meanwhile (send, request, broadcastNow) first
   * writes to it what it is still owed: each slave gets its commands in the
   * order they were given.
   */
  async broadcast(custom: CustomInput, selector?: Selector): Promise<number> {
    const fanOut: FanOut = { message: encodeCustom(custom), owed: new Set(this.matching(selector)), written: 0 };
    if (fanOut.owed.size === 0) return 0;
    this.fanOuts.push(fanOut);
    const run = this.fanOutTail.then(async () => {
      try {
        await pace(fanOut.owed, (connection) => this.fanOutTo(fanOut, connection), { stopped: () => this.state === "closed" });
      } finally {
        this.fanOuts.splice(this.fanOuts.indexOf(fanOut), 1);
      }
    });
    // The next fan-out waits for this one however it ends (a listener of an eviction it caused may throw).
    this.fanOutTail = run.catch(() => {});
    await run;
    return fanOut.written;
  }

  /**
   * Like broadcast(), but every write within this call, in one turn of the
   * event loop, and returns how many: for a few slaves, or a caller that
   * needs the count at once (Master.broadcast). At 10,000 one-connection
   * slaves its writes took 40–100 ms and their flush, after the turn, most
   * of a second more (bench, 2 cores).
   */
  broadcastNow(custom: CustomInput, selector?: Selector): number {
    const message = encodeCustom(custom);
    let written = 0;
    for (const connection of this.matching(selector)) if (this.writeCustom(connection, message)) written++;
    return written;
  }

  /**
   * Writes a Custom that asks for a reply and waits for it; `timeout` is
   * already checked. Rejects with NOT_FOUND, RESOURCE_EXHAUSTED (not
   * written), DEADLINE_EXCEEDED or UNAVAILABLE (the slave left first).
   */
  request(slaveId: string, custom: CustomInput, timeout: number): Promise<Reply> {
    const connection = this.registry.get(slaveId);
    if (!connection) return Promise.reject(new NetSyncError(`no slave with id "${slaveId}"`, Code.NOT_FOUND));
    const requestId = ++this.nextRequestId;
    const base = typeof custom === "string" ? { data: custom } : custom;
    // Written before it is registered as pending: a failed write must not look like the slave leaving.
    if (!this.writeCustom(connection, encodeCustom({ ...base, requestId }))) {
      return Promise.reject(new NetSyncError(`could not write to slave ${slaveId}: it is not reading its stream`, Code.RESOURCE_EXHAUSTED));
    }
    return connection.awaitReply(requestId, timeout, performance.now());
  }

  /**
   * A batch of requests for one Custom to many local slaves (a job's
   * fan-out): encoded once with one request_id, written by `send(slaveId)`,
   * each outcome given to `handlers` (see RequestBatch); `timeout` is already
   * checked. Close it once its outcomes are no longer wanted.
   */
  requestMany(custom: CustomInput, timeout: number, handlers: BatchHandlers): RequestBatch {
    const requestId = ++this.nextRequestId;
    const base = typeof custom === "string" ? { data: custom } : custom;
    const fleet: BatchFleet = {
      get: (slaveId) => this.registry.get(slaveId),
      write: (connection, message) => this.writeCustom(connection, message),
    };
    return new RequestBatch(fleet, requestId, encodeCustom({ ...base, requestId }), timeout, handlers);
  }

  /** Ends the local connection of `slaveId` if it still has exactly `epoch`: a newer one was accepted on master `byMaster`. */
  endReplaced(slaveId: string, epoch: Epoch, byMaster: string): void {
    const connection = this.registry.get(slaveId);
    if (!connection || connection.epoch !== epoch) return;
    this.drop(connection, "replaced", `replaced by a newer connection on master ${byMaster}`, Code.UNAVAILABLE);
  }

  /** The connected slaves the selector matches (all when empty), as a snapshot. */
  private matching(selector: Selector | undefined): SlaveConnection[] {
    if (!selector || selector.empty) return Array.from(this.registry.values());
    const out: SlaveConnection[] = [];
    for (const connection of this.registry.values()) if (selector.matches(connection.labels)) out.push(connection);
    return out;
  }

  /** One slave's turn in a fan-out, unless a command written to it meanwhile already paid what it was owed. */
  private fanOutTo(fanOut: FanOut, connection: SlaveConnection): void {
    if (!fanOut.owed.delete(connection)) return;
    if (this.writeCustom(connection, fanOut.message, false)) fanOut.written++;
  }

  /**
   * Writes a Custom; first, when fan-outs are under way, what they still owe
   * this slave (oldest first), so a command never overtakes one given before it.
   */
  private writeCustom(connection: SlaveConnection, message: Encoded, settle = true): boolean {
    if (settle && this.fanOuts.length > 0) {
      for (const fanOut of this.fanOuts) this.fanOutTo(fanOut, connection);
    }
    if (!this.write(connection, message)) return false;
    connection.commandsSent++;
    this.stats.commandsSent++;
    return true;
  }

  /** Writes or, when the slave's queue is full, evicts it as a slow consumer. */
  private write(connection: SlaveConnection, message: Encoded): boolean {
    if (connection.write(message)) return true;
    if (!connection.closed) {
      this.evict(
        connection,
        "slow_consumer",
        Code.RESOURCE_EXHAUSTED,
        `slow consumer: more than ${this.config.maxPendingBytes} bytes queued`,
        `${connection.pendingBytes} bytes queued, not reading`,
      );
    }
    return false;
  }

  // --- heartbeat rounds and expiries (the scheduler's host) ---------------------

  private pingSlice(seq: bigint, now: number, slice: number, slices: number): void {
    let message: Encoded | undefined;
    let sent = 0;
    const round = Number(seq);
    for (const slot of this.slots.slice(slice, slices)) {
      // One encoding per slice, shared by every stream in it.
      message ??= Encoded.of(
        CommandSchema,
        create(CommandSchema, { kind: { case: "ping", value: { seq, sentAtUnixMs: BigInt(Date.now()) } } }),
      );
      // No copy of the slot: an eviction during the loop only deletes, which Set iteration tolerates.
      for (const connection of slot) {
        if (this.write(connection, message)) {
          connection.pinged(round, now);
          sent++;
        }
      }
    }
    if (sent === 0) return;
    this.stats.pingsSent += sent;
    if (this.debug) this.log.debug(`ping round ${seq}, slice ${slice + 1}/${slices}, sent to ${sent} slaves`);
  }

  private expire(connection: SlaveConnection, silentMs: number): void {
    this.evict(
      connection,
      "heartbeat_timeout",
      Code.UNAVAILABLE,
      `heartbeat timeout: no message for ${Math.round(silentMs)} ms (timeout ${this.config.heartbeatTimeout} ms)`,
      `silent for ${Math.round(silentMs)} ms`,
    );
  }

  // --- streams ---------------------------------------------------------------

  /**
   * Takes a new Sync call: checks the id and labels the slave declares,
   * registers it (ending an older stream of the same id), answers with the id
   * it was registered under, and follows the stream until it ends.
   */
  accept(call: SyncCall): void {
    if (this.state !== "open") {
      rejectCall(call, Code.UNAVAILABLE, "master shutting down");
      return;
    }
    // Refused here (with a status, a retry hint where one helps, and a count) unless admitted: see gate.ts.
    const admitted = this.gate.admit(call, (id) => this.registry.get(id)?.peer);
    if (!admitted) return;
    const { id, assigned, labels } = admitted;

    const connection = new SlaveConnection(id, call.getPeer(), call, performance.now(), this.config.maxPendingBytes, labels);
    const tracker = this.tracker;
    connection.epoch = tracker?.stamp();
    this.stats.connectionsTotal++;
    const previous = this.registry.add(connection);
    // Never waits on NATS: routes and claims are published in the background (or on reconnect).
    if (tracker && connection.epoch) tracker.added(id, connection.epoch);
    if (previous) {
      this.drop(previous, "replaced", `replaced by a newer connection from ${connection.peer}`, Code.UNAVAILABLE);
    }
    this.heartbeat.watch(connection);
    this.slots.assign(connection);

    const headers = new Metadata();
    headers.set(SLAVE_ID_METADATA_KEY, id);
    call.sendMetadata(headers);

    call.on("data", (message: Command | DecodeFailure) => this.onMessage(connection, message));
    call.on("end", () => {
      // grpc-js also ends the readable side when the connection dies, just before 'cancelled';
      // one turn later tells a slave that left cleanly (finish with OK) from one that crashed.
      setImmediate(() => {
        if (call.cancelled) this.drop(connection, "disconnected", "connection lost");
        else this.drop(connection, "disconnected", "slave closed the stream", Code.OK);
      });
    });
    call.on("cancelled", () => this.drop(connection, "disconnected", "connection lost or stream cancelled by the slave"));
    call.on("error", (err: Error) => this.drop(connection, "error", `stream error: ${err.message}`));

    this.log.info({
      message:
        `slave ${id} connected from ${connection.peer}${assigned ? " (id assigned by the master)" : ""}` +
        (Object.keys(labels).length > 0 ? ` with labels ${formatLabels(labels)}` : ""),
      slaveId: id,
      peer: connection.peer,
    });
    this.config.notify("slave:connected", { slave: connection.info(), reason: "connected", details: `from ${connection.peer}` });
  }

  private onMessage(connection: SlaveConnection, message: Command | DecodeFailure): void {
    if (connection.closed) return;
    if (message instanceof DecodeFailure) {
      this.drop(connection, "error", `malformed Command: ${message.error.message}`, Code.INVALID_ARGUMENT);
      return;
    }
    const now = performance.now();
    if (!connection.admit(now, this.config.maxMessagesPerSecond)) {
      this.evict(
        connection,
        "rate_limit",
        Code.RESOURCE_EXHAUSTED,
        `rate limit: more than ${this.config.maxMessagesPerSecond} messages in one second`,
        "flooding",
      );
      return;
    }
    this.heartbeat.seen(connection, now);
    switch (message.kind.case) {
      case "pong": {
        this.stats.pongsReceived++;
        const { seq } = message.kind.value;
        const rtt = connection.ponged(seq, now);
        if (rtt === undefined) {
          if (this.debug) this.log.debug(`pong from ${connection.id} for an unknown or outdated seq ${seq}`);
          return;
        }
        this.config.observer?.rtt(rtt);
        if (this.debug) this.log.debug(`pong from ${connection.id} seq ${seq} rtt ${rtt.toFixed(2)} ms`);
        return;
      }
      case "custom":
        this.config.notify("command", connection.id, message.kind.value);
        return;
      case "reply": {
        const latency = connection.replied(message.kind.value, now);
        if (latency === undefined) {
          if (this.debug) this.log.debug(`reply from ${connection.id} to unknown or expired request ${message.kind.value.requestId}`);
          return;
        }
        this.config.observer?.replyLatency(latency);
        return;
      }
      default:
        // A Ping from a slave, or a Command with no kind: a sign of life, nothing more.
        return;
    }
  }

  private evict(connection: SlaveConnection, kind: EvictionKind, code: Code, details: string, logDetail: string): void {
    if (connection.closed) return;
    const slave = this.forget(connection, "evicted", details);
    this.stats.evictions[kind] = (this.stats.evictions[kind] ?? 0) + 1;
    this.endStream(connection, code, details);
    this.log.warn({
      message: `slave ${connection.id} (${connection.peer}) evicted: ${kind.replace("_", " ")}, ${logDetail}`,
      slaveId: connection.id,
      peer: connection.peer,
    });
    this.config.notify("slave:evicted", { slave, reason: "evicted", details });
  }

  /**
   * Takes a connection out of the registry and the heartbeat, records it in
   * the closed history, fails its pending requests, and returns the snapshot
   * it was recorded with (the one the close event carries).
   */
  private forget(connection: SlaveConnection, reason: CloseReason, details: string): SlaveInfo {
    this.heartbeat.unwatch(connection);
    this.slots.release(connection);
    this.registry.remove(connection);
    // Compare-and-delete on the epoch: the cleanup of an older connection never drops a newer one's route.
    if (this.tracker && connection.epoch) this.tracker.removed(connection.id, connection.epoch);
    const slave = connection.info();
    this.registry.recordClosed({ slave, closedAt: new Date(), reason, details });
    connection.failRequests(new NetSyncError(`slave ${connection.id} left before replying (${reason}: ${details})`, Code.UNAVAILABLE));
    return slave;
  }

  /**
   * Ends a stream with a status and, should the peer never read it (frozen or
   * partitioned, so the status cannot flush), resets the stream one heartbeat
   * timeout later, which lets the idle timer close its connection: nothing
   * stale is kept.
   */
  private endStream(connection: SlaveConnection, code: Code, details: string): void {
    connection.end(code, details);
    if (this.state !== "open") return; // close() cuts whatever is left
    this.ending.add(connection);
    connection.abortAfter(this.config.heartbeatTimeout, (reset) => {
      this.ending.delete(connection);
      if (reset && this.debug) this.log.debug(`reset the unread stream of ${connection.id} (${connection.peer})`);
    });
  }

  /** Removes a connection whose stream ended or must end; idempotent. */
  private drop(connection: SlaveConnection, reason: CloseReason, details: string, code?: Code): void {
    if (connection.closed) return;
    const slave = this.forget(connection, reason, details);
    this.stats.disconnects[reason] = (this.stats.disconnects[reason] ?? 0) + 1;
    if (code === undefined) connection.closed = true;
    else if (code === Code.OK) {
      connection.closed = true;
      connection.call.end();
    } else this.endStream(connection, code, details);
    const line = `slave ${connection.id} (${connection.peer}) ${reason === "replaced" ? "" : "disconnected: "}${details}`;
    const entry = { message: line, slaveId: connection.id, peer: connection.peer };
    if (reason === "replaced" || reason === "error") this.log.warn(entry);
    else this.log.info(entry);
    this.config.notify("slave:disconnected", { slave, reason, details });
  }
}

function encodeCustom(custom: CustomInput): Encoded {
  const value = create(CustomSchema, typeof custom === "string" ? { data: custom } : custom);
  return Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "custom", value } }));
}
