/**
 * What one page of the fleet-wide listing costs (issues 20, 21):
 * `node --import tsx bench/listing.ts [options]`.
 *
 * For each fleet size, K masters (bench/servers/netsync-listing.ts, own
 * processes) on a nats-server of their own with its monitoring port, each
 * filled with synthetic slaves (ids interleaved across the masters, labels
 * {shard}); then, through an AdminClient on the first master:
 * - the first page of `--page-size` (1,000), `--samples` times;
 * - `--samples` consecutive pages from the start (each from the previous
 *   token);
 * - the first page with the selector "shard=3" (one slave in ten);
 * - the bytes each master's NATS connection sent per first page (nats-server
 *   /connz in_bytes, before and after the samples, divided by them);
 * - with --full, the whole listing through every page: time, slaves listed,
 *   and nats-server's slow_consumers count after it.
 *
 * `--versions before=/tmp/base,after=.` runs the same on two source trees
 * (each needs this bench's server file), interleaved rep by rep, so the
 * before/after ratios come from one run on one machine state. `--spinner
 * 0,0.5` repeats everything idle and beside the calibrated background load
 * (bench/lib/spinner.ts). Output: a table on stdout and bench/out/listing.json.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { AdminClient } from "../src/admin.js";
import { freePort, waitForTcp } from "../test/support/net.js";
import { BackgroundLoad } from "./lib/background-load.js";
import { Child, percentile, round, sleep } from "./lib/common.js";

const { values: args } = parseArgs({
  options: {
    masters: { type: "string", default: "3" },
    "per-master": { type: "string", default: "10000,333334" },
    versions: { type: "string", default: "current=." },
    reps: { type: "string", default: "2" },
    samples: { type: "string", default: "20" },
    "page-size": { type: "string", default: "1000" },
    spinner: { type: "string", default: "0" },
    full: { type: "boolean", default: false },
    out: { type: "string", default: "bench/out" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(
    "node --import tsx bench/listing.ts [--masters 3] [--per-master 10000,333334] [--versions before=DIR,after=.] [--reps 2] [--samples 20] [--page-size 1000] [--spinner 0,0.5] [--full] [--out bench/out]",
  );
  process.exit(0);
}
const K = Number(args.masters);
const sizes = args["per-master"]!.split(",").map(Number);
const versions = args.versions!.split(",").map((v) => {
  const [name, dir] = v.split("=") as [string, string];
  return { name, dir: resolve(dir) };
});
const reps = Number(args.reps);
const samples = Number(args.samples);
const pageSize = Number(args["page-size"]);
const spinners = args.spinner!.split(",").map(Number);
const host = "127.0.0.1";

interface Nats {
  stop(): Promise<void>;
  url: string;
  monitor: string;
}

async function startNats(): Promise<Nats> {
  const port = await freePort();
  const mport = await freePort();
  const proc = spawn("nats-server", ["-a", host, "-p", String(port), "-m", String(mport)], { stdio: "ignore" });
  await waitForTcp(port, 10_000);
  await waitForTcp(mport, 10_000);
  return {
    url: `nats://${host}:${port}`,
    monitor: `http://${host}:${mport}`,
    stop: async () => {
      proc.kill("SIGTERM");
      await new Promise((done) => (proc.exitCode !== null ? done(undefined) : proc.once("exit", done)));
    },
  };
}

/** Bytes each master's connection has sent to the server so far, by master name. */
async function sentBytes(nats: Nats): Promise<Map<string, number>> {
  const connz = (await (await fetch(`${nats.monitor}/connz?limit=1024`)).json()) as { connections: { name?: string; in_bytes: number }[] };
  return new Map(connz.connections.filter((c) => c.name?.startsWith("netsync master ")).map((c) => [c.name!.slice(15), c.in_bytes]));
}

async function slowConsumers(nats: Nats): Promise<number> {
  const varz = (await (await fetch(`${nats.monitor}/varz`)).json()) as { slow_consumers: number };
  return varz.slow_consumers;
}

/** `partial`: calls answered with some master named unanswered (its slaves missing from the page). */
type Timing = { p50: number; p90: number; max: number; errors: number; partial: number; error?: string };

async function timed(n: number, fn: () => Promise<{ unansweredMasters: string[] }>): Promise<Timing> {
  const times: number[] = [];
  let errors = 0;
  let partial = 0;
  let error: string | undefined;
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    try {
      const page = await fn();
      times.push(performance.now() - started);
      if (page.unansweredMasters.length > 0) partial++;
    } catch (err) {
      errors++;
      error = (err as Error).message.slice(0, 200);
      if (errors >= 3) break;
    }
  }
  times.sort((a, b) => a - b);
  const t: Timing = {
    p50: round(percentile(times, 50), 1),
    p90: round(percentile(times, 90), 1),
    max: round(times.at(-1) ?? Number.NaN, 1),
    errors,
    partial,
  };
  if (error) t.error = error;
  return t;
}

