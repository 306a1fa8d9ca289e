import type { Reply } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { Encoded } from "../grpc-adapter.js";
import type { ReplySink, SlaveConnection } from "./slave-connection.js";

/** Where a batch's Reply came from, when not from a slave of this master: its holder, and whether that one recorded it. */
export interface BatchVia {
  masterId: string;
  /** The holder recorded the reply as the job's result in the cluster's job store (see JobDelivery). */
  recorded: boolean;
}

/** What becomes of each request of a batch; called once per slave sent to (never after close()). */
export interface BatchHandlers {
  /** The slave's Reply; `via` when another master holds the slave. */
  reply(slaveId: string, reply: Reply, via?: BatchVia): void;
  /**
   * No Reply: NOT_FOUND (no such slave here) or RESOURCE_EXHAUSTED (not
   * written), UNAVAILABLE (its stream ended first), DEADLINE_EXCEEDED
   * (written, no Reply within the timeout).
   */
  fail(slaveId: string, error: NetSyncError): void;
}

/**
 * One command asking for a Reply, sent slave by slave to many (a job's
 * fan-out): the lone master's {@link RequestBatch}, or a cluster's, which
 * also routes to the slaves other masters hold, one message per holder.
 */
export interface CommandBatch {
  /** Writes the command to `slaveId`; what becomes of it goes to the handlers (a failure to write may go at once). */
  send(slaveId: string): void;
  /** Stops every timer; outcomes not given yet are never given. */
  close(): void;
}

/** What a batch needs of the fleet: finding a local connection and writing to it (counted, or evicting a slow one). */
export interface BatchFleet {
  get(slaveId: string): SlaveConnection | undefined;
  write(connection: SlaveConnection, message: Encoded): boolean;
}

/**
 * One command asking for a Reply, sent to many local slaves (a job's
 * fan-out): encoded once with one request_id for all of them (pending
 * requests are per connection, and the id comes from the fleet's counter, so
 * it is unique on every stream), each pending entry a plain record with no
 * promise or timer, and one timer for the whole batch that times out, in
 * write order, the requests whose timeout has passed. What `fleet.request()`
 * does per slave, with the same outcomes, at a fraction of the allocations.
 */
export class RequestBatch implements ReplySink, CommandBatch {
  /** Connections written to and when (performance.now()), in write order; `head` is the oldest not yet past its timeout. */
  private readonly sentTo: SlaveConnection[] = [];
  private readonly sentAt: number[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly fleet: BatchFleet,
    private readonly requestId: bigint,
    private readonly message: Encoded,
    private readonly timeout: number,
    private readonly handlers: BatchHandlers,
  ) {}

  /** Writes the command to `slaveId` and waits for its Reply; what becomes of it goes to the handlers (a failure to write at once). */
  send(slaveId: string): void {
    if (this.closed) return;
    const connection = this.fleet.get(slaveId);
    if (!connection) {
      this.handlers.fail(slaveId, new NetSyncError(`no slave with id "${slaveId}"`, Code.NOT_FOUND));
      return;
    }
    // Written before it is registered as pending: a failed write must not look like the slave leaving.
    if (!this.fleet.write(connection, this.message)) {
      this.handlers.fail(
        slaveId,
        new NetSyncError(`could not write to slave ${slaveId}: it is not reading its stream`, Code.RESOURCE_EXHAUSTED),
      );
      return;
    }
    const now = performance.now();
    connection.awaitInBatch(this.requestId, this, now);
    this.sentTo.push(connection);
    this.sentAt.push(now);
    this.timer ??= setTimeout(() => this.sweep(), this.timeout);
  }

  /** Stops the timer and forgets the requests still waiting: their Replies, if any come, are ignored. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = this.head; i < this.sentTo.length; i++) this.sentTo[i]?.forget(this.requestId, this);
    this.sentTo.length = 0;
    this.sentAt.length = 0;
  }

  replied(connection: SlaveConnection, reply: Reply): void {
    if (!this.closed) this.handlers.reply(connection.id, reply);
  }

  failed(connection: SlaveConnection, error: Error): void {
    if (!this.closed) this.handlers.fail(connection.id, NetSyncError.from(error, Code.UNAVAILABLE));
  }

  /** Times out every request written at least `timeout` ms ago that is still waiting, then waits for the next one's. */
  private sweep(): void {
    this.timer = undefined;
    if (this.closed) return;
    // A timer may fire up to 1 ms early against performance.now().
    const now = performance.now() + 1;
    const { sentTo, sentAt, timeout } = this;
    while (this.head < sentTo.length && (sentAt[this.head] as number) + timeout <= now) {
      const connection = sentTo[this.head] as SlaveConnection;
      this.head++;
      if (!connection.forget(this.requestId, this)) continue;
      this.handlers.fail(
        connection.id,
        new NetSyncError(`slave ${connection.id} did not reply within ${timeout} ms`, Code.DEADLINE_EXCEEDED),
      );
      if (this.closed) return;
    }
    if (this.head < sentTo.length) {
      this.timer = setTimeout(() => this.sweep(), Math.max(0, (sentAt[this.head] as number) + timeout - performance.now()));
      return;
    }
    sentTo.length = 0;
    sentAt.length = 0;
    this.head = 0;
  }
}
