import { expect } from "chai";
import { killAllCli, runCli } from "../../cli-process.js";
import { cleanup, startMaster, startSlave, waitFor } from "../../helpers.js";

const TEST_ENV = { ...process.env, NODE_ENV: "test", CI: "true", NETSYNC_LOG_LEVEL: "", NETSYNC_LOG_FORMAT: "" };

describe("cli watch", function () {
  this.timeout(15_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("prints one line per event, from the snapshot on, and exits 0 on SIGINT", async () => {
    const master = await startMaster({ name: "cli-m" });
    await startSlave(master.address, { id: "before", labels: { region: "eu" } });
    const run = runCli(["watch", "--master", master.address, "--snapshot"], TEST_ENV);
    await waitFor(
      () => run.stdout().includes("synced"),
      8_000,
      () => `the synced line: ${run.stdout()}${run.stderr()}`,
    );
    const slave = await startSlave(master.address, { id: "after" });
    await slave.close();
    await waitFor(
      () => run.stdout().includes("disconnected"),
      4_000,
      () => `the disconnect line: ${run.stdout()}`,
    );
    run.child.kill("SIGINT");
    const { code } = await run.exit;
    const lines = run.stdout().trim().split("\n");
    expect(code, run.stderr()).to.equal(0);
    expect(run.stderr()).to.equal("");
    expect(lines[0]).to.match(/^\S+Z {2}snapshot\s+before on cli-m {2}\[region=eu\]$/);
    expect(lines[1]).to.match(/ {2}synced\s+via cli-m$/);
    expect(lines[2]).to.match(/ {2}connected\s+after on cli-m {2}from 127\.0\.0\.1:\d+$/);
    expect(lines[3]).to.match(/ {2}disconnected\s+after on cli-m {2}(slave closed the stream|connection lost.*)$/);
    console.log(lines.map((line) => `      ${line}`).join("\n"));
  });

  it("--json: one object per line with times in epoch ms; --kinds filters; an unknown kind exits 2", async () => {
    const master = await startMaster({ name: "cli-j" });
    const run = runCli(["watch", "--master", master.address, "--json", "--kinds", "disconnected"], TEST_ENV);
    await waitFor(
      () => run.stdout().includes('"synced"'),
      8_000,
      () => `the synced line: ${run.stdout()}${run.stderr()}`,
    );
    const slave = await startSlave(master.address, { id: "j1", labels: { role: "db" } });
    await slave.close();
    await waitFor(
      () => run.stdout().trim().split("\n").length === 2,
      4_000,
      () => `the disconnect: ${run.stdout()}`,
    );
    run.child.kill("SIGTERM");
    expect((await run.exit).code).to.equal(0);
    const [, event] = run
      .stdout()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(event).to.include({ kind: "disconnected", masterId: "cli-j", reason: "disconnected", details: "slave closed the stream" });
    expect(event.time).to.be.a("number");
    expect(event.slave).to.include({ id: "j1", masterId: "cli-j", pingsSent: event.slave.pingsSent });
    expect(event.slave.labels).to.deep.equal({ role: "db" });
    expect(event.slave.connectedAt).to.be.a("number");

    const bad = runCli(["watch", "--master", master.address, "--kinds", "connected,exploded"], TEST_ENV);
    expect((await bad.exit).code).to.equal(2);
    expect(bad.stderr()).to.match(/--kinds: unknown kind "exploded"/);
  });
});
