/**
 * One pass of the million bench at one fleet size: a fresh NATS cluster and
 * fresh master processes, filled, then every measurement in turn (see
 * bench/README.md, "A million slaves, simulated"). Returns the figures and
 * the checks that failed.
 */
import { readFileSync } from "node:fs";
import { DEFAULTS } from "../../src/defaults.js";
import { BackgroundLoad } from "../lib/background-load.js";
import { cpuMs, round, sleep, summarize } from "../lib/common.js";
import { NatsCluster } from "./nats-cluster.js";
import { masterName, type Proc, spawnMasters } from "./topology.js";

export interface PassOptions {
  n: number;
  k: number;
  perProcess: number;
  spinner: number;
  /** Slaves registered per second in the whole cluster during the fill. */
  fillRate: number;
  interval: number;
  timeout: number;
  heapMb: number;
  /** The masters' NATS ping interval, ms (undefined: NetSync's default). */
  natsPing?: number;
  samples: number;
  /** Longest wait for the routes after the NATS restart, ms. */
  restartWaitMs: number;
  /** Called with the figures so far after each phase (a pass that fails later still leaves them). */
  save: (partial: Reply) => void;
  /** Available memory (GB) under which the pass is stopped. */
  minFreeGb: number;
  /** Longest wait for any convergence, ms. */
  waitMs: number;
  log: (line: string) => void;
}

type Reply = Record<string, unknown>;
type NcStats = { id: string; held: number; inMsgs: number; inBytes: number; disconnects: number; claimsPublished: number };

/** MemAvailable from /proc/meminfo, GB. */
function availableGb(): number {
  const match = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return match ? Number(match[1]) / 1024 / 1024 : Number.POSITIVE_INFINITY;
}

const median = (values: number[]): number => summarize(values).p50;

/** Random ids of the fleet whose master is not `g` (held elsewhere). */
function idsNotOn(g: number, o: PassOptions, count: number): number[] {
  const out: number[] = [];
  while (out.length < count) {
    const i = Math.floor(Math.random() * o.n);
    if (i % o.k !== g) out.push(i);
  }
  return out;
}

/** One id held by each master (or by those in `masters`). */
function oneIdPerMaster(o: PassOptions, masters: number[]): number[] {
  return masters.map((g) => g + o.k * Math.floor((Math.random() * (o.n - g)) / o.k));
}

