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
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** CPU of a process (all threads) in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function once(variant: (typeof variants)[number]): Promise<number> {
  const children: ChildProcess[] = [];
  const node = (script: string, config: unknown, env: Record<string, string> = {}) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(HERE, script), JSON.stringify(config)], {
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, ...env },
    });
    children.push(child);
    return child;
  };
  try {
    if (Number(args.spinner) > 0) node("lib/spinner.ts", { fraction: Number(args.spinner) });
    const interval = Number(args.interval);
    // floor-spread is the floor with NetSync's slicing, as in run.ts.
    const slices = variant.server === "floor-spread" && interval >= 200 ? Math.min(100, Math.floor(interval / 10), Math.ceil(n / 100)) : 1;
    const script = variant.server === "floor-spread" ? "floor" : variant.server;
    const server = node(`servers/${script}.ts`, { host: "127.0.0.1", interval, timeout: 600_000, slices }, variant.env);
    const port = await new Promise<number>((resolve) => {
      let seen = "";
      server.stdout!.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        const ready = /"ready","port":(\d+)/.exec(seen);
        if (ready) resolve(Number(ready[1]));
      });
    });
    node("loadgen/grpc.ts", { hosts: ["127.0.0.1"], port, count: n, prefix: "g0-", streamsPerConn: 1, openBatch: 200 });
    await sleep(Number(args.settle));
    const c0 = cpuMs(server.pid!);
    const t0 = performance.now();
    await sleep(Number(args.window));
    const perSecond = ((cpuMs(server.pid!) - c0) / (performance.now() - t0)) * 1000;
    return ((perSecond * 1000) / n) * (Number(args.interval) / 1000);
  } finally {
    for (const child of children) child.kill("SIGKILL");
  }
}

const results = new Map<string, number[]>(variants.map((v) => [v.label, []]));
for (let round = 0; round < Number(args.rounds); round++) {
  for (const variant of variants) {
    const us = await once(variant);
    results.get(variant.label)!.push(us);
    console.log(`round ${round + 1} ${variant.label}: ${us.toFixed(1)} µs/slave/round`);
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
    `  ${median(xs).toFixed(1).padStart(6)} µs  ${(median(xs) / base).toFixed(2)}×  ${label}  [${xs.map((x) => x.toFixed(1)).join(", ")}]`,
  );
}
