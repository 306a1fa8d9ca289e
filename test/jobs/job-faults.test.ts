/**
 * Jobs through real faults of a slave process: frozen (SIGSTOP) past its
 * eviction and resumed, killed (SIGKILL) and started again with the same
 * id. With deliverWithin, each command reaches the slave once it is back and
 * runs once; runs are counted from the slave process's own "command" lines
 * (printed once per run; a repeat answered from the command log is not).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { Master } from "../../src/index.js";
import { cleanup, once, onceWhere, startMaster, within } from "../helpers.js";
import { type NodeProcess, spawnNode, stopAll } from "../support/node-process.js";

const FIXTURE = fileURLToPath(new URL("../fixtures/slaves.ts", import.meta.url));
/** A child that loads tsx and the sources can take seconds to start while other suites run. */
const BOOT_MS = 15_000;

function slaveProcess(master: Master, prefix: string, extra: string[] = []): NodeProcess {
  return spawnNode([
    "--import",
    "tsx",
    FIXTURE,
    "--master",
    master.address,
    "--prefix",
    prefix,
    "--master-timeout",
    "1000",
    "--backoff-max",
    "200",
    ...extra,
  ]);
}

/**
 * How many times the slave process ran the command of `jobId` (its command
 * lines, over every life of the process), once its line arrived: the reply
 * may come over gRPC before the line comes over the pipe.
 */
async function runs(processes: NodeProcess[], jobId: string): Promise<number> {
  const isRun = (line: Record<string, unknown>) => line.type === "command" && line.commandId === jobId;
  const last = processes[processes.length - 1] as NodeProcess;
  await Promise.any(processes.map((p) => p.line(isRun, 5_000, `the run of ${jobId}`))).catch(() => last.output());
  return processes.flatMap((p) => p.lines).filter(isRun).length;
}

describe("jobs through slave faults (real processes, SIGSTOP and SIGKILL)", function () {
  this.timeout(40_000);
  afterEach(async () => {
    await stopAll();
    await cleanup();
  });

  it("a slave frozen past its eviction gets its commands once it resumes, each run once", async () => {
    const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 300 });
    const proc = slaveProcess(master, "frozen");
    await onceWhere(master, "slave:connected", (e) => e.slave.id === "frozen-0", BOOT_MS);
    proc.signal("SIGSTOP");
    // Written to the frozen stream: no reply, then the eviction ends the stream and the command is kept.
    const inFlight = await master.run("first", { ids: ["frozen-0"], timeout: 5_000, deliverWithin: 20_000 });
    await onceWhere(master, "slave:evicted", (e) => e.slave.id === "frozen-0", 5_000);
    // Issued while the slave is gone: kept from the start.
    const whileGone = await master.run("second", { ids: ["frozen-0"], timeout: 5_000, deliverWithin: 20_000 });
    expect(master.pendingDeliveries).to.be.greaterThanOrEqual(1);
    proc.signal("SIGCONT");
    const [a, b] = await within(Promise.all([inFlight.done, whileGone.done]), 15_000, "both jobs");
    expect(a).to.include({ ok: 1 });
    expect(b).to.include({ ok: 1 });
    expect(await runs([proc], inFlight.id), "runs of the in-flight command").to.equal(1);
    expect(await runs([proc], whileGone.id), "runs of the command issued while gone").to.equal(1);
    // Written once to the frozen stream, once more to the new one: the second was answered from the command log.
    expect(inFlight.resultOf("frozen-0")?.deliveries).to.equal(2);
    expect(master.pendingDeliveries).to.equal(0);
  });

  it("a slave killed and started again with the same id gets its pending commands once, in order", async () => {
    const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 300 });
    const first = slaveProcess(master, "killed");
    await onceWhere(master, "slave:connected", (e) => e.slave.id === "killed-0", BOOT_MS);
    const gone = once(master, "slave:disconnected", 5_000);
    first.signal("SIGKILL");
    await gone;
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await master.run(`c${i}`, { ids: ["killed-0"], timeout: 5_000, deliverWithin: 30_000 }));
    expect(master.pendingDeliveries).to.equal(3);
    const second = slaveProcess(master, "killed");
    const summaries = await within(Promise.all(jobs.map((j) => j.done)), BOOT_MS + 5_000, "the three jobs");
    for (const summary of summaries) expect(summary).to.include({ ok: 1, targets: 1 });
    for (const job of jobs) expect(await runs([first, second], job.id), `runs of ${job.id}`).to.equal(1);
    const order = second.lines.filter((l) => l.type === "command").map((l) => l.data);
    expect(order).to.deep.equal(["c0", "c1", "c2"]);
  });
});

describe("a slave's command journal through SIGKILL (real processes)", function () {
  this.timeout(40_000);
  afterEach(async () => {
    await stopAll();
    await cleanup();
  });

  it("a command running when the slave was killed is not run again after the restart: its repeat is answered 'interrupted'", async () => {
    const dir = mkdtempSync(join(tmpdir(), "netsync-journal-"));
    const journal = join(dir, "commands.jsonl");
    const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 300 });
    const args = ["--hold-ms", "3000", "--command-journal", journal];
    const first = slaveProcess(master, "journaled", args);
    await onceWhere(master, "slave:connected", (e) => e.slave.id === "journaled-0", BOOT_MS);
    const job = await master.run("long", { ids: ["journaled-0"], timeout: 10_000, deliverWithin: 30_000 });
    await first.line((l) => l.type === "command" && l.commandId === job.id, 5_000, "the first run");
    first.signal("SIGKILL");
    const second = slaveProcess(master, "journaled", args);
    const summary = await within(job.done, BOOT_MS + 5_000, "the job");
    expect(summary).to.include({ error: 1 });
    expect(job.resultOf("journaled-0")?.error).to.contain("interrupted");
    expect(job.resultOf("journaled-0")?.deliveries).to.equal(2);
    expect(await runs([first, second], job.id)).to.equal(1);
    // A command the restarted process finishes is answered from the journal after a second restart.
    const done = await master.run("short", { ids: ["journaled-0"], timeout: 10_000 });
    expect(await within(done.done, 10_000, "the second job")).to.include({ ok: 1 });
    second.signal("SIGKILL");
    await second.exited;
    const third = slaveProcess(master, "journaled", args);
    await onceWhere(master, "slave:connected", (e) => e.slave.id === "journaled-0", BOOT_MS);
    const repeat = await master.requestReply("journaled-0", { data: "short", commandId: done.id }, { timeout: 10_000 });
    expect(repeat.result).to.deep.equal({ case: "data", value: "ran short" });
    expect(third.lines.filter((l) => l.type === "command")).to.have.length(0);
    rmSync(dir, { recursive: true, force: true });
  });
});