/** What the last failed check saw, for the timeout's message. */
let lastSeen = "";

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, everyMs = 250): Promise<number> {
  const started = performance.now();
  lastSeen = "";
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last seen: ${lastSeen})`);
    await sleep(everyMs);
  }
}

export async function runPass(o: PassOptions): Promise<{ result: Reply; failures: string[] }> {
  const failures: string[] = [];
  const result: Reply = {
    n: o.n,
    k: o.k,
    perProcess: o.perProcess,
    spinner: o.spinner,
    heartbeat: { interval: o.interval, timeout: o.timeout },
    natsPingMs: o.natsPing ?? null,
  };
  const load = await BackgroundLoad.start(o.spinner);
  const nats = await NatsCluster.start(3);
  const victimIndex = o.k - 1;
  const survivors = Array.from({ length: o.k - 1 }, (_, g) => g);
  let procs: Proc[] = [];
  // Interrupted (Ctrl-C, SIGTERM): end every process of the pass, nats-servers included, then exit.
  const interrupted = () => {
    for (const p of procs) p.child.kill("SIGKILL");
    void nats.killAll().then(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);
  let phase = "spawn";
  const at = (name: string) => {
    phase = name;
    o.save(result);
    o.log(`  ${new Date().toISOString().slice(11, 19)} ${name}`);
  };
  // The memory guard: past o.minFreeGb of available memory, every process of the pass is killed and the pass fails, naming the phase.
  let stoppedBy: string | undefined;
  const guard = setInterval(() => {
    const free = availableGb();
    if (free >= o.minFreeGb || stoppedBy) return;
    stoppedBy = `memory guard: ${free.toFixed(1)} GB available during "${phase}" (limit ${o.minFreeGb} GB)`;
    o.log(`  ${stoppedBy}; killing the pass`);
    for (const p of procs) p.child.kill("SIGKILL");
    void nats.killAll();
  }, 1_000);
  try {
    // --- cold start: spawn, connect, fill, every route subscribed, every view exact ---------------
    const baseSubs = await Promise.all(nats.nodes.map((_, i) => nats.subscriptions(i)));
    const spawnAt = performance.now();
    procs = spawnMasters(nats, o);
    await Promise.all(procs.map((p) => p.child.waitFor("ready", 60_000)));
    const connectedMs = performance.now() - spawnAt;
    at("fill");
    o.log(`  ${o.k} masters in ${procs.length} processes connected in ${(connectedMs / 1000).toFixed(1)} s; filling ${o.n}`);
    const ratePerMaster = Math.min(1_800, o.fillRate / o.k);
    const fills = await Promise.all(
      procs.map((p) =>
        p.child.request({ cmd: "fill", plan: { k: o.k, n: o.n, indexes: p.indexes, ratePerMaster } }, o.waitMs + o.n / ratePerMaster),
      ),
    );
    const fillMs = performance.now() - spawnAt - connectedMs;
    at("waiting for routes and views");
    const refusals = fills.reduce((a, f) => a + Number(f.refusals), 0);
    // Each slave: one route subscription (its claims come on the same subject); each master: 5 subjects of its own;
    // every server sees all of them once, its own clients' or the routes' interest. Shared by all masters: members,
    // which a server with no master of its own still sees once through a route; events only while a master watches,
    // and each master's request inbox only once it has asked something, so they are not counted: expecting them
    // (it said 3 shared) failed now and then when a server had no master of its own (one short for 30 s).
    const expectedSubs = baseSubs.map((b) => b + o.n + 5 * o.k + 1);
    const routesMs = await waitUntil("every route subscription on every server", o.waitMs, async () => {
      const subs = await Promise.all(nats.nodes.map((_, i) => nats.subscriptions(i)));
      lastSeen = `${subs.join(",")} of ${expectedSubs.join(",")}`;
      return subs.every((s, i) => s >= expectedSubs[i]!);
    });
    const viewsMs = await waitUntil("every master's view to be exact", o.waitMs, async () => viewsExact(procs, o.k, o.n), 500);
    const coldStartMs = performance.now() - spawnAt;
    result.coldStart = {
      connectedMs,
      fillMs,
      fillRefusals: refusals,
      routesAfterFillMs: routesMs,
      viewsAfterRoutesMs: viewsMs,
      totalMs: coldStartMs,
    };
    o.log(`  cold start ${(coldStartMs / 1000).toFixed(1)} s (fill ${(fillMs / 1000).toFixed(1)} s)`);

    result.memory = await memory(procs, nats);
    at("routed requests and listing");

    // --- routed requests, idle and during a full listing ---------------------------------------------
    const [asker, other] = [procs[0]!, procs[1] ?? procs[0]!];
    const idle = await asker.child.request(
      { cmd: "requests", from: masterName(asker.indexes[0]!), ids: idsNotOn(asker.indexes[0]!, o, o.samples) },
      o.waitMs,
    );
    const listingRun = asker.child.request({ cmd: "listing", from: masterName(asker.indexes[0]!), pageSize: 1_000 }, o.waitMs * 4);
    const during = await other.child.request(
      { cmd: "requests", from: masterName(other.indexes[0]!), ids: idsNotOn(other.indexes[0]!, o, o.samples) },
      o.waitMs,
    );
    const listing = await listingRun;
    result.routed = { idle: pick(idle), duringListing: pick(during) };
    result.listing = listing;
    if (listing.count !== o.n || listing.outOfOrder !== 0)
      failures.push(`full listing gave ${listing.count} of ${o.n} slaves, ${listing.outOfOrder} out of order or repeated`);
    if (Number(idle.failed) > 0 || Number(during.failed) > 0)
      failures.push(`routed requests failed: ${JSON.stringify([idle.codes, during.codes])}`);
    o.log(`  routed p50 ${fmt((idle.okMs as Reply).p50)} ms; listing ${listing.count} in ${fmt(Number(listing.ms) / 1000)} s`);

    at("selector");
    // --- a selector matching 1 % --------------------------------------------------------------------
    const selected = await asker.child.request(
      { cmd: "listing", from: masterName(asker.indexes[0]!), selector: "shard=7", pageSize: 1_000 },
      o.waitMs * 4,
    );
    result.selector = selected;
    if (selected.count !== Math.floor((o.n - 7 + 99) / 100)) failures.push(`selector shard=7 listed ${selected.count}`);

    at("broadcast");
    // --- a fleet broadcast ----------------------------------------------------------------------------
    const broadcast = await asker.child.request({ cmd: "broadcast", from: masterName(asker.indexes[0]!) }, o.waitMs);
    const counts = Object.values(broadcast.byMaster as Record<string, number>);
    result.broadcast = {
      ms: broadcast.ms,
      written: broadcast.written,
      masters: counts.length,
      perMasterMin: Math.min(...counts),
      perMasterMax: Math.max(...counts),
      unanswered: broadcast.unanswered,
    };
    if (broadcast.written !== o.n) failures.push(`broadcast written to ${broadcast.written} of ${o.n}`);

    // --- NATS restarted: re-announce traffic, routes back ----------------------------------------------
    const slowBefore = await slowConsumers(nats);
    result.natsBeforeRestart = await natsFigures(nats);
    at("NATS restart");
    result.natsRestart = await natsRestart(nats, procs, o, survivors, expectedSubs);
    const restart = result.natsRestart as Reply;
    o.save(result);
    if (!restart.routesBack) {
      failures.push("routes not all back after the NATS restart");
      // What the servers saw meanwhile; the failover would measure a cluster that never converged, so it is skipped.
      result.natsStuck = await natsFigures(nats);
      throw new Error(`NATS restart: routes not back within ${o.restartWaitMs} ms (figures so far in the JSON)`);
    }

    at("failover");
    // --- the victim SIGKILLed, its slaves re-homed ----------------------------------------------------
    result.failover = await failover(procs, o, victimIndex);

    // --- the end: NATS's own figures, slow consumers ------------------------------------------------
    result.nats = await natsFigures(nats);
    const slowAfter = await slowConsumers(nats);
    result.slowConsumers = { beforeRestart: slowBefore, atEnd: slowAfter };
    if (slowBefore + slowAfter !== 0) failures.push(`slow consumers: ${slowBefore} before the restart, ${slowAfter} after`);
    result.spinnerPct = load?.runPct();
    return { result, failures };
  } catch (err) {
    result.error = stoppedBy ?? String(err);
    o.save(result);
    throw stoppedBy ? new Error(stoppedBy) : err;
  } finally {
    clearInterval(guard);
    process.off("SIGINT", interrupted);
    process.off("SIGTERM", interrupted);
    await Promise.all(procs.map((p) => p.child.stop()));
    await nats.stop();
    await load?.stop();
  }
}

const fmt = (v: unknown): string => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(2) : String(v));

function pick(r: Reply): Reply {
  return { ok: r.ok, failed: r.failed, codes: r.codes, ms: r.okMs };
}

async function viewsExact(procs: Proc[], k: number, n: number): Promise<boolean> {
  const replies = await Promise.all(procs.filter((p) => !p.child.exited).map((p) => p.child.request({ cmd: "views" }, 60_000)));
  return replies.every((r) => (r.views as { masters: number; connected: number }[]).every((v) => v.masters === k && v.connected === n));
}

async function slowConsumers(nats: NatsCluster): Promise<number> {
  const varz = await Promise.all(nats.nodes.map((_, i) => nats.varz(i)));
  return varz.reduce((a, v) => a + v.slow_consumers, 0);
}

async function natsFigures(nats: NatsCluster): Promise<Reply[]> {
  return Promise.all(
    nats.nodes.map(async (_, i) => {
      const v = await nats.varz(i);
      return {
        server: i,
        memBytes: v.mem,
        cpuPct: v.cpu,
        cpuMs: cpuMs(nats.pid(i) ?? 0),
        subscriptions: v.subscriptions,
        slowConsumers: v.slow_consumers,
        closed: await nats.closedReasons(i),
      };
    }),
  );
}

async function memory(procs: Proc[], nats: NatsCluster): Promise<Reply> {
  const per = await Promise.all(procs.map((p) => p.child.request({ cmd: "mem" }, 60_000)));
  const perProcess = per.map((m, j) => ({
    process: procs[j]!.child.name,
    masters: m.masters,
    held: m.held,
    rssBytes: m.rss,
    heapBytes: m.heapUsed,
    rssPerSlave: round(Number(m.rss) / Number(m.held), 0),
    heapPerSlave: round(Number(m.heapUsed) / Number(m.held), 0),
  }));
  return { perProcess, nats: await natsFigures(nats) };
}

async function ncStats(procs: Proc[]): Promise<Map<string, NcStats>> {
  const out = new Map<string, NcStats>();
  const replies = await Promise.all(procs.filter((p) => !p.child.exited).map((p) => p.child.request({ cmd: "ncstats" }, 60_000)));
  for (const r of replies) for (const s of r.stats as NcStats[]) out.set(s.id, s);
  return out;
}

/** The clients' counters once the re-announce is over: the first second in which all masters together received under 2 % of what they received since `before`. */
async function settledStats(procs: Proc[], before: Map<string, NcStats>, timeoutMs: number): Promise<Map<string, NcStats>> {
  const received = (m: Map<string, NcStats>) =>
    [...m.values()].reduce((a, s) => {
      const b = before.get(s.id);
      return a + (b && s.inBytes >= b.inBytes ? s.inBytes - b.inBytes : s.inBytes);
    }, 0);
  let last = await ncStats(procs);
  const started = performance.now();
  for (;;) {
    await sleep(1_000);
    const now = await ncStats(procs);
    const total = received(now);
    if (total - received(last) < 0.02 * total || performance.now() - started > timeoutMs) return now;
    last = now;
  }
}

async function natsRestart(nats: NatsCluster, procs: Proc[], o: PassOptions, survivors: number[], expectedSubs: number[]): Promise<Reply> {
  const before = await ncStats(procs);
  const killedAt = performance.now();
  await nats.killAll();
  await sleep(500);
  await nats.startAll();
  const upMs = performance.now() - killedAt;
  let routesBack = true;
  let subsMs = Number.NaN;
  let probeMs = Number.NaN;
  try {
    subsMs = await waitUntil("route subscriptions back on every server", o.restartWaitMs, async () => {
      const subs = await Promise.all(nats.nodes.map((_, i) => nats.subscriptions(i)));
      lastSeen = `${subs.join(",")} of ${expectedSubs.join(",")}`;
      return subs.every((s, i) => s >= expectedSubs[i]!);
    });
    // A routed request from every master process to one slave of every master.
    probeMs = await waitUntil("a routed request to every master's slaves", o.restartWaitMs, async () => {
      const replies = await Promise.all(
        procs.map((p) =>
          p.child.request(
            { cmd: "requests", from: masterName(p.indexes[0]!), ids: oneIdPerMaster(o, [...survivors, o.k - 1]), timeout: 2_000 },
            60_000,
          ),
        ),
      );
      return replies.every((r) => r.failed === 0);
    });
  } catch {
    routesBack = false;
  }
  const after = await settledStats(procs, before, routesBack ? o.waitMs : 5_000);
  const perMaster = [...after.values()].map((a) => {
    const b = before.get(a.id);
    // A new connection starts its counters at 0.
    const inMsgs = b && a.inMsgs >= b.inMsgs ? a.inMsgs - b.inMsgs : a.inMsgs;
    const inBytes = b && a.inBytes >= b.inBytes ? a.inBytes - b.inBytes : a.inBytes;
    const disconnects = a.disconnects - (b?.disconnects ?? 0);
    const claimsPublished = a.claimsPublished - (b?.claimsPublished ?? 0);
    return { id: a.id, held: a.held, inMsgs, inBytes, disconnects, claimsPublished, bytesPerOwnSlave: inBytes / Math.max(1, a.held) };
  });
  const msgs = perMaster.map((m) => m.inMsgs);
  const bytes = perMaster.map((m) => m.inBytes);
  const ratios = perMaster.map((m) => m.bytesPerOwnSlave);
  // Disconnects beyond the restart's one: a master whose client missed its pings during the storm (stale) reconnected and re-claimed again.
  const extraDisconnects = perMaster.map((m) => Math.max(0, m.disconnects - 1));
  return {
    natsBackMs: upMs,
    routesBack,
    subsBackMs: subsMs,
    probeBackMs: probeMs,
    routesBackMs: upMs + subsMs + probeMs,
    mastersReconnectedAgain: extraDisconnects.filter((d) => d > 0).length,
    extraDisconnects: extraDisconnects.reduce((a, b) => a + b, 0),
    claimsRepublishedPerOwnSlave: round(
      perMaster.reduce((a, m) => a + m.claimsPublished, 0) /
        Math.max(
          1,
          perMaster.reduce((a, m) => a + m.held, 0),
        ),
      2,
    ),
    receivedPerMaster: {
      msgsMax: Math.max(...msgs),
      msgsMedian: median(msgs),
      bytesMax: Math.max(...bytes),
      bytesMedian: median(bytes),
      bytesPerOwnSlaveMax: round(Math.max(...ratios), 1),
      bytesPerOwnSlaveMedian: round(median(ratios), 1),
    },
  };
}

async function failover(procs: Proc[], o: PassOptions, victimIndex: number): Promise<Reply> {
  const victim = procs.find((p) => p.victim)!;
  const asker = procs[0]!;
  const victimIds: number[] = [];
  for (let i = victimIndex; i < o.n; i += o.k) victimIds.push(i);
  const sample = () => Array.from({ length: 20 }, () => victimIds[Math.floor(Math.random() * victimIds.length)]!);
  victim.child.kill("SIGKILL");
  const killedAt = performance.now();
  // Unroutable: a routed request to its ids fails fast (NOT_FOUND or UNAVAILABLE), not by timing out.
  let lastFail: Reply = {};
  let firstAttempt: Reply | undefined;
  const unroutableMs = await waitUntil("the victim's ids to fail fast", o.waitMs, async () => {
    const r = await asker.child.request({ cmd: "requests", from: masterName(asker.indexes[0]!), ids: sample(), timeout: 2_000 }, 60_000);
    lastFail = r;
    firstAttempt ??= { ms: r.ms, codes: r.codes, failMs: r.failMs };
    const codes = r.codes as Record<string, number>;
    return r.ok === 0 && (codes["5"] ?? 0) + (codes["14"] ?? 0) === r.failed && Number((r.failMs as Reply).max) < 500;
  });
  // Re-homed as the slaves would: the kernel resets their streams at once, each waits a first backoff step
  // (uniform below DEFAULTS.backoff.initial) and dials a random other master.
  const windowMs = DEFAULTS.backoff.initial;
  const alive = procs.filter((p) => !p.victim);
  const shares: number[][] = alive.map(() => []);
  for (const i of victimIds) shares[Math.floor(Math.random() * alive.length)]!.push(i);
  const rehomeAt = performance.now();
  const rehomed = await Promise.all(alive.map((p, j) => p.child.request({ cmd: "rehome", ids: shares[j], windowMs }, o.waitMs)));
  const registeredMs = performance.now() - rehomeAt;
  const routableMs = await waitUntil("the victim's ids routable again", o.waitMs, async () => {
    const r = await asker.child.request({ cmd: "requests", from: masterName(asker.indexes[0]!), ids: sample(), timeout: 2_000 }, 60_000);
    return r.failed === 0;
  });
  const exactMs = await waitUntil("every view exact after re-homing", o.waitMs, () => viewsExact(alive, o.k - 1, o.n), 500);
  return {
    victimSlaves: victimIds.length,
    unroutableMs,
    failFastMs: (lastFail.failMs as Reply | undefined)?.p50,
    failCodes: lastFail.codes,
    firstAttempt,
    rehomeWindowMs: windowMs,
    registeredMs,
    refusals: rehomed.reduce((a, r) => a + Number(r.refusals), 0),
    routableAfterRehomeMs: routableMs,
    viewsExactAfterRehomeMs: exactMs,
    totalMs: performance.now() - killedAt,
  };
}
