import { format } from "node:util";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import type { ClusterNode } from "../../src/cluster/cluster-node.js";
import { Code } from "../../src/code.js";
import type { NetSyncError } from "../../src/errors.js";
import { waitFor } from "../support/wait.js";
import type { FakeFleet } from "./fake-fleet.js";
import { converged, Nodes } from "./helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

type Member = { node: ClusterNode; fleet: FakeFleet };

/** Resolves once every node's fleet view lists exactly `count` slaves with no master unanswered; returns the time taken. */
async function viewsExact(members: Member[], count: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const views = await Promise.all(members.map((m) => m.node.listSlaves(undefined, 300)));
    if (views.every((v) => v.clusterAvailable && v.unanswered.length === 0 && v.slaves.length === count))
      return performance.now() - started;
    if (performance.now() - started > timeoutMs)
      throw new Error(`views not exact after ${timeoutMs} ms: ${JSON.stringify(views.map((v) => [v.slaves.length, v.unanswered]))}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("cluster faults: NATS killed, frozen, late, or refusing", function () {
  this.timeout(15_000);
  let server: NatsServer;
  const nodes = new Nodes();
  let m1: Member;
  let m2: Member;
  let m3: Member;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
  });
  afterEach(async () => {
    await nodes.closeAll();
    await server.kill();
  });

  async function threeMasters(): Promise<void> {
    server = new NatsServer();
    await server.start();
    m1 = nodes.add([server.url], "m1");
    m2 = nodes.add([server.url], "m2");
    m3 = nodes.add([server.url], "m3");
    await converged([m1.node, m2.node, m3.node], ["m1", "m2", "m3"]);
    m1.fleet.connect("s1");
    m2.fleet.connect("s2");
    m3.fleet.connect("s3");
    await Promise.all([m1, m2, m3].map((m) => m.node.flush()));
  }

  it("NATS SIGKILLed: local answers at once with the others unanswered; restarted on the same port: views converge within 5 s", async () => {
    await threeMasters();
    const down = Promise.all([m1, m2, m3].map((m) => new Promise((resolve) => m.node.once("disconnected", resolve))));
    await server.kill("SIGKILL");
    await down;
    // Longer than expiry: the others are still named (unanswered), not forgotten.
    await new Promise((resolve) => setTimeout(resolve, 400));
    let started = performance.now();
    const view = await m1.node.listSlaves(undefined, 2_000);
    const listMs = performance.now() - started;
    expect(view).to.deep.include({ clusterAvailable: false, unanswered: ["m2", "m3"] });
    expect(view.slaves.map((s) => s.id)).to.deep.equal(["s1"]);
    // "At once": a twentieth of the 2 s these calls were given, with room for a loaded machine's GC or scheduling.
    expect(listMs).to.be.below(100);
    started = performance.now();
    const err = (await m1.node.request("s2", "x", 2_000).catch((e: unknown) => e)) as NetSyncError;
    expect(err.code).to.equal(Code.UNAVAILABLE);
    expect(performance.now() - started).to.be.below(100);
    const broadcast = await m2.node.broadcast("b");
    expect(broadcast).to.deep.equal({ written: 1, byMaster: { m2: 1 }, unanswered: ["m1", "m3"], clusterAvailable: false });
    // Local serving is untouched.
    expect((await m1.node.request("s1", "x", 500)).reply.value).to.equal("m1:s1:x");
    // A slave that moved during the outage is re-announced after it.
    m1.fleet.connect("s4");

    const restartedAt = performance.now();
    await server.start();
    const convergeMs = await viewsExact([m1, m2, m3], 4, 5_000);
    const total = performance.now() - restartedAt;
    console.log(`      converged ${total.toFixed(0)} ms after the restart (server start ${(total - convergeMs).toFixed(0)} ms)`);
    expect(total).to.be.below(5_000);
    expect((await m3.node.request("s4", "x", 1_000)).masterId).to.equal("m1");
    expect(m1.node.stats().disconnects).to.equal(1);
  });

  it("NATS frozen (SIGSTOP): calls end at their timeout, the client notices within seconds, SIGCONT recovers", async () => {
    await threeMasters();
    await server.freeze();
    const frozenAt = performance.now();
    const noticed = new Promise<number>((resolve) => m1.node.once("disconnected", () => resolve(performance.now() - frozenAt)));
    let started = performance.now();
    const err = (await m1.node.request("s2", "x", 300).catch((e: unknown) => e)) as NetSyncError;
    expect(err.code).to.equal(Code.DEADLINE_EXCEEDED);
    expect(performance.now() - started).to.be.within(290, 300 + 50 + 100);
    started = performance.now();
    const view = await m1.node.listSlaves(undefined, 300);
    const listMs = performance.now() - started;
    // Either it waited out its timeout, or the client had already noticed and answered at once: never longer.
    expect(listMs).to.be.below(400);
    if (view.clusterAvailable) expect(listMs).to.be.above(290);
    expect(view.unanswered).to.deep.equal(["m2", "m3"]);
    expect(view.slaves.map((s) => s.id)).to.deep.equal(["s1"]);
    // pingInterval 500 ms × maxPingOut 2: stale after 2-3 ping intervals.
    const noticeMs = await noticed;
    console.log(`      frozen server noticed after ${noticeMs.toFixed(0)} ms`);
    expect(noticeMs).to.be.below(2_000);
    started = performance.now();
    expect((await m1.node.listSlaves(undefined, 2_000)).clusterAvailable).to.equal(false);
    expect(performance.now() - started).to.be.below(100);
    const thawedAt = performance.now();
    server.thaw();
    await viewsExact([m1, m2, m3], 3, 5_000);
    console.log(`      converged ${(performance.now() - thawedAt).toFixed(0)} ms after SIGCONT`);
  });

  it("a master started before NATS is up serves locally, then connects when NATS comes", async () => {
    server = new NatsServer();
    await server.reservePort();
    const early = nodes.add([server.url], "early");
    early.fleet.connect("e1");
    await waitFor(() => early.node.state === "disconnected", 2_000, "the first attempt to fail");
    const view = await early.node.listSlaves();
    expect(view).to.deep.include({ clusterAvailable: false, unanswered: [] });
    expect(view.slaves.map((s) => s.id)).to.deep.equal(["e1"]);
    const connected = new Promise<void>((resolve) => early.node.once("connected", () => resolve()));
    const startedAt = performance.now();
    await server.start();
    await connected;
    console.log(`      connected ${(performance.now() - startedAt).toFixed(0)} ms after NATS started`);
    const late = nodes.add([server.url], "late");
    await converged([early.node, late.node], ["early", "late"]);
    expect((await late.node.request("e1", "x", 1_000)).masterId).to.equal("early");
  });

  it("wrong cluster credentials: a clear error without the secret, and the master reports itself alone and serves locally", async () => {
    server = new NatsServer({ token: "right-token-s3cret" });
    await server.start();
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
    const good = nodes.add([server.url], "good", { token: "right-token-s3cret" });
    const bad = nodes.add([server.url], "bad", { token: "wrong-token-s3cret", logger });
    const [reason, refused] = await new Promise<[string, boolean]>((resolve) => bad.node.once("disconnected", (r, f) => resolve([r, f])));
    expect(refused).to.equal(true);
    expect(reason).to.match(/authorization/i);
    await waitFor(() => good.node.connected, 3_000, "the good master to connect");
    bad.fleet.connect("b1");
    expect(bad.node.masters().map((m) => m.id)).to.deep.equal(["bad"]);
    const view = await bad.node.listSlaves();
    expect(view).to.deep.include({ clusterAvailable: false, unanswered: [] });
    expect(view.slaves.map((s) => s.id)).to.deep.equal(["b1"]);
    // One error line however many retries (authRetryInterval 300 ms), naming the problem, never the token.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const errors = lines.filter((l) => l.startsWith("error"));
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(/refused this master's cluster credentials/);
    expect(lines.join("\n")).not.to.include("s3cret");
    expect(good.node.masters().map((m) => m.id)).to.deep.equal(["good"]);
  });
});
