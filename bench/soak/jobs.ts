/**
 * The jobs fault soak (issue 19): for several minutes, jobs and routed
 * requests keep flowing through a cluster of masters while slave processes,
 * masters and nats-server are killed (SIGKILL), frozen (SIGSTOP) and
 * restarted at random; then an invariant check over every command issued:
 * each was run at most once, each "ok" was run exactly once, and each has a
 * result (none silently missing).
 *
 *   npm run soak:jobs -- [--minutes 3] [--masters 3] [--slave-procs 4] [--per-proc 10] [--seed 1] [--quick]
 *
 * Runs are counted from the slave processes' own stdout ("command" lines,
 * printed once per run with the command_id; pipes are written synchronously
 * on Linux, so a line printed before a SIGKILL is not lost). Slaves keep a
 * command journal on disk, so a restarted process runs no command twice.
 * Jobs are issued two ways: by a driver master in this process, a member of
 * the cluster that is never killed (its routed calls and kept commands go
 * through the masters that are), and through AdminService.Run to a master
 * that may be killed or frozen the next moment (the client reads only the
 * job's id, then leaves it running). The fate of those is read at the end
 * from the cluster's shared job store (JetStream) through the driver.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { AdminClient } from "../../src/admin-client.js";
import { type Job, type JobRecord, Master, silentLogger } from "../../src/index.js";
import { freePort, waitForTcp } from "../../test/support/net.js";
import { type NodeProcess, spawnNode, stopAll } from "../../test/support/node-process.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CLI = join(ROOT, "bin/netsync.js");
const FIXTURE = join(ROOT, "test/fixtures/slaves.ts");

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "3" },
    masters: { type: "string", default: "3" },
    "slave-procs": { type: "string", default: "4" },
    "per-proc": { type: "string", default: "10" },
    seed: { type: "string", default: String(Date.now() % 100_000) },
    quick: { type: "boolean", default: false },
  },
  strict: true,
});

const durationMs = values.quick ? 30_000 : Number(values.minutes) * 60_000;
const MASTERS = Number(values.masters);
const SLAVE_PROCS = Number(values["slave-procs"]);
const PER_PROC = Number(values["per-proc"]);
const DELIVER_WITHIN = 20_000;
const JOB_TIMEOUT = 5_000;

// A small seeded generator, so a run that finds a violation can be repeated with --seed.
let state = Number(values.seed) >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 2 ** 32;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (line: string) => process.stdout.write(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}\n`);
const t0 = performance.now();

// --- the parts, each restartable on the same port / store -------------------------------

const dir = mkdtempSync(join(tmpdir(), "netsync-soak-"));
const natsPort = await freePort();
const natsUrl = `nats://127.0.0.1:${natsPort}`;
let nats: ReturnType<typeof spawn> | undefined;

async function startNats(): Promise<void> {
  nats = spawn("nats-server", ["-js", "-sd", join(dir, "js"), "-a", "127.0.0.1", "-p", String(natsPort)], { stdio: "ignore" });
  await waitForTcp(natsPort, 10_000);
}

interface Part {
  name: string;
  proc: NodeProcess | undefined;
  /** Every life of the process, for the run count. */
  lives: NodeProcess[];
  start(): NodeProcess;
  down: boolean;
  stopped: boolean;
}

const masterPorts: number[] = [];
for (let i = 0; i < MASTERS; i++) masterPorts.push(await freePort());
const masterAddresses = masterPorts.map((port) => `127.0.0.1:${port}`);

const masters: Part[] = masterPorts.map((port, i) => ({
  name: `m${i}`,
  proc: undefined,
  lives: [],
  down: true,
  stopped: false,
  start: () =>
    spawnNode(
      [
        CLI,
        "master",
        "--port",
        String(port),
        "--name",
        `m${i}`,
        "--cluster",
        natsUrl,
        "--heartbeat-interval",
        "500ms",
        "--heartbeat-timeout",
        "2s",
        "--log-level",
        "warn",
      ],
      { NETSYNC_LOG_FORMAT: "" },
    ),
}));

