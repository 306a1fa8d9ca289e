import { constants as http2Constants, type ServerHttp2Stream } from "node:http2";
import type { CommandSchema, Reply } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import { type Encoded, http2StreamOf, rejectCall, type ServerBidiCall } from "../grpc-adapter.js";
import type { Labels } from "../labels.js";
import type { Epoch, SlaveInfo } from "../model.js";
import type { Watched } from "./heartbeat.js";

export type SyncCall = ServerBidiCall<typeof CommandSchema, typeof CommandSchema>;

/** A request written to this slave whose Reply has not come back yet; it owns its timeout. */
interface PendingRequest {
  readonly sentAt: number;
  readonly timer: NodeJS.Timeout;
  resolve(reply: Reply): void;
  reject(reason: Error): void;
}

/**
 * Where the Replies of a batch go: one request_id written to many slaves
 * (see RequestBatch), so each pending entry is a plain record, with no
 * promise or timer of its own; the batch times them out.
 */
export interface ReplySink {
  replied(connection: SlaveConnection, reply: Reply): void;
  failed(connection: SlaveConnection, error: Error): void;
}

/** A batch's request written to this slave, awaiting its Reply. */
interface PendingInBatch {
  readonly sentAt: number;
  readonly sink: ReplySink;
}

const NO_LABELS: Labels = Object.freeze({});

/** Converts the monotonic clock the master runs on to wall-clock dates. */
const toDate = (monotonicMs: number): Date => new Date(performance.timeOrigin + monotonicMs);

/**
 * The master's side of one slave's stream, and every piece of state that
 * belongs to it: counters, the rate window, the latest Ping, requests
 * awaiting a Reply and the timers they need. It owns the call: every write
 * goes through `write()`, which keeps the bytes queued for a slow reader
 * bounded, and `end()` is the one way the master closes it. `dispose()`
 * stops every timer it holds.
 */
export class SlaveConnection implements Watched {
  lastSeen: number;
  /** Written by the heartbeat scheduler (declared here so every connection has the same shape). */
  pauseAtSeen = 0;
  /** The round slice this slave is pinged in; written by PingSlots. */
  slot = 0;
  pingsSent = 0;
  pongsReceived = 0;
  commandsSent = 0;
  /** Bytes handed to grpc-js and not yet flushed to the socket. */
  pendingBytes = 0;
  closed = false;
  /** In a cluster, when (and where) this stream was accepted: the newer of two connections of one id wins. Unset without a cluster. */
  epoch: Epoch | undefined;
  /**
   * Seq and send time of the latest Ping written to it, to turn its Pong into an RTT, and the
   * latest RTT (NaN before the first). Numbers, not a bigint and not `undefined`: these fields
   * are written for every slave on every round, and a number field is updated in place, where a
   * fresh bigint or boxed double would be one more young object held by a long-lived one.
   */
  private pingSeq = 0;
  private pingSentAt = 0;
  private lastRtt = Number.NaN;
  /**
   * Sizes of the writes grpc-js has not flushed yet, oldest first. Write callbacks come back in
   * write order, so one callback per connection can retire them, instead of a closure per write.
   */
  private readonly unflushed: number[] = [];
  private readonly onFlushed = (): void => {
    this.pendingBytes -= this.unflushed.shift() ?? 0;
  };
  /** Start of the current one-second rate window, and messages received in it. */
  private rateWindowStart: number;
  private rateWindowCount = 0;
  /** Requests awaiting a Reply, by request_id. */
  private readonly pending = new Map<bigint, PendingRequest | PendingInBatch>();
  /** The reset scheduled by abortAfter(), if the peer never reads its ended stream. */
  private abortTimer: NodeJS.Timeout | undefined;
  private readonly http2Stream: ServerHttp2Stream | undefined;

  constructor(
    readonly id: string,
    readonly peer: string,
    readonly call: SyncCall,
    readonly connectedAt: number,
    private readonly maxPendingBytes: number,
    readonly labels: Labels = NO_LABELS,
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
    this.unflushed.push(size);
    this.call.write(message, this.onFlushed);
    return true;
  }

  /** The latest ping round-trip time, ms; undefined before the first Pong. */
  get rttMs(): number | undefined {
    return Number.isNaN(this.lastRtt) ? undefined : this.lastRtt;
  }

