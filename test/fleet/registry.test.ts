/**
 * Registry (src/fleet/registry.ts): a fast-check model test of add/remove/history,
 * and examples pinning the documented behaviour.
 */
import { expect } from "chai";
import fc from "fast-check";
import { Registry } from "../../src/fleet/registry.js";
import { SlaveConnection, type SyncCall } from "../../src/fleet/slave-connection.js";
import type { ClosedSlaveInfo } from "../../src/model.js";

describe("Registry", () => {
  it("Registry: add/remove/history behave like a model (fast-check commands)", () => {
    const fakeCall = {} as SyncCall;
    type Model = { byId: Map<string, SlaveConnection>; history: ClosedSlaveInfo[]; historySize: number };
    type Real = { registry: Registry; made: SlaveConnection[] };
    const ids = ["a", "b", "c", "d"];
    const check = (m: Model, r: Real) => {
      expect(r.registry.size).to.equal(m.byId.size);
      for (const id of ids) expect(r.registry.get(id)).to.equal(m.byId.get(id));
      expect(Array.from(r.registry.values())).to.deep.equal(Array.from(m.byId.values()));
      expect(r.registry.snapshot().map((s) => s.id)).to.deep.equal(Array.from(m.byId.keys()));
      expect(Array.from(r.registry.inOrder(), (c) => c.id)).to.deep.equal(Array.from(m.byId.keys()).sort());
      expect(Array.from(r.registry.inOrder("b"), (c) => c.id)).to.deep.equal(
        Array.from(m.byId.keys())
          .filter((id) => id > "b")
          .sort(),
      );
      const newestFirst = m.history.slice(-Math.max(0, m.historySize)).reverse();
      expect(r.registry.recentlyClosed()).to.deep.equal(m.historySize > 0 ? newestFirst : []);
    };
    class Add implements fc.Command<Model, Real> {
      constructor(readonly id: string) {}
      check = () => true;
      run(m: Model, r: Real) {
        const connection = new SlaveConnection(this.id, "peer", fakeCall, r.made.length, 1024);
        r.made.push(connection);
        const previous = r.registry.add(connection);
        expect(previous).to.equal(m.byId.get(this.id));
        m.byId.set(this.id, connection);
        check(m, r);
      }
      toString = () => `add(${this.id})`;
    }
    class Remove implements fc.Command<Model, Real> {
      constructor(readonly pick: number) {}
      check = () => true;
      run(m: Model, r: Real) {
        if (r.made.length === 0) return;
        const connection = r.made[this.pick % r.made.length]!;
        const current = m.byId.get(connection.id) === connection;
        expect(r.registry.remove(connection)).to.equal(current);
        if (current) m.byId.delete(connection.id);
        check(m, r);
      }
      toString = () => `remove(#${this.pick})`;
    }
    class Close implements fc.Command<Model, Real> {
      constructor(readonly pick: number) {}
      check = () => true;
      run(m: Model, r: Real) {
        if (r.made.length === 0) return;
        const connection = r.made[this.pick % r.made.length]!;
        const closed: ClosedSlaveInfo = {
          slave: connection.info(),
          closedAt: new Date(0),
          reason: "disconnected",
          details: `#${m.history.length}`,
        };
        r.registry.recordClosed(closed);
        if (m.historySize > 0) m.history.push(closed);
        check(m, r);
      }
      toString = () => `recordClosed(#${this.pick})`;
    }
    const commands = [
      fc.constantFrom(...ids).map((id) => new Add(id)),
      fc.nat().map((pick) => new Remove(pick)),
      fc.nat().map((pick) => new Close(pick)),
    ];
    fc.assert(
      fc.property(fc.integer({ min: -1, max: 6 }), fc.commands(commands, { size: "+1" }), (historySize, cmds) => {
        const setup = () => ({
          model: { byId: new Map(), history: [], historySize } as Model,
          real: { registry: new Registry(historySize), made: [] } as Real,
        });
        fc.modelRun(setup, cmds);
      }),
      { numRuns: 500 },
    );
  });

  describe("examples", () => {
    const fakeCall = {} as SyncCall;
    let made = 0;
    /** A real SlaveConnection over a stub call, as the master would register it. */
    const connection = (id: string) => new SlaveConnection(id, "peer", fakeCall, made++, 1024);
    const closedInfo = (c: SlaveConnection, details: string): ClosedSlaveInfo => ({
      slave: c.info(),
      closedAt: new Date(0),
      reason: "disconnected",
      details,
    });
    const details = (r: Registry) => r.recentlyClosed().map((c) => c.details);

    it("add() returns undefined for a new id, the replaced connection for the same id, and undefined when the same object is re-added", () => {
      const r = new Registry();
      const first = connection("a");
      const second = connection("a");
      expect(r.add(first)).to.equal(undefined);
      expect(r.add(connection("b"))).to.equal(undefined);
      expect(r.add(second)).to.equal(first);
      expect(r.get("a")).to.equal(second);
      expect(r.add(second), "re-adding the registered object").to.equal(undefined);
      expect(r.get("a")).to.equal(second);
      expect(r.size).to.equal(2);
    });

    it("remove() of a stale (replaced) connection returns false and keeps the newer one", () => {
      const r = new Registry();
      const stale = connection("a");
      const current = connection("a");
      r.add(stale);
      r.add(current);
      expect(r.remove(stale)).to.equal(false);
      expect(r.get("a")).to.equal(current);
      expect(r.size).to.equal(1);
      expect(r.remove(current)).to.equal(true);
      expect(r.get("a")).to.equal(undefined);
      expect(r.size).to.equal(0);
      expect(r.remove(current), "removing twice").to.equal(false);
    });

    it("size and get() follow adds and removes; snapshot() describes the registered connections", () => {
      const r = new Registry();
      expect(r.size).to.equal(0);
      expect(r.get("a")).to.equal(undefined);
      const a = connection("a");
      const b = connection("b");
      r.add(a);
      r.add(b);
      expect(r.size).to.equal(2);
      expect(r.get("a")).to.equal(a);
      expect(r.get("b")).to.equal(b);
      expect(r.get("c")).to.equal(undefined);
      expect(r.snapshot().map((s) => s.id)).to.deep.equal(["a", "b"]);
      r.remove(a);
      expect(r.size).to.equal(1);
      expect(r.get("a")).to.equal(undefined);
      expect(Array.from(r.values())).to.deep.equal([b]);
    });

    it("recentlyClosed() is newest first and keeps at most historySize entries", () => {
      const r = new Registry(3);
      const c = connection("a");
      expect(r.recentlyClosed()).to.deep.equal([]);
      r.recordClosed(closedInfo(c, "1"));
      r.recordClosed(closedInfo(c, "2"));
      expect(details(r)).to.deep.equal(["2", "1"]);
      r.recordClosed(closedInfo(c, "3"));
      expect(details(r)).to.deep.equal(["3", "2", "1"]);
      r.recordClosed(closedInfo(c, "4"));
      r.recordClosed(closedInfo(c, "5"));
      expect(details(r)).to.deep.equal(["5", "4", "3"]);
      for (let i = 6; i <= 10; i++) r.recordClosed(closedInfo(c, String(i)));
      expect(details(r)).to.deep.equal(["10", "9", "8"]);
    });

    it("the default history keeps 1,000 closed slaves", () => {
      const r = new Registry();
      const c = connection("a");
      for (let i = 1; i <= 1_005; i++) r.recordClosed(closedInfo(c, String(i)));
      const kept = details(r);
      expect(kept).to.have.length(1_000);
      expect(kept[0]).to.equal("1005");
      expect(kept.at(-1)).to.equal("6");
    });

    it("historySize 0 keeps nothing", () => {
      const r = new Registry(0);
      const c = connection("a");
      r.recordClosed(closedInfo(c, "1"));
      r.recordClosed(closedInfo(c, "2"));
      expect(r.recentlyClosed()).to.deep.equal([]);
    });
  });
});
