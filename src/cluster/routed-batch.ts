import { createInbox, type Msg, type Subscription } from "@nats-io/transport-node";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { JobDelivery } from "../fleet/scope.js";
import type { HolderDirectory } from "./directory.js";
import type { ClusterHost } from "./host.js";
import { type BatchMessage, encodeMessage, type ResultsMessage } from "./messages.js";
import { type Liveness, outcomeOf, routeError } from "./routing.js";
import type { ClusterReply, RoutedReply } from "./types.js";

/** Most slaves in one BatchMessage: a turn's writes to one holder rarely reach it; past it, another message. */
const MAX_BATCH = 1_000;
/**
 * How long a holder may take to acknowledge a batch (it answers before
 * writing anything) before the batch's slaves that have no outcome yet are
 * routed one by one: a stalled holder is then passed by the per-slave
 * routing's lookups, which follow a slave that re-homed.
 */
const ACK_WAIT_MS = 2_000;
/** How often slaves waiting on a holder are checked: past their timeout, or their holder gone from the membership. */
const CHECK_EVERY_MS = 250;

/** What becomes of each slave of a routed batch, once. */
export interface RoutedBatchHandlers {
  reply(slaveId: string, reply: ClusterReply, masterId: string, recorded: boolean): void;
  fail(slaveId: string, error: NetSyncError): void;
}

/** The command a batch carries. */
export interface BatchCommand {
  data: string;
  /** The job's id: Custom.command_id on every slave and every attempt. */
  commandId: string;
  timeoutMs: number;
  job?: JobDelivery;
}

/** A slave whose command went to its holder in a batch, and is waiting for its outcome there. */
interface Waiting {
  master: string;
  /** performance.now() when its batch went out. */
  sentAt: number;
  /** The node's disconnect count then: a link lost since makes "no answer" UNAVAILABLE, not a slow slave. */
  downs: number;
}

/**
 * The asking master's side of a job's fan-out to slaves other masters hold:
 * the slaves sent to in one turn of the event loop go to each holder the
 * directory names as one BatchMessage (up to MAX_BATCH), not one request per
 * slave, and their outcomes come back to one inbox, many per message (see
 * BatchServer). A slave whose holder is unknown, says it does not hold it,
 * does not acknowledge in time or leaves the cluster, or that came back on a
 * newer stream before replying, is routed alone (`routeOne`: the routed
 * request, which looks up, follows moves and fences), with the same
 * command_id: the slave runs it once however many times it is written.
 * Gives each slave exactly one outcome.
 */
