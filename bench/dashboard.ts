/**
 * What one dashboard viewer costs the master: `npm run bench:dashboard [-- options]`.
 *
 * Starts a master with a dashboard (bench/servers/netsync-dashboard.ts) in a
 * child process and N raw gRPC slaves in load-generator processes
 * (bench/loadgen/grpc.ts, at most --per-gen each: a process has 20,000 file
 * descriptors), then measures the master's CPU (process.cpuUsage, in the
 * master) over fixed windows, alternating: no viewer, then one viewer. The
 * viewer behaves like the page: it keeps /api/events open and, on every
 * tick, fetches /api/slaves with the page's default query (first 500 by
 * id). Reports each pair's ratio with/without and their median.
 *
 * With --synthetic, no generators: each master's registry is filled with its
 * share of synthetic slaves (no streams, nothing pinged), so the masters are
 * idle but for the viewer, and what matters is the CPU the viewer adds
 * (`addedPctOfCore`, the same in every pair on a busy machine, where the
 * ratio of a real run swings with evictions and other processes).
 *
 * With --masters K (> 1), a cluster: a nats-server (bench/lib/nats-server.ts),
 * K masters over it, the slaves split evenly among them, the dashboard viewed
 * on the first; the ratio is then of the K masters' CPU summed (the viewer's
 * cost lands on every master: each answers the viewed one's fleet-wide view),
 * and the viewed master's own ratio is reported next to it.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Child, percentile, round, sleep } from "./lib/common.js";
import { type NatsServerProcess, startNatsServer, stopNatsServer } from "./lib/nats-server.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    slaves: { type: "string", default: "10000" },
    "per-gen": { type: "string", default: "5000" },
    interval: { type: "string", default: "1000" },
    timeout: { type: "string", default: "3000" },
    window: { type: "string", default: "20" },
    pairs: { type: "string", default: "4" },
    warmup: { type: "string", default: "10" },
    masters: { type: "string", default: "1" },
    "connect-wait": { type: "string", default: "60" },
    synthetic: { type: "boolean", default: false },
    out: { type: "string", default: "bench/out" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(
    "npm run bench:dashboard -- [--slaves 10000] [--per-gen 5000] [--interval 1000] [--timeout 3000] [--window 20] [--pairs 3] [--warmup 10] [--masters 1] [--connect-wait 60] [--synthetic]",
  );
  process.exit(0);
}
const slaves = Number(args.slaves);
const perGen = Number(args["per-gen"]);
const windowMs = Number(args.window) * 1000;
const pairs = Number(args.pairs);
const masterCount = Number(args.masters);
const host = "127.0.0.1";

/** A viewer like the page: the SSE stream open, /api/slaves fetched once per tick, one fetch at a time. */
class Viewer {
  private req: http.ClientRequest | undefined;
  private fetching = false;
  ticks = 0;
  fetches = 0;
  bytes = 0;

  constructor(private readonly base: string) {}

  start(): void {
    this.req = http.get(`${this.base}/api/events`, (res) => {
      let buffer = "";
      res.setEncoding("utf8").on("data", (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (/^event: (hello|tick)$/m.test(frame)) {
            this.ticks++;
            void this.fetchTable();
          }
          end = buffer.indexOf("\n\n");
        }
      });
    });
    this.req.on("error", () => {});
  }

  private async fetchTable(): Promise<void> {
    if (this.fetching) return;
    this.fetching = true;
    try {
      const res = await fetch(`${this.base}/api/slaves?sort=id&order=asc&offset=0&limit=500`, { cache: "no-store" });
      const body = await res.text();
      this.bytes += body.length;
      this.fetches++;
    } finally {
      this.fetching = false;
    }
  }

  stop(): void {
    this.req?.destroy();
    this.req = undefined;
  }
}

const children: Child[] = [];
let nats: NatsServerProcess | undefined;
const stopAll = async () => {
  await Promise.all(children.map((child) => child.stop()));
  if (nats) await stopNatsServer(nats);
};
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

