import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CLI_BIN, killAllCli, runCli } from "../cli-process.js";

/**
 * The environment in which consola's own heuristics would drop to warn. Unlike
 * runCli()'s default, it keeps the parent's NETSYNC_LOG_FORMAT and NETSYNC_TOKEN.
 */
const TEST_ENV = { ...process.env, NODE_ENV: "test", CI: "true", NETSYNC_LOG_LEVEL: "" };

const run = (args: string[], env: NodeJS.ProcessEnv = TEST_ENV) => runCli(args, env);

describe("cli", function () {
  this.timeout(20_000);

  afterEach(() => killAllCli());

  it("prints info logs by default even with NODE_ENV=test and CI=true, and stops on SIGTERM", async () => {
    const master = run(["master", "--port", "0", "--heartbeat-interval", "50ms", "--heartbeat-timeout", "200ms"]);
    const [, address] = await master.waitFor(/listening on (127\.0\.0\.1:\d+)/);
    const slave = run(["slave", "--master", address!, "--id", "cli-slave", "--master-timeout", "1s"]);
    await master.waitFor(/\[info\].*slave cli-slave connected from 127\.0\.0\.1:\d+/);
    await slave.waitFor(/connected to .* as cli-slave/);
    slave.child.kill("SIGTERM");
    expect((await slave.exit).code).to.equal(0);
    await master.waitFor(/slave cli-slave .*disconnected: slave closed the stream/);
    master.child.kill("SIGTERM");
    expect((await master.exit).code).to.equal(0);
    expect(master.output()).to.match(/received SIGTERM; stopping/);
    expect(master.output()).to.match(/master stopped/);
    expect(master.output()).not.to.match(/evicted/);
  });

  it("honours NETSYNC_LOG_LEVEL, and --log-level over it", async () => {
    // The demo stops by itself, so its whole output can be checked for the absence of info lines.
    const quiet = run(["demo", "--duration", "1s", "--freeze-after", "1m"], { ...TEST_ENV, NETSYNC_LOG_LEVEL: "warn" });
    expect((await quiet.exit).code).to.equal(0);
    expect(quiet.output()).not.to.match(/\[info\]|listening on|connected/);

    const loud = run(["--log-level", "debug", "master", "--port", "0", "--heartbeat-interval", "50ms", "--heartbeat-timeout", "200ms"], {
      ...TEST_ENV,
      NETSYNC_LOG_LEVEL: "warn",
    });
    await loud.waitFor(/\[info\].*listening on/);
    loud.child.kill("SIGTERM");
    expect((await loud.exit).code).to.equal(0);
  });

  for (const [name, args, message] of [
    ["an unknown flag", ["master", "--bogus"], /unknown option '--bogus'/],
    ["a bad duration", ["master", "--heartbeat-interval", "5x"], /not a duration/],
    [
      "a timeout not above the interval",
      ["master", "--heartbeat-interval", "5s", "--heartbeat-timeout", "5s"],
      /--heartbeat-interval 5s, --heartbeat-timeout 5s: .*must be greater than/,
    ],
    [
      "a demo timeout below the interval",
      ["demo", "--heartbeat-interval", "2s", "--heartbeat-timeout", "1s"],
      /--heartbeat-timeout 1s: .*must be greater than/,
    ],
    ["a missing --master", ["slave"], /required option '--master/],
    ["a bad --master", ["slave", "--master", "nowhere"], /HOST:PORT/],
    ["a bad port", ["master", "--port", "70000"], /integer from 0 to 65535/],
    ["a bad log level", ["--log-level", "loud", "master"], /Allowed choices/],
    ["an unknown command", ["conquer"], /unknown command/],
  ] as const) {
    it(`exits 2 with a one-line error on ${name}`, async () => {
      const r = run([...args]);
      expect((await r.exit).code).to.equal(2);
      const lines = r.output().trim().split("\n");
      expect(lines).to.have.length(1);
      expect(lines[0])
        .to.match(/^error: /)
        .and.to.match(message);
    });
  }

  it("prints its version and help with exit 0", async () => {
    const version = run(["--version"]);
    expect((await version.exit).code).to.equal(0);
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    expect(version.output().trim()).to.equal(pkg.version);
    const help = run(["slave", "--help"]);
    expect((await help.exit).code).to.equal(0);
    expect(help.output()).to.match(/--master-timeout <duration>.*\(default: 15s, env: NETSYNC_MASTER_TIMEOUT\)/s);
  });

  it("says to build when the launcher finds no dist/", () => {
    const dir = mkdtempSync(join(tmpdir(), "netsync-nodist-"));
    try {
      mkdirSync(join(dir, "bin"));
      copyFileSync(CLI_BIN, join(dir, "bin/netsync.js"));
      writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
      const r = spawnSync(process.execPath, [join(dir, "bin/netsync.js"), "--version"], { encoding: "utf8" });
      expect(r.status).to.equal(1);
      expect(r.stdout).to.equal("");
      expect(r.stderr.trim().split("\n")).to.have.length(1);
      expect(r.stderr).to.match(/npm run build/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs the demo: broadcasts, evicts the frozen slave and sees it reconnect", async function () {
    this.timeout(30_000);
    const demo = run([
      "demo",
      "--heartbeat-interval",
      "100ms",
      "--heartbeat-timeout",
      "300ms",
      "--master-timeout",
      "400ms",
      "--broadcast-every",
      "300ms",
      "--freeze-after",
      "700ms",
      "--duration",
      "3s",
    ]);
    expect((await demo.exit).code).to.equal(0);
    const out = demo.output();
    expect(out).to.match(/broadcast #1 written to 3 slaves/);
    expect(out).to.match(/\[slave alpha\] received command/);
    expect(out).to.match(/slave charlie .* evicted: heartbeat timeout/);
    const evictedAt = out.search(/charlie .* evicted/);
    expect(out.slice(evictedAt)).to.match(/slave charlie connected from/);
    expect(out).to.match(/master stopped/);
  });
});
