import { expect } from "chai";
import fc from "fast-check";
import { Code } from "../src/code.js";
import type { NetSyncError } from "../src/errors.js";
import { pageOf } from "../src/slave-pages.js";
import { adminClient } from "./grpc-helpers.js";
import { cleanup, rawClient, startMaster, waitFor } from "./helpers.js";

type Item = { id: string; masterId: string; bytes: number };

function pages(items: Item[], pageSize: number, maxBytes: number): Item[][] {
  const out: Item[][] = [];
  let pageToken = "";
  do {
    const { page, nextPageToken } = pageOf(items, { pageSize, pageToken, defaultSize: 5, maxBytes, sizeOf: (item) => item.bytes });
    out.push(page);
    pageToken = nextPageToken;
  } while (pageToken !== "" && out.length < 1_000);
  return out;
}

describe("ListSlaves pages", () => {
  afterEach(cleanup);

  it("pageOf: every item once, in (id, master) order, pages bounded by count and bytes (fast-check)", () => {
    const item = fc.record({
      id: fc.string({ minLength: 1, maxLength: 4 }),
      masterId: fc.constantFrom("m1", "m2"),
      bytes: fc.integer({ min: 1, max: 50 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(item, { selector: (i) => `${i.id}\u0000${i.masterId}`, maxLength: 60 }),
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 1, max: 200 }),
        (items, pageSize, maxBytes) => {
          const all = pages(items, pageSize, maxBytes);
          const flat = all.flat();
          const key = (i: Item) => [i.id, i.masterId];
          const sorted = [...items].sort((a, b) =>
            a.id < b.id ? -1 : a.id > b.id ? 1 : a.masterId < b.masterId ? -1 : a.masterId > b.masterId ? 1 : 0,
          );
          expect(flat.map(key)).to.deep.equal(sorted.map(key));
          for (const page of all) {
            expect(page.length).to.be.at.most(pageSize === 0 ? 5 : pageSize);
            // A page is over the byte budget only when its one item is larger than the budget.
            if (page.length > 1) expect(page.reduce((s, i) => s + i.bytes, 0)).to.be.at.most(maxBytes);
            if (items.length > 0) expect(page.length).to.be.at.least(1);
          }
        },
      ),
    );
  });

  it("pageOf: a token it did not give, or a negative size, is INVALID_ARGUMENT", () => {
    const request = { pageSize: 0, defaultSize: 5, maxBytes: 100, sizeOf: () => 1 };
    for (const [pageSize, pageToken] of [
      [0, "not-a-token"],
      [0, Buffer.from("[1,2]").toString("base64url")],
      [-1, ""],
    ] as const) {
      try {
        pageOf([], { ...request, pageSize, pageToken });
        expect.fail("no error");
      } catch (err) {
        expect((err as NetSyncError).code, `${pageSize} ${pageToken}`).to.equal(Code.INVALID_ARGUMENT);
      }
    }
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
