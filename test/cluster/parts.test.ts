import { expect } from "chai";
import { ClaimDamper } from "../../src/cluster/claim-damper.js";
import { compareEpochs, EpochClock } from "../../src/cluster/epoch.js";
import { decodeMessage, encodeMessage, splitSlaves } from "../../src/cluster/messages.js";
import { resolveClusterOptions } from "../../src/cluster/options.js";
import { RouteTable } from "../../src/cluster/route-table.js";
import { decodeToken, encodeToken, Subjects } from "../../src/cluster/subjects.js";
import { Code } from "../../src/code.js";

describe("cluster parts (no NATS)", () => {
  it("subjects: ids become one token of [A-Za-z0-9_-], reversibly, within NATS limits", () => {
    const subjects = new Subjects("fleet-a");
    for (const id of ["a.b", "*", ">", "with space", "ünï-工-🚀", "🚀".repeat(64), "x".repeat(128)]) {
      const token = encodeToken(id);
      expect(token).to.match(/^[A-Za-z0-9_-]+$/);
      expect(decodeToken(token)).to.equal(id);
      expect(subjects.slave(id).length).to.be.below(600);
    }
    expect(subjects.list("m.1")).to.equal(`netsync.fleet-a.master.${encodeToken("m.1")}.list`);
  });

  it("epochs: totally ordered (time, master, seq), and a master's clock never goes back", () => {
    let now = 1000;
    const clock = new EpochClock("m1", () => now);
    const a = clock.next();
    now = 900;
    const b = clock.next();
    expect(compareEpochs(a, b)).to.be.below(0);
    expect(compareEpochs({ at: 5, master: "m1", seq: 9 }, { at: 5, master: "m2", seq: 1 })).to.be.below(0);
    expect(compareEpochs({ at: 6, master: "a", seq: 1 }, { at: 5, master: "z", seq: 9 })).to.be.above(0);
  });

  it("route table: compare-and-delete keeps a newer route, ignores an older add", () => {
    const table = new RouteTable<string>();
    const old = { at: 1, master: "m1", seq: 1 };
    const newer = { at: 2, master: "m1", seq: 2 };
    table.add("x", old);
    table.add("x", newer);
    expect(table.remove("x", old)).to.equal(undefined);
    expect(table.get("x")?.epoch).to.deep.equal(newer);
    expect(table.add("x", old).stale).to.equal(true);
    expect(table.remove("x", newer)?.epoch).to.deep.equal(newer);
    expect(table.size).to.equal(0);
  });

  it("claim damper: limit claims per window act, the next starts a cool-down, re-announcements do not count", () => {
    let now = 0;
    const ended: string[] = [];
    const damper = new ClaimDamper(
      3,
      10_000,
      30_000,
      (id) => ended.push(id),
      () => now,
    );
    const e = (seq: number) => ({ at: seq, master: "m", seq });
    expect([damper.admit("x", e(1)), damper.admit("x", e(1)), damper.admit("x", e(2)), damper.admit("x", e(3))]).to.deep.equal([
      true,
      true,
      true,
      true,
    ]);
    expect(damper.admit("x", e(4))).to.equal(false);
    expect(damper.damped("x")).to.equal(true);
    expect(damper.admit("y", e(1))).to.equal(true);
    now = 20_000;
    damper.sweep();
    damper.clear();
    expect(damper.damped("x")).to.equal(false);
    // Outside the window the count starts again.
    const fresh = new ClaimDamper(
      2,
      1_000,
      5_000,
      () => undefined,
      () => now,
    );
    expect(fresh.admit("z", e(1))).to.equal(true);
    now += 2_000;
    expect([fresh.admit("z", e(2)), fresh.admit("z", e(3))]).to.deep.equal([true, true]);
    fresh.clear();
  });

  it("messages: another cluster's or malformed messages are dropped", () => {
    const beat = { kind: "beat", cluster: "a", id: "m1", address: "h:1", slavesHeld: 0, interval: 100, instance: "i" } as const;
    expect(decodeMessage(encodeMessage(beat), "a")).to.deep.equal(beat);
    expect(decodeMessage(encodeMessage(beat), "b")).to.equal(undefined);
    expect(decodeMessage("not json", "a")).to.equal(undefined);
    expect(decodeMessage(JSON.stringify({ ...beat, slavesHeld: "x" }), "a")).to.equal(undefined);
    expect(
      decodeMessage(JSON.stringify({ kind: "claim", cluster: "a", master: "m", claims: [{ slaveId: "x", epoch: { at: 1 } }] }), "a"),
    ).to.equal(undefined);
    expect(decodeMessage(JSON.stringify({ kind: "answer", cluster: "a", masterId: "m", error: { code: 99, message: "" } }), "a")).to.equal(
      undefined,
    );
    const released = { kind: "answer", cluster: "a", masterId: "m", error: { code: 5, message: "gone" }, released: true } as const;
    expect(decodeMessage(encodeMessage(released), "a")).to.deep.equal(released);
    expect(decodeMessage(JSON.stringify({ ...released, released: "yes" }), "a")).to.equal(undefined);
  });

  it("splitSlaves keeps parts under the byte budget", () => {
    const slaves = Array.from({ length: 100 }, (_, i) => ({
      id: `s${i}`,
      peer: "p",
      connectedAt: 0,
      lastSeen: 0,
      pingsSent: 0,
      pongsReceived: 0,
      commandsSent: 0,
      labels: { pad: "x".repeat(100) },
      masterId: "m",
    }));
    const parts = splitSlaves(slaves, 2_000);
    expect(parts.flat()).to.deep.equal(slaves);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).to.be.below(2_100);
    expect(splitSlaves([], 100)).to.deep.equal([[]]);
  });

  it("options: defaults declared once, bad values rejected with INVALID_ARGUMENT", () => {
    const o = resolveClusterOptions({ servers: ["nats://127.0.0.1:4222"] });
    expect(o).to.include({ clusterName: "netsync", membershipInterval: 1_000, gatherTimeout: 1_000, claimLimit: 3, claimWindow: 10_000 });
    for (const bad of [
      { servers: [] },
      { servers: ["x"], clusterName: "a.b" },
      { servers: ["x"], membershipInterval: 0 },
      { servers: ["x"], token: "t", credsFile: "f" },
    ]) {
      expect(() => resolveClusterOptions(bad))
        .to.throw()
        .with.property("code", Code.INVALID_ARGUMENT);
    }
  });
});
