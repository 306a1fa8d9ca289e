/**
 * The --spinner background load: a process (bench/lib/spinner.ts) asking for
 * a fraction of one core for the whole run, so a fast machine reproduces a
 * slower, shared one. Started before the server and stopped after everything
 * else, so every phase runs under it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cpuMs, round, sleep } from "./common.js";

const HERE = dirname(fileURLToPath(import.meta.url));

export class BackgroundLoad {
  private readonly start: { at: number; cpu: number };

  private constructor(private readonly proc: ChildProcess) {
    this.start = { at: performance.now(), cpu: this.cpuMs() };
  }

  /** Undefined for a fraction of 0 (no background load). */
  static async start(fraction: number): Promise<BackgroundLoad | undefined> {
    if (fraction <= 0) return undefined;
    const proc = spawn(process.execPath, ["--import", "tsx", join(HERE, "spinner.ts"), JSON.stringify({ fraction })], {
      stdio: ["pipe", "ignore", "inherit"],
    });
    // Its share is counted from once it is spinning, not from the spawn.
    await sleep(300);
    return new BackgroundLoad(proc);
  }

  /** The spinner's CPU so far, ms (NaN once it is gone). */
  cpuMs(): number {
    return this.proc.pid ? cpuMs(this.proc.pid) : Number.NaN;
  }

  /** Its CPU since it started, % of one core. */
  runPct(): number {
    return round(((this.cpuMs() - this.start.cpu) / (performance.now() - this.start.at)) * 100, 1);
  }

  async stop(): Promise<void> {
    const exited = new Promise((done) => this.proc.once("exit", done));
    this.proc.kill("SIGTERM");
    await exited;
  }
}
