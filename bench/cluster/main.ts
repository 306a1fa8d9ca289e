/**
 * The cluster benchmark: `npm run bench:cluster -- [options]` (or
 * `npm run bench -- --cluster K [options]`), see bench/README.md "Cluster".
 *
 * In one run, each part alone on the machine, in this order:
 * 1. NATS per subscription: nats-server (monitoring on) and a Node client
 *    subscribing 10k then 100k route subjects; server RSS and /varz, client
 *    heap; then a second nats-server routed to the first (a 2-node cluster),
 *    to see that it holds every subscription too.
 * 2. Baseline: one master without a cluster holding N slaves: CPU per slave
 *    per round, RSS per slave, local request latency, broadcast delivery,
 *    fleet() time.
 * 3. Cluster: K masters (one process each) on one nats-server, a handful of
 *    slaves each (idle: local vs cross-master request), then N slaves each
 *    (steady phase: CPU and RSS per slave, evictions; local vs cross-master
 *    request at load; fleet-wide ListSlaves; fleet broadcast delivery).
 * 4. Failover: SIGKILL of the last master; its slaves were given every
 *    master's address and re-home with backoff. Time until all are held by
 *    the survivors, until every survivor's fleet() is exact (every id once,
 *    none on the dead master), and until the dead master left every view.
 * 5. The anchor: K Socket.IO nodes with @socket.io/redis-adapter on a
 *    redis-server, N clients each: cross-node emit with ack vs local,
 *    fetchSockets(), broadcast delivery, CPU per socket per round.
 *
 * Writes bench/out/cluster.json and prints markdown tables.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePort, waitForTcp } from "../../test/support/net.js";
import { BackgroundLoad } from "../lib/background-load.js";
import { Child, cpuMs, round, rssBytes, type Summary, sleep, sum, summarize } from "../lib/common.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..", "..");
const PARTS = ["subs", "baseline", "cluster", "failover", "socketio", "equal"] as const;

const { values: args } = parseArgs({
  args: process.argv.slice(2).filter((a) => a !== "--"),
  options: {
    cluster: { type: "string" },
    masters: { type: "string" },
    "per-master": { type: "string" },
    interval: { type: "string" },
    timeout: { type: "string" },
    steady: { type: "string" },
    "baseline-steady": { type: "string" },
    "sio-steady": { type: "string" },
    warmup: { type: "string" },
    idle: { type: "string" },
    requests: { type: "string" },
    "per-gen": { type: "string" },
    "equal-per-master": { type: "string" },
    hosts: { type: "string" },
    subs: { type: "string" },
    parts: { type: "string" },
    spinner: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
  allowPositionals: false,
});

if (args.help) {
  console.log(`npm run bench:cluster -- [--masters 3] [--per-master 10000] [--interval 5000] [--timeout 10000]
  [--steady 60] [--baseline-steady 30] [--sio-steady 20] [--warmup 10] [--idle 3] [--requests 200] [--per-gen 5000]
  [--equal-per-master 5000] [--hosts 4] [--subs 10000,100000] [--parts ${PARTS.join(",")}] [--spinner 0.5] [--out bench/out]
(npm run bench -- --cluster K takes the same options)`);
  process.exit(0);
}

const config = {
  masters: Number(args.masters ?? args.cluster ?? 3),
  perMaster: Number(args["per-master"] ?? 10_000),
  interval: Number(args.interval ?? 5_000),
  timeout: Number(args.timeout ?? 10_000),
  steadySeconds: Number(args.steady ?? 60),
  baselineSteadySeconds: Number(args["baseline-steady"] ?? 30),
  sioSteadySeconds: Number(args["sio-steady"] ?? 20),
  /** Heartbeats after the ramp before CPU is measured: V8 optimizes the hot paths meanwhile. */
  warmupSeconds: Number(args.warmup ?? 10),
  idle: Number(args.idle ?? 3),
  requests: Number(args.requests ?? 200),
  perGen: Number(args["per-gen"] ?? 5_000),
  /** Part "equal": K masters with this many each against one master with K times as many. */
  equalPerMaster: Number(args["equal-per-master"] ?? 5_000),
  /** Loopback destination addresses 127.0.0.2 … for the gRPC generators. */
  hosts: Number(args.hosts ?? 4),
  subs: (args.subs ?? "10000,100000").split(",").map(Number),
  parts: (args.parts?.split(",") ?? [...PARTS]) as (typeof PARTS)[number][],
  /** A slowed machine: a background process asks for this fraction of one core for the whole run (bench/lib/spinner.ts). */
  spinner: Number(args.spinner ?? 0),
  out: resolve(ROOT, args.out ?? "bench/out"),
};
for (const part of config.parts) if (!(PARTS as readonly string[]).includes(part)) throw new Error(`unknown part ${part}`);

/**
 * Destination addresses the generators spread their connections over (the
 * masters listen on 0.0.0.0): one (source, destination) address pair leaves
 * ~28,000 ephemeral ports per master port, which a failover's reconnect storm
 * (15,000 held plus sockets of failed attempts in TIME_WAIT) can exhaust.
 */
const HOSTS = Array.from({ length: config.hosts }, (_, i) => `127.0.0.${i + 2}`);
const BIND = "0.0.0.0";

const children: Child[] = [];
const procs: ChildProcess[] = [];

