// Scenario (test/scenarios/): shutdown of CLI and in-process masters and slaves, end to end.
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { type ConsolaInstance, createConsola, type LogObject } from "consola";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import type { SlaveEvent } from "../../src/index.js";
import { killAllCli, runCli } from "../cli-process.js";
import { adminClient, grpcClient, healthCheck, healthWatch } from "../grpc-helpers.js";
import {
  cleanup,
  createSlave,
  gate,
  once,
  onceWhere,
  rawClient,
  rejection,
  sleep,
  startMaster,
  startSlave,
  waitFor,
  within,
} from "../helpers.js";

const Status = grpc.status;

// --- capturing logger ------------------------------------------------------------

interface Capture {
  logger: ConsolaInstance;
  entries: LogObject[];
  lines(): string[];
}

function capture(): Capture {
  const entries: LogObject[] = [];
  const logger = createConsola({ level: 5, throttle: 0, reporters: [{ log: (o) => entries.push(o) }] });
  return { logger, entries, lines: () => entries.map((o) => `${o.type} ${format(...o.args)}`) };
}

// --- CLI ------------------------------------------------------------------------------

/** How long these tests wait for a line of CLI output. */
const CLI_WAIT_MS = 10_000;

/** Opens a raw Sync stream and resolves with its final status. */
async function statusOfNewStream(address: string, id: string, timeoutMs = 3_000): Promise<grpc.StatusObject> {
  const raw = rawClient(address, { id });
  try {
    return await within(raw.status, timeoutMs, `the status of a new stream to ${address}`);
  } finally {
    raw.close();
  }
}

// --- the tests --------------------------------------------------------------------------

