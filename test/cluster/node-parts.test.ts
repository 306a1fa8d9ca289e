import { type Msg, type NatsConnection, type RequestOptions, type SubscriptionOptions, TimeoutError } from "@nats-io/transport-node";
import { expect } from "chai";
import { Claims } from "../../src/cluster/claims.js";
import { HolderDirectory } from "../../src/cluster/directory.js";
import type { Epoch } from "../../src/cluster/epoch.js";
import { NodeHost } from "../../src/cluster/host.js";
import { type ClusterMessage, decodeMessage, encodeMessage } from "../../src/cluster/messages.js";
import type { LinkState } from "../../src/cluster/nats-link.js";
import { resolveClusterOptions } from "../../src/cluster/options.js";
import { Presence } from "../../src/cluster/presence.js";
import { Router } from "../../src/cluster/router.js";
import { Scatter } from "../../src/cluster/scatter.js";
import type { ClusterMember } from "../../src/cluster/types.js";
import { Code } from "../../src/code.js";
import { silentLogger } from "../../src/logger.js";
import { FakeFleet } from "./fake-fleet.js";

/** Resolves after the turn in which the router acts on what it was handed. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** A received message as the parts read it. */
function msg(subject: string, message: ClusterMessage, reply?: string): Msg {
  const text = encodeMessage(message);
  return { subject, reply, data: Buffer.from(text), string: () => text } as unknown as Msg;
}

/** A connection that records what is published and subscribed, and answers requests with `answer`. */
class FakeConnection {
  readonly published: { subject: string; message: ClusterMessage }[] = [];
  readonly drained: string[] = [];
  readonly subscribed: string[] = [];
  readonly unsubscribed: string[] = [];
  readonly requests: { subject: string; message: ClusterMessage; timeout: number }[] = [];
  answer: (subject: string) => Msg | Error | Promise<Msg> = () => new Error("no answer");

  publish(subject: string, data: string): void {
    this.published.push({ subject, message: decodeMessage(data, "c")! });
  }

  subscribe(subject: string, _options: SubscriptionOptions) {
    this.subscribed.push(subject);
    return { drain: async () => void this.drained.push(subject), unsubscribe: () => void this.unsubscribed.push(subject) };
  }

