// Jobs in a cluster whose NATS has JetStream (nats-server -js): real nats-server, real masters (two of them child
// processes, SIGKILLed or SIGSTOPped), real slaves. Every handler counts its runs: a command delivered again (by
// another master, or after NATS came back) must run once.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { format } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import type { JobRecord, JobResult } from "../../src/index.js";
import type { Master } from "../../src/master.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, createSlave, gate, sleep, startSlave, track, waitFor, within } from "../helpers.js";
import { clusterMaster, FAST_CLUSTER, mastersConverged } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

const FIXTURE = fileURLToPath(new URL("./job-master.ts", import.meta.url));

/** Runs of each command, by "<slave>:<data>": a second run of one is a bug. */
class Runs {
  readonly counts = new Map<string, number>();
  handler(slaveId: string, work: (data: string) => Promise<string> | string = (data) => `${slaveId}:${data}`) {
    return async (command: { data: string }) => {
      const key = `${slaveId}:${command.data}`;
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
      return work(command.data);
    };
  }
  get twice(): string[] {
    return [...this.counts].filter(([, n]) => n > 1).map(([key, n]) => `${key} ×${n}`);
  }
}

function bySlave(results: readonly JobResult[]): Record<string, Pick<JobResult, "status" | "masterId"> & { data?: string }> {
  const out: Record<string, Pick<JobResult, "status" | "masterId"> & { data?: string }> = {};
  for (const r of results) out[r.slaveId] = { status: r.status, masterId: r.masterId, ...(r.data !== undefined ? { data: r.data } : {}) };
  return out;
}

async function jetstreamMasters(server: NatsServer, names: string[]): Promise<Master[]> {
  const masters = await Promise.all(names.map((name) => clusterMaster(name, [server.url])));
  await mastersConverged(masters, names);
  // Setup, not the behaviour under test: creating or binding the streams and the bucket once took over 5 s in CI.
  await waitFor(() => masters.every((m) => m.jobStore === "jetstream"), 15_000, "every master to keep jobs in JetStream");
  return masters;
}

/** A slave on `master` (by address) with a counting handler, registered when this resolves. */
async function countedSlave(
  runs: Runs,
  address: string,
  id: string,
  labels: Record<string, string> = {},
  work?: (data: string) => Promise<string> | string,
) {
  return startSlave(address, { id, labels, onCommand: runs.handler(id, work) });
}

/** Reads a job on `master` until `check` passes (results recorded by other masters take a moment to land). */
async function readJob(master: Master, jobId: string, check: (record: JobRecord) => boolean, timeoutMs = 5_000): Promise<JobRecord> {
  let last: JobRecord | undefined;
  await waitFor(
    async () => {
      last = await master.getJob(jobId);
      return last !== undefined && check(last);
    },
    timeoutMs,
    () => `job ${jobId} on ${master.id}: ${JSON.stringify(last?.results)}`,
  );
  return last as JobRecord;
}

/** Messages left in the pending stream: each kept command removed once delivered or expired. */
async function pendingMessages(server: NatsServer, cluster = "netsync"): Promise<number> {
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(`NETSYNC_${cluster}_JOB_PENDING`)).state.messages;
  } finally {
    await nc.close();
  }
}

interface JobMaster {
  child: ChildProcess;
  address: string;
  /** Starts a job on it; resolves with its id and targets. */
  run(data: string, options: object): Promise<{ jobId: string; targets: string[]; unanswered: string[] }>;
}

