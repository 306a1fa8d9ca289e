/** ReplyWindow: what counts, when a waiting fan-out goes on, and that a slow Reply stops counting. */
import { expect } from "chai";
import { ReplyWindow } from "../../src/fleet/reply-window.js";

describe("ReplyWindow", () => {
  it("has room below its limit, and a full window waits until half of it is settled", async () => {
    const window = new ReplyWindow({ limit: 4, settleMs: 60_000 });
    const now = performance.now();
    const tickets = [0, 1, 2].map(() => window.take(now));
    expect(window.ready()).to.equal(undefined);
    tickets.push(window.take(now));
    const wait = window.ready();
    expect(wait).to.be.instanceOf(Promise);
    expect(window.ready()).to.equal(wait); // one wait for every fan-out
    let resumed = false;
    void wait?.then(() => {
      resumed = true;
    });
    window.settle(tickets[0] as number);
    window.settle(tickets[0] as number); // settling twice counts once
    await Promise.resolve();
    expect(resumed).to.equal(false);
    expect(window.size).to.equal(3);
    window.settle(tickets[3] as number);
    await wait;
    expect(window.size).to.equal(2);
    expect(window.ready()).to.equal(undefined);
    window.close();
  });

  it("stops counting a request settleMs after its write, so slow Replies do not hold a fan-out", async () => {
    const window = new ReplyWindow({ limit: 2, settleMs: 40 });
    const started = performance.now();
    const slow = [window.take(started), window.take(started)];
    const wait = window.ready();
    expect(wait).to.be.instanceOf(Promise);
    await wait;
    const waited = performance.now() - started;
    expect(waited).to.be.at.least(39);
    expect(waited).to.be.below(1_000);
    expect(window.size).to.equal(0);
    // Their Replies, late, change nothing.
    for (const ticket of slow) window.settle(ticket);
    expect(window.size).to.equal(0);
    window.close();
  });

  it("counts right across thousands of tickets, settled out of order and aged out", async () => {
    const window = new ReplyWindow({ limit: 10_000, settleMs: 30 });
    const old = Array.from({ length: 3_000 }, () => window.take(performance.now()));
    for (let i = 0; i < old.length; i += 2) window.settle(old[i] as number);
    expect(window.size).to.equal(1_500);
    await new Promise((resolve) => setTimeout(resolve, 40));
    const fresh = Array.from({ length: 5 }, () => window.take(performance.now()));
    expect(window.size).to.equal(5); // the 1,500 old ones aged out (and were compacted away)
    window.settle(fresh[4] as number);
    window.settle(old[1] as number); // aged out already: nothing to take back
    expect(window.size).to.equal(4);
    window.close();
  });

  it("close() lets a waiting fan-out go on and stops its timer", async () => {
    const window = new ReplyWindow({ limit: 1, settleMs: 60_000 });
    window.take(performance.now());
    const wait = window.ready();
    window.close();
    await wait; // resolves at once; mocha would hang on a 60 s timer left behind
    expect(window.ready()).to.equal(undefined);
  });
});
