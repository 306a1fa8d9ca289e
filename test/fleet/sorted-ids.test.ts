import { expect } from "chai";
import fc from "fast-check";
import { mergeSortedUnique, SortedIds } from "../../src/fleet/sorted-ids.js";

describe("SortedIds", () => {
  it("SortedIds: add, delete and reading from any id agree with a sorted array (fast-check)", () => {
    const op = fc.oneof(
      fc.record({ add: fc.string({ maxLength: 3 }) }),
      fc.record({ del: fc.string({ maxLength: 3 }) }),
      fc.record({ from: fc.option(fc.string({ maxLength: 3 }), { nil: undefined }), inclusive: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3_000 }), fc.constantFrom(2, 3, 8, 512), (ops, maxBlock) => {
        const ids = new SortedIds(maxBlock);
        const model = new Set<string>();
        for (const o of ops) {
          if ("add" in o) {
            expect(ids.add(o.add)).to.equal(!model.has(o.add));
            model.add(o.add);
          } else if ("del" in o) expect(ids.delete(o.del)).to.equal(model.delete(o.del));
          else {
            const want = [...model].sort().filter((id) => o.from === undefined || id > o.from || (o.inclusive && id === o.from));
            expect([...ids.from(o.from, o.inclusive)]).to.deep.equal(want);
          }
          expect(ids.size).to.equal(model.size);
        }
        expect([...ids.from(undefined)]).to.deep.equal([...model].sort());
        expect(ids.all()).to.deep.equal([...model].sort());
      }),
      { numRuns: 60 },
    );
  });

  it("mergeSortedUnique: sorted lists merge into the sorted union, each id once (fast-check)", () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.string({ maxLength: 3 }), { maxLength: 200 }), { maxLength: 5 }), (raw) => {
        const lists = raw.map((list) => [...new Set(list)].sort());
        expect(mergeSortedUnique(lists)).to.deep.equal([...new Set(lists.flat())].sort());
      }),
      { numRuns: 200 },
    );
  });
});
