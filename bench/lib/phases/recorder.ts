/**
 * Attribution: at every phase boundary, the server and each generator report
 * their event-loop delay and GC since the previous boundary, so a latency can
 * be put down to the phase (and the side) it happened in.
 */
import type { BackgroundLoad } from "../background-load.js";
import { type Child, hrNow, round, sum } from "../common.js";
import type { PhaseStats } from "../probe.js";
import type { Rig } from "../rig.js";
import type { LoopGc, PhaseAttribution } from "../types.js";

export class PhaseRecorder {
  /** Each ended phase's attribution, by name: RunResult.phases. */
  readonly phases: Record<string, PhaseAttribution> = {};
  /** When each phase after the ramp began (hrNow clock), in order. */
  readonly starts: { name: string; at: number }[] = [];
  private spinner: { at: number; cpu: number };

  constructor(
    private readonly rig: Rig,
    private readonly load: BackgroundLoad | undefined,
  ) {
    this.spinner = { at: performance.now(), cpu: this.spinnerCpu() };
  }

  /** Ends phase `ended` and starts `next` in every process but those in `skip` (a frozen one would never answer). */
  async boundary(ended: string, next: string, skip: Child[] = []): Promise<void> {
    const ask = (c: Child) =>
      c
        .request({ cmd: "phase", name: next }, 10_000)
        .then((r) => r.stats as PhaseStats)
        .catch(() => undefined);
    const { server, generators } = this.rig;
    const [s, ...g] = await Promise.all([server, ...generators.filter((x) => !skip.includes(x) && !x.exited)].map(ask));
    const now = performance.now();
    const spun = this.spinnerCpu();
    this.phases[ended] = {
      ms: s?.ms ?? 0,
      server: loopGc(s ? [s] : []),
      gens: loopGc(g.filter((x): x is PhaseStats => x !== undefined)),
      ...(this.load ? { spinnerPct: round(((spun - this.spinner.cpu) / (now - this.spinner.at)) * 100, 1) } : {}),
    };
    this.spinner = { at: now, cpu: spun };
    this.starts.push({ name: next, at: hrNow() });
  }

  /** The phase that was running at `at` (hrNow clock). */
  phaseAt(at: number): string {
    return [...this.starts].reverse().find((s) => s.at <= at)?.name ?? "ramp";
  }

  private spinnerCpu(): number {
    return this.load?.cpuMs() ?? Number.NaN;
  }
}

/** One process's PhaseStats as a LoopGc, or a group's: delays and maxima the worst of any, counts and CPU summed. */
function loopGc(stats: PhaseStats[]): LoopGc {
  const max = (get: (s: PhaseStats) => number) => round(Math.max(0, ...stats.map(get)), 2);
  const total = (get: (s: PhaseStats) => number) => round(sum(stats.map(get)), 1);
  return {
    delayP50: max((s) => s.delay.p50),
    delayP99: max((s) => s.delay.p99),
    delayMax: max((s) => s.delay.max),
    gcCount: total((s) => s.gc.count),
    gcTotalMs: total((s) => s.gc.totalMs),
    gcMaxMs: max((s) => s.gc.maxMs),
    majorCount: total((s) => s.gc.byKind.major?.count ?? 0),
    majorTotalMs: total((s) => s.gc.byKind.major?.totalMs ?? 0),
    majorMaxMs: max((s) => s.gc.byKind.major?.maxMs ?? 0),
    cpuPct: total((s) => s.cpuPct),
    busyPct: max((s) => s.busyPct),
    heapMB: total((s) => s.heapMB),
    stalls: stats.flatMap((s) => s.stalls).slice(0, 50),
    longGc: stats.flatMap((s) => s.longGc).slice(0, 50),
  };
}
