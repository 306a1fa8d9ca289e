import { randomUUID } from "node:crypto";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { JobDelivery } from "../fleet/scope.js";
import type { RoutedSendResult } from "../model.js";
import { BatchServer } from "./batch-server.js";
import type { Holder, HolderDirectory } from "./directory.js";
import { compareEpochs } from "./epoch.js";
import type { ClusterHost } from "./host.js";
import { type AnswerMessage, encodeMessage, type RouteMessage, type WhoMessage } from "./messages.js";
import { type BatchCommand, RoutedBatch, type RoutedBatchHandlers } from "./routed-batch.js";
import { type Holdings, type JobRecorder, LATE_ALLOWANCE_MS, type Liveness, outcomeOf, routeError, whenRecorded } from "./routing.js";
import type { RoutedReply } from "./types.js";

export { type Holdings, type JobRecorder, type Liveness, routeError } from "./routing.js";

/** Attempts of one routed call that got an answer saying "not here": each is asked again, past the master that said it. */
const MAX_ROUTE_ATTEMPTS = 3;
/** Sends of one routed call in all, counting those sent again because a newer claim named a new holder mid-wait. */
const MAX_ROUTE_SENDS = 6;
/**
 * How long a call to a holder that has not answered may still wait once a
 * newer claim names another master, before it is sent to that one: the
 * holder asked may have written it to the slave just before the slave moved
 * (its answer is on its way), and sending it again would deliver it twice. A
 * stalled holder never answers, and loses the call after this.
 */
const MOVED_GRACE_MS = 100;
/**
 * How long a call to a holder may go unanswered before this master starts
 * looking the slave up (every LOOKUP_STEP_MS) while it waits: claims reach
 * only an id's holders, so a newer holder is found by asking. Most calls
 * are answered sooner and cost nothing more.
 */
const WATCH_AFTER_MS = 200;
/**
 * How long one lookup waits for a holder's answer before asking again (up to
 * the call's deadline): a lookup only reads memory on the holder, so silence
 * means a stalled master, which may be the id's only holder until its slave
 * re-homes.
 */
const LOOKUP_STEP_MS = 250;

/**
 * Sends and requests to one slave wherever it is held: locally without
 * touching NATS; else as one NATS request to one holder, on that master's
 * own route subject, so no other master competes for it. The holder is the
 * one the directory names ({@link HolderDirectory}: the newest claim or
 * answer heard), or, when no live holder is known, the first to answer a
 * lookup on the id's subject (only holders subscribe it). A call to a holder that has not answered
 * within WATCH_AFTER_MS looks the slave up now and then while it waits; a
 * newer holder gets it again, at once: a stalled master that still thinks
 * it holds a slave that moved keeps no call waiting. Serves the other side
 * too: calls other masters route here arrive at {@link Router.serve}.
 */
export class Router {
  /**
   * Records a job's reply as its result in the cluster's job store (set once
   * the store is open): a reply this master received for a job's routed
   * delivery is kept even if the asking master died meanwhile. Resolves true
   * once recorded (or queued for NATS), false if another result was there first.
   */
  get recordJob(): JobRecorder | undefined {
    return this.recorder;
  }

  set recordJob(record: JobRecorder | undefined) {
    this.recorder = record;
    this.batches.recordJob = record;
  }

  private recorder: JobRecorder | undefined;
  /** Jobs' batches other masters send here for the slaves held here. */
  private readonly batches: BatchServer;

  constructor(
    private readonly host: ClusterHost,
    private readonly held: Holdings,
    private readonly directory: HolderDirectory,
    private readonly members: Liveness,
  ) {
    this.batches = new BatchServer(host, held);
  }

  /**
   * A job's command to many slaves held by other masters: one message per
   * holder and turn of the event loop (see RoutedBatch), each outcome to
   * `handlers`; a slave held by no known master is routed alone.
   */
  requestMany(command: BatchCommand, handlers: RoutedBatchHandlers): RoutedBatch {
    return new RoutedBatch(this.host, this.directory, this.members, command, handlers, (slaveId, timeoutMs) =>
      this.request(slaveId, command.data, timeoutMs, command.commandId, command.job),
    );
  }

  /** Stops serving batches (the node is closing). */
  close(): void {
    this.batches.close();
  }

  /** Writes `data` to `slaveId` wherever it is held; NOT_FOUND if no master holds it, UNAVAILABLE without NATS. */
  async send(slaveId: string, data: string): Promise<RoutedSendResult> {
    const { fleet } = this.host;
    if (this.held.holds(slaveId)) return { written: fleet.send(slaveId, data), masterId: fleet.id };
    const answer = await this.route(slaveId, { kind: "send", data, timeoutMs: 0 }, this.host.options.requestTimeout);
    return { written: answer.written === true, masterId: answer.masterId };
  }

