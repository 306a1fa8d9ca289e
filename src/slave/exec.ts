import { type ChildProcess, spawn } from "node:child_process";
import { StringDecoder } from "node:string_decoder";
import type { Custom } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import type { CommandContext } from "../options.js";

/** Largest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ExecOptions {
  /** The program run for each command: a path, or a name looked up in PATH. Never through a shell. */
  program: string;
  /** Its arguments, passed as given. */
  args?: readonly string[];
  /** Longest one run may take, in ms; then the program's whole process group is killed. Default 60 s. */
  timeout?: number;
  /** Most programs running at once. Default 4. */
  concurrency?: number;
  /** Most commands waiting for a free run, first come first served; one more is refused at once. Default 64. */
  queue?: number;
  /** Bytes of stdout kept as the reply's data; the rest is read and dropped, and the reply says so. Default 64 KiB. */
  maxOutputBytes?: number;
  /** Bytes at the end of stderr that a failure's message carries. Default 2 KiB. */
  stderrTailBytes?: number;
  /** The program's environment. Default: the slave's. */
  env?: NodeJS.ProcessEnv;
  /** The program's working directory. Default: the slave's. */
  cwd?: string;
}

/**
 * A Slave's `onCommand` that runs a program per command (see execHandler),
 * and `close()` for whoever owns it.
 */
export interface ExecHandler {
  (command: Custom, context: CommandContext): Promise<string>;
  /** Programs running now. */
  readonly running: number;
  /** Commands waiting for a free run. */
  readonly queued: number;
  /**
   * Kills every running program's process group, fails the queued commands, and refuses new ones; resolves once
   * all are gone, after their error replies were handed to the Slave (so close the handler, then the Slave).
   */
  close(): Promise<void>;
}

/** One running program. */
interface Run {
  /** Kills its process group and stops waiting on its output; `closing` says the owner closed the handler. */
  kill(closing: boolean): void;
  readonly done: Promise<unknown>;
}

/**
 * A command handler that runs `program` for each Custom command: the
 * command's data on its stdin, its stdout (up to `maxOutputBytes`) as the
 * reply's data. A non-zero exit, a death by signal, a timeout, a full queue
 * or a program that cannot start throws a NetSyncError, which the Slave
 * sends as the Reply's error. Each program leads a process group of its
 * own, so a timeout or close() kills what it started too.
 *
 * ```ts
 * const exec = execHandler({ program: "/usr/local/bin/handle-command" });
 * const slave = new Slave({ master, onCommand: exec });
 * // on shutdown:
 * await exec.close();
 * await slave.close();
 * ```
 */
