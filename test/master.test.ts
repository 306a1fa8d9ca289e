import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { type Command, CommandSchema, type Custom, NetSyncService } from "../gen/netsync/v1/netsync_pb.js";
import { Master, NetSyncError, Slave, type SlaveEvent, silentLogger } from "../src/index.js";
import { Encoded, openBidi, serviceDefinition } from "../src/internal.js";
import {
  cleanup,
  createSlave,
  once,
  onceWhere,
  rawClient,
  sleep,
  startMaster,
  startSlave,
  statusOf,
  TEST_INTERVAL,
  TEST_TIMEOUT,
  track,
  waitFor,
  within,
} from "./helpers.js";

const Status = grpc.status;

/** Scheduler resolution plus timer and loop jitter on a busy 2-core machine. */
const TOLERANCE = 60;

function pongsOf(master: Master, id: string): number {
  return master.slaves().find((s) => s.id === id)?.pongsReceived ?? -1;
}

/** Every master event, by kind, for assertions that something did NOT happen. */
function recordEvents(master: Master): { connected: SlaveEvent[]; evicted: SlaveEvent[]; disconnected: SlaveEvent[] } {
  const log = { connected: [] as SlaveEvent[], evicted: [] as SlaveEvent[], disconnected: [] as SlaveEvent[] };
  master.on("slave:connected", (e) => log.connected.push(e));
  master.on("slave:evicted", (e) => log.evicted.push(e));
  master.on("slave:disconnected", (e) => log.disconnected.push(e));
  return log;
}

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

