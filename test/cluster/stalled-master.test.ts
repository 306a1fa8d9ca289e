// A master that stops answering while its TCP connection to NATS stays open: frozen (SIGSTOP), its event
// loop blocked for seconds, or its NATS link blackholed. Real processes on a nats-server with its default
// settings (it drops a silent client only after 2 × 2 min). Routed calls from a third master run through
// the whole episode: each must end within its deadline, be answered by the slave's live holder, never by
// the stalled master after it resumes, and no command may run twice, or run after its caller was told it
// failed.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { TcpProxy } from "../../src/cli/tcp-proxy.js";
import { codeName } from "../../src/code.js";
import { NetSyncError } from "../../src/errors.js";
import type { Master } from "../../src/master.js";
import { cleanup, createSlave, track, waitFor } from "../helpers.js";
import { percentile } from "./helpers.js";
import { clusterMaster, FAST_CLUSTER, mastersConverged, metric } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

const FIXTURE = fileURLToPath(new URL("./stallable-master.ts", import.meta.url));
/** A routed call's deadline (a request's timeout; a send waits the cluster's requestTimeout, the same here). */
const DEADLINE_MS = 3_000;
/** How far past its deadline a call may end: the event loop of this (test) process under load. */
const LATE_MS = 300;

interface StallableMaster {
  child: ChildProcess;
  address: string;
  metricsPort: number;
  /** Resolves with the next JSON line the child prints. */
  next(): Promise<Record<string, number | string>>;
}

async function startStallable(name: string, servers: string[], blockMs = 4_000): Promise<StallableMaster> {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE], {
    env: {
      ...process.env,
      NETSYNC_TEST_MASTER: JSON.stringify({ name, servers, cluster: { ...FAST_CLUSTER, requestTimeout: DEADLINE_MS } }),
      NETSYNC_TEST_BLOCK_MS: String(blockMs),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  track(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
  });
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const wake = waiting.shift();
    if (wake) wake(line);
    else lines.push(line);
  });
  const next = () =>
    new Promise<Record<string, number | string>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} printed nothing within 15 s`)), 15_000);
      const take = (line: string) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, number | string>);
      };
      const queued = lines.shift();
      if (queued !== undefined) take(queued);
      else waiting.push(take);
    });
  const ready = await next();
  return { child, address: String(ready.address), metricsPort: Number(ready.metricsPort), next };
}

/** One routed call and how it ended: the master that answered, or the error's code name. */
interface Call {
  id: string;
  data: string;
  kind: "send" | "request";
  started: number;
  ended: number;
  by?: string;
  error?: string;
  message?: string;
}

/** Slaves that record when each command reached them (performance.now()), by its data. */
function recordingSlaves(ids: string[], masters: string[], masterTimeout: number) {
  const delivered = new Map<string, number[]>();
  for (const id of ids) {
    createSlave(masters[0]!, {
      id,
      master: masters,
      startAt: 0,
      masterTimeout,
      backoff: { initial: 50, max: 200 },
      onCommand: (command) => {
        const times = delivered.get(command.data) ?? [];
        times.push(performance.now());
        delivered.set(command.data, times);
        return `echo:${command.data}`;
      },
    });
  }
  return delivered;
}

/** Routed calls from `from` to every slave, one after another per slave (sends and requests alternating), until stop(). */
function flood(from: Master, ids: string[]) {
  const calls: Call[] = [];
  let stopped = false;
  let n = 0;
  const worker = async (id: string) => {
    while (!stopped) {
      const kind = n % 2 === 0 ? "send" : "request";
      const data = `${id}#${n++}`;
      const started = performance.now();
      try {
        const by =
          kind === "send"
            ? (await from.routeSend(id, data)).masterId
            : (await from.routeRequest(id, data, { timeout: DEADLINE_MS })).masterId;
        calls.push({ id, data, kind, started, ended: performance.now(), by });
      } catch (err) {
        const error = NetSyncError.from(err);
        calls.push({ id, data, kind, started, ended: performance.now(), error: codeName(error.code), message: error.message });
      }
    }
  };
  const running = Promise.all(ids.map(worker));
  return {
    calls,
    async stop(): Promise<Call[]> {
      stopped = true;
      await running;
      return calls;
    },
  };
}

