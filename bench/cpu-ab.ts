/**
 * A quick A/B of server CPU per slave per round, for ablations: one server,
 * one generator holding N slaves, optionally the calibrated spinner, and the
 * server's CPU read from /proc over a window after it settled. Variants run
 * interleaved, so a machine that changes speed mid-run hits every variant.
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
import { Child, type ChildConfig, cpuMs, sleep } from "./lib/common.js";
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
  rtt?: { p50: number; p99: number };
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
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
        ? { ...variant.env, NETSYNC_BENCH_PROFILE: `window:${join(args.prof, `${variant.server}-${n}-${Date.now()}.cpuprofile`)}` }
        : variant.env,
    );
    const { port } = await server.waitFor("ready", 30_000);
    const g = Math.max(1, Number(args.generators));
    const generators = Array.from({ length: g }, (_, i) => {
      const count = Math.floor(((i + 1) * n) / g) - Math.floor((i * n) / g);
      return node("loadgen/grpc.ts", { hosts: ["127.0.0.1"], port, count, prefix: `g${i}-`, streamsPerConn: 1, openBatch: 200 });
    });
    await sleep(Number(args.settle));
    if (args.probe) {
      for (const gen of generators) gen.send({ cmd: "probe", on: true });
      await sleep(2 * interval);
      await Promise.all(generators.map((gen) => gen.request({ cmd: "collect" })));
    }
    if (args.prof) await server.request({ cmd: "phase", name: "window" });
    const c0 = cpuMs(server.pid);
    const t0 = performance.now();
    await sleep(Number(args.window));
    if (args.prof) await server.request({ cmd: "phase", name: "after" });
    const perSecond = ((cpuMs(server.pid) - c0) / (performance.now() - t0)) * 1000;
    const us = ((perSecond * 1000) / n) * (interval / 1000);
    if (!args.probe) return { us };
    const collected = await Promise.all(generators.map((gen) => gen.request({ cmd: "collect" })));
    const rtt = collected.flatMap((c) => c.rtt as number[]).sort((a, b) => a - b);
    return { us, rtt: { p50: quantile(rtt, 0.5), p99: quantile(rtt, 0.99) } };
  } finally {
    for (const child of children) child.kill("SIGKILL");
  }
}

const results = new Map<string, number[]>(variants.map((v) => [v.label, []]));
const rttP99 = new Map<string, number[]>(variants.map((v) => [v.label, []]));
for (let round = 0; round < Number(args.rounds); round++) {
  for (const variant of variants) {
    const { us, rtt } = await once(variant);
    results.get(variant.label)!.push(us);
    if (rtt) rttP99.get(variant.label)!.push(rtt.p99);
    const rttText = rtt ? `, RTT p50 ${rtt.p50.toFixed(1)} p99 ${rtt.p99.toFixed(1)} ms` : "";
    console.log(`round ${round + 1} ${variant.label}: ${us.toFixed(1)} µs/slave/round${rttText}`);
  }
}
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
const base = median(results.get(variants[0]!.label)!);
console.log(`\nN ${n}, spinner ${args.spinner}, ${args.rounds} interleaved rounds (medians; ratio to ${variants[0]!.label}):`);
for (const [label, xs] of results) {
  console.log(
    `  ${median(xs).toFixed(1).padStart(6)} µs  ${(median(xs) / base).toFixed(2)}×  ${label}  [${xs.map((x) => x.toFixed(1)).join(", ")}]` +
      (args.probe ? `  RTT p99 median ${median(rttP99.get(label)!).toFixed(1)} ms` : ""),
  );
}
