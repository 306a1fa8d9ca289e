/**
 * A synthetic slave: a fake grpc-js server call (the `SyncCall` a master's
 * Fleet.accept() takes) standing for one slave's Sync stream, with no socket
 * behind it. It carries the metadata a real slave sends (its id and labels,
 * src/wire.ts), and answers what the master writes to it the way the Node
 * slave does, on a later turn of the event loop: a Ping with a Pong, a Custom
 * that asks for a reply with a Reply "ok". So the stream goes through the real
 * gate, registry, heartbeat and (in a cluster) claim and route subscription;
 * only grpc-js and HTTP/2 are missing.
 */
import { EventEmitter } from "node:events";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { type Command, CommandSchema } from "../../gen/netsync/v1/netsync_pb.js";
import type { Encoded } from "../../src/grpc-adapter.js";
import { LABELS_METADATA_KEY, SLAVE_ID_METADATA_KEY } from "../../src/wire.js";

/** How the stream ended, as far as the synthetic slave can tell. */
export type SyntheticEnd = "open" | "refused" | "ended";

export class SyntheticSlave extends EventEmitter {
  readonly metadata = new Metadata();
  cancelled = false;
  /** Set by sendMetadata(): the master registered the stream. */
  registered = false;
  state: SyntheticEnd = "open";
  /** The status the master ended the stream with (rejectCall emits it as an error), if it did. */
  status: { code: number; details: string; retryAfterMs?: number } | undefined;
  received = 0;

  constructor(
    readonly id: string,
    labels: string,
    private readonly peer: string,
  ) {
    super();
    this.metadata.set(SLAVE_ID_METADATA_KEY, id);
    this.metadata.set(LABELS_METADATA_KEY, labels);
    // rejectCall() ends a call by emitting "error" with the status; Fleet.accept() listens too once registered.
    this.on("error", (err: Error & { code?: number; details?: string; metadata?: Metadata }) => {
      const retry = err.metadata?.get("netsync-retry-after-ms")[0];
      this.status = { code: err.code ?? -1, details: err.details ?? err.message, retryAfterMs: retry ? Number(retry) : undefined };
      this.state = this.registered ? "ended" : "refused";
    });
  }

  getPeer(): string {
    return this.peer;
  }

  sendMetadata(_headers: Metadata): void {
    this.registered = true;
  }

  /** The master's write: decode the Command and answer it on a later turn; the flush callback at once (nothing is queued). */
  write(message: Encoded, callback?: () => void): boolean {
    this.received++;
    const command = fromBinary(CommandSchema, message.bytes);
    const answer = answerTo(command);
    if (answer) setImmediate(() => this.state === "open" && this.emit("data", answer));
    callback?.();
    return true;
  }

  /** A clean end from the master (status OK). */
  end(): void {
    this.state = "ended";
  }

  /** The slave goes away as a crash would look to the master: the stream is cancelled. */
  vanish(): void {
    if (this.state !== "open") return;
    this.cancelled = true;
    this.state = "ended";
    this.emit("cancelled");
  }
}

function answerTo(command: Command): Command | undefined {
  switch (command.kind.case) {
    case "ping":
      return create(CommandSchema, { kind: { case: "pong", value: { seq: command.kind.value.seq } } });
    case "custom": {
      const { requestId } = command.kind.value;
      if (requestId === 0n) return undefined;
      return create(CommandSchema, { kind: { case: "reply", value: { requestId, result: { case: "data", value: "ok" } } } });
    }
    default:
      return undefined;
  }
}

/** The id of slave number `i` of the simulated fleet. */
export const slaveId = (i: number): string => `s${String(i).padStart(8, "0")}`;

/** Its labels, as the metadata value: shard = i mod 100, so `shard=7` matches 1 %. */
export const slaveLabels = (i: number): string => `shard=${i % 100}`;

/** A peer address of the kind a real stream has. */
export const slavePeer = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:40000`;