async function startJobMaster(name: string, servers: string[], cluster: object = {}): Promise<JobMaster> {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE], {
    env: { ...process.env, NETSYNC_TEST_MASTER: JSON.stringify({ name, servers, cluster: { ...FAST_CLUSTER, ...cluster } }) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  track(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
  });
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const wake = waiting.shift();
    if (wake) wake(line);
    else lines.push(line);
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} printed nothing within 15 s`)), 15_000);
      const take = (line: string) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      };
      const queued = lines.shift();
      if (queued !== undefined) take(queued);
      else waiting.push(take);
    });
  const ready = await next();
  return {
    child,
    address: String(ready.address),
    async run(data, options) {
      child.stdin!.write(`${JSON.stringify({ run: { data, options } })}\n`);
      const answer = await next();
      if (answer.error) throw new Error(String(answer.error));
      return answer as { jobId: string; targets: string[]; unanswered: string[] };
    },
  };
}

describe("jobs in a cluster with JetStream", function () {
  this.timeout(30_000);
  let server: NatsServer;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
  });
  beforeEach(async () => {
    server = new NatsServer({ jetstream: true });
    await server.start();
  });
  afterEach(async () => {
    await cleanup();
    await server.kill();
    server.removeStore();
  });

  it("(a, e) a selector is resolved on every master; each result names its master; a silent master is named; any master reads the job", async () => {
    const runs = new Runs();
    const [m1, m2, m3] = (await jetstreamMasters(server, ["m1", "m2", "m3"])) as [Master, Master, Master];
    // A fourth master, frozen below: still a member (its last beat is recent) but it answers nothing.
    const silent = await startJobMaster("silent", [server.url], { membershipInterval: 1_000 });
    await mastersConverged([m1, m2, m3], ["m1", "m2", "m3", "silent"]);
    await countedSlave(runs, m1.address, "db1", { role: "db" });
    await countedSlave(runs, m2.address, "db2", { role: "db" });
    await countedSlave(runs, m3.address, "db3", { role: "db" });
    await countedSlave(runs, m3.address, "web1", { role: "web" });
    await countedSlave(runs, silent.address, "db4", { role: "db" });
    await waitFor(() => m1.has("db1") && m2.has("db2") && m3.has("db3"), 3_000, "the slaves");
    await Promise.all([m1, m2, m3].map((m) => m.clusterFlush()));
    silent.child.kill("SIGSTOP");

    const job = await m2.run("uptime", { selector: "role=db", timeout: 2_000 });
    expect(job.targets).to.deep.equal(["db1", "db2", "db3"]);
    expect(job.unansweredMasters).to.deep.equal(["silent"]);
    const summary = await within(job.done, 5_000, "the job");
    expect(summary).to.include({ targets: 3, ok: 3, pending: 0 });
    expect(bySlave(job.record().results)).to.deep.equal({
      db1: { status: "ok", masterId: "m1", data: "db1:uptime" },
      db2: { status: "ok", masterId: "m2", data: "db2:uptime" },
      db3: { status: "ok", masterId: "m3", data: "db3:uptime" },
    });

    // (e) Another master reads it from the shared store: the same results, the same silent master named.
    expect(m3.job(job.id)).to.equal(undefined);
    const read = await readJob(m3, job.id, (r) => r.results.length === 3);
    expect(read).to.deep.include({ masterId: "m2", selector: "role=db", targets: ["db1", "db2", "db3"], unansweredMasters: ["silent"] });
    expect(bySlave(read.results)).to.deep.equal(bySlave(job.record().results));
    expect(read.summary).to.include({ ok: 3, pending: 0 });
    const listed = await m1.listJobs();
    expect(listed.map((r) => [r.id, r.masterId, r.summary.ok])).to.deep.include([job.id, "m2", 3]);
    // The same through AdminService GetJob and ListJobs of masters that did not start it.
    const viaAdmin = await adminClient(m1.address).getJob(job.id);
    expect(bySlave(viaAdmin.results)).to.deep.equal(bySlave(job.record().results));
    expect(viaAdmin.unansweredMasters).to.deep.equal(["silent"]);
    const listedViaAdmin = await adminClient(m3.address).listJobs();
    expect(listedViaAdmin.map((r) => [r.id, r.masterId, r.summary.ok])).to.deep.include([job.id, "m2", 3]);
    expect(runs.twice).to.deep.equal([]);
    expect(runs.counts.get("db4:uptime")).to.equal(undefined);
  });

  it("(b) deliverWithin: a target connected nowhere is kept in JetStream and delivered once by the master it connects to", async () => {
    const runs = new Runs();
    const [m1, m2] = (await jetstreamMasters(server, ["m1", "m2"])) as [Master, Master];
    const job = await m1.run("late work", { ids: ["late", "never"], timeout: 2_000, deliverWithin: 3_000 });
    await waitFor(() => m1.pendingDeliveries === 2, 3_000, "two commands kept");
    expect(await pendingMessages(server)).to.equal(2);
    await countedSlave(runs, m2.address, "late");
    const results = await within(job.done, 8_000, "the job").then(() => bySlave(job.record().results));
    expect(results.late).to.deep.equal({ status: "ok", masterId: "m2", data: "late:late work" });
    expect(results.never?.status).to.equal("expired");
    expect(job.record().results.find((r) => r.slaveId === "never")?.error).to.contain("not delivered within 3000 ms");
    expect(runs.counts.get("late:late work")).to.equal(1);
    expect(m1.pendingDeliveries).to.equal(0);
    await waitFor(async () => (await pendingMessages(server)) === 0, 2_000, "the pending stream emptied");
    const read = await readJob(m2, job.id, (r) => r.summary.pending === 0);
    expect(bySlave(read.results)).to.deep.equal(results);
  });

  it("(c) the accepting master SIGKILLed with commands pending and one running: slaves connecting later to survivors get them once; a survivor reads every result", async () => {
    const runs = new Runs();
    const [m1, m2] = (await jetstreamMasters(server, ["m1", "m2"])) as [Master, Master];
    const k = await startJobMaster("k", [server.url]);
    await mastersConverged([m1, m2], ["k", "m1", "m2"]);
    // Still running when k dies: m1, which holds it, records its reply.
    await countedSlave(runs, m1.address, "here", {}, async (data) => {
      await sleep(800);
      return `here:${data}`;
    });
    await waitFor(() => m1.has("here"), 2_000, "here");
    await m1.clusterFlush();
    const { jobId, targets } = await k.run("deploy", { ids: ["here", "p1", "p2", "p3"], timeout: 2_000, deliverWithin: 15_000 });
    expect(targets).to.deep.equal(["here", "p1", "p2", "p3"]);
    // The three others are kept; k dies while "here" still runs.
    await waitFor(async () => (await pendingMessages(server)) === 3, 3_000, "three commands kept");
    // k looks up who holds "here" before it sends: wait for it to be running, not merely kept.
    await waitFor(() => runs.counts.get("here:deploy") === 1, 1_000, "here running");
    k.child.kill("SIGKILL");
    await mastersConverged([m1, m2], ["m1", "m2"], 5_000);

    await countedSlave(runs, m1.address, "p1");
    await countedSlave(runs, m2.address, "p2");
    const read = await readJob(m2, jobId, (r) => r.results.length === 3);
    expect(read.masterId).to.equal("k");
    expect(bySlave(read.results)).to.deep.equal({
      here: { status: "ok", masterId: "m1", data: "here:deploy" },
      p1: { status: "ok", masterId: "m1", data: "p1:deploy" },
      p2: { status: "ok", masterId: "m2", data: "p2:deploy" },
    });
    expect(read.summary).to.include({ targets: 4, ok: 3, pending: 1 });
    // p3 reconnects to and fro: still one run.
    const p3 = await countedSlave(runs, m2.address, "p3");
    await readJob(m1, jobId, (r) => r.results.length === 4);
    await p3.close();
    await countedSlave(runs, m1.address, "p3");
    await sleep(300);
    expect((await m1.listJobs()).find((r) => r.id === jobId)?.summary).to.include({ ok: 4, pending: 0 });
    expect(await pendingMessages(server)).to.equal(0);
    expect(runs.twice).to.deep.equal([]);
    expect([...runs.counts.keys()].sort()).to.deep.equal(["here:deploy", "p1:deploy", "p2:deploy", "p3:deploy"]);
  });

  it("(c') a target never seen again: once the job's last moment passes, a survivor shows it as 'did not return'", async () => {
    const [m1] = (await jetstreamMasters(server, ["m1"])) as [Master];
    const k = await startJobMaster("k", [server.url]);
    const { jobId } = await k.run("x", { ids: ["ghost"], timeout: 300, deliverWithin: 500 });
    await waitFor(async () => (await pendingMessages(server)) === 1, 3_000, "the command kept");
    k.child.kill("SIGKILL");
    const running = await m1.getJob(jobId);
    expect(running?.summary).to.include({ targets: 1, pending: 1 });
    // deliverWithin 500 + timeout 300 + 5 s guard.
    const read = await readJob(m1, jobId, (r) => r.summary.pending === 0, 8_000);
    expect(read.results[0]).to.include({ slaveId: "ghost", status: "expired", masterId: "" });
    expect(read.results[0]?.error).to.match(/did not return: no result was recorded by .* master k/);
  });

  it("(d) NATS restarted mid-job on the same store: no command lost or run twice, and a job started during the outage waits for its record", async function () {
    this.timeout(40_000);
    const runs = new Runs();
    const [m1, m2] = (await jetstreamMasters(server, ["m1", "m2"])) as [Master, Master];
    const slow = (ms: number) => async (data: string) => {
      await sleep(ms);
      return `done ${data}`;
    };
    await countedSlave(runs, m1.address, "a", {}, slow(1_500));
    await countedSlave(runs, m2.address, "b", {}, slow(1_500));
    await waitFor(() => m1.has("a") && m2.has("b"), 2_000, "a and b");
    await Promise.all([m1.clusterFlush(), m2.clusterFlush()]);
    const job = await m1.run("mid", { ids: ["a", "b", "c"], timeout: 5_000, deliverWithin: 20_000 });
    await waitFor(
      () => runs.counts.has("a:mid") && runs.counts.has("b:mid") && m1.pendingDeliveries === 1,
      3_000,
      "a and b running, c kept",
    );
    expect(await pendingMessages(server)).to.equal(1);

    await server.kill("SIGKILL");
    await waitFor(() => m1.clusterState !== "connected" && m2.clusterState !== "connected", 3_000, "both masters to notice");
    // During the outage: c connects (its master cannot read what is kept), a job is asked for, a and b finish.
    await countedSlave(runs, m2.address, "c", {}, slow(0));
    let accepted = false;
    const starting = m1.run("during", { ids: ["a"], timeout: 5_000 }).then((job) => {
      accepted = true;
      return job;
    });
    await sleep(2_000);
    // Not accepted while its record cannot be stored: a master dying now would lose nothing anyone was told of.
    expect(accepted, "accepted before its record was stored").to.equal(false);
    await server.start();
    const during = await within(starting, 5_000, "the job asked for during the outage, once NATS is back");

    const summary = await within(job.done, 15_000, "the job");
    expect(summary).to.include({ targets: 3, ok: 3 });
    expect(bySlave(job.record().results)).to.deep.equal({
      a: { status: "ok", masterId: "m1", data: "done mid" },
      b: { status: "ok", masterId: "m2", data: "done mid" },
      c: { status: "ok", masterId: "m2", data: "done mid" },
    });
    expect(await within(during.done, 5_000, "the job started during the outage")).to.include({ ok: 1 });
    const readMid = await readJob(m2, job.id, (r) => r.results.length === 3, 10_000);
    expect(bySlave(readMid.results)).to.deep.equal(bySlave(job.record().results));
    const readDuring = await readJob(m2, during.id, (r) => r.results.length === 1, 10_000);
    expect(readDuring.results[0]).to.include({ slaveId: "a", status: "ok", masterId: "m1" });
    await waitFor(async () => (await pendingMessages(server)) === 0, 5_000, "the pending stream emptied");
    const deliveries = Object.fromEntries(job.record().results.map((r) => [r.slaveId, r.deliveries]));
    console.log(
      `      writes per target ${JSON.stringify(deliveries)} (b replied to m2 during the outage; m2 recorded it once NATS was back)`,
    );
    expect(runs.twice).to.deep.equal([]);
    expect(Object.fromEntries(runs.counts)).to.deep.equal({ "a:mid": 1, "b:mid": 1, "c:mid": 1, "a:during": 1 });
  });

  it("the master delivering a kept command SIGKILLed while it runs: the slave's next holder writes it again, and it runs once", async () => {
    const runs = new Runs();
    const [m1] = (await jetstreamMasters(server, ["m1"])) as [Master];
    const h = await startJobMaster("h", [server.url]);
    await mastersConverged([m1], ["h", "m1"]);
    const job = await m1.run("long", { ids: ["mover"], timeout: 5_000, deliverWithin: 15_000 });
    await waitFor(async () => (await pendingMessages(server)) === 1, 3_000, "the command kept");
    // The slave tries h first; h delivers the kept command and is killed while the handler runs.
    const started = gate();
    createSlave(h.address, {
      id: "mover",
      master: [h.address, m1.address],
      startAt: 0,
      masterTimeout: 1_000,
      backoff: { initial: 50, max: 200 },
      onCommand: runs.handler("mover", async (data) => {
        started.release();
        await sleep(1_500);
        return `moved ${data}`;
      }),
    });
    await within(started.promise, 5_000, "the first run");
    h.child.kill("SIGKILL");
    const summary = await within(job.done, 10_000, "the job");
    expect(summary).to.include({ ok: 1 });
    // h wrote it (the run began there), m1 wrote it again and recorded the result the slave's command log gave it (the
    // first run's). `deliveries` counts the writes the recording master knows of: h's died with h.
    const [result] = job.record().results;
    expect(result).to.include({ slaveId: "mover", status: "ok", masterId: "m1", data: "moved long" });
    expect(runs.counts.get("mover:long")).to.equal(1);
    await waitFor(async () => (await pendingMessages(server)) === 0, 2_000, "the pending stream emptied");
  });

  it("the server bounds what is kept per slave: the 101st command for one slave is refused with a clear expired result", async () => {
    const [m1] = (await jetstreamMasters(server, ["m1"])) as [Master];
    const jobs = [];
    for (let i = 0; i < 101; i++) jobs.push(await m1.run(`c${i}`, { ids: ["away"], deliverWithin: 60_000, timeout: 500 }));
    const last = jobs[100]!;
    const [result] = [...(await within(last.done, 3_000, "the refused one").then(() => last.record().results))];
    expect(result).to.include({ status: "expired" });
    expect(result?.error).to.contain("per-slave bound");
    await waitFor(() => m1.pendingDeliveries === 100, 3_000, "100 kept");
    expect(await pendingMessages(server)).to.equal(100);
  });

  it('jobStore "jetstream" on a NATS without it: jobs are refused with UNAVAILABLE, one error line; "memory" never asks', async () => {
    await server.kill();
    server.removeStore();
    server = new NatsServer();
    await server.start();
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
    const strict = await clusterMaster("strict", [server.url], { jobStore: "jetstream" }, { logger });
    const err = await strict.run("x", { ids: ["a"] }).then(
      () => undefined,
      (e: unknown) => e as { code: number; message: string },
    );
    expect(err?.code).to.equal(14);
    expect(err?.message).to.match(/jobStore "jetstream"/);
    await waitFor(() => lines.some((l) => /^error .*cannot open the cluster's JetStream job store/.test(l)), 3_000, "the error line");
    const quiet: string[] = [];
    const quietLogger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => quiet.push(`${o.type} ${format(...o.args)}`) }] });
    const memory = await clusterMaster("memory", [server.url], { jobStore: "memory" }, { logger: quietLogger });
    await mastersConverged([strict, memory], ["memory", "strict"]);
    expect(memory.jobStore).to.equal("memory");
    expect(quiet.filter((l) => /JetStream/.test(l))).to.deep.equal([]);
  });

  it("a cluster whose NATS has no JetStream keeps jobs in memory, says so once, and still delivers later across masters", async () => {
    await server.kill();
    server.removeStore();
    server = new NatsServer();
    await server.start();
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
    const m1 = await clusterMaster("m1", [server.url], {}, { logger });
    const m2 = await clusterMaster("m2", [server.url]);
    await mastersConverged([m1, m2], ["m1", "m2"]);
    await waitFor(() => lines.some((l) => /no usable JetStream/.test(l)), 3_000, "the warn line");
    expect(m1.jobStore).to.equal("memory");
    const runs = new Runs();
    const job = await m1.run("mem", { ids: ["later"], timeout: 1_000, deliverWithin: 5_000 });
    await countedSlave(runs, m2.address, "later");
    await within(job.done, 5_000, "the job");
    expect(bySlave(job.record().results)).to.deep.equal({ later: { status: "ok", masterId: "m2", data: "later:mem" } });
    expect(lines.filter((l) => /JetStream/.test(l))).to.have.length(1);
    expect(await m2.getJob(job.id)).to.equal(undefined);
  });
});