const slaveIds: string[] = [];
const slaves: Part[] = [];
for (let p = 0; p < SLAVE_PROCS; p++) {
  for (let i = 0; i < PER_PROC; i++) slaveIds.push(`s${p}-${i}`);
  slaves.push({
    name: `s${p}`,
    proc: undefined,
    lives: [],
    down: true,
    stopped: false,
    start: () =>
      spawnNode([
        "--import",
        "tsx",
        FIXTURE,
        "--master",
        masterAddresses.join(","),
        "--count",
        String(PER_PROC),
        "--prefix",
        `s${p}`,
        "--master-timeout",
        "2000",
        "--backoff-max",
        "1000",
        "--hold-ms",
        "50",
        "--command-journal",
        join(dir, `journal-s${p}`),
      ]),
  });
}

function up(part: Part): void {
  const proc = part.start();
  part.proc = proc;
  part.lives.push(proc);
  part.down = false;
  part.stopped = false;
}

// --- chaos -----------------------------------------------------------------------

const actions: Record<string, number> = {};
const count = (action: string) => {
  actions[action] = (actions[action] ?? 0) + 1;
};

async function chaosStep(): Promise<void> {
  const roll = random();
  if (roll < 0.35) {
    const part = pick(slaves);
    if (part.down || part.stopped) return;
    part.proc?.signal("SIGKILL");
    part.down = true;
    count("slave SIGKILL");
    setTimeout(() => up(part), 500 + random() * 2_500);
  } else if (roll < 0.6) {
    const part = pick(slaves);
    if (part.down || part.stopped) return;
    part.proc?.signal("SIGSTOP");
    part.stopped = true;
    count("slave SIGSTOP");
    setTimeout(
      () => {
        part.proc?.signal("SIGCONT");
        part.stopped = false;
      },
      1_000 + random() * 4_000,
    );
  } else if (roll < 0.78) {
    const part = pick(masters);
    if (part.down || part.stopped) return;
    if (masters.filter((m) => !m.down).length < 2) return;
    part.proc?.signal("SIGKILL");
    part.down = true;
    count("master SIGKILL");
    setTimeout(() => up(part), 1_000 + random() * 3_000);
  } else if (roll < 0.9) {
    const part = pick(masters);
    if (part.down || part.stopped) return;
    part.proc?.signal("SIGSTOP");
    part.stopped = true;
    count("master SIGSTOP");
    setTimeout(
      () => {
        part.proc?.signal("SIGCONT");
        part.stopped = false;
      },
      1_000 + random() * 3_000,
    );
  } else {
    if (!nats) return;
    const old = nats;
    nats = undefined;
    const exited = new Promise((resolve) => old.once("exit", resolve));
    old.kill("SIGKILL");
    await exited;
    count("nats-server SIGKILL + restart");
    await sleep(500 + random() * 1_500);
    await startNats();
  }
}

// --- the run -----------------------------------------------------------------------

interface Issued {
  kind: "job" | "remote job" | "request";
  /** The command's id (a job's id) or, for a routed request, its data token. */
  key: string;
  slaveIds: string[];
  job?: Job;
  /** A remote job as the shared store has it at the end. */
  record?: JobRecord;
  /** For a request: "ok" or the error code. */
  outcome?: string;
}

const issued: Issued[] = [];
/** Remote Run calls that failed before the job was accepted (the master was down, frozen, or refused it). */
let remoteRefused = 0;
let driver: Master | undefined;

