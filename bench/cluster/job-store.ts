/**
 * What the cluster's JetStream job store costs NATS: one nats-server -js
 * (store on a temporary directory, monitoring on), the store of
 * src/cluster/jobs/ driven directly, N of each:
 *
 * 1. commands kept, one per slave (a job to N slaves connected nowhere);
 * 2. a reconnect storm's reads: which of N held slaves have something kept
 *    (the store's keptAmong), then what is kept for each (kept(), one direct
 *    get by subject each, plus one that finds nothing), then removing them;
 * 3. N results of one job, then reading the job back (GetJob on another master);
 * 4. the job's record with N targets in the KV bucket.
 *
 * Bytes and subjects from stream info, nats-server memory from /varz and
 * /proc (RSS), disk from the store directory.
 *
 *   node --import tsx bench/cluster/job-store.ts [--n 10000]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { JetStreamJobStore } from "../../src/cluster/jobs/jetstream-store.js";
import { JOB_DEFAULTS } from "../../src/defaults.js";
import type { JobSpec } from "../../src/jobs/job.js";
import type { KeptCommand } from "../../src/jobs/store.js";
import { silentLogger } from "../../src/logger.js";

const args = process.argv.slice(2);
const N = Number(args[args.indexOf("--n") + 1] || 10_000) || 10_000;
const BATCH = 1_000;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startNats(): Promise<{ proc: ChildProcess; url: string; monitor: string; dir: string }> {
  const [port, mport] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "netsync-jobstore-"));
  const proc = spawn("nats-server", ["-js", "-sd", dir, "-a", "127.0.0.1", "-p", String(port), "-m", String(mport)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    let log = "";
    proc.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes("Server is ready")) resolve();
    });
    proc.once("exit", (code) => reject(new Error(`nats-server exited with ${code}: ${log}`)));
  });
  proc.stderr!.resume();
  return { proc, url: `nats://127.0.0.1:${port}`, monitor: `http://127.0.0.1:${mport}`, dir };
}

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

async function varzMem(monitor: string): Promise<number> {
  return ((await (await fetch(`${monitor}/varz`)).json()) as { mem: number }).mem;
}

function diskBytes(dir: string): number {
  return Number(execFileSync("du", ["-sb", dir]).toString().split("\t")[0]);
}

async function settleMemory(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1_500));
}

async function inBatches<T>(items: T[], each: (item: T) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < items.length; i += BATCH) await Promise.all(items.slice(i, i + BATCH).map(each));
  return performance.now() - started;
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const nats = await startNats();
const nc = await connect({ servers: nats.url });
const jsm = await jetstreamManager(nc);
const store = await JetStreamJobStore.open(
  { nc, connected: true },
  {
    clusterName: "bench",
    pending: { perSlave: JOB_DEFAULTS.pending.perSlave, total: Math.max(JOB_DEFAULTS.pending.total, N) },
    retentionMs: JOB_DEFAULTS.cache.maxAgeMs,
    maxDeliverWithin: JOB_DEFAULTS.maxDeliverWithin,
    outbox: 10_000,
    log: silentLogger(),
  },
);
const { names } = store;
const pid = nats.proc.pid as number;
const rows: string[][] = [];
const row = (...cells: string[]) => rows.push(cells);

// The job: N targets, ids like real host names.
const targets = Array.from({ length: N }, (_, i) => `host-${String(i).padStart(6, "0")}.eu-west.example.com`);
const jobId = "20261202120000000-abcdef";
const spec: JobSpec = {
  id: jobId,
  masterId: "m1",
  data: "systemctl restart app",
  selector: "role=app",
  timeout: 10_000,
  deliverWithin: 600_000,
  targets,
  unansweredMasters: [],
  startedAt: new Date(),
};

await settleMemory();
let rss0 = rssBytes(pid);
let mem0 = await varzMem(nats.monitor);
let disk0 = diskBytes(nats.dir);

// 4. the record
let t = performance.now();
await store.record(spec);
const recordMs = performance.now() - t;
const kvState = (await jsm.streams.info(`KV_${names.bucket}`)).state;
row(
  "job record, N targets (KV)",
  `${fmt(kvState.messages)} values, ${fmt(kvState.bytes)} B`,
  `${fmt(kvState.bytes / N, 1)} B per target`,
  `${fmt(recordMs)} ms`,
);

// 1. kept commands
const kept: KeptCommand[] = targets.map((slaveId) => ({
  jobId,
  slaveId,
  expiresAt: Date.now() + 600_000,
  deliveries: 0,
  startedAt: spec.startedAt.getTime(),
}));
const keepMs = await inBatches(kept, async (c) => {
  const refused = await store.keep(c);
  if (refused) throw new Error(refused);
});
await settleMemory();
const pending = (await jsm.streams.info(names.pendingStream)).state;
const rss1 = rssBytes(pid);
const mem1 = await varzMem(nats.monitor);
const disk1 = diskBytes(nats.dir);
row(
  "kept commands (pending stream)",
  `${fmt(pending.messages)} msgs, ${fmt(pending.num_subjects ?? 0)} subjects, ${fmt(pending.bytes)} B`,
  `${fmt(pending.bytes / N, 1)} B stored, ${fmt((rss1 - rss0) / N)} B RSS (${fmt((mem1 - mem0) / N)} B /varz mem), ${fmt((disk1 - disk0) / N)} B disk per command`,
  `${fmt(keepMs)} ms (${fmt(N / (keepMs / 1_000))}/s, ${BATCH} in flight)`,
);

// 2. a reconnect storm's reads
t = performance.now();
const withKept = await store.keptAmong(targets);
const amongMs = performance.now() - t;
row(
  "which held slaves have kept commands (keptAmong, N held)",
  `${fmt(withKept.length)} found`,
  "one stream info, then a subjects listing",
  `${fmt(amongMs)} ms`,
);
const readMs = await inBatches(targets, async (id) => {
  const commands = await store.kept(id);
  if (commands.length !== 1) throw new Error(`${id}: ${commands.length} kept`);
});
row(
  "what is kept for each of N slaves (kept(): 2 direct gets each)",
  `${fmt(2 * N)} direct gets`,
  `${fmt((readMs * 1_000) / N, 0)} µs per slave`,
  `${fmt(readMs)} ms (${fmt(N / (readMs / 1_000))} slaves/s)`,
);
const probeMs = await inBatches(
  targets.map((id) => `none-${id}`),
  async (id) => {
    if ((await store.kept(id)).length !== 0) throw new Error("found");
  },
);
row(
  "a slave with nothing kept (kept(): 1 direct get)",
  `${fmt(N)} direct gets`,
  `${fmt((probeMs * 1_000) / N)} µs each`,
  `${fmt(probeMs)} ms`,
);

// 3. results
rss0 = rssBytes(pid);
mem0 = await varzMem(nats.monitor);
disk0 = diskBytes(nats.dir);
const settleMs = await inBatches(targets, async (slaveId) => {
  const outcome = await store.settle(jobId, { slaveId, masterId: "m2", status: "ok", data: "active", latencyMs: 1234, deliveries: 1 });
  if (outcome !== "won") throw new Error(outcome);
});
const lost = await store.settle(jobId, { slaveId: targets[0] as string, masterId: "m3", status: "ok", latencyMs: 1, deliveries: 2 });
if (lost !== "lost") throw new Error(`a second result was ${lost}`);
await settleMemory();
const results = (await jsm.streams.info(names.resultsStream)).state;
const rss2 = rssBytes(pid);
const mem2 = await varzMem(nats.monitor);
const disk2 = diskBytes(nats.dir);
row(
  "results of one job (results stream)",
  `${fmt(results.messages)} msgs, ${fmt(results.num_subjects ?? 0)} subjects, ${fmt(results.bytes)} B`,
  `${fmt(results.bytes / N, 1)} B stored, ${fmt((rss2 - rss0) / N)} B RSS (${fmt((mem2 - mem0) / N)} B /varz mem), ${fmt((disk2 - disk0) / N)} B disk per result`,
  `${fmt(settleMs)} ms (${fmt(N / (settleMs / 1_000))}/s)`,
);
t = performance.now();
const read = await store.read(jobId);
const getJobMs = performance.now() - t;
if (read?.results.length !== N || read.spec.targets.length !== N) throw new Error(`read ${read?.results.length} results`);
row(
  "GetJob of that job on another master (read)",
  `${fmt(N)} results, ${fmt(N)} targets`,
  "KV gets + one ordered consumer, pulled 1,000 at a time",
  `${fmt(getJobMs)} ms`,
);

// removing the kept commands (after each delivery)
const removeMs = await inBatches(kept, async (c) => {
  if (!(await store.remove(c))) throw new Error("not removed");
});
const after = (await jsm.streams.info(names.pendingStream)).state;
row(
  "removing N kept commands (delete by sequence)",
  `${fmt(after.messages)} left`,
  "",
  `${fmt(removeMs)} ms (${fmt(N / (removeMs / 1_000))}/s)`,
);

console.log(`JetStream job store, N = ${fmt(N)}, nats-server ${nc.info?.version}, ${new Date().toISOString()}\n`);
console.log("| what | count | per item | time |");
console.log("| --- | --- | --- | --- |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);

await store.close();
await nc.close();
nats.proc.kill("SIGKILL");
rmSync(nats.dir, { recursive: true, force: true });
