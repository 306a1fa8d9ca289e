/**
 * The fleet core on its own, without the Master that composes it: a real
 * MasterServer hands it real Sync calls, and the test is its composition
 * root (it supplies the events sink and, for the tracker, a fake scope).
 * That it runs at all this way is the point: the core needs no adapter.
 */
import { expect } from "chai";
import { Code } from "../../src/code.js";
import { DEFAULTS } from "../../src/defaults.js";
import { Fleet, type StreamTracker } from "../../src/fleet/fleet.js";
import { LocalScope } from "../../src/fleet/scope.js";
import { silentLogger } from "../../src/logger.js";
import type { Epoch, MasterEvents } from "../../src/model.js";
import { Selector } from "../../src/selector.js";
import { MasterServer } from "../../src/server/master-server.js";
import { cleanup, rawClient, statusOf, track, waitFor } from "../helpers.js";

type Event = { [K in keyof MasterEvents]: [K, ...MasterEvents[K]] }[keyof MasterEvents];

/** A fleet behind a real gRPC server, started, with every event it emits recorded. */
async function fleetOnServer(options: { interval?: number; timeout?: number } = {}) {
  const events: Event[] = [];
  const fleet = new Fleet({
    heartbeatInterval: options.interval ?? 50,
    heartbeatTimeout: options.timeout ?? 200,
    heartbeatSliceSize: 100,
    maxPendingBytes: 1024 * 1024,
    maxMessagesPerSecond: 1_000,
    historySize: 10,
    admission: DEFAULTS.admission,
    duplicateIds: DEFAULTS.duplicateIds,
    log: silentLogger(),
    notify: (event, ...args) => {
      events.push([event, ...args] as unknown as Event);
    },
  });
  const server = new MasterServer({
    heartbeatTimeout: options.timeout ?? 200,
    maxMessageBytes: 1024 * 1024,
    reflection: false,
    tls: undefined,
    token: undefined,
    serverOptions: {},
    log: silentLogger(),
    onSync: (call) => fleet.accept(call),
    admin: {},
  });
  const port = await server.bind("127.0.0.1", 0);
  fleet.start();
  server.setServing(true);
  track(async () => {
    fleet.close();
    await server.shutdown(0);
  });
  const kinds = () => events.map(([kind]) => kind);
  return { fleet, address: `127.0.0.1:${port}`, events, kinds };
}

