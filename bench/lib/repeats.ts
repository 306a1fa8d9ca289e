/** Several runs of one system at one N, combined into one result. */
import { percentile, type Summary, sum } from "./common.js";
import type { RunResult } from "./types.js";

/** Median of each number across objects of the same shape; arrays are concatenated. */
function medianShape<T>(items: T[]): T {
  const first = items[0];
  if (typeof first === "number") return median(items as number[]) as T;
  if (Array.isArray(first)) return items.flatMap((i) => i as unknown[]).slice(0, 50) as T;
  if (first && typeof first === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(first)) {
      const values = items.map((i) => (i as Record<string, unknown>)[key]).filter((v) => v !== undefined);
      out[key] = medianShape(values);
    }
    return out as T;
  }
  return first as T;
}

/** Nearest-rank p50 (the lower median for an even count) of the finite values; undefined if none. */
const median = (values: (number | undefined)[]): number | undefined => {
  const sorted = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  return sorted.length ? percentile(sorted, 50) : undefined;
};

/**
 * One result per system and N from repeated runs: each measure is the median
 * of the runs (lower median for an even count), counts of failures are summed.
 * Machines here are shared: a single run's CPU figure moves by ±10%.
 */
export function combineRepeats(runs: RunResult[]): RunResult {
  const ok = runs.filter((r) => !r.error);
  if (ok.length === 0) return { ...runs[0]!, runs };
  const base = ok[0]!;
  const m = (get: (r: RunResult) => number | undefined) => median(ok.map(get));
  const summary = (get: (r: RunResult) => Summary | undefined): Summary | undefined =>
    get(base) && { count: m((r) => get(r)?.count)!, p50: m((r) => get(r)?.p50)!, p99: m((r) => get(r)?.p99)!, max: m((r) => get(r)?.max)! };
  return {
    ...base,
    cpuUsPerSlaveRound: m((r) => r.cpuUsPerSlaveRound),
    pingsPerSlaveRound: m((r) => r.pingsPerSlaveRound),
    serverCpuPct: m((r) => r.serverCpuPct),
    loadgenCpuPct: m((r) => r.loadgenCpuPct),
    rssKbPerSlave: m((r) => r.rssKbPerSlave),
    rtt: summary((r) => r.rtt),
    bcast: base.bcast && {
      ...summary((r) => r.bcast)!,
      expected: base.bcast.expected,
      callMs: ok.flatMap((r) => r.bcast?.callMs ?? []),
      cpuPerDelivery: { serverUs: m((r) => r.bcast?.cpuPerDelivery?.serverUs)!, loadgenUs: m((r) => r.bcast?.cpuPerDelivery?.loadgenUs)! },
    },
    evict: base.evict && {
      frozen: Math.max(...ok.map((r) => r.evict?.frozen ?? 0)),
      evicted: Math.min(...ok.map((r) => r.evict?.evicted ?? 0)),
      missed: Math.max(...ok.map((r) => r.evict?.missed ?? 0)),
      silence: summary((r) => r.evict?.silence)!,
      sinceStop: summary((r) => r.evict?.sinceStop)!,
    },
    falseEvictions: sum(ok.map((r) => r.falseEvictions ?? 0)),
    unexpectedEnds: sum(ok.map((r) => r.unexpectedEnds ?? 0)),
    cpuUsPerPing: m((r) => r.cpuUsPerPing),
    phases: ok.every((r) => r.phases) ? medianShape(ok.map((r) => r.phases!)) : undefined,
    spinner: base.spinner && medianShape(ok.map((r) => r.spinner!)),
    pauses: m((r) => r.pauses),
    pauseMaxMs: m((r) => r.pauseMaxMs),
    pauseLog: ok.flatMap((r) => r.pauseLog ?? []),
    ...(ok.length < runs.length
      ? { error: `${runs.length - ok.length} of ${runs.length} runs failed: ${runs.find((r) => r.error)!.error}` }
      : {}),
    runs,
  };
}
