// slaves-query.ts alone: /api/slaves' parameters, text filter, sort and
// paging over plain SlaveInfo values, no master and no server.

import { expect } from "chai";
import { HttpError } from "../../src/dashboard/http.js";
import { pagedQuery, parseSlavesQuery, querySlaves, type SlavesQuery, slaveJson } from "../../src/dashboard/slaves-query.js";
import type { SlaveInfo } from "../../src/model.js";

function slave(id: string, fields: Partial<SlaveInfo> = {}): SlaveInfo {
  return {
    id,
    peer: `10.0.0.1:${1000 + id.length}`,
    connectedAt: new Date(1_000),
    lastSeen: new Date(2_000),
    rttMs: undefined,
    pingsSent: 0,
    pongsReceived: 0,
    commandsSent: 0,
    labels: {},
    ...fields,
  };
}

const query = (params: string): SlavesQuery => parseSlavesQuery(new URLSearchParams(params));
const ids = (slaves: readonly SlaveInfo[], params = ""): string[] => querySlaves(slaves, query(params)).slaves.map((s) => s.id);

function status(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(HttpError);
    return (err as HttpError).status;
  }
  return expect.fail("expected a 400");
}

describe("dashboard slaves query", () => {
  describe("parameters", () => {
    it("defaults: every slave by id ascending, the first page of 500", () => {
      expect(query("")).to.deep.equal({ selector: "", text: "", sort: "id", descending: false, offset: 0, limit: 500, after: "" });
    });

    it("reads selector, q, sort, order, offset, limit and after, trimming the texts", () => {
      expect(query("selector=+role%3Ddb+&q=+Eu+&sort=rttMs&order=desc&offset=10&limit=1000&after=abc")).to.deep.equal({
        selector: "role=db",
        text: "Eu",
        sort: "rttMs",
        descending: true,
        offset: 10,
        limit: 1000,
        after: "abc",
      });
      expect(query("order=asc").descending).to.equal(false);
      expect(query("limit=&offset=").limit).to.equal(500);
    });

    it("refuses an unknown sort key, a limit outside 1..1000, a bad offset and a selector over 1024 characters with 400", () => {
      expect(status(() => query("sort=nope"))).to.equal(400);
      expect(status(() => query("sort=__proto__"))).to.equal(400);
      for (const limit of ["0", "1001", "-1", "1.5", "ten"])
        expect(
          status(() => query(`limit=${limit}`)),
          limit,
        ).to.equal(400);
      for (const offset of ["-1", "0.5", "x"])
        expect(
          status(() => query(`offset=${offset}`)),
          offset,
        ).to.equal(400);
      expect(query("limit=1").limit).to.equal(1);
      expect(query("limit=1000").limit).to.equal(1000);
      expect(status(() => query(`selector=${"a".repeat(1025)}`))).to.equal(400);
      expect(query(`selector=${"a".repeat(1024)}`).selector).to.have.length(1024);
      expect(status(() => query(`after=${"a".repeat(64 * 1024 + 1)}`))).to.equal(400);
    });

    it("a cluster pages the table by id ascending without text, from the first page or a token; anything else needs every slave", () => {
      expect(pagedQuery(query(""))).to.equal(true);
      expect(pagedQuery(query("selector=role%3Ddb&limit=100"))).to.equal(true);
      expect(pagedQuery(query("after=t&offset=500"))).to.equal(true);
      expect(pagedQuery(query("offset=500"))).to.equal(false);
      expect(pagedQuery(query("sort=rttMs"))).to.equal(false);
      expect(pagedQuery(query("order=desc"))).to.equal(false);
      expect(pagedQuery(query("q=eu"))).to.equal(false);
    });
  });

  describe("filter", () => {
    const fleet = [
      slave("web-1", { labels: { region: "eu", role: "web" }, peer: "10.0.0.7:5000" }),
      slave("DB-1", { labels: { region: "us", role: "db" } }),
      slave("cache", { labels: {} }),
    ];

    it("matches the id, the peer or one key=value label, in any case", () => {
      expect(ids(fleet, "q=db")).to.deep.equal(["DB-1"]);
      expect(ids(fleet, "q=10.0.0.7")).to.deep.equal(["web-1"]);
      expect(ids(fleet, "q=REGION%3DEU")).to.deep.equal(["web-1"]);
      expect(ids(fleet, "q=role%3Dw")).to.deep.equal(["web-1"]);
      expect(ids(fleet, "q=nothing")).to.deep.equal([]);
    });

    it("does not match across two labels (each key=value is its own text)", () => {
      expect(ids(fleet, "q=eu,role")).to.deep.equal([]);
    });

    it("counts what matched before paging, and leaves its input alone", () => {
      const input = fleet.slice();
      const page = querySlaves(input, query("q=-1&limit=1&order=desc"));
      expect(page.matched).to.equal(2);
      expect(page.slaves.map((s) => s.id)).to.deep.equal(["web-1"]);
      expect(input).to.deep.equal(fleet);
    });
  });

  describe("sort", () => {
    const fleet = [
      slave("c", { rttMs: 5, pingsSent: 2, labels: { z: "1" } }),
      slave("a", { rttMs: undefined, pingsSent: 2, labels: { a: "2" } }),
      slave("d", { rttMs: 1, pingsSent: 1, labels: { a: "1", b: "1" } }),
      slave("b", { rttMs: undefined, pingsSent: 3, labels: {} }),
    ];

    it("by id, either way", () => {
      expect(ids(fleet)).to.deep.equal(["a", "b", "c", "d"]);
      expect(ids(fleet, "order=desc")).to.deep.equal(["d", "c", "b", "a"]);
    });

    it("by rtt puts slaves without one (no pong yet) last, ties by id", () => {
      expect(ids(fleet, "sort=rttMs")).to.deep.equal(["d", "c", "a", "b"]);
    });

    it("by rtt descending puts slaves without one first, ties still by id ascending", () => {
      expect(ids(fleet, "sort=rttMs&order=desc")).to.deep.equal(["a", "b", "c", "d"]);
    });

    it("by a counter, ties by id ascending either way", () => {
      expect(ids(fleet, "sort=pingsSent")).to.deep.equal(["d", "a", "c", "b"]);
      expect(ids(fleet, "sort=pingsSent&order=desc")).to.deep.equal(["b", "a", "c", "d"]);
    });

    it("by labels, as their key=value,key=value text (no labels first)", () => {
      expect(ids(fleet, "sort=labels")).to.deep.equal(["b", "d", "a", "c"]);
    });

    it("by dates and peer", () => {
      const dated = [
        slave("x", { connectedAt: new Date(3), lastSeen: new Date(1), peer: "b:1" }),
        slave("y", { connectedAt: new Date(1), lastSeen: new Date(2), peer: "a:1" }),
      ];
      expect(ids(dated, "sort=connectedAt")).to.deep.equal(["y", "x"]);
      expect(ids(dated, "sort=lastSeen")).to.deep.equal(["x", "y"]);
      expect(ids(dated, "sort=peer")).to.deep.equal(["y", "x"]);
    });
  });

  describe("paging", () => {
    const fleet = Array.from({ length: 5 }, (_, i) => slave(`s${i}`));

    it("gives [offset, offset + limit), short at the end and empty past it", () => {
      expect(ids(fleet, "limit=2")).to.deep.equal(["s0", "s1"]);
      expect(ids(fleet, "limit=2&offset=2")).to.deep.equal(["s2", "s3"]);
      expect(ids(fleet, "limit=2&offset=4")).to.deep.equal(["s4"]);
      expect(ids(fleet, "limit=2&offset=5")).to.deep.equal([]);
      expect(ids(fleet, "offset=99")).to.deep.equal([]);
      expect(ids(fleet, "limit=5")).to.have.length(5);
      expect(querySlaves(fleet, query("limit=1&offset=99")).matched).to.equal(5);
    });

    it("pages the sorted order, not the input order", () => {
      expect(ids(fleet, "limit=2&offset=1&order=desc")).to.deep.equal(["s3", "s2"]);
    });
  });

  it("gives a slave as JSON: dates as Unix ms, no rtt as null", () => {
    const json = slaveJson(slave("j", { labels: { a: "1" }, connectedAt: new Date(10), lastSeen: new Date(20) }));
    expect(json).to.deep.equal({
      id: "j",
      labels: { a: "1" },
      peer: "10.0.0.1:1001",
      connectedAt: 10,
      lastSeen: 20,
      rttMs: null,
      pingsSent: 0,
      pongsReceived: 0,
      commandsSent: 0,
    });
    expect(slaveJson(slave("k", { rttMs: 1.5 })).rttMs).to.equal(1.5);
  });
});
