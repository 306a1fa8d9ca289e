import type * as grpc from "@grpc/grpc-js";
import { Code } from "../code.js";
import { RETRY_AFTER_METADATA_KEY } from "../wire.js";

/**
 * Why a master refused a stream, as far as the slave must act on it:
 * `credentials` (UNAUTHENTICATED, PERMISSION_DENIED: retrying soon cannot
 * help), `busy` (RESOURCE_EXHAUSTED: admission), `duplicate`
 * (ALREADY_EXISTS: the id is cooling down), each with the master's retry
 * hint when it gave one.
 */
export interface Refusal {
  kind: "credentials" | "busy" | "duplicate" | "other";
  retryAfterMs: number | undefined;
}

/** Longest hint believed (a day): a bigger number is a broken master, not advice. */
const MAX_HINT_MS = 86_400_000;

/** The refusal a stream's error status says, from its code and its `netsync-retry-after-ms` trailer. */
export function refusalOf(err: Pick<grpc.ServiceError, "code" | "metadata">): Refusal {
  const raw = err.metadata?.get(RETRY_AFTER_METADATA_KEY)[0];
  const hint = typeof raw === "string" && /^\d{1,12}$/.test(raw) ? Math.min(Number(raw), MAX_HINT_MS) : undefined;
  const kind =
    err.code === Code.UNAUTHENTICATED || err.code === Code.PERMISSION_DENIED
      ? "credentials"
      : err.code === Code.RESOURCE_EXHAUSTED
        ? "busy"
        : err.code === Code.ALREADY_EXISTS
          ? "duplicate"
          : "other";
  return { kind, retryAfterMs: hint };
}

/**
 * How long to wait after a hint of `hintMs`: the hint plus up to `jitter`
 * times it more, at random. Never less than the hint (the master said
 * not before then); the spread keeps slaves refused together from
 * coming back in the same instant.
 */
export function retryDelay(hintMs: number, jitter: number, random: () => number = Math.random): number {
  return Math.round(hintMs * (1 + jitter * random()));
}
