/**
 * SlaveConnection (src/fleet/slave-connection.ts): the master's side of one slave
 * stream, over a stub call: bounded writes, the rate window, Ping/Pong RTT,
 * requests awaiting a Reply and their timers, end/abort/dispose, info().
 */
import { EventEmitter } from "node:events";
import { constants as http2Constants } from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { type Reply, ReplySchema } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../../src/code.js";
import { NetSyncError } from "../../src/errors.js";
import { SlaveConnection, type SyncCall } from "../../src/fleet/slave-connection.js";
import { Encoded } from "../../src/grpc-adapter.js";

/** A grpc-js server call as SlaveConnection uses it: writes are recorded and flushed by the test. */
class StubCall extends EventEmitter {
  readonly writes: { message: unknown; flush: () => void }[] = [];
  readonly errors: unknown[] = [];
  readonly metadata = {};
  /** Stands in for grpc-js's call chain down to the HTTP/2 stream (see http2StreamOf). */
  call: unknown;

  constructor(stream?: FakeStream) {
    super();
    if (stream) this.call = { nextCall: { stream } };
    this.on("error", (error) => this.errors.push(error));
  }

  write(message: unknown, cb: () => void): boolean {
    this.writes.push({ message, flush: cb });
    return true;
  }

  getPeer(): string {
    return "10.0.0.1:5000";
  }
}

/** The bits of a ServerHttp2Stream that abort() touches. */
class FakeStream {
  closed = false;
  destroyed = false;
  readonly closeCodes: number[] = [];
  close(code: number): void {
    this.closeCodes.push(code);
    this.closed = true;
  }
}

const MAX_PENDING = 1000;

function connect(options: { stream?: FakeStream; connectedAt?: number; maxPendingBytes?: number } = {}) {
  const call = new StubCall(options.stream);
  const connection = new SlaveConnection(
    "slave-1",
    "10.0.0.1:5000",
    call as unknown as SyncCall,
    options.connectedAt ?? 0,
    options.maxPendingBytes ?? MAX_PENDING,
  );
  return { call, connection };
}

const bytes = (n: number) => new Encoded(Buffer.alloc(n));
const reply = (requestId: bigint): Reply => create(ReplySchema, { requestId });

/** Settles to "pending" if `promise` has not settled by the next macrotask. */
async function state(promise: Promise<unknown>): Promise<"pending" | "resolved" | "rejected"> {
  const pending = Symbol("pending");
  const outcome = await Promise.race([
    promise.then(
      () => "resolved" as const,
      () => "rejected" as const,
    ),
    sleep(0).then(() => pending),
  ]);
  return outcome === pending ? "pending" : (outcome as "resolved" | "rejected");
}

/** Timers alive in this process, mocha's own per-test timeout included. */
const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/**
 * The timer count to compare against within an async test: mocha starts
 * its timeout timer once the test has returned its promise, so wait a turn.
 */
async function idleTimeouts(): Promise<number> {
  await sleep(0);
  return activeTimeouts();
}