describe("Fleet: the core on its own", () => {
  afterEach(cleanup);

  it("accepts a stream, pings it, takes its pongs, and evicts it once silent", async () => {
    const { fleet, address, kinds } = await fleetOnServer();
    const raw = rawClient(address, { id: "s1", autoPong: true, metadata: { "netsync-slave-labels": "role=db" } });
    await waitFor(() => (fleet.slaves()[0]?.pongsReceived ?? 0) >= 2, 2_000, "two pongs from s1");
    expect(fleet.slaves(Selector.parse("role=db")).map((s) => s.id)).to.deep.equal(["s1"]);
    expect(fleet.slaves(Selector.parse("role=web"))).to.deep.equal([]);
    expect(fleet.stats.pongsReceived).to.be.at.least(2);

    const silent = rawClient(address, { id: "quiet" });
    await waitFor(() => kinds().includes("slave:evicted"), 2_000, "the silent slave's eviction");
    expect((await statusOf(silent)).code).to.equal(Code.UNAVAILABLE);
    expect(fleet.has("quiet")).to.equal(false);
    expect(fleet.has("s1")).to.equal(true);
    expect(fleet.recentlyClosed().map((c) => [c.slave.id, c.reason])).to.deep.equal([["quiet", "evicted"]]);
    raw.close();
  });

  it("writes commands to local slaves: send, broadcast by selector, request with its reply", async () => {
    const { fleet, address } = await fleetOnServer({ interval: 1_000, timeout: 5_000 });
    const a = rawClient(address, { id: "a", metadata: { "netsync-slave-labels": "role=db" } });
    const b = rawClient(address, { id: "b" });
    await waitFor(() => fleet.size === 2, 2_000, "both slaves");
    expect(fleet.send("a", "x")).to.equal(1);
    expect(fleet.send("nobody", "x")).to.equal(0);
    expect(await fleet.broadcast("y", Selector.parse("role=db"))).to.equal(1);
    expect(fleet.broadcastNow("z")).to.equal(2);
    await waitFor(() => a.received.length === 3 && b.received.length === 1, 2_000, "every command delivered");
    expect(a.received.map((c) => (c.kind.case === "custom" ? c.kind.value.data : c.kind.case))).to.deep.equal(["x", "y", "z"]);

    b.call.on("data", (command) => {
      if (command.kind.case === "custom" && command.kind.value.requestId > 0n) {
        b.write({ kind: { case: "reply", value: { requestId: command.kind.value.requestId, result: { case: "data", value: "pong!" } } } });
      }
    });
    const reply = await fleet.request("b", "ask", 2_000);
    expect(reply.result).to.deep.equal({ case: "data", value: "pong!" });
    const missing = await fleet.request("nobody", "ask", 100).catch((e: { code: number }) => e.code);
    expect(missing).to.equal(Code.NOT_FOUND);
  });

  it("requestMany: one encoding and request_id for every slave; replies, timeouts, absent and departed slaves each reported once", async () => {
    const { fleet, address } = await fleetOnServer({ interval: 1_000, timeout: 5_000 });
    const answers = rawClient(address, { id: "answers" });
    const silent = rawClient(address, { id: "silent" });
    const leaves = rawClient(address, { id: "leaves" });
    await waitFor(() => fleet.size === 3, 2_000, "three slaves");
    answers.call.on("data", (command) => {
      if (command.kind.case !== "custom" || command.kind.value.requestId === 0n) return;
      const { requestId } = command.kind.value;
      // A stale reply (an older request id) first: it must not be taken for this batch's.
      answers.write({ kind: { case: "reply", value: { requestId: requestId - 1n, result: { case: "data", value: "stale" } } } });
      answers.write({ kind: { case: "reply", value: { requestId, result: { case: "data", value: `re ${command.kind.value.data}` } } } });
    });
    const outcomes: string[] = [];
    const batch = fleet.requestMany({ data: "ask", commandId: "job-1" }, 300, {
      reply: (slaveId, reply) => outcomes.push(`${slaveId} reply ${reply.result.case === "data" ? reply.result.value : "?"}`),
      fail: (slaveId, error) => outcomes.push(`${slaveId} ${error.code}`),
    });
    for (const id of ["answers", "silent", "leaves", "nobody"]) batch.send(id);
    expect(outcomes).to.deep.equal([`nobody ${Code.NOT_FOUND}`]);
    await waitFor(() => leaves.received.some((c) => c.kind.case === "custom"), 2_000, "the command at leaves");
    leaves.close();
    await waitFor(() => outcomes.length === 4, 2_000, "every outcome");
    expect([...outcomes].sort()).to.deep.equal([
      "answers reply re ask",
      `leaves ${Code.UNAVAILABLE}`,
      `nobody ${Code.NOT_FOUND}`,
      `silent ${Code.DEADLINE_EXCEEDED}`,
    ]);
    const ids = [answers, silent].map((c) => c.received.find((m) => m.kind.case === "custom")?.kind.value);
    expect(ids[0]).to.deep.include({ data: "ask", commandId: "job-1" });
    expect((ids[0] as { requestId: bigint }).requestId).to.equal((ids[1] as { requestId: bigint }).requestId);
    // A later request never reuses the batch's id, and a reply after close() is ignored.
    answers.call.removeAllListeners("data");
    batch.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(outcomes).to.have.length(4);
    answers.close();
    silent.close();
  });

  it("tells its tracker of every stream (stamped, added, removed) and ends a replaced one only for the same epoch", async () => {
    const { fleet, address, kinds } = await fleetOnServer({ interval: 1_000, timeout: 5_000 });
    const calls: string[] = [];
    let seq = 0;
    const tracker: StreamTracker = {
      stamp: (): Epoch => ({ at: 1, master: "m", seq: ++seq }),
      added: (id, epoch) => calls.push(`added ${id} ${epoch.seq}`),
      removed: (id, epoch) => calls.push(`removed ${id} ${epoch.seq}`),
    };
    fleet.tracker = tracker;
    const first = rawClient(address, { id: "s" });
    await waitFor(() => fleet.has("s"), 2_000, "s");
    const epoch = fleet.epochOf("s")!;
    expect(epoch.seq).to.equal(1);
    fleet.endReplaced("s", { ...epoch }, "m2"); // an equal epoch, but not the connection's own: kept
    expect(fleet.has("s")).to.equal(true);
    fleet.endReplaced("s", epoch, "m2");
    expect(fleet.has("s")).to.equal(false);
    expect((await statusOf(first)).details).to.equal("replaced by a newer connection on master m2");
    expect(calls).to.deep.equal(["added s 1", "removed s 1"]);
    expect(kinds().filter((k) => k !== "stalled")).to.deep.equal(["slave:connected", "slave:disconnected"]);
  });

  it("close() ends every stream with UNAVAILABLE and refuses new ones", async () => {
    const { fleet, address } = await fleetOnServer({ interval: 1_000, timeout: 5_000 });
    const held = rawClient(address, { id: "held" });
    await waitFor(() => fleet.has("held"), 2_000, "held");
    fleet.close();
    expect(await statusOf(held)).to.include({ code: Code.UNAVAILABLE, details: "master shutting down" });
    const late = rawClient(address, { id: "late" });
    expect(await statusOf(late)).to.include({ code: Code.UNAVAILABLE, details: "master shutting down" });
    expect(fleet.size).to.equal(0);
  });
});

