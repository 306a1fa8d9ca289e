/**
 * Shared by the orchestrator, the servers and the load generators: the
 * clock every process stamps with, the JSON-lines protocol on stdin/stdout,
 * and /proc readings.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

/**
 * Wall-clock milliseconds with sub-millisecond resolution. Every process on
 * the machine reads the same system clock (performance.timeOrigin is taken
 * from it at start), so a timestamp written by one process and read by
 * another gives a one-way delay without clock-sync error beyond a few µs.
 */
export const hrNow = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What every child process receives as its one argument (JSON). */
export interface ChildConfig {
  [key: string]: unknown;
}

export function childConfig<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error("missing JSON config argument");
  return JSON.parse(raw) as T;
}

// --- child side: JSON lines on stdout, commands on stdin ----------------------

export function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

export interface Command {
  cmd: string;
  /** Request id, echoed as `re` in the reply. */
  id?: number;
  [key: string]: unknown;
}

/** Calls `handler` for each command line; its return value (if any) is the reply. */
export function onCommands(
  handler: (command: Command) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>,
): void {
  const rl = createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    if (!line.trim()) return;
    const command = JSON.parse(line) as Command;
    void Promise.resolve(handler(command)).then((reply) => {
      if (command.id !== undefined) emit({ ev: "reply", re: command.id, ...(reply ?? {}) });
    });
  });
  // The orchestrator going away (stdin closed) ends the child.
  rl.on("close", () => process.exit(0));
}

// --- parent side ----------------------------------------------------------------

/** A child process speaking the JSON-lines protocol. */
export class Child extends EventEmitter {
  readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  exited = false;
  stderr = "";

  constructor(
    readonly name: string,
    script: string,
    config: ChildConfig,
    nodeArgs: string[] = [],
    env: NodeJS.ProcessEnv = {},
  ) {
    super();
    this.proc = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, JSON.stringify(config)], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    createInterface({ input: this.proc.stdout! }).on("line", (line) => {
      if (!line.startsWith("{")) return;
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (event.ev === "reply" && typeof event.re === "number") {
        this.waiting.get(event.re)?.(event);
        this.waiting.delete(event.re);
        return;
      }
      this.emit("event", event);
    });
    this.proc.stderr!.on("data", (chunk: Buffer) => {
      // Keep the tail only: enough to explain a crash.
      this.stderr = (this.stderr + chunk.toString()).slice(-4000);
    });
    this.proc.on("exit", (code, signal) => {
      this.exited = true;
      this.emit("exit", code, signal);
      for (const resolve of this.waiting.values()) resolve({ ev: "reply", error: `exited (${code ?? signal})` });
      this.waiting.clear();
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  send(command: Omit<Command, "id">): void {
    if (!this.exited) this.proc.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  request(command: Omit<Command, "id">, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited: ${this.stderr}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no reply to ${command.cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (typeof reply.error === "string") reject(new Error(`${this.name}: ${reply.error}\n${this.stderr}`));
        else resolve(reply);
      });
      this.proc.stdin!.write(`${JSON.stringify({ ...command, id })}\n`);
    });
  }

  /** Resolves with the first event named `ev` (and matching `pred`). */
  waitFor(ev: string, timeoutMs: number, pred: (event: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const onEvent = (event: Record<string, unknown>) => {
        if (event.ev !== ev || !pred(event)) return;
        cleanup();
        resolve(event);
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        reject(new Error(`${this.name} exited (${code ?? signal}) before "${ev}":\n${this.stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no "${ev}" within ${timeoutMs} ms\n${this.stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off("event", onEvent);
        this.off("exit", onExit);
      };
      this.on("event", onEvent);
      this.on("exit", onExit);
    });
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (!this.exited) this.proc.kill(signal);
  }

  async stop(graceMs = 3_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.proc.kill("SIGCONT");
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

// --- /proc ----------------------------------------------------------------------

const CLOCK_TICK_MS = 10; // CLK_TCK = 100 on Linux

/** User + system CPU time of a process (all threads), in ms; NaN if it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at state.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_MS;
  } catch {
    return Number.NaN;
  }
}

/** Resident set size of a process, in bytes; NaN if it is gone. */
export function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Times a process blocked waiting (voluntary context switches): how often its event loop went idle and was woken; NaN if it is gone. */
export function wakeups(pid: number): number {
  try {
    const match = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

// --- statistics -------------------------------------------------------------------

/** Nearest-rank percentile of an ascending-sorted array; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  return {
    count: list.length,
    p50: percentile(list, 50),
    p99: percentile(list, 99),
    max: list.length ? list[list.length - 1]! : Number.NaN,
  };
}

export const round = (value: number, digits = 3): number => (Number.isFinite(value) ? Number(value.toFixed(digits)) : value);

/** This process's CPU time (user + system, all threads) in ms with µs resolution, and its RSS in bytes. */
export function usage(): { cpuMs: number; rss: number } {
  const { user, system } = process.cpuUsage();
  return { cpuMs: (user + system) / 1000, rss: process.memoryUsage.rss() };
}
