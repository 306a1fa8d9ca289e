// Cluster mode end to end: real Masters (each with its own NATS connection) and real Slaves on
// 127.0.0.1, one nats-server for the suite. Faults (SIGKILL, NATS down or frozen) are in masters-faults.test.ts.
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { redactServer, resolveClusterOptions, splitCredentials } from "../../src/cluster/options.js";
import { Code } from "../../src/code.js";
import type { NetSyncError } from "../../src/errors.js";
import { silentLogger } from "../../src/logger.js";
import { Master } from "../../src/master.js";
import { type MasterOptions, resolveSlaveOptions } from "../../src/options.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, rawClient, recordEvents, sleep, startMaster, startSlave, statusOf, waitFor } from "../helpers.js";
import { clusterMaster, echoSlave, mastersConverged, placement, timings } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

describe("cluster mode: three masters, one fleet", function () {
  this.timeout(10_000);
  const server = new NatsServer();
  let m1: Master;
  let m2: Master;
  let m3: Master;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await server.start();
  });
  after(() => server.kill());

  beforeEach(async () => {
    const started = await Promise.all(["m1", "m2", "m3"].map((name) => clusterMaster(name, [server.url])));
    [m1, m2, m3] = started as [Master, Master, Master];
    await mastersConverged([m1, m2, m3], ["m1", "m2", "m3"]);
  });
  afterEach(cleanup);

  it("ListSlaves on every master lists the whole fleet, each slave with its master, and the masters", async () => {
    await echoSlave(m1, "w1", { region: "eu" });
    await echoSlave(m2, "w2", { region: "us" });
    await echoSlave(m3, "w3", { region: "eu" });
    for (const master of [m1, m2, m3]) {
      const admin = adminClient(master.address);
      const started = performance.now();
      const all = await admin.listSlaves();
      const ms = performance.now() - started;
      expect(placement(all.slaves)).to.deep.equal(["w1@m1", "w2@m2", "w3@m3"]);
      expect(all.masters[0]!.id, "the answering master first").to.equal(master.id);
      expect(all.masters.map((m) => `${m.id}=${m.address}/${m.slavesHeld}`).sort()).to.deep.equal([
        `m1=${m1.address}/1`,
        `m2=${m2.address}/1`,
        `m3=${m3.address}/1`,
      ]);
      expect(all.unansweredMasters).to.deep.equal([]);
      const eu = await admin.listSlaves({ selector: "region=eu" });
      expect(placement(eu.slaves)).to.deep.equal(["w1@m1", "w3@m3"]);
      console.log(`      ListSlaves from ${master.id}: ${ms.toFixed(1)} ms (3 masters, 3 slaves)`);
    }
    const listed = await adminClient(m2.address).listMasters();
    expect(listed.clusterConnected).to.equal(true);
    expect(listed.masters[0]!.id).to.equal("m2");
    expect(listed.masters.map((m) => m.id).sort()).to.deep.equal(["m1", "m2", "m3"]);
    expect(listed.masters.every((m) => m.lastHeard !== undefined)).to.equal(true);
    // The library view agrees.
    const view = await m3.fleet({ selector: "region=us" });
    expect(view).to.deep.include({ unanswered: [], clusterAvailable: true });
    expect(placement(view.slaves)).to.deep.equal(["w2@m2"]);
    expect(view.slaves[0]!.connectedAt).to.be.instanceOf(Date);
  });

  it("Send with and without wait_reply, and master.request(), reach a slave on another master; unknown ids are NOT_FOUND at once", async () => {
    await echoSlave(m1, "near");
    await echoSlave(m2, "far");
    const admin = adminClient(m1.address);
    const waited = await admin.send("far", "hello", { timeout: 1_000 });
    expect(waited.reply?.result).to.deep.equal({ case: "data", value: "echo:hello" });
    expect(waited.masterId).to.equal("m2");
    const fired = await admin.send("far", "fire");
    expect(fired).to.deep.include({ written: true, masterId: "m2" });
    expect(await m3.request("far", "from m3", { timeout: 1_000 })).to.equal("echo:from m3");
    expect((await m3.routeRequest("near", "x")).masterId).to.equal("m1");

    let started = performance.now();
    const ghost = (await admin.send("ghost", "x", { timeout: 1_000 }).catch((e: unknown) => e)) as NetSyncError;
    const ghostMs = performance.now() - started;
    expect(ghost.code).to.equal(Code.NOT_FOUND);
    expect(ghost.message).to.include("ghost");
    started = performance.now();
    const lib = (await m3.request("ghost", "x").catch((e: unknown) => e)) as NetSyncError;
    expect(lib.code).to.equal(Code.NOT_FOUND);
    const libMs = performance.now() - started;
    console.log(`      NOT_FOUND for an unknown id: ${ghostMs.toFixed(1)} ms through AdminService, ${libMs.toFixed(1)} ms in the library`);
    expect(libMs).to.be.below(50);

    // Cross-master request against a local one, same slaves, same process.
    await timings(50, () => m1.request("far", "warm"));
    const local = await timings(300, () => m1.request("near", "x"));
    const remote = await timings(300, () => m1.request("far", "x"));
    console.log(
      `      request p50/p99: local ${local.p50.toFixed(2)}/${local.p99.toFixed(2)} ms, ` +
        `cross-master ${remote.p50.toFixed(2)}/${remote.p99.toFixed(2)} ms`,
    );
    expect(remote.p50).to.be.below(local.p50 + 5);
  });

  it("Broadcast reaches every slave of the cluster and counts them by master; a selector narrows it", async () => {
    const slaves = [
      await echoSlave(m1, "b1", { region: "eu" }),
      await echoSlave(m2, "b2", { region: "us" }),
      await echoSlave(m3, "b3", { region: "eu" }),
      await echoSlave(m3, "b4", { region: "us" }),
    ];
    const got = new Map<string, string[]>();
    for (const slave of slaves) slave.on("command", (c) => got.set(slave.id!, [...(got.get(slave.id!) ?? []), c.data]));
    const admin = adminClient(m2.address);
    const all = await admin.broadcastDetails("to all");
    expect(all.written).to.equal(4);
    expect(all.writtenByMaster).to.deep.equal({ m1: 1, m2: 1, m3: 2 });
    expect(all.unansweredMasters).to.deep.equal([]);
    const eu = await m1.broadcastFleet("to eu", { selector: "region=eu" });
    expect(eu).to.deep.equal({ written: 2, byMaster: { m1: 1, m2: 0, m3: 1 }, unanswered: [], clusterAvailable: true });
    await waitFor(() => [...got.values()].flat().length === 6, 2_000, "every command delivered");
    expect(Object.fromEntries(got)).to.deep.equal({
      b1: ["to all", "to eu"],
      b2: ["to all"],
      b3: ["to all", "to eu"],
      b4: ["to all"],
    });
    const bad = (await admin.broadcastDetails("x", { selector: "region in eu" }).catch((e: unknown) => e)) as NetSyncError;
    expect(bad.code).to.equal(Code.INVALID_ARGUMENT);
  });

  // gRPC metadata carries printable ASCII only, so a Slave cannot send a non-ASCII id (a client
  // certificate's name can be one); the core's own tests route non-ASCII ids (test/cluster/cluster.test.ts).
  it("ids with '.', '*', '>', '$', spaces route and list as themselves", async () => {
    const ids = ["a.b.c", "*", ">", "a.>", "with space", "$SYS.x", "a..b", "x".repeat(128)];
    for (const id of ids) await echoSlave(m1, id);
    const view = await adminClient(m3.address).listSlaves();
    expect(view.slaves.map((s) => s.id).sort()).to.deep.equal([...ids].sort());
    for (const id of ids) {
      expect(await m3.request(id, id, { timeout: 1_000 }), id).to.equal(`echo:${id}`);
      expect((await adminClient(m2.address).send(id, "x")).masterId, id).to.equal("m1");
    }
    // A wildcard id is not a wildcard: "a.>" does not reach "a.b.c".
    const err = (await m2.request("a.*", "x").catch((e: unknown) => e)) as NetSyncError;
    expect(err.code).to.equal(Code.NOT_FOUND);
  });

  it("the same id on two masters: the newer wins within 1 s, the older ends UNAVAILABLE naming the master, no flapping", async () => {
    const events1 = recordEvents(m1);
    const old = rawClient(m1.address, { id: "dup", autoPong: true });
    await old.headers;
    await m1.clusterFlush();
    const connectedAt = performance.now();
    const newer = await startSlave(m2.address, { id: "dup", onCommand: () => "new" });
    const status = await statusOf(old, 2_000);
    const replacedMs = performance.now() - connectedAt;
    console.log(`      older connection replaced ${replacedMs.toFixed(0)} ms after the newer one connected`);
    expect(replacedMs).to.be.below(1_000);
    expect(status.code).to.equal(Code.UNAVAILABLE);
    expect(status.details).to.equal("replaced by a newer connection on master m2");
    expect(events1.disconnected.map((e) => `${e.slave.id}:${e.reason}`)).to.deep.equal(["dup:replaced"]);
    expect(m1.recentlyClosed()[0]).to.deep.include({ reason: "replaced", details: "replaced by a newer connection on master m2" });
    await m2.clusterFlush();
    // Stable: the newer stays, nobody kicks anybody.
    let disconnects = 0;
    newer.on("disconnected", () => disconnects++);
    await sleep(600);
    expect(disconnects).to.equal(0);
    expect(m1.has("dup")).to.equal(false);
    expect(m2.has("dup")).to.equal(true);
    for (const master of [m1, m2, m3]) expect(placement((await master.fleet()).slaves)).to.deep.equal(["dup@m2"]);
    expect(await m3.request("dup", "x")).to.equal("new");
  });

  it("two live slaves fighting over one id on two masters are damped, not kicked forever", async () => {
    const fast = { backoff: { initial: 10, max: 20 }, masterTimeout: 2_000 };
    const a = await startSlave(m1.address, { id: "fight", ...fast });
    await m1.clusterFlush();
    const b = await startSlave(m2.address, { id: "fight", ...fast });
    let kicks = 0;
    for (const s of [a, b]) s.on("disconnected", () => kicks++);
    await sleep(2_000);
    const more = kicks;
    await sleep(1_000);
    console.log(`      ${kicks} replacements in 3 s (claimLimit 3 per 10 s, then a 30 s cool-down)`);
    expect(more, "kicks in the first 2 s").to.be.at.most(6);
    expect(kicks - more, "kicks in the last second").to.equal(0);
  });

  it("metrics: cluster connected, masters seen, routed requests by outcome and their latency", async () => {
    const metered = await clusterMaster("m4", [server.url], {}, { metricsPort: 0 });
    await mastersConverged([m1, metered], ["m1", "m2", "m3", "m4"]);
    await echoSlave(m1, "metered");
    await metered.request("metered", "x");
    await metered.request("nobody", "x").catch(() => undefined);
    const text = await (await fetch(`http://127.0.0.1:${metered.metricsPort}/metrics`)).text();
    expect(text).to.match(/^netsync_cluster_connected 1$/m);
    expect(text).to.match(/^netsync_cluster_masters 4$/m);
    expect(text).to.match(/^netsync_cluster_routed_total\{outcome="ok"\} 1$/m);
    expect(text).to.match(/^netsync_cluster_routed_total\{outcome="not_found"\} 1$/m);
    expect(text).to.match(/^netsync_cluster_routed_latency_seconds_count\{outcome="ok"\} 1$/m);
    expect(text).to.match(/^netsync_cluster_rerouted_total 0$/m);
    const plain = await startMaster({ metricsPort: 0 });
    const plainText = await (await fetch(`http://127.0.0.1:${plain.metricsPort}/metrics`)).text();
    expect(plainText).not.to.include("netsync_cluster_");
  });
});

