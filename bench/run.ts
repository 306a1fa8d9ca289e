/**
 * The benchmark orchestrator: `npm run bench [-- options]`, see bench/README.md.
 *
 * For each N of the ladder and each system, it starts the server in its own
 * process (for NATS: nats-server plus a small master), load-generator
 * processes holding N slaves (1% of them in a separate generator that is
 * frozen with SIGSTOP at the end), and measures in phases so no measure
 * perturbs another: steady state (CPU, RSS), echo probes (RTT), broadcasts
 * (delivery), then the freeze (eviction latency). Writes bench/out/results.json,
 * one SVG chart per measure, and prints a markdown table.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePort, waitForTcp } from "../test/support/net.js";
import { Child, cpuMs, hrNow, percentile, round, rssBytes, type Summary, sleep, sum, summarize } from "./lib/common.js";
import { type PhaseStats, profileEnv } from "./lib/probe.js";
import { computeRatios, evaluateTargets, markdownReport, renderCharts } from "./lib/report.js";
import { floorSpreadSlices, isFloor, SYSTEMS, type SystemName } from "./lib/systems.js";
import type { BenchConfig, LoopGc, PhaseAttribution, RunResult } from "./lib/types.js";
import type { ServerEvents } from "./servers/types.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");

// `--cluster K`: the cluster benchmark (bench/cluster/main.ts, its own options), not the ladder.
if (process.argv.includes("--cluster")) {
  await import("./cluster/main.js");
  process.exit(process.exitCode ?? 0);
}

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    systems: { type: "string" },
    ladder: { type: "string" },
    interval: { type: "string" },
    timeout: { type: "string" },
    steady: { type: "string" },
    warmup: { type: "string" },
    repeat: { type: "string" },
    soak: { type: "string" },
    "per-gen": { type: "string" },
    mux: { type: "string" },
    hosts: { type: "string" },
    broadcasts: { type: "string" },
    prof: { type: "boolean", default: false },
    "prof-phase": { type: "string" },
    spinner: { type: "string" },
    out: { type: "string" },
    merge: { type: "string" },
    report: { type: "string" },
    help: { type: "boolean", default: false },
  },
  allowPositionals: false,
});

if (args.help) {
  console.log(`npm run bench -- [--quick] [--systems netsync,floor,socketio,nats] [--ladder 1000,5000,10000,15000]
  [--interval 1000] [--timeout 3000] [--warmup 5] [--steady 10] [--soak 60] [--repeat 1] [--per-gen 5000] [--mux STREAMS_PER_CONN]
  [--hosts K] [--broadcasts 5] [--prof] [--prof-phase steady] [--spinner FRACTION_OF_ONE_CORE] [--out bench/out] [--merge PREVIOUS_RESULTS_JSON] [--report RESULTS_JSON (no runs: redo table and charts)]`);
  process.exit(0);
}

const quick = args.quick;
const mux = Number(args.mux ?? 1);
const config: BenchConfig = {
  quick,
  systems: (args.systems?.split(",") ?? (mux > 1 ? ["netsync", "floor"] : SYSTEMS.filter((s) => s !== "floor-spread"))) as SystemName[],
  ladder: (args.ladder ?? (quick ? "200" : "1000,5000,10000,15000")).split(",").map(Number),
  interval: Number(args.interval ?? (quick ? 500 : 1000)),
  timeout: Number(args.timeout ?? (quick ? 1500 : 3000)),
  /**
   * Heartbeats before the steady phase, at least two rounds: V8 optimizes the hot paths on a
   * background thread that counts as process CPU, which at 1k slaves is a visible share of a phase.
   */
  warmupSeconds: Number(args.warmup ?? (quick ? 0 : 5)),
  steadySeconds: Number(args.steady ?? (quick ? 2 : 10)),
  /** NetSync's steady phase at the largest N lasts this long (the 60 s hold target). */
  soakSeconds: Number(args.soak ?? (quick ? 0 : 60)),
  /** Runs of every system at every N, interleaved (N, then each system in turn, R times); measures are their medians. */
  repeat: Math.max(1, Number(args.repeat ?? 1)),
  perGen: Number(args["per-gen"] ?? (mux > 1 ? 25_000 : 5_000)),
  streamsPerConn: mux,
  broadcasts: Number(args.broadcasts ?? (quick ? 3 : 5)),
  hosts: args.hosts ? Number(args.hosts) : undefined,
  prof: args.prof,
  /** A CPU profile of the servers and bulk generators in this phase only (through the inspector, 500 µs sampling), one file per process and run. */
  profPhase: args["prof-phase"],
  /**
   * Background load: a spinner process asking for this fraction of one core (0 = none), started
   * before and stopped after every run, so a fast machine reproduces a slower, shared one.
   */
  spinner: Math.max(0, Math.min(1, Number(args.spinner ?? 0))),
  /** A previous results.json whose results (other systems or N) are kept next to this run's. */
  merge: args.report ? resolve(args.report) : args.merge ? resolve(args.merge) : undefined,
  out: resolve(ROOT, args.out ?? "bench/out"),
};
for (const system of config.systems) {
  if (!(SYSTEMS as readonly string[]).includes(system)) throw new Error(`unknown system ${system}`);
  if (mux > 1 && (system === "socketio" || system === "nats")) throw new Error(`--mux applies to the gRPC systems only, not ${system}`);
}

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
function combineRepeats(runs: RunResult[]): RunResult {
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

/** Starts nats-server (Debian package) with a config of its own. */
async function startNatsServer(bindHost: string): Promise<{ proc: ChildProcess; url: string; port: number }> {
  const port = await freePort();
  const file = join(config.out, `nats-server-${port}.conf`);
  writeFileSync(
    file,
    [
      `listen: "${bindHost}:${port}"`,
      "max_connections: 200000",
      // NATS's own transport keepalive stays at its default; liveness is done by the bench master.
      'ping_interval: "2m"',
      "ping_max: 2",
      "",
    ].join("\n"),
  );
  const proc = spawn("nats-server", ["-c", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  proc.once("error", (err) => (stderr += String(err)));
  try {
    await waitForTcp(port, 10_000);
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`nats-server did not start (is it installed? bash bench/install-nats.sh): ${String(err)}\n${stderr}`);
  }
  proc.once("exit", () => rmSync(file, { force: true }));
  return { proc, url: `nats://127.0.0.1:${port}`, port };
}

function hostsFor(n: number): string[] {
  // One destination address gives ~28,000 ephemeral source ports (32768-60999);
  // past 25,000 connections spread over 127.0.0.2, 127.0.0.3, ...
  const connections = Math.ceil(n / config.streamsPerConn);
  const count = config.hosts ?? Math.max(1, Math.ceil(connections / 25_000));
  if (count === 1) return ["127.0.0.1"];
  return Array.from({ length: count }, (_, i) => `127.0.0.${i + 2}`);
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function runOne(system: SystemName, n: number, soak: boolean): Promise<RunResult> {
  const result: RunResult = { system, n };
  const hosts = hostsFor(n);
  const bindHost = hosts.length > 1 ? "0.0.0.0" : "127.0.0.1";
  const children: Child[] = [];
  let nats: { proc: ChildProcess; url: string; port: number } | undefined;
  // The background load runs for the whole run, started before the server and stopped after everything else.
  let spinner: ChildProcess | undefined;
  const spinnerCpu = () => (spinner?.pid ? cpuMs(spinner.pid) : Number.NaN);
  let spinnerStart = { at: 0, cpu: 0 };
  if (config.spinner > 0) {
    spinner = spawn(process.execPath, ["--import", "tsx", join(HERE, "lib", "spinner.ts"), JSON.stringify({ fraction: config.spinner })], {
      stdio: ["pipe", "ignore", "inherit"],
    });
    await sleep(300);
    spinnerStart = { at: performance.now(), cpu: spinnerCpu() };
  }
  try {
    if (system === "nats") nats = await startNatsServer(bindHost);
    const nodeArgs =
      config.prof && (system === "netsync" || isFloor(system))
        ? ["--cpu-prof", "--cpu-prof-interval", "200", "--cpu-prof-dir", join(config.out, "prof", system)]
        : [];
    const server = new Child(
      system,
      join(HERE, "servers", `${isFloor(system) ? "floor" : system}.ts`),
      {
        host: bindHost,
        interval: config.interval,
        timeout: config.timeout,
        natsUrl: nats?.url,
        slices: system === "floor-spread" ? floorSpreadSlices(n, config.interval) : 1,
      },
      nodeArgs,
      config.profPhase
        ? profileEnv(config.profPhase, join(config.out, "prof", `${system}-${n}-${config.profPhase}-${Date.now()}.cpuprofile`))
        : {},
    );
    children.push(server);
    const ready = await server.waitFor("ready", 30_000);
    const port = nats?.port ?? (ready.port as number);
    // The server reports its own usage (µs resolution); a nats-server is read from /proc.
    const external = nats ? [nats.proc.pid!] : [];
    const serverUsage = async () => {
      const s = await server.request({ cmd: "stats" });
      return { cpuMs: (s.cpuMs as number) + sum(external.map(cpuMs)), rss: (s.rss as number) + sum(external.map(rssBytes)) };
    };
    await sleep(quick ? 200 : 500);
    const rssBase = (await serverUsage()).rss;

    // Load generators: the bulk, and one holding the 1% that will freeze.
    const frozenCount = Math.max(1, Math.round(n * 0.01));
    const bulk = n - frozenCount;
    const script = join(HERE, "loadgen", system === "netsync" || isFloor(system) ? "grpc.ts" : `${system}.ts`);
    const generators: Child[] = [];
    const genConfig = (count: number, prefix: string) => ({
      hosts,
      port,
      natsUrl: nats?.url,
      count,
      prefix,
      streamsPerConn: config.streamsPerConn,
      openBatch: system === "nats" ? 100 : 200,
    });
    for (let k = 0, left = bulk; left > 0; k++, left -= config.perGen) {
      // With --prof-phase, the bulk generators are profiled too: a latency can be the clients' as much as the server's.
      const genProfile = config.profPhase
        ? profileEnv(config.profPhase, join(config.out, "prof", `${system}-${n}-gen${k}-${config.profPhase}-${Date.now()}.cpuprofile`))
        : {};
      generators.push(new Child(`${system} generator ${k}`, script, genConfig(Math.min(config.perGen, left), `g${k}-`), [], genProfile));
    }
    const frozen = new Child(`${system} generator (to freeze)`, script, genConfig(frozenCount, "f-"));
    generators.push(frozen);
    children.push(...generators);
    const genPids = () => generators.filter((g) => !g.exited).map((g) => g.pid);
    // Attribution: at every phase boundary, each process reports its loop delay and GC since the previous one.
    const phases: Record<string, PhaseAttribution> = {};
    const phaseStarts: { name: string; at: number }[] = [];
    let phaseSpinner = { at: performance.now(), cpu: spinnerCpu() };
    const phaseBoundary = async (ended: string, next: string, skip: Child[] = []) => {
      const ask = (c: Child) =>
        c
          .request({ cmd: "phase", name: next }, 10_000)
          .then((r) => r.stats as PhaseStats)
          .catch(() => undefined);
      const [s, ...g] = await Promise.all([server, ...generators.filter((x) => !skip.includes(x) && !x.exited)].map(ask));
      const now = performance.now();
      const spun = spinnerCpu();
      phases[ended] = {
        ms: s?.ms ?? 0,
        server: loopGc(s ? [s] : []),
        gens: loopGc(g.filter((x): x is PhaseStats => x !== undefined)),
        ...(spinner ? { spinnerPct: round(((spun - phaseSpinner.cpu) / (now - phaseSpinner.at)) * 100, 1) } : {}),
      };
      phaseSpinner = { at: now, cpu: spun };
      phaseStarts.push({ name: next, at: hrNow() });
    };
    result.phases = phases;

    const rampStart = performance.now();
    const rampTimeout = 60_000 + n * 10;
    // Past a few seconds, log how far the ramp got, on the server and in each generator, so a stall can be placed.
    const rampLog = setInterval(() => void logRamp(), 5_000);
    const logRamp = async () => {
      const [s, ...statuses] = await Promise.all(
        [server, ...generators].map((c) =>
          c.request({ cmd: c === server ? "stats" : "status" }).catch((err: Error): Record<string, unknown> => ({ error: err.message })),
        ),
      );
      const brief = (r: Record<string, unknown>) => JSON.stringify(r).replace(/"(ev|re)":[^,]*,/g, "");
      log(`${system} N=${n}: ramping, ${String(s!.connected)} registered so far ${brief(s!)}`);
      log(`  generators: ${statuses.map((g, k) => `${k}:${brief(g)}`).join(" ")}`);
    };
    let stats: Record<string, unknown>;
    try {
      await Promise.all(generators.map((g) => g.waitFor("ready", rampTimeout)));
      stats = await server.request({ cmd: "stats" });
      while ((stats.connected as number) < n) {
        if (performance.now() - rampStart > rampTimeout) throw new Error(`only ${String(stats.connected)} of ${n} slaves registered`);
        await sleep(200);
        stats = await server.request({ cmd: "stats" });
      }
    } finally {
      clearInterval(rampLog);
    }
    result.connected = stats.connected as number;
    result.rampMs = Math.round(performance.now() - rampStart);
    log(`${system} N=${n}: ${result.connected} connected in ${result.rampMs} ms`);
    await phaseBoundary("ramp", "warmup");
    await sleep(Math.max(2 * config.interval, config.warmupSeconds * 1000));
    await phaseBoundary("warmup", "steady");

    // Steady state: CPU and memory with nothing but heartbeats.
    const steadySeconds = soak ? Math.max(config.soakSeconds, config.steadySeconds) : config.steadySeconds;
    // Pings the slaves received, to check that the server really pings once per interval (CPU is divided by that many rounds).
    const pingsSoFar = async () =>
      sum((await Promise.all(generators.map((g) => g.request({ cmd: "status" })))).map((st) => (st.pings as number) ?? 0));
    const pings0 = await pingsSoFar();
    const gen0 = sum(genPids().map(cpuMs));
    const spin0 = spinnerCpu();
    const cpu0 = (await serverUsage()).cpuMs;
    const t0 = performance.now();
    await sleep(config.steadySeconds * 1000);
    // CPU and RSS are taken over the same length of steady phase for every system; a soak goes on after it.
    const { cpuMs: cpu1, rss } = await serverUsage();
    const elapsed = performance.now() - t0;
    const gen1 = sum(genPids().map(cpuMs));
    const spin1 = spinnerCpu();
    const pings1 = await pingsSoFar();
    if (steadySeconds > config.steadySeconds) {
      await sleep((steadySeconds - config.steadySeconds) * 1000);
      const after = await serverUsage();
      result.soakSeconds = round((performance.now() - t0) / 1000, 1);
      result.rssKbPerSlaveAfterSoak = round((after.rss - rssBase) / 1024 / n, 2);
    }
    const rounds = elapsed / config.interval;
    result.steadySeconds = round(elapsed / 1000, 1);
    result.rounds = round(rounds, 1);
    result.serverCpuMs = cpu1 - cpu0;
    result.cpuUsPerSlaveRound = round(((cpu1 - cpu0) * 1000) / rounds / n, 2);
    if (pings1 > pings0) {
      result.pingsPerSlaveRound = round((pings1 - pings0) / n / rounds, 3);
      result.cpuUsPerPing = round(((cpu1 - cpu0) * 1000) / (pings1 - pings0), 2);
    }
    if (spinner) result.spinner = { fraction: config.spinner, runPct: 0, steadyPct: round(((spin1 - spin0) / elapsed) * 100, 1) };
    result.serverCpuPct = round(((cpu1 - cpu0) / elapsed) * 100, 1);
    result.loadgenCpuPct = round(((gen1 - gen0) / elapsed) * 100, 1);
    result.rssBaseMB = round(rssBase / 2 ** 20, 1);
    result.rssMB = round(rss / 2 ** 20, 1);
    result.rssKbPerSlave = round((rss - rssBase) / 1024 / n, 2);
    log(
      `${system} N=${n}: steady ${result.steadySeconds} s, ${result.cpuUsPerSlaveRound} µs/slave/round, ${result.rssKbPerSlave} KB/slave, ${result.pingsPerSlaveRound ?? "?"} pings/slave/round`,
    );

    // RTT: every slave sends an echo probe right after answering each ping, for 3 rounds.
    await phaseBoundary("steady", "rtt");
    for (const g of generators) g.send({ cmd: "probe", on: true });
    await sleep(3 * config.interval + 50);
    for (const g of generators) g.send({ cmd: "probe", on: false });
    await sleep(Math.max(500, config.interval));
    const probes = await Promise.all(generators.map((g) => g.request({ cmd: "collect" })));
    result.rtt = summarize(probes.flatMap((p) => p.rtt as number[]));

    // Broadcast: a few, spaced so they do not all land on a ping round.
    await phaseBoundary("rtt", "bcast");
    const sent: number[] = [];
    const callMs: number[] = [];
    const bcastStart = { at: performance.now(), server: (await serverUsage()).cpuMs, gens: sum(genPids().map(cpuMs)) };
    for (let b = 0; b < config.broadcasts; b++) {
      const reply = await server.request({ cmd: "broadcast" });
      sent.push(reply.written as number);
      callMs.push(round(reply.callMs as number, 2));
      await sleep(Math.max(200, Math.round(config.interval * 0.37)));
    }
    await sleep(Math.max(quick ? 500 : 1000, config.interval));
    // CPU a delivery costs each side: the phase's CPU beyond what heartbeats alone used at the steady-phase rate.
    const bcastMs = performance.now() - bcastStart.at;
    const extraUs = (used: number, steadyRate: number) =>
      round((Math.max(0, used - steadyRate * bcastMs) * 1000) / (n * config.broadcasts), 2);
    const cpuPerDelivery = {
      serverUs: extraUs((await serverUsage()).cpuMs - bcastStart.server, (cpu1 - cpu0) / elapsed),
      loadgenUs: extraUs(sum(genPids().map(cpuMs)) - bcastStart.gens, (gen1 - gen0) / elapsed),
    };
    const deliveries = await Promise.all(generators.map((g) => g.request({ cmd: "collect" })));
    result.bcast = {
      ...summarize(deliveries.flatMap((d) => d.bcast as number[])),
      expected: n * config.broadcasts,
      callMs,
      cpuPerDelivery,
    };

    // Freeze 1%: SIGSTOP their generator and wait for the server to evict them (the floor never does).
    await phaseBoundary("bcast", "freeze");
    const stopAt = hrNow();
    frozen.kill("SIGSTOP");
    const evictDeadline = isFloor(system) ? 0 : performance.now() + config.timeout + Math.max(quick ? 1000 : 3000, config.interval * 2);
    for (;;) {
      await sleep(100);
      const sofar = (await server.request({ cmd: "events" })) as unknown as ServerEvents;
      if (sofar.evicted.filter((e) => e.id.startsWith("f-")).length >= frozenCount || performance.now() > evictDeadline) break;
    }
    await sleep(300);
    await phaseBoundary("freeze", "end", [frozen]);
    const events = (await server.request({ cmd: "events" })) as unknown as ServerEvents;
    const frozenEvictions = events.evicted.filter((e) => e.id.startsWith("f-"));
    result.evict = {
      frozen: frozenCount,
      evicted: frozenEvictions.length,
      missed: frozenCount - frozenEvictions.length,
      silence: summarize(frozenEvictions.map((e) => e.silentMs)),
      sinceStop: summarize(frozenEvictions.map((e) => e.at - stopAt)),
    };
    if (isFloor(system)) result.evict.missed = 0; // the floor has no eviction at all
    if (Array.isArray((events as { pauses?: number[] }).pauses)) {
      const pauses = (events as { pauses?: number[] }).pauses!;
      result.pauses = pauses.length;
      result.pauseMaxMs = pauses.length ? Math.max(...pauses) : 0;
      // Which phase each stall fell in (the log has the time each was noticed).
      const log = (events as { pauseLog?: { at: number; ms: number }[] }).pauseLog ?? [];
      result.pauseLog = log.map((p) => ({ ...p, phase: [...phaseStarts].reverse().find((s) => s.at <= p.at)?.name ?? "ramp" }));
    }
    result.falseEvictions = events.evicted.filter((e) => !e.id.startsWith("f-")).length;
    const bulkCollect = await Promise.all(generators.filter((g) => g !== frozen).map((g) => g.request({ cmd: "collect" })));
    result.unexpectedEnds = sum(bulkCollect.map((c) => c.ended as number)) + events.lost.filter((e) => !e.id.startsWith("f-")).length;
    const reasons: Record<string, number> = {};
    for (const c of bulkCollect)
      for (const [k, v] of Object.entries(c.endReasons as Record<string, number>)) reasons[k] = (reasons[k] ?? 0) + v;
    for (const e of events.lost) if (!e.id.startsWith("f-")) reasons[`server: ${e.reason}`] = (reasons[`server: ${e.reason}`] ?? 0) + 1;
    if (Object.keys(reasons).length) result.endReasons = reasons;
    log(
      `${system} N=${n}: rtt p99 ${round(result.rtt.p99)} ms, bcast p99 ${round(result.bcast.p99)} ms (call ${result.bcast.callMs?.join("/")} ms; CPU per delivery ${result.bcast.cpuPerDelivery?.serverUs} µs server, ${result.bcast.cpuPerDelivery?.loadgenUs} µs generators), evict p99 ${round(result.evict.silence.p99)} ms, false evictions ${result.falseEvictions}`,
    );
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    log(`${system} N=${n} FAILED: ${result.error}`);
  } finally {
    if (spinner && result.spinner)
      result.spinner.runPct = round(((spinnerCpu() - spinnerStart.cpu) / (performance.now() - spinnerStart.at)) * 100, 1);
    await Promise.all(children.slice(1).map((c) => c.stop()));
    await children[0]?.stop(10_000);
    if (nats) {
      nats.proc.kill("SIGTERM");
      await new Promise((done) => (nats!.proc.exitCode !== null ? done(undefined) : nats!.proc.once("exit", done)));
    }
    if (spinner) {
      const exited = new Promise((done) => spinner!.once("exit", done));
      spinner.kill("SIGTERM");
      await exited;
    }
    await sleep(quick ? 300 : 1000);
  }
  return result;
}

function machine() {
  const version = (pkg: string) =>
    (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  let natsServer = "not installed";
  try {
    natsServer = String(spawnSyncText("nats-server", ["--version"]));
  } catch {
    /* reported as not installed */
  }
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    grpcJs: version("@grpc/grpc-js"),
    socketIo: version("socket.io"),
    natsJs: version("nats"),
    natsServer,
  };
}

import { execFileSync } from "node:child_process";

function spawnSyncText(cmd: string, argv: string[]): string {
  return execFileSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
}

async function main(): Promise<void> {
  mkdirSync(config.out, { recursive: true });
  const started = performance.now();
  log(
    `systems ${config.systems.join(", ")}; N ${config.ladder.join(", ")}; interval ${config.interval} ms, timeout ${config.timeout} ms${mux > 1 ? `; ${mux} streams per connection` : ""}`,
  );
  const results: RunResult[] = [];
  const largest = Math.max(0, ...config.ladder);
  if (args.report) config.systems = [];
  for (const n of args.report ? [] : config.ladder) {
    const runs: RunResult[] = [];
    for (let r = 0; r < config.repeat; r++) {
      for (const system of config.systems) {
        // The soak (the 60 s hold) is run once, in the first repeat.
        runs.push(await runOne(system, n, r === 0 && system === "netsync" && n === largest && config.soakSeconds > 0));
      }
    }
    for (const system of config.systems) {
      const mine = runs.filter((r) => r.system === system);
      results.push(mine.length === 1 ? mine[0]! : combineRepeats(mine));
    }
  }
  if (config.merge) {
    const previous = JSON.parse(readFileSync(config.merge, "utf8")) as { systems: { results: RunResult[] }[] };
    for (const old of previous.systems.flatMap((s) => s.results)) {
      if (!results.some((r) => r.system === old.system && r.n === old.n))
        results.push(old.mergedFrom || args.report ? old : { ...old, mergedFrom: config.merge });
    }
    for (const system of previous.systems.flatMap((s) => s.results.map((r) => r.system))) {
      if (!config.systems.includes(system)) config.systems.push(system);
    }
    config.systems.sort((a, b) => SYSTEMS.indexOf(a) - SYSTEMS.indexOf(b));
    config.ladder = [...new Set([...config.ladder, ...results.map((r) => r.n)])].sort((a, b) => a - b);
  }
  results.sort((a, b) => a.n - b.n || SYSTEMS.indexOf(a.system) - SYSTEMS.indexOf(b.system));
  const ratios = computeRatios(results);
  const targets = evaluateTargets(results, config);
  const output = {
    machine: machine(),
    config: { ...config, out: undefined },
    durationSeconds: round((performance.now() - started) / 1000, 1),
    systems: config.systems.map((name) => ({ name, results: results.filter((r) => r.system === name).sort((a, b) => a.n - b.n) })),
    ratios,
    targets,
  };
  const jsonFile = join(config.out, mux > 1 ? "results-mux.json" : "results.json");
  writeFileSync(jsonFile, `${JSON.stringify(output, null, 2)}\n`);
  const charts = await renderCharts(results, config.out, mux > 1 ? "mux-" : "");
  process.stdout.write(`${markdownReport(output, results)}\n`);
  log(`wrote ${jsonFile} and ${charts.length} charts in ${round((performance.now() - started) / 1000, 1)} s`);
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    log(`${failed.length} run(s) failed`);
    process.exitCode = 1;
  }
}

await main();