  async request(subject: string, data: string, options: RequestOptions): Promise<Msg> {
    this.requests.push({ subject, message: decodeMessage(data, "c")!, timeout: options.timeout });
    // As nats.js does: a request nobody answers ends with a TimeoutError after its timeout.
    const timedOut = new Promise<Error>((resolve) => setTimeout(() => resolve(new TimeoutError()), options.timeout));
    const answer = await Promise.race([this.answer(subject), timedOut]);
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

/** A host over a fake connection, "connected" until `link.state` says otherwise. */
function fakeHost(id = "m1") {
  const fleet = new FakeFleet(id, "h:1");
  const conn = new FakeConnection();
  const link: { nc: NatsConnection | undefined; state: LinkState } = { nc: conn as unknown as NatsConnection, state: "connected" };
  const options = resolveClusterOptions({ servers: ["nats://x:4222"], clusterName: "c", logger: silentLogger(), claimLimit: 3 });
  return { host: new NodeHost(fleet, options, link), fleet, conn, link };
}

/** A router whose directory names "stalled" as the holder of "s", and the epoch of m3, the holder "s" moves to. */
function stalledHolder() {
  const { host, conn } = fakeHost();
  const directory = new HolderDirectory();
  const router = new Router(host, { holds: () => false, epochOf: () => undefined }, directory, { knows: () => true });
  directory.learn("s", "stalled", { at: 1, master: "stalled", seq: 1 });
  return { host, conn, directory, router, fresh: { at: 2, master: "m3", seq: 1 } };
}

describe("cluster node parts over a fake host (no NATS)", () => {
  it("router: an answer released by every master is asked again at most 3 times within one deadline, then NOT_FOUND", async () => {
    const { host, conn } = fakeHost();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, new HolderDirectory(), {
      knows: () => true,
    });
    // The lookup names m2 each time; m2 says "not here" each time.
    conn.answer = (subject) =>
      subject === host.subjects.slave("s")
        ? msg("inbox", { kind: "claim", cluster: "c", master: "m2", slaveId: "s", epoch: { at: 1, master: "m2", seq: 1 } })
        : msg("inbox", { kind: "answer", cluster: "c", masterId: "m2", error: { code: Code.NOT_FOUND, message: "gone" }, released: true });
    const err = await router.request("s", "x", 1_000).catch((e: unknown) => e);
    expect(err).to.have.property("code", Code.NOT_FOUND);
    expect(conn.requests.map((r) => r.subject)).to.deep.equal(
      Array(3)
        .fill([host.subjects.slave("s"), host.subjects.route("m2")])
        .flat(),
    );
    expect(conn.requests.filter((r) => r.subject === host.subjects.slave("s")).map((r) => r.message)).to.deep.equal(
      Array(3).fill({ kind: "who", cluster: "c", slaveId: "s" }),
    );
    for (const { message, timeout } of conn.requests.filter((r) => r.subject !== host.subjects.slave("s"))) {
      expect(message).to.include({ kind: "request", from: "m1", slaveId: "s" });
      expect(timeout).to.be.at.most(1_000 + host.options.routeGrace);
    }
    expect(host.counters).to.deep.include({ rerouted: 2 });
    expect(host.counters.routed).to.include({ not_found: 1 });
  });

  it("router: UNAVAILABLE at once without a connection; a held slave never touches NATS", async () => {
    const { host, conn, fleet, link } = fakeHost();
    const router = new Router(host, { holds: (id) => id === "local", epochOf: () => undefined }, new HolderDirectory(), {
      knows: () => true,
    });
    fleet.connect("local");
    expect(await router.send("local", "hi")).to.deep.equal({ written: true, masterId: "m1" });
    link.state = "disconnected";
    const err = await router.send("far", "hi").catch((e: unknown) => e);
    expect(err).to.have.property("code", Code.UNAVAILABLE);
    expect(conn.requests).to.deep.equal([]);
    expect(host.counters.routed).to.include({ unavailable: 1, ok: 0 });
  });

  it("router: a request for a slave no longer held is answered NOT_FOUND, released", async () => {
    const { host, conn } = fakeHost();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, new HolderDirectory(), {
      knows: () => true,
    });
    router.serve(msg(host.subjects.route("m1"), { kind: "send", cluster: "c", from: "m2", slaveId: "s", data: "x", timeoutMs: 0 }, "r1"));
    await nextTurn();
    expect(conn.published).to.have.length(1);
    expect(conn.published[0]!.subject).to.equal("r1");
    expect(conn.published[0]!.message).to.deep.include({ kind: "answer", masterId: "m1", released: true });
    expect(host.counters.served).to.equal(1);
  });

  it("claims: a newer claim elsewhere drains the route and replaces; an older one is answered with ours; claims are damped", () => {
    const { host, conn, fleet } = fakeHost();
    const claims = new Claims(host, new HolderDirectory());
    const mine = fleet.connect("a");
    claims.add("a", mine);
    fleet.connect("b");
    claims.add("b", fleet.held.get("b")!.epoch);
    // Each held id: its claim subject, subscribed before its claim goes out there.
    expect(conn.subscribed).to.deep.equal([host.subjects.slave("a"), host.subjects.slave("b")]);
    expect(conn.published.map((p) => p.subject)).to.deep.equal([host.subjects.slave("a"), host.subjects.slave("b")]);
    expect(host.counters.claimsPublished).to.equal(2);
    const claim = (slaveId: string, at: number) =>
      msg(host.subjects.slave(slaveId), { kind: "claim", cluster: "c", master: "m2", slaveId, epoch: { at, master: "m2", seq: at } });
    claims.onClaims(claim("a", mine.at + 1_000));
    expect(claims.holds("a")).to.equal(false);
    expect(conn.drained).to.deep.equal([host.subjects.slave("a")]);
    expect(fleet.replacedLog.map((r) => [r.slaveId, r.byMaster])).to.deep.equal([["a", "m2"]]);
    expect(host.counters.replacements).to.equal(1);
    claims.onClaims(claim("b", 1));
    expect(conn.published.at(-1)).to.deep.include({ subject: host.subjects.slave("b") });
    expect(conn.published.at(-1)!.message).to.deep.include({ kind: "claim", master: "m1", slaveId: "b" });
    // Distinct epochs of one contested id within the window (the one held here counted first): the first 3 are acted on,
    // the fourth starts the cool-down.
    claims.onClaims(claim("b", 2));
    expect(host.counters.claimsDamped).to.equal(0);
    claims.onClaims(claim("b", 3));
    expect(host.counters.claimsDamped).to.equal(1);
    claims.stop();
  });

  it("claims: only contested ids enter the damper; this master's own claims heard back do not", () => {
    const { host, fleet } = fakeHost();
    const claims = new Claims(host, new HolderDirectory());
    for (const id of ["a", "b", "c"]) {
      const epoch = fleet.connect(id);
      claims.add(id, epoch);
      // Its own claim, echoed on the id's subject (as after a NATS restart, for every held id).
      claims.onClaims(msg(host.subjects.slave(id), { kind: "claim", cluster: "c", master: "m1", slaveId: id, epoch }));
    }
    expect(host.counters.claimsHeard).to.equal(3);
    expect(claims.contested).to.equal(0);
    claims.onClaims(
      msg(host.subjects.slave("a"), { kind: "claim", cluster: "c", master: "m2", slaveId: "a", epoch: { at: 1, master: "m2", seq: 1 } }),
    );
    expect(claims.contested).to.equal(1);
    claims.stop();
  });

  it("claims: a lookup of a held id is answered with its claim, to the asker alone; of an id let go of, 'released'", () => {
    const { host, conn, fleet } = fakeHost();
    const claims = new Claims(host, new HolderDirectory());
    const mine = fleet.connect("near");
    claims.add("near", mine);
    const published = conn.published.length;
    claims.onClaims(msg(host.subjects.slave("near"), { kind: "who", cluster: "c", slaveId: "near" }, "inbox.1"));
    expect(conn.published.slice(published)).to.deep.equal([
      { subject: "inbox.1", message: { kind: "claim", cluster: "c", master: "m1", slaveId: "near", epoch: mine } },
    ]);
    claims.remove("near", mine);
    claims.onClaims(msg(host.subjects.slave("near"), { kind: "who", cluster: "c", slaveId: "near" }, "inbox.2"));
    expect(conn.published.at(-1)).to.deep.include({ subject: "inbox.2" });
    expect(conn.published.at(-1)!.message).to.deep.include({ kind: "answer", masterId: "m1", released: true });
    claims.stop();
  });

  it("claims: the directory follows the newest claim of an id even while the id is damped", () => {
    const { host, fleet } = fakeHost();
    const directory = new HolderDirectory();
    const claims = new Claims(host, directory);
    claims.add("x", fleet.connect("x"));
    const claim = (master: string, at: number) =>
      msg(host.subjects.slave("x"), { kind: "claim", cluster: "c", master, slaveId: "x", epoch: { at, master, seq: at } });
    for (const [master, at] of [
      ["m2", 1],
      ["m3", 2],
      ["m2", 3],
      ["m3", 4],
    ] as const)
      claims.onClaims(claim(master, at));
    // The epoch held here and the first two claims act; the third starts the cool-down and the fourth falls in it.
    expect(host.counters.claimsDamped).to.equal(2);
    expect(directory.get("x")).to.deep.equal({ master: "m3", epoch: { at: 4, master: "m3", seq: 4 } });
    claims.stop();
  });

  it("presence: joined and left (only by the instance that beat), a duplicate id is not a member", () => {
    const { host } = fakeHost();
    const seen: string[] = [];
    const presence = new Presence(host, {
      joined: (m) => seen.push(`joined ${m.id}`),
      left: (m, reason) => seen.push(`${reason} ${m.id}`),
      sweep: () => undefined,
    });
    const beat = (id: string, instance: string) =>
      msg(host.subjects.members, { kind: "beat", cluster: "c", id, address: "h:2", slavesHeld: 4, interval: 100, instance });
    presence.onMembers(beat("m2", "i2"));
    presence.onMembers(beat("m2", "i2"));
    presence.onMembers(beat("m1", "other"));
    expect(presence.others().map((m) => [m.id, m.slavesHeld])).to.deep.equal([["m2", 4]]);
    presence.onMembers(msg(host.subjects.members, { kind: "leave", cluster: "c", id: "m2", instance: "not-i2" }));
    presence.onMembers(msg(host.subjects.members, { kind: "leave", cluster: "c", id: "m2", instance: "i2" }));
    expect(seen).to.deep.equal(["joined m2", "left m2"]);
    expect(presence.size).to.equal(0);
    presence.stop();
  });

  it("scatter: without a connection, the local part at once and every other member unanswered", async () => {
    const { host, fleet, link } = fakeHost();
    link.state = "disconnected";
    const other: ClusterMember = { id: "m2", address: "h:2", slavesHeld: 1, lastHeard: 0, self: false };
    const self: ClusterMember = { id: "m1", address: "h:1", slavesHeld: 1, lastHeard: 0, self: true };
    const scatter = new Scatter(host, { self: () => self, others: () => [other] });
    fleet.connect("s1");
    const view = await scatter.listSlaves(undefined, 1_000);
    expect(view).to.deep.include({ masters: [self], unanswered: ["m2"], clusterAvailable: false });
    expect(view.slaves.map((s) => s.id)).to.deep.equal(["s1"]);
    expect(await scatter.broadcast("x", undefined, 1_000)).to.deep.equal({
      written: 1,
      byMaster: { m1: 1 },
      unanswered: ["m2"],
      clusterAvailable: false,
    });
  });

  it("router: a call goes to the master the newest claim names, on its own subject; with none known, to the one a lookup names", async () => {
    const { host, conn } = fakeHost();
    const directory = new HolderDirectory();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, directory, { knows: () => true });
    const epoch = { at: 5, master: "m2", seq: 1 };
    directory.learn("s", "m2", epoch);
    const m3 = { at: 6, master: "m3", seq: 1 };
    conn.answer = (subject) =>
      subject === host.subjects.slave("elsewhere")
        ? msg("inbox", { kind: "claim", cluster: "c", master: "m3", slaveId: "elsewhere", epoch: m3 })
        : msg("inbox", {
            kind: "answer",
            cluster: "c",
            masterId: subject === host.subjects.route("m3") ? "m3" : "m2",
            written: true,
            epoch,
          });
    expect(await router.send("s", "x")).to.deep.equal({ written: true, masterId: "m2" });
    expect(conn.requests.map((r) => r.subject)).to.deep.equal([host.subjects.route("m2")]);
    expect(conn.requests[0]!.message).to.have.property("deadline").that.is.a("number");
    expect(await router.send("elsewhere", "x")).to.deep.equal({ written: true, masterId: "m3" });
    expect(conn.requests.slice(1).map((r) => r.subject)).to.deep.equal([host.subjects.slave("elsewhere"), host.subjects.route("m3")]);
    expect(directory.get("elsewhere")).to.deep.equal({ master: "m3", epoch: m3 });
    expect(host.counters.routedVia).to.deep.equal({ holder: 1, discovery: 1 });
    // Nobody holds it: the lookup has no responders, and no call is sent.
    conn.answer = () => new Error("no responders");
    await router.send("never-claimed", "x").catch(() => undefined);
    expect(conn.requests.at(-1)!.subject).to.equal(host.subjects.slave("never-claimed"));
  });

