import { constants as http2Constants, type ServerHttp2Stream } from "node:http2";
import type { status as Status } from "@grpc/grpc-js";
import type { CommandSchema, Reply } from "../gen/netsync/v1/netsync_pb.js";
import type { Encoded, ServerBidiCall } from "./grpc-adapter.js";
import type { Watched } from "./heartbeat.js";

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
}

/** A slave that left, as kept in the registry's bounded history. */
export interface ClosedSlaveInfo {
  readonly slave: SlaveInfo;
  readonly closedAt: Date;
  readonly reason: CloseReason;
  readonly details: string;
}

export type SyncCall = ServerBidiCall<typeof CommandSchema, typeof CommandSchema>;

/** A request written to this slave whose Reply has not come back yet. */
export interface PendingRequest {
  readonly sentAt: number;
  resolve(reply: Reply): void;
  reject(reason: Error): void;
}

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js does not expose
 * it, so this walks its call chain (interceptors, then the base call) and
 * gives up, returning undefined, if those internals ever change.
 */
function http2StreamOf(call: SyncCall): ServerHttp2Stream | undefined {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof link === "object" && link !== null; depth++) {
    const stream = (link as { stream?: unknown }).stream;
    if (typeof stream === "object" && stream !== null && typeof (stream as ServerHttp2Stream).close === "function") {
      return stream as ServerHttp2Stream;
    }
    link = (link as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/** Converts the monotonic clock the master runs on to wall-clock dates. */
const toDate = (monotonicMs: number): Date => new Date(performance.timeOrigin + monotonicMs);

/**
 * The master's side of one slave's stream. It owns the call: every write
 * goes through `write()`, which keeps the bytes queued for a slow reader
 * bounded, and `end()` is the one way the master closes it.
 */
export class SlaveConnection implements Watched {
  lastSeen: number;
  rttMs: number | undefined;
  /** Written by the heartbeat scheduler (declared here so every connection has the same shape). */
  pauseAtSeen = 0;
  /** The round slice this slave is pinged in. */
  slot = 0;
  /** Seq and send time of the latest Ping written to it, to turn its Pong into an RTT. */
  pingSeq = 0n;
  pingSentAt = 0;
  pingsSent = 0;
  pongsReceived = 0;
  commandsSent = 0;
  /** Start of the current one-second rate window, and messages received in it. */
  rateWindowStart: number;
  rateWindowCount = 0;
  /** Bytes handed to grpc-js and not yet flushed to the socket. */
  pendingBytes = 0;
  closed = false;
  private readonly http2Stream: ServerHttp2Stream | undefined;
  /** Requests awaiting a Reply, by request_id; settled by the master, rejected when the slave leaves. */
  readonly pending = new Map<bigint, PendingRequest>();

  constructor(
    readonly id: string,
    readonly peer: string,
    readonly call: SyncCall,
    readonly connectedAt: number,
    private readonly maxPendingBytes: number,
  ) {
    this.lastSeen = connectedAt;
    this.rateWindowStart = connectedAt;
    this.http2Stream = http2StreamOf(call);
  }

  /**
   * Queues `message` unless that would put more than maxPendingBytes behind
   * a reader that is not keeping up; returns false then, and writes nothing.
   */
  write(message: Encoded): boolean {
    if (this.closed) return false;
    const size = message.byteLength;
    if (this.pendingBytes > 0 && this.pendingBytes + size > this.maxPendingBytes) return false;
    this.pendingBytes += size;
    this.call.write(message, () => {
      this.pendingBytes -= size;
    });
    return true;
  }

  /** Ends the stream with a gRPC status; later calls do nothing. */
  end(code: Status, details: string): void {
    if (this.closed) return;
    this.closed = true;
    // grpc-js turns an emitted error into the stream's status (see ServerDuplexStreamImpl).
    this.call.emit("error", Object.assign(new Error(details), { code, details }));
  }

  /**
   * Resets the HTTP/2 stream if it is still open: the status sent by end()
   * never flushes to a peer that stopped reading (frozen, partitioned), and
   * only a reset frees the stream, after which grpc-js's idle timer closes
   * the connection. Returns whether there was anything to reset.
   */
  abort(): boolean {
    const stream = this.http2Stream;
    if (!stream || stream.closed || stream.destroyed) return false;
    stream.close(http2Constants.NGHTTP2_CANCEL);
    return true;
  }

  info(): SlaveInfo {
    return {
      id: this.id,
      peer: this.peer,
      connectedAt: toDate(this.connectedAt),
      lastSeen: toDate(this.lastSeen),
      rttMs: this.rttMs,
      pingsSent: this.pingsSent,
      pongsReceived: this.pongsReceived,
      commandsSent: this.commandsSent,
    };
  }
}
