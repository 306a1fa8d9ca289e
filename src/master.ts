import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { CommandSchema, CustomSchema, NetSyncService, type Command, type Custom } from "../gen/netsync/v1/netsync_pb.js";
import { DecodeFailure, Encoded, serviceDefinition } from "./grpc-adapter.js";
import { HeartbeatScheduler, type HeartbeatHost } from "./heartbeat.js";
import { getLogger, type Logger } from "./logger.js";
import { NetSyncError } from "./errors.js";
import { resolveMasterOptions, SLAVE_ID_METADATA_KEY, validateSlaveId, type MasterOptions, type ResolvedMasterOptions } from "./options.js";
import { Registry } from "./registry.js";
import { SlaveConnection, type CloseReason, type SlaveInfo, type SyncCall } from "./slave-connection.js";

const Status = grpc.status;

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
}

/** A Custom command, given as its data or as a message init. */
export type CustomInput = string | MessageInitShape<typeof CustomSchema>;

type State = "idle" | "listening" | "closing" | "closed";

/**
 * The master: a gRPC server that keeps a registry of slaves, pings them all
 * on one schedule, evicts the silent ones and pushes commands to them.
 */
export class Master extends EventEmitter<MasterEvents> implements HeartbeatHost<SlaveConnection> {
  readonly options: ResolvedMasterOptions;
  private readonly log: Logger;
  private readonly registry = new Registry();
  private readonly heartbeat: HeartbeatScheduler<SlaveConnection>;
  /** Send times of recent rounds, to turn a Pong's seq into an RTT. */
  private readonly roundSentAt = new Map<bigint, number>();
  private readonly roundsKept: number;
  private server: grpc.Server | undefined;
  private state: State = "idle";
  private boundPort = 0;

  constructor(options: MasterOptions = {}) {
    super();
    this.options = resolveMasterOptions(options);
    this.log = this.options.logger ?? getLogger("master");
    this.heartbeat = new HeartbeatScheduler(this, {
      interval: this.options.heartbeatInterval,
      timeout: this.options.heartbeatTimeout,
    });
    this.roundsKept = Math.ceil(this.options.heartbeatTimeout / this.options.heartbeatInterval) + 1;
  }