function summary(calls: Call[]): string {
  const times = calls.map((c) => c.ended - c.started).sort((a, b) => a - b);
  const by = new Map<string, number>();
  for (const c of calls) by.set(c.by ?? c.error!, (by.get(c.by ?? c.error!) ?? 0) + 1);
  return `${calls.length} calls, ${JSON.stringify(Object.fromEntries(by))}, p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms, max ${times.at(-1)?.toFixed(0)} ms`;
}

/** Every command ran at most once, and none after its caller was told it failed. */
function expectNoDoubleOrLateRun(calls: Call[], delivered: Map<string, number[]>): void {
  const doubled = [...delivered].filter(([, times]) => times.length > 1).map(([data]) => data);
  expect(doubled, "commands delivered twice").to.deep.equal([]);
  const ranAfterFailing = calls.filter((c) => c.error && (delivered.get(c.data)?.[0] ?? -1) > c.ended).map((c) => c.data);
  expect(ranAfterFailing, "commands that ran after their caller was told they failed").to.deep.equal([]);
  // A reply proves the slave ran it. (A send's "written" says the holder queued it on the slave's stream; a holder
  // that stalls before flushing loses it with the stream: only a job's result confirms a delivery.)
  const answeredNotRun = calls.filter((c) => c.kind === "request" && c.by && !delivered.has(c.data)).map((c) => c.data);
  expect(answeredNotRun, "requests answered whose command never ran").to.deep.equal([]);
}