  it("router: a lookup nobody answers (a stalled only holder) is asked again in steps, and the new holder's answer is taken", async () => {
    const { host, conn } = fakeHost();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, new HolderDirectory(), {
      knows: () => true,
    });
    const m3 = { at: 9, master: "m3", seq: 1 };
    let rehomed = false;
    setTimeout(() => {
      rehomed = true;
    }, 400);
    conn.answer = (subject) =>
      subject === host.subjects.slave("s")
        ? rehomed
          ? msg("inbox", { kind: "claim", cluster: "c", master: "m3", slaveId: "s", epoch: m3 })
          : new Promise<Msg>(() => undefined)
        : msg("inbox", { kind: "answer", cluster: "c", masterId: "m3", written: true, epoch: m3 });
    const started = performance.now();
    expect(await router.send("s", "x")).to.deep.equal({ written: true, masterId: "m3" });
    const took = performance.now() - started;
    const lookups = conn.requests.filter((r) => r.subject === host.subjects.slave("s"));
    expect(lookups.length).to.be.within(2, 4);
    expect(lookups.every((r) => r.timeout <= 250)).to.equal(true);
    expect(took).to.be.below(host.options.requestTimeout / 2);
    // Nobody ever answers: the call ends with its deadline, not sooner and not much later.
    conn.answer = () => new Promise<Msg>(() => undefined);
    const t0 = performance.now();
    const err = await router.request("silent", "x", 600).catch((e: unknown) => e);
    expect(err).to.have.property("code", Code.DEADLINE_EXCEEDED);
    expect(performance.now() - t0).to.be.within(550, 600 + host.options.routeGrace + 200);
  });

  it("router: a call to a slave whose holder left or went silent is looked up, not sent to that holder", async () => {
    const { host, conn } = fakeHost();
    const directory = new HolderDirectory();
    const alive = new Set<string>();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, directory, {
      knows: (id) => alive.has(id),
    });
    directory.learn("s", "gone", { at: 1, master: "gone", seq: 1 });
    conn.answer = () => new Error("no responders");
    await router.send("s", "x").catch(() => undefined);
    expect(conn.requests.map((r) => r.subject)).to.deep.equal([host.subjects.slave("s")]);
    alive.add("gone");
    await router.send("s", "x").catch(() => undefined);
    expect(conn.requests.at(-1)!.subject).to.equal(host.subjects.route("gone"));
  });

  it("router: a holder that says 'not here' is forgotten, the slave looked up, and the new holder's answer teaches the directory", async () => {
    const { host, conn } = fakeHost();
    const directory = new HolderDirectory();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, directory, { knows: () => true });
    const m3 = { at: 9, master: "m3", seq: 4 };
    conn.answer = (subject) =>
      subject === host.subjects.route("m2")
        ? msg("inbox", { kind: "answer", cluster: "c", masterId: "m2", error: { code: Code.NOT_FOUND, message: "gone" }, released: true })
        : subject === host.subjects.slave("s")
          ? msg("inbox", { kind: "claim", cluster: "c", master: "m3", slaveId: "s", epoch: m3 })
          : msg("inbox", { kind: "answer", cluster: "c", masterId: "m3", written: true, epoch: m3 });
    directory.learn("s", "m2", { at: 1, master: "m2", seq: 1 });
    expect(await router.send("s", "x")).to.deep.equal({ written: true, masterId: "m3" });
    expect(conn.requests.map((r) => r.subject)).to.deep.equal([
      host.subjects.route("m2"),
      host.subjects.slave("s"),
      host.subjects.route("m3"),
    ]);
    expect(directory.get("s")).to.deep.equal({ master: "m3", epoch: m3 });
    await router.send("s", "y");
    expect(conn.requests.at(-1)!.subject).to.equal(host.subjects.route("m3"));
  });

  it("router: a newer claim that arrives while the holder does not answer sends the call to the new holder at once", async () => {
    const { host, conn, directory, router, fresh } = stalledHolder();
    conn.answer = (subject) =>
      subject === host.subjects.route("m3")
        ? msg("inbox", { kind: "answer", cluster: "c", masterId: "m3", written: true, epoch: fresh })
        : new Promise<Msg>(() => undefined); // a stalled master: never answers
    const started = performance.now();
    const sent = router.send("s", "x");
    setTimeout(() => directory.learn("s", "m3", fresh), 20);
    expect(await sent).to.deep.equal({ written: true, masterId: "m3" });
    expect(performance.now() - started).to.be.below(host.options.requestTimeout / 2);
    expect(conn.requests.map((r) => r.subject)).to.deep.equal([host.subjects.route("stalled"), host.subjects.route("m3")]);
    expect(host.counters.fenced).to.equal(1);
  });

  it("router: a call its holder leaves unanswered looks the slave up while it waits, and goes to the newer holder found", async () => {
    const { host, conn, router, fresh } = stalledHolder();
    conn.answer = (subject) =>
      subject === host.subjects.slave("s")
        ? msg("inbox", { kind: "claim", cluster: "c", master: "m3", slaveId: "s", epoch: fresh })
        : subject === host.subjects.route("m3")
          ? msg("inbox", { kind: "answer", cluster: "c", masterId: "m3", written: true, epoch: fresh })
          : new Promise<Msg>(() => undefined); // the stalled holder never answers
    const started = performance.now();
    expect(await router.send("s", "x")).to.deep.equal({ written: true, masterId: "m3" });
    expect(performance.now() - started).to.be.within(200, 200 + 100 + 200);
    expect(conn.requests.map((r) => r.subject)).to.deep.equal([
      host.subjects.route("stalled"),
      host.subjects.slave("s"),
      host.subjects.route("m3"),
    ]);
    expect(host.counters.fenced).to.equal(1);
  });

  it("router: a holder whose slave's stream ended before replying, with the slave back on a newer one, is asked again", async () => {
    const { host, conn } = fakeHost();
    const directory = new HolderDirectory();
    const router = new Router(host, { holds: () => false, epochOf: () => undefined }, directory, { knows: () => true });
    const first = { at: 1, master: "m2", seq: 1 };
    const again = { at: 2, master: "m2", seq: 2 };
    directory.learn("s", "m2", first);
    let asked = 0;
    conn.answer = () =>
      ++asked === 1
        ? msg("inbox", {
            kind: "answer",
            cluster: "c",
            masterId: "m2",
            epoch: again,
            error: { code: Code.UNAVAILABLE, message: "left before replying" },
          })
        : msg("inbox", { kind: "answer", cluster: "c", masterId: "m2", epoch: again, written: true, reply: { case: "data", value: "ok" } });
    const { reply } = await router.request("s", "x", 1_000);
    expect(reply).to.deep.equal({ case: "data", value: "ok" });
    const ids = conn.requests.map((r) => (r.message as { commandId?: string }).commandId);
    expect(ids).to.have.length(2);
    expect(ids[0]).to.be.a("string").and.equal(ids[1]);
    // Without a newer epoch (the slave did not come back), UNAVAILABLE is final.
    asked = 0;
    conn.answer = () =>
      msg("inbox", { kind: "answer", cluster: "c", masterId: "m2", epoch: again, error: { code: Code.UNAVAILABLE, message: "gone" } });
    const err = await router.request("s", "y", 1_000).catch((e: unknown) => e);
    expect(err).to.have.property("code", Code.UNAVAILABLE);
    expect(conn.requests).to.have.length(3);
  });

  it("router: a routed command is acted on one turn later, so a claim read behind it (the slave moved) is heard first", async () => {
    const { host, conn, fleet } = fakeHost();
    let held: Epoch | undefined = fleet.connect("s");
    const router = new Router(host, { holds: () => held !== undefined, epochOf: () => held }, new HolderDirectory(), {
      knows: () => true,
    });
    router.serve(msg(host.subjects.route("m1"), { kind: "send", cluster: "c", from: "m2", slaveId: "s", data: "x", timeoutMs: 0 }, "r1"));
    held = undefined; // as the claims would do on hearing a newer claim of "s" in the same read
    await nextTurn();
    expect(conn.published[0]!.message).to.deep.include({ masterId: "m1", released: true });
    expect(fleet.sentLog).to.deep.equal([]);
  });

  it("router: a routed command that reaches a holder after its deadline (it was stalled) is refused, not delivered", async () => {
    const { host, conn, fleet } = fakeHost();
    const epoch = fleet.connect("s");
    const router = new Router(host, { holds: () => true, epochOf: () => epoch }, new HolderDirectory(), {
      knows: () => true,
    });
    const route = (deadline: number, reply: string) =>
      msg(host.subjects.route("m1"), { kind: "send", cluster: "c", from: "m2", slaveId: "s", data: "x", timeoutMs: 0, deadline }, reply);
    router.serve(route(Date.now() - 5_000, "late"));
    router.serve(route(Date.now() + 2_000, "on-time"));
    await nextTurn();
    expect(conn.published.map((p) => [p.subject, p.message])).to.deep.equal([
      ["late", conn.published[0]!.message],
      ["on-time", { kind: "answer", cluster: "c", masterId: "m1", epoch, written: true }],
    ]);
    expect(conn.published[0]!.message).to.deep.include({ masterId: "m1" });
    expect((conn.published[0]!.message as { error?: { code: number } }).error?.code).to.equal(Code.DEADLINE_EXCEEDED);
    expect(fleet.sentLog.map((s) => s.data)).to.deep.equal(["x"]);
    expect(host.counters.late).to.equal(1);
  });
});

