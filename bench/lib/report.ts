/** Ratios, targets, the markdown table and the charts (vega-lite compiled to vega, rendered to SVG). */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { round } from "./common.js";
import { isFloor, SYSTEMS, type SystemName } from "./systems.js";
import type { BenchConfig, LoopGc, PhaseAttribution, RunResult } from "./types.js";

interface Measure {
  key: string;
  title: string;
  unit: string;
  get(result: RunResult): number | undefined;
}

export const MEASURES: Measure[] = [
  { key: "cpu", title: "Master CPU per heartbeat round per slave", unit: "µs", get: (r) => r.cpuUsPerSlaveRound },
  { key: "rss", title: "Master RSS per slave", unit: "KB", get: (r) => r.rssKbPerSlave },
  { key: "rtt-p50", title: "Ping RTT p50 (slave-side echo)", unit: "ms", get: (r) => r.rtt?.p50 },
  { key: "rtt-p99", title: "Ping RTT p99 (slave-side echo)", unit: "ms", get: (r) => r.rtt?.p99 },
  { key: "bcast-p50", title: "Broadcast delivery p50", unit: "ms", get: (r) => r.bcast?.p50 },
  { key: "bcast-p99", title: "Broadcast delivery p99", unit: "ms", get: (r) => r.bcast?.p99 },
  {
    key: "evict-p50",
    title: "Eviction latency p50 (silence at eviction)",
    unit: "ms",
    get: (r) => (r.evict?.evicted ? r.evict.silence.p50 : undefined),
  },
  {
    key: "evict-p99",
    title: "Eviction latency p99 (silence at eviction)",
    unit: "ms",
    get: (r) => (r.evict?.evicted ? r.evict.silence.p99 : undefined),
  },
];

const finite = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);

export interface RatioRow {
  n: number;
  versus: SystemName;
  /** NetSync / other, per measure key. */
  ratios: Record<string, number | null>;
}

export function computeRatios(results: RunResult[]): RatioRow[] {
  const rows: RatioRow[] = [];
  const ns = results.filter((r) => r.system === "netsync" && !r.error);
  for (const mine of ns) {
    for (const versus of ["floor", "floor-spread", "socketio", "nats"] as const) {
      const other = results.find((r) => r.system === versus && r.n === mine.n && !r.error);
      if (!other) continue;
      const ratios: Record<string, number | null> = {};
      for (const m of MEASURES) {
        const a = m.get(mine);
        const b = m.get(other);
        ratios[m.key] = finite(a) && finite(b) && b > 0 ? round(a / b, 2) : null;
      }
      rows.push({ n: mine.n, versus, ratios });
    }
  }
  return rows;
}

export interface TargetRow {
  target: string;
  measured: string;
  verdict: "met" | "missed" | "not measured";
}

/** The result at N = `wanted`, else the largest N below it, else the largest measured. */
function at(results: RunResult[], system: SystemName, wanted: number): RunResult | undefined {
  const mine = results.filter((r) => r.system === system && !r.error).sort((a, b) => a.n - b.n);
  return mine.filter((r) => r.n <= wanted).pop() ?? mine.pop();
}