describe("cluster mode off", () => {
  afterEach(cleanup);

  it("a master without a cluster option loads no NATS code: no static import path from the library reaches it", () => {
    // Walks the static imports of src/ from index.ts; the cluster module is reached only by master.ts's dynamic import().
    const seen = new Set<string>();
    const reached: string[] = [];
    const visit = (url: URL) => {
      if (seen.has(url.href)) return;
      seen.add(url.href);
      const text = readFileSync(url, "utf8");
      for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+"([^"]+)";/gms)) {
        const [, typeOnly, specifier] = m;
        if (typeOnly || !specifier) continue;
        if (!specifier.startsWith(".")) {
          reached.push(specifier);
          continue;
        }
        visit(new URL(specifier.replace(/\.js$/, ".ts"), url));
      }
    };
    visit(new URL("../../src/index.ts", import.meta.url));
    expect(seen.size).to.be.greaterThan(15);
    expect(reached.filter((s) => s.startsWith("@nats-io"))).to.deep.equal([]);
    expect([...seen].some((f) => f.endsWith("/cluster/cluster-node.ts"))).to.equal(false);
  });

  it("answers the cluster-wide calls from the local registry", async () => {
    const master = await startMaster({ name: "solo" });
    await startSlave(master.address, { id: "s", onCommand: (c) => `echo:${c.data}` });
    expect(master.clusterState).to.equal("off");
    expect(placement((await master.fleet()).slaves)).to.deep.equal(["s@solo"]);
    expect(await master.broadcastFleet("x")).to.deep.equal({ written: 1, byMaster: { solo: 1 }, unanswered: [], clusterAvailable: false });
    expect(await master.routeSend("s", "x")).to.deep.equal({ written: true, masterId: "solo" });
    const err = (await master.routeSend("t", "x").catch((e: unknown) => e)) as NetSyncError;
    expect(err.code).to.equal(Code.NOT_FOUND);
    const listed = await adminClient(master.address).listMasters();
    expect(listed.clusterConnected).to.equal(false);
    expect(listed.masters.map((m) => m.id)).to.deep.equal(["solo"]);
  });
});