async function main(): Promise<void> {
  await startNats();
  for (const part of masters) up(part);
  await Promise.all(masterPorts.map((port) => waitForTcp(port, 20_000)));
  for (const part of slaves) up(part);
  driver = new Master({ port: 0, name: "driver", logger: silentLogger(), cluster: { servers: [natsUrl] } });
  await driver.listen();
  log(`seed ${values.seed}; ${MASTERS} masters, ${slaveIds.length} slaves in ${SLAVE_PROCS} processes, nats ${natsUrl}`);
  // Let the fleet connect before the faults start.
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const view = await driver.fleet();
    if (view.slaves.length === slaveIds.length) break;
    await sleep(250);
  }

  const end = performance.now() + durationMs;
  let n = 0;
  const traffic = (async () => {
    while (performance.now() < end) {
      n++;
      const targets = [...new Set(Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(slaveIds)))];
      const roll = random();
      if (roll < 0.25) {
        const live = masters.filter((m) => !m.down && !m.stopped);
        const address = masterAddresses[masters.indexOf(pick(live.length > 0 ? live : masters))] as string;
        const client = new AdminClient(address);
        void (async () => {
          let accepted = false;
          try {
            for await (const event of client.run(`remote-${n}`, {
              ids: targets,
              timeout: JOB_TIMEOUT,
              deliverWithin: DELIVER_WITHIN,
              // A frozen master never answers: give up on it (the job, if it was accepted, runs on).
              signal: AbortSignal.timeout(5_000),
            })) {
              // Accepted: from here the job is the cluster's, whatever happens to that master.
              if (event.type === "started") {
                issued.push({ kind: "remote job", key: event.jobId, slaveIds: targets });
                accepted = true;
              }
              break;
            }
          } catch {
            // counted below
          } finally {
            if (!accepted) remoteRefused++;
            client.close();
          }
        })();
      } else if (roll < 0.8) {
        const job = await driver!
          .run(`job-${n}`, { ids: targets, timeout: JOB_TIMEOUT, deliverWithin: DELIVER_WITHIN })
          .catch((err: Error) => {
            log(`run refused: ${err.message}`);
            return undefined;
          });
        if (job) issued.push({ kind: "job", key: job.id, slaveIds: targets, job });
      } else {
        const slaveId = targets[0] as string;
        const entry: Issued = { kind: "request", key: `req-${n}`, slaveIds: [slaveId] };
        issued.push(entry);
        void driver!.requestReply(slaveId, `req-${n}`, { timeout: 3_000 }).then(
          () => (entry.outcome = "ok"),
          (err: { code?: number }) => (entry.outcome = `code ${err.code}`),
        );
      }
      await sleep(150 + random() * 150);
    }
  })();
  const chaos = (async () => {
    while (performance.now() < end) {
      await sleep(1_500 + random() * 2_000);
      if (performance.now() < end) await chaosStep();
    }
  })();
  await Promise.all([traffic, chaos]);
  log(
    `faults over (${Object.entries(actions)
      .map(([a, c]) => `${c} ${a}`)
      .join(", ")}); letting everything come back`,
  );
  for (const part of [...masters, ...slaves]) {
    if (part.stopped) part.proc?.signal("SIGCONT");
    part.stopped = false;
  }
  if (!nats) await startNats();
  await sleep(DELIVER_WITHIN + JOB_TIMEOUT + 5_000);
  // Past every job's last moment: the shared store has each remote job's final fate.
  for (const entry of issued) {
    if (entry.kind !== "remote job") continue;
    for (let attempt = 0; attempt < 5 && !entry.record; attempt++) {
      entry.record = await driver!.getJob(entry.key).catch(() => undefined);
      if (!entry.record) await sleep(1_000);
    }
  }
}