function log(message: string): void {
  process.stderr.write(`[cluster ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

interface External {
  proc: ChildProcess;
  port: number;
  url: string;
  monitorPort?: number;
}

/** nats-server with monitoring on; `routeTo` makes it the second node of a 2-node cluster. */
async function startNats(cluster?: { listen: number; routeTo: number }): Promise<External> {
  const port = await freePort();
  const monitorPort = await freePort();
  const file = join(config.out, `cluster-nats-${port}.conf`);
  const lines = [`listen: "127.0.0.1:${port}"`, `http: "127.0.0.1:${monitorPort}"`, "max_connections: 200000"];
  if (cluster) {
    lines.push(`cluster { name: bench, listen: "127.0.0.1:${cluster.listen}", routes: ["nats-route://127.0.0.1:${cluster.routeTo}"] }`);
  }
  writeFileSync(file, `${lines.join("\n")}\n`);
  const proc = spawn("nats-server", ["-c", file], { stdio: ["ignore", "ignore", "pipe"] });
  procs.push(proc);
  let stderr = "";
  proc.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  proc.once("exit", () => rmSync(file, { force: true }));
  try {
    await waitForTcp(port, 10_000);
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`nats-server did not start (bash bench/install-nats.sh): ${String(err)}\n${stderr}`);
  }
  return { proc, port, url: `nats://127.0.0.1:${port}`, monitorPort };
}

async function startRedis(): Promise<External> {
  const port = await freePort();
  const proc = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  procs.push(proc);
  try {
    await waitForTcp(port, 10_000);
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`redis-server did not start (apt-get install redis-server): ${String(err)}`);
  }
  return { proc, port, url: `redis://127.0.0.1:${port}` };
}

