/**
 * The one polling wait of the tests and the benchmarks. Polling, not events:
 * the conditions waited on (a master's registry, a socket count in /proc, a
 * listener on a port) have no event of their own to await.
 */
import { setTimeout as delay } from "node:timers/promises";

/**
 * Resolves once `predicate` holds, checking it at once and then every `pollMs`
 * (after an async predicate settles, so checks never overlap); rejects after
 * `timeoutMs` with "timed out after … ms waiting for `what`". `what` may be a
 * function, to report the state seen at the time of the timeout.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 2_000,
  what: string | (() => string) = "a condition",
  pollMs = 5,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await predicate())) {
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await delay(pollMs);
  }
}
