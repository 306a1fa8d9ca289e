import * as http from "node:http";
import { expect } from "chai";
import { Master, silentLogger } from "../src/index.js";
import { killAllCli, runCli } from "./cli-process.js";
import { cleanup, onceWhere, rawClient, startMaster, startSlave, track, waitFor, within } from "./helpers.js";

// --- HTTP ----------------------------------------------------------------------------

interface HttpResult {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** One GET on a fresh connection (no keep-alive pool that could outlive the test). */
function get(port: number, path: string, method = "GET"): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method, agent: false, timeout: 2_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** Sample values of a Prometheus text exposition, keyed by `name` or `name{labels}` as printed. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/);
    expect(match, `a sample line: ${line}`).to.not.equal(null);
    samples.set(match![1]!, Number(match![2]));
  }
  return samples;
}

async function scrape(master: Master): Promise<Map<string, number>> {
  const response = await get(master.metricsPort!, "/metrics");
  expect(response.status).to.equal(200);
  expect(response.contentType).to.match(/^text\/plain/);
  return parseMetrics(response.body);
}

function sample(samples: Map<string, number>, key: string): number {
  const value = samples.get(key);
  expect(value, `metric ${key} in ${JSON.stringify([...samples.keys()])}`).to.be.a("number");
  return value!;
}

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

describe("observability", function () {
  this.timeout(10_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  describe("Prometheus metrics", () => {
    it("counts slaves, pings, pongs, RTTs, evictions, disconnects and replies", async () => {
      const master = await startMaster({ metricsPort: 0 });
      expect(master.metricsPort).to.be.a("number").and.greaterThan(0);
      expect(master.metricsPort).to.not.equal(master.port);
      // A generous master timeout: a reconnect under CPU load would throw the exact counts off.
      await startSlave(master.address, { id: "m1", masterTimeout: 2_000, onCommand: (c) => `ok:${c.data}` });
      const leaver = await startSlave(master.address, { id: "m2", masterTimeout: 2_000 });
      await waitFor(() => master.slaves().every((s) => s.pongsReceived > 0), 2_000, "a pong from each slave");

      let m = await scrape(master);
      expect(sample(m, "netsync_slaves_connected")).to.equal(2);
      expect(sample(m, "netsync_connections_total")).to.equal(2);
      expect(sample(m, "netsync_pings_sent_total")).to.be.greaterThan(0);
      expect(sample(m, "netsync_pongs_received_total")).to.be.greaterThan(0);
      expect(sample(m, "netsync_ping_rtt_seconds_count")).to.be.greaterThan(0);
      expect(sample(m, "netsync_ping_rtt_seconds_sum")).to.be.greaterThan(0).and.lessThan(sample(m, "netsync_ping_rtt_seconds_count"));
      expect(sample(m, 'netsync_evictions_total{reason="heartbeat_timeout"}')).to.equal(0);
      expect(sample(m, 'netsync_disconnects_total{reason="disconnected"}')).to.equal(0);
      expect(sample(m, "netsync_reply_latency_seconds_count")).to.equal(0);

      // A raw client that never answers is evicted for heartbeat timeout.
      const evicted = onceWhere(master, "slave:evicted", (e) => e.slave.id === "mute");
      rawClient(master.address, { id: "mute" });
      await evicted;
      m = await scrape(master);
      expect(sample(m, 'netsync_evictions_total{reason="heartbeat_timeout"}')).to.equal(1);
      expect(sample(m, "netsync_connections_total")).to.equal(3);
      expect(sample(m, "netsync_slaves_connected")).to.equal(2);

      // A slave that closes is a disconnect, counted once.
      const gone = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "m2");
      await leaver.close();
      await gone;
      m = await scrape(master);
      expect(sample(m, 'netsync_disconnects_total{reason="disconnected"}')).to.equal(1);
      expect(sample(m, 'netsync_evictions_total{reason="heartbeat_timeout"}')).to.equal(1);
      expect(sample(m, "netsync_slaves_connected")).to.equal(1);

      // A request observes the reply latency.
      expect(await within(master.request("m1", "x", { timeout: 2_000 }), 3_000, "a request")).to.equal("ok:x");
      m = await scrape(master);
      expect(sample(m, "netsync_reply_latency_seconds_count")).to.equal(1);
      expect(sample(m, "netsync_commands_sent_total")).to.equal(1);
      const pings = sample(m, "netsync_pings_sent_total");
      await waitFor(() => master.slaves()[0]!.pingsSent > 0, 1_000, "another ping");
      expect(sample(await scrape(master), "netsync_pings_sent_total")).to.be.at.least(pings);
    });

    it("answers 404 elsewhere, and stops serving when the master closes", async () => {
      const master = await startMaster({ metricsPort: 0 });
      const port = master.metricsPort!;
      expect((await get(port, "/other")).status).to.equal(404);
      expect((await get(port, "/")).status).to.equal(404);
      expect((await get(port, "/metrics", "POST")).status).to.equal(404);
      expect((await get(port, "/metrics?x=1")).status).to.equal(200);
      await within(master.close(), 3_000, "master.close()");
      const error = await get(port, "/metrics").then(
        () => expect.fail("the metrics port still answers after close()"),
        (e: NodeJS.ErrnoException) => e,
      );
      expect(error.code).to.equal("ECONNREFUSED");
    });

    it("is off without metricsPort", async () => {
      const master = new Master({ port: 0, heartbeatInterval: 20, heartbeatTimeout: 100, logger: silentLogger() });
      track(() => master.close());
      expect(master.metricsPort).to.equal(undefined);
      await master.listen();
      expect(master.metricsPort).to.equal(undefined);
    });

    it("keeps separate registries for two masters in one process", async () => {
      const a = await startMaster({ metricsPort: 0 });
      const b = await startMaster({ metricsPort: 0 });
      await startSlave(a.address, { id: "only-a" });
      expect(sample(await scrape(a), "netsync_slaves_connected")).to.equal(1);
      expect(sample(await scrape(b), "netsync_slaves_connected")).to.equal(0);
    });
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