async function varz(monitorPort: number): Promise<{ mem: number; subscriptions: number; cpu: number }> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/varz`);
  const v = (await res.json()) as { mem: number; subscriptions: number; cpu: number };
  return { mem: v.mem, subscriptions: v.subscriptions, cpu: v.cpu };
}

async function stopAll(list: Child[]): Promise<void> {
  await Promise.all(list.map((c) => c.stop()));
}

function killProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    proc.once("exit", () => done());
    proc.kill("SIGKILL");
  });
}

const summary = (values: number[]): Summary => {
  const s = summarize(values);
  return { count: s.count, p50: round(s.p50, 2), p99: round(s.p99, 2), max: round(s.max, 2) };
};

/** Starts generators holding `count` slaves starting at master `start`, at most perGen each. */
function startGenerators(ports: number[], start: number, count: number, prefix: string): Child[] {
  const gens: Child[] = [];
  for (let k = 0, left = count; left > 0; k++, left -= config.perGen) {
    const gen = new Child(`generator ${prefix}${k}`, join(HERE, "loadgen.ts"), {
      ports,
      hosts: HOSTS,
      start,
      count: Math.min(config.perGen, left),
      prefix: `${prefix}${k}-`,
      openBatch: 200,
    });
    gens.push(gen);
  }
  children.push(...gens);
  return gens;
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, everyMs = 250): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

async function masterStats(masters: Child[]): Promise<Record<string, unknown>[]> {
  return Promise.all(masters.map((m) => m.request({ cmd: "stats" })));
}

async function collectBroadcast(gens: Child[]): Promise<number[]> {
  const replies = await Promise.all(gens.filter((g) => !g.exited).map((g) => g.request({ cmd: "collect" })));
  return replies.flatMap((r) => r.bcast as number[]);
}

/**
 * `times` broadcasts from `from`, 1 s + 0.1 ms per slave apart (4 s at 30,000: one broadcast to 30,000 costs this
 * machine about a CPU-second, and closer ones queue behind each other); delivery over every slave.
 */
async function broadcasts(from: Child, gens: Child[], times: number, slaves: number) {
  await collectBroadcast(gens);
  const calls: Record<string, unknown>[] = [];
  for (let i = 0; i < times; i++) {
    calls.push(await from.request({ cmd: "broadcast" }));
    await sleep(1_000 + slaves / 10);
  }
  await sleep(1_000 + slaves / 10);
  const deliveries = await collectBroadcast(gens);
  return {
    delivery: summary(deliveries),
    expected: sum(calls.map((c) => Number(c.written ?? 0))),
    callMs: calls.map((c) => c.callMs as number),
    byMaster: calls[0]?.byMaster,
    /** Masters a broadcastFleet() did not hear back from within the gather wait (their slaves may still have got it). */
    unanswered: calls.map((c) => c.unanswered ?? []),
  };
}

/** Steady phase: CPU of each server process over `seconds`, per slave per round; RSS now. */
async function steady(servers: Child[], seconds: number, held: number[], rssBase: number[], external: ChildProcess[] = []) {
  const before = await masterStats(servers);
  const externalBefore = external.map((p) => cpuMs(p.pid!));
  const t0 = performance.now();
  await sleep(seconds * 1_000);
  const after = await masterStats(servers);
  const elapsed = performance.now() - t0;
  const rounds = elapsed / config.interval;
  return {
    seconds: round(elapsed / 1000, 1),
    servers: after.map((a, i) => {
      const cpu = (a.cpuMs as number) - (before[i]!.cpuMs as number);
      return {
        held: held[i]!,
        cpuPct: round((cpu / elapsed) * 100, 1),
        cpuUsPerSlaveRound: round((cpu * 1000) / rounds / held[i]!, 2),
        rssMB: round((a.rss as number) / 2 ** 20, 1),
        rssKbPerSlave: round(((a.rss as number) - rssBase[i]!) / 1024 / held[i]!, 1),
      };
    }),
    external: external.map((p, i) => ({
      cpuPct: round(((cpuMs(p.pid!) - externalBefore[i]!) / elapsed) * 100, 1),
      rssMB: round(rssBytes(p.pid!) / 2 ** 20, 1),
    })),
  };
}

const meanOf = (values: number[]) => round(sum(values) / values.length, 2);

// --- 1. NATS per subscription ------------------------------------------------------

interface SubsStep {
  subs: number;
  subscribeMs: number;
  serverRssMB: number;
  serverBytesPerSub: number;
  serverVarzBytesPerSub: number;
  routedServerRssMB: number;
  routedServerBytesPerSub: number;
  varzSubscriptions: { server: number; routedServer: number };
  clientHeapMB: number;
  clientHeapBytesPerSub: number;
  clientRssMB: number;
}

async function partSubs() {
  log(`NATS per subscription: ${config.subs.join(", ")} subscriptions`);
  const routePortA = await freePort();
  const clusterPortB = await freePort();
  const nodeA = await startNats({ listen: routePortA, routeTo: clusterPortB });
  const nodeB = await startNats({ listen: clusterPortB, routeTo: routePortA });
  await sleep(1_500);
  const read = async () => {
    const [va, vb] = await Promise.all([varz(nodeA.monitorPort!), varz(nodeB.monitorPort!)]);
    return {
      aRss: rssBytes(nodeA.proc.pid!),
      bRss: rssBytes(nodeB.proc.pid!),
      aMem: va.mem,
      bMem: vb.mem,
      aSubs: va.subscriptions,
      bSubs: vb.subscriptions,
    };
  };
  const client = new Child("nats-subs", join(HERE, "nats-subs.ts"), { natsUrl: nodeA.url, steps: config.subs }, ["--expose-gc"]);
  children.push(client);
  const ready = await client.waitFor("ready", 30_000);
  await sleep(500);
  const base = await read();
  const steps: SubsStep[] = [];
  for (const _ of config.subs) {
    const stepDone = client.waitFor("step", 300_000);
    client.send({ cmd: "next" });
    const step = await stepDone;
    await sleep(1_500); // let the route to B carry the interest over
    const now = await read();
    const subs = step.subs as number;
    steps.push({
      subs,
      subscribeMs: step.ms as number,
      serverRssMB: round((now.aRss - base.aRss) / 2 ** 20, 1),
      serverBytesPerSub: Math.round((now.aRss - base.aRss) / subs),
      serverVarzBytesPerSub: Math.round((now.aMem - base.aMem) / subs),
      routedServerRssMB: round((now.bRss - base.bRss) / 2 ** 20, 1),
      routedServerBytesPerSub: Math.round((now.bRss - base.bRss) / subs),
      varzSubscriptions: { server: now.aSubs, routedServer: now.bSubs },
      clientHeapMB: round((step.heapMB as number) - (ready.heapMB as number), 1),
      clientHeapBytesPerSub: Math.round((((step.heapMB as number) - (ready.heapMB as number)) * 2 ** 20) / subs),
      clientRssMB: round((step.rssMB as number) - (ready.rssMB as number), 1),
    });
    log(`  ${subs}: ${JSON.stringify(steps[steps.length - 1])}`);
  }
  client.send({ cmd: "next" });
  await client.stop();
  await Promise.all([killProc(nodeA.proc), killProc(nodeB.proc)]);
  return {
    steps,
    method:
      "nats-server 2-node cluster (routes), client on node A; RSS deltas from /proc after 1.5 s, /varz mem; client heap after two forced GCs",
  };
}

// --- 2. Baseline --------------------------------------------------------------------

async function partBaseline(
  n: number = config.perMaster,
  steadySeconds: number = config.baselineSteadySeconds,
  warmupSeconds = config.warmupSeconds,
) {
  log(`baseline: one master without a cluster, ${n} slaves`);
  const master = new Child("baseline master", join(HERE, "master.ts"), {
    name: "solo",
    host: BIND,
    interval: config.interval,
    timeout: config.timeout,
  });
  children.push(master);
  const port = (await master.waitFor("ready", 30_000)).port as number;
  await sleep(500);
  const rssBase = ((await master.request({ cmd: "stats" })).rss as number) ?? 0;
  const idleGen = startGenerators([port], 0, config.idle, "i0-");
  await Promise.all(idleGen.map((g) => g.waitFor("ready", 60_000)));
  const idleRequest = await master.request({ cmd: "request", target: "i0-0-0", count: config.requests }, 120_000);
  const t0 = performance.now();
  const gens = startGenerators([port], 0, n, "g0-");
  await Promise.all(gens.map((g) => g.waitFor("ready", 600_000)));
  const total = n + config.idle;
  await waitUntil("baseline ramp", 120_000, async () => ((await master.request({ cmd: "stats" })).size as number) === total);
  const rampMs = performance.now() - t0;
  log(`  ${total} held after ${Math.round(rampMs)} ms; warm-up ${warmupSeconds} s, steady ${steadySeconds} s`);
  await sleep(warmupSeconds * 1_000);
  const st = await steady([master], steadySeconds, [total], [rssBase]);
  const loadedRequest = await master.request({ cmd: "request", target: "i0-0-0", count: config.requests }, 120_000);
  const fleet = await master.request({ cmd: "fleet", times: 3 }, 60_000);
  const adminList = await master.request({ cmd: "admin-list" }, 60_000);
  const bcast = await broadcasts(master, [...idleGen, ...gens], 3, total);
  const stats = await master.request({ cmd: "stats" });
  const result = {
    n: total,
    rampMs: Math.round(rampMs),
    steady: st,
    cpuUsPerSlaveRound: st.servers[0]!.cpuUsPerSlaveRound,
    rssKbPerSlave: st.servers[0]!.rssKbPerSlave,
    requestIdle: summary(idleRequest.samples as number[]),
    requestLoaded: summary(loadedRequest.samples as number[]),
    requestErrors: { ...(idleRequest.errors as object), ...(loadedRequest.errors as object) },
    fleetMs: fleet.durations as number[],
    fleetSlaves: fleet.slaves as number,
    adminListSlaves: adminList,
    broadcast: bcast,
    evicted: stats.evicted,
    lost: stats.lost,
  };
  await stopAll([master, ...idleGen, ...gens]);
  return result;
}

// --- 3 and 4. Cluster and failover ------------------------------------------------

async function partCluster(
  withFailover: boolean,
  n: number = config.perMaster,
  steadySeconds: number = config.steadySeconds,
  warmupSeconds = config.warmupSeconds,
) {
  const k = config.masters;
  log(`cluster: ${k} masters on one nats-server, ${config.idle} idle slaves each, then ${n} each`);
  const nats = await startNats();
  const masters = Array.from(
    { length: k },
    (_, i) =>
      new Child(`master m${i}`, join(HERE, "master.ts"), {
        name: `m${i}`,
        host: BIND,
        interval: config.interval,
        timeout: config.timeout,
        natsUrl: nats.url,
      }),
  );
  children.push(...masters);
  const ports = await Promise.all(masters.map(async (m) => (await m.waitFor("ready", 30_000)).port as number));
  await waitUntil("membership", 20_000, async () =>
    (await masterStats(masters)).every((s) => (s.masters as string[]).length === k && s.clusterState === "connected"),
  );
  await sleep(500);
  const rssBase = (await masterStats(masters)).map((s) => s.rss as number);
  const natsRssBase = rssBytes(nats.proc.pid!);
  // Idle: a few slaves on every master; slaves of generator i start at master i.
  const idleGens = masters.flatMap((_, i) => startGenerators(ports, i, config.idle, `i${i}-`));
  await Promise.all(idleGens.map((g) => g.waitFor("ready", 60_000)));
  await waitUntil("idle slaves", 20_000, async () => (await masterStats(masters)).every((s) => s.size === config.idle));
  await sleep(300);
  const request = (target: string) => masters[0]!.request({ cmd: "request", target, count: config.requests }, 300_000);
  const idleLocal = await request("i0-0-0");
  const idleCross = await request("i1-0-0");
  log(
    `  idle request local p50/p99 ${summary(idleLocal.samples as number[]).p50}/${summary(idleLocal.samples as number[]).p99} ms, cross ${summary(idleCross.samples as number[]).p50}/${summary(idleCross.samples as number[]).p99} ms`,
  );

  const t0 = performance.now();
  const gens = masters.flatMap((_, i) => startGenerators(ports, i, n, `g${i}-`));
  await Promise.all(gens.map((g) => g.waitFor("ready", 900_000)));
  const perMaster = n + config.idle;
  const total = perMaster * k;
  await waitUntil("cluster ramp", 180_000, async () => (await masterStats(masters)).every((s) => s.size === perMaster));
  const rampMs = performance.now() - t0;
  log(`  ${total} held after ${Math.round(rampMs)} ms; warm-up ${warmupSeconds} s, steady ${steadySeconds} s`);
  await sleep(warmupSeconds * 1_000);
  const st = await steady(
    masters,
    steadySeconds,
    masters.map(() => perMaster),
    rssBase,
    [nats.proc],
  );
  const natsRssPerSlave = round((rssBytes(nats.proc.pid!) - natsRssBase) / total, 0);
  const loadedLocal = await request("i0-0-0");
  const loadedCross = await request("i1-0-0");
  const fleet = await masters[0]!.request({ cmd: "fleet", times: 3, timeout: 10_000 }, 120_000);
  log(`  fleet() of ${fleet.slaves} slaves: ${JSON.stringify(fleet.durations)} ms`);
  const adminList = await masters[0]!.request({ cmd: "admin-list" }, 60_000);
  log(`  AdminService.ListSlaves: ${JSON.stringify(adminList)}`);
  const bcast = await broadcasts(masters[0]!, [...idleGens, ...gens], 3, total);
  log(`  broadcast delivery p50/p99/max ${bcast.delivery.p50}/${bcast.delivery.p99}/${bcast.delivery.max} ms`);
  const after = await masterStats(masters);
  const result = {
    masters: k,
    perMaster,
    total,
    rampMs: Math.round(rampMs),
    steady: st,
    cpuUsPerSlaveRound: meanOf(st.servers.map((s) => s.cpuUsPerSlaveRound)),
    rssKbPerSlave: meanOf(st.servers.map((s) => s.rssKbPerSlave)),
    natsServer: { ...st.external[0], bytesPerSlave: natsRssPerSlave },
    requestIdle: { local: summary(idleLocal.samples as number[]), cross: summary(idleCross.samples as number[]) },
    requestLoaded: { local: summary(loadedLocal.samples as number[]), cross: summary(loadedCross.samples as number[]) },
    requestErrors: [idleLocal, idleCross, loadedLocal, loadedCross].map((r) => r.errors),
    crossHolders: [...(idleCross.holders as string[]), ...(loadedCross.holders as string[])],
    fleet: {
      ms: fleet.durations as number[],
      slaves: fleet.slaves as number,
      distinct: fleet.distinct as number,
      byMaster: fleet.byMaster,
      unanswered: fleet.unanswered,
    },
    adminListSlaves: adminList,
    broadcast: bcast,
    evicted: sum(after.map((s) => s.evicted as number)),
    lost: after.map((s) => s.lost),
    failover: undefined as FailoverResult | undefined,
  };

  if (withFailover) {
    const victim = masters[k - 1]!;
    const survivors = masters.slice(0, k - 1);
    const deadId = `m${k - 1}`;
    log(`failover: SIGKILL ${deadId} holding ${perMaster}`);
    const killedAt = performance.now();
    victim.kill("SIGKILL");
    let registeredMs = Number.NaN;
    let exactMs = Number.NaN;
    let leftMs = Number.NaN;
    const views: Record<string, unknown>[] = [];
    const deadline = killedAt + 120_000;
    while (performance.now() < deadline && (Number.isNaN(registeredMs) || Number.isNaN(exactMs) || Number.isNaN(leftMs))) {
      const stats = await masterStats(survivors);
      const now = performance.now() - killedAt;
      if (Number.isNaN(registeredMs) && sum(stats.map((s) => s.size as number)) === total) registeredMs = now;
      if (Number.isNaN(leftMs) && stats.every((s) => !(s.masters as string[]).includes(deadId))) leftMs = now;
      if (!Number.isNaN(registeredMs) && Number.isNaN(exactMs)) {
        const fleets = await Promise.all(survivors.map((m) => m.request({ cmd: "fleet", times: 1, timeout: 5_000 }, 60_000)));
        const t = performance.now() - killedAt;
        const exact = fleets.every(
          (f) => f.slaves === total && f.distinct === total && !Object.keys(f.byMaster as object).includes(deadId),
        );
        views.push({
          atMs: Math.round(t),
          views: fleets.map((f) => ({ slaves: f.slaves, distinct: f.distinct, unanswered: f.unanswered })),
        });
        if (exact) exactMs = t;
      }
      await sleep(100);
    }
    const genStatus = await Promise.all(gens.map((g) => g.request({ cmd: "status" })));
    const survivorStats = await masterStats(survivors);
    result.failover = {
      killed: deadId,
      held: perMaster,
      allRegisteredMs: Math.round(registeredMs),
      exactViewMs: Math.round(exactMs),
      deadMasterLeftViewsMs: Math.round(leftMs),
      survivorsHeld: survivorStats.map((s) => s.size),
      survivorEvictions: sum(survivorStats.map((s) => s.evicted as number)) - result.evicted,
      dialFailures: sum(genStatus.map((s) => s.dialFailures as number)),
      dialErrors: genStatus.map((s) => s.dialErrors).filter((e) => Object.keys(e as object).length > 0),
      viewsWhilePolling: views.slice(-5),
    };
    log(
      `  all registered ${Math.round(registeredMs)} ms, exact views ${Math.round(exactMs)} ms, dead master gone ${Math.round(leftMs)} ms`,
    );
  }
  await stopAll([...masters, ...idleGens, ...gens]);
  await killProc(nats.proc);
  return result;
}

interface FailoverResult {
  killed: string;
  held: number;
  allRegisteredMs: number;
  exactViewMs: number;
  deadMasterLeftViewsMs: number;
  survivorsHeld: unknown[];
  survivorEvictions: number;
  dialFailures: number;
  dialErrors: unknown[];
  viewsWhilePolling: Record<string, unknown>[];
}

// --- 5. Socket.IO anchor ----------------------------------------------------------

async function partSocketio() {
  const k = config.masters;
  const n = config.perMaster;
  log(`Socket.IO + redis-adapter: ${k} nodes, ${config.idle} idle clients each, then ${n} each`);
  const redis = await startRedis();
  const nodes = Array.from(
    { length: k },
    (_, i) =>
      new Child(`socket.io node ${i}`, join(HERE, "sio-node.ts"), {
        host: "127.0.0.1",
        interval: config.interval,
        timeout: config.timeout,
        redisUrl: redis.url,
      }),
  );
  children.push(...nodes);
  const ports = await Promise.all(nodes.map(async (m) => (await m.waitFor("ready", 30_000)).port as number));
  await sleep(500);
  const rssBase = (await masterStats(nodes)).map((s) => s.rss as number);
  const gensFor = (count: number, tag: string) =>
    nodes.flatMap((_, i) => {
      const list: Child[] = [];
      for (let g = 0, left = count; left > 0; g++, left -= config.perGen) {
        list.push(
          new Child(`sio ${tag}${i}-${g}`, join(HERE, "sio-loadgen.ts"), {
            url: `http://127.0.0.1:${ports[i]}`,
            count: Math.min(config.perGen, left),
            openBatch: 200,
          }),
        );
      }
      children.push(...list);
      return list;
    });
  const idleGens = gensFor(config.idle, "i");
  await Promise.all(idleGens.map((g) => g.waitFor("ready", 60_000)));
  const target1 = ((await nodes[1]!.request({ cmd: "ids", n: 1 })).ids as string[])[0]!;
  const target0 = ((await nodes[0]!.request({ cmd: "ids", n: 1 })).ids as string[])[0]!;
  const emit = (target: string, local: boolean) => nodes[0]!.request({ cmd: "emit", target, local, count: config.requests }, 300_000);
  const idleLocal = await emit(target0, true);
  const idleLocalAdapter = await emit(target0, false);
  const idleCross = await emit(target1, false);
  const idleFetch = await nodes[0]!.request({ cmd: "fetch", times: 3 }, 60_000);
  log(
    `  idle emit local ${summary(idleLocal.samples as number[]).p50}/${summary(idleLocal.samples as number[]).p99} ms, cross ${summary(idleCross.samples as number[]).p50}/${summary(idleCross.samples as number[]).p99} ms`,
  );
  const t0 = performance.now();
  const gens = gensFor(n, "g");
  await Promise.all(gens.map((g) => g.waitFor("ready", 900_000)));
  const perNode = n + config.idle;
  await waitUntil("socket.io ramp", 180_000, async () => (await masterStats(nodes)).every((s) => s.size === perNode));
  const rampMs = performance.now() - t0;
  log(`  ${perNode * k} sockets after ${Math.round(rampMs)} ms; warm-up ${config.warmupSeconds} s, steady ${config.sioSteadySeconds} s`);
  await sleep(config.warmupSeconds * 1_000);
  const st = await steady(
    nodes,
    config.sioSteadySeconds,
    nodes.map(() => perNode),
    rssBase,
    [redis.proc],
  );
  const loadedLocal = await emit(target0, true);
  const loadedCross = await emit(target1, false);
  const fetch = await nodes[0]!.request({ cmd: "fetch", times: 3 }, 120_000);
  log(`  fetchSockets() of ${fetch.count}: ${JSON.stringify(fetch.durations)} ms`);
  const bcast = await broadcasts(nodes[0]!, [...idleGens, ...gens], 3, perNode * k);
  const after = await masterStats(nodes);
  const genStatus = await Promise.all([...idleGens, ...gens].map((g) => g.request({ cmd: "status" })));
  const result = {
    nodes: k,
    perNode,
    total: perNode * k,
    rampMs: Math.round(rampMs),
    steady: st,
    cpuUsPerSocketRound: meanOf(st.servers.map((s) => s.cpuUsPerSlaveRound)),
    rssKbPerSocket: meanOf(st.servers.map((s) => s.rssKbPerSlave)),
    redisServer: st.external[0],
    emitIdle: {
      local: summary(idleLocal.samples as number[]),
      localViaAdapter: summary(idleLocalAdapter.samples as number[]),
      cross: summary(idleCross.samples as number[]),
    },
    emitLoaded: { local: summary(loadedLocal.samples as number[]), cross: summary(loadedCross.samples as number[]) },
    emitErrors: [idleLocal, idleLocalAdapter, idleCross, loadedLocal, loadedCross].map((r) => r.errors),
    fetchIdle: { ms: idleFetch.durations as number[], count: idleFetch.count as number },
    fetch: { ms: fetch.durations as number[], count: fetch.count as number, distinct: fetch.distinct as number },
    broadcast: { ...bcast, expected: 3 * perNode * k },
    evicted: sum(after.map((s) => s.evicted as number)),
    lost: after.map((s) => s.lost),
    clientEnds: genStatus.map((s) => s.ends).filter((e) => Object.keys(e as object).length > 0),
  };
  await stopAll([...nodes, ...idleGens, ...gens]);
  await killProc(redis.proc);
  return result;
}

