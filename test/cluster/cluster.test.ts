import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { expect } from "chai";
import type { ClusterNode } from "../../src/cluster/cluster-node.js";
import { decodeMessage, encodeMessage, type RouteMessage } from "../../src/cluster/messages.js";
import { Subjects } from "../../src/cluster/subjects.js";
import { Code, codeName } from "../../src/code.js";
import { NetSyncError } from "../../src/errors.js";
import { waitFor } from "../support/wait.js";
import type { FakeFleet } from "./fake-fleet.js";
import { converged, Nodes, percentile } from "./helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

/** Resolves with the time until routing to `slaveId` fails with NOT_FOUND (no responders), polling with short requests. */
async function unroutable(node: ClusterNode, slaveId: string): Promise<number> {
  const started = performance.now();
  for (;;) {
    const err = await node.request(slaveId, "x", 50).catch((e: unknown) => e);
    if (err instanceof NetSyncError && err.code === Code.NOT_FOUND) return performance.now() - started;
    if (performance.now() - started > 1_000) throw new Error(`still routable after 1 s: ${String(err)}`);
  }
}

/**
 * Keeps `workers` routed requests for `slaveId` in flight from `node` until
 * `until` resolves (and at least 100 more have ended after it), and counts how
 * each ended: by the answering master's id, or by the error's code name.
 */