function check(): boolean {
  const runs = new Map<string, number>();
  for (const part of slaves) {
    for (const life of part.lives) {
      for (const line of life.lines) {
        if (line.type !== "command") continue;
        // A job's runs by its command_id; a routed request's by its data (its command_id is the router's own).
        for (const key of [`${line.id}\u0000${line.commandId}`, `${line.id}\u0000${line.data}`]) runs.set(key, (runs.get(key) ?? 0) + 1);
      }
    }
  }
  const statuses: Record<string, number> = {};
  const violations: string[] = [];
  const reasons: Record<string, number> = {};
  let commands = 0;
  let ranOnce = 0;
  let ranNever = 0;
  for (const entry of issued) {
    for (const slaveId of entry.slaveIds) {
      commands++;
      const ran = runs.get(`${slaveId}\u0000${entry.key}`) ?? 0;
      if (ran === 1) ranOnce++;
      if (ran === 0) ranNever++;
      let status: string;
      if (entry.kind === "remote job") {
        const result = entry.record?.results.find((r) => r.slaveId === slaveId);
        status = result ? `remote job ${result.status}` : entry.record ? "remote job MISSING" : "remote job NOT IN STORE";
        if (!result) violations.push(`remote job ${entry.key} on ${slaveId}: ${entry.record ? "no result" : "not in the job store"}`);
        if (result?.status === "ok" && ran !== 1) violations.push(`remote job ${entry.key} on ${slaveId}: ok but run ${ran} times`);
      } else if (entry.kind === "job") {
        const result = entry.job?.resultOf(slaveId);
        status = result ? `job ${result.status}` : "job MISSING";
        if (!result) violations.push(`job ${entry.key} on ${slaveId}: no result`);
        if (result?.status === "ok" && ran !== 1) violations.push(`job ${entry.key} on ${slaveId}: ok but run ${ran} times`);
        if (result?.status === "error" && !result.error?.includes("interrupted")) {
          violations.push(`job ${entry.key} on ${slaveId}: error ${result.error}`);
        }
      } else {
        status = `request ${entry.outcome ?? "MISSING"}`;
        if (!entry.outcome) violations.push(`request ${entry.key} to ${slaveId}: no outcome`);
        if (entry.outcome === "ok" && ran !== 1) violations.push(`request ${entry.key} to ${slaveId}: ok but run ${ran} times`);
      }
      const why = entry.kind === "job" ? entry.job?.resultOf(slaveId) : entry.record?.results.find((r) => r.slaveId === slaveId);
      if (why && why.status !== "ok") {
        // The reason without ids and numbers, so alike ones count together.
        const reason = `${why.status}: ${(why.error ?? "").replace(/"[^"]*"|\b[\w.-]*\d[\w.:-]*\b/g, "…").slice(0, 120)}`;
        reasons[reason] = (reasons[reason] ?? 0) + 1;
      }
      if (ran > 1) violations.push(`${entry.kind} ${entry.key} on ${slaveId}: RUN ${ran} TIMES`);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  }
  log(
    `faults: ${Object.entries(actions)
      .map(([a, c]) => `${c} ${a}`)
      .join(", ")}`,
  );
  const kinds = (kind: Issued["kind"]) => issued.filter((i) => i.kind === kind).length;
  log(
    `commands issued: ${commands} (${kinds("job")} jobs from the driver, ${kinds("remote job")} accepted by a killable master ` +
      `(${remoteRefused} Run calls failed before acceptance), ${kinds("request")} routed requests)`,
  );
  log(
    `fates: ${Object.entries(statuses)
      .sort()
      .map(([s, c]) => `${c} ${s}`)
      .join(", ")}`,
  );
  log(`runs: ${ranOnce} run once, ${ranNever} never run, ${commands - ranOnce - ranNever} run more than once`);
  for (const [reason, n] of Object.entries(reasons).sort((a, b) => b[1] - a[1])) log(`  ${n} × ${reason}`);
  for (const v of violations.slice(0, 20)) log(`VIOLATION ${v}`);
  log(
    violations.length === 0 ? "invariant holds: no command run twice, every ok run once, none missing" : `${violations.length} violations`,
  );
  return violations.length === 0;
}

let ok = false;
try {
  await main();
  ok = check();
} finally {
  await driver?.close();
  await stopAll();
  nats?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
