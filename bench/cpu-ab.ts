/**
 * A quick A/B of server CPU per slave per round, for ablations: one server,
 * generators holding N slaves (--generators, default 1), optionally the
 * calibrated spinner, and the server's CPU read from /proc over a window
 * after it settled. Variants run interleaved, so a machine that changes speed
 * mid-run hits every variant. Also printed: CPU per ping (the floor drifts
 * under load and pings less than once per round), the generators' CPU,
 * each process's wake-ups per second, and with --probe the RTT phase's load
 * and its RTT p50/p99.
 *
 *   node --import tsx bench/cpu-ab.ts --n 10000 --generators 2 --rounds 4 --spinner 0.5 --probe floor-spread netsync
 *
 *   node --import tsx bench/cpu-ab.ts --n 5000 --rounds 4 --spinner 0.5 \
 *     'netsync' 'floor' 'netsync:{"NETSYNC_BENCH_MASTER_OPTIONS":"{\"heartbeatSliceSize\":5000}"}'
 *
 * A variant is a server name (bench/servers/<name>.ts) and, after a colon,
 * the JSON of extra environment for that server. Heartbeat timeout is long
 * (10 min) so that an ablation that stops answering pongs evicts nobody.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Child, type ChildConfig, cpuMs, hrNow, sleep, sum, summarize, wakeups } from "./lib/common.js";
import { type PhaseStats, profileEnv } from "./lib/probe.js";
import { floorSpreadSlices } from "./lib/systems.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    n: { type: "string", default: "5000" },
    rounds: { type: "string", default: "4" },
    spinner: { type: "string", default: "0" },
    settle: { type: "string", default: "12000" },
    window: { type: "string", default: "12000" },
    interval: { type: "string", default: "1000" },
    // Slaves send the echo probe after every pong, as in run.ts's RTT phase; its RTT p50/p99 is reported too.
    probe: { type: "boolean", default: false },
    generators: { type: "string", default: "1" },
    // A CPU profile of the server over the measured window, one file per run in this folder.
    prof: { type: "string" },
  },
});
const n = Number(args.n);
const variants = positionals.map((spec) => {
  const colon = spec.indexOf(":");
  const server = colon < 0 ? spec : spec.slice(0, colon);
  const env = colon < 0 ? {} : (JSON.parse(spec.slice(colon + 1)) as Record<string, string>);
  return { label: spec, server, env };
});
if (variants.length === 0) throw new Error("name at least one variant, e.g. netsync floor");

interface Sample {
  us: number;
  /** The generators' CPU per slave per round, µs: a server can cost its clients more too. */
  genUs: number;
  /**
   * Pings each slave got per round. Under load the floor's setInterval slices drift and it pings
   * only ~0.92 per round, NetSync catches up to ~1.0: per round flatters the floor, per ping does not.
   */
  pingsPerRound: number;
  rtt?: { p50: number; p99: number };
}

/**
 * Where the slow echoes (over SLOW_RTT_MS) of a window came from: how many
 * slaves they hit and how many 100 ms moments they were sent in. A tail from
 * one moment is a stall somewhere; one spread over time on a few slaves is
 * those slaves' connections.
 */
function describeSlow(perGenerator: [number, number, number][][], windowStart: number): void {
  const all = perGenerator.flatMap((slow, g) => slow.map(([i, at, rtt]) => ({ slave: `${g}:${i}`, at, rtt })));
  if (all.length === 0) return;
  const moments = new Map<number, number>();
  for (const { at } of all) moments.set(Math.floor(at / 100), (moments.get(Math.floor(at / 100)) ?? 0) + 1);
  const busiest = [...moments].sort((a, b) => b[1] - a[1]).map(([m, count]) => `${count} at +${Math.round(m * 100 - windowStart)} ms`);
  const slaves = new Set(all.map((s) => s.slave)).size;
  const byGenerator = perGenerator.map((slow) => slow.length).join("/");
  console.log(
    `  slow echoes: ${all.length} (per generator ${byGenerator}) on ${slaves} slaves, sent in ${moments.size} moments of 100 ms;` +
      ` the busiest 3 moments hold ${busiest.slice(0, 3).join(", ")}`,
  );
}

/** Each process's loop delay in the window and its stalls over 100 ms (+ms from the window's start: length, CPU used meanwhile). */
function describeStalls(names: string[], stats: PhaseStats[], windowStart: number): void {
  stats.forEach((s, i) => {
    const stalls = s.stalls
      .map((st) => `+${Math.round(st.at - st.ms - windowStart)}: ${st.ms} ms (cpu ${st.cpuMs}, gc ${st.gcMs} ${st.gcKinds})`)
      .join(", ");
    console.log(
      `  ${names[i]}: loop delay p99 ${s.delay.p99} max ${s.delay.max} ms, busy ${s.busyPct}%, gc ${s.gc.totalMs} ms (major ${s.gc.byKind.major?.count ?? 0})${stalls ? `; stalls ${stalls}` : ""}`,
    );
  });
}