async function flood(node: ClusterNode, slaveId: string, until: Promise<unknown>, workers = 16): Promise<Map<string, number>> {
  const outcomes = new Map<string, number>();
  let ended = 0;
  let stopAt = Number.POSITIVE_INFINITY;
  void until.then(() => {
    stopAt = ended + 100;
  });
  const worker = async () => {
    while (ended < stopAt) {
      const outcome = await node.request(slaveId, "x", 1_000).then(
        (answer) => answer.masterId,
        (err: unknown) => (err instanceof NetSyncError ? codeName(err.code) : String(err)),
      );
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      ended++;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return outcomes;
}

describe("cluster: three masters on one NATS", function () {
  this.timeout(10_000);
  const server = new NatsServer();
  const nodes = new Nodes();
  let m1: { node: ClusterNode; fleet: FakeFleet };
  let m2: { node: ClusterNode; fleet: FakeFleet };
  let m3: { node: ClusterNode; fleet: FakeFleet };

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await server.start();
  });
  after(() => server.kill());

  beforeEach(async () => {
    m1 = nodes.add([server.url], "m1");
    m2 = nodes.add([server.url], "m2");
    m3 = nodes.add([server.url], "m3");
    await converged([m1.node, m2.node, m3.node], ["m1", "m2", "m3"]);
  });
  afterEach(() => nodes.closeAll());

  it("lists every master, itself first, with its address and slaves held", async () => {
    m2.fleet.connect("a");
    m2.fleet.connect("b");
    await waitFor(() => m1.node.masters().find((m) => m.id === "m2")?.slavesHeld === 2, 3_000, "m1 to hear m2 holds 2");
    const masters = m1.node.masters();
    expect(masters[0]).to.include({ id: "m1", self: true, address: m1.fleet.address });
    expect(masters.find((m) => m.id === "m2")).to.include({ address: m2.fleet.address, slavesHeld: 2, self: false });
    expect(m1.node.stats().mastersSeen).to.equal(3);
  });

  it("gives the same fleet view from every master, each slave with its master, selectors applied", async () => {
    m1.fleet.connect("w1", { region: "eu" });
    m2.fleet.connect("w2", { region: "us" });
    m3.fleet.connect("w3", { region: "eu" });
    for (const { node } of [m1, m2, m3]) {
      const view = await node.listSlaves();
      expect(view.unanswered).to.deep.equal([]);
      expect(view.clusterAvailable).to.equal(true);
      expect(view.slaves.map((s) => `${s.id}@${s.masterId}`).sort()).to.deep.equal(["w1@m1", "w2@m2", "w3@m3"]);
      expect(view.masters.map((m) => m.id).sort()).to.deep.equal(["m1", "m2", "m3"]);
      const eu = await node.listSlaves("region=eu");
      expect(eu.slaves.map((s) => s.id).sort()).to.deep.equal(["w1", "w3"]);
    }
  });

  it("gathers a selector's ids by master without listing the slaves (a job's targets), and learns each one's holder", async () => {
    const label = "x".repeat(200);
    for (let i = 0; i < 3_000; i++) m2.fleet.connect(`id-${String(i).padStart(4, "0")}`, { region: "eu", label });
    m3.fleet.connect("w3", { region: "eu" });
    m3.fleet.connect("w4", { region: "us" });
    m1.fleet.connect("w1", { region: "eu" });
    let pageBytes = 0;
    m2.fleet.page = new Proxy(m2.fleet.page, {
      apply(target, self, args) {
        pageBytes++;
        return Reflect.apply(target, self, args);
      },
    });
    const found = await m1.node.listIds("region=eu", 3_000);
    expect(found.unanswered).to.deep.equal([]);
    expect(found.byMaster.map((part) => [part.masterId, part.ids.length])).to.deep.equal([
      ["m1", 1],
      ["m2", 3_000],
      ["m3", 1],
    ]);
    expect(found.byMaster[1]?.ids.slice(0, 2)).to.deep.equal(["id-0000", "id-0001"]);
    expect(found.byMaster[2]?.ids).to.deep.equal(["w3"]);
    // The slaves themselves (≈ 400 bytes each here) were never listed: ids alone, in one answer of ≈ 30 KB.
    expect(pageBytes, "slave pages asked of m2").to.equal(0);
    expect(m1.node.knowsHolder("id-2999")).to.equal(true);
    expect(m1.node.knowsHolder("w4")).to.equal(false);
  });

  it("lists a fleet larger than one NATS message (parts)", async () => {
    const label = "x".repeat(200);
    for (let i = 0; i < 6_000; i++) m2.fleet.connect(`bulk-${i}`, { label });
    const view = await m1.node.listSlaves(undefined, 3_000);
    expect(view.unanswered).to.deep.equal([]);
    expect(view.slaves.length).to.equal(6_000);
  });

  it("routes a send and a request with reply to the master holding the slave", async () => {
    m2.fleet.connect("worker-1");
    await m2.node.flush();
    const sent = await m1.node.send("worker-1", "reload");
    expect(sent).to.deep.equal({ written: true, masterId: "m2" });
    expect(m2.fleet.sentLog).to.deep.equal([{ slaveId: "worker-1", data: "reload" }]);
    const { reply, masterId } = await m3.node.request("worker-1", "status", 1_000);
    expect(masterId).to.equal("m2");
    expect(reply).to.deep.equal({ case: "data", value: "m2:worker-1:status" });
    const failed = await m3.node.request("worker-1", "fail", 1_000);
    expect(failed.reply).to.deep.equal({ case: "error", value: "handler failed" });
    expect(m1.node.stats().routed.ok).to.equal(1);
    // The first call looked the holder up, the next went straight to it.
    expect(m3.node.stats().routedVia).to.deep.equal({ holder: 1, discovery: 1 });
  });

  it("a listing tells the directory who holds what: the calls that follow go straight to the holders, without a lookup", async () => {
    for (const id of ["listed-a", "listed-b"]) m2.fleet.connect(id);
    m3.fleet.connect("listed-c");
    await Promise.all([m2.node.flush(), m3.node.flush()]);
    await m1.node.listSlaves(undefined, 3_000);
    for (const id of ["listed-a", "listed-b", "listed-c"]) await m1.node.send(id, "x");
    expect(m1.node.stats().routedVia).to.deep.equal({ holder: 3, discovery: 0 });
    // A slave that moved since the listing: its old holder answers "released", and a lookup finds the new one.
    m2.fleet.disconnect("listed-b");
    m3.fleet.connect("listed-b");
    await Promise.all([m2.node.flush(), m3.node.flush()]);
    const moved = await m1.node.send("listed-b", "y");
    expect(moved.masterId).to.equal("m3");
  });

  it("serves local slaves without NATS (short-circuit)", async () => {
    m1.fleet.connect("mine");
    expect(await m1.node.send("mine", "x")).to.deep.equal({ written: true, masterId: "m1" });
    expect((await m1.node.request("mine", "y", 500)).reply.value).to.equal("m1:mine:y");
    expect(m1.node.stats().routed.ok).to.equal(0);
  });

  it("answers NOT_FOUND for an unknown id at once (no responders), far below the timeout", async () => {
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const err = await m1.node.request(`nobody-${i}`, "x", 5_000).then(
        () => undefined,
        (e: unknown) => e,
      );
      times.push(performance.now() - started);
      expect(err).to.be.instanceOf(NetSyncError);
      expect((err as NetSyncError).code).to.equal(Code.NOT_FOUND);
    }
    times.sort((a, b) => a - b);
    console.log(`      no responders: p50 ${percentile(times, 50).toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms`);
    expect(times.at(-1)).to.be.below(100);
  });

  it("a routed request that the slave does not answer ends with DEADLINE_EXCEEDED near its timeout", async () => {
    m2.fleet.connect("slow");
    await m2.node.flush();
    const started = performance.now();
    const err = await m1.node.request("slow", "hang", 300).catch((e: unknown) => e);
    const took = performance.now() - started;
    expect((err as NetSyncError).code).to.equal(Code.DEADLINE_EXCEEDED);
    expect(took).to.be.within(290, 300 + 50 + 100);
  });

  it("routes ids holding subject-special characters, spaces and non-ASCII", async () => {
    const ids = ["a.b.c", "*", ">", "a.*.>", "with space", "ünïcødé-工人-🚀", "..", "x".repeat(128), "🚀".repeat(64)];
    for (const id of ids) m2.fleet.connect(id);
    await m2.node.flush();
    for (const id of ids) {
      const { reply, masterId } = await m1.node.request(id, "ping", 1_000);
      expect(masterId).to.equal("m2");
      expect(reply.value).to.equal(`m2:${id}:ping`);
    }
    // A wildcard-looking id is not a wildcard: "*" does not reach "a.b.c".
    expect(m2.fleet.sentLog).to.deep.equal([]);
    const err = await m1.node.send("a", "x").catch((e: unknown) => e);
    expect((err as NetSyncError).code).to.equal(Code.NOT_FOUND);
  });

  it("broadcasts to every master and counts by master", async () => {
    m1.fleet.connect("a", { role: "db" });
    m2.fleet.connect("b", { role: "web" });
    m2.fleet.connect("c", { role: "db" });
    m3.fleet.connect("d", { role: "db" });
    const all = await m2.node.broadcast("flush");
    expect(all).to.deep.equal({ written: 4, byMaster: { m1: 1, m2: 2, m3: 1 }, unanswered: [], clusterAvailable: true });
    const db = await m1.node.broadcast("vacuum", "role=db");
    expect(db.written).to.equal(3);
    expect(db.byMaster).to.deep.equal({ m1: 1, m2: 1, m3: 1 });
  });

  it("a master that closes leaves every view at once; its routes go with it", async () => {
    m3.fleet.connect("on-m3");
    await waitFor(() => m1.node.masters().find((m) => m.id === "m3")?.slavesHeld === 1, 3_000, "m1 to hear m3's slave");
    const left = new Promise<number>((resolve) => {
      const started = performance.now();
      m1.node.once("member-left", (member, reason) => {
        expect(member.id).to.equal("m3");
        expect(reason).to.equal("left");
        resolve(performance.now() - started);
      });
    });
    await m3.node.close();
    const took = await left;
    expect(took).to.be.below(50);
    expect(m1.node.masters().map((m) => m.id)).to.deep.equal(["m1", "m2"]);
    await unroutable(m1.node, "on-m3");
    const view = await m1.node.listSlaves();
    expect(view.slaves).to.deep.equal([]);
    expect(view.unanswered).to.deep.equal([]);
  });

  it("a master that crashes (no leave) is unroutable at once and expires within 3 membership intervals", async () => {
    m3.fleet.connect("on-m3");
    await waitFor(() => m1.node.masters().find((m) => m.id === "m3")?.slavesHeld === 1, 3_000, "m1 to hear m3's slave");
    const crashedAt = performance.now();
    const expired = new Promise<number>((resolve) => {
      m1.node.once("member-left", (member, reason) => {
        expect([member.id, reason]).to.deep.equal(["m3", "expired"]);
        resolve(performance.now() - crashedAt);
      });
    });
    await m3.node.close({ leave: false });
    // Routes die with the connection, as soon as the server has seen it close.
    const took = await unroutable(m1.node, "on-m3");
    console.log(`      routes of a crashed master gone after ${took.toFixed(1)} ms`);
    // Until it expires, a fleet view names it unanswered without waiting (no responders on its list subject).
    const started = performance.now();
    const view = await m1.node.listSlaves(undefined, 2_000);
    if (m1.node.masters().some((m) => m.id === "m3")) expect(view.unanswered).to.deep.equal(["m3"]);
    expect(performance.now() - started).to.be.below(100);
    const expiredAfter = await expired;
    // Silent past 3 intervals of 100 ms since its last beat (sent up to 100 ms before the crash), checked once per interval.
    expect(expiredAfter).to.be.within(190, 450);
    await waitFor(() => !m2.node.masters().some((m) => m.id === "m3"), 450 - (performance.now() - crashedAt), "m2 to expire m3");
    expect(m2.node.masters().map((m) => m.id)).to.deep.equal(["m2", "m1"]);
  });

  it("same id on two masters: the older holder is replaced once, the newer keeps its route", async () => {
    m1.fleet.connect("dup");
    await m1.node.flush();
    const replaced = new Promise<[string, string]>((resolve) => m1.fleet.once("replaced", (id, by) => resolve([id, by])));
    const started = performance.now();
    m2.fleet.connect("dup");
    expect(await replaced).to.deep.equal(["dup", "m2"]);
    console.log(`      older holder replaced after ${(performance.now() - started).toFixed(1)} ms`);
    expect(m1.node.holds("dup")).to.equal(false);
    expect(m2.node.holds("dup")).to.equal(true);
    const { masterId } = await m3.node.request("dup", "who", 1_000);
    expect(masterId).to.equal("m2");
    // No flapping: three membership intervals later nothing more happened.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(m1.fleet.replacedLog.length).to.equal(1);
    expect(m2.fleet.replacedLog.length).to.equal(0);
    expect(m2.fleet.held.has("dup")).to.equal(true);
  });

  it("requests in flight while a slave moves to another master are all answered, none lost in the handoff", async () => {
    m1.fleet.connect("mover");
    await m1.node.flush();
    const replaced = new Promise((resolve) => m1.fleet.once("replaced", resolve));
    const moved = replaced.then(() => m1.node.flush());
    const outcomes = flood(m3.node, "mover", moved, 64);
    await waitFor(() => m1.node.stats().served >= 100, 3_000, "requests served by m1 before the move");
    m2.fleet.connect("mover");
    const counts = Object.fromEntries(await outcomes);
    console.log(`      outcomes: ${JSON.stringify(counts)}, asked again: ${m3.node.stats().rerouted}`);
    // Without the released answer and retry, the requests NATS handed m1 between its claim and its UNSUB time out.
    expect(Object.keys(counts).sort()).to.deep.equal(["m1", "m2"]);
  });

  it("requests in flight while a slave leaves end with NOT_FOUND at once, never by timing out", async () => {
    m1.fleet.connect("leaver");
    await m1.node.flush();
    let left!: () => void;
    const leaving = new Promise<void>((resolve) => {
      left = resolve;
    });
    const started = performance.now();
    const outcomes = flood(m3.node, "leaver", leaving);
    await waitFor(() => m1.node.stats().served >= 100, 3_000, "requests served by m1 before it leaves");
    m1.fleet.disconnect("leaver");
    await m1.node.flush();
    left();
    const counts = Object.fromEntries(await outcomes);
    console.log(`      outcomes: ${JSON.stringify(counts)}, asked again: ${m3.node.stats().rerouted}`);
    expect(Object.keys(counts).sort()).to.deep.equal(["NOT_FOUND", "m1"]);
    // A request lost to the old subscription would take its whole 1 s timeout.
    expect(performance.now() - started).to.be.below(1_000);
  });

  describe("a master that answers released (a raw NATS client in its place)", () => {
    const subjects = new Subjects("netsync");
    const released = (masterId: string) =>
      encodeMessage({ kind: "answer", cluster: "netsync", masterId, error: { code: Code.NOT_FOUND, message: "moved" }, released: true });
    let nc: NatsConnection | undefined;
    afterEach(async () => {
      await nc?.close();
      nc = undefined;
    });

    /** Poses as master "old" holding `slaveId`: answers lookups of it with a claim, and hands over the calls routed to "old". */
    const pose = (conn: NatsConnection, slaveId: string, onCall: (msg: Msg) => void) => {
      const claim = encodeMessage({ kind: "claim", cluster: "netsync", master: "old", slaveId, epoch: { at: 1, master: "old", seq: 1 } });
      const claims = conn.subscribe(subjects.slave(slaveId), { callback: (_err, msg) => void (msg.reply && msg.respond(claim)) });
      conn.subscribe(subjects.route("old"), {
        callback: (_err, msg) => {
          if ((decodeMessage(msg.string(), "netsync") as RouteMessage | undefined)?.slaveId === slaveId) onCall(msg);
        },
      });
      return claims;
    };

    it("the call is asked again, once, and reaches the new holder", async () => {
      nc = await connect({ servers: server.url });
      let handed!: (msg: Msg) => void;
      const received = new Promise<Msg>((resolve) => {
        handed = resolve;
      });
      const claims = pose(nc, "handed", (msg) => handed(msg));
      await nc.flush();
      const call = m3.node.request("handed", "x", 1_000);
      const msg = await received;
      m2.fleet.connect("handed");
      await m2.node.flush();
      // As a master releasing a slave does: the UNSUB goes out before the answer.
      claims.unsubscribe();
      await nc.flush();
      msg.respond(released("old"));
      const answer = await call;
      expect([answer.masterId, answer.reply.value]).to.deep.equal(["m2", "m2:handed:x"]);
      expect(m3.node.stats().rerouted).to.equal(1);
    });

    it("at most 3 attempts, then NOT_FOUND; each attempt leaves the holder less of the caller's timeout; a plain NOT_FOUND is final", async () => {
      nc = await connect({ servers: server.url });
      const asked: RouteMessage[] = [];
      pose(nc, "stuck", (msg) => {
        asked.push(decodeMessage(msg.string(), "netsync") as RouteMessage);
        // Every answer claims release and the subscription stays: the requester must stop on its own.
        msg.respond(released("old"));
      });
      pose(nc, "lost", (msg) => {
        asked.push(decodeMessage(msg.string(), "netsync") as RouteMessage);
        msg.respond(
          encodeMessage({ kind: "answer", cluster: "netsync", masterId: "old", error: { code: Code.NOT_FOUND, message: "gone" } }),
        );
      });
      await nc.flush();
      const started = performance.now();
      const err = await m3.node.request("stuck", "x", 1_000).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(NetSyncError).with.property("code", Code.NOT_FOUND);
      expect(performance.now() - started).to.be.below(500);
      expect(asked.map((m) => m.slaveId)).to.deep.equal(["stuck", "stuck", "stuck"]);
      const waits = asked.map((m) => m.timeoutMs);
      expect(waits[0]).to.be.within(990, 1_000); // less the lookup before the first send
      expect(waits[2]).to.be.at.most(waits[1]!).and.at.most(waits[0]!);
      expect(m3.node.stats().rerouted).to.equal(2);

      const plain = await m3.node.request("lost", "x", 1_000).catch((e: unknown) => e);
      expect(plain).to.be.instanceOf(NetSyncError).with.property("code", Code.NOT_FOUND);
      expect(asked.map((m) => m.slaveId).slice(3)).to.deep.equal(["lost"]);
      expect(m3.node.stats().rerouted).to.equal(2);
    });
  });

  it("simultaneous connects of one id on two masters: the newer epoch wins on both, whatever the arrival order", async () => {
    const e1 = m1.fleet.connect("race");
    const e2 = m2.fleet.connect("race");
    await waitFor(() => m1.fleet.replacedLog.length + m2.fleet.replacedLog.length === 1, 3_000, "one replacement");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(m1.fleet.replacedLog.length + m2.fleet.replacedLog.length).to.equal(1);
    const newer = e1.at > e2.at || (e1.at === e2.at && e1.master > e2.master) ? "m1" : "m2";
    expect(m1.node.holds("race")).to.equal(newer === "m1");
    expect(m2.node.holds("race")).to.equal(newer === "m2");
  });

  it("removal is compare-and-delete: an old connection's cleanup never drops the newer route", async () => {
    const old = m2.fleet.connect("cad");
    m2.fleet.connect("cad"); // the same slave reconnects to the same master: a newer epoch
    m2.fleet.disconnect("cad", old); // the old stream's cleanup comes late
    await m2.node.flush();
    expect(m2.node.holds("cad")).to.equal(true);
    expect((await m1.node.request("cad", "x", 1_000)).masterId).to.equal("m2");
    // And across masters: m1's late cleanup of a connection it lost changes nothing on m2.
    const mine = m1.fleet.connect("cad2");
    await m1.node.flush();
    m2.fleet.connect("cad2");
    await waitFor(() => m1.fleet.replacedLog.length === 1, 3_000, "m1 replaced");
    m1.node.slaveRemoved("cad2", mine);
    expect((await m3.node.request("cad2", "x", 1_000)).masterId).to.equal("m2");
  });
});

