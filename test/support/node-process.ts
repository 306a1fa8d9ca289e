import { type ChildProcess, spawn } from "node:child_process";
import { waitFor } from "./wait.js";

/** A child `node` process whose stdout JSON lines are collected, stopped by `stopAll()`. */
export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr as they arrived. */
  output(): string;
  /** The JSON lines printed on stdout. */
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves with the first JSON line `predicate` accepts (already printed or to come). */
  line(predicate: (line: Record<string, unknown>) => boolean, timeoutMs: number, what: string): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
  signal(signal: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

/** Starts `node ARGS…` (e.g. ["--import", "tsx", fixture, …]); its stdout lines that parse as JSON are kept. */
export function spawnNode(args: string[], env: NodeJS.ProcessEnv = {}): NodeProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  let partial = "";
  const lines: Array<Record<string, unknown>> = [];
  child.stdout?.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    partial += text;
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (!line.startsWith("{")) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON line
      }
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    pid: child.pid ?? 0,
    output: () => output,
    lines,
    exited,
    line: async (predicate, timeoutMs, what) => {
      await waitFor(
        () => lines.some(predicate),
        timeoutMs,
        () => `${what}; output so far:\n${output}`,
        10,
      );
      return lines.find(predicate) as Record<string, unknown>;
    },
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** SIGKILLs (after SIGCONT, should one be stopped) every process spawnNode started and waits for each to exit. */
export async function stopAll(): Promise<void> {
  const exits = [...running].map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      }),
  );
  await Promise.all(exits);
}
