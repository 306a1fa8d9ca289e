import { expect } from "chai";
import { summaryLine } from "../../../src/cli/commands/jobs.js";
import type { JobResult, JobSummary } from "../../../src/index.js";
import { CLI_TEST_ENV, killAllCli, runCli } from "../../cli-process.js";
import type { Exec } from "../../grpc-helpers.js";
import { cleanup, gate, RELAXED_HEARTBEAT, startMaster, startSlave, waitFor, within } from "../../helpers.js";

/** Runs the built CLI to completion (killed after `timeoutMs`); never rejects. */
async function cli(args: string[], timeoutMs = 10_000): Promise<Exec> {
  const run = runCli(args, CLI_TEST_ENV);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), timeoutMs);
  const { code } = await run.exit;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

const lines = (text: string) => text.trimEnd().split("\n");

/**
 * These tests start up to seven CLI processes at once on a 2-core machine, which starved the in-process
 * slaves long enough for the usual 100 ms timeout to evict one (w3 became not-connected instead of pending, once in CI).
 */
const RELAXED_MASTER = RELAXED_HEARTBEAT;
const RELAXED_SLAVE = { masterTimeout: RELAXED_HEARTBEAT.heartbeatTimeout };

/** A master with one slave that answers, one whose handler throws and one that never answers. */
async function fleet() {
  const master = await startMaster({ name: "cli-m", ...RELAXED_MASTER });
  const mute = gate();
  await startSlave(master.address, { id: "w1", labels: { role: "web" }, onCommand: (c) => `up ${c.data}`, ...RELAXED_SLAVE });
  await startSlave(master.address, {
    id: "w2",
    labels: { role: "web" },
    onCommand: () => {
      throw new Error("disk full");
    },
    ...RELAXED_SLAVE,
  });
  await startSlave(master.address, { id: "w3", labels: { role: "db" }, onCommand: () => mute.promise, ...RELAXED_SLAVE });
  return master;
}

