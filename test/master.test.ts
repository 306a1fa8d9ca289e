import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { type Command, CommandSchema, type Custom, NetSyncService } from "../gen/netsync/v1/netsync_pb.js";
import { Master, NetSyncError, Slave, silentLogger } from "../src/index.js";
import { Encoded, openBidi } from "../src/internal.js";
import {
  cleanup,
  createSlave,
  gate,
  once,
  onceWhere,
  pongsOf,
  rawClient,
  recordEvents,
  rejection,
  sleep,
  startMaster,
  startSlave,
  statusOf,
  TEST_TIMEOUT,
  TOLERANCE,
  track,
  waitFor,
  within,
} from "./helpers.js";

const Status = grpc.status;

describe("Master", () => {
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

    it("pings the streams of one HTTP/2 connection in the same slice, and a connection accepted once that slot is full in another", async () => {
      // 100 slices of 10 ms; with a slice per stream, 32 streams would get their Pings 310 ms apart. A new
      // connection joins the slot being filled until it holds 32 more than the emptiest (PingSlots' block),
      // so the 32 shared streams fill it and the next connection goes to another slot.
      const interval = 1_000;
      const master = await startMaster({ heartbeatInterval: interval, heartbeatTimeout: 3 * interval, heartbeatSliceSize: 1 });
      // Per stream, each round's seq with the master's sentAt: one slice is one encoding, so one sentAt.
      // Read from the Ping rather than timed on arrival, so a loaded machine slowing this client cannot move it.
      const sentAt = new Map<string, Map<bigint, number>>();
      const open = (client: grpc.Client, id: string) => {
        const metadata = new grpc.Metadata();
        metadata.set("netsync-slave-id", id);
        const call = openBidi(client, NetSyncService.method.sync, metadata);
        call.on("error", () => {});
        call.on("data", (command: Command) => {
          if (command.kind.case !== "ping") return;
          const { seq, sentAtUnixMs } = command.kind.value;
          (sentAt.get(id) ?? sentAt.set(id, new Map()).get(id)!).set(seq, Number(sentAtUnixMs));
          call.write(create(CommandSchema, { kind: { case: "pong", value: { seq } } }));
        });
        track(() => call.cancel());
      };
      const channel = { "grpc.use_local_subchannel_pool": 1 };
      const shared = new grpc.Client(master.address, grpc.credentials.createInsecure(), channel);
      const other = new grpc.Client(master.address, grpc.credentials.createInsecure(), channel);
      track(() => shared.close());
      track(() => other.close());
      const muxed = Array.from({ length: 32 }, (_, i) => `mux-${i}`);
      for (const id of muxed) open(shared, id);
      await waitFor(() => master.size === muxed.length, 2_000, "the multiplexed streams to register");
      open(other, "alone");
      // A round every stream got, "alone" included.
      const commonRound = () => [...(sentAt.get("alone")?.keys() ?? [])].find((seq) => muxed.every((id) => sentAt.get(id)?.has(seq)));
      await waitFor(() => commonRound() !== undefined, 5_000, "a round seen by every stream");
      const seq = commonRound()!;
      // All 32 shared Pings of that round carry the same sentAt (a slice per stream would spread them 310 ms).
      const shared0 = muxed.map((id) => sentAt.get(id)!.get(seq)!);
      expect(Math.max(...shared0) - Math.min(...shared0), "spread of one round's Pings over the shared connection").to.equal(0);
      // "alone" is in another slot, a multiple of 10 ms away from the shared one in the same round.
      expect(Math.abs(sentAt.get("alone")!.get(seq)! - shared0[0]!), "the other connection's slice").to.be.at.least(5);
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

  describe("master.request()", () => {
    it("resolves with the handler's return value (text, or JSON for objects)", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "r-text", onCommand: (c) => c.data.toUpperCase() });
      await startSlave(master.address, { id: "r-obj", onCommand: async (c) => ({ len: c.data.length }) });
      await startSlave(master.address, { id: "r-void", onCommand: () => undefined });
      expect(await within(master.request("r-text", "abc", { timeout: 2_000 }), 3_000, "request")).to.equal("ABC");
      expect(JSON.parse(await within(master.request("r-obj", { data: "abcd" }, { timeout: 2_000 }), 3_000, "request"))).to.deep.equal({
        len: 4,
      });
      expect(await within(master.request("r-void", "x", { timeout: 2_000 }), 3_000, "request")).to.equal("");
      // Concurrent requests each get their own reply.
      const many = await within(
        Promise.all(["a", "b", "c", "d"].map((d) => master.request("r-text", d, { timeout: 2_000 }))),
        3_000,
        "concurrent requests",
      );
      expect(many).to.deep.equal(["A", "B", "C", "D"]);
    });

    it("rejects with DEADLINE_EXCEEDED when the handler takes longer than the timeout", async () => {
      const master = await startMaster();
      const slow = gate();
      await startSlave(master.address, { id: "slow", onCommand: (c) => (c.data === "slow" ? slow.promise : "quick") });
      const started = performance.now();
      const error = await rejection(master.request("slow", "slow", { timeout: 80 }), 2_000, "request to a slow handler");
      expect(error.code).to.equal(Status.DEADLINE_EXCEEDED);
      expect(performance.now() - started).to.be.within(70, 1_000);
      // The late reply is dropped and the slave stays usable.
      slow.release("late");
      expect(await within(master.request("slow", "other", { timeout: 2_000 }), 3_000, "a second request")).to.equal("quick");
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["slow"]);
    });

    it("rejects with UNAVAILABLE when the slave disconnects before replying", async () => {
      const master = await startMaster();
      const never = gate();
      const slave = await startSlave(master.address, { id: "quitter", onCommand: () => never.promise });
      const command = once(slave, "command");
      const pending = master.request("quitter", "x", { timeout: 5_000 });
      await command;
      const [error] = await Promise.all([rejection(pending, 2_000, "request to a closing slave"), slave.close()]);
      expect(error.code).to.equal(Status.UNAVAILABLE);
      expect(error.message).to.match(/disconnected/);
    });

    it("rejects with UNAVAILABLE when the slave is evicted before replying", async () => {
      const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 300 });
      const raw = rawClient(master.address, { id: "reader" });
      await within(raw.headers, 2_000, "the raw client's headers");
      const started = performance.now();
      const error = await rejection(master.request("reader", "x", { timeout: 5_000 }), 2_000, "request to a mute client");
      expect(error.code).to.equal(Status.UNAVAILABLE);
      expect(error.message).to.match(/evicted/);
      expect(performance.now() - started).to.be.lessThan(1_500);
      const custom = raw.received.find((c) => c.kind.case === "custom");
      expect(custom?.kind.value).to.include({ data: "x" });
      expect(custom?.kind.case === "custom" && custom.kind.value.requestId).to.not.equal(0n);
      expect((await within(raw.status, 2_000, "the raw client's status")).code).to.equal(Status.UNAVAILABLE);
    });

    it("rejects with UNAVAILABLE when the master closes while it is pending", async () => {
      const master = await startMaster();
      const never = gate();
      const slave = await startSlave(master.address, { id: "orphan", onCommand: () => never.promise });
      const command = once(slave, "command");
      const pending = master.request("orphan", "x", { timeout: 5_000 });
      await command;
      const [error] = await Promise.all([
        rejection(pending, 2_000, "request pending at close()"),
        within(master.close(), 3_000, "master.close()"),
      ]);
      expect(error.code).to.equal(Status.UNAVAILABLE);
      expect(error.message).to.match(/shutdown|shutting down/);
    });

    it("rejects with NOT_FOUND for an unknown slave and UNKNOWN when the handler throws", async () => {
      const master = await startMaster();
      await startSlave(master.address, {
        id: "r-throw",
        onCommand: async () => {
          throw new Error("no such file");
        },
      });
      const notFound = await rejection(master.request("nobody", "x", { timeout: 1_000 }), 500, "request to nobody");
      expect(notFound.code).to.equal(Status.NOT_FOUND);
      const unknown = await rejection(master.request("r-throw", "x", { timeout: 2_000 }), 3_000, "request to a throwing handler");
      expect(unknown.code).to.equal(Status.UNKNOWN);
      expect(unknown.message).to.match(/no such file/);
      const reply = await within(master.requestReply("r-throw", "y", { timeout: 2_000 }), 3_000, "requestReply");
      expect(reply.result.case).to.equal("error");
      expect(reply.requestId).to.not.equal(0n);
    });
  });
});
