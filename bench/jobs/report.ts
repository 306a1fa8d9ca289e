/** bench:jobs's tables and same-run ratios (NetSync ÷ Socket.IO at each N) and the targets. */
import { round } from "../lib/common.js";
import type { JobsConfig } from "./config.js";
import type { JobsRunResult } from "./run-one.js";

export interface JobsRatio {
  n: number;
  /** NetSync ÷ Socket.IO, same run. */
  lastReplyP50: number | null;
  lastReplyP99: number | null;
  cpuPer1k: number | null;
  /** Servers and broker together. */
  cpuPer1kWithBroker: number | null;
  rssPeak: number | null;
  /** NetSync ÷ the gRPC floor (when run): what the jobs layer adds to the transport. */
  cpuPer1kVsFloor?: number | null;
  lastReplyP50VsFloor?: number | null;
}

const ratio = (a: number | undefined, b: number | undefined): number | null =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? round(a / b, 2) : null;
const sumOf = (values: number[] | undefined) => (values ? values.reduce((x, y) => x + y, 0) : undefined);
const withBroker = (r: JobsRunResult) => (r.cpu ? r.cpu.serversMsPer1k + (r.cpu.brokerMsPer1k ?? 0) : undefined);

export function jobsRatios(results: JobsRunResult[]): JobsRatio[] {
  const rows: JobsRatio[] = [];
  for (const ns of results.filter((r) => r.system === "netsync" && !r.error)) {
    const io = results.find((r) => r.system === "socketio" && r.n === ns.n && !r.error);
    if (!io) continue;
    const floor = results.find((r) => r.system === "floor" && r.n === ns.n && !r.error);
    rows.push({
      n: ns.n,
      lastReplyP50: ratio(ns.lastReply?.p50, io.lastReply?.p50),
      lastReplyP99: ratio(ns.lastReply?.p99, io.lastReply?.p99),
      cpuPer1k: ratio(ns.cpu?.serversMsPer1k, io.cpu?.serversMsPer1k),
      cpuPer1kWithBroker: ratio(withBroker(ns), withBroker(io)),
      rssPeak: ratio(sumOf(ns.rss?.peakMB), sumOf(io.rss?.peakMB)),
      ...(floor
        ? {
            cpuPer1kVsFloor: ratio(ns.cpu?.serversMsPer1k, floor.cpu?.serversMsPer1k),
            lastReplyP50VsFloor: ratio(ns.lastReply?.p50, floor.lastReply?.p50),
          }
        : {}),
    });
  }
  return rows;
}

/** The targets of issue 19: time to the last reply (p50, p99) and CPU per reply at or below Socket.IO's at every N; no loop turn over 100 ms; no eviction. */
export function jobsTargets(
  results: JobsRunResult[],
  ratios: JobsRatio[],
): { target: string; verdict: "met" | "missed"; detail: string }[] {
  const ns = results.filter((r) => r.system === "netsync");
  const each = (get: (r: JobsRatio) => number | null) => ratios.map((r) => `${r.n}: ${get(r) ?? "–"}`).join(", ");
  const atMostOne = (get: (r: JobsRatio) => number | null) =>
    ratios.length > 0 && ratios.every((r) => (get(r) ?? Number.POSITIVE_INFINITY) <= 1);
  return [
    {
      target: "time to last reply p50 ≤ Socket.IO's",
      verdict: atMostOne((r) => r.lastReplyP50) ? "met" : "missed",
      detail: each((r) => r.lastReplyP50),
    },
    {
      target: "time to last reply p99 ≤ Socket.IO's",
      verdict: atMostOne((r) => r.lastReplyP99) ? "met" : "missed",
      detail: each((r) => r.lastReplyP99),
    },
    {
      target: "master CPU per reply ≤ Socket.IO's",
      verdict: atMostOne((r) => r.cpuPer1k) ? "met" : "missed",
      detail: each((r) => r.cpuPer1k),
    },
    {
      target: "no master loop turn over 100 ms during the jobs",
      verdict: ns.every((r) => r.loop && r.loop.maxMs <= 100) ? "met" : "missed",
      detail: ns.map((r) => `${r.n}: ${r.loop?.maxMs ?? "–"} ms`).join(", "),
    },
    {
      target: "no eviction",
      verdict: ns.every((r) => r.evictions && r.evictions.run === 0) ? "met" : "missed",
      detail: ns.map((r) => `${r.n}: ${r.evictions?.run ?? "–"}`).join(", "),
    },
  ];
}