describe("cluster: damping two slaves that fight over one id", function () {
  this.timeout(10_000);
  const server = new NatsServer();
  const nodes = new Nodes();

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await server.start();
  });
  after(() => server.kill());
  afterEach(() => nodes.closeAll());

  it("stops the kick loop after claimLimit claims, both stay reachable, and the newest wins once after the cool-down", async () => {
    const damping = { claimLimit: 3, claimWindow: 5_000, claimCooldown: 800 };
    const a = nodes.add([server.url], "m1", damping);
    const b = nodes.add([server.url], "m2", damping);
    await converged([a.node, b.node], ["m1", "m2"]);
    // Each slave reconnects the moment it is replaced: with no damping this would never stop.
    for (const side of [a, b]) side.fleet.on("replaced", (id) => setImmediate(() => side.fleet.connect(id)));
    const kicks = () => a.fleet.replacedLog.length + b.fleet.replacedLog.length;
    a.fleet.connect("fighter");
    await a.node.flush();
    b.fleet.connect("fighter");
    await waitFor(() => a.node.stats().claimsDamped > 0 && b.node.stats().claimsDamped > 0, 3_000, "damping on both masters");
    const kicksAtDamping = kicks();
    // Each master counts the id's claims from the moment it sees the contest (the epoch it holds first): claims 1..3 act,
    // the 4th starts its cool-down. m1 saw the contest one claim before m2 did, so m2 is damped one kick later: 3 at most.
    expect(kicksAtDamping).to.be.within(2, 3);
    // During the cool-down nobody is kicked, and the id stays routable (one of the two holders answers).
    const c = nodes.add([server.url], "m3", damping);
    await converged([a.node, b.node, c.node], ["m1", "m2", "m3"]);
    const { masterId } = await c.node.request("fighter", "x", 1_000);
    expect(["m1", "m2"]).to.include(masterId);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(kicks()).to.equal(kicksAtDamping);
    // After the cool-down the newest wins once, then the fight is damped again: a few kicks per cycle, not one per reconnect.
    await waitFor(() => kicks() > kicksAtDamping, 2_000, "a replacement after the cool-down");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(kicks()).to.be.at.most(kicksAtDamping + 3);
  });
});