describe("Master and Slave", () => {
  afterEach(cleanup);

  describe("heartbeat", () => {
    it("refuses heartbeat options that cannot work, with INVALID_ARGUMENT", () => {
      const bad = [
        { heartbeatInterval: 0 },
        { heartbeatInterval: 100, heartbeatTimeout: 100 },
        { heartbeatSliceSize: 0 },
        { heartbeatSliceSize: 2.5 },
      ];
      for (const options of bad) {
        expect(() => new Master({ ...options, logger: silentLogger() }), JSON.stringify(options))
          .to.throw(NetSyncError)
          .with.property("code", Status.INVALID_ARGUMENT);
      }
    });

    it("answers pings with pongs, giving an RTT and pong counts", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "s1" });
      await waitFor(() => pongsOf(master, "s1") >= 3, 2_000, "3 pongs from s1");

      const [info] = master.slaves();
      expect(info!.id).to.equal("s1");
      expect(info!.rttMs).to.be.a("number");
      expect(info!.rttMs!).to.be.at.least(0).and.below(TEST_TIMEOUT);
      expect(info!.pongsReceived).to.be.at.least(3);
      expect(info!.pingsSent).to.be.at.least(info!.pongsReceived);
    });

    it("with a round spread over slices, pings every slave once per interval and measures each one's RTT", async () => {
      const interval = 200;
      // heartbeatSliceSize 1: even 12 slaves get a slice each (by default a slice holds at least 100).
      const master = await startMaster({ heartbeatInterval: interval, heartbeatTimeout: 3 * interval, heartbeatSliceSize: 1 });
      const ids = Array.from({ length: 12 }, (_, i) => `sliced-${i}`);
      await Promise.all(ids.map((id) => startSlave(master.address, { id, masterTimeout: 4 * interval })));
      const startedAt = performance.now();
      await waitFor(() => ids.every((id) => pongsOf(master, id) >= 3), 5_000, "3 pongs from every slave");
      const rounds = (performance.now() - startedAt) / interval;

      for (const info of master.slaves()) {
        expect(info.rttMs, `${info.id} rtt`).to.be.a("number").and.at.least(0).and.below(interval);
        // Once per interval, not once per slice: at most the rounds elapsed plus those before we started counting.
        expect(info.pingsSent, `${info.id} pings`).to.be.at.most(Math.ceil(rounds) + 8);
      }
    });

    it("pings the streams of one HTTP/2 connection in the same slice, and other connections in other slices", async () => {
      // 100 slices of 10 ms; with a slice per stream, five streams would get their Pings 40 ms apart.
      const interval = 1_000;
      const master = await startMaster({ heartbeatInterval: interval, heartbeatTimeout: 3 * interval, heartbeatSliceSize: 1 });
      const pingsAt = new Map<string, number[]>();
      const open = (client: grpc.Client, id: string) => {
        const metadata = new grpc.Metadata();
        metadata.set("netsync-slave-id", id);
        const call = openBidi(client, NetSyncService.method.sync, metadata);
        call.on("error", () => {});
        call.on("data", (command: Command) => {
          if (command.kind.case !== "ping") return;
          (pingsAt.get(id) ?? pingsAt.set(id, []).get(id)!).push(performance.now());
          call.write(create(CommandSchema, { kind: { case: "pong", value: { seq: command.kind.value.seq } } }));
        });
        track(() => call.cancel());
      };
      const channel = { "grpc.use_local_subchannel_pool": 1 };
      const shared = new grpc.Client(master.address, grpc.credentials.createInsecure(), channel);
      const other = new grpc.Client(master.address, grpc.credentials.createInsecure(), channel);
      track(() => shared.close());
      track(() => other.close());
      const muxed = ["mux-0", "mux-1", "mux-2", "mux-3", "mux-4"];
      for (const id of muxed) open(shared, id);
      await waitFor(() => master.size === muxed.length, 2_000, "the multiplexed streams to register");
      open(other, "alone");
      await waitFor(() => [...muxed, "alone"].every((id) => (pingsAt.get(id)?.length ?? 0) >= 2), 5_000, "two pings on every stream");

      const firstPings = muxed.map((id) => pingsAt.get(id)![1]!);
      expect(Math.max(...firstPings) - Math.min(...firstPings), "spread of one round's Pings over the shared connection").to.be.below(5);
      const alone = pingsAt.get("alone")!;
      // "alone" is in another slot, a multiple of 10 ms away (mod the interval) from the shared one.
      const gap = Math.min(...alone.map((t) => Math.abs(((t - firstPings[0]! + interval / 2) % interval) - interval / 2)));
      expect(gap, "the other connection's slice").to.be.at.least(5);
      expect(master.size).to.equal(muxed.length + 1);
    });

    it("survives event listeners that throw: the stream, the master and other slaves go on", async () => {
      const master = await startMaster();
      const thrown: string[] = [];
      for (const event of ["slave:connected", "command"] as const) {
        master.on(event, () => {
          thrown.push(event);
          throw new Error(`listener of ${event} failed`);
        });
      }
      const slave = await startSlave(master.address, { id: "thrower" });
      await waitFor(() => pongsOf(master, "thrower") >= 3, 2_000, "pongs after a throwing slave:connected listener");
      const raw = rawClient(master.address, { id: "sender", autoPong: true });
      await raw.headers;
      raw.write({ kind: { case: "custom", value: { data: "hello" } } });
      await waitFor(() => thrown.includes("command"), 2_000, "the command listener to run");
      const before = pongsOf(master, "thrower");
      await waitFor(() => pongsOf(master, "thrower") > before + 2 && pongsOf(master, "sender") > 0, 2_000, "pongs still flowing");
      expect(master.slaves().map((s) => s.id)).to.have.members(["thrower", "sender"]);
      expect(slave.state).to.equal("open");
    });

    it("counts any inbound message (empty Command, Custom) as a sign of life", async () => {
      const master = await startMaster();
      const events = recordEvents(master);
      const customs: string[] = [];
      master.on("command", (id, command) => {
        if (id === "custom-sender") customs.push(command.data);
      });

      const empty = rawClient(master.address, { id: "empty-sender" });
      const custom = rawClient(master.address, { id: "custom-sender" });
      const control = rawClient(master.address, { id: "control" }); // writes nothing
      await Promise.all([empty.headers, custom.headers, control.headers]);
      empty.every(25, () => empty.write({}));
      let n = 0;
      custom.every(25, () => custom.write({ kind: { case: "custom", value: { data: `c${++n}` } } }));

      await sleep(4 * TEST_TIMEOUT);

      const evictedIds = events.evicted.map((e) => e.slave.id);
      expect(evictedIds, "the silent control is evicted").to.include("control");
      expect(evictedIds, "the empty-Command writer is not evicted").not.to.include("empty-sender");
      expect(evictedIds, "the Custom writer is not evicted").not.to.include("custom-sender");
      const ids = master.slaves().map((s) => s.id);
      expect(ids).to.include.members(["empty-sender", "custom-sender"]);
      for (const info of master.slaves()) {
        expect(info.pongsReceived, `${info.id} never ponged`).to.equal(0);
        expect(info.lastSeen.getTime() - info.connectedAt.getTime(), `${info.id} lastSeen advanced`).to.be.at.least(4 * TEST_TIMEOUT - 50);
      }
      expect(customs.length, "Custom commands reached the master").to.be.at.least(5);
      expect(customs[0]).to.equal("c1");
      expect(empty.finalStatus, "empty-sender's stream is still open").to.equal(undefined);
      expect(custom.finalStatus, "custom-sender's stream is still open").to.equal(undefined);
    });

    it("evicts a client that never answers pings within timeout + tolerance, sparing a healthy slave", async () => {
      const master = await startMaster();
      const events = recordEvents(master);
      await startSlave(master.address, { id: "healthy" });
      await waitFor(() => pongsOf(master, "healthy") >= 2, 2_000, "pongs from the healthy slave");

      const connected = onceWhere(master, "slave:connected", (e) => e.slave.id === "silent");
      const evicted = onceWhere(master, "slave:evicted", (e) => e.slave.id === "silent");
      const raw = rawClient(master.address, { id: "silent" });
      await connected;
      const connectedAt = performance.now();
      const [event] = await evicted;
      const latency = performance.now() - connectedAt;

      expect(latency, "not evicted before the timeout").to.be.at.least(TEST_TIMEOUT - 2);
      expect(latency, `evicted within ${TEST_TIMEOUT} + ${TOLERANCE} ms`).to.be.below(TEST_TIMEOUT + TOLERANCE);
      expect(event.reason).to.equal("evicted");
      expect(event.details).to.contain("heartbeat timeout");
      expect(
        raw.received.some((c) => c.kind.case === "ping"),
        "the raw client was pinged",
      ).to.equal(true);

      const status = await statusOf(raw);
      expect(status.code).to.equal(Status.UNAVAILABLE);
      expect(status.details).to.contain("heartbeat timeout");

      const pongs = pongsOf(master, "healthy");
      await sleep(TEST_TIMEOUT);
      expect(
        events.evicted.filter((e) => e.slave.id === "healthy"),
        "evictions of the healthy slave",
      ).to.have.length(0);
      expect(events.disconnected.filter((e) => e.slave.id === "healthy")).to.have.length(0);
      expect(pongsOf(master, "healthy"), "the healthy slave keeps ponging").to.be.above(pongs);
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["healthy"]);
    });
  });

  describe("leaving", () => {
    it("removes a slave that closes at once, as 'disconnected'", async () => {
      const master = await startMaster();
      const events = recordEvents(master);
      const slave = await startSlave(master.address, { id: "leaver" });
      await waitFor(() => pongsOf(master, "leaver") >= 1, 2_000, "a pong");

      const started = performance.now();
      await slave.close();
      const elapsed = performance.now() - started;

      // The master saw the end of the stream before it acknowledged it.
      expect(events.disconnected.map((e) => [e.slave.id, e.reason])).to.deep.equal([["leaver", "disconnected"]]);
      expect(elapsed, "close() took").to.be.below(TEST_TIMEOUT);
      expect(master.size).to.equal(0);
      expect(slave.state).to.equal("closed");
      await sleep(TEST_TIMEOUT + 20);
      expect(events.evicted, "no eviction afterwards").to.have.length(0);
      expect(events.connected, "no reconnect").to.have.length(1);
    });

    it("removes a raw client that cancels its call, as 'disconnected'", async () => {
      const master = await startMaster();
      const events = recordEvents(master);
      const raw = rawClient(master.address, { id: "canceller", autoPong: true });
      await raw.headers;
      const disconnected = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "canceller", TEST_TIMEOUT);
      raw.call.cancel();
      const [event] = await disconnected;

      expect(event.reason).to.equal("disconnected");
      expect(master.size).to.equal(0);
      expect((await statusOf(raw)).code).to.equal(Status.CANCELLED);
      expect(events.evicted).to.have.length(0);
    });
  });

  describe("identity", () => {
    it("lets a second connection with the same id replace the first", async () => {
      const master = await startMaster();
      const events = recordEvents(master);
      const first = rawClient(master.address, { id: "dup", autoPong: true });
      await first.headers;
      const replaced = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "dup");
      const second = rawClient(master.address, { id: "dup", autoPong: true });
      await second.headers;
      const [event] = await replaced;

      expect(event.reason).to.equal("replaced");
      const status = await statusOf(first);
      expect(status.code).to.equal(Status.UNAVAILABLE);
      expect(status.details).to.contain("replaced");

      const registered = master.slaves();
      expect(registered.map((s) => s.id)).to.deep.equal(["dup"]);
      expect(registered[0]!.peer, "the registered connection is the newer one").not.to.equal(event.slave.peer);
      const received = second.received.length;
      await waitFor(() => second.received.length > received, 1_000, "a ping on the second connection");
      expect(second.finalStatus).to.equal(undefined);
      expect(events.connected).to.have.length(2);
      expect(events.evicted).to.have.length(0);
    });

    it("assigns an id to a slave that has none, and the slave reports it", async () => {
      const master = await startMaster();
      const slave = createSlave(master.address);
      expect(slave.id).to.equal(undefined);
      const [{ id }] = await once(slave, "connected");

      expect(id).to.match(/^slave-[0-9a-f]{8}$/);
      expect(slave.id).to.equal(id);
      expect(master.slaves().map((s) => s.id)).to.deep.equal([id]);
    });

    it("refuses an empty id and a 200-character id with INVALID_ARGUMENT", async () => {
      const master = await startMaster();
      const events = recordEvents(master);

      const empty = rawClient(master.address, { id: "" });
      const long = rawClient(master.address, { id: "x".repeat(200) });
      const [emptyStatus, longStatus] = await Promise.all([statusOf(empty), statusOf(long)]);

      expect(emptyStatus.code, emptyStatus.details).to.equal(Status.INVALID_ARGUMENT);
      expect(emptyStatus.details).to.contain("empty");
      expect(longStatus.code, longStatus.details).to.equal(Status.INVALID_ARGUMENT);
      expect(longStatus.details).to.contain("longer than 128");
      expect(master.size).to.equal(0);
      expect(events.connected).to.have.length(0);
      // The Slave refuses such ids before connecting.
      expect(() => new Slave({ master: master.address, id: "x".repeat(200), logger: silentLogger() })).to.throw(NetSyncError);
      expect(() => new Slave({ master: master.address, id: "", logger: silentLogger() })).to.throw(NetSyncError);
    });
  });

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
    it("send() reaches only the named slave; broadcast() reaches all", async () => {
      const master = await startMaster();
      const ids = ["a", "b", "c"];
      const received = new Map<string, string[]>(ids.map((id) => [id, []]));
      const contexts = new Map<string, string[]>(ids.map((id) => [id, []]));
      await Promise.all(
        ids.map(async (id) => {
          const slave = await startSlave(master.address, {
            id,
            onCommand: (_command, { slaveId }) => {
              contexts.get(id)!.push(slaveId);
            },
          });
          slave.on("command", (command: Custom) => received.get(id)!.push(command.data));
        }),
      );

      expect(master.send("b", "only-b")).to.equal(1);
      await waitFor(() => received.get("b")!.length === 1, 1_000, "b to receive its command");
      expect(master.send("nobody", "lost")).to.equal(0);
      await sleep(50);
      expect(received.get("a")).to.deep.equal([]);
      expect(received.get("c")).to.deep.equal([]);
      expect(received.get("b")).to.deep.equal(["only-b"]);

      expect(master.broadcast({ data: "everyone" })).to.equal(3);
      await waitFor(() => ids.every((id) => received.get(id)!.includes("everyone")), 1_000, "the broadcast to reach all");
      expect(received.get("a")).to.deep.equal(["everyone"]);
      expect(received.get("b")).to.deep.equal(["only-b", "everyone"]);
      expect(received.get("c")).to.deep.equal(["everyone"]);
      await waitFor(() => contexts.get("c")!.length === 1, 1_000, "the handlers to run");
      for (const id of ids)
        expect(
          contexts.get(id)!.every((slaveId) => slaveId === id),
          `context of ${id}`,
        ).to.equal(true);
      expect(master.slaves().find((s) => s.id === "b")!.commandsSent).to.equal(2);
    });

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
  });

  describe("bad input", () => {
    it("ends a stream that sends a malformed frame with INVALID_ARGUMENT, sparing a healthy slave", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "healthy" });
      const raw = rawClient(master.address, { id: "garbler", autoPong: true });
      await raw.headers;
      const disconnected = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "garbler");
      raw.write(new Encoded(Buffer.from([0x0a, 0xff])));

      const status = await statusOf(raw);
      expect(status.code, status.details).to.equal(Status.INVALID_ARGUMENT);
      expect(status.details).to.contain("malformed");
      const [event] = await disconnected;
      expect(event.reason).to.equal("error");

      const pongs = pongsOf(master, "healthy");
      await waitFor(() => pongsOf(master, "healthy") >= pongs + 3, 1_000, "3 more pongs from the healthy slave");
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["healthy"]);
    });

    it("ends a stream that sends an oversized message with RESOURCE_EXHAUSTED and keeps serving others", async () => {
      const master = await startMaster({ maxMessageBytes: 1024 });
      const events = recordEvents(master);
      const commands: string[] = [];
      master.on("command", (id) => commands.push(id));
      await startSlave(master.address, { id: "healthy" });
      const raw = rawClient(master.address, { id: "hog", autoPong: true });
      await raw.headers;
      raw.write({ kind: { case: "custom", value: { data: "x".repeat(2_000) } } });

      const status = await statusOf(raw);
      expect(status.code, status.details).to.equal(Status.RESOURCE_EXHAUSTED);
      // Removed from the registry by the end of its stream, not by a heartbeat timeout.
      await waitFor(() => !master.slaves().some((s) => s.id === "hog"), TEST_TIMEOUT / 2, "the hog to leave the registry");
      expect(commands, "the oversized Custom was not delivered").to.deep.equal([]);

      const pongs = pongsOf(master, "healthy");
      await waitFor(() => pongsOf(master, "healthy") >= pongs + 3, 1_000, "3 more pongs from the healthy slave");
      await startSlave(master.address, { id: "newcomer" });
      expect(
        master
          .slaves()
          .map((s) => s.id)
          .sort(),
      ).to.deep.equal(["healthy", "newcomer"]);
      expect(
        events.evicted.filter((e) => e.slave.id !== "hog"),
        "evictions of others",
      ).to.have.length(0);
    });
  });

  describe("shutdown", () => {
    it("master.close() ends slave streams with UNAVAILABLE; slave.close() then leaves nothing running", async () => {
      const baseline = process.getActiveResourcesInfo().filter((r) => r !== "Timeout").length;
      const master = await startMaster();
      const slaves = await Promise.all(["one", "two"].map((id) => startSlave(master.address, { id })));
      await waitFor(() => master.slaves().every((s) => s.pongsReceived >= 1) && master.size === 2, 2_000, "pongs");

      const lost = slaves.map((slave) => once(slave, "disconnected"));
      const closing = performance.now();
      await within(master.close(), 2_000, "master.close()");
      const closeMs = performance.now() - closing;
      for (const [{ code, reason }] of await Promise.all(lost)) {
        expect(code).to.equal(Status.UNAVAILABLE);
        expect(reason).to.contain("master shutting down");
      }
      expect(master.size).to.equal(0);
      expect(closeMs, "master.close() did not wait for the shutdown grace").to.be.below(1_000);

      await Promise.all(slaves.map((slave) => slave.close()));
      let reconnects = 0;
      for (const slave of slaves) {
        expect(slave.state).to.equal("closed");
        const internals = slave as unknown as { session: unknown; reconnectTimer: unknown };
        expect(internals.session, "session").to.equal(undefined);
        expect(internals.reconnectTimer, "reconnect timer").to.equal(undefined);
        slave.on("connected", () => reconnects++);
        slave.on("disconnected", () => reconnects++);
      }
      // No reconnect timer, no channel, no socket left behind.
      await waitFor(
        () => process.getActiveResourcesInfo().filter((r) => r !== "Timeout").length <= baseline,
        1_000,
        () => `handles back to the baseline (${baseline}); now ${process.getActiveResourcesInfo().join(", ")}`,
      );
      await sleep(250); // longer than the largest backoff (200 ms)
      expect(reconnects, "activity after close()").to.equal(0);
      for (const slave of slaves) expect(slave.state).to.equal("closed");
    });
  });
});