export function execHandler(options: ExecOptions): ExecHandler {
  const defaults = DEFAULTS.exec;
  const { program, env, cwd } = options;
  const args = [...(options.args ?? [])];
  const timeout = options.timeout ?? defaults.timeout;
  const concurrency = options.concurrency ?? defaults.concurrency;
  const queue = options.queue ?? defaults.queue;
  const maxOutputBytes = options.maxOutputBytes ?? defaults.maxOutputBytes;
  const stderrTailBytes = options.stderrTailBytes ?? defaults.stderrTailBytes;
  if (typeof program !== "string" || program === "") throw invalid("program must be a non-empty string");
  if (!(timeout > 0 && timeout <= MAX_TIMER_MS)) throw invalid(`timeout must be from 1 ms to ${MAX_TIMER_MS} ms, got ${timeout}`);
  checkInteger("concurrency", concurrency, 1);
  checkInteger("queue", queue, 0);
  checkInteger("maxOutputBytes", maxOutputBytes, 0);
  checkInteger("stderrTailBytes", stderrTailBytes, 0);

  const running = new Set<Run>();
  const waiting: Array<{ start: () => void; fail: (error: NetSyncError) => void }> = [];
  let active = 0;
  let closing: Promise<void> | undefined;
  // Programs lead process groups of their own, so nothing kills them with the slave: if the process exits
  // without close() (a second Ctrl-C, process.exit), kill them on the way out. Only while some run.
  const onProcessExit = () => {
    for (const run of running) run.kill(true);
  };

  const closedError = () => new NetSyncError("not run: the slave is closing", Code.UNAVAILABLE);

  async function acquire(): Promise<void> {
    if (closing) throw closedError();
    if (active < concurrency) {
      active++;
      return;
    }
    if (waiting.length >= queue) {
      throw new NetSyncError(`not run: the slave is busy (${active} running, ${waiting.length} waiting)`, Code.RESOURCE_EXHAUSTED);
    }
    await new Promise<void>((start, fail) => waiting.push({ start, fail }));
  }

  /** Hands the slot to the first waiting command, if any, else frees it. */
  function release(): void {
    const next = waiting.shift();
    if (next) next.start();
    else active--;
  }

  function runOnce(data: string): Promise<string> {
    if (closing) return Promise.reject(closedError());
    return new Promise<string>((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(program, args, { detached: true, stdio: ["pipe", "pipe", "pipe"], env, cwd });
      } catch (err) {
        reject(new NetSyncError(`cannot run ${program}: ${(err as Error).message}`, Code.FAILED_PRECONDITION, { cause: err }));
        return;
      }
      const output = new StringDecoder("utf8");
      let stdout = "";
      let stdoutBytes = 0;
      let stderr = Buffer.alloc(0);
      let stderrBytes = 0;
      let spawnError: Error | undefined;
      let killedFor: "timeout" | "closing" | undefined;
      let settled = false;
      let finished!: () => void;
      const done = new Promise<void>((r) => (finished = r));

      const run: Run = {
        kill(closingNow) {
          killedFor ??= closingNow ? "closing" : "timeout";
          if (child.pid !== undefined) {
            try {
              process.kill(-child.pid, "SIGKILL");
            } catch {
              // ESRCH: the group is gone already.
            }
          }
          // A process that left the group could still hold the pipes open: stop waiting on them.
          child.stdout?.destroy();
          child.stderr?.destroy();
        },
        done,
      };
      if (running.size === 0) process.on("exit", onProcessExit);
      running.add(run);
      const timer = setTimeout(() => run.kill(false), timeout);

      const settle = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        running.delete(run);
        if (running.size === 0) process.off("exit", onProcessExit);
        finished();
        const tail = stderrTail(stderr, stderrBytes > stderr.length);
        const withTail = (message: string) => (tail ? `${message}; stderr: ${tail}` : message);
        if (spawnError) {
          reject(new NetSyncError(`cannot run ${program}: ${spawnError.message}`, Code.FAILED_PRECONDITION, { cause: spawnError }));
        } else if (killedFor === "closing") {
          reject(new NetSyncError(`${program} killed: the slave is closing`, Code.UNAVAILABLE));
        } else if (killedFor === "timeout") {
          reject(
            new NetSyncError(withTail(`${program} timed out after ${formatMs(timeout)} (process group killed)`), Code.DEADLINE_EXCEEDED),
          );
        } else if (signal !== null) {
          reject(new NetSyncError(withTail(`${program} was killed by ${signal}`), Code.ABORTED));
        } else if (code !== 0) {
          reject(new NetSyncError(withTail(`${program} exited with code ${code}`), Code.UNKNOWN));
        } else if (stdoutBytes > maxOutputBytes) {
          // The cut may fall inside a character: its first bytes, still in the decoder, are dropped.
          resolve(`${stdout}\n[output truncated: the first ${maxOutputBytes} of ${stdoutBytes} bytes]`);
        } else {
          resolve(stdout + output.end());
        }
      };

      child.on("error", (err) => {
        // A program that could not start has no pid; 'close' may follow, or not (EMFILE).
        if (child.pid !== undefined) return;
        spawnError = err;
        settle(null, null);
      });
      child.on("close", settle);
      child.stdout!.on("data", (chunk: Buffer) => {
        const room = maxOutputBytes - stdoutBytes;
        if (room > 0) stdout += output.write(room >= chunk.length ? chunk : chunk.subarray(0, room));
        stdoutBytes += chunk.length;
      });
      child.stderr!.on("data", (chunk: Buffer) => {
        stderrBytes += chunk.length;
        stderr = Buffer.concat([stderr, chunk]);
        if (stderr.length > stderrTailBytes) stderr = stderr.subarray(stderr.length - stderrTailBytes);
      });
      // A program that exits without reading its input makes the write fail (EPIPE): its exit status says what happened.
      child.stdin!.on("error", () => {});
      child.stdin!.end(data);
    });
  }

  const handler = async (command: Custom): Promise<string> => {
    await acquire();
    try {
      return await runOnce(command.data);
    } finally {
      release();
    }
  };

  return Object.defineProperties(handler, {
    running: { get: () => running.size, enumerable: true },
    queued: { get: () => waiting.length, enumerable: true },
    close: {
      value: () => {
        closing ??= (async () => {
          for (const { fail } of waiting.splice(0)) fail(closedError());
          const runs = [...running];
          for (const run of runs) run.kill(true);
          await Promise.all(runs.map((run) => run.done));
          // Resolve a turn after the commands it failed rejected: a Slave closed next still sends their error replies.
          await new Promise((resolve) => setImmediate(resolve));
        })();
        return closing;
      },
    },
  }) as typeof handler & Pick<ExecHandler, "running" | "queued" | "close">;
}

function invalid(message: string): NetSyncError {
  return new NetSyncError(`execHandler: ${message}`, Code.INVALID_ARGUMENT);
}

function checkInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw invalid(`${name} must be an integer ≥ ${min}, got ${value}`);
}

/** The last bytes of stderr as trimmed text, "…" in front when earlier bytes were dropped. */
function stderrTail(tail: Buffer, cut: boolean): string {
  let start = 0;
  // Skip the continuation bytes of a character cut in two.
  if (cut) while (start < tail.length && (tail[start]! & 0xc0) === 0x80) start++;
  const text = tail.subarray(start).toString("utf8").trim();
  return text && cut ? `…${text}` : text;
}

function formatMs(ms: number): string {
  return ms >= 1_000 && ms % 1_000 === 0 ? `${ms / 1_000} s` : `${ms} ms`;
}