export function evaluateTargets(results: RunResult[], config: BenchConfig): TargetRow[] {
  const rows: TargetRow[] = [];
  const verdict = (ok: boolean | undefined): TargetRow["verdict"] => (ok === undefined ? "not measured" : ok ? "met" : "missed");
  const ratioTarget = (name: string, measure: Measure, limit: number) => {
    const pairs = results
      .filter((r) => r.system === "netsync" && !r.error)
      .map((r) => [r, results.find((f) => f.system === "floor" && f.n === r.n && !f.error)] as const)
      .filter(([a, b]) => b && finite(measure.get(a)) && finite(measure.get(b!)));
    const ratios = pairs.map(([a, b]) => ({ n: a.n, ratio: measure.get(a)! / measure.get(b!)! }));
    rows.push({
      target: `${name} ≤ ${limit}× floor`,
      measured: ratios.map((r) => `${r.ratio.toFixed(2)}× at ${r.n}`).join(", ") || "—",
      verdict: verdict(ratios.length ? ratios.every((r) => r.ratio <= limit) : undefined),
    });
  };
  ratioTarget("master CPU per round", MEASURES[0]!, 1.15);
  ratioTarget("master RSS per slave", MEASURES[1]!, 1.2);

  // Issue 11: at every N, in the same run. RTT and broadcast p99 against Socket.IO's; the master's own steady-phase
  // loop delay; eviction p99 when the master did not stall (else how much it stalled, and where).
  const nsAll = results.filter((r) => r.system === "netsync" && !r.error).sort((a, b) => a.n - b.n);
  const sioAt = (n: number) => results.find((r) => r.system === "socketio" && r.n === n && !r.error);
  for (const [label, get] of [
    ["ping RTT p99 < Socket.IO's (every N)", (r: RunResult) => r.rtt?.p99],
    ["broadcast p99 < Socket.IO's (every N)", (r: RunResult) => r.bcast?.p99],
  ] as const) {
    const pairs = nsAll.map((r) => [r, sioAt(r.n)] as const).filter(([a, b]) => b && finite(get(a)) && finite(get(b!)));
    rows.push({
      target: label,
      measured: pairs.map(([a, b]) => `${get(a)!.toFixed(1)} vs ${get(b!)!.toFixed(1)} ms at ${a.n}`).join(", ") || "—",
      verdict: verdict(pairs.length ? pairs.every(([a, b]) => get(a)! < get(b!)!) : undefined),
    });
    // Where the stack itself is the limit: the bare grpc-js floor pinging in NetSync's slices, in the same run.
    const spreadAt = (n: number) => results.find((r) => r.system === "floor-spread" && r.n === n && !r.error);
    const spread = nsAll.map((r) => [r, sioAt(r.n), spreadAt(r.n)] as const).filter(([a, , c]) => c && finite(get(a)) && finite(get(c!)));
    if (spread.length === 0) continue;
    rows.push({
      target: `${label.split(" <")[0]} ≤ 1.15× floor-spread's (what bare grpc-js allows with NetSync's slicing; Socket.IO's for reference)`,
      measured: spread
        .map(([a, b, c]) => {
          const sio = b && finite(get(b)) ? `, Socket.IO ${get(b)!.toFixed(1)}` : "";
          return `NetSync ${get(a)!.toFixed(1)}, floor-spread ${get(c!)!.toFixed(1)}${sio} ms at ${a.n}`;
        })
        .join("; "),
      verdict: verdict(spread.every(([a, , c]) => get(a)! <= get(c!)! * 1.15)),
    });
  }
  const steady = nsAll.filter((r) => r.phases?.steady);
  rows.push({
    target: "master event-loop delay ≤ 100 ms in the steady phase while its CPU < 80%",
    measured:
      steady.map((r) => `max ${fmt(r.phases!.steady!.server.delayMax)} ms at ${fmt(r.serverCpuPct, 0)}% CPU at ${r.n}`).join(", ") || "—",
    verdict: verdict(
      steady.length ? steady.every((r) => (r.serverCpuPct ?? 0) >= 80 || r.phases!.steady!.server.delayMax <= 100) : undefined,
    ),
  });
  const evicting = nsAll.filter((r) => r.evict?.evicted);
  const stalledInFreeze = (r: RunResult) => (r.pauseLog ?? []).filter((p) => p.phase === "freeze");
  rows.push({
    target: `eviction p99 ≤ timeout + 50 ms (${config.timeout + 50} ms) when the master did not stall (every N)`,
    measured:
      evicting
        .map((r) => {
          const stalls = stalledInFreeze(r);
          const why = stalls.length
            ? ` (master stalled ${stalls.length}× in the freeze, max ${Math.max(...stalls.map((p) => p.ms))} ms)`
            : "";
          return `${r.evict!.silence.p99.toFixed(1)} ms at ${r.n}${why}`;
        })
        .join(", ") || "—",
    verdict: verdict(
      evicting.length
        ? evicting.every((r) => stalledInFreeze(r).length > 0 || (r.evict!.silence.p99 <= config.timeout + 50 && r.evict!.missed === 0))
        : undefined,
    ),
  });

  const ns10k = at(results, "netsync", 10_000);
  const sio10k = ns10k && results.find((r) => r.system === "socketio" && r.n === ns10k.n && !r.error);
  const evictP99 = ns10k?.evict?.evicted ? ns10k.evict.silence.p99 : undefined;
  rows.push({
    target: `eviction p99 ≤ timeout + 50 ms (${config.timeout + 50} ms) at 10k`,
    measured:
      ns10k && finite(evictP99) ? `${evictP99.toFixed(1)} ms at ${ns10k.n} (${ns10k.evict!.evicted}/${ns10k.evict!.frozen} evicted)` : "—",
    verdict: verdict(ns10k && finite(evictP99) ? evictP99 <= config.timeout + 50 && ns10k.evict!.missed === 0 : undefined),
  });
  for (const [label, get] of [
    ["ping RTT p99", (r: RunResult) => r.rtt?.p99],
    ["broadcast delivery p99", (r: RunResult) => r.bcast?.p99],
  ] as const) {
    const a = ns10k && get(ns10k);
    const b = sio10k ? get(sio10k) : undefined;
    rows.push({
      target: `${label} at 10k < Socket.IO's`,
      measured: finite(a) && finite(b) ? `${a.toFixed(1)} ms vs ${b.toFixed(1)} ms at ${ns10k!.n}` : "—",
      verdict: verdict(finite(a) && finite(b) ? a < b : undefined),
    });
  }
  const holds = results.filter(
    (r) => r.system === "netsync" && !r.error && r.n >= 15_000 && config.streamsPerConn === 1 && config.interval <= 1000,
  );
  const hold = holds.find((r) => (r.soakSeconds ?? r.steadySeconds ?? 0) >= 59);
  rows.push({
    target: "≥ 15,000 one-connection slaves at 1 s for 60 s, 0 false evictions",
    measured: hold
      ? `${hold.n} slaves, ${hold.soakSeconds ?? hold.steadySeconds} s, ${hold.falseEvictions} false evictions, ${hold.unexpectedEnds} unexpected ends`
      : holds.length
        ? `${holds[0]!.n} slaves for only ${holds[0]!.steadySeconds} s`
        : "—",
    verdict: verdict(hold ? hold.falseEvictions === 0 && hold.unexpectedEnds === 0 : undefined),
  });
  const muxed = results.filter((r) => r.system === "netsync" && config.streamsPerConn > 1).sort((a, b) => b.n - a.n)[0];
  rows.push({
    target: "≥ 100,000 multiplexed streams",
    measured: muxed
      ? muxed.error
        ? `${muxed.n} streams failed: ${muxed.error.split("\n")[0]}`
        : `${muxed.n} streams (${config.streamsPerConn} per connection), ${muxed.falseEvictions} false evictions`
      : "not run (npm run bench -- --mux 1000 --ladder 100000 --interval 5000 --timeout 10000)",
    verdict: verdict(muxed ? !muxed.error && muxed.n >= 100_000 && muxed.falseEvictions === 0 : undefined),
  });
  return rows;
}