try {
  if (masterCount > 1) {
    const out = resolve(args.out!);
    mkdirSync(out, { recursive: true });
    nats = await startNatsServer(host, out);
  }
  const masters: Child[] = [];
  for (let m = 0; m < masterCount; m++) {
    const child = new Child(`master ${m + 1}`, join(HERE, "servers", "netsync-dashboard.ts"), {
      host,
      interval: Number(args.interval),
      timeout: Number(args.timeout),
      natsUrl: nats?.url,
      name: `m${m + 1}`,
      dashboard: m === 0,
    });
    children.push(child);
    masters.push(child);
  }
  const readies = await Promise.all(masters.map((m) => m.waitFor("ready", 30_000)));
  const base = `http://${host}:${readies[0]!.httpPort as number}`;
  console.log(
    `${masterCount} master(s)${nats ? ` over ${nats.url}` : ""}, dashboard on ${base}; opening ${slaves} slaves in ${Math.ceil(slaves / perGen)} generators`,
  );

  // The slaves split evenly among the masters, each share in generators of at most perGen.
  const generators: Child[] = [];
  const slaveShares = masters.map((_, m) => Math.floor(slaves / masterCount) + (m < slaves % masterCount ? 1 : 0));
  if (args.synthetic) {
    // No streams: each master's registry holds its share (ids interleaved across masters); nothing is pinged.
    await Promise.all(masters.map((m, k) => m.request({ cmd: "fill", count: slaveShares[k]!, stride: masterCount, offset: k })));
  }
  for (let m = 0, k = 0; m < masterCount && !args.synthetic; m++) {
    for (let left = slaveShares[m]!; left > 0; k++, left -= perGen) {
      const generator = new Child(`generator ${k}`, join(HERE, "loadgen", "grpc.ts"), {
        hosts: [host],
        port: readies[m]!.port as number,
        count: Math.min(perGen, left),
        prefix: `g${k}-`,
        streamsPerConn: 1,
        openBatch: 200,
      });
      children.push(generator);
      generators.push(generator);
    }
  }
  await Promise.all(generators.map((g) => g.waitFor("ready", 300_000)));
  // On a machine busy with other work the ramp can take longer than a minute.
  const deadline = performance.now() + Number(args["connect-wait"]) * 1000;
  for (;;) {
    const stats = await Promise.all(masters.map((m) => m.request({ cmd: "stats" })));
    const connected = stats.reduce((sum, s) => sum + (s.connected as number), 0);
    if (connected === slaves && stats.every((s) => s.masters === masterCount)) break;
    if (performance.now() > deadline) throw new Error(`only ${connected} of ${slaves} slaves connected`);
    await sleep(500);
  }
  console.log(`${slaves} slaves connected; warming up ${args.warmup} s`);
  await sleep(Number(args.warmup) * 1000);

  const measure = async (): Promise<{
    cpuMs: number;
    viewedCpuMs: number;
    dashboardMs: number;
    ms: number;
    viewers: number;
    feedActive: boolean;
  }> => {
    const as = await Promise.all(masters.map((m) => m.request({ cmd: "cpu" })));
    await sleep(windowMs);
    const bs = await Promise.all(masters.map((m) => m.request({ cmd: "cpu" })));
    const a = as[0]!;
    const b = bs[0]!;
    return {
      // Every master's CPU, summed: in a cluster the viewed master's view costs the others their answers.
      cpuMs: bs.reduce((sum, x, i) => sum + (x.cpuMs as number) - (as[i]!.cpuMs as number), 0),
      viewedCpuMs: (b.cpuMs as number) - (a.cpuMs as number),
      dashboardMs: (b.dashboardMs as number) - (a.dashboardMs as number),
      ms: (b.at as number) - (a.at as number),
      viewers: b.viewers as number,
      feedActive: b.feedActive as boolean,
    };
  };

  const results: {
    without: number;
    with: number;
    ratio: number;
    /** What the viewer added, % of one core (the masters' CPU summed): the figure --synthetic is for. */
    addedPctOfCore: number;
    /** The viewed master's own ratio (the same as ratio with one master). */
    viewedRatio: number;
    /** Time in the dashboard's own code during the viewed window, as a share of the master's CPU then, %. */
    dashboardSharePct: number;
    fetches: number;
    kbPerFetch: number;
  }[] = [];
  const viewedWindow = async () => {
    const viewer = new Viewer(base);
    viewer.start();
    await sleep(1_500); // the page load (hello, first table) is not the steady cost
    const fetchesBefore = viewer.fetches;
    const bytesBefore = viewer.bytes;
    const on = await measure();
    viewer.stop();
    if (on.viewers !== 1) throw new Error(`expected one viewer, the master saw ${on.viewers}`);
    await sleep(2_000); // let the viewer's connection close before the next window
    return { on, fetches: viewer.fetches - fetchesBefore, bytes: viewer.bytes - bytesBefore };
  };
  const withoutViewer = async () => {
    const off = await measure();
    if (off.viewers !== 0 || off.feedActive) throw new Error("the feed was active with no viewer");
    return off;
  };
  for (let i = 0; i < pairs; i++) {
    // Alternate the order (off-on, on-off, ...) so a drift of the master's load over the run cancels out.
    let off: Awaited<ReturnType<typeof withoutViewer>>;
    let viewed: Awaited<ReturnType<typeof viewedWindow>>;
    if (i % 2 === 0) {
      off = await withoutViewer();
      viewed = await viewedWindow();
    } else {
      viewed = await viewedWindow();
      off = await withoutViewer();
    }
    const { on, fetches } = viewed;
    const without = (off.cpuMs / off.ms) * 100;
    const withViewer = (on.cpuMs / on.ms) * 100;
    const viewedRatio = on.viewedCpuMs / on.ms / (off.viewedCpuMs / off.ms);
    results.push({
      without: round(without, 2),
      with: round(withViewer, 2),
      addedPctOfCore: round(withViewer - without, 2),
      ratio: round(withViewer / without, 4),
      viewedRatio: round(viewedRatio, 4),
      dashboardSharePct: round((on.dashboardMs / on.cpuMs) * 100, 2),
      fetches,
      kbPerFetch: round(viewed.bytes / Math.max(1, fetches) / 1024, 1),
    });
    console.log(
      `pair ${i + 1}/${pairs}: ${masterCount > 1 ? `${masterCount} masters' CPU summed` : "master CPU"} ${round(without, 2)} % of a core without a viewer, ${round(withViewer, 2)} % with one ` +
        `(ratio ${round(withViewer / without, 4)}${masterCount > 1 ? `, the viewed master's own ${round(viewedRatio, 4)}` : ""}; ${fetches} table fetches in the window; ` +
        `the dashboard's own code took ${round(on.dashboardMs, 1)} ms, ${round((on.dashboardMs / on.cpuMs) * 100, 2)} % of the master's CPU)`,
    );
  }
  const allStats = await Promise.all(masters.map((m) => m.request({ cmd: "stats" })));
  const stats = {
    connected: allStats.reduce((sum, s) => sum + (s.connected as number), 0),
    evicted: allStats.reduce((sum, s) => sum + (s.evicted as number), 0),
    lost: allStats.reduce((sum, s) => sum + (s.lost as number), 0),
  };
  const viewedRatios = results.map((r) => r.viewedRatio).sort((a, b) => a - b);
  const ratios = results.map((r) => r.ratio).sort((a, b) => a - b);
  const median = percentile(ratios, 50);
  const added = results.map((r) => r.addedPctOfCore).sort((a, b) => a - b);
  const shares = results.map((r) => r.dashboardSharePct).sort((a, b) => a - b);
  const medianShare = percentile(shares, 50);
  const summary = {
    slaves,
    masters: masterCount,
    medianViewedRatio: percentile(viewedRatios, 50),
    connectedAtEnd: stats.connected,
    evicted: stats.evicted,
    lost: stats.lost,
    interval: Number(args.interval),
    timeout: Number(args.timeout),
    windowSeconds: windowMs / 1000,
    pairs: results,
    synthetic: args.synthetic,
    medianAddedPctOfCore: percentile(added, 50),
    medianRatio: median,
    growthPct: round((median - 1) * 100, 2),
    dashboardSharePct: medianShare,
    target: "≤ 5 % growth",
    met: median <= 1.05,
  };
  const out = resolve(args.out!);
  mkdirSync(out, { recursive: true });
  const file = masterCount > 1 ? `dashboard-${masterCount}-masters.json` : "dashboard.json";
  writeFileSync(join(out, file), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(
    `\nmedian ratio with/without one viewer at ${slaves} slaves on ${masterCount} master(s): ${median} (${summary.growthPct >= 0 ? "+" : ""}${summary.growthPct} %), ` +
      `target ≤ 1.05: ${summary.met ? "met" : "NOT met"}; ` +
      `the viewer added a median ${summary.medianAddedPctOfCore} % of a core; ` +
      `time in the dashboard's own code: median ${medianShare} % of the master's CPU with one viewer; evictions ${stats.evicted}, other losses ${stats.lost}; ${join(out, file)}`,
  );
} finally {
  await stopAll();
}