export class RoutedBatch {
  /** Slaves sent to in this turn, by holder, not yet on their way. */
  private readonly groups = new Map<string, string[]>();
  private readonly waiting = new Map<string, Waiting>();
  private inbox: string | undefined;
  private subscription: Subscription | undefined;
  private flushQueued = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly host: ClusterHost,
    private readonly directory: HolderDirectory,
    private readonly members: Liveness,
    private readonly command: BatchCommand,
    private readonly handlers: RoutedBatchHandlers,
    private readonly routeOne: (slaveId: string, timeoutMs: number) => Promise<RoutedReply>,
  ) {}

  /** Writes the command to `slaveId`, held by another master (or by none known). */
  send(slaveId: string): void {
    if (this.closed) return;
    const { host } = this;
    const holder = this.directory.get(slaveId);
    if (!holder || holder.master === host.fleet.id || !this.members.knows(holder.master) || !host.connected) {
      this.alone(slaveId, this.command.timeoutMs);
      return;
    }
    const group = this.groups.get(holder.master) ?? [];
    if (group.length === 0) this.groups.set(holder.master, group);
    group.push(slaveId);
    if (group.length >= MAX_BATCH) {
      this.groups.delete(holder.master);
      this.dispatch(holder.master, group);
    } else if (!this.flushQueued) {
      // Once the turn's synchronous sends are done (a paced fan-out yields after each turn): one message per holder per turn.
      this.flushQueued = true;
      queueMicrotask(() => {
        this.flushQueued = false;
        for (const [master, ids] of this.groups) this.dispatch(master, ids);
        this.groups.clear();
      });
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.groups.clear();
    this.waiting.clear();
  }

  private dispatch(master: string, slaveIds: string[]): void {
    const { host, command } = this;
    const nc = host.nc;
    if (this.closed) return;
    if (!nc || !host.connected) {
      for (const slaveId of slaveIds) this.alone(slaveId, command.timeoutMs);
      return;
    }
    if (!this.inbox) {
      this.inbox = createInbox();
      this.subscription = nc.subscribe(this.inbox, { callback: host.handler((msg) => this.onResults(msg)) });
    }
    // One record for the whole batch: every slave of it waits on the same master since the same moment.
    const waiting: Waiting = { master, sentAt: performance.now(), downs: host.counters.disconnects };
    for (const slaveId of slaveIds) this.waiting.set(slaveId, waiting);
    host.counters.routedVia.holder += slaveIds.length;
    host.counters.batches++;
    const message: BatchMessage = {
      kind: "batch",
      cluster: host.clusterName,
      from: host.fleet.id,
      slaveIds,
      data: command.data,
      timeoutMs: command.timeoutMs,
      deadline: Date.now() + command.timeoutMs + host.options.routeGrace,
      commandId: command.commandId,
      inbox: this.inbox,
      ...(command.job ? { job: command.job } : {}),
    };
    const ackWait = Math.min(ACK_WAIT_MS, command.timeoutMs + host.options.routeGrace);
    nc.request(host.subjects.route(master), encodeMessage(message), { timeout: ackWait }).then(
      (msg) => this.acknowledged(master, slaveIds, msg),
      (err: unknown) => {
        const error = routeError(err, slaveIds[0] ?? "", host.clusterName, ackWait);
        // No responders on its own subject: that master is gone; forget what it claimed.
        if (error.code === Code.NOT_FOUND) this.directory.forgetMaster(master);
        this.reroute(master, slaveIds);
      },
    );
    this.timer ??= setTimeout(() => this.check(), CHECK_EVERY_MS);
  }

  private acknowledged(master: string, slaveIds: string[], msg: Msg): void {
    if (this.closed) return;
    const answer = this.host.decode(msg);
    if (answer?.kind !== "answer") {
      this.reroute(master, slaveIds);
      return;
    }
    if (answer.error) {
      // Refused as a whole (it reached the holder past its deadline): what a routed request would have said.
      const error = new NetSyncError(answer.error.message, answer.error.code);
      for (const slaveId of slaveIds) if (this.take(slaveId, master)) this.failed(slaveId, error);
      return;
    }
    // Not (or no longer) there: routed alone, which asks whoever holds it now.
    this.reroute(master, answer.notHeld ?? []);
  }

  private onResults(msg: Msg): void {
    const message = this.host.decode(msg);
    if (this.closed || message?.kind !== "results" || message.commandId !== this.command.commandId) return;
    this.settle(message);
  }

  private settle(message: ResultsMessage): void {
    const { masterId } = message;
    for (const result of message.results) {
      const { slaveId } = result;
      if (!this.take(slaveId, masterId)) continue;
      if (result.again) this.alone(slaveId, this.command.timeoutMs);
      else if (result.reply) {
        this.count("ok");
        this.handlers.reply(slaveId, result.reply, masterId, result.recorded === true);
      } else this.failed(slaveId, new NetSyncError(result.error?.message ?? "no reply", result.error?.code ?? Code.INTERNAL));
      if (this.closed) return;
    }
  }

  /** Slaves of a batch to `master` that still wait for it, routed alone now with what is left of their time. */
  private reroute(master: string, slaveIds: string[]): void {
    const now = performance.now();
    for (const slaveId of slaveIds) {
      const waiting = this.waiting.get(slaveId);
      if (waiting?.master !== master) continue;
      this.waiting.delete(slaveId);
      this.host.counters.rerouted++;
      this.alone(slaveId, Math.max(1, this.command.timeoutMs - (now - waiting.sentAt)));
    }
  }

  /** Removes `slaveId` from the waiting if it waits on `master`: whoever takes it gives its one outcome. */
  private take(slaveId: string, master: string): boolean {
    if (this.waiting.get(slaveId)?.master !== master) return false;
    this.waiting.delete(slaveId);
    return true;
  }

  private alone(slaveId: string, timeoutMs: number): void {
    this.routeOne(slaveId, timeoutMs).then(
      ({ reply, masterId, recorded }) => {
        if (!this.closed) this.handlers.reply(slaveId, reply, masterId, recorded === true);
      },
      (err: unknown) => {
        if (!this.closed) this.handlers.fail(slaveId, NetSyncError.from(err, Code.UNAVAILABLE));
      },
    );
  }

  private failed(slaveId: string, error: NetSyncError): void {
    this.count(outcomeOf(error.code, "error"));
    this.handlers.fail(slaveId, error);
  }

  private count(outcome: string): void {
    const { routed } = this.host.counters;
    routed[outcome] = (routed[outcome] ?? 0) + 1;
  }

  /** Times out the slaves waiting past their timeout (and the grace), and routes alone those whose holder left the cluster. */
  private check(): void {
    this.timer = undefined;
    if (this.closed) return;
    const { host, command } = this;
    const now = performance.now();
    const limit = command.timeoutMs + host.options.routeGrace;
    for (const [slaveId, waiting] of this.waiting) {
      if (!this.members.knows(waiting.master)) {
        // Its holder left or went silent: the slave may have re-homed; the routed request finds where.
        this.reroute(waiting.master, [slaveId]);
        continue;
      }
      if (now - waiting.sentAt < limit) continue;
      this.waiting.delete(slaveId);
      const lost = host.counters.disconnects !== waiting.downs || !host.connected;
      this.failed(
        slaveId,
        lost
          ? new NetSyncError(
              `lost the cluster link before master ${waiting.master} answered for slave "${slaveId}": the command may or may not have run`,
              Code.UNAVAILABLE,
            )
          : new NetSyncError(`no answer from master ${waiting.master} for slave "${slaveId}" within ${limit} ms`, Code.DEADLINE_EXCEEDED),
      );
      if (this.closed) return;
    }
    if (this.waiting.size > 0) this.timer = setTimeout(() => this.check(), CHECK_EVERY_MS);
  }
}