const fmt = (v: number | undefined, digits = 1): string => (finite(v) ? v.toFixed(digits) : "—");

export function markdownReport(
  output: { machine: Record<string, unknown>; config: Record<string, unknown>; ratios: RatioRow[]; targets: TargetRow[] },
  results: RunResult[],
): string {
  const lines: string[] = [];
  const c = output.config;
  lines.push(
    `Heartbeat interval ${String(c.interval)} ms, timeout ${String(c.timeout)} ms, ${String(c.streamsPerConn)} stream(s) per connection; ${String(output.machine.cpus)} CPUs, ${String(output.machine.node)}.${Number(c.repeat ?? 1) > 1 ? ` Every figure is the median of ${String(c.repeat)} interleaved runs (false evictions and unexpected ends: their sum).` : ""}`,
    ...(Number(c.spinner ?? 0) > 0
      ? [
          "",
          `Background load: a spinner asking for ${String(c.spinner)} of one core ran through every run; it got ${results
            .filter((r) => r.spinner)
            .map((r) => `${fmt(r.spinner!.runPct, 0)}%`)
            .join(", ")} of one core (run by run, in table order).`,
        ]
      : []),
    "",
    "| system | N | CPU µs/slave/round | RSS KB/slave | RTT p50 / p99 ms | broadcast p50 / p99 / max ms | eviction p50 / p99 ms | evicted | false evictions | unexpected ends | server CPU % | loadgen CPU % |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const r of [...results].sort((a, b) => a.n - b.n)) {
    if (r.error) {
      lines.push(`| ${r.system} | ${r.n} | failed: ${r.error.split("\n")[0]!.replaceAll("|", "/")} |||||||||||`);
      continue;
    }
    const ev = r.evict;
    const noEvict = isFloor(r.system);
    lines.push(
      `| ${r.system} | ${r.n} | ${fmt(r.cpuUsPerSlaveRound)} | ${fmt(r.rssKbPerSlave)} | ${fmt(r.rtt?.p50, 2)} / ${fmt(r.rtt?.p99, 2)} | ${fmt(r.bcast?.p50, 2)} / ${fmt(r.bcast?.p99, 2)} / ${fmt(r.bcast?.max, 2)}${r.bcast && r.bcast.count < r.bcast.expected ? ` (${r.bcast.count}/${r.bcast.expected})` : ""} | ${noEvict ? "n/a" : `${fmt(ev?.evicted ? ev.silence.p50 : undefined)} / ${fmt(ev?.evicted ? ev.silence.p99 : undefined)}`} | ${noEvict ? "n/a" : `${ev?.evicted ?? 0}/${ev?.frozen ?? 0}${r.pauses ? ` (master stalled ${r.pauses}×, max ${r.pauseMaxMs} ms)` : ""}`} | ${r.falseEvictions ?? "—"} | ${r.unexpectedEnds ?? "—"} | ${fmt(r.serverCpuPct, 0)} | ${fmt(r.loadgenCpuPct, 0)} |`,
    );
  }
  lines.push(...attributionReport(results));
  const repeated = results.filter((r) => r.runs && r.runs.length > 1);
  if (repeated.length) {
    lines.push(
      "",
      "Master CPU µs/slave/round in each run, in the order they ran (the table gives the median):",
      "",
      "| system | N | runs |",
      "|---|---:|---|",
    );
    for (const r of [...repeated].sort((a, b) => a.n - b.n))
      lines.push(`| ${r.system} | ${r.n} | ${r.runs!.map((x) => fmt(x.cpuUsPerSlaveRound)).join(", ")} |`);
  }
  const bcastDetail = results.filter((r) => !r.error && r.bcast?.cpuPerDelivery);
  if (bcastDetail.length) {
    lines.push(
      "",
      "Broadcast cost: how long the server's broadcast call held its event loop (median of the broadcasts), and CPU per delivered command beyond the heartbeat load:",
      "",
      "| system | N | call ms | server µs/delivery | generators µs/delivery |",
      "|---|---:|---:|---:|---:|",
    );
    for (const r of [...bcastDetail].sort((a, b) => a.n - b.n)) {
      const calls = [...(r.bcast!.callMs ?? [])].sort((a, b) => a - b);
      lines.push(
        `| ${r.system} | ${r.n} | ${fmt(calls[Math.floor(calls.length / 2)])} | ${fmt(r.bcast!.cpuPerDelivery!.serverUs)} | ${fmt(r.bcast!.cpuPerDelivery!.loadgenUs)} |`,
      );
    }
  }
  if (output.ratios.length) {
    lines.push("", "Ratios NetSync / other (below 1: NetSync is better):", "");
    lines.push(`| N | versus | ${MEASURES.map((m) => m.key).join(" | ")} |`, `|---:|---|${MEASURES.map(() => "---:").join("|")}|`);
    for (const row of output.ratios) {
      lines.push(`| ${row.n} | ${row.versus} | ${MEASURES.map((m) => fmt(row.ratios[m.key] ?? undefined, 2)).join(" | ")} |`);
    }
  }
  lines.push("", "| target | measured | verdict |", "|---|---|---|");
  for (const t of output.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.verdict} |`);
  return lines.join("\n");
}

/** One SVG per measure: the measure against N, one line per system. */
export async function renderCharts(results: RunResult[], outDir: string, prefix = ""): Promise<string[]> {
  const files: string[] = [];
  for (const measure of MEASURES) {
    const values = results
      .filter((r) => !r.error && finite(measure.get(r)))
      .map((r) => ({ system: r.system, n: r.n, value: measure.get(r)! }));
    if (values.length === 0) continue;
    const spec: TopLevelSpec = {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: `${measure.title} (${measure.unit})`,
      width: 480,
      height: 280,
      background: "white",
      data: { values },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "n", type: "quantitative", title: "slaves (N)", axis: { format: "~s" } },
        y: { field: "value", type: "quantitative", title: measure.unit },
        color: { field: "system", type: "nominal", title: "system", scale: { domain: [...SYSTEMS] } },
      },
    };
    const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
    const svg = await view.toSVG();
    view.finalize();
    const file = join(outDir, `${prefix}${measure.key}.svg`);
    writeFileSync(file, svg);
    files.push(file);
  }
  return files;
}

const loop = (x: LoopGc | undefined): string => (x ? `${fmt(x.delayP50)} / ${fmt(x.delayP99)} / ${fmt(x.delayMax)}` : "—");
const gc = (x: LoopGc | undefined): string =>
  x ? `${x.gcCount}: ${fmt(x.gcTotalMs, 0)} ms, max ${fmt(x.gcMaxMs)} (major ${x.majorCount}, max ${fmt(x.majorMaxMs)})` : "—";

/**
 * Attribution: next to each figure, the event-loop delay (p50 / p99 / max) and GC of the master and of the
 * generators in the phase the figure was measured in, so a latency is known to be the master's, the
 * generators' or the machine's (neither loop delayed, yet the figure is high: CPU was not to be had).
 */
export function attributionReport(results: RunResult[]): string[] {
  const rows = [...results].filter((r) => !r.error && r.phases).sort((a, b) => a.n - b.n);
  if (!rows.length) return [];
  const lines = [
    "",
    "Attribution: each figure with the event-loop delay (p50 / p99 / max ms) and the GC pauses (count: total, max, and mark-compact count and max, ms) of the master and of the generators (the worst generator's delay, their GC summed) in the phase it was measured in; CPU % of one core.",
    "",
    "| system | N | phase | figure | master loop delay ms | master GC | master CPU % | generators loop delay ms | generators GC | generators CPU % | spinner CPU % |",
    "|---|---:|---|---|---:|---|---:|---:|---|---:|---:|",
  ];
  const figure: Record<string, (r: RunResult) => string> = {
    steady: (r) =>
      `CPU ${fmt(r.cpuUsPerSlaveRound)} µs/slave/round (${fmt(r.cpuUsPerPing)} µs/ping, ${fmt(r.pingsPerSlaveRound, 3)} pings/slave/round)`,
    rtt: (r) => `RTT p99 ${fmt(r.rtt?.p99)} ms`,
    bcast: (r) => `broadcast p99 ${fmt(r.bcast?.p99)} ms`,
    freeze: (r) => (isFloor(r.system) ? "(no eviction)" : `eviction p99 ${fmt(r.evict?.evicted ? r.evict.silence.p99 : undefined)} ms`),
  };
  for (const r of rows) {
    for (const [phase, fig] of Object.entries(figure)) {
      const p: PhaseAttribution | undefined = r.phases![phase];
      if (!p) continue;
      lines.push(
        `| ${r.system} | ${r.n} | ${phase} | ${fig(r)} | ${loop(p.server)} | ${gc(p.server)} | ${fmt(p.server?.cpuPct, 0)} | ${loop(p.gens)} | ${gc(p.gens)} | ${fmt(p.gens?.cpuPct, 0)} | ${fmt(p.spinnerPct, 0)} |`,
      );
    }
  }
  // The long stalls of the master, and what they were.
  const stalls = rows.flatMap((r) =>
    Object.entries(r.phases!).flatMap(([phase, p]) =>
      (p.server?.stalls ?? []).map(
        (s) =>
          `${r.system} ${r.n} ${phase}: ${fmt(s.ms, 0)} ms (CPU ${fmt(s.cpuMs, 0)} ms, GC ${fmt(s.gcMs, 0)} ms${s.gcKinds ? ` ${s.gcKinds}` : ""})`,
      ),
    ),
  );
  if (stalls.length)
    lines.push(
      "",
      `Server event-loop stalls over 100 ms (the CPU the server used meanwhile: about the stall's length if it was busy, far less if the machine did not run it): ${stalls.slice(0, 40).join("; ")}`,
    );
  const pauses = rows.flatMap((r) => (r.pauseLog ?? []).map((p) => `${r.n} ${p.phase}: ${p.ms} ms`));
  if (pauses.length) lines.push("", `NetSync's pause detector (time excused from every deadline): ${pauses.slice(0, 40).join("; ")}`);
  return lines;
}