interface RunResult {
  version: string;
  perMaster: number;
  total: number;
  spinner: number;
  spinnerPct?: number;
  firstPage: Timing;
  nextPages: Timing;
  selectorPage: Timing;
  /** Bytes each master's NATS connection sent per first page (the asking master's own requests included). */
  bytesPerPage: Record<string, number>;
  fillMs: number;
  full?: { ms: number; pages: number; listed: number; unanswered: number; error?: string };
  /** With --full: the library's fleet() (every slave in one call) on the first master. */
  fleet?: { ms: number; slaves: number; unanswered: string[]; error?: string };
  slowConsumers: number;
}

/** fleet() on `master`: every slave in one call. */
async function fleetOf(master: Child): Promise<RunResult["fleet"]> {
  try {
    const view = await master.request({ cmd: "fleet" }, 120_000);
    return { ms: round(view.ms as number, 0), slaves: view.slaves as number, unanswered: view.unanswered as string[] };
  } catch (err) {
    return { ms: Number.NaN, slaves: 0, unanswered: [], error: (err as Error).message.slice(0, 200) };
  }
}

async function runOne(version: { name: string; dir: string }, perMaster: number, spinner: number): Promise<RunResult> {
  const load = await BackgroundLoad.start(spinner);
  const nats = await startNats();
  const masters: Child[] = [];
  try {
    for (let k = 0; k < K; k++) {
      masters.push(
        new Child(`${version.name} m${k + 1}`, join(version.dir, "bench", "servers", "netsync-listing.ts"), {
          name: `m${k + 1}`,
          host,
          natsUrl: nats.url,
          interval: 5_000,
          timeout: 10_000,
        }),
      );
    }
    const readies = await Promise.all(masters.map((m) => m.waitFor("ready", 60_000)));
    const fills = await Promise.all(masters.map((m, k) => m.request({ cmd: "fill", count: perMaster, stride: K, offset: k }, 300_000)));
    const deadline = performance.now() + 30_000;
    for (;;) {
      const stats = await Promise.all(masters.map((m) => m.request({ cmd: "stats" })));
      if (stats.every((s) => s.masters === K)) break;
      if (performance.now() > deadline) throw new Error("the masters did not all see each other");
      await sleep(200);
    }
    await sleep(1_500); // beats carry the new counts
    const admin = new AdminClient(`${host}:${readies[0]!.port as number}`);
    try {
      // Warm-up: the first calls compile the paths.
      for (let i = 0; i < 3; i++) await admin.listSlaves({ pageSize }).catch(() => undefined);
      const before = await sentBytes(nats);
      const firstPage = await timed(samples, () => admin.listSlaves({ pageSize }));
      const after = await sentBytes(nats);
      const bytesPerPage: Record<string, number> = {};
      for (const [name, bytes] of after)
        bytesPerPage[name] = Math.round((bytes - (before.get(name) ?? 0)) / Math.max(1, samples - firstPage.errors));
      // A version that cannot list a fleet this size (each page gathers all of it) is not asked more: it only piles up work.
      const listable = firstPage.errors === 0 && firstPage.partial === 0;
      const skipped: Timing = {
        p50: Number.NaN,
        p90: Number.NaN,
        max: Number.NaN,
        errors: 0,
        partial: 0,
        error: "skipped: the first page failed or was partial",
      };
      let token = "";
      const nextPages = listable
        ? await timed(samples, async () => {
            const page = await admin.listSlaves({ pageSize, pageToken: token });
            token = page.nextPageToken;
            return page;
          })
        : skipped;
      const selectorPage = listable ? await timed(samples, () => admin.listSlaves({ pageSize, selector: "shard=3" })) : skipped;
      const result: RunResult = {
        version: version.name,
        perMaster,
        total: perMaster * K,
        spinner,
        firstPage,
        nextPages,
        selectorPage,
        bytesPerPage,
        fillMs: round(Math.max(...fills.map((f) => f.ms as number)), 0),
        slowConsumers: 0,
      };
      if (args.full && listable) {
        const started = performance.now();
        let pages = 0;
        let listed = 0;
        let unanswered = 0;
        let next = "";
        try {
          do {
            const page = await admin.listSlaves({ pageSize, pageToken: next });
            pages++;
            listed += page.slaves.length;
            unanswered += page.unansweredMasters.length;
            next = page.nextPageToken;
          } while (next !== "");
          result.full = { ms: round(performance.now() - started, 0), pages, listed, unanswered };
        } catch (err) {
          result.full = {
            ms: round(performance.now() - started, 0),
            pages,
            listed,
            unanswered,
            error: (err as Error).message.slice(0, 200),
          };
        }
      }
      if (args.full) result.fleet = await fleetOf(masters[0]!);
      result.slowConsumers = await slowConsumers(nats);
      if (load) result.spinnerPct = load.runPct();
      return result;
    } finally {
      admin.close();
    }
  } finally {
    await Promise.all(masters.map((m) => m.stop()));
    await nats.stop();
    await load?.stop();
  }
}