  /** The port bound by listen(); useful with port 0. */
  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    const host = this.options.host.includes(":") ? `[${this.options.host}]` : this.options.host;
    return `${host}:${this.boundPort}`;
  }

  /** Starts serving and the heartbeat; resolves with the bound port. */
  async listen(): Promise<number> {
    if (this.state !== "idle") throw new NetSyncError(`master is ${this.state}`, Status.FAILED_PRECONDITION);
    const server = new grpc.Server(this.serverOptions());
    server.addService(serviceDefinition(NetSyncService), {
      [NetSyncService.method.sync.localName]: (call: SyncCall) => this.onSync(call),
    });
    const host = this.options.host.includes(":") ? `[${this.options.host}]` : this.options.host;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${this.options.port}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(NetSyncError.from(err, Status.UNAVAILABLE)) : resolve(port),
      ),
    );
    this.server = server;
    this.state = "listening";
    this.heartbeat.start();
    this.log.info(
      `listening on ${this.address} (heartbeat every ${this.options.heartbeatInterval} ms, timeout ${this.options.heartbeatTimeout} ms)`,
    );
    return this.boundPort;
  }

  /**
   * Server options. Transport keepalive is not liveness, but it is what frees
   * the TCP connection of a slave that was evicted while frozen: its stream
   * status can never flush, so only a failed HTTP/2 PING closes the session.
   */
  private serverOptions(): grpc.ChannelOptions {
    const { heartbeatTimeout, maxMessageBytes } = this.options;
    return {
      "grpc.keepalive_time_ms": heartbeatTimeout,
      "grpc.keepalive_timeout_ms": heartbeatTimeout,
      // A connection whose streams all ended (e.g. an evicted raw client) is not kept.
      "grpc.max_connection_idle_ms": heartbeatTimeout,
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      ...this.options.serverOptions,
    };
  }

  /** Connected slaves, as a snapshot. */
  slaves(): SlaveInfo[] {
    return this.registry.snapshot();
  }

  /** Number of connected slaves. */
  get size(): number {
    return this.registry.size;
  }

  /** Sends a Custom command to one slave; returns 1 if it was written, else 0. */
  send(slaveId: string, custom: CustomInput): number {
    const connection = this.registry.get(slaveId);
    if (!connection) return 0;
    return this.writeCustom(connection, encodeCustom(custom)) ? 1 : 0;
  }

  /** Sends a Custom command to every slave; returns how many it was written to. */
  broadcast(custom: CustomInput): number {
    const message = encodeCustom(custom);
    let written = 0;
    for (const connection of Array.from(this.registry.values())) {
      if (this.writeCustom(connection, message)) written++;
    }
    return written;
  }

  private writeCustom(connection: SlaveConnection, message: Encoded): boolean {
    if (!this.write(connection, message)) return false;
    connection.commandsSent++;
    return true;
  }

  /** Writes or, when the slave's queue is full, evicts it as a slow consumer. */
  private write(connection: SlaveConnection, message: Encoded): boolean {
    if (connection.write(message)) return true;
    if (!connection.closed) {
      this.evict(
        connection,
        Status.RESOURCE_EXHAUSTED,
        `slow consumer: more than ${this.options.maxPendingBytes} bytes queued`,
        `${connection.pendingBytes} bytes queued, not reading`,
      );
    }
    return false;
  }

  /** Ends every stream with UNAVAILABLE, stops the heartbeat and the server. */
  async close(): Promise<void> {
    if (this.state === "closed" || this.state === "closing") return;
    const wasListening = this.state === "listening";
    this.state = "closing";
    this.heartbeat.stop();
    for (const connection of Array.from(this.registry.values())) {
      this.drop(connection, "shutdown", "master shutting down", Status.UNAVAILABLE);
    }
    const server = this.server;
    this.server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          this.log.warn(`streams still open after ${this.options.shutdownGrace} ms; closing connections`);
          server.forceShutdown();
          resolve();
        }, this.options.shutdownGrace);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
    this.roundSentAt.clear();
    this.state = "closed";
    if (wasListening) this.log.info("master stopped");
  }

  // --- HeartbeatHost ---------------------------------------------------------

  ping(seq: bigint, now: number): void {
    this.roundSentAt.set(seq, now);
    this.roundSentAt.delete(seq - BigInt(this.roundsKept));
    if (this.registry.size === 0) return;
    // One encoding per round, shared by every stream.
    const message = Encoded.of(CommandSchema, create(CommandSchema, {
      kind: { case: "ping", value: { seq, sentAtUnixMs: BigInt(Date.now()) } },
    }));
    let sent = 0;
    for (const connection of Array.from(this.registry.values())) {
      if (this.write(connection, message)) {
        connection.pingsSent++;
        sent++;
      }
    }
    this.log.debug(`ping round ${seq} sent to ${sent} slaves`);
  }

  expire(connection: SlaveConnection, silentMs: number): void {
    this.evict(
      connection,
      Status.UNAVAILABLE,
      `heartbeat timeout: no message for ${Math.round(silentMs)} ms (timeout ${this.options.heartbeatTimeout} ms)`,
      `silent for ${Math.round(silentMs)} ms`,
    );
  }

  pause(lagMs: number): void {
    this.log.warn(`master stalled for ${Math.round(lagMs)} ms; not evicting anyone for that time`);
  }

  // --- streams ---------------------------------------------------------------

  private onSync(call: SyncCall): void {
    if (this.state !== "listening") {
      call.emit("error", Object.assign(new Error("master shutting down"), { code: Status.UNAVAILABLE }));
      return;
    }
    const claimed = call.metadata.get(SLAVE_ID_METADATA_KEY)[0];
    let id: string;
    let assigned = false;
    if (claimed === undefined) {
      id = `slave-${randomUUID().slice(0, 8)}`;
      assigned = true;
    } else {
      id = typeof claimed === "string" ? claimed : claimed.toString("utf8");
      const problem = validateSlaveId(id);
      if (problem) {
        this.log.warn(`refused a stream from ${call.getPeer()}: ${problem}`);
        call.emit("error", Object.assign(new Error(`${SLAVE_ID_METADATA_KEY}: ${problem}`), { code: Status.INVALID_ARGUMENT }));
        return;
      }
    }

    const connection = new SlaveConnection(id, call.getPeer(), call, performance.now(), this.options.maxPendingBytes);
    const previous = this.registry.add(connection);
    if (previous) {
      this.drop(previous, "replaced", `replaced by a newer connection from ${connection.peer}`, Status.UNAVAILABLE);
    }
    this.heartbeat.watch(connection);

    const headers = new grpc.Metadata();
    headers.set(SLAVE_ID_METADATA_KEY, id);
    call.sendMetadata(headers);

    call.on("data", (message: Command | DecodeFailure) => this.onMessage(connection, message));
    call.on("end", () => {
      // The slave half-closed: it is leaving. Finish our side with OK.
      this.drop(connection, "disconnected", "slave closed the stream", Status.OK);
    });
    call.on("cancelled", () => this.drop(connection, "disconnected", "stream cancelled by the slave or its connection"));
    call.on("error", (err: Error) => this.drop(connection, "error", `stream error: ${err.message}`));

    this.log.info(`slave ${id} connected from ${connection.peer}${assigned ? " (id assigned by the master)" : ""}`);
    this.emit("slave:connected", { slave: connection.info(), reason: "connected", details: `from ${connection.peer}` });
  }

  private onMessage(connection: SlaveConnection, message: Command | DecodeFailure): void {
    if (connection.closed) return;
    if (message instanceof DecodeFailure) {
      this.drop(connection, "error", `malformed Command: ${message.error.message}`, Status.INVALID_ARGUMENT);
      return;
    }
    const now = performance.now();
    this.heartbeat.seen(connection, now);
    switch (message.kind.case) {
      case "pong": {
        connection.pongsReceived++;
        const sentAt = this.roundSentAt.get(message.kind.value.seq);
        if (sentAt === undefined) {
          this.log.debug(`pong from ${connection.id} for unknown seq ${message.kind.value.seq}`);
          return;
        }
        connection.rttMs = now - sentAt;
        this.log.debug(`pong from ${connection.id} seq ${message.kind.value.seq} rtt ${connection.rttMs.toFixed(2)} ms`);
        return;
      }
      case "custom":
        this.emit("command", connection.id, message.kind.value);
        return;
      default:
        // A Ping from a slave, or a Command with no kind: a sign of life, nothing more.
        return;
    }
  }

  private evict(connection: SlaveConnection, code: grpc.status, details: string, logDetail: string): void {
    if (connection.closed) return;
    this.heartbeat.unwatch(connection);
    this.registry.remove(connection);
    connection.end(code, details);
    this.log.warn(`slave ${connection.id} (${connection.peer}) evicted: ${details.split(":")[0]}, ${logDetail}`);
    this.emit("slave:evicted", { slave: connection.info(), reason: "evicted", details });
  }

  /** Removes a connection whose stream ended or must end; idempotent. */
  private drop(connection: SlaveConnection, reason: CloseReason, details: string, code?: grpc.status): void {
    if (connection.closed) return;
    this.heartbeat.unwatch(connection);
    this.registry.remove(connection);
    if (code === undefined) connection.closed = true;
    else if (code === Status.OK) {
      connection.closed = true;
      connection.call.end();
    } else connection.end(code, details);
    const line = `slave ${connection.id} (${connection.peer}) ${reason === "replaced" ? "" : "disconnected: "}${details}`;
    if (reason === "replaced" || reason === "error") this.log.warn(line);
    else this.log.info(line);
    this.emit("slave:disconnected", { slave: connection.info(), reason, details });
  }
}

function encodeCustom(custom: CustomInput): Encoded {
  const value = create(CustomSchema, typeof custom === "string" ? { data: custom } : custom);
  return Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "custom", value } }));
}