  /** Counts one inbound message; false once more than `limit` arrived within one second. */
  admit(now: number, limit: number): boolean {
    if (now - this.rateWindowStart >= 1000) {
      this.rateWindowStart = now;
      this.rateWindowCount = 0;
    }
    return ++this.rateWindowCount <= limit;
  }

  /** Records a Ping of round `seq` (the wire's uint64, as a number: rounds never near 2^53) written at `now`. */
  pinged(seq: number, now: number): void {
    this.pingSeq = seq;
    this.pingSentAt = now;
    this.pingsSent++;
  }

  /**
   * Counts a Pong; when it answers the latest Ping, records and returns the
   * round-trip time, else (an outdated or unknown seq) returns undefined.
   */
  ponged(seq: bigint, now: number): number | undefined {
    this.pongsReceived++;
    if (this.pingSeq === 0 || Number(seq) !== this.pingSeq) return undefined;
    this.lastRtt = now - this.pingSentAt;
    return this.lastRtt;
  }

  /**
   * Waits for the Reply to request `requestId` (already written); rejects
   * with DEADLINE_EXCEEDED after `timeout` ms. The reply cannot arrive
   * before a later turn of the event loop, so registering after the write
   * is in time.
   */
  awaitReply(requestId: bigint, timeout: number, now: number): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new NetSyncError(`slave ${this.id} did not reply within ${timeout} ms`, Code.DEADLINE_EXCEEDED));
      }, timeout);
      this.pending.set(requestId, { sentAt: now, timer, resolve, reject });
    });
  }

  /**
   * Registers request `requestId` of a batch (already written): its Reply, or
   * the stream's end, goes to `sink`; the batch owns its timeout (forget()).
   * Request ids come from one per-master counter and never repeat, so a
   * Reply to an older request cannot be taken for this one.
   */
  awaitInBatch(requestId: bigint, sink: ReplySink, now: number): void {
    this.pending.set(requestId, { sentAt: now, sink });
  }

  /** Forgets a batch's request still waiting (timed out, or its batch closed); false if it was not waiting. */
  forget(requestId: bigint, sink: ReplySink): boolean {
    const request = this.pending.get(requestId);
    if (request === undefined || !("sink" in request) || request.sink !== sink) return false;
    return this.pending.delete(requestId);
  }

  /** Settles the request a Reply answers; returns its latency, or undefined if none was waiting. */
  replied(reply: Reply, now: number): number | undefined {
    const request = this.pending.get(reply.requestId);
    if (!request) return undefined;
    this.pending.delete(reply.requestId);
    if ("sink" in request) request.sink.replied(this, reply);
    else {
      clearTimeout(request.timer);
      request.resolve(reply);
    }
    return now - request.sentAt;
  }

  /** Rejects every request still waiting, e.g. because the slave left. */
  failRequests(error: Error): void {
    const requests = [...this.pending.values()];
    this.pending.clear();
    for (const request of requests) {
      if ("sink" in request) request.sink.failed(this, error);
      else {
        clearTimeout(request.timer);
        request.reject(error);
      }
    }
  }

  /** Ends the stream with a gRPC status; later calls do nothing. */
  end(code: Code, details: string): void {
    if (this.closed) return;
    this.closed = true;
    rejectCall(this.call, code, details);
  }

  /**
   * Resets the stream `delay` ms from now if it is still open then: the
   * status sent by end() never flushes to a peer that stopped reading
   * (frozen, partitioned), and only a reset frees the stream, after which
   * grpc-js's idle timer closes the connection. `done` learns whether there
   * was anything to reset; it is not called if dispose() comes first.
   */
  abortAfter(delay: number, done: (reset: boolean) => void): void {
    clearTimeout(this.abortTimer);
    this.abortTimer = setTimeout(() => {
      this.abortTimer = undefined;
      done(this.abort());
    }, delay);
  }

  /** Resets the HTTP/2 stream if it is still open; returns whether there was anything to reset. */
  abort(): boolean {
    const stream = this.http2Stream;
    if (!stream || stream.closed || stream.destroyed) return false;
    stream.close(http2Constants.NGHTTP2_CANCEL);
    return true;
  }

  /** Stops every timer this connection holds; a request still waiting is rejected, never left hanging. */
  dispose(): void {
    clearTimeout(this.abortTimer);
    this.abortTimer = undefined;
    this.failRequests(new NetSyncError(`the connection of slave ${this.id} was disposed`, Code.UNAVAILABLE));
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
      labels: this.labels,
    };
  }
}