const results: RunResult[] = [];
const started = new Date();
for (const spinner of spinners) {
  for (const perMaster of sizes) {
    for (let rep = 0; rep < reps; rep++) {
      // Alternate the order of the versions rep by rep, so a drift of the machine's load cancels out.
      const order = rep % 2 === 0 ? versions : [...versions].reverse();
      for (const version of order) {
        const r = await runOne(version, perMaster, spinner);
        results.push(r);
        const bytes = Object.entries(r.bytesPerPage)
          .map(([m, b]) => `${m} ${b}`)
          .join(", ");
        console.log(
          `${r.version} ${r.total} slaves (${K} × ${perMaster}), spinner ${spinner}${r.spinnerPct !== undefined ? ` (got ${r.spinnerPct} %)` : ""}: ` +
            `first page p50 ${r.firstPage.p50} ms (p90 ${r.firstPage.p90}, errors ${r.firstPage.errors}${r.firstPage.error ? `: ${r.firstPage.error}` : ""}, ` +
            `${r.firstPage.partial} of ${samples} naming masters unanswered), ` +
            `next pages p50 ${r.nextPages.p50} ms, selector page p50 ${r.selectorPage.p50} ms; bytes sent per page: ${bytes}` +
            `${r.full ? `; full listing ${r.full.listed} in ${r.full.pages} pages, ${r.full.ms} ms, ${r.full.unanswered} unanswered${r.full.error ? ` (${r.full.error})` : ""}` : ""}` +
            `${r.fleet ? `; fleet() ${r.fleet.slaves} in ${r.fleet.ms} ms, unanswered [${r.fleet.unanswered.join(",")}]${r.fleet.error ? ` (${r.fleet.error})` : ""}` : ""}; slow consumers ${r.slowConsumers}`,
        );
      }
    }
  }
}

/** Median over reps of one measure, per (version, size, spinner). */
const groups = new Map<string, RunResult[]>();
for (const r of results) {
  const key = `${r.version}|${r.perMaster}|${r.spinner}`;
  groups.set(key, [...(groups.get(key) ?? []), r]);
}
const median = (values: number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
const summary = [...groups].map(([key, rs]) => {
  const [version, perMaster, spinner] = key.split("|") as [string, string, string];
  return {
    version,
    total: Number(perMaster) * K,
    spinner: Number(spinner),
    firstPageP50: median(rs.map((r) => r.firstPage.p50)),
    nextPagesP50: median(rs.map((r) => r.nextPages.p50)),
    selectorPageP50: median(rs.map((r) => r.selectorPage.p50)),
    bytesPerPageMax: median(rs.map((r) => Math.max(...Object.values(r.bytesPerPage)))),
    errors: rs.reduce((s, r) => s + r.firstPage.errors + r.nextPages.errors + r.selectorPage.errors, 0),
    partialFirstPages: rs.reduce((s, r) => s + r.firstPage.partial, 0),
  };
});
console.log(
  "\n| version | slaves | spinner | first page p50 ms | next pages p50 ms | selector page p50 ms | most bytes one master sent per page | errors |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const s of summary) {
  console.log(
    `| ${s.version} | ${s.total.toLocaleString("en")} | ${s.spinner} | ${s.firstPageP50} | ${s.nextPagesP50} | ${s.selectorPageP50} | ${s.bytesPerPageMax.toLocaleString("en")} | ${s.errors} | ${s.partialFirstPages} |`,
  );
}
const out = resolve(args.out!);
mkdirSync(out, { recursive: true });
writeFileSync(
  join(out, "listing.json"),
  `${JSON.stringify({ started: started.toISOString(), masters: K, pageSize, samples, reps, versions, runs: results, summary }, null, 2)}\n`,
);
console.log(`\n${join(out, "listing.json")}`);
