import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The CLI under test: the launcher of the compiled dist/, as installed
 * packages run it. `npm test` builds first (pretest); a bare `mocha` run
 * tests whatever dist/ holds, so warn when it is missing or older than the
 * sources.
 */
export const CLI_BIN = fileURLToPath(new URL("../bin/netsync.js", import.meta.url));

function warnIfStale(): void {
  const root = fileURLToPath(new URL("..", import.meta.url));
  let built: number;
  try {
    built = statSync(join(root, "dist/src/cli/main.js")).mtimeMs;
  } catch {
    process.emitWarning("dist/ is missing, so the CLI tests will fail: run `npm run build` (npm test does)");
    return;
  }
  const newer = ["src", "gen"]
    .flatMap((dir) => readdirSync(join(root, dir), { recursive: true, encoding: "utf8" }).map((f) => join(dir, f)))
    .filter((f) => f.endsWith(".ts") && statSync(join(root, f)).mtimeMs > built);
  if (newer.length > 0) {
    process.emitWarning(
      `dist/ is older than ${newer.slice(0, 3).join(", ")}${newer.length > 3 ? ", ..." : ""}: the CLI tests run the old build; run \`npm run build\` (npm test does)`,
    );
  }
}
warnIfStale();

/**
 * The environment in which consola's own heuristics would drop to warn, with no
 * log settings and no token of its own: runCli()'s default.
 */
export const CLI_TEST_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  NODE_ENV: "test",
  CI: "true",
  NETSYNC_LOG_LEVEL: "",
  NETSYNC_LOG_FORMAT: "",
};
delete CLI_TEST_ENV.NETSYNC_TOKEN;

export interface CliExit {
  /** The exit code; null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** performance.now() when the process exited. */
  at: number;
}

/** A running `node bin/netsync.js ...` (the built CLI). */
export interface CliRun {
  child: ChildProcess;
  /** stdout and stderr, interleaved as they arrived. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Settles once the process exited and its stdout and stderr closed, so the output is complete by then. */
  exit: Promise<CliExit>;
  /** Resolves with the first match of `pattern` in output(); rejects after `timeoutMs` with the output so far. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the first stdout line that matches `pattern`; rejects after `timeoutMs` with both streams so far. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

const running = new Set<ChildProcess>();

/** Starts the CLI with `args`; killAllCli() ends whatever is still running. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = CLI_TEST_ENV): CliRun {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
    for (const w of waiters) w();
  });

  let exitedAt: number | undefined;
  child.once("exit", () => (exitedAt = performance.now()));
  const exit = new Promise<CliExit>((resolve) =>
    child.once("close", (code, signal) => {
      running.delete(child);
      resolve({ code, signal, at: exitedAt ?? performance.now() });
    }),
  );

  /** Resolves with the first value `probe` finds, re-probing on every chunk of output. */
  const until = <T>(probe: () => T | undefined, timeoutMs: number, failure: () => string) =>
    new Promise<T>((resolve, reject) => {
      const check = () => {
        const found = probe();
        if (found === undefined) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(failure()));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    child,
    output: () => output,
    stdout: () => stdout,
    stderr: () => stderr,
    exit,
    waitFor: (pattern, timeoutMs = 8_000) =>
      until(
        () => output.match(pattern) ?? undefined,
        timeoutMs,
        () => `timed out waiting for ${pattern}; output so far:\n${output}`,
      ),
    waitForLine: (pattern, timeoutMs = 8_000) =>
      until(
        () => stdout.split("\n").find((line) => pattern.test(line)),
        timeoutMs,
        () => `timed out waiting for ${pattern}; stdout so far:\n${stdout}\nstderr:\n${stderr}`,
      ),
  };
}

/** SIGKILLs every CLI process runCli() started that has not closed yet; for afterEach. */
export function killAllCli(): void {
  for (const child of running) child.kill("SIGKILL");
}
