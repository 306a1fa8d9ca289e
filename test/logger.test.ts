import { expect } from "chai";
import { killAllCli, runCli } from "./cli-process.js";
import { cleanup, rawClient, waitFor, within } from "./helpers.js";

// --- CLI -------------------------------------------------------------------------------

/** The environment in which consola's own heuristics would drop to warn, with no log settings of its own. */
function testEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "test", CI: "true", ...extra };
  delete env.NETSYNC_LOG_LEVEL;
  if (!("NETSYNC_LOG_FORMAT" in extra)) delete env.NETSYNC_LOG_FORMAT;
  return env;
}

interface LogLine {
  time: string;
  level: string;
  tag: string;
  message: string;
  slaveId?: string;
  peer?: string;
}

/** Every line of `text` parsed as a JSON log object with the four string fields. */
function jsonLines(text: string, stream: string): LogLine[] {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        expect.fail(`${stream} line is not JSON: ${line}`);
      }
      expect(parsed, `${stream}: ${line}`).to.be.an("object");
      const entry = parsed as Record<string, unknown>;
      for (const field of ["time", "level", "tag", "message"]) {
        expect(entry[field], `${field} of ${stream} line ${line}`).to.be.a("string");
      }
      expect(Number.isNaN(Date.parse(entry.time as string)), `time of ${line}`).to.equal(false);
      return entry as unknown as LogLine;
    });
}

const MASTER_ARGS = ["master", "--port", "0", "--heartbeat-interval", "50ms", "--heartbeat-timeout", "200ms"];

describe("logger", function () {
  this.timeout(10_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  describe("JSON logs", function () {
    this.timeout(15_000);

    for (const [name, globalArgs, env] of [
      ["--log-format json", ["--log-format", "json"], testEnv()],
      ["NETSYNC_LOG_FORMAT=json", [], testEnv({ NETSYNC_LOG_FORMAT: "json" })],
    ] as const) {
      it(`prints one JSON object per line with ${name}`, async () => {
        const master = runCli([...globalArgs, ...MASTER_ARGS], env);
        const listening = JSON.parse(await master.waitForLine(/listening on/)) as LogLine;
        const address = listening.message.match(/listening on (127\.0\.0\.1:\d+)/)![1]!;
        expect(listening).to.include({ level: "info", tag: "master" });

        // A CLI slave in the same format, and a raw client the master evicts (a warning, on stderr).
        const slave = runCli([...globalArgs, "slave", "--master", address, "--id", "json-slave", "--master-timeout", "1s"], env);
        const connectLine = JSON.parse(await master.waitForLine(/slave json-slave connected/)) as LogLine;
        expect(connectLine.slaveId).to.equal("json-slave");
        expect(connectLine.peer).to.match(/^127\.0\.0\.1:\d+$/);
        await slave.waitForLine(/connected to .* as json-slave/);
        rawClient(address, { id: "json-mute" });
        await waitFor(() => /json-mute .*evicted/.test(master.stderr()), 3_000, "the eviction warning");

        slave.child.kill("SIGTERM");
        expect((await within(slave.exit, 5_000, "the slave's exit")).code).to.equal(0);
        await master.waitForLine(/json-slave .*disconnected/);
        master.child.kill("SIGTERM");
        expect((await within(master.exit, 5_000, "the master's exit")).code).to.equal(0);

        const out = jsonLines(master.stdout(), "master stdout");
        const err = jsonLines(master.stderr(), "master stderr");
        jsonLines(slave.stdout(), "slave stdout");
        jsonLines(slave.stderr(), "slave stderr");
        expect(out.map((l) => l.level)).to.satisfy((levels: string[]) => levels.every((l) => l === "info"));
        expect(out.map((l) => l.message)).to.include.members(["master stopped"]);
        const connect = out.find((l) => /slave json-slave connected/.test(l.message));
        expect(connect).to.include({ slaveId: "json-slave", tag: "master", level: "info" });
        const eviction = err.find((l) => /json-mute .*evicted/.test(l.message));
        expect(eviction).to.include({ slaveId: "json-mute", level: "warn", tag: "master" });
        expect(eviction!.peer).to.match(/^127\.0\.0\.1:\d+$/);
        const slaveLines = jsonLines(slave.stdout(), "slave stdout");
        expect(slaveLines.some((l) => l.tag === "slave json-slave" && /connected to/.test(l.message))).to.equal(true);
      });
    }

    it("exits 2 on an invalid --log-format or NETSYNC_LOG_FORMAT", async () => {
      const flag = runCli(["--log-format", "xml", ...MASTER_ARGS], testEnv());
      const fromEnv = runCli(MASTER_ARGS, testEnv({ NETSYNC_LOG_FORMAT: "xml" }));
      const [{ code: flagCode }, { code: envCode }] = await within(Promise.all([flag.exit, fromEnv.exit]), 8_000, "the exits");
      expect(flagCode).to.equal(2);
      expect(flag.stderr().trim().split("\n")).to.have.length(1);
      expect(flag.stderr()).to.match(/^error: .*xml.*Allowed choices are text, json/);
      expect(envCode).to.equal(2);
      expect(fromEnv.stderr().trim()).to.match(/^error: NETSYNC_LOG_FORMAT: "xml" is not a log format/);
      expect(flag.stdout() + fromEnv.stdout()).to.equal("");
    });
  });
});