async function once(variant: (typeof variants)[number]): Promise<Sample> {
  const interval = Number(args.interval);
  const children: Child[] = [];
  const node = (script: string, config: ChildConfig, env: NodeJS.ProcessEnv = {}) => {
    const child = new Child(script, join(HERE, script), config, [], env);
    children.push(child);
    return child;
  };
  try {
    if (Number(args.spinner) > 0) node("lib/spinner.ts", { fraction: Number(args.spinner) });
    // floor-spread is the floor with NetSync's slicing, as in run.ts.
    const spread = variant.server === "floor-spread";
    const server = node(
      `servers/${spread ? "floor" : variant.server}.ts`,
      { host: "127.0.0.1", interval, timeout: 600_000, slices: spread ? floorSpreadSlices(n, interval) : 1 },
      args.prof
        ? { ...variant.env, ...profileEnv("window", join(args.prof, `${variant.server}-${n}-${Date.now()}.cpuprofile`)) }
        : variant.env,
    );
    const { port } = await server.waitFor("ready", 30_000);
    const g = Math.max(1, Number(args.generators));
    const generators = Array.from({ length: g }, (_, i) => {
      const count = Math.floor(((i + 1) * n) / g) - Math.floor((i * n) / g);
      // With --prof, the first generator is profiled too: a server can cost its clients more.
      const env = args.prof && i === 0 ? profileEnv("window", join(args.prof, `${variant.server}-${n}-gen0-${Date.now()}.cpuprofile`)) : {};
      return node("loadgen/grpc.ts", { hosts: ["127.0.0.1"], port, count, prefix: `g${i}-`, streamsPerConn: 1, openBatch: 200 }, env);
    });
    await sleep(Number(args.settle));
    if (args.probe) {
      for (const gen of generators) gen.send({ cmd: "probe", on: true });
      await sleep(2 * interval);
      await Promise.all(generators.map((gen) => gen.request({ cmd: "collect" })));
    }
    // Every process starts a phase with the window, so its loop delay and stalls are the window's (and --prof profiles it).
    const processes = [server, ...generators];
    await Promise.all(processes.map((child) => child.request({ cmd: "phase", name: "window" })));
    const windowStart = hrNow();
    const generatorsCpuMs = () => sum(generators.map((gen) => cpuMs(gen.pid)));
    const pings = async () => sum((await Promise.all(generators.map((gen) => gen.request({ cmd: "status" })))).map((s) => Number(s.pings)));
    const c0 = cpuMs(server.pid);
    const g0 = generatorsCpuMs();
    const p0 = await pings();
    const w0 = processes.map((child) => wakeups(child.pid));
    const t0 = performance.now();
    await sleep(Number(args.window));
    const phases = await Promise.all(processes.map((child) => child.request({ cmd: "phase", name: "after" })));
    const elapsed = performance.now() - t0;
    const perRound = (ms: number) => (((ms / elapsed) * 1000 * 1000) / n) * (interval / 1000);
    const us = perRound(cpuMs(server.pid) - c0);
    const genUs = perRound(generatorsCpuMs() - g0);
    const w1 = processes.map((child) => wakeups(child.pid));
    const perSec = (i: number) => Math.round(((w1[i]! - w0[i]!) / elapsed) * 1000);
    // Pings the slaves got per slave per round: a server that pings more often than it should costs more.
    const pingsPerRound = ((await pings()) - p0) / n / (elapsed / interval);
    console.log(
      `  pings per slave per round ${pingsPerRound.toFixed(3)};` +
        ` wakeups/s: server ${perSec(0)}, generators ${generators.map((_, i) => perSec(i + 1)).join(" ")}`,
    );
    if (!args.probe) return { us, genUs, pingsPerRound };
    const collected = await Promise.all(generators.map((gen) => gen.request({ cmd: "collect" })));
    const rtt = summarize(collected.flatMap((c) => c.rtt as number[]));
    describeSlow(
      collected.map((c) => c.slow as [number, number, number][]),
      windowStart,
    );
    describeStalls(
      processes.map((child) => child.name),
      phases.map((phase) => phase.stats as PhaseStats),
      windowStart,
    );
    return { us, genUs, pingsPerRound, rtt };
  } finally {
    for (const child of children) child.kill("SIGKILL");
  }
}

const samples = new Map<string, Sample[]>(variants.map((v) => [v.label, []]));
for (let round = 0; round < Number(args.rounds); round++) {
  for (const variant of variants) {
    const sample = await once(variant);
    samples.get(variant.label)!.push(sample);
    const { us, genUs, rtt } = sample;
    const rttText = rtt ? `, RTT p50 ${rtt.p50.toFixed(1)} p99 ${rtt.p99.toFixed(1)} ms` : "";
    console.log(`round ${round + 1} ${variant.label}: ${us.toFixed(1)} µs/slave/round (generators ${genUs.toFixed(1)})${rttText}`);
  }
}
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
/** The median over a variant's rounds of one figure of its samples. */
const medianOf = (label: string, figure: (s: Sample) => number): number => median(samples.get(label)!.map(figure));
const perPing = (s: Sample) => s.us / s.pingsPerRound;
const first = variants[0]!.label;
const base = medianOf(first, (s) => s.us);
const basePerPing = medianOf(first, perPing);
console.log(`\nN ${n}, spinner ${args.spinner}, ${args.rounds} interleaved rounds (medians; ratio to ${first}):`);
for (const [label, xs] of samples) {
  const us = medianOf(label, (s) => s.us);
  console.log(
    `  ${us.toFixed(1).padStart(6)} µs  ${(us / base).toFixed(2)}×  ${label}  [${xs.map((x) => x.us.toFixed(1)).join(", ")}]` +
      `  per ping ${medianOf(label, perPing).toFixed(1)} µs (${(medianOf(label, perPing) / basePerPing).toFixed(2)}×)` +
      `  generators ${medianOf(label, (s) => s.genUs).toFixed(1)} µs` +
      (args.probe ? `  RTT p99 median ${medianOf(label, (s) => s.rtt!.p99).toFixed(1)} ms` : ""),
  );
}
