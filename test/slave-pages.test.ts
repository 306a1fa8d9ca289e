import { expect } from "chai";
import fc from "fast-check";
import { Code } from "../src/code.js";
import type { NetSyncError } from "../src/errors.js";
import {
  decodePageToken,
  encodePageToken,
  type MasterPart,
  PageAssembler,
  type PageCursor,
  type PageToken,
  pageSizeOf,
} from "../src/slave-pages.js";
import { adminClient } from "./grpc-helpers.js";
import { cleanup, rawClient, startMaster, waitFor } from "./helpers.js";

type Item = { id: string; masterId: string; match: boolean; bytes: number };

/** A master as a page sees it: its items in id order, answering like Fleet.page (limit, scan limit) and a byte cap like Scatter.onPage. */
function answer(
  items: Item[],
  masterId: string,
  cursor: PageCursor | undefined,
  limit: number,
  scanLimit: number,
  cap: number,
): MasterPart<Item> {
  const after = items.filter((i) => !cursor || i.id > cursor.id || (cursor.inclusive && i.id === cursor.id));
  const slaves: Item[] = [];
  let last: string | undefined;
  let scanned = 0;
  let bytes = 0;
  for (const item of after) {
    if (slaves.length >= limit || scanned >= scanLimit) return { masterId, slaves, last, done: false };
    if (item.match && slaves.length > 0 && bytes + item.bytes > cap) return { masterId, slaves, last, done: false };
    scanned++;
    last = item.id;
    if (item.match) {
      slaves.push(item);
      bytes += item.bytes;
    }
  }
  return { masterId, slaves, last, done: true };
}

/** Every page of a listing over `fleet` (master id → its items), as the scopes run it. */
function listing(
  fleet: Map<string, Item[]>,
  options: { pageSize: number; rounds: number; scanLimit: number; cap: number; maxBytes: number; selector?: string; fails?: () => boolean },
): Item[][] {
  const pages: Item[][] = [];
  const selector = options.selector ?? "";
  let text = "";
  do {
    const token = decodePageToken(text, selector);
    const masters = [...fleet.keys()];
    const assembler = new PageAssembler<Item>(token, masters, options.pageSize, options.maxBytes, (i) => i.bytes);
    for (let round = 0; round < options.rounds; round++) {
      const requests = assembler.requests();
      if (requests.length === 0) break;
      for (const r of requests) {
        if (r.masterId !== "m1" && options.fails?.()) assembler.fail(r.masterId);
        else assembler.answer(answer(fleet.get(r.masterId)!, r.masterId, r.cursor, r.limit, options.scanLimit, options.cap));
      }
      assembler.place();
    }
    pages.push(assembler.page);
    text = assembler.nextToken();
  } while (text !== "" && pages.length < 2_000);
  return pages;
}

const order = (a: Item, b: Item) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.masterId < b.masterId ? -1 : a.masterId > b.masterId ? 1 : 0);

