import { Code } from "../code.js";
import type { NetSyncError } from "../errors.js";
import { pace } from "../fleet/pacer.js";
import { compareEpochs, type Epoch } from "./epoch.js";
import type { ClusterHost } from "./host.js";
import type { BatchMessage, BatchResult } from "./messages.js";
import { type Holdings, type JobRecorder, LATE_ALLOWANCE_MS, whenRecorded } from "./routing.js";
import type { ClusterReply } from "./types.js";

/**
 * Bytes of results (as estimated: ids and reply values) that go out in one
 * ResultsMessage at most: well under NATS's default max_payload of 1 MiB even
 * if every character of a reply had to be escaped in the JSON.
 */
const RESULTS_BYTES = 128 * 1024;
/** What a result adds to its id and reply in the JSON, about. */
const RESULT_OVERHEAD = 64;

/** A batch being served: its slaves' outcomes not given yet. */
interface Serving {
  readonly message: BatchMessage;
  /** The epoch each slave was held with when the command was written: a later one means it came back. */
  readonly epochs: Map<string, Epoch>;
  local: { send(slaveId: string): void; close(): void } | undefined;
  /** Outcomes still to come. */
  left: number;
  /** Outcomes waiting to go out together, and their size. */
  out: BatchResult[];
  bytes: number;
  flushing: boolean;
}

/**
 * The holder's side of a job's fan-out to slaves held here (a
 * {@link BatchMessage}, from an asking master's RoutedBatch): answers at once
 * with the ids it does not hold, writes the command to the others paced (one
 * encoding, the fleet's request batch), and publishes their outcomes to the
 * asker's inbox as they come, many per message. Where the cluster's job
 * store is open, a reply is recorded as the job's result first, as a routed
 * request's is, so it outlives the asking master.
 */
export class BatchServer {
  /** As Router.recordJob: where replies to jobs' deliveries are recorded (the cluster's job store, once open). */
  recordJob: JobRecorder | undefined;
  private readonly serving = new Set<Serving>();

  constructor(
    private readonly host: ClusterHost,
    private readonly held: Holdings,
  ) {}

  /** A batch another master routed here, answered on `reply`; acted on one turn later, as Router.serve() does and for its reason. */
  serve(reply: string, message: BatchMessage): void {
    setImmediate(() => this.act(reply, message));
  }

  /** Stops every batch being served: their outcomes are no longer sent (the asker times them out, or routes them again). */
  close(): void {
    for (const serving of this.serving) serving.local?.close();
    this.serving.clear();
  }

  private act(reply: string, message: BatchMessage): void {
    const { host } = this;
    if (host.closing) return;
    const { fleet } = host;
    host.counters.served += message.slaveIds.length;
    const late = Date.now() - message.deadline;
    if (late > LATE_ALLOWANCE_MS) {
      // Held up by a stall of this master: its asker gave up on these long ago (see Router).
      host.counters.late += message.slaveIds.length;
      host.respond(reply, {
        kind: "answer",
        cluster: host.clusterName,
        masterId: fleet.id,
        error: { code: Code.DEADLINE_EXCEEDED, message: `master ${fleet.id} got the command ${late} ms after its deadline; not delivered` },
      });
      return;
    }
    const serving: Serving = { message, epochs: new Map(), local: undefined, left: 0, out: [], bytes: 0, flushing: false };
    const notHeld: string[] = [];
    for (const slaveId of message.slaveIds) {
      const epoch = this.held.epochOf(slaveId);
      if (epoch) serving.epochs.set(slaveId, epoch);
      else notHeld.push(slaveId);
    }
    host.respond(reply, { kind: "answer", cluster: host.clusterName, masterId: fleet.id, written: true, notHeld });
    serving.left = serving.epochs.size;
    if (serving.left === 0) return;
    serving.local = fleet.requestMany(message.data, message.commandId, message.timeoutMs, {
      reply: (slaveId, answer) => this.replied(serving, slaveId, answer),
      fail: (slaveId, error) => this.failed(serving, slaveId, error),
    });
    this.serving.add(serving);
    // Paced like every fan-out here: a batch is at most what the asker wrote in one turn, but this master has its own heartbeat to keep.
    void pace(serving.epochs.keys(), (slaveId) => serving.local?.send(slaveId), { stopped: () => !this.serving.has(serving) });
  }

  private replied(serving: Serving, slaveId: string, reply: ClusterReply): void {
    const { job, commandId } = serving.message;
    const record = job ? this.recordJob?.(commandId, slaveId, reply, job) : undefined;
    whenRecorded(record, (recorded) => this.settled(serving, { slaveId, reply, ...(recorded ? { recorded: true } : {}) }));
  }

  private failed(serving: Serving, slaveId: string, error: NetSyncError): void {
    const sent = serving.epochs.get(slaveId);
    const now = this.held.epochOf(slaveId);
    // Its stream ended before the reply, and it is back here on a newer one: the asker asks again (the slave runs it once).
    const again = error.code === Code.UNAVAILABLE && sent !== undefined && now !== undefined && compareEpochs(now, sent) > 0;
    this.settled(serving, { slaveId, error: { code: error.code, message: error.message }, ...(again ? { again: true } : {}) });
  }

  private settled(serving: Serving, result: BatchResult): void {
    if (!this.serving.has(serving)) return;
    serving.out.push(result);
    serving.bytes += result.slaveId.length + (result.reply?.value.length ?? result.error?.message.length ?? 0) + RESULT_OVERHEAD;
    if (--serving.left === 0) {
      serving.local?.close();
      this.serving.delete(serving);
      this.flush(serving);
      return;
    }
    if (serving.bytes >= RESULTS_BYTES) this.flush(serving);
    else if (!serving.flushing) {
      // Outcomes that come in the same turn (a burst of replies read together) go out in one message.
      serving.flushing = true;
      setImmediate(() => {
        serving.flushing = false;
        this.flush(serving);
      });
    }
  }

  private flush(serving: Serving): void {
    if (serving.out.length === 0) return;
    const { host } = this;
    const results = serving.out;
    serving.out = [];
    serving.bytes = 0;
    const nc = host.nc;
    if (!nc) return;
    host.publish(nc, serving.message.inbox, {
      kind: "results",
      cluster: host.clusterName,
      masterId: host.fleet.id,
      commandId: serving.message.commandId,
      results,
    });
  }
}
