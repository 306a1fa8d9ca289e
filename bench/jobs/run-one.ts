/**
 * One run of bench:jobs: one system at one N, alone on the machine (with the
 * spinner if asked). The servers (one, or K in cluster mode with their
 * broker: nats-server for NetSync, redis-server for Socket.IO's adapter) and
 * the load generators each run in their own process; the slaves (sockets)
 * answer a job's command (an acknowledged event) at once.
 *
 * 1. Start the broker, the servers, their RSS with nothing connected.
 * 2. Start the generators (≤ perGen each; in cluster mode N / K per server),
 *    wait until the servers hold all N.
 * 3. Heartbeats for `warmupSeconds`, then `warmupJobs` jobs, discarded.
 * 4. Baseline: `baselineSeconds` of heartbeats alone; every server's (and the
 *    broker's) CPU rate over it is what the jobs phase would have used anyway.
 * 5. Jobs: the first server runs `repeats` jobs to every slave, one after
 *    another, `gap` apart; each timed from the call to its last reply. The
 *    other servers' event loops are watched over the same span.
 * 6. Evictions and other losses over the whole run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForTcp } from "../../test/support/net.js";
import { BackgroundLoad } from "../lib/background-load.js";
import { Child, cpuMs, round, type Summary, sleep, sum, summarize } from "../lib/common.js";
import { log } from "../lib/log.js";
import { startNatsServer, stopNatsServer } from "../lib/nats-server.js";
import type { JobSystem, JobsConfig } from "./config.js";
import type { JobSample, LoopWindow } from "./serve.js";

const BENCH = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Servers can be asked for their heap after a full GC ("heap"), before and after the jobs. */
const GC = ["--expose-gc"];
const HOST = "127.0.0.1";

export interface JobsRunResult {
  system: JobSystem;
  n: number;
  servers: number;
  error?: string;
  rampMs?: number;
  held?: number[];
  gapMs?: number;
  /** Time to the last reply over the measured jobs, ms. */
  lastReply?: Summary;
  /** NetSync: time until run() resolved (targets fixed), p50 over the jobs, ms. */
  resolveP50Ms?: number;
  replies?: number;
  expected?: number;
  /** Jobs that did not get every reply, and what the rest came to. */
  incompleteJobs?: number;
  others?: Record<string, number>;
  cpu?: {
    elapsedMs: number;
    /** Heartbeats alone, ms of CPU per s, per server, and the broker. */
    baselineMsPerS: number[];
    brokerBaselineMsPerS?: number;
    /** The servers' CPU over the jobs phase beyond the baseline rate, ms (summed over servers). */
    serversMs: number;
    brokerMs?: number;
    /** Per 1,000 replies: the servers', the broker's, and the servers' without subtracting the baseline. */
    serversMsPer1k: number;
    brokerMsPer1k?: number;
    rawServersMsPer1k: number;
    /** The first server's CPU inside the job calls alone (call to last reply), per 1,000 replies. */
    originCallMsPer1k: number;
    /** Every generator's CPU over the jobs phase, % of one core (near 200: the machine was saturated). */
    loadgenPct: number;
    /** The whole machine's busy CPU over the jobs phase (/proc/stat), % of one core, and what processes other than this run's used of it. */
    machinePct: number;
    otherWorkPct: number;
  };
  /** MB: each server's RSS with nothing connected, with the slaves before the jobs, and its peak during them. */
  rss?: { baseMB: number[]; beforeJobsMB: number[]; peakMB: number[] };
  /** Heap in use after a full GC before and after the measured jobs, MB per server, and what stayed per job and per reply (all servers). */
  heap?: { beforeMB: number[]; afterMB: number[]; keptKbPerJob: number; keptBytesPerReply: number };
  /** Longest event-loop turn during the jobs, ms: the first server's (per job: p50 and max) and every other server's. */
  loop?: {
    originMaxMs: number;
    originJobP50Ms: number;
    relayMaxMs: number[];
    maxMs: number;
    stalls: number;
    /** The most CPU inside one stall over 100 ms (capped at its length), any server: the part of a long turn the server itself ran. */
    busiestStallMs: number;
    baselineMaxMs: number[];
  };
  /** NetSync's own pause detector ("stalled" events) during the jobs, all servers. */
  stalled?: number;
  evictions?: { run: number; jobs: number };
  lost?: Record<string, number>;
  spinnerPct?: number;
  jobs?: JobSample[];
  relayWindows?: LoopWindow[];
}

