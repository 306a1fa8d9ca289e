import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import {
  WatchEventKind as WatchKindProto,
  type WatchRequest,
  type WatchResponse,
  WatchResponseSchema,
} from "../../gen/netsync/v1/admin_pb.js";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import { DecodeFailure, rejectCall } from "../grpc-adapter.js";
import type { FleetOptions, FleetView, WatchEvent, WatchEventKind, WatchListener } from "../model.js";
import { Selector } from "../selector.js";
import { closeReasonMessage, slaveMessage } from "./slave-message.js";

/** What AdminService.Watch needs of a master: its events, and its fleet for the snapshot. */
export interface WatchPort {
  readonly id: string;
  watch(listener: WatchListener): () => void;
  fleet(options: FleetOptions): Promise<FleetView>;
}

type WatchCall = grpc.ServerWritableStream<WatchRequest | DecodeFailure, WatchResponse>;

const KINDS: Record<WatchEventKind, WatchKindProto> = {
  connected: WatchKindProto.CONNECTED,
  disconnected: WatchKindProto.DISCONNECTED,
  evicted: WatchKindProto.EVICTED,
  replaced: WatchKindProto.REPLACED,
  master_joined: WatchKindProto.MASTER_JOINED,
  master_left: WatchKindProto.MASTER_LEFT,
};

function responseOf(event: WatchEvent): WatchResponse {
  return create(WatchResponseSchema, {
    kind: KINDS[event.kind],
    slave: event.slave && { ...slaveMessage(event.slave), masterId: event.slave.masterId },
    masterId: event.masterId,
    time: timestampFromDate(event.at),
    details: event.details,
    reason: event.reason ? closeReasonMessage(event.reason) : undefined,
  });
}

/**
 * One Watch stream. It writes while grpc-js takes writes (call.write()
 * returning true) and queues once it refuses, until 'drain'; more than
 * `limit` live events queued and the watcher is cut with
 * RESOURCE_EXHAUSTED. So the master never waits for a watcher and never
 * holds more than `limit` events (plus what grpc-js and HTTP/2 flow control
 * hold) for one that stopped reading. The snapshot is queued without the
 * limit: it is bounded by the fleet, and sent once.
 */
class Watcher {
  private readonly queue: { message: WatchResponse; live: boolean }[] = [];
  private queuedLive = 0;
  private blocked = false;
  closed = false;

  constructor(
    readonly call: WatchCall,
    private readonly limit: number,
    private readonly onCut: (watcher: Watcher, queued: number) => void,
  ) {
    call.on("drain", () => this.drain());
  }

  send(message: WatchResponse, live = true): void {
    if (this.closed) return;
    if (!this.blocked && this.queue.length === 0) {
      if (!this.call.write(message)) this.blocked = true;
      return;
    }
    if (live && this.queuedLive >= this.limit) {
      this.onCut(this, this.queuedLive);
      return;
    }
    this.queue.push({ message, live });
    if (live) this.queuedLive++;
  }

  private drain(): void {
    this.blocked = false;
    let i = 0;
    while (i < this.queue.length && !this.blocked && !this.closed) {
      const item = this.queue[i++]!;
      if (item.live) this.queuedLive--;
      if (!this.call.write(item.message)) this.blocked = true;
    }
    this.queue.splice(0, i);
  }

  end(code: Code, details: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    rejectCall(this.call, code, details);
  }
}

/**
 * AdminService.Watch: each call follows the master's watch (local events,
 * and in a cluster every master's and the membership), filtered by selector
 * and kinds, optionally after a snapshot of the fleet. close() ends every
 * watch with UNAVAILABLE "master shutting down".
 */
export class WatchService {
  private readonly watchers = new Map<Watcher, () => void>();

  constructor(
    private readonly port: WatchPort,
    private readonly options: { buffer: number; onCut?: (peer: string, queued: number) => void },
  ) {}

