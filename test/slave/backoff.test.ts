/**
 * Backoff (src/slave/backoff.ts): a fast-check property of the waits and caps, and
 * examples pinning the documented defaults and jitter.
 */
import { expect } from "chai";
import fc from "fast-check";
import { Backoff } from "../../src/slave/backoff.js";

describe("Backoff", () => {
  it("Backoff: waits in [0, cap), caps grow ×factor up to max, reset() starts over", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.integer({ min: 1, max: 60_000 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 29 }),
        (initial, factor, max, randoms, resetAt) => {
          let i = 0;
          const backoff = new Backoff({ initial, factor, max, random: () => randoms[i % randoms.length]! });
          let attempt = 0;
          for (; i < randoms.length; ) {
            if (i === resetAt) {
              backoff.reset();
              attempt = 0;
            }
            const cap = Math.min(max, initial * factor ** attempt);
            expect(backoff.cap).to.equal(cap);
            const r = randoms[i]!;
            const wait = backoff.next();
            i++;
            attempt++;
            expect(Number.isInteger(wait)).to.equal(true);
            expect(wait).to.be.at.least(0);
            expect(wait).to.equal(Math.floor(r * cap));
            if (cap >= 1) expect(wait).to.be.below(cap);
            expect(backoff.cap).to.be.at.least(Math.min(cap, max)).and.at.most(max);
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  describe("examples", () => {
    /** Caps of the first `n` attempts, advancing the backoff. */
    const caps = (b: Backoff, n: number) =>
      Array.from({ length: n }, () => {
        const cap = b.cap;
        b.next();
        return cap;
      });

    it("defaults: 100 ms initial cap, ×2 per attempt, capped at 10 s", () => {
      const b = new Backoff({ random: () => 0 });
      expect(caps(b, 10)).to.deep.equal([100, 200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]);
      for (let i = 0; i < 100; i++) b.next();
      expect(b.cap, "after many attempts").to.equal(10_000);
    });

    it("next() is floor(random() * cap): random() = 0 gives 0, random() = 0.999 gives cap - 1", () => {
      const zero = new Backoff({ random: () => 0 });
      expect([zero.next(), zero.next(), zero.next()]).to.deep.equal([0, 0, 0]);
      const high = new Backoff({ random: () => 0.999 });
      expect([high.next(), high.next(), high.next()]).to.deep.equal([99, 199, 399]);
      const half = new Backoff({ initial: 10, factor: 3, max: 50, random: () => 0.5 });
      expect([half.next(), half.next(), half.next(), half.next()]).to.deep.equal([5, 15, 25, 25]);
    });

    it("reset() returns to the initial cap", () => {
      const b = new Backoff({ random: () => 0.999 });
      b.next();
      b.next();
      b.next();
      expect(b.cap).to.equal(800);
      b.reset();
      expect(b.cap).to.equal(100);
      expect(b.next()).to.equal(99);
      expect(b.cap).to.equal(200);
    });

    it("the cap does not move until next() is called", () => {
      const b = new Backoff();
      expect([b.cap, b.cap]).to.deep.equal([100, 100]);
    });
  });
});