// --- report -----------------------------------------------------------------------------

interface Results {
  startedAt: string;
  runSeconds?: number;
  /** With --spinner: the background load's CPU over the run, % of one core. */
  spinnerRunPct?: number;
  config: typeof config;
  machine: Record<string, unknown>;
  subs?: Awaited<ReturnType<typeof partSubs>>;
  baseline?: Awaited<ReturnType<typeof partBaseline>>;
  cluster?: Awaited<ReturnType<typeof partCluster>>;
  socketio?: Awaited<ReturnType<typeof partSocketio>>;
  /** Broadcast and fleet() at the same total: one master with K × equalPerMaster slaves against K masters with equalPerMaster each. */
  equal?: { single?: Awaited<ReturnType<typeof partBaseline>>; cluster?: Awaited<ReturnType<typeof partCluster>> };
  ratios?: Record<string, number | undefined>;
  errors?: string[];
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? round(a / b, 2) : undefined;

function markdown(results: Results): string {
  const lines: string[] = [];
  const b = results.baseline;
  const c = results.cluster;
  const s = results.socketio;
  const pq = (x: Summary | undefined) => (x ? `${x.p50} / ${x.p99}` : "–");
  const first = (ms: number[] | undefined) => (ms ? `${ms[0]} (then ${ms.slice(1).join(", ")})` : "–");
  lines.push(
    `Cluster benchmark, ${results.startedAt}, ${results.runSeconds} s. ${config.masters} masters × ${config.perMaster} slaves (+${config.idle} idle each), interval ${config.interval} ms, timeout ${config.timeout} ms.` +
      (config.spinner > 0 ? ` Slowed machine: spinner ${config.spinner} (measured ${results.spinnerRunPct}% of a core).` : ""),
    "",
  );
  if (b && c) {
    lines.push("| measure | single master (baseline) | cluster | ratio |", "| --- | ---: | ---: | ---: |");
    lines.push(`| slaves held | ${b.n} | ${c.total} (${c.masters} × ${c.perMaster}) | ${ratio(c.total, b.n)} |`);
    lines.push(
      `| master CPU µs/slave/round | ${b.cpuUsPerSlaveRound} | ${c.cpuUsPerSlaveRound} (${c.steady.servers.map((x) => x.cpuUsPerSlaveRound).join(", ")}) | ${ratio(c.cpuUsPerSlaveRound, b.cpuUsPerSlaveRound)} |`,
    );
    lines.push(`| master RSS KB/slave | ${b.rssKbPerSlave} | ${c.rssKbPerSlave} | ${ratio(c.rssKbPerSlave, b.rssKbPerSlave)} |`);
    lines.push(`| nats-server CPU % / RSS MB (steady) | – | ${c.natsServer.cpuPct} / ${c.natsServer.rssMB} | |`);
    lines.push(`| request p50 / p99 ms, idle: local | ${pq(b.requestIdle)} | ${pq(c.requestIdle.local)} | |`);
    lines.push(
      `| request p50 / p99 ms, idle: cross-master | – | ${pq(c.requestIdle.cross)} | p99 − local p99 = ${round(c.requestIdle.cross.p99 - c.requestIdle.local.p99, 2)} ms |`,
    );
    lines.push(`| request p50 / p99 ms, loaded: local | ${pq(b.requestLoaded)} | ${pq(c.requestLoaded.local)} | |`);
    lines.push(
      `| request p50 / p99 ms, loaded: cross-master | – | ${pq(c.requestLoaded.cross)} | p99 − local p99 = ${round(c.requestLoaded.cross.p99 - c.requestLoaded.local.p99, 2)} ms |`,
    );
    lines.push(
      `| fleet() ms (first, then) | ${first(b.fleetMs)} for ${b.fleetSlaves} | ${first(c.fleet.ms)} for ${c.fleet.slaves} | ${ratio(c.fleet.ms[0], b.fleetMs[0])} |`,
    );
    const admin = (x: Record<string, unknown>) => (x.failed ? `fails after ${x.ms} ms: ${x.failed}` : `${x.ms} for ${x.slaves}`);
    lines.push(`| AdminService.ListSlaves ms (AdminClient) | ${admin(b.adminListSlaves)} | ${admin(c.adminListSlaves)} | |`);
    lines.push(
      `| broadcast delivery p50 / p99 / max ms | ${b.broadcast.delivery.p50} / ${b.broadcast.delivery.p99} / ${b.broadcast.delivery.max} | ${c.broadcast.delivery.p50} / ${c.broadcast.delivery.p99} / ${c.broadcast.delivery.max} | p99 ${ratio(c.broadcast.delivery.p99, b.broadcast.delivery.p99)} |`,
    );
    lines.push(
      `| deliveries / expected | ${b.broadcast.delivery.count} / ${b.broadcast.expected} | ${c.broadcast.delivery.count} / ${c.broadcast.expected} | |`,
    );
    lines.push(`| evictions (all false) | ${b.evicted} | ${c.evicted} | |`);
    lines.push("");
  }
  if (c?.failover) {
    const f = c.failover;
    lines.push("| failover (SIGKILL of a master) | |", "| --- | ---: |");
    lines.push(`| slaves on the killed master | ${f.held} |`);
    lines.push(`| all registered on the survivors | ${f.allRegisteredMs} ms |`);
    lines.push(`| every survivor's fleet() exact (each id once, none on the dead master) | ${f.exactViewMs} ms |`);
    lines.push(`| dead master gone from every masters() | ${f.deadMasterLeftViewsMs} ms |`);
    lines.push(`| evictions on the survivors / dial failures | ${f.survivorEvictions} / ${f.dialFailures} |`);
    lines.push("");
  }
  if (s) {
    lines.push("| anchor: Socket.IO + redis-adapter | Socket.IO | NetSync cluster | NetSync / Socket.IO |", "| --- | ---: | ---: | ---: |");
    lines.push(`| connections | ${s.total} (${s.nodes} × ${s.perNode}) | ${c?.total ?? "–"} | |`);
    lines.push(
      `| server CPU µs/conn/round | ${s.cpuUsPerSocketRound} | ${c?.cpuUsPerSlaveRound ?? "–"} | ${ratio(c?.cpuUsPerSlaveRound, s.cpuUsPerSocketRound) ?? ""} |`,
    );
    lines.push(
      `| server RSS KB/conn | ${s.rssKbPerSocket} | ${c?.rssKbPerSlave ?? "–"} | ${ratio(c?.rssKbPerSlave, s.rssKbPerSocket) ?? ""} |`,
    );
    lines.push(`| idle: local emit+ack / request p50 / p99 ms | ${pq(s.emitIdle.local)} | ${c ? pq(c.requestIdle.local) : "–"} | |`);
    lines.push(
      `| idle: cross-node p50 / p99 ms | ${pq(s.emitIdle.cross)} | ${c ? pq(c.requestIdle.cross) : "–"} | p99 ${ratio(c?.requestIdle.cross.p99, s.emitIdle.cross.p99) ?? ""} |`,
    );
    lines.push(`| loaded: local p50 / p99 ms | ${pq(s.emitLoaded.local)} | ${c ? pq(c.requestLoaded.local) : "–"} | |`);
    lines.push(
      `| loaded: cross-node p50 / p99 ms | ${pq(s.emitLoaded.cross)} | ${c ? pq(c.requestLoaded.cross) : "–"} | p99 ${ratio(c?.requestLoaded.cross.p99, s.emitLoaded.cross.p99) ?? ""} |`,
    );
    lines.push(
      `| fetchSockets() / fleet() ms (first, then) | ${first(s.fetch.ms)} for ${s.fetch.count} | ${c ? `${first(c.fleet.ms)} for ${c.fleet.slaves}` : "–"} | ${ratio(c?.fleet.ms[0], s.fetch.ms[0]) ?? ""} |`,
    );
    lines.push(
      `| broadcast delivery p50 / p99 / max ms | ${s.broadcast.delivery.p50} / ${s.broadcast.delivery.p99} / ${s.broadcast.delivery.max} | ${c ? `${c.broadcast.delivery.p50} / ${c.broadcast.delivery.p99} / ${c.broadcast.delivery.max}` : "–"} | p99 ${ratio(c?.broadcast.delivery.p99, s.broadcast.delivery.p99) ?? ""} |`,
    );
    lines.push(`| evictions | ${s.evicted} | ${c?.evicted ?? "–"} | |`);
    lines.push("");
  }
  const e = results.equal;
  if (e?.single && e.cluster) {
    lines.push(
      `| same total: ${e.single.n} slaves | one master | ${e.cluster.masters} masters × ${e.cluster.perMaster} | ratio |`,
      "| --- | ---: | ---: | ---: |",
    );
    const d = (x: Summary) => `${x.p50} / ${x.p99} / ${x.max}`;
    lines.push(
      `| broadcast delivery p50 / p99 / max ms | ${d(e.single.broadcast.delivery)} | ${d(e.cluster.broadcast.delivery)} | p99 ${ratio(e.cluster.broadcast.delivery.p99, e.single.broadcast.delivery.p99)} |`,
    );
    lines.push(
      `| fleet() ms (first, then) | ${first(e.single.fleetMs)} | ${first(e.cluster.fleet.ms)} | ${ratio(e.cluster.fleet.ms[0], e.single.fleetMs[0])} |`,
    );
    lines.push(
      `| master CPU µs/slave/round (5 s window) | ${e.single.cpuUsPerSlaveRound} | ${e.cluster.cpuUsPerSlaveRound} | ${ratio(e.cluster.cpuUsPerSlaveRound, e.single.cpuUsPerSlaveRound)} |`,
    );
    lines.push(`| evictions | ${e.single.evicted} | ${e.cluster.evicted} | |`, "");
  }
  if (results.subs) {
    lines.push(
      "| NATS subscriptions | subscribe s | nats-server RSS B/sub (/varz mem) | routed 2nd server RSS B/sub | Node client heap B/sub |",
      "| ---: | ---: | ---: | ---: | ---: |",
    );
    for (const x of results.subs.steps) {
      lines.push(
        `| ${x.subs} | ${round(x.subscribeMs / 1000, 2)} | ${x.serverBytesPerSub} (${x.serverVarzBytesPerSub}) | ${x.routedServerBytesPerSub} | ${x.clientHeapBytesPerSub} |`,
      );
    }
    lines.push("");
  }
  return lines.join("\n");
}

// --- main -----------------------------------------------------------------------------

async function main(): Promise<void> {
  mkdirSync(config.out, { recursive: true });
  const started = performance.now();
  const results: Results = {
    startedAt: new Date().toISOString(),
    config,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memGB: round(totalmem() / 2 ** 30, 1), node: process.version },
  };
  const errors: string[] = [];
  const load = await BackgroundLoad.start(config.spinner);
  if (load) log(`spinner: a background process asks for ${config.spinner} of one core for the whole run`);
  const attempt = async <K extends "subs" | "baseline" | "cluster" | "socketio" | "equal">(name: K, fn: () => Promise<Results[K]>) => {
    try {
      results[name] = await fn();
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message}`);
      log(`${name} failed: ${(err as Error).message}`);
      await stopAll(children.filter((c) => !c.exited));
      await Promise.all(procs.map(killProc));
    }
  };
  if (config.parts.includes("subs")) await attempt("subs", partSubs);
  if (config.parts.includes("baseline")) await attempt("baseline", partBaseline);
  if (config.parts.includes("cluster") || config.parts.includes("failover")) {
    await attempt("cluster", () => partCluster(config.parts.includes("failover")));
  }
  if (config.parts.includes("socketio")) await attempt("socketio", partSocketio);
  if (config.parts.includes("equal")) {
    // One master cannot hold K × N = 30,000 (20,000 open files per process): compare at a total it can hold.
    const per = config.equalPerMaster;
    log(
      `equal total: one master with ${per * config.masters} against ${config.masters} × ${per} (broadcast, fleet(), requests; 5 s steady)`,
    );
    results.equal = {};
    await attempt("equal", async () => ({
      ...results.equal,
      single: await partBaseline(per * config.masters + config.idle * (config.masters - 1), 5, 5),
    }));
    await attempt("equal", async () => ({ ...results.equal, cluster: await partCluster(false, per, 5, 5) }));
  }
  if (load) {
    results.spinnerRunPct = load.runPct();
    await load.stop();
  }
  results.runSeconds = Math.round((performance.now() - started) / 1000);
  const b = results.baseline;
  const c = results.cluster;
  const s = results.socketio;
  results.ratios = {
    clusterCpuPerSlaveVsSingle: ratio(c?.cpuUsPerSlaveRound, b?.cpuUsPerSlaveRound),
    clusterRssPerSlaveVsSingle: ratio(c?.rssKbPerSlave, b?.rssKbPerSlave),
    crossVsLocalP99Idle: ratio(c?.requestIdle.cross.p99, c?.requestIdle.local.p99),
    crossMinusLocalP99IdleMs: c ? round(c.requestIdle.cross.p99 - c.requestIdle.local.p99, 2) : undefined,
    crossVsLocalP99Loaded: ratio(c?.requestLoaded.cross.p99, c?.requestLoaded.local.p99),
    clusterBroadcastP99VsSingle: ratio(c?.broadcast.delivery.p99, b?.broadcast.delivery.p99),
    clusterFleetVsSingleFirstMs: ratio(c?.fleet.ms[0], b?.fleetMs[0]),
    crossP99VsSocketioIdle: ratio(c?.requestIdle.cross.p99, s?.emitIdle.cross.p99),
    crossP99VsSocketioLoaded: ratio(c?.requestLoaded.cross.p99, s?.emitLoaded.cross.p99),
    fleetVsFetchSockets: ratio(c?.fleet.ms[0], s?.fetch.ms[0]),
    equalTotalBroadcastP99ClusterVsSingle: ratio(
      results.equal?.cluster?.broadcast.delivery.p99,
      results.equal?.single?.broadcast.delivery.p99,
    ),
    cpuPerConnVsSocketio: ratio(c?.cpuUsPerSlaveRound, s?.cpuUsPerSocketRound),
    broadcastP99VsSocketio: ratio(c?.broadcast.delivery.p99, s?.broadcast.delivery.p99),
  };
  results.errors = errors;
  const file = join(config.out, "cluster.json");
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(markdown(results));
  log(`wrote ${file} (${results.runSeconds} s)`);
  if (errors.length) process.exitCode = 1;
}

process.on("SIGINT", () => {
  for (const c of children) c.kill("SIGKILL");
  for (const p of procs) p.kill("SIGKILL");
  process.exit(130);
});

try {
  await main();
} finally {
  for (const c of children) c.kill("SIGKILL");
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}
