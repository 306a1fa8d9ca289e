import { expect } from "chai";
import { killAllCli, runCli } from "../../cli-process.js";
import type { Exec } from "../../grpc-helpers.js";
import { cleanup, startMaster, startSlave, waitFor } from "../../helpers.js";

/**
 * The environment in which consola's own heuristics would drop to warn. Unlike
 * runCli()'s default, it keeps the parent's NETSYNC_TOKEN.
 */
const TEST_ENV = { ...process.env, NODE_ENV: "test", CI: "true", NETSYNC_LOG_LEVEL: "", NETSYNC_LOG_FORMAT: "" };

/** Runs the CLI to completion (killed after `timeoutMs`); never rejects. */
async function cli(args: string[], timeoutMs = 8_000): Promise<Exec> {
  const run = runCli(args, TEST_ENV);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), timeoutMs);
  const { code } = await run.exit;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe("cli admin", function () {
  this.timeout(10_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  describe("CLI slaves and send", function () {
    this.timeout(15_000);

    it("lists slaves as a table and as JSON", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "cli-listed" });
      await waitFor(() => master.slaves().every((s) => s.rttMs !== undefined), 2_000, "a pong");
      const [tableRun, jsonRun] = await Promise.all([
        cli(["slaves", "--master", master.address]),
        cli(["slaves", "--master", master.address, "--json"]),
      ]);
      expect(tableRun.code, tableRun.stderr).to.equal(0);
      const lines = tableRun.stdout.trim().split("\n");
      expect(lines[0]).to.match(/^ID\s+MASTER\s+PEER\s+CONNECTED\s+LAST SEEN\s+RTT\s+PINGS\s+PONGS\s+LABELS$/);
      expect(lines).to.have.length(2);
      expect(lines[1]).to.match(/^cli-listed\s+\S+\s+127\.0\.0\.1:\d+\s+\S+\s+.* ago\s+\d+\.\d\d ms\s+\d+\s+\d+\s+-$/);

      expect(jsonRun.code, jsonRun.stderr).to.equal(0);
      // One object per line, in the shape of the dashboard's /api/slaves (slave-json.ts): ms numbers, not strings.
      const lines2 = jsonRun.stdout.trim().split("\n");
      expect(lines2).to.have.length(1);
      const slave = JSON.parse(lines2[0]!) as Record<string, unknown>;
      expect(Object.keys(slave).sort()).to.deep.equal([
        "commandsSent",
        "connectedAt",
        "id",
        "labels",
        "lastSeen",
        "masterId",
        "peer",
        "pingsSent",
        "pongsReceived",
        "rttMs",
      ]);
      expect(slave.id).to.equal("cli-listed");
      expect(slave.peer).to.match(/^127\.0\.0\.1:\d+$/);
      expect(slave.masterId).to.equal(master.address);
      const info = master.slaves()[0]!;
      expect(slave.connectedAt).to.equal(info.connectedAt.getTime());
      expect(slave.lastSeen).to.be.a("number").within(info.connectedAt.getTime(), Date.now());
      expect(slave.rttMs).to.be.a("number").above(0);
      expect(slave.pingsSent).to.be.a("number").at.least(1);
      expect(slave.pongsReceived).to.be.a("number").at.least(1);
    });

    it("sends with --wait, to --all, and fails on an unknown slave or a missing target", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "cli-echo", onCommand: (c) => `echo:${c.data}` });
      await startSlave(master.address, { id: "cli-other" });
      const [waited, all, ghost, missing] = await Promise.all([
        cli(["send", "--master", master.address, "--to", "cli-echo", "--wait", "ping me"]),
        cli(["send", "--master", master.address, "--all", "hello all"]),
        cli(["send", "--master", master.address, "--to", "ghost", "x"]),
        cli(["send", "--master", master.address, "x"]),
      ]);
      expect(waited.code, waited.stderr).to.equal(0);
      expect(waited.stdout).to.equal("echo:ping me\n");
      expect(waited.stderr, "no stderr chatter on success").to.equal("");
      expect(all.code, all.stderr).to.equal(0);
      expect(all.stdout).to.equal(`written to 2 slaves (${master.address}: 2)\n`);
      expect(all.stderr).to.equal("");
      expect(ghost.code).to.equal(1);
      expect(ghost.stderr).to.equal(
        `error: no slave with id "ghost": it is not connected to the master at ${master.address}, nor to any other master of its cluster\n`,
      );
      expect(ghost.stdout).to.equal("");
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.match(/^error: .*--to.*--all/);
    });

    it("labels: a CLI slave declares them with --label; slaves and send take --selector; bad ones exit 2 or get INVALID_ARGUMENT", async () => {
      const master = await startMaster();
      const slave = runCli(["slave", "--master", master.address, "--id", "cli-eu", "--label", "region=eu", "--label", "role=db"], TEST_ENV);
      await startSlave(master.address, { id: "lib-us", labels: { region: "us" } });
      await waitFor(() => master.has("cli-eu"), 5_000, "the CLI slave registered");
      expect(master.slaves({ selector: "region=eu" })[0]?.labels).to.deep.equal({ region: "eu", role: "db" });

      const [listed, json, sent, badLabel, badSelector, waitWithSelector] = await Promise.all([
        cli(["slaves", "--master", master.address, "--selector", "region=eu"]),
        cli(["slaves", "--master", master.address, "--selector", "region in (eu,us)", "--json"]),
        cli(["send", "--master", master.address, "--selector", "role=db", "reindex"]),
        cli(["slave", "--master", master.address, "--label", "role=<db>"]),
        cli(["slaves", "--master", master.address, "--selector", "region in eu"]),
        cli(["send", "--master", master.address, "--selector", "role=db", "--wait", "x"]),
      ]);
      expect(listed.code, listed.stderr).to.equal(0);
      const lines = listed.stdout.trim().split("\n");
      expect(lines).to.have.length(2);
      expect(lines[1]).to.match(/^cli-eu\s.*\sregion=eu,role=db$/);
      expect(json.code, json.stderr).to.equal(0);
      const body = json.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { id: string; labels: Record<string, string> });
      expect(Object.fromEntries(body.map((s) => [s.id, s.labels]))).to.deep.equal({
        "cli-eu": { region: "eu", role: "db" },
        "lib-us": { region: "us" },
      });
      expect(sent.code, sent.stderr).to.equal(0);
      expect(sent.stdout).to.equal(`written to 1 slave (${master.address}: 1)\n`);
      await slave.waitFor(/command: reindex/, 5_000);
      expect(badLabel.code).to.equal(2);
      expect(badLabel.stderr).to.match(/^error: --label: .*label "role=<db>"/);
      expect(badSelector.code).to.equal(1);
      expect(badSelector.stderr).to.match(/^error: the master at \S+ refused the request: .*selector "region in eu"/);
      expect(waitWithSelector.code).to.equal(2);
      expect(waitWithSelector.stderr).to.match(/^error: --wait goes with --to/);
    });
  });
});
