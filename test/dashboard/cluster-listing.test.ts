// The dashboard of a master in a cluster of three: its table by id is a page of the fleet-wide listing
// (each master answers only its next slice), its ticks read every master's counts, and nothing it does
// while a viewer watches lists the whole fleet. Real NATS, real masters, raw slaves.
import * as http from "node:http";
import { expect } from "chai";
import { DashboardServer } from "../../src/dashboard/http-server.js";
import { silentLogger } from "../../src/logger.js";
import type { Master } from "../../src/master.js";
import { clusterMaster, mastersConverged } from "../cluster/masters-helpers.js";
import { haveNatsServer, NatsServer } from "../cluster/nats-server.js";
import { cleanup, rawClient, track, waitFor } from "../helpers.js";

interface SlavesAnswer {
  total: number;
  matched: number | null;
  offset: number;
  paged?: boolean;
  nextPageToken?: string;
  unanswered: string[];
  slaves: { id: string; masterId?: string }[];
}

describe("dashboard of a master in a cluster", function () {
  this.timeout(15_000);
  const nats = new NatsServer();
  let m1: Master;
  let m2: Master;
  let m3: Master;
  let url: string;
  let dashboard: DashboardServer;
  const where = new Map<string, string>();

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await nats.start();
  });
  after(() => nats.kill());
  afterEach(cleanup);

  beforeEach(async () => {
    [m1, m2, m3] = (await Promise.all(["m1", "m2", "m3"].map((name) => clusterMaster(name, [nats.url])))) as [Master, Master, Master];
    await mastersConverged([m1, m2, m3], ["m1", "m2", "m3"]);
    where.clear();
    for (let i = 0; i < 30; i++) {
      const master = [m1, m2, m3][i % 3]!;
      const id = `d${String(i).padStart(2, "0")}`;
      rawClient(master.address, { id, autoPong: true, metadata: { "netsync-slave-labels": `region=${i % 2 ? "eu" : "us"}` } });
      where.set(id, master.id);
    }
    await waitFor(() => m1.masters().reduce((sum, m) => sum + m.slavesHeld, 0) === 30, 5_000, "30 slaves in m1's membership");
    // A tick every 200 ms (batchMs 200, one per 1,000 slaves of the cluster).
    dashboard = new DashboardServer(m1, { port: 0, host: "127.0.0.1", log: silentLogger(), batchMs: 200 });
    track(() => dashboard.close());
    url = `http://127.0.0.1:${await dashboard.listen()}/`;
  });

  const list = async (query: string) => {
    const res = await fetch(`${url}api/slaves?${query}`);
    return { status: res.status, body: (await res.json()) as SlavesAnswer };
  };

  it("pages the table by id with tokens: every slave once, in order, with its master; a selector too, not counted", async () => {
    const seen: string[] = [];
    let after = "";
    let pages = 0;
    do {
      const { status, body } = await list(`limit=7&offset=${seen.length}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      expect(status).to.equal(200);
      expect(body).to.include({ paged: true, total: 30, matched: 30, offset: seen.length });
      expect(body.slaves.length).to.be.at.most(7);
      seen.push(...body.slaves.map((s) => `${s.id}@${s.masterId}`));
      after = body.nextPageToken!;
      pages++;
    } while (after !== "");
    expect(seen).to.deep.equal([...where].map(([id, master]) => `${id}@${master}`).sort());
    expect(pages).to.equal(5);

    const eu: string[] = [];
    after = "";
    do {
      const { body } = await list(`selector=region%3Deu&limit=4${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      expect(body).to.include({ paged: true, matched: null, total: 30 });
      eu.push(...body.slaves.map((s) => s.id));
      after = body.nextPageToken!;
    } while (after !== "");
    expect(eu).to.deep.equal([...where.keys()].filter((id) => Number(id.slice(1)) % 2 === 1).sort());

    // Any other order needs every slave: the fleet-wide listing, as before.
    const byRtt = await list("sort=rttMs&limit=100");
    expect(byRtt.body.paged).to.equal(undefined);
    expect(byRtt.body).to.include({ matched: 30, total: 30 });
    const bad = await list(`selector=region%3Dus&after=${encodeURIComponent(after || "junk")}`);
    expect(bad.status).to.equal(400);
  });

  it("ticks read every master's counts and RTTs, never the whole fleet; the table's fetch is one page", async () => {
    let listings = 0;
    let summaries = 0;
    const fleet = m1.fleet.bind(m1);
    const fleetSummary = m1.fleetSummary.bind(m1);
    m1.fleet = (options) => {
      listings++;
      return fleet(options);
    };
    m1.fleetSummary = (options) => {
      summaries++;
      return fleetSummary(options);
    };
    const ticks: { connected: number; masters: { id: string; answered: boolean; slavesHeld: number }[]; rttP50: number | null }[] = [];
    const req = http.get(`${url}api/events`, (res) => {
      let buffer = "";
      res.setEncoding("utf8").on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (/^event: (hello|tick)$/m.test(frame) && data) {
            ticks.push(JSON.parse(data));
            void list("limit=10");
          }
        }
      });
    });
    req.on("error", () => {});
    track(() => req.destroy());
    await waitFor(() => ticks.length >= 4, 5_000, "4 ticks");
    expect(listings, "fleet-wide listings while watched").to.equal(0);
    expect(summaries).to.be.at.least(4);
    const last = ticks.at(-1)!;
    expect(last.connected).to.equal(30);
    expect(last.masters.map((m) => `${m.id}=${m.slavesHeld}/${m.answered}`).sort()).to.deep.equal([
      "m1=10/true",
      "m2=10/true",
      "m3=10/true",
    ]);
  });
});
