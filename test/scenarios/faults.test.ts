/**
 * Fault injection with real processes and real sockets: slaves killed or
 * frozen, a link that turns into a blackhole, a master killed and
 * restarted, a master whose event loop stalls, and connection churn.
 *
 * Timings are short (ping every 50 ms, timeout 200 ms) and tolerances are
 * honest for a loaded 2-core machine. Set NETSYNC_REPORT_TIMINGS=1 to print
 * the measured numbers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import { NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { TcpProxy } from "../../src/cli/tcp-proxy.js";
import { DEFAULTS, SLAVE_ID_METADATA_KEY, type SlaveEvent } from "../../src/index.js";
import { openBidi } from "../../src/internal.js";
import { CLI_BIN } from "../cli-process.js";
import {
  busyWait,
  cleanup,
  createSlave,
  once,
  onceWhere,
  pongsOf,
  recordEvents,
  sleep,
  startMaster,
  startSlave,
  track,
  waitFor,
} from "../helpers.js";
import { freePort } from "../support/net.js";

const Status = grpc.status;

const SLAVES_FIXTURE = fileURLToPath(new URL("../fixtures/slaves.ts", import.meta.url));

const INTERVAL = 50;
const TIMEOUT = 200;
/** Scheduler resolution (10 ms) + timer and event-loop jitter on a loaded 2-core box. */
const TOLERANCE = 100;
/** A child process that loads tsx and the sources can take seconds to start while other suites run. */
const BOOT_MS = 15_000;

const timings: string[] = [];
function report(line: string): void {
  timings.push(line);
}

/** Wall-clock ms with sub-ms precision, on the same basis as SlaveInfo dates and the fixture's `t`. */
const wallNow = () => performance.timeOrigin + performance.now();

// --- child processes ---------------------------------------------------------

interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  /** JSON lines printed by the fixture. */
  readonly events: Array<Record<string, unknown>>;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<{ match: RegExpMatchArray; at: number }>;
  readonly exit: Promise<number | null>;
}

const children = new Set<ChildProcess>();

function spawnNode(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, NETSYNC_LOG_LEVEL: "info", NETSYNC_LOG_FORMAT: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let output = "";
  let partial = "";
  const events: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      try {
        events.push(JSON.parse(line));
      } catch {
        // not a fixture line
      }
    }
    for (const w of Array.from(waiters)) w();
  });
  child.stderr!.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of Array.from(waiters)) w();
  });
  const exit = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    pid: child.pid!,
    output: () => output,
    events,
    exit,
    waitFor: (pattern, timeoutMs = BOOT_MS) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (!match) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve({ match, at: performance.now() });
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; output so far:\n${output}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

function spawnCli(args: string[]): Proc {
  return spawnNode([CLI_BIN, ...args]);
}

function spawnSlaves(master: string, count: number, prefix: string, masterTimeout: number): Proc {
  return spawnNode([
    "--import",
    "tsx",
    SLAVES_FIXTURE,
    "--master",
    master,
    "--count",
    String(count),
    "--prefix",
    prefix,
    "--master-timeout",
    String(masterTimeout),
  ]);
}

async function killAll(): Promise<void> {
  const exits: Array<Promise<unknown>> = [];
  for (const child of Array.from(children)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    exits.push(new Promise((resolve) => child.once("exit", resolve)));
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  }
  await Promise.all(exits);
}

// --- sockets -------------------------------------------------------------------

/**
 * Server-side ESTABLISHED TCP connections on `port`, from /proc/net/tcp{,6}. Read asynchronously: with
 * tens of thousands of sockets on the box (other suites, benchmarks) a synchronous read takes tens of
 * ms of kernel time and would stall the in-process master under test.
 */
async function establishedOn(port: number): Promise<number> {
  let count = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch {
      continue;
    }
    for (const row of text.split("\n")) {
      // "  sl  local_address rem_address   st ..." → e.g. "0100007F:C350 ... 01"
      const fields = row.trim().split(/\s+/, 4);
      const local = fields[1];
      if (fields[3] !== "01" || !local) continue;
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) count++;
    }
  }
  return count;
}

