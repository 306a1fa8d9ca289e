/**
 * Attribution, in every server and load generator: event-loop delay
 * (monitorEventLoopDelay at 10 ms resolution, reported less those 10 ms) and GC pauses (a
 * PerformanceObserver on "gc") per phase of a run, plus a log of the long
 * ones with their time, so a latency figure can be put on the process that
 * caused it (the master, a generator, or neither: the machine).
 *
 * The orchestrator sends {"cmd":"phase","name":…} at every phase boundary;
 * the reply holds what was measured since the previous boundary, and the
 * measures are reset.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { dirname } from "node:path";
import { constants, type EventLoopUtilization, monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";
import { type Command, hrNow, round } from "./common.js";

export interface GcKindStats {
  count: number;
  totalMs: number;
  maxMs: number;
}

export interface PhaseStats {
  /** The phase that just ended. */
  name: string;
  /** Its length, ms. */
  ms: number;
  /** Event-loop delay over the phase, ms (the delay of the 10 ms monitoring timer: what a callback due then waited). */
  delay: { p50: number; p99: number; max: number };
  /** GC pauses on the main thread over the phase; byKind: minor (scavenge), major (mark-compact), incremental (marking steps), weakcb. */
  gc: GcKindStats & { byKind: Record<string, GcKindStats> };
  /** Share of the phase the event loop was busy (not waiting for I/O), %. */
  busyPct: number;
  /** This process's CPU over the phase, % of one core (all threads: V8's GC and compiler helpers included). */
  cpuPct: number;
  heapMB: number;
  /**
   * Event-loop stalls over 100 ms in the phase (at: hrNow clock when noticed, ms: length), the CPU the process used
   * meanwhile (about ms: it was busy; far less: it was not scheduled, i.e. the machine) and the GC time inside each.
   */
  stalls: { at: number; ms: number; cpuMs: number; gcMs: number; gcKinds: string }[];
  /** GC pauses over 50 ms in the phase. */
  longGc: { at: number; ms: number; kind: string }[];
}

const KIND: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
};

/** Stall detector's tick and the lag from which a tick counts as a stall. */
const TICK_MS = 20;
const STALL_MS = 100;

export class Probe {
  private readonly histogram = monitorEventLoopDelay({ resolution: 10 });
  private name = "start";
  private started = performance.now();
  private cpu = process.cpuUsage();
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private gc = Probe.emptyGc();
  private stalls: PhaseStats["stalls"] = [];
  private longGc: PhaseStats["longGc"] = [];
  /** Recent GC pauses (end time on performance.now(), length, kind), to tell how much of a stall was GC. */
  private recentGc: { end: number; ms: number; kind: string }[] = [];