  /** Watch streams open now. */
  get size(): number {
    return this.watchers.size;
  }

  readonly handler = (call: WatchCall): void => {
    const request = call.request;
    if (request instanceof DecodeFailure) {
      rejectCall(call, Code.INVALID_ARGUMENT, `malformed request: ${request.error.message}`);
      return;
    }
    let selector: Selector;
    try {
      selector = Selector.from(request.selector);
      for (const kind of request.kinds) {
        if (!Object.values(KINDS).includes(kind) && kind !== WatchKindProto.SNAPSHOT && kind !== WatchKindProto.SYNCED) {
          throw new NetSyncError(`unknown event kind ${kind}`, Code.INVALID_ARGUMENT);
        }
      }
    } catch (err) {
      const error = NetSyncError.from(err, Code.INVALID_ARGUMENT);
      rejectCall(call, error.code, error.message);
      return;
    }
    const kinds = new Set(request.kinds);
    const wanted = (event: WatchEvent) =>
      (kinds.size === 0 || kinds.has(KINDS[event.kind])) && (!event.slave || selector.empty || selector.matches(event.slave.labels));
    const watcher = new Watcher(call, this.options.buffer, (w, queued) => {
      this.options.onCut?.(call.getPeer(), queued);
      this.stop(w, Code.RESOURCE_EXHAUSTED, `watcher too slow: ${queued} events buffered`);
    });
    // Events that arrive while the snapshot is being gathered wait here (bounded like the queue), then follow it.
    let early: WatchEvent[] | undefined = request.snapshot ? [] : undefined;
    const unwatch = this.port.watch((event) => {
      if (!wanted(event)) return;
      if (!early) watcher.send(responseOf(event));
      else if (early.length < this.options.buffer) early.push(event);
      else this.stop(watcher, Code.RESOURCE_EXHAUSTED, `watcher too slow: ${early.length} events buffered`);
    });
    this.watchers.set(watcher, unwatch);
    const gone = () => this.stop(watcher);
    call.on("cancelled", gone);
    call.on("close", gone);
    call.on("error", gone);
    if (!request.snapshot) {
      watcher.send(
        create(WatchResponseSchema, { kind: WatchKindProto.SYNCED, masterId: this.port.id, time: timestampFromDate(new Date()) }),
      );
      return;
    }
    this.port.fleet({ selector: request.selector }).then(
      (view) => {
        if (watcher.closed) return;
        const time = timestampFromDate(new Date());
        if (kinds.size === 0 || kinds.has(WatchKindProto.SNAPSHOT)) {
          for (const slave of view.slaves) {
            const message = { ...slaveMessage(slave), masterId: slave.masterId };
            watcher.send(
              create(WatchResponseSchema, { kind: WatchKindProto.SNAPSHOT, slave: message, masterId: slave.masterId, time }),
              false,
            );
          }
        }
        const details =
          view.unanswered.length > 0 ? `no answer from master(s) ${view.unanswered.join(", ")}: their slaves are missing` : "";
        watcher.send(create(WatchResponseSchema, { kind: WatchKindProto.SYNCED, masterId: this.port.id, time, details }), false);
        const held = early ?? [];
        early = undefined;
        for (const event of held) watcher.send(responseOf(event));
      },
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.INTERNAL);
        this.stop(watcher, error.code, error.message);
      },
    );
  };

  /** Ends every watch (the master is closing). */
  close(): void {
    for (const watcher of [...this.watchers.keys()]) this.stop(watcher, Code.UNAVAILABLE, "master shutting down");
  }

  /** Stops following events for `watcher` and, with a code, ends its stream with that status. */
  private stop(watcher: Watcher, code?: Code, details = ""): void {
    const unwatch = this.watchers.get(watcher);
    if (!unwatch) return;
    this.watchers.delete(watcher);
    unwatch();
    if (code === undefined) watcher.closed = true;
    else watcher.end(code, details);
  }
}
