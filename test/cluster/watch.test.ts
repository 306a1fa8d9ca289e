// Watch in cluster mode: real masters over one nats-server; every master's Watch sees the whole fleet and the membership.
import { expect } from "chai";
import { WatchEventKind, type WatchResponse } from "../../gen/netsync/v1/admin_pb.js";
import type { ClusterNode } from "../../src/cluster/cluster-node.js";
import type { Master } from "../../src/master.js";
import type { WatchEvent } from "../../src/model.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, startSlave, track, waitFor } from "../helpers.js";
import { clusterMaster, echoSlave, mastersConverged } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

describe("cluster mode: Watch streams the whole fleet", function () {
  this.timeout(15_000);
  const server = new NatsServer();
  let m1: Master;
  let m2: Master;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    await server.start();
  });
  after(() => server.kill());

  beforeEach(async () => {
    [m1, m2] = (await Promise.all(["m1", "m2"].map((name) => clusterMaster(name, [server.url])))) as [Master, Master];
    await mastersConverged([m1, m2], ["m1", "m2"]);
  });
  afterEach(cleanup);

  it("a Watch on m1 gets m2's slaves in its snapshot and their live events, and masters joining and leaving", async () => {
    await echoSlave(m2, "early", { region: "eu" });
    const events: WatchResponse[] = [];
    const abort = new AbortController();
    track(() => abort.abort());
    void (async () => {
      for await (const event of adminClient(m1.address).watch({ snapshot: true, signal: abort.signal })) events.push(event);
    })().catch(() => {});
    const has = (kind: WatchEventKind, id: string) => events.some((e) => e.kind === kind && (e.slave?.id ?? e.masterId) === id);
    await waitFor(() => has(WatchEventKind.SYNCED, "m1"), 3_000, "SYNCED");
    expect(has(WatchEventKind.SNAPSHOT, "early")).to.equal(true);
    const late = await startSlave(m2.address, { id: "late", labels: { region: "us" } });
    await waitFor(() => has(WatchEventKind.CONNECTED, "late"), 3_000, "late's connect, from m2");
    const connected = events.find((e) => e.kind === WatchEventKind.CONNECTED)!;
    expect(connected.masterId).to.equal("m2");
    expect(connected.slave?.masterId).to.equal("m2");
    expect(connected.slave?.labels).to.deep.equal({ region: "us" });
    await late.close();
    await waitFor(() => has(WatchEventKind.DISCONNECTED, "late"), 3_000, "late's disconnect, from m2");

    const m3 = await clusterMaster("m3", [server.url]);
    await waitFor(() => has(WatchEventKind.MASTER_JOINED, "m3"), 3_000, "m3 joined");
    await m3.close();
    await waitFor(() => has(WatchEventKind.MASTER_LEFT, "m3"), 3_000, "m3 left");
    expect(events.find((e) => e.kind === WatchEventKind.MASTER_LEFT)!.details).to.equal("left");
  });

  it("a master nobody watches is not sent other masters' slave events; from its first watcher on, it is", async () => {
    const node = (m1 as unknown as { cluster: { node: ClusterNode } }).cluster.node;
    const heard: string[] = [];
    node.on("slave-events", (events) => heard.push(...events.map((e) => `${e.kind}:${e.slave.id}`)));
    // m2 publishes in order: had m1 been subscribed before its watch, "unwatched" would arrive ahead of "watched".
    await echoSlave(m2, "unwatched");
    const stop = m1.watch(() => undefined);
    await m1.clusterFlush();
    await echoSlave(m2, "watched");
    await waitFor(() => heard.length > 0, 3_000, "m2's event on m1");
    expect(heard).to.deep.equal(["connected:watched"]);
    stop();
    await m1.clusterFlush();
    await echoSlave(m2, "after");
    const again = m1.watch(() => undefined);
    track(again);
    await m1.clusterFlush();
    await echoSlave(m2, "marker");
    await waitFor(() => heard.length > 1, 3_000, "the marker's event on m1");
    expect(heard).to.deep.equal(["connected:watched", "connected:marker"]);
  });

  it("Master.watch() follows local and remote events; a listener that throws is logged, not fatal", async () => {
    const seen: WatchEvent[] = [];
    const stop = m1.watch((event) => seen.push(event));
    const stopThrowing = m1.watch(() => {
      throw new Error("listener bug");
    });
    track(() => {
      stop();
      stopThrowing();
    });
    await echoSlave(m1, "here");
    await echoSlave(m2, "there");
    await waitFor(() => seen.filter((e) => e.kind === "connected").length === 2, 3_000, "both connects");
    expect(seen.map((e) => `${e.slave?.id}@${e.masterId}`).sort()).to.deep.equal(["here@m1", "there@m2"]);
    expect(seen.find((e) => e.masterId === "m2")!.slave!.connectedAt).to.be.instanceOf(Date);
  });
});
