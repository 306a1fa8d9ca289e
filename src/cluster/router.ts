import { type Msg, NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { RoutedSendResult } from "../model.js";
import type { ClusterHost } from "./host.js";
import { type AnswerMessage, encodeMessage, type RouteMessage } from "./messages.js";
import type { RoutedReply } from "./types.js";

/** Attempts of one routed call: a route released mid-handoff is asked again, each time past the master that released it. */
const MAX_ROUTE_ATTEMPTS = 3;

/** Which slaves this master holds: the claims' route table, as the router needs it. */
export interface Holdings {
  holds(slaveId: string): boolean;
}

/**
 * Sends and requests to one slave wherever it is held: locally without
 * touching NATS, else as one NATS request on the slave's subject, answered
 * by whichever master subscribes it. Serves the other side too: the
 * requests other masters route to a slave held here arrive at
 * {@link Router.serve} (the claims subscribe each held slave's subject).
 */
export class Router {
  constructor(
    private readonly host: ClusterHost,
    private readonly held: Holdings,
  ) {}

  /** Writes `data` to `slaveId` wherever it is held; NOT_FOUND if no master holds it, UNAVAILABLE without NATS. */
  async send(slaveId: string, data: string): Promise<RoutedSendResult> {
    const { fleet } = this.host;
    if (this.held.holds(slaveId)) return { written: fleet.send(slaveId, data), masterId: fleet.id };
    const answer = await this.route(slaveId, { kind: "send", data, timeoutMs: 0 }, this.host.options.requestTimeout);
    return { written: answer.written === true, masterId: answer.masterId };
  }

  /** Writes `data` to `slaveId` wherever it is held and waits up to `timeoutMs` for its Reply. */
  async request(slaveId: string, data: string, timeoutMs: number): Promise<RoutedReply> {
    const { fleet } = this.host;
    if (this.held.holds(slaveId)) return { reply: await fleet.requestReply(slaveId, data, timeoutMs), masterId: fleet.id };
    const answer = await this.route(slaveId, { kind: "request", data, timeoutMs }, timeoutMs + this.host.options.routeGrace);
    if (!answer.reply) throw new NetSyncError(`master ${answer.masterId} answered without a reply`, Code.INTERNAL);
    return { reply: answer.reply, masterId: answer.masterId };
  }

  /** A send or request another master routed here, on a held slave's subject: answered on its reply subject. */
  serve(msg: Msg): void {
    const { host } = this;
    const { fleet } = host;
    const message = host.decode(msg);
    if (!msg.reply || (message?.kind !== "send" && message?.kind !== "request")) return;
    const reply = msg.reply;
    host.counters.served++;
    const answer = (fields: Omit<AnswerMessage, "kind" | "cluster" | "masterId">) =>
      host.respond(reply, { kind: "answer", cluster: host.clusterName, masterId: fleet.id, ...fields });
    const slaveId = message.slaveId;
    if (!this.held.holds(slaveId)) {
      // Only a released route's subscription delivers this: the slave left or moved since NATS routed the request.
      answer({ error: { code: Code.NOT_FOUND, message: `no slave with id "${slaveId}" on master ${fleet.id}` }, released: true });
      return;
    }
    if (message.kind === "send") {
      answer({ written: fleet.send(slaveId, message.data) });
      return;
    }
    fleet.requestReply(slaveId, message.data, message.timeoutMs).then(
      (result) => answer({ written: true, reply: { case: result.case, value: result.value } }),
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.INTERNAL);
        answer({ error: { code: error.code, message: error.message } });
      },
    );
  }

  private async route(
    slaveId: string,
    fields: Pick<RouteMessage, "kind" | "data" | "timeoutMs">,
    timeoutMs: number,
  ): Promise<AnswerMessage> {
    const { host } = this;
    const started = performance.now();
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
      for (let attempt = 1; ; attempt++) {
        const spent = performance.now() - started;
        // A retry keeps the caller's deadline: the holder waits for the slave only for what is left of it.
        const message: RouteMessage = {
          ...fields,
          timeoutMs: Math.max(0, fields.timeoutMs - Math.round(spent)),
          cluster: host.clusterName,
          from: host.fleet.id,
          slaveId,
        };
        let msg: Msg;
        try {
          msg = await nc.request(host.subjects.slave(slaveId), encodeMessage(message), { timeout: Math.max(1, timeoutMs - spent) });
        } catch (err) {
          const error = routeError(err, slaveId, host.clusterName, timeoutMs);
          outcome = outcomeOf(error.code, "unavailable");
          throw error;
        }
        const answer = host.decode(msg);
        if (answer?.kind !== "answer") throw new NetSyncError(`malformed answer routing to slave "${slaveId}"`, Code.INTERNAL);
        // The releasing master sent its UNSUB before this answer, so NATS routes the next attempt past it.
        if (answer.released && attempt < MAX_ROUTE_ATTEMPTS && performance.now() - started < timeoutMs) {
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
}

/** The `routed` counter's outcome for a failed routed call's code. */
function outcomeOf(code: Code, otherwise: "unavailable" | "error"): string {
  return code === Code.NOT_FOUND ? "not_found" : code === Code.DEADLINE_EXCEEDED ? "timeout" : otherwise;
}

/** A failed NATS request as a NetSyncError: no responders is NOT_FOUND (nobody holds the id), a timeout DEADLINE_EXCEEDED. */
export function routeError(err: unknown, slaveId: string, cluster: string, timeoutMs: number): NetSyncError {
  if (err instanceof NetSyncError) return err;
  const cause = (err as { cause?: unknown }).cause;
  if (err instanceof NoRespondersError || cause instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
    return new NetSyncError(`no slave with id "${slaveId}" in cluster "${cluster}"`, Code.NOT_FOUND, { cause: err });
  }
  if (err instanceof TimeoutError || cause instanceof TimeoutError) {
    return new NetSyncError(`no answer routing to slave "${slaveId}" within ${timeoutMs} ms`, Code.DEADLINE_EXCEEDED, { cause: err });
  }
  return NetSyncError.from(err, Code.UNAVAILABLE);
}
