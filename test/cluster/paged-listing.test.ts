// The fleet listed page by page across masters (issues 20 and 21): each master answers only the next
// slice of its sorted ids, the asker merges them, and the token carries the position. Real NATS; the
// core with fake fleets first, then real Masters through AdminService.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { expect } from "chai";
import type { ClusterNode } from "../../src/cluster/cluster-node.js";
import { decodeMessage, encodeMessage, type PartMessage } from "../../src/cluster/messages.js";
import { Subjects } from "../../src/cluster/subjects.js";
import type { ClusterSlave } from "../../src/cluster/types.js";
import { Code } from "../../src/code.js";
import type { NetSyncError } from "../../src/errors.js";
import type { Master } from "../../src/master.js";
import { decodePageToken } from "../../src/slave-pages.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, rawClient, waitFor } from "../helpers.js";
import type { FakeFleet } from "./fake-fleet.js";
import { converged, Nodes } from "./helpers.js";
import { clusterMaster, mastersConverged } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

type Member = { node: ClusterNode; fleet: FakeFleet };

/** Every page of the listing from `node`, and each page's unanswered masters. */
async function pages(node: ClusterNode, pageSize: number, selector?: string, between?: (page: number) => Promise<void>) {
  const out: { slaves: ClusterSlave[]; unanswered: string[]; ms: number }[] = [];
  let token = "";
  do {
    const started = performance.now();
    const page = await node.page(selector, decodePageToken(token, selector ?? ""), pageSize);
    out.push({ slaves: page.slaves, unanswered: page.unanswered, ms: performance.now() - started });
    token = page.nextPageToken;
    await between?.(out.length);
  } while (token !== "" && out.length < 1_000);
  return out;
}

const at = (s: { id: string; masterId: string }) => `${s.id}@${s.masterId}`;

