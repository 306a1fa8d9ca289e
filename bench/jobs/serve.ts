/**
 * The server side of `npm run bench:jobs`, shared by the NetSync master
 * (bench/cluster/master.ts) and the Socket.IO node (bench/cluster/sio-node.ts):
 * runs jobs one after another inside the server process, each timed from the
 * call to its last reply, and watches the process's event loop meanwhile.
 *
 * - "loop": starts watching (on first use) and ends the current watch
 *   window, returning its loop delay, stalls, GC and peak RSS. A server that
 *   only relays (a cluster's other masters or nodes) is asked this at the
 *   start and at the end of the jobs.
 * - "jobs" {count, gapMs}: `count` jobs, `gapMs` apart; per job its time to
 *   the last reply, its CPU, and the loop's longest turn over the job and
 *   the gap after it (a window of its own each).
 * - "heap": heap in use after a full GC (what the jobs left behind).
 *
 * The longest turn is the probe's (bench/lib/probe.ts): the largest delay of
 * a 10 ms timer (monitorEventLoopDelay), less those 10 ms, so a turn of T ms
 * reads between T − 10 and T; and every stall over 100 ms with the CPU and
 * GC inside it. With NETSYNC_BENCH_JOBS_PROFILE=<file> the server writes an
 * inspector CPU profile (500 µs sampling) of its "jobs" command only, or of
 * the window between two "loop" commands that say profile "start" / "stop".
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { dirname } from "node:path";
import { type Command, hrNow, round, sleep } from "../lib/common.js";
import { type PhaseStats, Probe } from "../lib/probe.js";

/** What one job came to, as the system under test reports it. */
export interface JobOutcome {
  /** Replies received (NetSync: results with status ok; Socket.IO: acknowledgements). */
  replies: number;
  /** NetSync: ms until run() resolved (the targets fixed: the selector resolved, fleet-wide in a cluster). */
  resolveMs?: number;
  /** Results other than ok, by status (NetSync), or the error that ended the call (Socket.IO: a timeout). */
  others?: Record<string, number>;
  failed?: string;
}

/** A window of the loop watch: the probe's measures, and the process's peak RSS over it. */
export interface LoopWindow {
  ms: number;
  /** Longest turn, ms (the probe's delay max) and p99. */
  maxTurnMs: number;
  p99TurnMs: number;
  stalls: PhaseStats["stalls"];
  /**
   * The longest stall's CPU, capped at its length, ms: how much of it this process was running (the rest it
   * was runnable and not run: the machine's). Its CPU counts GC helper threads too, so it is an upper bound.
   */
  busiestStallMs: number;
  gcMaxMs: number;
  gcTotalMs: number;
  cpuPct: number;
  rssPeakMB: number;
  heapMB: number;
}

export interface JobSample extends JobOutcome {
  /** From the call to the last reply, ms. */
  ms: number;
  /** This process's CPU from the call to the last reply, ms (the work that follows it, GC included, is in the phase's CPU). */
  cpuMs: number;
  loop: LoopWindow;
}

/** Longer than two ticks of the probe's 10 ms loop-delay timer. */
const TICK_SETTLE_MS = 25;

let probe: Probe | undefined;
let rssPeak = 0;

function watch(): Probe {
  if (!probe) {
    probe = new Probe();
    rssPeak = process.memoryUsage.rss();
    setInterval(() => {
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    }, 50).unref();
  }
  return probe;
}

/** Ends the current watch window (starting the watch on first use) and opens the next. */
export function loopWindow(next: string): LoopWindow {
  const stats = watch().phase(next);
  const rss = process.memoryUsage.rss();
  const window: LoopWindow = {
    ms: stats.ms,
    maxTurnMs: stats.delay.max,
    p99TurnMs: stats.delay.p99,
    stalls: stats.stalls,
    busiestStallMs: Math.max(0, ...stats.stalls.map((x) => Math.min(x.ms, x.cpuMs))),
    gcMaxMs: stats.gc.maxMs,
    gcTotalMs: stats.gc.totalMs,
    cpuPct: stats.cpuPct,
    rssPeakMB: round(Math.max(rssPeak, rss) / 2 ** 20, 1),
    heapMB: stats.heapMB,
  };
  rssPeak = rss;
  return window;
}

/** Answers "loop" and "jobs"; undefined for any other command (the caller's own switch handles it). */
export function jobCommand(command: Command, runOne: (index: number) => Promise<JobOutcome>): Promise<Record<string, unknown>> | undefined {
  if (command.cmd === "loop") return loop(String(command.next ?? "loop"), command.profile);
  if (command.cmd === "heap") return Promise.resolve({ heapMB: heapAfterGc() });
  if (command.cmd !== "jobs") return undefined;
  return runJobs(Number(command.count ?? 1), Number(command.gapMs ?? 1000), runOne);
}

/** Heap in use after two full collections (the server runs with --expose-gc), MB; NaN without gc(). */
function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return Number.NaN;
  gc();
  gc();
  return round(process.memoryUsage().heapUsed / 2 ** 20, 1);
}

/** A relaying server's window; with profile "start" / "stop" its CPU profile begins / ends with the window. */
let relayProfiler: Session | undefined;
async function loop(next: string, profile: unknown): Promise<Record<string, unknown>> {
  const window = loopWindow(next);
  if (profile === "start") relayProfiler ??= await startProfile();
  if (profile === "stop") {
    await stopProfile(relayProfiler);
    relayProfiler = undefined;
  }
  return { window };
}

async function runJobs(count: number, gapMs: number, runOne: (index: number) => Promise<JobOutcome>): Promise<Record<string, unknown>> {
  const before = loopWindow("job0");
  const profiler = await startProfile();
  const jobs: JobSample[] = [];
  for (let i = 0; i < count; i++) {
    // monitorEventLoopDelay records the time between two of its ticks, and a reset forgets the last tick: a job
    // that blocked the loop in the very turn of the reset would go unseen (Socket.IO's emit to every socket does).
    await sleep(TICK_SETTLE_MS);
    const cpu = process.cpuUsage();
    const started = hrNow();
    const outcome = await runOne(i);
    const ms = hrNow() - started;
    const used = process.cpuUsage(cpu);
    await sleep(gapMs);
    jobs.push({ ...outcome, ms: round(ms, 2), cpuMs: round((used.user + used.system) / 1000, 2), loop: loopWindow(`job${i + 1}`) });
  }
  await stopProfile(profiler);
  return { before, jobs };
}

const profileFile = process.env.NETSYNC_BENCH_JOBS_PROFILE;

async function startProfile(): Promise<Session | undefined> {
  if (!profileFile) return undefined;
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 500 });
  await session.post("Profiler.start");
  return session;
}

async function stopProfile(session: Session | undefined): Promise<void> {
  if (!session || !profileFile) return;
  const { profile } = await session.post("Profiler.stop");
  session.disconnect();
  mkdirSync(dirname(profileFile), { recursive: true });
  writeFileSync(profileFile, JSON.stringify(profile));
}