describe("LocalScope: a master on its own", () => {
  afterEach(cleanup);

  it("answers fleet-wide calls from the local fleet, under this master's id", async () => {
    const { fleet, address } = await fleetOnServer({ interval: 1_000, timeout: 5_000 });
    const scope = new LocalScope(fleet, { id: "solo", address });
    rawClient(address, { id: "a", metadata: { "netsync-slave-labels": "role=db" } });
    rawClient(address, { id: "b" });
    await waitFor(() => fleet.size === 2, 2_000, "both slaves");
    expect(scope.status).to.equal("off");
    expect(scope.masters().map((m) => [m.id, m.slavesHeld, m.self])).to.deep.equal([["solo", 2, true]]);
    const view = await scope.list(Selector.parse("role=db"));
    expect(view.slaves.map((s) => `${s.id}@${s.masterId}`)).to.deep.equal(["a@solo"]);
    expect([view.unanswered, view.clusterAvailable]).to.deep.equal([[], false]);
    expect(await scope.send("b", "x")).to.deep.equal({ written: true, masterId: "solo" });
    expect(await scope.send("c", "x").catch((e: { code: number }) => e.code)).to.equal(Code.NOT_FOUND);
    expect(await scope.broadcast("y", Selector.parse(""))).to.deep.equal({
      written: 2,
      byMaster: { solo: 2 },
      unanswered: [],
      clusterAvailable: false,
    });
  });

  it("pages the local fleet in id order: a limit, a scan limit, a byte budget, a selector, and tokens", async () => {
    const { fleet, address } = await fleetOnServer({ interval: 1_000, timeout: 5_000 });
    const ids = ["e", "a", "d", "b", "c", "f"];
    for (const id of ids) rawClient(address, { id, autoPong: true, metadata: { "netsync-slave-labels": `odd=${"ace".includes(id)}` } });
    await waitFor(() => fleet.size === 6, 2_000, "six slaves");
    const names = (part: { slaves: { id: string }[]; last: string | undefined; done: boolean }) =>
      `${part.slaves.map((s) => s.id).join("")}|${part.last}|${part.done}`;
    expect(names(fleet.page(undefined, undefined, 10))).to.equal("abcdef|f|true");
    expect(names(fleet.page(undefined, { id: "b", inclusive: false }, 2))).to.equal("cd|d|false");
    expect(names(fleet.page(undefined, { id: "b", inclusive: true }, 2))).to.equal("bc|c|false");
    // Scan limit: three ids examined, only the matches among them returned, and where it stopped.
    expect(names(fleet.page(Selector.parse("odd=true"), undefined, 10, 3))).to.equal("ac|c|false");
    expect(names(fleet.page(Selector.parse("odd=true"), { id: "c", inclusive: false }, 10, 3))).to.equal("e|f|true");
    // A byte budget: `take` refuses the third match, so the answer ends before it (the first always goes).
    let taken = 0;
    expect(names(fleet.page(undefined, undefined, 10, Number.POSITIVE_INFINITY, () => ++taken <= 2))).to.equal("ab|b|false");
    expect(names(fleet.page(undefined, undefined, 10, Number.POSITIVE_INFINITY, () => false))).to.equal("a|a|false");

    const scope = new LocalScope(fleet, { id: "solo", address });
    const listed: string[] = [];
    let pageToken = "";
    do {
      const page = await scope.page(Selector.parse("odd=true"), { pageSize: 2, pageToken });
      listed.push(...page.slaves.map((s) => `${s.id}@${s.masterId}`));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(listed).to.deep.equal(["a@solo", "c@solo", "e@solo"]);
    const summary = await scope.summary();
    expect(summary).to.deep.include({ connected: 6, unanswered: [], clusterAvailable: false });
  });
});
