import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { serviceDefinition } from "../../src/internal.js";
import {
  cleanup,
  createSlave,
  once,
  pongsOf,
  recordEvents,
  sleep,
  startMaster,
  startSlave,
  TEST_INTERVAL,
  TEST_TIMEOUT,
  TOLERANCE,
  track,
  waitFor,
} from "../helpers.js";

const Status = grpc.status;

/** A gRPC server implementing Sync that accepts streams and never writes a message. */
async function startMuteServer(options: { sendHeaders: boolean }): Promise<{ address: string; connections: number[] }> {
  const connections: number[] = [];
  const server = new grpc.Server();
  server.addService(serviceDefinition(NetSyncService), {
    [NetSyncService.method.sync.localName]: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      connections.push(performance.now());
      call.on("error", () => {});
      if (options.sendHeaders) call.sendMetadata(new grpc.Metadata());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  track(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, connections };
}

describe("Slave", () => {
  afterEach(cleanup);

  describe("reconnecting", () => {
    it("reconnects to a new master started on the same port", async () => {
      const first = await startMaster();
      const port = first.port;
      const slave = await startSlave(first.address, { id: "phoenix" });
      await waitFor(() => pongsOf(first, "phoenix") >= 1, 2_000, "a pong on the first master");

      const disconnected = once(slave, "disconnected");
      await first.close();
      const [{ code }] = await disconnected;
      expect(code).to.equal(Status.UNAVAILABLE);

      const reconnected = once(slave, "connected", 3_000);
      const second = await startMaster({ port });
      expect(second.port).to.equal(port);
      const [{ id }] = await reconnected;
      expect(id).to.equal("phoenix");
      await waitFor(() => pongsOf(second, "phoenix") >= 1, 2_000, "a pong on the second master");
      expect(slave.state).to.equal("open");
    });

    it("drops a stream whose master stays silent after masterTimeout and reconnects", async () => {
      const masterTimeout = 150;
      const mute = await startMuteServer({ sendHeaders: true });
      const slave = createSlave(mute.address, { id: "listener", masterTimeout });
      await once(slave, "connected");
      const connectedAt = performance.now();
      const [{ code, reason }] = await once(slave, "disconnected", masterTimeout + 1_000);
      const silence = performance.now() - connectedAt;

      expect(code).to.equal(Status.DEADLINE_EXCEEDED);
      expect(reason).to.contain("master silent");
      expect(silence, "not before masterTimeout").to.be.at.least(masterTimeout - 2);
      expect(silence, `within masterTimeout + ${TOLERANCE} ms`).to.be.below(masterTimeout + TOLERANCE);
      await waitFor(() => mute.connections.length >= 2, 1_000, "a second connection to the mute server");
      await once(slave, "connected");
    });

    it("retries a stream that never opens (no response headers) after masterTimeout", async () => {
      const masterTimeout = 150;
      const mute = await startMuteServer({ sendHeaders: false });
      const slave = createSlave(mute.address, { id: "listener", masterTimeout });
      let connectedEvents = 0;
      slave.on("connected", () => connectedEvents++);
      await waitFor(() => mute.connections.length >= 2, masterTimeout + 1_000, "a second connection to the mute server");

      const gap = mute.connections[1]! - mute.connections[0]!;
      expect(gap, "the first attempt was given masterTimeout").to.be.at.least(masterTimeout - 2);
      expect(gap).to.be.below(masterTimeout + TOLERANCE + 20 /* first backoff cap */);
      expect(connectedEvents).to.equal(0);
      expect(slave.state).to.be.oneOf(["connecting", "backoff"]);
    });
  });

  describe("commands", () => {
    it("keeps ponging while command handlers throw, reject or take 500 ms", async () => {
      const master = await startMaster();
      const events = recordEvents(master);
      const calls = { thrower: 0, rejecter: 0, slow: 0 };
      let slowInFlight = 0;
      let slowMaxInFlight = 0;
      await Promise.all([
        startSlave(master.address, {
          id: "thrower",
          onCommand: () => {
            calls.thrower++;
            throw new Error("handler failure");
          },
        }),
        startSlave(master.address, {
          id: "rejecter",
          onCommand: async () => {
            calls.rejecter++;
            throw new Error("async handler failure");
          },
        }),
        startSlave(master.address, {
          id: "slow",
          onCommand: async () => {
            calls.slow++;
            slowMaxInFlight = Math.max(slowMaxInFlight, ++slowInFlight);
            await sleep(500);
            slowInFlight--;
          },
        }),
      ]);
      const ids = ["thrower", "rejecter", "slow"] as const;
      await waitFor(() => ids.every((id) => pongsOf(master, id) >= 1), 2_000, "a first pong from each slave");
      const before = Object.fromEntries(ids.map((id) => [id, pongsOf(master, id)]));

      const broadcaster = setInterval(() => master.broadcast("work"), 10);
      track(() => clearInterval(broadcaster));
      const windowMs = 6 * TEST_TIMEOUT;
      await sleep(windowMs);
      clearInterval(broadcaster);

      const rounds = windowMs / TEST_INTERVAL;
      for (const id of ids) {
        expect(calls[id], `${id} handler calls`).to.be.at.least(10);
        expect(pongsOf(master, id) - before[id]!, `pongs from ${id}`).to.be.at.least(rounds / 2);
      }
      expect(slowMaxInFlight, "slow handlers ran concurrently, not in line with pongs").to.be.above(1);
      expect(events.evicted, "evictions").to.have.length(0);
      expect(events.disconnected, "disconnections").to.have.length(0);
      expect(master.size).to.equal(3);
    });

    it("runs a command with a command_id once: a repeat is not run again, and a repeat that asks for a reply gets the first run's result", async () => {
      const master = await startMaster();
      const runs: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      await startSlave(master.address, {
        id: "s",
        onCommand: async (command) => {
          runs.push(command.data);
          if (command.data === "slow") await gate;
          return `ran:${command.data}#${runs.length}`;
        },
      });
      // Fire and forget, twice with one id: one run.
      master.send("s", { data: "once", commandId: "c1" });
      master.send("s", { data: "once", commandId: "c1" });
      // Requests with one id: both answered, with the first run's result, also while that run is still going.
      const first = master.request("s", { data: "slow", commandId: "c2" });
      const repeat = master.request("s", { data: "slow", commandId: "c2" });
      await waitFor(() => runs.includes("slow"), 2_000, "the slow command to start");
      release();
      expect(await Promise.all([first, repeat])).to.deep.equal(["ran:slow#2", "ran:slow#2"]);
      expect(await master.request("s", { data: "once", commandId: "c1" })).to.equal("ran:once#1");
      // Without an id, or with another one, every command runs.
      await master.request("s", "plain");
      await master.request("s", "plain");
      await master.request("s", { data: "plain", commandId: "c3" });
      expect(runs).to.deep.equal(["once", "slow", "plain", "plain", "plain"]);
    });
  });
});