  /**
   * Writes `data` to `slaveId` wherever it is held and waits up to `timeoutMs` for its Reply. `commandId`
   * (a job's) is the command's id on every attempt; without one, the call makes its own.
   */
  async request(slaveId: string, data: string, timeoutMs: number, commandId?: string, job?: JobDelivery): Promise<RoutedReply> {
    const { fleet } = this.host;
    // Held here: the caller (this master) records a job's result itself.
    if (this.held.holds(slaveId)) return { reply: await fleet.requestReply(slaveId, data, timeoutMs, commandId), masterId: fleet.id };
    const fields = { kind: "request" as const, data, timeoutMs, ...(job ? { job } : {}) };
    const answer = await this.route(slaveId, fields, timeoutMs + this.host.options.routeGrace, commandId);
    if (!answer.reply) throw new NetSyncError(`master ${answer.masterId} answered without a reply`, Code.INTERNAL);
    return { reply: answer.reply, masterId: answer.masterId, ...(answer.recorded ? { recorded: true } : {}) };
  }

  /** A send or request another master routed here (on this master's route subject): answered on its reply subject. */
  serve(msg: Msg): void {
    const message = this.host.decode(msg);
    if (msg.reply && message?.kind === "batch") {
      this.batches.serve(msg.reply, message);
      return;
    }
    if (!msg.reply || (message?.kind !== "send" && message?.kind !== "request")) return;
    // Acted on one turn later: nats.js hands over everything it has read in one go, so claims that arrived behind this
    // message (a master waking from a stall reads its whole backlog) are processed first, and a slave that moved
    // meanwhile is answered "not here", not written to.
    const reply = msg.reply;
    setImmediate(() => this.act(reply, message));
  }

