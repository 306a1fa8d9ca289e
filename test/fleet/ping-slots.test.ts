/**
 * PingSlots (src/fleet/ping-slots.ts): spreadOrder, slot assignment by peer, the
 * even spread of loads (a fast-check model test), slice coverage and clear().
 */
import { expect } from "chai";
import fc from "fast-check";
import { PingSlots, type Slotted, spreadOrder } from "../../src/fleet/ping-slots.js";

/** A stream as PingSlots sees it. */
class Member implements Slotted {
  slot = -1;
  constructor(
    readonly peer: string,
    readonly name = peer,
  ) {}
}

/** Every member reachable through slice(0..slices-1), in visiting order. */
function visit<T extends Slotted>(slots: PingSlots<T>, slices: number): T[] {
  const seen: T[] = [];
  for (let slice = 0; slice < slices; slice++) for (const set of slots.slice(slice, slices)) seen.push(...set);
  return seen;
}

describe("PingSlots", () => {
  describe("spreadOrder", () => {
    it("is a permutation of 0..n-1 for every n in 1..200", () => {
      for (let n = 1; n <= 200; n++) {
        const order = spreadOrder(n);
        expect(order, `n=${n}`).to.have.length(n);
        expect(
          [...order].sort((a, b) => a - b),
          `n=${n}`,
        ).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      }
    });

    it("starts 0, n/2, n/4, 3n/4 (n=100 and n=16)", () => {
      expect(spreadOrder(100).slice(0, 4)).to.deep.equal([0, 50, 25, 75]);
      expect(spreadOrder(16)).to.deep.equal([0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15]);
      expect(spreadOrder(1)).to.deep.equal([0]);
      expect(spreadOrder(0)).to.deep.equal([]);
    });

    it("spreads every prefix: the first k entries leave no gap wider than 2n/k (n in 1..200)", () => {
      for (let n = 1; n <= 200; n++) {
        const order = spreadOrder(n);
        for (let k = 1; k <= n; k++) {
          const prefix = order.slice(0, k).sort((a, b) => a - b);
          // Circular gaps between consecutive chosen slots (wrapping from the last back to the first).
          let widest = prefix[0]! + n - prefix[k - 1]!;
          for (let i = 1; i < k; i++) widest = Math.max(widest, prefix[i]! - prefix[i - 1]!);
          expect(widest, `n=${n} k=${k} prefix=${prefix.join(",")}`).to.be.at.most(Math.ceil((2 * n) / k));
        }
      }
    });
  });

  describe("constructor", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`rejects a slot count of ${bad} with RangeError`, () => {
        expect(() => new PingSlots<Member>(bad)).to.throw(RangeError, /slot count must be an integer/);
      });
    }

    it("accepts 1 and reports count", () => {
      expect(new PingSlots<Member>(1).count).to.equal(1);
      expect(new PingSlots<Member>(37).count).to.equal(37);
      expect(new PingSlots<Member>(37).sizes()).to.deep.equal(new Array(37).fill(0));
    });
  });

  describe("assign", () => {
    it("puts distinct peers in distinct slots, in spreadOrder, until every slot has one; then starts over", () => {
      for (const count of [1, 2, 3, 7, 16, 100]) {
        const slots = new PingSlots<Member>(count);
        const order = spreadOrder(count);
        const first = Array.from({ length: count }, (_, i) => slots.assign(new Member(`p${i}`)));
        expect(first, `count=${count}`).to.deep.equal(order);
        expect(slots.sizes()).to.deep.equal(new Array(count).fill(1));
        // A second lap fills the slots in the same order.
        const second = Array.from({ length: count }, (_, i) => slots.assign(new Member(`q${i}`)));
        expect(second, `count=${count}, second lap`).to.deep.equal(order);
        expect(slots.sizes()).to.deep.equal(new Array(count).fill(2));
      }
    });

    describe("in blocks (block > 1)", () => {
      it("sends consecutive new peers to one slot until it holds `block` more than the least loaded, then to the next in spreadOrder", () => {
        const slots = new PingSlots<Member>(4, 3); // order 0, 2, 1, 3
        const assigned = Array.from({ length: 14 }, (_, i) => slots.assign(new Member(`p${i}`)));
        expect(assigned).to.deep.equal([0, 0, 0, 2, 2, 2, 1, 1, 1, 3, 3, 3, 3, 3]);
        expect(slots.sizes()).to.deep.equal([3, 3, 3, 5]);
      });

      it("keeps loads within `block` of each other, with releases, and puts a peer's streams in one slot (fast-check)", () => {
        fc.assert(
          fc.property(
            fc.integer({ min: 1, max: 12 }),
            fc.integer({ min: 1, max: 8 }),
            fc.array(fc.tuple(fc.boolean(), fc.nat(30)), { maxLength: 150 }),
            (count, block, ops) => {
              const slots = new PingSlots<Member>(count, block);
              const live: Member[] = [];
              let assignsSinceRelease = 0;
              for (const [release, k] of ops) {
                if (release && live.length > 0) {
                  const [m] = live.splice(k % live.length, 1);
                  expect(slots.release(m!)).to.equal(true);
                  assignsSinceRelease = 0;
                  continue;
                }
                const m = new Member(`p${live.length}-${k}`);
                slots.assign(m);
                live.push(m);
                assignsSinceRelease++;
                const sizes = slots.sizes();
                // Releases can unbalance loads (nothing moves); a run of assigns never widens the spread past block.
                if (assignsSinceRelease === live.length) expect(Math.max(...sizes) - Math.min(...sizes)).to.be.at.most(block);
              }
              expect(visit(slots, count)).to.have.members(live);
            },
          ),
          { numRuns: 300 },
        );
      });

      it("rejects a block that is not an integer ≥ 1", () => {
        for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new PingSlots<Member>(4, bad), String(bad)).to.throw(RangeError);
      });
    });

    it("writes the slot onto the member and returns it", () => {
      const slots = new PingSlots<Member>(8);
      const m = new Member("a");
      const slot = slots.assign(m);
      expect(m.slot).to.equal(slot);
      expect(visit(slots, 8)).to.deep.equal([m]);
    });

    it("goes to the least loaded slot after releases", () => {
      const slots = new PingSlots<Member>(4); // order 0, 2, 1, 3
      const members = Array.from({ length: 8 }, (_, i) => new Member(`p${i}`));
      for (const m of members) slots.assign(m);
      expect(slots.sizes()).to.deep.equal([2, 2, 2, 2]);
      const inSlot3 = members.filter((m) => m.slot === 3);
      for (const m of inSlot3) expect(slots.release(m)).to.equal(true);
      expect(slots.sizes()).to.deep.equal([2, 2, 2, 0]);
      expect(slots.assign(new Member("x"))).to.equal(3);
      expect(slots.assign(new Member("y"))).to.equal(3);
      expect(slots.assign(new Member("z"))).to.equal(0, "all equal again: ties go to spreadOrder's first");
    });

    it("puts the streams of one peer in one slot, whatever the loads", () => {
      const slots = new PingSlots<Member>(4);
      const a = Array.from({ length: 5 }, (_, i) => new Member("A", `a${i}`));
      const b = new Member("B");
      slots.assign(a[0]!);
      slots.assign(b);
      for (const m of a.slice(1)) slots.assign(m);
      expect(new Set(a.map((m) => m.slot)).size).to.equal(1);
      expect(a[0]!.slot).to.equal(0);
      expect(b.slot).to.equal(2);
      expect(slots.sizes()).to.deep.equal([5, 0, 1, 0]);
      // A new peer avoids the crowded slot.
      expect(slots.assign(new Member("C"))).to.equal(1);
    });

    it("keeps a peer's slot while one of its streams is left, and forgets it after the last one", () => {
      const slots = new PingSlots<Member>(4);
      const a1 = new Member("A", "a1");
      const a2 = new Member("A", "a2");
      expect(slots.assign(a1)).to.equal(0);
      expect(slots.assign(a2)).to.equal(0);
      expect(slots.assign(new Member("B"))).to.equal(2);
      expect(slots.release(a1)).to.equal(true);
      // A still has a2 in slot 0: a new stream of A joins it although slot 1 and 3 are empty.
      const a3 = new Member("A", "a3");
      expect(slots.assign(a3)).to.equal(0);
      expect(slots.release(a2)).to.equal(true);
      expect(slots.release(a3)).to.equal(true);
      expect(slots.sizes()).to.deep.equal([0, 0, 1, 0]);
      // Fill slot 0 with another peer: A, forgotten, now goes to the least loaded slot instead.
      expect(slots.assign(new Member("C"))).to.equal(0);
      const a4 = new Member("A", "a4");
      expect(slots.assign(a4)).to.equal(1);
      expect(slots.sizes()).to.deep.equal([1, 1, 1, 0]);
    });
  });

  describe("release", () => {
    it("assigning a member twice counts it once: one release frees its peer's slot", () => {
      const slots = new PingSlots<Member>(4);
      const a = new Member("A");
      const first = slots.assign(a);
      expect(slots.assign(a)).to.equal(first);
      expect(slots.sizes().reduce((x, y) => x + y)).to.equal(1);
      expect(slots.release(a)).to.equal(true);
      // The peer is forgotten, so its next stream goes to the least loaded slot in spread order (0), wherever A was.
      const b = new Member("B");
      slots.assign(b);
      const again = new Member("A");
      slots.assign(again);
      expect(again.slot, "A's old slot is not pinned").to.not.equal(b.slot);
      expect(slots.sizes().filter((n) => n > 0)).to.have.length(2);
    });

    it("returns false for a member that was never in, and for one released twice", () => {
      const slots = new PingSlots<Member>(4);
      const never = new Member("N");
      expect(slots.release(never)).to.equal(false);
      never.slot = 2;
      expect(slots.release(never), "a slot number alone does not make it a member").to.equal(false);
      never.slot = 99;
      expect(slots.release(never), "slot out of range").to.equal(false);
      const m = new Member("A");
      slots.assign(m);
      const other = new Member("A", "other");
      other.slot = m.slot;
      expect(slots.release(other), "same peer and slot, different object").to.equal(false);
      expect(slots.release(m)).to.equal(true);
      expect(slots.release(m)).to.equal(false);
      expect(slots.sizes()).to.deep.equal([0, 0, 0, 0]);
    });
  });

  describe("model (fast-check): random assign/release sequences", () => {
    type Op = { kind: "assign"; peer: number } | { kind: "release"; pick: number };
    const op = (releases: boolean): fc.Arbitrary<Op> => {
      const assign = fc.record({ kind: fc.constant("assign" as const), peer: fc.nat({ max: 11 }) });
      return releases ? fc.oneof(assign, fc.record({ kind: fc.constant("release" as const), pick: fc.nat() })) : assign;
    };
    const spread = (loads: number[]) => Math.max(...loads) - Math.min(...loads);

    /**
     * Replays `ops` against PingSlots and a model of it: the model predicts
     * every assigned slot (the peer's live slot, else the first least loaded
     * slot in spreadOrder) and checks sizes, slices and peer sharing after
     * every step.
     */
    function run(count: number, ops: Op[], ownPeers: boolean): void {
      const slots = new PingSlots<Member>(count);
      const order = spreadOrder(count);
      const made: Member[] = [];
      const live = new Set<Member>();
      const loads = new Array<number>(count).fill(0);
      let fresh = 0;
      let released = false;
      const check = () => {
        const slotOfPeer = new Map<string, number>();
        for (const m of live) {
          const shared = slotOfPeer.get(m.peer);
          if (shared === undefined) slotOfPeer.set(m.peer, m.slot);
          else expect(m.slot, `streams of ${m.peer} share a slot`).to.equal(shared);
        }
        expect(slots.sizes()).to.deep.equal(loads);
        const visited = visit(slots, count);
        expect(visited).to.have.length(live.size);
        expect(visited).to.have.members([...live]);
        if (ownPeers && !released) expect(spread(loads), `loads ${loads}`).to.be.at.most(1);
      };
      for (const o of ops) {
        if (o.kind === "assign") {
          const m = ownPeers ? new Member(`own${fresh++}`) : new Member(`p${o.peer}`, `s${fresh++}`);
          const peerSlot = [...live].find((other) => other.peer === m.peer)?.slot;
          const least = Math.min(...loads);
          const expected = peerSlot ?? order.find((s) => loads[s] === least)!;
          const before = spread(loads);
          const slot = slots.assign(m);
          expect(slot, `assign ${m.name} of ${m.peer}, loads ${loads}`).to.equal(expected);
          expect(m.slot).to.equal(slot);
          made.push(m);
          live.add(m);
          loads[slot]!++;
          // A new peer goes to a least loaded slot, so it never widens the spread beyond 1.
          if (peerSlot === undefined) expect(spread(loads)).to.be.at.most(Math.max(before, 1));
        } else if (made.length > 0) {
          const m = made[o.pick % made.length]!;
          const member = live.has(m);
          expect(slots.release(m), `release ${m.name}`).to.equal(member);
          if (member) loads[m.slot]!--;
          live.delete(m);
          released = true;
        } else {
          expect(slots.release(new Member("nobody"))).to.equal(false);
        }
        check();
      }
    }

    it("streams of a peer share one slot; slots, sizes and slices match the model; release of a non-member is false", () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 9 }), fc.array(op(true), { maxLength: 60 }), (count, ops) => run(count, ops, false)),
        { numRuns: 300 },
      );
    });

    it("loads never differ by more than 1 when every stream has its own peer (assigns only)", () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 40 }), fc.array(op(false), { maxLength: 100 }), (count, ops) => run(count, ops, true)),
        { numRuns: 200 },
      );
    });

    it("with releases (own peers), each assign goes to the first least loaded slot and never widens the spread", () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 9 }), fc.array(op(true), { maxLength: 60 }), (count, ops) => run(count, ops, true)),
        { numRuns: 300 },
      );
    });

    it("releases alone can unbalance the loads: PingSlots does not move streams", () => {
      const slots = new PingSlots<Member>(2);
      const [a, b, c] = [new Member("a"), new Member("b"), new Member("c")];
      for (const m of [a, b, c]) slots.assign(m);
      expect(slots.sizes()).to.deep.equal([2, 1]);
      slots.release(b);
      expect(slots.sizes()).to.deep.equal([2, 0]);
      expect(slots.assign(new Member("d")), "the next peer fills the gap").to.equal(1);
    });
  });

  describe("slice", () => {
    it("for every slices in 1..S, slice(0..slices-1) visits every member exactly once", () => {
      for (const count of [1, 2, 5, 16, 37]) {
        const slots = new PingSlots<Member>(count);
        const members: Member[] = [];
        // Some slots hold several (shared peers), a few stay empty.
        for (let i = 0; i < count * 2 - 1; i++) {
          const m = new Member(`p${i % Math.max(1, count - 1)}`, `s${i}`);
          members.push(m);
          slots.assign(m);
        }
        for (let slices = 1; slices <= count; slices++) {
          const seen = visit(slots, slices);
          expect(seen, `count=${count} slices=${slices}`).to.have.length(members.length);
          expect(seen).to.have.members(members);
        }
      }
    });

    it("covers slots [floor(slice*S/slices), floor((slice+1)*S/slices)) and yields only non-empty ones", () => {
      const slots = new PingSlots<Member>(10);
      const members = Array.from({ length: 10 }, (_, i) => new Member(`p${i}`));
      for (const m of members) slots.assign(m);
      const bySlot = (s: number) => members.find((m) => m.slot === s)!;
      const slotsOf = (slice: number, slices: number) => Array.from(slots.slice(slice, slices), (set) => [...set][0]!.slot);
      expect(slotsOf(0, 3)).to.deep.equal([0, 1, 2]);
      expect(slotsOf(1, 3)).to.deep.equal([3, 4, 5]);
      expect(slotsOf(2, 3)).to.deep.equal([6, 7, 8, 9]);
      expect(slotsOf(0, 1)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      slots.release(bySlot(4));
      expect(slotsOf(1, 3), "the empty slot 4 is skipped").to.deep.equal([3, 5]);
      expect(Array.from(new PingSlots<Member>(4).slice(0, 1))).to.deep.equal([]);
    });

    it("tolerates releasing members while a slice is iterated", () => {
      const slots = new PingSlots<Member>(4);
      const members = Array.from({ length: 12 }, (_, i) => new Member(`p${i % 6}`, `s${i}`));
      for (const m of members) slots.assign(m);
      const seen: Member[] = [];
      for (let slice = 0; slice < 2; slice++) {
        for (const set of slots.slice(slice, 2)) {
          for (const m of set) {
            seen.push(m);
            expect(slots.release(m)).to.equal(true);
          }
        }
      }
      expect(seen).to.have.length(12);
      expect(seen).to.have.members(members);
      expect(slots.sizes()).to.deep.equal([0, 0, 0, 0]);
      expect(visit(slots, 4)).to.deep.equal([]);
    });
  });

  describe("clear", () => {
    it("empties every slot and forgets every peer", () => {
      const slots = new PingSlots<Member>(4);
      const a = new Member("A", "a1");
      slots.assign(a);
      slots.assign(new Member("A", "a2"));
      slots.assign(new Member("B"));
      slots.assign(new Member("C"));
      expect(slots.sizes()).to.deep.equal([2, 1, 1, 0]);
      slots.clear();
      expect(slots.sizes()).to.deep.equal([0, 0, 0, 0]);
      expect(visit(slots, 4)).to.deep.equal([]);
      expect(slots.release(a)).to.equal(false);
      expect(slots.count).to.equal(4);
      // Peers start over: B goes to slot 0, then A (forgotten) to the next in spreadOrder, not to A's old slot 0.
      expect(slots.assign(new Member("B"))).to.equal(0);
      expect(slots.assign(new Member("A", "a3"))).to.equal(2);
    });
  });
});