describe("cluster: a stalled master swallows no routed call", function () {
  this.timeout(40_000);
  let server: NatsServer;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
  });
  beforeEach(async () => {
    server = new NatsServer();
    await server.start();
  });
  afterEach(async () => {
    await cleanup();
    await server.kill();
  });

  /**
   * m1 (its own process) holds 4 slaves that also know m2; m3 routes calls to them throughout. `stall`
   * stops m1 and returns a function that resumes it and resolves once it runs again.
   */
  async function episode(stall: (m1: StallableMaster) => Promise<() => Promise<void>>) {
    const m1 = await startStallable("m1", [server.url]);
    const [m2, m3] = (await Promise.all(["m2", "m3"].map((n) => clusterMaster(n, [server.url], { requestTimeout: DEADLINE_MS })))) as [
      Master,
      Master,
    ];
    await mastersConverged([m2, m3], ["m1", "m2", "m3"], 5_000);
    const ids = ["a", "b", "c", "d"];
    // Called for the first time during the stall: m3 knows no holder for them and looks them up while only m1 holds them.
    const unseen = ["e", "f"];
    // The slaves drop a silent master after 1 s and move to the next one they know.
    const delivered = recordingSlaves([...ids, ...unseen], [m1.address, m2.address], 1_000);
    await waitFor(
      () => m3.masters().find((m) => m.id === "m1")?.slavesHeld === ids.length + unseen.length,
      5_000,
      "m1 to hold every slave",
    );
    const load = flood(m3, ids);
    await waitFor(() => load.calls.filter((c) => c.by === "m1").length >= 40, 5_000, "calls answered by m1 before the stall");

    const stalledAt = performance.now();
    const resume = await stall(m1);
    const firstCalls = flood(m3, unseen);
    await waitFor(() => ids.every((id) => m2.has(id)), 5_000, "every slave re-homed to m2");
    const rehomedAt = performance.now();
    await waitFor(() => load.calls.filter((c) => c.started > rehomedAt).length >= 40, 5_000, "calls after the re-homing");
    // Every slave's calls reach m2 before m1 resumes: m3 heard each new claim (a call still waiting on m1 then would be a bug).
    await waitFor(
      () => ids.every((id) => load.calls.some((c) => c.id === id && c.by === "m2")),
      5_000,
      "a call to every slave answered by m2",
    );
    await resume();
    const resumedAt = performance.now();
    await waitFor(() => load.calls.filter((c) => c.started > resumedAt).length >= 80, 10_000, "calls after m1 resumed");
    const calls = [...(await load.stop()), ...(await firstCalls.stop())];
    const first = firstCalls.calls.filter((c) => c.started < rehomedAt);
    expect(first.length, "calls to unseen slaves started during the stall").to.be.at.least(unseen.length);

    const during = calls.filter((c) => c.ended > stalledAt && c.started < resumedAt);
    console.log(
      `      re-homed ${(rehomedAt - stalledAt).toFixed(0)} ms after the stall; during it: ${summary(during)}; ` +
        `after resuming: ${summary(calls.filter((c) => c.started > resumedAt))}; first calls to unseen slaves during it: ${summary(first)}; m1 refused ${await metric(m1.metricsPort, "netsync_cluster_route_late_total")} late`,
    );
    expect(
      calls.filter((c) => c.error).map((c) => `${c.data}: ${c.error} after ${(c.ended - c.started).toFixed(0)} ms (${c.message})`),
      "calls that failed",
    ).to.deep.equal([]);
    const slowest = Math.max(...calls.map((c) => c.ended - c.started));
    expect(slowest, "the slowest call").to.be.below(DEADLINE_MS + LATE_MS);
    expect(
      calls.filter((c) => c.ended > resumedAt && c.by === "m1").map((c) => c.data),
      "calls answered by m1 after it resumed",
    ).to.deep.equal([]);
    expect(
      calls.filter((c) => c.started > rehomedAt && c.by !== "m2").map((c) => c.data),
      "calls after the re-homing not answered by m2",
    ).to.deep.equal([]);
    expectNoDoubleOrLateRun(calls, delivered);
    // m1 learned it lost its slaves (their newer claims) and let go of them.
    await waitFor(() => (m3.masters().find((m) => m.id === "m1")?.slavesHeld ?? -1) === 0, 5_000, "m1 to hold no slave");
  }

  it("frozen (SIGSTOP) while its slaves re-home: every call is answered by the live holder within its deadline", async () => {
    await episode(async (m1) => {
      m1.child.kill("SIGSTOP");
      return async () => {
        m1.child.kill("SIGCONT");
      };
    });
  });

  it("its event loop blocked for 4 s while its slaves re-home: the same, and nothing runs late when it wakes", async () => {
    await episode(async (m1) => {
      const unblocked = m1.next();
      m1.child.kill("SIGUSR2");
      return async () => {
        const { unblocked: ms } = await unblocked;
        expect(Number(ms)).to.be.at.least(3_900);
      };
    });
  });

  it("a job's batch to a holder frozen as it went out: the slaves re-home and each command runs once, on the live holder; none late on the frozen one", async () => {
    const m1 = await startStallable("m1", [server.url]);
    const [m2, m3] = (await Promise.all(
      ["m2", "m3"].map((n) => clusterMaster(n, [server.url], { requestTimeout: DEADLINE_MS }, { metricsPort: 0 })),
    )) as [Master, Master];
    await mastersConverged([m2, m3], ["m1", "m2", "m3"], 5_000);
    const ids = ["a", "b", "c", "d"];
    const delivered = recordingSlaves(ids, [m1.address, m2.address], 1_000);
    await waitFor(() => m3.masters().find((m) => m.id === "m1")?.slavesHeld === ids.length, 5_000, "m1 to hold every slave");
    // The listing teaches m3 that m1 holds them: the job's commands go to m1 as one batch.
    const warm = await m3.run("warm", { selector: "", timeout: DEADLINE_MS });
    expect((await warm.done).ok).to.equal(ids.length);
    const batches = await metric(m3.metricsPort!, "netsync_cluster_job_batches_total");

    m1.child.kill("SIGSTOP");
    const started = performance.now();
    const job = await m3.run("job", { ids, timeout: DEADLINE_MS });
    const summary = await job.done;
    const took = performance.now() - started;
    expect(await metric(m3.metricsPort!, "netsync_cluster_job_batches_total"), "batches sent").to.be.greaterThan(batches);
    expect(
      job
        .record()
        .results.map((r) => `${r.slaveId}: ${r.status}@${r.masterId}`)
        .sort(),
      "every command answered on m2, where the slaves went",
    ).to.deep.equal(ids.map((id) => `${id}: ok@m2`));
    expect(took, "the job's time").to.be.below(DEADLINE_MS + 2 * LATE_MS);
    m1.child.kill("SIGCONT");
    // m1 wakes with the batch in its backlog, behind the claims of m2 that took its slaves: it writes to none of them.
    await waitFor(() => (m3.masters().find((m) => m.id === "m1")?.slavesHeld ?? -1) === 0, 5_000, "m1 to hold no slave");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(delivered.get("job")?.length, "runs of the job's command (one per slave)").to.equal(ids.length);
    expect(summary).to.include({ ok: ids.length });
  });

  it("cut from NATS by a blackholed link while its slaves stay: calls end by their deadline, none runs late, all reach it again after", async () => {
    const proxy = new TcpProxy({ host: "127.0.0.1", port: server.port });
    const proxyPort = await proxy.listen();
    track(() => proxy.close());
    const m1 = await startStallable("m1", [`nats://127.0.0.1:${proxyPort}`]);
    const m3 = await clusterMaster("m3", [server.url], { requestTimeout: DEADLINE_MS });
    await mastersConverged([m3], ["m1", "m3"], 5_000);
    const ids = ["a", "b"];
    // Slaves that know only m1 and tolerate its silence: it stays their live master, only NATS cannot reach it.
    const delivered = recordingSlaves(ids, [m1.address], 30_000);
    await waitFor(() => m3.masters().find((m) => m.id === "m1")?.slavesHeld === ids.length, 5_000, "m1 to hold both slaves");
    const load = flood(m3, ids);
    await waitFor(() => load.calls.filter((c) => c.by === "m1").length >= 20, 5_000, "calls answered by m1 before the cut");

    proxy.freeze({ newConnections: true });
    const cutAt = performance.now();
    await waitFor(() => load.calls.filter((c) => c.started > cutAt + 1_000 && c.error).length >= 4, 15_000, "calls failing during the cut");
    proxy.thaw();
    const thawedAt = performance.now();
    await waitFor(() => load.calls.filter((c) => c.started > thawedAt && c.by === "m1").length >= 20, 20_000, "calls answered by m1 again");
    const healedAt = load.calls.find((c) => c.started > thawedAt && c.by === "m1")!.ended;
    const calls = await load.stop();

    const during = calls.filter((c) => c.ended > cutAt && c.started < thawedAt);
    console.log(
      `      during the cut: ${summary(during)}; answered by m1 again ${(healedAt - thawedAt).toFixed(0)} ms after the thaw; ` +
        `m1 refused ${await metric(m1.metricsPort, "netsync_cluster_route_late_total")} late`,
    );
    expect(Math.max(...calls.map((c) => c.ended - c.started)), "the slowest call").to.be.below(DEADLINE_MS + LATE_MS);
    expect(
      [...new Set(during.filter((c) => c.error).map((c) => c.error))].every((e) => e === "DEADLINE_EXCEEDED" || e === "UNAVAILABLE"),
      "errors during the cut say the holder cannot be reached",
    ).to.equal(true);
    expect(
      calls.filter((c) => c.by && c.by !== "m1").map((c) => c.data),
      "calls answered by another master",
    ).to.deep.equal([]);
    expectNoDoubleOrLateRun(calls, delivered);
    // The slaves never left m1: the cut was between m1 and NATS only.
    await waitFor(() => m3.masters().find((m) => m.id === "m1")?.slavesHeld === ids.length, 5_000, "m1 to be back, holding both slaves");
  });
});