export function jobsMarkdown(
  config: JobsConfig,
  results: JobsRunResult[],
  ratios: JobsRatio[],
  meta: { date: string; seconds: number },
): string {
  const mode = config.cluster
    ? `cluster: ${config.servers} masters + nats-server vs ${config.servers} Socket.IO nodes + redis-adapter`
    : "single master vs one Socket.IO server";
  const spinner = results.map((r) => r.spinnerPct).filter((v): v is number => v !== undefined);
  const lines = [
    `Jobs, ${mode}; ${meta.date}, ${meta.seconds} s. ${config.repeats} jobs per N (after ${config.warmupJobs} discarded), heartbeats ${config.interval} / ${config.timeout} ms, reply timeout ${config.jobTimeout} ms.` +
      (config.spinner > 0 ? ` Spinner asked ${config.spinner} of a core, got ${Math.min(...spinner)}–${Math.max(...spinner)} %.` : ""),
    "",
    "| N | system | last reply p50 / p99 ms | CPU ms / 1,000 replies (servers) | + broker | master RSS MB (before → peak) | heap kept B / reply | longest loop turn ms (busiest stall) | evictions | replies / expected |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.n} | ${r.system} | failed: ${r.error.split("\n")[0]} | | | | | | | |`);
      continue;
    }
    const rss = `${round(sumOf(r.rss?.beforeJobsMB) ?? Number.NaN, 0)} → ${round(sumOf(r.rss?.peakMB) ?? Number.NaN, 0)}`;
    const busiest = r.loop?.busiestStallMs ? ` (${r.loop.busiestStallMs})` : "";
    const turn = config.cluster
      ? `${r.loop?.originMaxMs}; others ${r.loop?.relayMaxMs.join(", ")}${busiest}`
      : `${r.loop?.maxMs}${busiest}`;
    const resolve = r.resolveP50Ms !== undefined ? ` (targets fixed ${r.resolveP50Ms})` : "";
    lines.push(
      `| ${r.n} | ${r.system} | ${r.lastReply?.p50} / ${r.lastReply?.p99}${resolve} | ${r.cpu?.serversMsPer1k} | ${r.cpu?.brokerMsPer1k !== undefined ? round(r.cpu.serversMsPer1k + r.cpu.brokerMsPer1k, 2) : "–"} | ${rss} | ${r.heap?.keptBytesPerReply} | ${turn} | ${r.evictions?.run} | ${r.replies} / ${r.expected} |`,
    );
  }
  const floor = config.systems.includes("floor");
  lines.push(
    "",
    `| N | NetSync ÷ Socket.IO: last reply p50 | p99 | CPU / reply | CPU / reply with broker | RSS peak |${floor ? " NetSync ÷ floor: CPU / reply | last reply p50 |" : ""}`,
    `| ---: | ---: | ---: | ---: | ---: | ---: |${floor ? " ---: | ---: |" : ""}`,
  );
  for (const r of ratios) {
    const vsFloor = floor ? ` ${r.cpuPer1kVsFloor} | ${r.lastReplyP50VsFloor} |` : "";
    lines.push(
      `| ${r.n} | ${r.lastReplyP50} | ${r.lastReplyP99} | ${r.cpuPer1k} | ${config.cluster ? r.cpuPer1kWithBroker : "–"} | ${r.rssPeak} |${vsFloor}`,
    );
  }
  lines.push("", "| target | verdict | per N |", "| --- | --- | --- |");
  for (const t of jobsTargets(results, ratios)) lines.push(`| ${t.target} | ${t.verdict} | ${t.detail} |`);
  return lines.join("\n");
}