describe("HolderDirectory", () => {
  const e = (at: number, master = "m") => ({ at, master, seq: 1 });

  it("a hint (a listing's word) fills a gap only, and any claim replaces it", () => {
    const d = new HolderDirectory();
    d.learn("known", "m1", e(5, "m1"));
    d.hint("known", "m9");
    d.hint("new", "m2");
    expect([d.get("known")?.master, d.get("new")?.master]).to.deep.equal(["m1", "m2"]);
    expect(d.learn("new", "m3", e(1, "m3"))).to.equal(true);
    expect(d.get("new")?.master).to.equal("m3");
  });

  it("is bounded: past its capacity the id learned least recently goes", () => {
    const d = new HolderDirectory(2);
    d.learn("a", "m1", e(1));
    d.learn("b", "m1", e(1));
    d.learn("a", "m2", e(2));
    d.learn("c", "m1", e(1));
    expect([d.get("a")?.master, d.get("b"), d.get("c")?.master]).to.deep.equal(["m2", undefined, "m1"]);
    expect(d.size).to.equal(2);
  });

  it("keeps the newest claim whatever the order; a release deletes only the epoch it names; a master's claims go with it", () => {
    const d = new HolderDirectory();
    expect(d.learn("s", "m2", e(2, "m2"))).to.equal(true);
    expect(d.learn("s", "m1", e(1, "m1"))).to.equal(false);
    expect(d.get("s")?.master).to.equal("m2");
    d.release("s", e(1, "m1"));
    expect(d.get("s")?.master).to.equal("m2");
    d.release("s", e(2, "m2"));
    expect(d.get("s")).to.equal(undefined);
    d.learn("a", "m1", e(1, "m1"));
    d.learn("b", "m1", e(1, "m1"));
    d.learn("c", "m2", e(1, "m2"));
    expect(d.forgetMaster("m1")).to.equal(2);
    expect([d.size, d.get("c")?.master]).to.deep.equal([1, "m2"]);
  });

  it("wakes the waiters of an id with each newer claim, until they stop waiting", () => {
    const d = new HolderDirectory();
    const woken: string[] = [];
    const stop = d.onNewer("s", (h) => woken.push(h.master));
    d.learn("s", "m1", e(1, "m1"));
    d.learn("s", "m0", e(0, "m0")); // older: no wake
    d.learn("t", "m2", e(5, "m2")); // another id: no wake
    stop();
    d.learn("s", "m3", e(3, "m3"));
    expect(woken).to.deep.equal(["m1"]);
  });
});