  private act(reply: string, message: RouteMessage): void {
    const { host } = this;
    const { fleet } = host;
    host.counters.served++;
    const slaveId = message.slaveId;
    const epoch = this.held.epochOf(slaveId);
    // The epoch held when answering, not when asked: a request's slave may have reconnected meanwhile.
    const answer = (fields: Omit<AnswerMessage, "kind" | "cluster" | "masterId" | "epoch">) => {
      const now = this.held.epochOf(slaveId);
      host.respond(reply, { kind: "answer", cluster: host.clusterName, masterId: fleet.id, ...(now ? { epoch: now } : {}), ...fields });
    };
    if (!epoch) {
      // The slave left or moved since the asking master chose this one (or since NATS routed to a released route).
      answer({ error: { code: Code.NOT_FOUND, message: `no slave with id "${slaveId}" on master ${fleet.id}` }, released: true });
      return;
    }
    const late = message.deadline === undefined ? 0 : Date.now() - message.deadline;
    if (late > LATE_ALLOWANCE_MS) {
      // Held up by a stall of this master: the caller gave up long ago, or a newer holder served it. Acting now would run it late, or twice.
      host.counters.late++;
      answer({
        error: {
          code: Code.DEADLINE_EXCEEDED,
          message: `master ${fleet.id} got the command for "${slaveId}" ${late} ms after its deadline; not delivered`,
        },
      });
      return;
    }
    if (message.kind === "send") {
      answer({ written: fleet.send(slaveId, message.data, message.commandId) });
      return;
    }
    fleet.requestReply(slaveId, message.data, message.timeoutMs, message.commandId).then(
      (result) => {
        const reply = { case: result.case, value: result.value };
        const record = message.job && message.commandId ? this.recordJob?.(message.commandId, slaveId, reply, message.job) : undefined;
        whenRecorded(record, (recorded) => answer({ written: true, reply, ...(recorded ? { recorded: true } : {}) }));
      },
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.INTERNAL);
        answer({ error: { code: error.code, message: error.message } });
      },
    );
  }

  /**
   * Who holds `slaveId` now: the directory's holder when it names a live
   * master other than this one; else a lookup on the id's subject, which
   * only its holders subscribe (see lookupOnce), asked again every
   * LOOKUP_STEP_MS while nobody answers: a holder that does not answer
   * (stalled, its slave about to re-home) is passed by the new holder's
   * answer to the next step, instead of the call waiting out its deadline.
   */
  private async locate(nc: NatsConnection, slaveId: string, timeoutMs: number): Promise<Holder | { released: true } | { error: unknown }> {
    const { host } = this;
    const known = this.directory.get(slaveId);
    if (known && known.master !== host.fleet.id && this.members.knows(known.master)) {
      host.counters.routedVia.holder++;
      return known;
    }
    host.counters.routedVia.discovery++;
    const started = performance.now();
    for (;;) {
      const left = timeoutMs - (performance.now() - started);
      const found = await this.lookupOnce(nc, slaveId, Math.max(1, Math.min(left, LOOKUP_STEP_MS)));
      if (!("error" in found)) return found;
      const timedOut = routeError(found.error, slaveId, host.clusterName, timeoutMs).code === Code.DEADLINE_EXCEEDED;
      if (!timedOut || left <= LOOKUP_STEP_MS || !host.connected) return found;
    }
  }

  /**
   * One lookup: a request on the id's subject, which only its holders
   * subscribe. The first to answer names itself with its claim (the
   * directory learns it, waking calls waiting on an older holder); NATS's
   * "no responders" says nobody holds it, at once; a master that had just
   * let go of it answers "released".
   */
  private async lookupOnce(
    nc: NatsConnection,
    slaveId: string,
    timeoutMs: number,
  ): Promise<Holder | { released: true } | { error: unknown }> {
    const { host } = this;
    const who: WhoMessage = { kind: "who", cluster: host.clusterName, slaveId };
    try {
      const answer = host.decode(await nc.request(host.subjects.slave(slaveId), encodeMessage(who), { timeout: timeoutMs }));
      if (answer?.kind === "answer" && answer.released) return { released: true };
      if (answer?.kind !== "claim" || answer.slaveId !== slaveId) {
        return { error: new NetSyncError(`malformed answer looking up slave "${slaveId}"`, Code.INTERNAL) };
      }
      this.directory.learn(slaveId, answer.master, answer.epoch);
      return { master: answer.master, epoch: answer.epoch };
    } catch (error) {
      return { error };
    }
  }

  private async route(
    slaveId: string,
    fields: Pick<RouteMessage, "kind" | "data" | "timeoutMs" | "job">,
    timeoutMs: number,
    givenCommandId?: string,
  ): Promise<AnswerMessage> {
    const { host } = this;
    const started = performance.now();
    const deadline = Date.now() + timeoutMs;
    // One id for every attempt: a command sent again to a slave's new holder (the old one may have delivered it) runs once.
    const commandId = givenCommandId ?? randomUUID();
    const timeLeft = () => performance.now() - started < timeoutMs;
    const downs = host.counters.disconnects;
    /** A failed NATS request as the call's error: no answer because NATS went away is UNAVAILABLE, not a slow slave. */
    const failure = (err: unknown, holder: Holder | undefined): NetSyncError => {
      const error = routeError(err, slaveId, host.clusterName, timeoutMs);
      if (error.code !== Code.DEADLINE_EXCEEDED || (host.counters.disconnects === downs && host.connected)) return error;
      // The holder may have written it (and its answer was lost), or not. UNAVAILABLE says "not known to have run": a job
      // keeps it for later, and the command_id makes a second delivery run once.
      return new NetSyncError(
        `lost the cluster link before ${holder ? `master ${holder.master}` : "the slave's holder"} answered for slave "${slaveId}": the command may or may not have run`,
        Code.UNAVAILABLE,
        { cause: err },
      );
    };
    let outcome = "error";
    try {
      const nc = host.nc;
      if (!nc || !host.connected) {
        outcome = "unavailable";
        throw new NetSyncError(
          `cluster "${host.clusterName}" unavailable: cannot reach slave "${slaveId}" on another master`,
          Code.UNAVAILABLE,
        );
      }
      let notHere = 0;
      for (let sends = 1; ; sends++) {
        if (sends > MAX_ROUTE_SENDS) {
          outcome = "error";
          throw new NetSyncError(`no master kept slave "${slaveId}" long enough to answer (${MAX_ROUTE_SENDS} tries)`, Code.UNAVAILABLE);
        }
        const located = await this.locate(nc, slaveId, Math.max(1, timeoutMs - (performance.now() - started)));
        if ("released" in located) {
          if (++notHere < MAX_ROUTE_ATTEMPTS && timeLeft()) {
            host.counters.rerouted++;
            continue;
          }
          outcome = "not_found";
          throw new NetSyncError(`no slave with id "${slaveId}" in cluster "${host.clusterName}"`, Code.NOT_FOUND);
        }
        if ("error" in located) {
          const error = failure(located.error, undefined);
          const last = this.directory.get(slaveId);
          if (error.code === Code.NOT_FOUND && last && !this.members.knows(last.master)) {
            // Nobody answers for it, but its last holder was not seen leaving: it went silent (cut off, frozen) and may still hold it.
            outcome = "unavailable";
            throw new NetSyncError(
              `slave "${slaveId}" was last held by master ${last.master}, which stopped answering (no heartbeat); it may be cut off from the cluster`,
              Code.UNAVAILABLE,
              { cause: error },
            );
          }
          outcome = outcomeOf(error.code, "unavailable");
          throw error;
        }
        const holder = located;
        const spent = performance.now() - started;
        // A retry keeps the caller's deadline: the holder waits for the slave only for what is left of it.
        const message: RouteMessage = {
          ...fields,
          timeoutMs: Math.max(0, fields.timeoutMs - Math.round(spent)),
          cluster: host.clusterName,
          from: host.fleet.id,
          slaveId,
          deadline,
          commandId,
        };
        const result = await this.ask(nc, host.subjects.route(holder.master), message, Math.max(1, timeoutMs - spent), holder);
        if ("newer" in result) {
          // The slave moved while we waited: the old holder may be stalled; the new one answers now.
          host.counters.fenced++;
          continue;
        }
        if ("error" in result) {
          const error = failure(result.error, holder);
          if (error.code === Code.NOT_FOUND && timeLeft()) {
            // No responders on the holder's own subject: it is gone. Forget what it claimed, ask whoever holds the slave.
            this.directory.forgetMaster(holder.master);
            continue;
          }
          outcome = outcomeOf(error.code, "unavailable");
          throw error;
        }
        const answer = result.answer;
        if (answer.epoch) this.directory.learn(slaveId, answer.masterId, answer.epoch);
        if (askAgain(answer, holder) && ++notHere < MAX_ROUTE_ATTEMPTS && timeLeft()) {
          // Not there any more: forget that claim and ask again, past that master (a newer holder, or a lookup).
          if (answer.released) this.directory.release(slaveId, holder.epoch);
          host.counters.rerouted++;
          continue;
        }
        if (answer.error) {
          outcome = outcomeOf(answer.error.code, "error");
          throw new NetSyncError(answer.error.message, answer.error.code);
        }
        outcome = "ok";
        return answer;
      }
    } finally {
      host.counters.routed[outcome] = (host.counters.routed[outcome] ?? 0) + 1;
      host.options.observer?.routedLatency(performance.now() - started, outcome);
    }
  }

  /**
   * One NATS request to one holder, given up (without an answer) when a
   * newer claim names another master (heard because this master holds the
   * id, or learned by looking it up while waiting) and the holder has not answered within MOVED_GRACE_MS
   * of it. Always to one named master: a call that went to whichever master
   * of a group picked it up could not be sent again without maybe
   * delivering it twice.
   */
  private async ask(
    nc: NatsConnection,
    subject: string,
    message: RouteMessage,
    timeoutMs: number,
    holder: Holder,
  ): Promise<{ answer: AnswerMessage } | { error: unknown } | { newer: Holder }> {
    const slaveId = message.slaveId;
    let stopWaiting = (): void => {};
    let watchTimer: NodeJS.Timeout | undefined;
    const newer = new Promise<{ newer: Holder }>((resolve) => {
      stopWaiting = this.directory.onNewer(slaveId, (claim) => {
        if (claim.master !== holder.master) resolve({ newer: claim });
      });
      // Unanswered for a while: look the slave up now and then, so a newer holder (the slave moved while this one
      // stalled) is learned, and waiting ends, even though its claim reached only the id's holders.
      const lookUp = () => {
        void this.lookupOnce(nc, slaveId, LOOKUP_STEP_MS);
        watchTimer = setTimeout(lookUp, LOOKUP_STEP_MS);
      };
      watchTimer = setTimeout(lookUp, WATCH_AFTER_MS);
    });
    const asked = nc.request(subject, encodeMessage(message), { timeout: timeoutMs }).then(
      (msg) => {
        const answer = this.host.decode(msg);
        if (answer?.kind !== "answer") return { error: new NetSyncError(`malformed answer routing to slave "${slaveId}"`, Code.INTERNAL) };
        return { answer };
      },
      (error: unknown) => ({ error }),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      const first = await Promise.race([asked, newer]);
      if (!("newer" in first)) return first;
      const moved = new Promise<typeof first>((resolve) => {
        timer = setTimeout(() => resolve(first), MOVED_GRACE_MS);
      });
      return await Promise.race([asked, moved]);
    } finally {
      stopWaiting();
      clearTimeout(watchTimer);
      clearTimeout(timer);
    }
  }
}

/**
 * Whether an answer says "ask again": the master released the slave (it left
 * or moved), or the slave's stream ended before it replied and it is back on
 * a newer one (its command_id makes the repeat run once).
 */
function askAgain(answer: AnswerMessage, holder: Holder): boolean {
  if (answer.released) return true;
  return answer.error?.code === Code.UNAVAILABLE && !!answer.epoch && compareEpochs(answer.epoch, holder.epoch) > 0;
}
