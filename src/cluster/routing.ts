import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { JobDelivery } from "../fleet/scope.js";
import type { Epoch } from "./epoch.js";
import type { ClusterReply } from "./types.js";

// What routed calls share, one by one (Router) or by the batch (RoutedBatch, BatchServer).

/**
 * How late past its deadline (by this master's clock) a routed message may
 * still be acted on: the clocks of two masters differ a little even under
 * NTP. A message later than that was held up by a stall of this master.
 */
export const LATE_ALLOWANCE_MS = 1_000;

/** What the router asks of the claims: what is held here, and with which epoch. */
export interface Holdings {
  holds(slaveId: string): boolean;
  epochOf(slaveId: string): Epoch | undefined;
}

/** Which masters are known alive (the membership). */
export interface Liveness {
  knows(masterId: string): boolean;
}

/**
 * Records a job's reply as its result in the cluster's job store (set once
 * the store is open): a reply a holder received for a job's routed delivery
 * is kept even if the asking master died meanwhile. Resolves true once
 * recorded (or queued for NATS), false if another result was there first.
 */
export type JobRecorder = (jobId: string, slaveId: string, reply: ClusterReply, job: JobDelivery) => Promise<boolean>;

/**
 * Calls `done` once a job's reply is recorded (true if this master's record
 * is the one kept), at once without a recording, and with false if it
 * failed: a holder answers only then, so the asker knows whether it must
 * record the reply itself (and if it died meanwhile, the result is kept).
 */
export function whenRecorded(record: Promise<boolean> | undefined, done: (recorded: boolean) => void): void {
  if (!record) {
    done(false);
    return;
  }
  record.then(done, () => done(false));
}

/** The `routed` counter's outcome for a failed routed call's code. */
export function outcomeOf(code: Code, otherwise: "unavailable" | "error"): string {
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