describe("cluster options of a master", () => {
  it("are checked by the constructor; URL credentials are taken out of the URLs; a slave's start index is checked", () => {
    const invalid = (options: MasterOptions) => {
      try {
        new Master({ logger: silentLogger(), ...options });
      } catch (e) {
        return (e as NetSyncError).code === Code.INVALID_ARGUMENT ? (e as NetSyncError).message : `code ${(e as NetSyncError).code}`;
      }
      return "accepted";
    };
    expect(invalid({ cluster: { servers: [] } })).to.match(/no NATS server/);
    expect(invalid({ cluster: { servers: ["nats://h:1"], name: "a.b" } })).to.match(/cluster name/);
    expect(invalid({ cluster: { servers: ["nats://t@h:1"], token: "t" } })).to.match(/not both/);
    expect(invalid({ cluster: { servers: ["nats://a:b@h:1", "nats://h:2"] } })).to.match(/same credentials/);
    expect(invalid({ cluster: { servers: ["nats://h:1"], membershipInterval: 0 } })).to.match(/membershipInterval/);
    expect(invalid({ cluster: { servers: ["nats://h:1"], name: "fleet-2" } })).to.equal("accepted");
    const fail = (e: string) => new Error(e);
    expect(splitCredentials(["nats://al%40ce:p%3Ass@h:1", "tls://al%40ce:p%3Ass@h:2"], fail)).to.deep.equal({
      servers: ["nats://h:1", "tls://h:2"],
      user: "al@ce",
      pass: "p:ss",
    });
    expect(splitCredentials(["nats://tok@h:1", "h:2"].slice(0, 1), fail)).to.deep.equal({ servers: ["nats://h:1"], token: "tok" });
    expect(splitCredentials(["h:1", "nats://h:2"], fail)).to.deep.equal({ servers: ["h:1", "nats://h:2"] });
    expect(resolveClusterOptions({ servers: ["nats://u:p@h:1"] })).to.deep.include({ servers: ["nats://h:1"], user: "u", pass: "p" });
    expect(redactServer("nats://u:p@h:1")).to.equal("nats://***@h:1");
    expect(() => resolveSlaveOptions({ master: ["a:1", "b:2"], startAt: 2 })).to.throw(/startAt/);
    const starts = new Set(Array.from({ length: 64 }, () => resolveSlaveOptions({ master: ["a:1", "b:2", "c:3"] }).startAt));
    expect([...starts].sort()).to.deep.equal([0, 1, 2]);
  });
});