describe("SlaveConnection", () => {
  /** Connections made by a test, disposed after it so no timer outlives it. */
  let made: SlaveConnection[] = [];
  const track = (c: ReturnType<typeof connect>) => {
    made.push(c.connection);
    return c;
  };
  afterEach(() => {
    for (const c of made) c.dispose();
    made = [];
  });

  describe("write", () => {
    it("queues a message, counts its bytes until the callback flushes it", () => {
      const { call, connection } = connect();
      const message = bytes(300);
      expect(connection.write(message)).to.equal(true);
      expect(call.writes).to.have.length(1);
      expect(call.writes[0]!.message).to.equal(message);
      expect(connection.pendingBytes).to.equal(300);
      expect(connection.write(bytes(200))).to.equal(true);
      expect(connection.pendingBytes).to.equal(500);
      call.writes[0]!.flush();
      expect(connection.pendingBytes).to.equal(200);
      call.writes[1]!.flush();
      expect(connection.pendingBytes).to.equal(0);
    });

    it("refuses a message that would put pendingBytes over maxPendingBytes, and writes nothing", () => {
      const { call, connection } = connect();
      expect(connection.write(bytes(600))).to.equal(true);
      expect(connection.write(bytes(401)), "600 + 401 > 1000").to.equal(false);
      expect(call.writes).to.have.length(1);
      expect(connection.pendingBytes).to.equal(600);
      expect(connection.write(bytes(400)), "600 + 400 = 1000 is allowed").to.equal(true);
      expect(connection.pendingBytes).to.equal(1000);
      expect(connection.write(bytes(1)), "full").to.equal(false);
      expect(call.writes).to.have.length(2);
    });

    it("always accepts the first message into an empty queue, however large", () => {
      const { call, connection } = connect();
      expect(connection.write(bytes(5 * MAX_PENDING))).to.equal(true);
      expect(connection.pendingBytes).to.equal(5 * MAX_PENDING);
      expect(connection.write(bytes(1)), "but nothing more behind it").to.equal(false);
      call.writes[0]!.flush();
      expect(connection.pendingBytes).to.equal(0);
      expect(connection.write(bytes(5 * MAX_PENDING)), "empty again").to.equal(true);
      expect(call.writes).to.have.length(2);
    });

    it("accepts again once a flush makes room", () => {
      const { call, connection } = connect();
      expect(connection.write(bytes(700))).to.equal(true);
      expect(connection.write(bytes(500))).to.equal(false);
      call.writes[0]!.flush();
      expect(connection.write(bytes(500))).to.equal(true);
      expect(connection.pendingBytes).to.equal(500);
    });

    it("returns false after end(), and writes nothing", () => {
      const { call, connection } = connect();
      connection.end(Code.CANCELLED, "bye");
      expect(connection.write(bytes(1))).to.equal(false);
      expect(call.writes).to.have.length(0);
      expect(connection.pendingBytes).to.equal(0);
    });
  });

  describe("admit", () => {
    it("allows `limit` messages in a one-second window, refuses the next, and opens a new window 1000 ms later", () => {
      const { connection } = connect({ connectedAt: 5000 });
      for (let i = 0; i < 3; i++) expect(connection.admit(5000 + i * 100, 3), `message ${i}`).to.equal(true);
      expect(connection.admit(5500, 3), "4th in the window").to.equal(false);
      expect(connection.admit(5999, 3), "still the same window").to.equal(false);
      expect(connection.admit(6000, 3), "window opened at connectedAt, a new one 1000 ms later").to.equal(true);
      expect(connection.admit(6999, 3)).to.equal(true);
      expect(connection.admit(6999, 3)).to.equal(true);
      expect(connection.admit(6999, 3)).to.equal(false);
      expect(connection.admit(8500, 3), "a window opens at the first message after a gap").to.equal(true);
      expect(connection.admit(9499, 3)).to.equal(true);
      expect(connection.admit(9499, 3)).to.equal(true);
      expect(connection.admit(9499, 3)).to.equal(false);
      expect(connection.admit(9500, 3)).to.equal(true);
    });

    it("a limit of 0 refuses everything", () => {
      const { connection } = connect();
      expect(connection.admit(0, 0)).to.equal(false);
      expect(connection.admit(2000, 0)).to.equal(false);
    });
  });

  describe("pinged / ponged", () => {
    it("turns the Pong of the latest Ping into an RTT and counts both", () => {
      const { connection } = connect();
      expect(connection.rttMs).to.equal(undefined);
      connection.pinged(1, 100);
      expect(connection.pingsSent).to.equal(1);
      expect(connection.ponged(1n, 112.5)).to.equal(12.5);
      expect(connection.rttMs).to.equal(12.5);
      expect(connection.pongsReceived).to.equal(1);
    });

    it("counts an outdated or unknown Pong without touching the RTT", () => {
      const { connection } = connect();
      connection.pinged(1, 100);
      connection.ponged(1n, 110);
      connection.pinged(2, 200);
      connection.pinged(3, 300);
      expect(connection.ponged(2n, 305), "outdated").to.equal(undefined);
      expect(connection.ponged(99n, 306), "unknown").to.equal(undefined);
      expect(connection.rttMs).to.equal(10);
      expect(connection.ponged(3n, 320)).to.equal(20);
      expect(connection.rttMs).to.equal(20);
      expect(connection.pingsSent).to.equal(3);
      expect(connection.pongsReceived).to.equal(4);
    });

    it("a Pong of seq 0 never matches, before any Ping or after a Ping of seq 0", () => {
      const { connection } = connect();
      expect(connection.ponged(0n, 50), "no Ping yet").to.equal(undefined);
      connection.pinged(0, 100);
      expect(connection.ponged(0n, 150)).to.equal(undefined);
      expect(connection.rttMs).to.equal(undefined);
      expect(connection.pongsReceived).to.equal(2);
      expect(connection.pingsSent).to.equal(1);
    });

    it("a second Pong of the latest seq measures again from the same send time", () => {
      const { connection } = connect();
      connection.pinged(5, 100);
      expect(connection.ponged(5n, 110)).to.equal(10);
      expect(connection.ponged(5n, 130)).to.equal(30);
      expect(connection.pongsReceived).to.equal(2);
    });
  });

  describe("requests", () => {
    it("awaitReply resolves through replied(), which returns the latency; the timeout no longer fires", async () => {
      const { connection } = track(connect());
      let rejected: unknown;
      const idle = await idleTimeouts();
      const promise = connection.awaitReply(7n, 30, 1000);
      promise.catch((e) => (rejected = e));
      expect(activeTimeouts(), "awaitReply starts a timer").to.equal(idle + 1);
      expect(await state(promise)).to.equal("pending");
      const answer = reply(7n);
      expect(connection.replied(answer, 1042)).to.equal(42);
      expect(activeTimeouts(), "replied() clears it").to.equal(idle);
      expect(await promise).to.equal(answer);
      await sleep(60);
      expect(rejected, "the 30 ms timer was cleared").to.equal(undefined);
      expect(connection.replied(reply(7n), 1100), "already answered").to.equal(undefined);
    });

    it("replied() returns undefined for a request nobody awaits and settles nothing", async () => {
      const { connection } = track(connect());
      const promise = connection.awaitReply(1n, 1000, 0);
      expect(connection.replied(reply(2n), 10)).to.equal(undefined);
      expect(await state(promise)).to.equal("pending");
      expect(connection.replied(reply(1n), 10)).to.equal(10);
      expect(await state(promise)).to.equal("resolved");
    });

    it("awaitReply rejects with DEADLINE_EXCEEDED after its timeout, and forgets the request", async () => {
      const { connection } = track(connect());
      const started = performance.now();
      const error = await connection.awaitReply(3n, 25, 0).then(
        () => expect.fail("resolved"),
        (e: unknown) => e,
      );
      expect(performance.now() - started).to.be.at.least(20);
      expect(error).to.be.instanceOf(NetSyncError);
      expect((error as NetSyncError).code).to.equal(Code.DEADLINE_EXCEEDED);
      expect((error as NetSyncError).code).to.equal(4);
      expect((error as Error).message)
        .to.contain("slave-1")
        .and.contain("25 ms");
      expect(connection.replied(reply(3n), 50), "a late Reply finds nothing").to.equal(undefined);
    });

    it("keeps requests apart: each resolves or times out on its own", async () => {
      const { connection } = track(connect());
      const fast = connection.awaitReply(1n, 20, 0);
      const slow = connection.awaitReply(2n, 2000, 0);
      fast.catch(() => {});
      expect(
        await fast.then(
          () => "resolved",
          (e: NetSyncError) => e.code,
        ),
      ).to.equal(Code.DEADLINE_EXCEEDED);
      expect(await state(slow)).to.equal("pending");
      expect(connection.replied(reply(2n), 5)).to.equal(5);
      expect((await slow).requestId).to.equal(2n);
    });

    it("failRequests rejects every pending request with the given error, and clears their timers", async () => {
      const { connection } = track(connect());
      const idle = await idleTimeouts();
      const promises = [1n, 2n, 3n].map((id) => connection.awaitReply(id, 30, 0));
      expect(activeTimeouts()).to.equal(idle + 3);
      const error = new NetSyncError("slave left", Code.UNAVAILABLE);
      connection.failRequests(error);
      expect(activeTimeouts(), "failRequests() clears every request timer").to.equal(idle);
      const outcomes = await Promise.allSettled(promises);
      for (const outcome of outcomes) {
        expect(outcome.status).to.equal("rejected");
        expect((outcome as PromiseRejectedResult).reason).to.equal(error);
      }
      expect(connection.replied(reply(1n), 1), "nothing left to answer").to.equal(undefined);
    });
  });

  describe("end", () => {
    it("emits exactly one 'error' with the code and details, even if called twice, and sets closed", () => {
      const { call, connection } = connect();
      expect(connection.closed).to.equal(false);
      connection.end(Code.RESOURCE_EXHAUSTED, "too many messages");
      connection.end(Code.INTERNAL, "second");
      expect(connection.closed).to.equal(true);
      expect(call.errors).to.have.length(1);
      const error = call.errors[0] as Error & { code: number; details: string };
      expect(error).to.be.instanceOf(Error);
      expect(error.code).to.equal(Code.RESOURCE_EXHAUSTED);
      expect(error.details).to.equal("too many messages");
      expect(error.message).to.equal("too many messages");
    });
  });

  describe("abort / abortAfter / dispose", () => {
    it("abortAfter with no HTTP/2 stream behind the call calls done(false)", async () => {
      const { connection } = track(connect());
      const calls: boolean[] = [];
      connection.abortAfter(10, (reset) => calls.push(reset));
      expect(calls).to.deep.equal([]);
      await sleep(40);
      expect(calls).to.deep.equal([false]);
      expect(connection.abort()).to.equal(false);
    });

    it("abortAfter resets an open HTTP/2 stream with CANCEL and calls done(true); a closed one is not reset again", async () => {
      const stream = new FakeStream();
      const { connection } = track(connect({ stream }));
      const calls: boolean[] = [];
      connection.abortAfter(10, (reset) => calls.push(reset));
      await sleep(40);
      expect(calls).to.deep.equal([true]);
      expect(stream.closeCodes).to.deep.equal([http2Constants.NGHTTP2_CANCEL]);
      expect(connection.abort(), "already closed").to.equal(false);
      const destroyed = new FakeStream();
      destroyed.destroyed = true;
      expect(track(connect({ stream: destroyed })).connection.abort()).to.equal(false);
      expect(destroyed.closeCodes).to.deep.equal([]);
    });

    it("a second abortAfter replaces the first: done is called once", async () => {
      const { connection } = track(connect());
      const calls: string[] = [];
      connection.abortAfter(10, () => calls.push("first"));
      connection.abortAfter(20, () => calls.push("second"));
      await sleep(50);
      expect(calls).to.deep.equal(["second"]);
    });

    it("dispose() stops an abortAfter(): done is never called", async () => {
      const stream = new FakeStream();
      const { connection } = track(connect({ stream }));
      let called = false;
      connection.abortAfter(15, () => (called = true));
      connection.dispose();
      await sleep(50);
      expect(called).to.equal(false);
      expect(stream.closeCodes).to.deep.equal([]);
    });

    it("dispose() clears the request timers and rejects a pending request with UNAVAILABLE, never leaving it hanging", async () => {
      const { connection } = track(connect());
      const idle = await idleTimeouts();
      const promise = connection.awaitReply(1n, 15, 0);
      const outcome = promise.then(
        () => "resolved",
        (e: NetSyncError) => e.code,
      );
      connection.abortAfter(15, () => expect.fail("aborted after dispose()"));
      expect(activeTimeouts()).to.equal(idle + 2);
      connection.dispose();
      expect(activeTimeouts(), "dispose() clears the request and abort timers").to.equal(idle);
      expect(await outcome).to.equal(Code.UNAVAILABLE);
      await sleep(50);
      // Settled once: a late Reply finds nothing.
      expect(connection.replied(reply(1n), 3)).to.equal(undefined);
    });
  });

  describe("info", () => {
    it("reports the counters and turns monotonic times into Dates", () => {
      const before = Date.now();
      const { connection } = connect({ connectedAt: performance.now() });
      const after = Date.now();
      connection.pinged(1, 10);
      connection.ponged(1n, 14);
      connection.commandsSent = 2;
      connection.lastSeen = connection.connectedAt + 5000;
      const info = connection.info();
      expect(info.id).to.equal("slave-1");
      expect(info.peer).to.equal("10.0.0.1:5000");
      expect(info.connectedAt).to.be.instanceOf(Date);
      expect(info.connectedAt.getTime()).to.be.within(before - 50, after + 50);
      expect(info.lastSeen.getTime() - info.connectedAt.getTime()).to.be.closeTo(5000, 1);
      expect(info).to.include({ rttMs: 4, pingsSent: 1, pongsReceived: 1, commandsSent: 2 });
    });

    it("lastSeen starts at connectedAt and rttMs is undefined before the first Pong", () => {
      const { connection } = connect({ connectedAt: 1234 });
      const info = connection.info();
      expect(info.lastSeen.getTime()).to.equal(info.connectedAt.getTime());
      expect(info.connectedAt.getTime()).to.be.closeTo(performance.timeOrigin + 1234, 1);
      expect(info.rttMs).to.equal(undefined);
      expect(info).to.include({ pingsSent: 0, pongsReceived: 0, commandsSent: 0 });
    });
  });
});