describe("paged listing: the cluster core", function () {
  this.timeout(15_000);
  const server = new NatsServer();
  const nodes = new Nodes();
  let m1: Member;
  let m2: Member;
  let m3: Member;
  /** Which ids each fake fleet was asked to examine, per answer: a page must never read a whole fleet. */
  let asked: Map<string, number[]>;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await server.start();
  });
  after(() => server.kill());

  beforeEach(async () => {
    [m1, m2, m3] = ["m1", "m2", "m3"].map((id) => nodes.add([server.url], id)) as [Member, Member, Member];
    await converged([m1.node, m2.node, m3.node], ["m1", "m2", "m3"]);
    asked = new Map();
    // 300 slaves, ids interleaved over the masters (w000 on m1, w001 on m2, …), every third in region eu.
    for (let i = 0; i < 300; i++) {
      const member = [m1, m2, m3][i % 3]!;
      member.fleet.connect(`w${String(i).padStart(3, "0")}`, { region: i % 3 === 1 || i % 5 === 0 ? "eu" : "us" });
    }
    for (const m of [m1, m2, m3]) {
      const page = m.fleet.page.bind(m.fleet);
      m.fleet.page = (selector, after, inclusive, limit, scanLimit, maxBytes) => {
        asked.set(m.fleet.id, [...(asked.get(m.fleet.id) ?? []), limit]);
        return page(selector, after, inclusive, limit, scanLimit, maxBytes);
      };
    }
  });
  afterEach(() => nodes.closeAll());

  it("every slave once, in (id, master) order, with and without a selector; each master asked for about its share", async () => {
    const all = await pages(m2.node, 40);
    const ids = all.flatMap((p) => p.slaves.map(at));
    const want = [m1, m2, m3].flatMap((m) => m.fleet.slaves().map(at)).sort();
    expect(ids).to.deep.equal(want);
    expect(all.every((p) => p.unanswered.length === 0 && p.slaves.length <= 40)).to.equal(true);
    expect(all.length, "300 slaves in pages of 40").to.equal(8);
    // Each answer is about twice a master's share of a page (2 × 40 / 3 + 16), never the master's 100 slaves.
    for (const limits of asked.values()) expect(Math.max(...limits)).to.be.at.most(43);

    const eu = await pages(m3.node, 7, "region=eu");
    const euWant = [m1, m2, m3].flatMap((m) => m.fleet.slaves("region=eu").map(at)).sort();
    expect(eu.flatMap((p) => p.slaves.map(at))).to.deep.equal(euWant);
    expect(new Set(eu.flatMap((p) => p.slaves.map(at))).size).to.equal(euWant.length);
  });

  it("a master that crashes mid-listing is named unanswered at once (no responders); the listing goes on and ends", async () => {
    const all = await pages(m1.node, 50, undefined, async (n) => {
      if (n !== 2) return;
      await m3.node.close({ leave: false });
      // Once the server has seen the connection close, m3's subjects have no responders (its routes went with them).
      await waitFor(
        async () => (await m1.node.request("w002", "x", 50).catch((e: NetSyncError) => e.code)) === Code.NOT_FOUND,
        2_000,
        "m3's routes gone from the server",
      );
    });
    const listed = all.flatMap((p) => p.slaves.map(at));
    expect(new Set(listed).size, "never twice").to.equal(listed.length);
    expect([...listed].sort(), "in order").to.deep.equal(listed);
    // The first two pages hold m3's slaves up to where they end; after the crash none of m3 and every one of m1 and m2.
    const firstTwo = all.slice(0, 2).flatMap((p) => p.slaves);
    const end = firstTwo.at(-1)!.id;
    const rest = [m1, m2].flatMap((m) =>
      m.fleet
        .slaves()
        .filter((s) => s.id > end)
        .map(at),
    );
    expect(all.slice(2).flatMap((p) => p.slaves.map(at))).to.deep.equal(rest.sort());
    const after = all.slice(2);
    // Named until the others expire it (3 membership intervals), then simply gone from the roster.
    expect(after[0]!.unanswered).to.satisfy((u: string[]) => u.length === 0 || (u.length === 1 && u[0] === "m3"));
    expect(after[0]!.ms, "no responders is immediate").to.be.below(300);
  });

  it("a master that stays silent is unanswered within the gather timeout, and the page holds the others' slaves", async () => {
    m2.fleet.page = () => {
      throw new Error("stuck");
    };
    const started = performance.now();
    const page = await m1.node.page(undefined, decodePageToken("", ""), 30, 500);
    const ms = performance.now() - started;
    expect(page.unanswered).to.deep.equal(["m2"]);
    expect(ms).to.be.within(450, 1_000);
    expect(page.slaves.map((s) => s.masterId)).to.not.include("m2");
    expect(page.slaves.map((s) => s.id)).to.deep.equal(
      [m1, m3]
        .flatMap((m) => m.fleet.slaves().map((s) => s.id))
        .sort()
        .slice(0, 30),
    );
  });

  describe("answer size", () => {
    let nc: NatsConnection | undefined;
    afterEach(async () => {
      await nc?.close();
      nc = undefined;
    });

    it("a master's page answer keeps to the bytes asked (and half of max_payload); the whole listing still gets every slave", async () => {
      // 2,000 slaves of ≈ 600 bytes each on m2: ≈ 1.2 MB, more than one NATS message may hold.
      const big = "x".repeat(500);
      for (let i = 0; i < 2_000; i++) m2.fleet.connect(`big-${String(i).padStart(4, "0")}`, { pad: big });
      nc = await connect({ servers: server.url });
      const subjects = new Subjects("netsync");
      for (const maxBytes of [50_000, 10_000_000]) {
        const request = encodeMessage({ kind: "page", cluster: "netsync", from: "test", limit: 5_000, maxBytes });
        const reply = await nc.request(subjects.page("m2"), request, { timeout: 2_000 });
        const part = decodeMessage(reply.string(), "netsync") as PartMessage;
        const cap = Math.min(maxBytes, (nc.info?.max_payload ?? 1024 * 1024) / 2);
        expect(reply.data.length, `asked ${maxBytes}`).to.be.at.most(cap + 2_000);
        expect(part.done).to.equal(false);
        expect(part.last).to.equal(part.slaves!.at(-1)!.id);
      }
      const view = await m1.node.listSlaves();
      expect(view.unanswered).to.deep.equal([]);
      expect(view.slaves.length).to.equal(2_300);
      expect(new Set(view.slaves.map(at)).size).to.equal(2_300);
    });
  });

  it("the summary: every master's count and RTT histogram, no slave listed", async () => {
    const counts = await m1.node.summary();
    expect(counts.masters.map((m) => `${m.id}=${m.slavesHeld}`).sort()).to.deep.equal(["m1=100", "m2=100", "m3=100"]);
    expect(counts.unanswered).to.deep.equal([]);
    expect(counts.rtt).to.have.length(3);
  });
});