export async function runJobsOnce(config: JobsConfig, system: JobSystem, n: number): Promise<JobsRunResult> {
  const result: JobsRunResult = { system, n, servers: config.servers };
  const load = await BackgroundLoad.start(config.spinner);
  const children: Child[] = [];
  const external: { stop(): Promise<void>; pid: number }[] = [];
  try {
    await measure(config, system, n, result, children, external, load);
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    log(`${system} N=${n} FAILED: ${result.error}`);
  } finally {
    if (load) result.spinnerPct = load.runPct();
    // Clients first (so servers do not count them as losses of their own), then servers, broker, spinner.
    await Promise.all(children.filter((c) => c.name.startsWith("gen")).map((c) => c.stop()));
    await Promise.all(children.filter((c) => !c.name.startsWith("gen")).map((c) => c.stop(10_000)));
    for (const e of external) await e.stop();
    await load?.stop();
    await sleep(config.quick ? 300 : 1500);
  }
  return result;
}

async function measure(
  config: JobsConfig,
  system: JobSystem,
  n: number,
  result: JobsRunResult,
  children: Child[],
  external: { stop(): Promise<void>; pid: number }[],
  load: BackgroundLoad | undefined,
): Promise<void> {
  const k = config.servers;
  const label = `${system}${config.cluster ? ` ×${k}` : ""} N=${n}`;
  // 1. broker and servers
  let brokerUrl: string | undefined;
  if (config.cluster && system === "netsync") {
    const nats = await startNatsServer(HOST, config.out);
    external.push({ pid: nats.proc.pid!, stop: () => stopNatsServer(nats) });
    brokerUrl = nats.url;
  } else if (config.cluster) {
    const redis = await startRedis();
    external.push({ pid: redis.proc.pid!, stop: () => stopProc(redis.proc) });
    brokerUrl = redis.url;
  }
  const servers = Array.from({ length: k }, (_, i) => {
    const profile = config.prof
      ? {
          NETSYNC_BENCH_JOBS_PROFILE: join(
            config.out,
            "prof",
            `jobs-${config.cluster ? "cluster" : "single"}-${system}-${n}-s${i}-${Date.now()}.cpuprofile`,
          ),
        }
      : {};
    const common = { host: HOST, interval: config.interval, timeout: config.timeout };
    const child =
      system === "floor"
        ? new Child("floor", join(BENCH, "jobs", "floor.ts"), common, GC, profile)
        : system === "netsync"
          ? new Child(
              `master m${i}`,
              join(BENCH, "cluster", "master.ts"),
              { ...common, name: `m${i}`, ...(brokerUrl ? { natsUrl: brokerUrl } : {}) },
              GC,
              profile,
            )
          : new Child(
              `socket.io node ${i}`,
              join(BENCH, "cluster", "sio-node.ts"),
              { ...common, ...(brokerUrl ? { redisUrl: brokerUrl } : {}) },
              GC,
              profile,
            );
    children.push(child);
    return child;
  });
  const ports = await Promise.all(servers.map(async (s) => (await s.waitFor("ready", 30_000)).port as number));
  const stats = () => Promise.all(servers.map((s) => s.request({ cmd: "stats" })));
  if (config.cluster && system === "netsync") {
    await waitUntil("cluster membership", 20_000, async () =>
      (await stats()).every((s) => (s.masters as string[]).length === k && s.clusterState === "connected"),
    );
  }
  await sleep(config.quick ? 200 : 500);
  const baseMB = (await stats()).map((s) => mb(s.rss as number));

  // 2. generators, N / K per server
  const perServer = Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
  const gens: Child[] = [];
  perServer.forEach((count, i) => {
    for (let g = 0, left = count; left > 0; g++, left -= config.perGen) {
      const size = Math.min(config.perGen, left);
      const gen =
        system !== "socketio"
          ? new Child(`gen ${i}-${g}`, join(BENCH, "cluster", "loadgen.ts"), {
              ports,
              hosts: [HOST],
              start: i,
              count: size,
              prefix: `g${i}-${g}-`,
              openBatch: 200,
            })
          : new Child(`gen ${i}-${g}`, join(BENCH, "cluster", "sio-loadgen.ts"), {
              url: `http://${HOST}:${ports[i]}`,
              count: size,
              openBatch: 200,
            });
      gens.push(gen);
    }
  });
  children.push(...gens);
  const t0 = performance.now();
  await Promise.all(gens.map((g) => g.waitFor("ready", 600_000)));
  await waitUntil(`${label} ramp`, 180_000, async () => (await stats()).every((s, i) => s.size === perServer[i]));
  result.rampMs = Math.round(performance.now() - t0);
  result.held = perServer;
  log(`${label}: ${n} held after ${result.rampMs} ms`);

  // 3. warm-up
  const origin = servers[0]!;
  const relays = servers.slice(1);
  const gapMs = config.gapMs ?? Math.round(500 + n / 20);
  result.gapMs = gapMs;
  const jobsRequest = (count: number) =>
    origin.request({ cmd: "jobs", count, gapMs, timeout: config.jobTimeout }, count * (config.jobTimeout + gapMs + 30_000));
  await sleep(config.warmupSeconds * 1000);
  if (config.warmupJobs > 0) await jobsRequest(config.warmupJobs);

  // 4. baseline: heartbeats alone
  const relayLoop = (next: string, profile?: string) =>
    Promise.all(relays.map((r) => r.request({ cmd: "loop", next, profile }).then((x) => x.window as LoopWindow)));
  await relayLoop("baseline");
  const snapshot = async () => ({
    machine: machineBusyMs(),
    own: cpuMs(process.pid) + (load?.cpuMs() ?? 0),
    at: performance.now(),
    servers: (await stats()).map((s) => s.cpuMs as number),
    broker: external.length ? sum(external.map((e) => cpuMs(e.pid))) : undefined,
    gens: sum(gens.map((g) => cpuMs(g.pid))),
  });
  const b0 = await snapshot();
  await sleep(config.baselineSeconds * 1000);
  const b1 = await snapshot();
  const bElapsed = b1.at - b0.at;
  const baselineRate = b1.servers.map((c, i) => (c - b0.servers[i]!) / bElapsed);
  const brokerRate = b1.broker !== undefined ? (b1.broker - b0.broker!) / bElapsed : undefined;
  const beforeJobs = await stats();
  const evictedBefore = sum(beforeJobs.map((s) => s.evicted as number));
  const heap = () => Promise.all(servers.map((s) => s.request({ cmd: "heap" }).then((x) => x.heapMB as number)));
  const heapBefore = await heap();
  const stalledBefore = sum(beforeJobs.map((s) => (s.stalled as number | undefined) ?? 0));

  // 5. jobs
  const relayBaseline = await relayLoop("jobs", config.prof ? "start" : undefined);
  const j0 = await snapshot();
  const reply = await jobsRequest(config.repeats);
  const j1 = await snapshot();
  const relayWindows = await relayLoop("after", config.prof ? "stop" : undefined);
  const after = await stats();
  const heapAfter = await heap();
  const originBaseline = reply.before as LoopWindow;
  const jobs = reply.jobs as JobSample[];
  const elapsed = j1.at - j0.at;

  // 6. what it came to
  const replies = sum(jobs.map((j) => j.replies));
  const serversUsed = j1.servers.map((c, i) => c - j0.servers[i]!);
  const serversMs = sum(serversUsed.map((c, i) => Math.max(0, c - baselineRate[i]! * elapsed)));
  const brokerMs = j1.broker !== undefined ? Math.max(0, j1.broker - j0.broker! - brokerRate! * elapsed) : undefined;
  const per1k = (ms: number) => round((ms / Math.max(1, replies)) * 1000, 2);
  const others: Record<string, number> = {};
  for (const j of jobs) {
    for (const [key, v] of Object.entries(j.others ?? {})) others[key] = (others[key] ?? 0) + v;
    if (j.failed) others[j.failed] = (others[j.failed] ?? 0) + 1;
  }
  const ms = summarize(jobs.map((j) => j.ms));
  const originTurns = jobs.map((j) => j.loop.maxTurnMs);
  const relayMax = relayWindows.map((w) => w.maxTurnMs);
  Object.assign(result, {
    lastReply: { count: ms.count, p50: round(ms.p50, 1), p99: round(ms.p99, 1), max: round(ms.max, 1) },
    ...(system === "netsync" ? { resolveP50Ms: round(summarize(jobs.map((j) => j.resolveMs ?? Number.NaN)).p50, 1) } : {}),
    replies,
    expected: n * config.repeats,
    incompleteJobs: jobs.filter((j) => j.replies !== n).length,
    others,
    cpu: {
      elapsedMs: Math.round(elapsed),
      baselineMsPerS: baselineRate.map((r) => round(r * 1000, 1)),
      ...(brokerRate !== undefined ? { brokerBaselineMsPerS: round(brokerRate * 1000, 1) } : {}),
      serversMs: round(serversMs, 1),
      ...(brokerMs !== undefined ? { brokerMs: round(brokerMs, 1), brokerMsPer1k: per1k(brokerMs) } : {}),
      serversMsPer1k: per1k(serversMs),
      rawServersMsPer1k: per1k(sum(serversUsed)),
      originCallMsPer1k: per1k(sum(jobs.map((j) => j.cpuMs))),
      loadgenPct: round(((j1.gens - j0.gens) / elapsed) * 100, 1),
      machinePct: round(((j1.machine - j0.machine) / elapsed) * 100, 1),
      otherWorkPct: round(
        ((j1.machine - j0.machine - sum(serversUsed) - (j1.broker ?? 0) + (j0.broker ?? 0) - (j1.gens - j0.gens) - (j1.own - j0.own)) /
          elapsed) *
          100,
        1,
      ),
    },
    rss: {
      baseMB,
      beforeJobsMB: beforeJobs.map((s) => mb(s.rss as number)),
      peakMB: [Math.max(0, ...jobs.map((j) => j.loop.rssPeakMB)), ...relayWindows.map((w) => w.rssPeakMB)],
    },
    heap: {
      beforeMB: heapBefore,
      afterMB: heapAfter,
      keptKbPerJob: round(((sum(heapAfter) - sum(heapBefore)) * 1024) / config.repeats, 0),
      keptBytesPerReply: round(((sum(heapAfter) - sum(heapBefore)) * 2 ** 20) / Math.max(1, replies), 0),
    },
    loop: {
      originMaxMs: Math.max(0, ...originTurns),
      originJobP50Ms: round(summarize(originTurns).p50, 1),
      relayMaxMs: relayMax,
      maxMs: Math.max(0, ...originTurns, ...relayMax),
      stalls: sum(jobs.map((j) => j.loop.stalls.length)) + sum(relayWindows.map((w) => w.stalls.length)),
      busiestStallMs: Math.max(0, ...jobs.map((j) => j.loop.busiestStallMs), ...relayWindows.map((w) => w.busiestStallMs)),
      baselineMaxMs: [originBaseline.maxTurnMs, ...relayBaseline.map((w) => w.maxTurnMs)],
    },
    ...(system === "netsync" ? { stalled: sum(after.map((s) => (s.stalled as number) ?? 0)) - stalledBefore } : {}),
    evictions: { run: sum(after.map((s) => s.evicted as number)), jobs: sum(after.map((s) => s.evicted as number)) - evictedBefore },
    lost: mergeCounts(after.map((s) => s.lost as Record<string, number>)),
    jobs,
    relayWindows,
  } satisfies Partial<JobsRunResult>);
  log(
    `${label}: last reply p50/p99 ${result.lastReply!.p50}/${result.lastReply!.p99} ms, ${result.cpu!.serversMsPer1k} ms CPU per 1k replies, ` +
      `longest turn ${result.loop!.maxMs} ms (busiest stall ${result.loop!.busiestStallMs} ms), heap kept ${result.heap!.keptBytesPerReply} B/reply, ${replies}/${result.expected} replies, evictions ${result.evictions!.run}`,
  );
}

const mb = (bytes: number) => round(bytes / 2 ** 20, 1);

/** Busy CPU time of the whole machine so far (all cores, /proc/stat: everything but idle and iowait), ms. */
function machineBusyMs(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - fields[3]! - fields[4]!) * 10;
}

function mergeCounts(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const counts of list) for (const [key, v] of Object.entries(counts ?? {})) out[key] = (out[key] ?? 0) + v;
  return out;
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** redis-server (Debian's), no persistence, for Socket.IO's redis-adapter in cluster mode. */
async function startRedis(): Promise<{ proc: ChildProcess; url: string }> {
  const port = await freePort();
  const proc = spawn(
    "redis-server",
    ["--port", String(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--protected-mode", "no"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  try {
    await waitForTcp(port, 10_000);
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`redis-server did not start (apt-get install redis-server): ${String(err)}`);
  }
  return { proc, url: `redis://${HOST}:${port}` };
}

function stopProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    proc.once("exit", () => done());
    proc.kill("SIGTERM");
  });
}