describe("ListSlaves pages", () => {
  afterEach(cleanup);

  it("pages over several masters: every match once, in (id, master) order, none over its size or bytes (fast-check)", () => {
    const item = fc.record({
      id: fc.string({ minLength: 1, maxLength: 3 }),
      masterId: fc.constantFrom("m1", "m2", "m3"),
      match: fc.boolean(),
      bytes: fc.integer({ min: 1, max: 50 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(item, { selector: (i) => `${i.id}\u0000${i.masterId}`, maxLength: 120 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 400 }),
        (items, pageSize, rounds, scanLimit, cap, maxBytes) => {
          const fleet = new Map<string, Item[]>(["m1", "m2", "m3"].map((m) => [m, items.filter((i) => i.masterId === m).sort(order)]));
          const pages = listing(fleet, { pageSize, rounds, scanLimit, cap, maxBytes });
          expect(pages.length, "the listing ends").to.be.below(2_000);
          const listed = pages.flat();
          expect(listed.map((i) => `${i.id}@${i.masterId}`)).to.deep.equal(
            items
              .filter((i) => i.match)
              .sort(order)
              .map((i) => `${i.id}@${i.masterId}`),
          );
          for (const page of pages) {
            expect(page.length).to.be.at.most(pageSize);
            if (page.length > 1) expect(page.reduce((s, i) => s + i.bytes, 0)).to.be.at.most(maxBytes);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("with masters failing at random, what is listed is still in order and never twice (fast-check)", () => {
    const item = fc.record({
      id: fc.string({ minLength: 1, maxLength: 3 }),
      masterId: fc.constantFrom("m1", "m2", "m3"),
      match: fc.boolean(),
      bytes: fc.constant(1),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(item, { selector: (i) => `${i.id}\u0000${i.masterId}`, maxLength: 120 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 50 }),
        (items, pageSize, scanLimit, coin) => {
          const fleet = new Map<string, Item[]>(["m1", "m2", "m3"].map((m) => [m, items.filter((i) => i.masterId === m).sort(order)]));
          let flip = 0;
          const fails = () => coin[flip++ % coin.length]!;
          const listed = listing(fleet, { pageSize, rounds: 3, scanLimit, cap: 1e9, maxBytes: 1e9, fails }).flat();
          for (let i = 1; i < listed.length; i++) expect(order(listed[i - 1]!, listed[i]!)).to.equal(-1);
          // m1 (the asking master) never fails: all of its matches are listed.
          expect(listed.filter((i) => i.masterId === "m1")).to.deep.equal(fleet.get("m1")!.filter((i) => i.match));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("with ids spread over the masters, a full page comes in one round, each master asked for about twice its share", () => {
    const fleet = new Map<string, Item[]>();
    for (let k = 0; k < 10; k++) {
      const items = Array.from({ length: 1_000 }, (_, i) => ({
        id: `s${String(i * 10 + k).padStart(5, "0")}`,
        masterId: `m${k}`,
        match: true,
        bytes: 1,
      }));
      fleet.set(`m${k}`, items);
    }
    const assembler = new PageAssembler<Item>(decodePageToken("", ""), [...fleet.keys()], 1_000);
    const requests = assembler.requests();
    expect(requests.map((r) => r.limit)).to.deep.equal(Array(10).fill(216));
    for (const r of requests) assembler.answer(answer(fleet.get(r.masterId)!, r.masterId, r.cursor, r.limit, 10_000, 1e9));
    assembler.place();
    expect(assembler.page.length).to.equal(1_000);
    expect(assembler.complete).to.equal(true);
    expect(assembler.page.at(-1)!.id).to.equal("s00999");
  });

  it("a master that fails is left out of the page; one that joins later is listed from the token's position", () => {
    const mk = (masterId: string, ids: string[]) => ids.map((id) => ({ id, masterId, match: true, bytes: 1 }));
    const fleet = new Map([
      ["m1", mk("m1", ["a", "c", "e", "g"])],
      ["m2", mk("m2", ["b", "d", "f", "h"])],
    ]);
    const first = new PageAssembler<Item>(decodePageToken("", ""), ["m1", "m2"], 3);
    for (const r of first.requests()) {
      if (r.masterId === "m2") first.fail("m2");
      else first.answer(answer(fleet.get("m1")!, "m1", r.cursor, r.limit, 100, 100));
    }
    first.place();
    expect(first.page.map((i) => i.id)).to.deep.equal(["a", "c", "e"]);
    const token = first.nextToken();
    // m3 joined: it starts at the position ("e"), so its "d" (passed already) is not listed, its "f" is.
    fleet.set("m3", mk("m3", ["d", "f"]));
    const second = new PageAssembler<Item>(decodePageToken(token, ""), ["m1", "m2", "m3"], 10);
    for (const r of second.requests()) second.answer(answer(fleet.get(r.masterId)!, r.masterId, r.cursor, r.limit, 100, 100));
    second.place();
    expect(second.page.map((i) => `${i.id}@${i.masterId}`)).to.deep.equal(["f@m2", "f@m3", "g@m1", "h@m2"]);
    expect(second.nextToken()).to.equal("");
  });

  it("an answer that says more follow without saying how far it looked is refused: that master counts as failed", () => {
    const assembler = new PageAssembler<Item>(decodePageToken("", ""), ["m1", "m2"], 5);
    expect(assembler.answer({ masterId: "m2", slaves: [], last: undefined, done: false })).to.equal(false);
    expect(
      assembler.answer({ masterId: "m1", slaves: [{ id: "a", masterId: "m1", match: true, bytes: 1 }], last: "a", done: true }),
    ).to.equal(true);
    assembler.place();
    expect(assembler.page.map((i) => i.id)).to.deep.equal(["a"]);
    expect(assembler.complete).to.equal(true);
    expect(assembler.nextToken()).to.equal("");
  });

  it("tokens: another selector's, a malformed one or another version is INVALID_ARGUMENT; a negative size too", () => {
    const token: PageToken = { selector: "region=eu", at: { id: "a", masterId: "m1" }, skip: { m2: "z" } };
    const text = encodePageToken(token);
    expect(decodePageToken(text, "region=eu")).to.deep.equal(token);
    const refused = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as NetSyncError).code === Code.INVALID_ARGUMENT ? (err as NetSyncError).message : `code ${(err as NetSyncError).code}`;
      }
      return "accepted";
    };
    expect(refused(() => decodePageToken(text, "region=us"))).to.match(/selector "region=eu"/);
    expect(refused(() => decodePageToken(text, ""))).to.match(/selector/);
    for (const bad of ["junk", Buffer.from("[1,2]").toString("base64url"), Buffer.from('{"v":2,"s":""}').toString("base64url")]) {
      expect(
        refused(() => decodePageToken(bad, "")),
        bad,
      ).to.match(/not one this listing gave/);
    }
    expect(refused(() => pageSizeOf(-1, 5, 10))).to.match(/page_size/);
    expect(pageSizeOf(0, 5, 10)).to.equal(5);
    expect(pageSizeOf(50, 5, 10)).to.equal(10);
  });

  it("a fleet larger than one message is listed in pages, none over the limit, all slaves once", async () => {
    // 2 KiB messages: a page holds about a dozen slaves, so 60 take several pages.
    const master = await startMaster({ maxMessageBytes: 2_048 });
    const ids = Array.from({ length: 60 }, (_, i) => `w-${String(i).padStart(2, "0")}`);
    for (const id of ids) rawClient(master.address, { id, autoPong: true, metadata: { "netsync-slave-labels": "region=eu,role=worker" } });
    await waitFor(() => master.size === ids.length, 5_000, "60 slaves registered");
    const admin = adminClient(master.address);

    const first = await admin.listSlaves();
    expect(first.slaves.length).to.be.within(2, 59);
    expect(first.nextPageToken).to.not.equal("");
    const all = await admin.listAllSlaves();
    expect(all.slaves.map((s) => s.id)).to.deep.equal(ids);
    expect(all.nextPageToken).to.equal("");

    const sevens = await admin.listSlaves({ pageSize: 7 });
    expect(sevens.slaves.map((s) => s.id)).to.deep.equal(ids.slice(0, 7));
    const next = await admin.listSlaves({ pageSize: 7, pageToken: sevens.nextPageToken });
    expect(next.slaves.map((s) => s.id)).to.deep.equal(ids.slice(7, 14));

    const bad = await admin.listSlaves({ pageToken: "junk" }).then(
      () => undefined,
      (err: NetSyncError) => err,
    );
    expect(bad?.code).to.equal(Code.INVALID_ARGUMENT);
  });
});