describe("paged listing: three masters through AdminService", function () {
  this.timeout(15_000);
  const server = new NatsServer();
  let m1: Master;
  let m2: Master;
  let m3: Master;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await server.start();
  });
  after(() => server.kill());
  beforeEach(async () => {
    [m1, m2, m3] = (await Promise.all(["m1", "m2", "m3"].map((name) => clusterMaster(name, [server.url])))) as [Master, Master, Master];
    await mastersConverged([m1, m2, m3], ["m1", "m2", "m3"]);
  });
  afterEach(cleanup);

  /** `n` raw slaves per master, ids interleaved, region eu for every other one. */
  async function fleet(n: number): Promise<Map<string, string>> {
    const where = new Map<string, string>();
    for (let i = 0; i < 3 * n; i++) {
      const master = [m1, m2, m3][i % 3]!;
      const id = `s${String(i).padStart(3, "0")}`;
      rawClient(master.address, { id, autoPong: true, metadata: { "netsync-slave-labels": `region=${i % 2 ? "eu" : "us"}` } });
      where.set(id, master.id);
    }
    await waitFor(() => m1.size + m2.size + m3.size === 3 * n, 5_000, `${3 * n} slaves registered`);
    await waitFor(() => m2.masters().reduce((sum, m) => sum + m.slavesHeld, 0) === 3 * n, 3_000, "counts in the membership");
    return where;
  }

  it("ListSlaves pages with a selector: every match once, in id order, with its master; the CLI's listAllSlaves agrees", async () => {
    const where = await fleet(20);
    const admin = adminClient(m2.address);
    const listed: string[] = [];
    let token = "";
    let pagesSeen = 0;
    do {
      const page = await admin.listSlaves({ selector: "region=eu", pageSize: 7, pageToken: token });
      expect(page.slaves.length).to.be.at.most(7);
      expect(page.unansweredMasters).to.deep.equal([]);
      listed.push(...page.slaves.map((s) => `${s.id}@${s.masterId}`));
      token = page.nextPageToken;
      pagesSeen++;
    } while (token !== "");
    const want = [...where]
      .filter(([id]) => Number(id.slice(1)) % 2 === 1)
      .map(([id, master]) => `${id}@${master}`)
      .sort();
    expect(listed).to.deep.equal(want);
    expect(pagesSeen).to.equal(Math.ceil(want.length / 7));
    const all = await admin.listAllSlaves({ pageSize: 11 });
    expect(all.slaves.map((s) => `${s.id}@${s.masterId}`)).to.deep.equal([...where].map(([id, master]) => `${id}@${master}`).sort());
    const summary = await m1.fleetSummary();
    expect(summary).to.deep.include({ connected: 60, unanswered: [], clusterAvailable: true });
    expect(summary.masters[0]!.id).to.equal("m1");
    expect(summary.masters.map((m) => `${m.id}=${m.slavesHeld}`).sort()).to.deep.equal(["m1=20", "m2=20", "m3=20"]);
  });

  it("a master leaving mid-listing: the listing ends, its slaves listed up to where it left, the others' all; nothing twice", async () => {
    const where = await fleet(15);
    const admin = adminClient(m1.address);
    const first = await admin.listSlaves({ pageSize: 10 });
    expect(first.slaves.map((s) => s.masterId).sort()).to.include.members(["m1", "m2", "m3"]);
    await m3.close();
    await mastersConverged([m1, m2], ["m1", "m2"]);
    const listed = first.slaves.map((s) => `${s.id}@${s.masterId}`);
    for (let token = first.nextPageToken; token !== ""; ) {
      const page = await admin.listSlaves({ pageSize: 10, pageToken: token });
      expect(page.unansweredMasters).to.deep.equal([]);
      listed.push(...page.slaves.map((s) => `${s.id}@${s.masterId}`));
      token = page.nextPageToken;
    }
    const end = first.slaves.at(-1)!.id;
    const want = [...where].filter(([id, master]) => master !== "m3" || id <= end).map(([id, master]) => `${id}@${master}`);
    expect(listed).to.deep.equal(want.sort());
  });

  it("a malformed token, or one from a listing with another selector, is INVALID_ARGUMENT; so is a negative page_size", async () => {
    await fleet(3);
    const admin = adminClient(m3.address);
    const eu = await admin.listSlaves({ selector: "region=eu", pageSize: 1 });
    expect(eu.nextPageToken).to.not.equal("");
    const refused = (options: Parameters<typeof admin.listSlaves>[0]) =>
      admin.listSlaves(options).then(
        () => "accepted",
        (err: NetSyncError) => `${err.code === Code.INVALID_ARGUMENT ? "INVALID_ARGUMENT" : err.code}: ${err.message}`,
      );
    expect(await refused({ selector: "region=us", pageToken: eu.nextPageToken })).to.match(/^INVALID_ARGUMENT: .*selector "region=eu"/);
    expect(await refused({ pageToken: eu.nextPageToken })).to.match(/^INVALID_ARGUMENT/);
    expect(await refused({ pageToken: "junk" })).to.match(/^INVALID_ARGUMENT: .*not one this listing gave/);
    expect(await refused({ pageSize: -1 })).to.match(/^INVALID_ARGUMENT: .*page_size/);
    expect(await refused({ selector: "region=eu", pageToken: eu.nextPageToken })).to.equal("accepted");
  });
});