describe("shutdown", function () {
  this.timeout(15_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  describe("SIGTERM on a CLI master", () => {
    it("reports SERVING, ends both slaves' streams with UNAVAILABLE 'master shutting down', exits 0 within the grace", async () => {
      const master = runCli([
        "master",
        "--port",
        "0",
        "--heartbeat-interval",
        "100ms",
        "--heartbeat-timeout",
        "2s",
        "--shutdown-grace",
        "2s",
      ]);
      const [, address] = await master.waitFor(/listening on (127\.0\.0\.1:\d+)/, CLI_WAIT_MS);
      const slaves = await Promise.all(
        ["term-a", "term-b"].map((id) => startSlave(address!, { id, masterTimeout: 2_000, backoff: { initial: 50, max: 500 } }, 5_000)),
      );
      await master.waitFor(/slave term-a connected/, CLI_WAIT_MS);
      await master.waitFor(/slave term-b connected/, CLI_WAIT_MS);

      const client = grpcClient(address!);
      expect((await healthCheck(client)).status).to.equal(ServingStatus.SERVING);
      expect((await healthCheck(client, "netsync.v1.NetSyncService")).status).to.equal(ServingStatus.SERVING);
      client.close();

      const lost = slaves.map((slave) => once(slave, "disconnected", 3_000));
      const sentAt = performance.now();
      master.child.kill("SIGTERM");
      for (const [{ code, reason }] of await Promise.all(lost)) {
        expect(code).to.equal(Status.UNAVAILABLE);
        expect(reason).to.include("master shutting down");
      }
      const { code, at } = await within(master.exit, 3_000, "the master's exit");
      const exitMs = at - sentAt;
      expect(code, master.output()).to.equal(0);
      expect(exitMs, "ms from SIGTERM to exit").to.be.below(2_500);
      expect(master.output())
        .to.match(/received SIGTERM; stopping/)
        .and.to.match(/master stopped/);
      expect(master.output()).not.to.match(/evicted/);

      // Nothing answers on that address any more: a new stream fails, and the slaves stay out.
      const status = await statusOfNewStream(address!, "latecomer");
      expect(status.code).to.equal(Status.UNAVAILABLE);
      await sleep(200);
      for (const slave of slaves) expect(slave.state).not.to.equal("open");
    });
    it("exits 0 within the grace even when a frozen client holds its stream open; refuses new streams meanwhile", async () => {
      const master = runCli([
        "master",
        "--port",
        "0",
        "--heartbeat-interval",
        "20ms",
        "--heartbeat-timeout",
        "60s",
        "--shutdown-grace",
        "2s",
      ]);
      const [, address] = await master.waitFor(/listening on (127\.0\.0\.1:\d+)/, CLI_WAIT_MS);
      const slave = await startSlave(address!, { id: "steady", masterTimeout: 2_000 }, 5_000);
      const frozen = rawClient(address!, { id: "frozen" });
      await within(frozen.headers, 3_000, "the frozen client's headers");
      frozen.call.pause();
      // A paused grpc-js call still buffers 16 messages: let pings fill that, then one large
      // command fills the HTTP/2 windows and stays queued on the master (under its 1 MiB limit).
      await sleep(600);
      const admin = adminClient(address!);
      expect(await admin.broadcast("x".repeat(900_000))).to.equal(2);
      admin.close();
      await sleep(200);

      const lost = once(slave, "disconnected", 3_000);
      const sentAt = performance.now();
      master.child.kill("SIGTERM");
      const [{ code: slaveCode, reason }] = await lost;
      expect(slaveCode).to.equal(Status.UNAVAILABLE);
      expect(reason).to.include("master shutting down");
      // During the grace, the master takes no new stream.
      const during = await statusOfNewStream(address!, "during-grace");
      expect(during.code).to.equal(Status.UNAVAILABLE);

      const { code, at } = await within(master.exit, 3_500, "the master's exit");
      const exitMs = at - sentAt;
      expect(code, master.output()).to.equal(0);
      // The grace timer, not the streams, ended the shutdown (a little slack for a loaded machine).
      expect(exitMs, "ms from SIGTERM to exit").to.be.at.least(1_900).and.below(2_600);
      expect(master.output())
        .to.match(/streams still open after 2000 ms; closing connections/)
        .and.to.match(/master stopped/);
    });
  });

  describe("Master.close() in process", () => {
    it("rejects a pending request() with UNAVAILABLE at once", async () => {
      const master = await startMaster({ shutdownGrace: 2_000 });
      const held = gate();
      const slave = await startSlave(master.address, { id: "busy", onCommand: () => held.promise });
      const received = once(slave, "command");
      const request = master.request("busy", "take your time", { timeout: 5_000 });
      request.catch(() => {});
      await received;

      const startedAt = performance.now();
      const closing = master.close();
      const err = await rejection(request, 500, "the pending request");
      const rejectedMs = performance.now() - startedAt;
      expect(err.code).to.equal(Status.UNAVAILABLE);
      expect(err.message).to.match(/busy left before replying \(shutdown: master shutting down\)/);
      expect(rejectedMs).to.be.below(200);
      await within(closing, 2_500, "master.close()");
    });

    it("reports NOT_SERVING as soon as close() begins", async () => {
      const master = await startMaster({ shutdownGrace: 2_000 });
      await startSlave(master.address, { id: "watched" });
      const client = grpcClient(master.address);
      expect((await healthCheck(client)).status).to.equal(ServingStatus.SERVING);
      const watch = healthWatch(client);
      await waitFor(() => watch.statuses.length > 0, 2_000, "the first Watch status");
      expect(watch.statuses).to.deep.equal([ServingStatus.SERVING]);

      const closing = master.close();
      // A Check issued now either is answered NOT_SERVING or refused by the server that is going away.
      const check = await healthCheck(client).then(
        (r) => ({ code: Status.OK as grpc.status, status: r.status as ServingStatus | undefined }),
        (e: grpc.ServiceError) => ({ code: e.code, status: undefined }),
      );
      if (check.code === Status.OK) expect(check.status).to.equal(ServingStatus.NOT_SERVING);
      else expect(check.code).to.equal(Status.UNAVAILABLE);
      await waitFor(() => watch.statuses.length > 1, 500, "NOT_SERVING on Watch");
      expect(watch.statuses).to.deep.equal([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
      watch.call.cancel();
      await within(closing, 2_500, "master.close()");
    });

    it("resolves within shutdownGrace even when a client froze with a full window", async () => {
      const grace = 800;
      const log = capture();
      const master = await startMaster({
        heartbeatInterval: 500,
        heartbeatTimeout: 10_000,
        shutdownGrace: grace,
        // Room for the whole broadcast below, so the frozen client is not evicted as a slow consumer first.
        maxPendingBytes: 8 * 1024 * 1024,
        logger: log.logger,
      });
      await startSlave(master.address, { id: "healthy" });
      const frozen = rawClient(master.address, { id: "frozen" });
      await within(frozen.headers, 2_000, "the frozen client's headers");
      frozen.call.pause();
      // 3 MB in 30 messages: more than a paused grpc-js call buffers (16 messages) plus the
      // HTTP/2 stream and connection windows (64 KiB each), so the rest stays queued on the master.
      const chunk = "x".repeat(100_000);
      for (let i = 0; i < 30; i++) expect(master.broadcast(chunk)).to.equal(2);
      await sleep(200);
      expect(master.slaves().map((s) => s.id)).to.have.members(["healthy", "frozen"]);

      const dropped: SlaveEvent[] = [];
      master.on("slave:disconnected", (e) => dropped.push(e));
      const startedAt = performance.now();
      await within(master.close(), grace + 1_000, "master.close() with a frozen client");
      const closeMs = performance.now() - startedAt;
      expect(closeMs, "close() time").to.be.below(grace + 300);
      // It did wait for the frozen stream, then cut the connection.
      expect(closeMs, "close() time").to.be.at.least(grace - 50);
      expect(log.lines().join("\n")).to.match(/streams still open after 800 ms; closing connections/);
      expect(dropped.map((e) => [e.slave.id, e.reason])).to.have.deep.members([
        ["healthy", "shutdown"],
        ["frozen", "shutdown"],
      ]);
      const status = await within(frozen.status, 2_000, "the frozen client's status");
      expect(status.code).to.be.oneOf([Status.UNAVAILABLE, Status.CANCELLED, Status.INTERNAL]);
    });
  });

  describe("SIGTERM on a CLI slave", () => {
    it("the master sees 'slave:disconnected' with reason disconnected, and the slave exits 0", async () => {
      const log = capture();
      const master = await startMaster({ heartbeatInterval: 100, heartbeatTimeout: 2_000, logger: log.logger });
      const evicted: SlaveEvent[] = [];
      master.on("slave:evicted", (e) => evicted.push(e));
      const connected = onceWhere(master, "slave:connected", (e) => e.slave.id === "cli-term", 10_000);
      const slave = runCli(["slave", "--master", master.address, "--id", "cli-term", "--master-timeout", "2s"]);
      await connected;
      await slave.waitFor(/connected to .* as cli-term/, CLI_WAIT_MS);
      await waitFor(() => (master.slaves()[0]?.pongsReceived ?? 0) >= 1, 2_000, "a pong from the CLI slave");

      const gone = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "cli-term", 5_000);
      const sentAt = performance.now();
      slave.child.kill("SIGTERM");
      const [event] = await gone;
      expect(event.reason).to.equal("disconnected");
      expect(event.details).to.equal("slave closed the stream");
      const { code, at } = await within(slave.exit, 5_000, "the slave's exit");
      expect(code, slave.output()).to.equal(0);
      // close() waits at most 1 s for the master's status; the rest is process teardown.
      expect(at - sentAt, "SIGTERM to exit").to.be.below(2_500);
      expect(evicted).to.deep.equal([]);
      expect(master.slaves()).to.deep.equal([]);
      expect(log.lines().join("\n")).to.match(/slave cli-term \(127\.0\.0\.1:\d+\) disconnected: slave closed the stream/);
      expect(slave.output()).to.match(/received SIGTERM; stopping/);
    });
  });

  describe("several masters", () => {
    it("a slave registers on the first master and moves to the second when the first closes", async () => {
      const a = await startMaster();
      const b = await startMaster();
      const cap = 200;
      const masterTimeout = 300;
      const slave = await startSlave(a.address, {
        master: [a.address, b.address],
        startAt: 0,
        id: "roamer",
        masterTimeout,
        backoff: { initial: 20, max: cap },
      });
      expect(a.slaves().map((s) => s.id)).to.deep.equal(["roamer"]);
      expect(b.slaves()).to.deep.equal([]);
      expect(slave.master).to.equal(a.address);

      const onB = onceWhere(b, "slave:connected", (e) => e.slave.id === "roamer", 3_000);
      const lost = once(slave, "disconnected");
      const startedAt = performance.now();
      await a.close();
      const [{ code }] = await lost;
      expect(code).to.equal(Status.UNAVAILABLE);
      await onB;
      const movedMs = performance.now() - startedAt;
      expect(movedMs, "ms to move to B").to.be.below(cap + masterTimeout);
      expect(slave.master).to.equal(b.address);
      await waitFor(() => slave.state === "open", 1_000, "the slave open on B");
      expect(b.slaves().map((s) => s.id)).to.deep.equal(["roamer"]);
    });

    it("skips a master that is down: [B (closed), A] ends up on A", async () => {
      const a = await startMaster();
      const b = await startMaster();
      const downAddress = b.address;
      await b.close();
      const log = capture();
      const onA = onceWhere(a, "slave:connected", (e) => e.slave.id === "rounder", 3_000);
      const slave = createSlave(a.address, {
        master: [downAddress, a.address],
        startAt: 0,
        id: "rounder",
        backoff: { initial: 20, max: 200 },
        logger: log.logger,
      });
      await onA;
      await waitFor(() => slave.state === "open", 1_000, "the slave open on A");
      expect(slave.master).to.equal(a.address);
      expect(log.lines().join("\n")).to.include(`cannot reach the master at ${downAddress}`);
    });

    it("the slaves of a master that is down spread over the others at random, not all onto the next entry", async () => {
      const [b, c] = [await startMaster(), await startMaster()];
      const down = await startMaster();
      const downAddress = down.address;
      await down.close();
      const ids = Array.from({ length: 40 }, (_, i) => `spread-${i}`);
      for (const id of ids) {
        createSlave(b.address, { master: [downAddress, b.address, c.address], startAt: 0, id, backoff: { initial: 10, max: 50 } });
      }
      await waitFor(() => b.size + c.size === ids.length, 5_000, "every slave on B or C");
      // All 40 on one master would have a chance of 2 × 2^-40 with a fair pick; "the next entry" would put all on B.
      expect(b.size, `B ${b.size}, C ${c.size}`).to.be.within(1, 39);
    });

    it("CLI: `slave --master A,B` connects to one of them (a random start), then moves to the other", async function () {
      this.timeout(20_000);
      const first = await startMaster({ heartbeatInterval: 100, heartbeatTimeout: 2_000 });
      const second = await startMaster({ heartbeatInterval: 100, heartbeatTimeout: 2_000 });
      const slave = runCli(["slave", "--master", `${first.address},${second.address}`, "--id", "cli-roamer", "--master-timeout", "1s"]);
      await waitFor(() => first.has("cli-roamer") || second.has("cli-roamer"), 10_000, "the slave on either master");
      const a = first.has("cli-roamer") ? first : second;
      const b = a === first ? second : first;
      await waitFor(() => (a.slaves()[0]?.pongsReceived ?? 0) >= 1, 2_000, "a pong on A");
      const onB = onceWhere(b, "slave:connected", (e) => e.slave.id === "cli-roamer", 5_000);
      await a.close();
      await onB;
      await slave.waitFor(new RegExp(`connected to ${b.address.replace(/\./g, "\\.")} as cli-roamer`), CLI_WAIT_MS);
      slave.child.kill("SIGTERM");
      expect((await within(slave.exit, 5_000, "the slave's exit")).code).to.equal(0);
    });

    for (const list of ["127.0.0.1:1,nowhere", "127.0.0.1:1,", "127.0.0.1:1;127.0.0.1:2"]) {
      it(`CLI: \`slave --master ${list}\` exits 2 with a one-line error`, async () => {
        const r = runCli(["slave", "--master", list]);
        const { code } = await within(r.exit, 8_000, "the slave's exit");
        expect(code, r.output()).to.equal(2);
        const lines = r.output().trim().split("\n");
        expect(lines).to.have.length(1);
        expect(lines[0])
          .to.match(/^error: /)
          .and.to.match(/HOST:PORT/);
      });
    }
  });
});
