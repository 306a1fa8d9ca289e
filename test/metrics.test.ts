import * as http from "node:http";
import { expect } from "chai";
import { Master, silentLogger } from "../src/index.js";
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

describe("metrics", function () {
  this.timeout(10_000);

  afterEach(cleanup);

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
});