  constructor() {
    this.histogram.enable();
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = KIND[(entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? "other";
        const ms = entry.duration;
        this.gc.count++;
        this.gc.totalMs += ms;
        this.gc.maxMs = Math.max(this.gc.maxMs, ms);
        const k = this.gc.byKind[kind] ?? { count: 0, totalMs: 0, maxMs: 0 };
        this.gc.byKind[kind] = k;
        k.count++;
        k.totalMs += ms;
        k.maxMs = Math.max(k.maxMs, ms);
        const end = entry.startTime + ms;
        this.recentGc.push({ end, ms, kind });
        if (this.recentGc.length > 256) this.recentGc.splice(0, 128);
        if (ms > 50 && this.longGc.length < 100) this.longGc.push({ at: round(performance.timeOrigin + end, 1), ms: round(ms, 1), kind });
      }
    }).observe({ entryTypes: ["gc"] });
    // Stall log: a tick far later than due is a stall; GC that ended within it is counted against it.
    let due = performance.now() + TICK_MS;
    let cpuBefore = process.cpuUsage();
    const tick = () => {
      const now = performance.now();
      const lag = now - due;
      const cpu = process.cpuUsage();
      if (lag > STALL_MS && this.stalls.length < 100) {
        const from = now - lag - TICK_MS;
        const inside = this.recentGc.filter((g) => g.end >= from);
        this.stalls.push({
          at: round(hrNow(), 1),
          ms: round(lag, 1),
          cpuMs: round((cpu.user + cpu.system - cpuBefore.user - cpuBefore.system) / 1000, 1),
          gcMs: round(
            inside.reduce((a, g) => a + g.ms, 0),
            1,
          ),
          gcKinds: [...new Set(inside.map((g) => g.kind))].join("+"),
        });
      }
      cpuBefore = cpu;
      due = now + TICK_MS;
      setTimeout(tick, TICK_MS).unref();
    };
    setTimeout(tick, TICK_MS).unref();
  }

  private static emptyGc(): PhaseStats["gc"] {
    return { count: 0, totalMs: 0, maxMs: 0, byKind: {} };
  }

  /** The phase being measured now. */
  get current(): string {
    return this.name;
  }

  /** Ends the current phase (returning its measures) and starts `next`. */
  phase(next: string): PhaseStats {
    const now = performance.now();
    const ms = now - this.started;
    const cpu = process.cpuUsage(this.cpu);
    const elu = performance.eventLoopUtilization(this.elu);
    const h = this.histogram;
    // The histogram records the time between the monitor's 10 ms ticks; less the 10 ms, that is the delay.
    const ns = (v: number) => round(Math.max(0, v / 1e6 - 10), 2);
    const gcRound = (g: GcKindStats): GcKindStats => ({ count: g.count, totalMs: round(g.totalMs, 1), maxMs: round(g.maxMs, 1) });
    const stats: PhaseStats = {
      name: this.name,
      ms: round(ms, 0),
      delay: h.count > 0 ? { p50: ns(h.percentile(50)), p99: ns(h.percentile(99)), max: ns(h.max) } : { p50: 0, p99: 0, max: 0 },
      gc: {
        ...gcRound(this.gc),
        byKind: Object.fromEntries(Object.entries(this.gc.byKind).map(([k, v]) => [k, gcRound(v)])),
      },
      busyPct: round(elu.utilization * 100, 1),
      cpuPct: round(((cpu.user + cpu.system) / 1000 / ms) * 100, 1),
      heapMB: round(process.memoryUsage().heapUsed / 2 ** 20, 1),
      stalls: this.stalls,
      longGc: this.longGc,
    };
    this.name = next;
    this.started = now;
    this.cpu = process.cpuUsage();
    this.elu = performance.eventLoopUtilization();
    this.gc = Probe.emptyGc();
    this.stalls = [];
    this.longGc = [];
    h.reset();
    return stats;
  }
}

let shared: Probe | undefined;

/** The process's probe, started on first use (servers and generators start it at once). */
export function probe(): Probe {
  shared ??= new Probe();
  return shared;
}

/**
 * `--prof steady`: a CPU profile of one phase only (NETSYNC_BENCH_PROFILE = "<phase>:<file>"), taken
 * through the inspector so that the ramp and the broadcasts do not drown the steady state's costs.
 */
const profileSpec = process.env.NETSYNC_BENCH_PROFILE?.match(/^([a-z]+):(.+)$/);

/** The environment that makes a child profile `phase` into `file` (see withPhases). */
export function profileEnv(phase: string, file: string): NodeJS.ProcessEnv {
  return { NETSYNC_BENCH_PROFILE: `${phase}:${file}` };
}
let profiler: Session | undefined;

async function profilePhase(ended: string, next: string): Promise<void> {
  if (!profileSpec) return;
  const [, phase, file] = profileSpec;
  if (next === phase && !profiler) {
    profiler = new Session();
    profiler.connect();
    await profiler.post("Profiler.enable");
    await profiler.post("Profiler.setSamplingInterval", { interval: 500 });
    await profiler.post("Profiler.start");
  } else if (ended === phase && profiler) {
    const { profile } = await profiler.post("Profiler.stop");
    profiler.disconnect();
    profiler = undefined;
    mkdirSync(dirname(file!), { recursive: true });
    writeFileSync(file!, JSON.stringify(profile));
  }
}

/** Wraps a command handler so it also answers {"cmd":"phase","name","next"}. */
export function withPhases<R>(handler: (command: Command) => R): (command: Command) => R | Promise<{ stats: PhaseStats }> {
  const p = probe();
  return (command) => {
    if (command.cmd !== "phase") return handler(command);
    const ended = p.current;
    const stats = p.phase(String(command.name));
    return profilePhase(ended, String(command.name)).then(() => ({ stats }));
  };
}