/**
 * A real GC for heap measurements: --expose-gc set at run time, the function
 * taken from a fresh context. Undefined if the runtime refuses.
 */
function exposeGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString("--expose-gc");
    const gc: unknown = vm.runInNewContext("gc");
    return typeof gc === "function" ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

function stats(values: number[]): { min: number; max: number; mean: number; stddev: number } {
  const min = Math.min(...values);
  const max = Math.max(...values);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const stddev = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  return { min, max, mean, stddev };
}

// --- the tests -------------------------------------------------------------------

describe("faults", function () {
  this.timeout(30_000);
  this.slow(5_000);

  afterEach(async () => {
    await killAll();
    await cleanup();
  });

  after(() => {
    if (process.env.NETSYNC_REPORT_TIMINGS) for (const line of timings) console.log(`      ${line}`);
  });

  it("a slave process killed with SIGKILL is 'disconnected' within 1 s", async () => {
    const master = await startMaster({ heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT });
    const events = recordEvents(master);
    const connected = onceWhere(master, "slave:connected", (e) => e.slave.id === "victim", BOOT_MS);
    const proc = spawnCli(["slave", "--master", master.address, "--id", "victim", "--master-timeout", "400ms"]);
    await connected;
    await waitFor(() => pongsOf(master, "victim") >= 2, 2_000, "2 pongs from the slave process");

    const gone = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "victim", 1_000);
    const killedAt = performance.now();
    proc.child.kill("SIGKILL");
    const [event] = await gone;
    const latency = performance.now() - killedAt;
    report(`SIGKILL slave: 'slave:disconnected' ${latency.toFixed(1)} ms after the kill (${event.details})`);

    expect(event.reason).to.equal("disconnected");
    expect(latency).to.be.below(1_000);
    expect(master.size).to.equal(0);
    expect(events.evicted, "no eviction").to.have.length(0);
  });

  it("a slave process frozen with SIGSTOP is evicted on time and its TCP connection closed", async () => {
    const master = await startMaster({ heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT });
    const events = recordEvents(master);
    await startSlave(master.address, { id: "alive", masterTimeout: 400 });
    const connected = onceWhere(master, "slave:connected", (e) => e.slave.id === "frozen", BOOT_MS);
    const proc = spawnCli(["slave", "--master", master.address, "--id", "frozen", "--master-timeout", "400ms"]);
    await connected;
    await waitFor(() => pongsOf(master, "frozen") >= 2 && pongsOf(master, "alive") >= 2, 2_000, "pongs from both slaves");
    let established = -1;
    await waitFor(
      async () => {
        established = await establishedOn(master.port);
        return established === 2;
      },
      2_000,
      () => `2 ESTABLISHED on the master port, got ${established}`,
      // Each check reads /proc/net/tcp{,6}: every 20 ms, not the default 5, so the reads do not load the master under test.
      20,
    );
    // Freeze mid-way between two pongs, so the measured latency is not helped by a pong in flight.
    const pongs = pongsOf(master, "frozen");
    await waitFor(() => pongsOf(master, "frozen") > pongs, 1_000, "another pong from the slave process");
    await sleep(INTERVAL / 2);

    const evicted = onceWhere(master, "slave:evicted", (e) => e.slave.id === "frozen", TIMEOUT + 1_000);
    proc.child.kill("SIGSTOP");
    const [event] = await evicted;
    const evictedAt = performance.now();
    const sinceLastSeen = wallNow() - event.slave.lastSeen.getTime();

    expect(event.details).to.contain("heartbeat timeout");
    expect(sinceLastSeen, "not before the timeout").to.be.at.least(TIMEOUT - 2);
    expect(sinceLastSeen, `evicted within ${TIMEOUT} + ${TOLERANCE} ms of lastSeen`).to.be.below(TIMEOUT + TOLERANCE);

    // The master resets the unread stream one timeout after the eviction; the idle timer (one timeout) then closes the connection.
    const bound = 3 * TIMEOUT + 400;
    await waitFor(
      async () => {
        established = await establishedOn(master.port);
        return established === 1;
      },
      bound,
      () => `the frozen slave's connection to close (${established} ESTABLISHED)`,
      20,
    );
    const closedAfter = performance.now() - evictedAt;
    report(
      `SIGSTOP slave: evicted ${sinceLastSeen.toFixed(1)} ms after lastSeen (${event.details}); ` +
        `master-side TCP closed ${closedAfter.toFixed(0)} ms after the eviction (bound ${bound})`,
    );

    const alivePongs = pongsOf(master, "alive");
    await waitFor(() => pongsOf(master, "alive") >= alivePongs + 2, 1_000, "the live slave to keep ponging");
    expect(events.evicted.map((e) => e.slave.id)).to.deep.equal(["frozen"]);
    expect(events.disconnected, "no disconnect").to.have.length(0);
    expect(master.slaves().map((s) => s.id)).to.deep.equal(["alive"]);
  });

  it("a blackholed link: the master evicts, the slave gives up on the stream and keeps trying, then reconnects after thaw", async () => {
    const masterTimeout = 400;
    const master = await startMaster({ heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT });
    const events = recordEvents(master);
    const proxy = new TcpProxy({ host: "127.0.0.1", port: master.port });
    const proxyPort = await proxy.listen();
    track(() => proxy.close());
    await startSlave(master.address, { id: "direct", masterTimeout });
    const slave = await startSlave(`127.0.0.1:${proxyPort}`, { id: "proxied", masterTimeout, backoff: { initial: 50, max: 200 } });
    await waitFor(() => pongsOf(master, "proxied") >= 2, 2_000, "pongs through the proxy");
    const disconnects: Array<{ reason: string; code: grpc.status | undefined }> = [];
    slave.on("disconnected", (e) => disconnects.push(e));
    // Mid-way between two pongs, for the reason given in the SIGSTOP test.
    const pongs = pongsOf(master, "proxied");
    await waitFor(() => pongsOf(master, "proxied") > pongs, 1_000, "another pong through the proxy");
    await sleep(INTERVAL / 2);

    const evicted = onceWhere(master, "slave:evicted", (e) => e.slave.id === "proxied", TIMEOUT + 1_000);
    const lost = once(slave, "disconnected", masterTimeout + 1_000);
    const frozenAt = performance.now();
    proxy.freeze({ newConnections: true });

    const [eviction] = await evicted;
    const evictedAfter = wallNow() - eviction.slave.lastSeen.getTime();
    expect(eviction.details).to.contain("heartbeat timeout");
    expect(evictedAfter)
      .to.be.at.least(TIMEOUT - 2)
      .and.below(TIMEOUT + TOLERANCE);

    const [{ code, reason }] = await lost;
    const lostAfter = performance.now() - frozenAt;
    expect(code).to.equal(Status.DEADLINE_EXCEEDED);
    expect(reason).to.contain("master silent");
    // The slave last heard a ping at most about one interval before the freeze.
    expect(lostAfter, "slave gave up on the stream")
      .to.be.at.least(masterTimeout - INTERVAL - 30)
      .and.below(masterTimeout + TOLERANCE);

    // It keeps dialling: every attempt is a new connection through the (frozen) proxy.
    await waitFor(
      () => proxy.upstreamConnections >= 3,
      2 * masterTimeout + 1_000,
      () => `2 more attempts (${proxy.upstreamConnections} connections)`,
    );
    expect(slave.state).to.be.oneOf(["connecting", "backoff"]);
    expect(master.slaves().map((s) => s.id)).to.deep.equal(["direct"]);

    const attempts = proxy.upstreamConnections - 1;
    const thawedAt = performance.now();
    const back = once(slave, "connected", masterTimeout + 200 + 1_000);
    proxy.thaw();
    await back;
    await waitFor(() => master.slaves().some((s) => s.id === "proxied"), 1_000, "the slave back in master.slaves()");
    const backAfter = performance.now() - thawedAt;
    await waitFor(() => pongsOf(master, "proxied") >= 1, 1_000, "a pong after the thaw");
    report(
      `blackhole: master evicted ${evictedAfter.toFixed(1)} ms after lastSeen; slave 'disconnected' (${Status[code!]}) ` +
        `${lostAfter.toFixed(0)} ms after the freeze (masterTimeout ${masterTimeout}); ${attempts} attempts during the blackhole; ` +
        `back in master.slaves() ${backAfter.toFixed(0)} ms after thaw`,
    );
    expect(disconnects, "one loss only").to.have.length(1);
    expect(events.evicted.map((e) => e.slave.id)).to.deep.equal(["proxied"]);
  });

  it("50 slaves reconnect, spread by jitter, to a master process killed with SIGKILL and restarted on the same port", async function () {
    this.timeout(45_000);
    const port = await freePort();
    const masterArgs = ["master", "--port", String(port), "--heartbeat-interval", "100ms", "--heartbeat-timeout", "400ms"];
    const first = spawnCli(masterArgs);
    await first.waitFor(/listening on/);

    const N = 50;
    const backoff = { initial: 100, max: 1_000 };
    const connects = new Map<string, number[]>();
    const losses = new Map<string, number[]>();
    for (let i = 0; i < N; i++) {
      const id = `fleet-${i}`;
      connects.set(id, []);
      losses.set(id, []);
      const slave = createSlave(`127.0.0.1:${port}`, { id, masterTimeout: 1_000, backoff });
      slave.on("connected", () => connects.get(id)!.push(performance.now()));
      slave.on("disconnected", () => losses.get(id)!.push(performance.now()));
    }
    const all = (map: Map<string, number[]>, n: number) => Array.from(map.values()).every((list) => list.length >= n);
    await waitFor(() => all(connects, 1), 10_000, "50 slaves to connect to the first master");
    await sleep(300); // a few ping rounds: every session heard from the master

    const killedAt = performance.now();
    first.child.kill("SIGKILL");
    await first.exit;
    await waitFor(() => all(losses, 1), 5_000, "50 slaves to lose the master");
    const lostWithin = Math.max(...Array.from(losses.values(), (l) => l[0]!)) - killedAt;

    const second = spawnCli(masterArgs);
    const { at: listeningAt } = await second.waitFor(/listening on/);
    const cap = backoff.max;
    const margin = 1_000;
    await waitFor(() => all(connects, 2), cap + margin, "all 50 slaves to reconnect");
    const reconnects = Array.from(connects.values(), (list) => list[1]! - listeningAt);
    const s = stats(reconnects);
    report(
      `master SIGKILL + restart: 50 slaves lost it within ${lostWithin.toFixed(0)} ms; down for ${(listeningAt - killedAt).toFixed(0)} ms; ` +
        `reconnected ${s.min.toFixed(0)}..${s.max.toFixed(0)} ms after 'listening' (mean ${s.mean.toFixed(0)}, stddev ${s.stddev.toFixed(0)})`,
    );

    expect(s.max, `every slave back within the backoff cap (${cap}) + ${margin} ms`).to.be.below(cap + margin);
    expect(s.max - s.min, "reconnects spread by jitter").to.be.above(100);
    expect(s.stddev, "not all at once").to.be.above(20);
    for (const list of losses.values()) expect(list, "one loss per slave").to.have.length(1);
    await second.waitFor(/slave fleet-49 connected/, 2_000);
  });

  /**
   * Stalls the (in-process) master for 3 × timeout while 5 fixture slaves
   * keep running in another process and a sixth, in a process of its own,
   * is SIGSTOPped halfway through the stall.
   */
  async function stall(serverOptions: grpc.ChannelOptions = {}) {
    const lines: LogObject[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o) => lines.push(o) }] });
    const master = await startMaster({ heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT, logger, serverOptions });
    const events = recordEvents(master);
    // Their masterTimeout (2 s) outlasts the stall; their timers run in another process.
    const fleet = spawnSlaves(master.address, 5, "live", 2_000);
    const loner = spawnSlaves(master.address, 1, "stopme", 2_000);
    const live = ["live-0", "live-1", "live-2", "live-3", "live-4"];
    const ids = [...live, "stopme-0"];
    await waitFor(() => ids.every((id) => pongsOf(master, id) >= 2), BOOT_MS, "pongs from the 6 fixture slaves");

    const block = 3 * TIMEOUT;
    busyWait(block / 2);
    loner.child.kill("SIGSTOP");
    busyWait(block / 2);
    const resumedAt = performance.now();

    let removedAfter = NaN;
    const removed = new Promise<SlaveEvent>((resolve) => {
      const on = (e: SlaveEvent) => {
        if (e.slave.id !== "stopme-0") return;
        removedAfter = performance.now() - resumedAt;
        resolve(e);
      };
      master.on("slave:evicted", on);
      master.on("slave:disconnected", on);
    });
    const pongs = Object.fromEntries(live.map((id) => [id, pongsOf(master, id)]));
    await sleep(2 * TIMEOUT);
    await waitFor(() => !Number.isNaN(removedAfter), TIMEOUT + 1_000, "the stopped slave to be removed");
    const removal = await removed;

    // The longest stall reported is ours; a loaded machine may add shorter ones of its own.
    const stallLag = (o: LogObject) => Number(String(o.args[0]).match(/stalled for (\d+) ms/)?.[1] ?? NaN);
    const stalled = lines.filter((o) => !Number.isNaN(stallLag(o))).sort((a, b) => stallLag(b) - stallLag(a))[0];
    const lag = stalled ? stallLag(stalled) : NaN;
    const liveLosses = [...events.evicted, ...events.disconnected].filter((e) => e.slave.id !== "stopme-0");
    report(
      `stall${Object.keys(serverOptions).length ? " (keepalive timeout 1 s)" : ""}: blocked ${block} ms, master logged "${stalled?.args[0]}"; ` +
        `live slaves lost: ${liveLosses.length}; the stopped slave left ${removedAfter.toFixed(1)} ms after the resume ` +
        `as '${removal.reason}' (${removal.details})`,
    );

    expect(stalled, "a warning about the stall").not.to.equal(undefined);
    expect(stalled!.type).to.equal("warn");
    expect(lag, "the reported stall").to.be.at.least(block - INTERVAL - 20);
    expect(
      liveLosses.map((e) => `${e.slave.id}: ${e.reason} ${e.details}`),
      "live slaves evicted or dropped",
    ).to.deep.equal([]);
    for (const id of live) expect(pongsOf(master, id), `${id} keeps ponging`).to.be.above(pongs[id]!);
    expect(
      fleet.events.filter((e) => e.type === "disconnected"),
      "fixture slaves lost nothing",
    ).to.have.length(0);
    // Only the stall is excused: the stopped slave's silence before the stall (up to one interval since its
    // last pong) still counts, so it leaves between timeout − interval and timeout after the resume.
    expect(removedAfter, "the stopped slave leaves within one timeout after the resume")
      .to.be.at.least(TIMEOUT - INTERVAL - 20)
      .and.below(TIMEOUT + TOLERANCE);
    return removal;
  }

  it("a master whose event loop stalls for 3 × timeout drops no live slave, reports the stall, and still removes one that froze meanwhile", async () => {
    await stall();
  });

  it("... and with transport keepalive out of the way, that frozen slave is evicted for heartbeat timeout", async () => {
    const removal = await stall({ "grpc.keepalive_timeout_ms": 1_000 });
    expect(removal.reason).to.equal("evicted");
    expect(removal.details).to.contain("heartbeat timeout");
  });

  // Keepalive's PING timeout is twice the heartbeat timeout, so even though both clocks restart when the
  // master resumes, the heartbeat deadline always comes first and the dead slave is counted as evicted.
  it("with default options, a slave frozen during a master stall is evicted (heartbeat timeout), not 'disconnected'", async () => {
    const removal = await stall();
    expect(removal.reason).to.equal("evicted");
    expect(removal.details).to.contain("heartbeat timeout");
  });

  it("5,000 connect/disconnect cycles leave no slave, no listener and no heap growth behind", async function () {
    this.timeout(40_000);
    const master = await startMaster({ heartbeatInterval: INTERVAL, heartbeatTimeout: 5_000 });
    let connected = 0;
    let disconnected = 0;
    const otherExits: string[] = [];
    const clientStatuses = new Map<string, number>();
    master.on("slave:connected", () => connected++);
    master.on("slave:disconnected", (e) => (e.reason === "disconnected" ? disconnected++ : otherExits.push(`${e.reason}: ${e.details}`)));
    master.on("slave:evicted", (e) => otherExits.push(`evicted: ${e.details}`));

    // One connection per cycle, as a slave reconnecting would make. Half the cycles cancel (RST_STREAM),
    // half half-close like Slave.close(). (Thousands of cancels on ONE shared connection trip nghttp2's
    // rapid-reset limit, which tears the whole connection down with INTERNAL_ERROR: not NetSync's doing.)
    let serial = 0;
    const cycle = async (): Promise<void> => {
      const n = serial++;
      const client = new grpc.Client(master.address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
      try {
        const metadata = new grpc.Metadata();
        metadata.set(SLAVE_ID_METADATA_KEY, `churn-${n}`);
        const call = openBidi(client, NetSyncService.method.sync, metadata);
        call.on("error", () => {});
        call.on("data", () => {});
        const status = new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve));
        const early = await Promise.race([new Promise<undefined>((resolve) => call.once("metadata", () => resolve(undefined))), status]);
        if (!early) {
          if (n % 2) call.cancel();
          else call.end();
        }
        const { code, details } = await status;
        const key = early ? `before headers: ${Status[code]} ${details}` : Status[code]!;
        clientStatuses.set(key, (clientStatuses.get(key) ?? 0) + 1);
      } finally {
        client.close();
      }
    };
    const BATCH = 50;
    const runCycles = async (n: number) => {
      for (let done = 0; done < n; done += BATCH) {
        await Promise.all(Array.from({ length: Math.min(BATCH, n - done) }, () => cycle()));
      }
    };
    const gc = exposeGc();
    const settle = async () => {
      await waitFor(() => master.size === 0 && disconnected + otherExits.length === connected, 5_000, "every stream to leave");
      await sleep(300);
      gc?.();
    };
    const PROCESS_EVENTS = ["exit", "beforeExit", "SIGINT", "SIGTERM", "uncaughtException", "unhandledRejection", "warning"] as const;
    const listeners = () => [
      ...PROCESS_EVENTS.map((e) => process.listenerCount(e)),
      ...(["slave:connected", "slave:evicted", "slave:disconnected", "command"] as const).map((e) => master.listenerCount(e)),
    ];

    await runCycles(500); // warm-up: JIT, buffers, the registry's closed history filling up
    await settle();
    const listenersBefore = listeners();
    const heapBefore = process.memoryUsage().heapUsed;
    const warm = connected;
    clientStatuses.clear();

    const started = performance.now();
    await runCycles(5_000);
    const elapsed = performance.now() - started;
    await settle();
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const heapBound = (gc ? 20 : 50) * 2 ** 20;
    report(
      `churn: 5000 cycles in ${(elapsed / 1000).toFixed(1)} s (${((5_000 / elapsed) * 1000).toFixed(0)}/s), client statuses ` +
        `${JSON.stringify(Object.fromEntries(clientStatuses))}; heap ${(heapGrowth / 2 ** 20).toFixed(1)} MiB after vs before ` +
        `(${gc ? "after a forced GC" : "no GC available"}, bound ${heapBound / 2 ** 20} MiB)`,
    );

    expect(otherExits, "every stream left as 'disconnected'").to.deep.equal([]);
    expect(connected - warm, "'slave:connected' events").to.equal(5_000);
    expect(disconnected - warm, "'slave:disconnected' events").to.equal(5_000);
    expect(Object.fromEntries(clientStatuses)).to.deep.equal({ OK: 2_500, CANCELLED: 2_500 });
    expect(master.slaves()).to.deep.equal([]);
    const scheduler = (master as unknown as { local: { heartbeat: { size: number } } }).local.heartbeat;
    expect(scheduler.size, "nobody left in the heartbeat scheduler").to.equal(0);
    expect(master.recentlyClosed().length, "closed history stays bounded").to.equal(DEFAULTS.historySize);
    expect(listeners(), "listener counts").to.deep.equal(listenersBefore);
    expect(heapGrowth, "heap growth").to.be.below(heapBound);
  });
});
