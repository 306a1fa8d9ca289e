import { getLogger } from "../logger.js";
import { formatDuration } from "./duration.js";

/** Resolves when the process is asked to stop; a second signal exits at once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.once("SIGINT", () => process.exit(130));
      process.once("SIGTERM", () => process.exit(143));
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

/**
 * Starts something and runs until a signal (or `duration`, for demos and
 * smoke tests), then stops it. Signal handlers go in before the start, so
 * a signal during startup still stops cleanly.
 */
export async function runUntilStopped(start: () => Promise<() => Promise<void>>, duration?: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const signal = untilSignal();
  const stop = await start();
  const reason = await Promise.race([
    signal.then((s) => `received ${s}`),
    new Promise<string>((resolve) => {
      if (duration !== undefined) timer = setTimeout(() => resolve(`ran for ${formatDuration(duration)}`), duration);
    }),
  ]);
  clearTimeout(timer);
  getLogger("netsync").info(`${reason}; stopping`);
  await stop();
}
