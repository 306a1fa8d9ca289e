/** pace(): every item once and in order, in turns with the loop's timers between them, and stopped() honoured. */
import { expect } from "chai";
import { pace } from "../../src/fleet/pacer.js";
import { busyWait } from "../helpers.js";

/** Items that each cost `us` µs of CPU. */
function costly(count: number, us: number) {
  const items = Array.from({ length: count }, (_, i) => i);
  return { items, each: () => busyWait(us / 1000) };
}

describe("pace", () => {
  it("runs every item once, in order, and lets a timer run between turns", async () => {
    const { items } = costly(3_000, 0);
    const seen: number[] = [];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    await pace(items, (i) => {
      seen.push(i);
      busyWait(0.02);
    });
    clearInterval(timer);
    expect(seen).to.deep.equal(items);
    // 3,000 × 20 µs = 60 ms of work in turns of about 10 ms: the 1 ms timer ran between them.
    expect(ticks).to.be.at.least(3);
  });

  it("stops once stopped() says so", async () => {
    const seen: number[] = [];
    await pace(
      Array.from({ length: 100 }, (_, i) => i),
      (i) => seen.push(i),
      { stopped: () => seen.length >= 40 },
    );
    expect(seen).to.have.length(40);
  });
});