describe("cli run, job, jobs", function () {
  this.timeout(20_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("run prints one line per slave as results come, then the summary; exit 1 unless every target answered ok", async () => {
    const master = await fleet();
    const [mixed, fine] = await Promise.all([
      cli(["run", "--master", master.address, "--to", "w1", "w2", "w3", "--to", "w7", "--data", "now", "--timeout", "500ms"]),
      cli(["run", "--master", master.address, "--to", "w1", "--data", "x"]),
    ]);
    expect(mixed.code, mixed.stderr).to.equal(1);
    expect(mixed.stderr, "nothing on stderr: the summary says it").to.equal("");
    const out = lines(mixed.stdout);
    expect(out).to.have.length(6);
    expect(out[0]).to.match(/^job \d{17}-[0-9a-f]{6} on 4 slaves via cli-m$/);
    const body = out.slice(1, 5);
    expect(body).to.include(`w7  not-connected         -  no slave with id "w7"`);
    expect(body.find((l) => l.startsWith("w1 "))).to.match(/^w1 {2}ok +\d+ ms {2}up now$/);
    expect(body.find((l) => l.startsWith("w2 "))).to.match(/^w2 {2}error +\d+ ms {2}.*disk full/);
    expect(body.find((l) => l.startsWith("w3 "))).to.match(/^w3 {2}timeout +\d+ ms {2}.*did not reply within 500 ms/);
    expect(body.at(-1), "the timeout comes last, as it came").to.match(/^w3 /);
    expect(out[5]).to.equal("1 ok, 1 error, 2 did not return: w3 (timed out), w7 (not connected)");

    expect(fine.code, fine.stderr).to.equal(0);
    expect(fine.stderr).to.equal("");
    const [, line, last] = lines(fine.stdout);
    expect(line).to.match(/^w1 {2}ok +\d+ ms {2}up x$/);
    expect(last).to.equal("1 ok");
  });

  it("run --json prints started, each result and the summary, one JSON object per line, and nothing else", async () => {
    const master = await fleet();
    const r = await cli(["run", "--master", master.address, "--all", "--data", "j", "--timeout", "400ms", "--json"]);
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr).to.equal("");
    const objects = lines(r.stdout).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(objects.map((o) => o.type)).to.deep.equal(["started", "result", "result", "result", "summary"]);
    const [started, ...rest] = objects;
    expect(started).to.deep.include({ masterId: "cli-m", targets: ["w1", "w2", "w3"], unansweredMasters: [] });
    const results = rest.slice(0, 3);
    for (const result of results)
      expect(Object.keys(result).sort()).to.deep.equal([
        "data",
        "deliveries",
        "error",
        "latencyMs",
        "masterId",
        "slaveId",
        "status",
        "type",
      ]);
    expect(results.find((o) => o.slaveId === "w1")).to.deep.include({
      status: "ok",
      data: "up j",
      error: null,
      masterId: "cli-m",
      deliveries: 1,
    });
    expect(results.find((o) => o.slaveId === "w2")).to.deep.include({ status: "error", data: null });
    expect(results.find((o) => o.slaveId === "w3")).to.deep.include({ status: "timeout" });
    const summary = objects.at(-1)!;
    expect(summary).to.deep.include({
      jobId: started!.jobId,
      targets: 3,
      ok: 1,
      error: 1,
      timeout: 1,
      notConnected: 0,
      expired: 0,
      pending: 0,
    });
    expect(summary.startedAt).to.be.a("number");
    expect(summary.finishedAt)
      .to.be.a("number")
      .at.least(summary.startedAt as number);
  });

  it("run lists at most 10 targets that did not return, then 'and N more'; a selector that matches none exits 1", async () => {
    const master = await startMaster();
    const ids = Array.from({ length: 25 }, (_, i) => `gone-${String(i).padStart(2, "0")}`);
    const [many, none] = await Promise.all([
      cli(["run", "--master", master.address, "--to", ...ids, "--data", "x"]),
      cli(["run", "--master", master.address, "--selector", "role=none", "--data", "x"]),
    ]);
    expect(many.code).to.equal(1);
    const listed = ids
      .slice(0, 10)
      .map((id) => `${id} (not connected)`)
      .join(", ");
    expect(lines(many.stdout).at(-1)).to.equal(`0 ok, 25 did not return: ${listed} and 15 more`);
    expect(none.code).to.equal(1);
    expect(lines(none.stdout)[0]).to.match(/^job \S+ on 0 slaves via /);
    expect(lines(none.stdout).at(-1)).to.equal("no targets: no slave matched, nothing ran");
  });

  it("run stops following on Ctrl-C and exits 130, naming the job, which runs on", async () => {
    const master = await startMaster();
    const slow = gate();
    await startSlave(master.address, { id: "slow", onCommand: () => slow.promise });
    const run = runCli(["run", "--master", master.address, "--to", "slow", "--data", "x", "--timeout", "30s"], CLI_TEST_ENV);
    const header = await run.waitForLine(/^job /);
    const jobId = header.split(" ")[1]!;
    await waitFor(() => master.job(jobId) !== undefined, 2_000, "the job");
    run.child.kill("SIGINT");
    const { code } = await within(run.exit, 5_000, "the CLI to exit");
    expect(code).to.equal(130);
    expect(run.stderr()).to.equal(`stopped following job ${jobId}; it runs on: netsync job ${jobId} shows it\n`);
    expect(master.job(jobId)?.finished).to.equal(false);
    slow.release("late");
    expect(await within(master.job(jobId)!.done, 2_000, "the job")).to.deep.include({ ok: 1 });
  });

  it("job ID shows one job (header, each result, pending targets, summary) and jobs lists them, as text and JSON", async () => {
    const master = await fleet();
    const first = await cli(["run", "--master", master.address, "--to", "w1", "w7", "--data", "first", "--json"]);
    const firstId = (JSON.parse(lines(first.stdout)[0]!) as { jobId: string }).jobId;
    // A job still running: w3 never answers within the 30 s timeout.
    const running = await master.run("second", { selector: "role=db", timeout: 30_000 });
    await waitFor(() => running.pending === 1, 2_000, "the running job");

    const [shown, shownJson, pending, listed, listedJson, limited, unknown] = await Promise.all([
      cli(["job", firstId, "--master", master.address]),
      cli(["job", firstId, "--master", master.address, "--json"]),
      cli(["job", running.id, "--master", master.address]),
      cli(["jobs", "--master", master.address]),
      cli(["jobs", "--master", master.address, "--json"]),
      cli(["jobs", "--master", master.address, "--limit", "1", "--json"]),
      cli(["job", "20200101000000000-000000", "--master", master.address]),
    ]);
    expect(shown.code, shown.stderr).to.equal(0);
    const text = lines(shown.stdout);
    expect(text[0]).to.equal(`job      ${firstId}`);
    expect(text[1]).to.equal("master   cli-m");
    expect(text[2]).to.match(/^started {2}\S+Z, finished after \d+(ms|s)$/);
    expect(text[3]).to.equal("data     first");
    expect(text[4]).to.equal("targets  2, timeout 10s");
    const [okLine, goneLine] = text.slice(6, 8).sort();
    expect(okLine).to.match(/^w1 +ok +\d+ ms {2}up first$/);
    expect(goneLine).to.equal(`w7  not-connected         -  no slave with id "w7"`);
    expect(text.at(-1)).to.equal("1 ok, 1 did not return: w7 (not connected)");

    expect(shownJson.code, shownJson.stderr).to.equal(0);
    const objects = lines(shownJson.stdout).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(objects.map((o) => o.type)).to.deep.equal(["job", "result", "result"]);
    expect(objects[0]).to.deep.include({
      id: firstId,
      masterId: "cli-m",
      data: "first",
      selector: "",
      timeoutMs: 10_000,
      deliverWithinMs: null,
      targets: ["w1", "w7"],
    });
    expect(objects[0]!.summary).to.deep.include({ targets: 2, ok: 1, notConnected: 1, pending: 0 });

    expect(pending.code, pending.stderr).to.equal(0);
    expect(lines(pending.stdout)).to.include.members(["targets  1 (selector role=db), timeout 30s", "w3  pending", "0 ok, 1 pending"]);
    expect(lines(pending.stdout)[2]).to.match(/, running$/);

    expect(listed.code, listed.stderr).to.equal(0);
    const table = lines(listed.stdout);
    expect(table[0]).to.match(/^JOB\s+STARTED\s+MASTER\s+TARGETS\s+OK\s+ERROR\s+NOT RETURNED\s+PENDING\s+DATA$/);
    expect(table.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal([running.id, firstId]);
    expect(table[1]).to.match(/\s1\s+0\s+0\s+0\s+1\s+second$/);
    expect(table[2]).to.match(/\s2\s+1\s+0\s+1\s+0\s+first$/);
    expect(lines(listedJson.stdout).map((l) => (JSON.parse(l) as { id: string }).id)).to.deep.equal([running.id, firstId]);
    expect(lines(limited.stdout).map((l) => (JSON.parse(l) as { id: string }).id)).to.deep.equal([running.id]);

    expect(unknown.code).to.equal(1);
    expect(unknown.stdout).to.equal("");
    expect(unknown.stderr).to.equal(
      `error: the master at ${master.address}: no job with id "20200101000000000-000000" (never run, or aged out of the job cache)\n`,
    );
  });

  for (const [name, args, message] of [
    [
      "no target",
      ["run", "--master", "127.0.0.1:1", "--data", "x"],
      /^error: say which slaves to run on: --to ID\.\.\., --selector SELECTOR or --all\n$/,
    ],
    [
      "--to with --all",
      ["run", "--master", "127.0.0.1:1", "--to", "a", "--all", "--data", "x"],
      /^error: option '--to <id\.\.\.>' cannot be used with option '--all'/,
    ],
    ["an empty --selector", ["run", "--master", "127.0.0.1:1", "--selector", "", "--data", "x"], /^error: --selector is empty/],
    ["no --data", ["run", "--master", "127.0.0.1:1", "--all"], /^error: required option '--data <data>' not specified/],
    [
      "--deliver-within over 10m",
      ["run", "--master", "127.0.0.1:1", "--all", "--data", "x", "--deliver-within", "11m"],
      /^error: --deliver-within 11m: at most 10m/,
    ],
    ["a --limit of 0", ["jobs", "--master", "127.0.0.1:1", "--limit", "0"], /^error: .*--limit.*integer from 1/],
    ["job without an id", ["job", "--master", "127.0.0.1:1"], /^error: missing required argument 'id'/],
  ] as const) {
    it(`refuses ${name} with exit 2 and one line`, async () => {
      const r = await cli([...args]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.equal("");
      expect(r.stderr.trim().split("\n")).to.have.length(1);
      expect(r.stderr).to.match(message);
    });
  }

  describe("the summary line", () => {
    const summary = (counts: Partial<JobSummary>): JobSummary => ({
      jobId: "j",
      targets: 0,
      ok: 0,
      error: 0,
      timeout: 0,
      notConnected: 0,
      expired: 0,
      pending: 0,
      startedAt: new Date(0),
      ...counts,
    });
    const result = (slaveId: string, status: JobResult["status"]): JobResult => ({
      slaveId,
      masterId: "",
      status,
      latencyMs: 0,
      deliveries: 0,
    });

    it("counts with thousands separators and names who did not return", () => {
      expect(summaryLine(summary({ targets: 10_000, ok: 9_998, error: 1, notConnected: 1 }), [result("w7", "not-connected")])).to.equal(
        "9,998 ok, 1 error, 1 did not return: w7 (not connected)",
      );
      expect(summaryLine(summary({ targets: 12_345, ok: 12_345 }), [])).to.equal("12,345 ok");
      expect(summaryLine(summary({ targets: 3, error: 3 }), [])).to.equal("0 ok, 3 errors");
    });

    it("names at most 10, in id order, then 'and N more'; pending ones are counted", () => {
      const gone = Array.from({ length: 1_234 }, (_, i) => result(`s${String(1_233 - i).padStart(4, "0")}`, i % 2 ? "timeout" : "expired"));
      const line = summaryLine(summary({ targets: 1_300, ok: 60, timeout: 617, expired: 617, pending: 6 }), gone);
      expect(line).to.equal(
        "60 ok, 1,234 did not return: s0000 (timed out), s0001 (expired), s0002 (timed out), s0003 (expired), s0004 (timed out), " +
          "s0005 (expired), s0006 (timed out), s0007 (expired), s0008 (timed out), s0009 (expired) and 1,224 more, 6 pending",
      );
    });
  });
});
