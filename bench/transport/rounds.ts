/**
 * The server side of bench:transport: the targets a transport's server holds,
 * and its rounds. A round writes one pre-encoded message to every target,
 * paced like NetSync's fan-outs (src/fleet/pacer.ts, 10 ms turns), and ends
 * when every target has answered; the server's own CPU over the measured
 * rounds (gaps included) is divided by the answers.
 */
import { pace } from "../../src/fleet/pacer.js";
import { emit, onCommands, sleep, usage } from "../lib/common.js";

export interface Rounds<T> {
  readonly targets: Set<T>;
  /** Call once per answer that arrives. */
  answered(): void;
}

/**
 * Serves the orchestrator's "size" and "run" commands for a server whose
 * `write` sends a round's message to one target; or, with `whole`, whose
 * round is one call to every target at once (Socket.IO's broadcast with
 * acks), resolving once every answer came.
 */
export function serveRounds<T>(write: (target: T) => void, whole?: () => Promise<void>): Rounds<T> {
  const targets = new Set<T>();
  let want = 0;
  let got = 0;
  let done: (() => void) | undefined;
  const answered = () => {
    if (++got === want) done?.();
  };
  async function round(): Promise<void> {
    const all = [...targets];
    want = all.length;
    got = 0;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    if (whole) {
      await whole();
      return;
    }
    await pace(all, write);
    await finished;
  }
  onCommands(async (command) => {
    if (command.cmd === "size") return { size: targets.size };
    if (command.cmd !== "run") return { error: `unknown command ${command.cmd}` };
    const rounds = Number(command.rounds);
    for (let k = 0; k < 3; k++) await round(); // warm-up: V8 compiles the path
    const before = usage().cpuMs;
    const times: number[] = [];
    for (let k = 0; k < rounds; k++) {
      const start = performance.now();
      await round();
      times.push(performance.now() - start);
      await sleep(100);
    }
    return { cpuMs: usage().cpuMs - before, answers: rounds * targets.size, times };
  });
  return { targets, answered };
}

export function ready(port: number): void {
  emit({ ev: "ready", port });
}
