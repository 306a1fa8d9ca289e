// Cluster mode under faults, end to end: a CLI master SIGKILLed, NATS killed for 30 s, frozen,
// blackholed for one master, late or refusing the credentials. The 30 s outage outlasts nats.js's
// default reconnect budget (10 attempts, 2 s apart): it shows the client reconnects for good.
import { format } from "node:util";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import { TcpProxy } from "../../src/cli/tcp-proxy.js";
import { Code } from "../../src/code.js";
import type { NetSyncError } from "../../src/errors.js";
import type { Master } from "../../src/master.js";
import { makeTestPki } from "../certs.js";
import { killAllCli, runCli } from "../cli-process.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, createSlave, recordEvents, sleep, track, waitFor } from "../helpers.js";
import { freePort } from "../support/net.js";
import { clusterMaster, echoSlave, mastersConverged, placement } from "./masters-helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

/** Resolves once the fleet view of every master is exactly `want` ("id@master"), with nobody unanswered; returns the time taken. */
async function viewsExact(masters: Master[], want: string[], timeoutMs: number): Promise<number> {
  const started = performance.now();
  const sorted = [...want].sort();
  for (;;) {
    const views = await Promise.all(masters.map((m) => m.fleet({ timeout: 300 })));
    const ok = views.every((v) => v.clusterAvailable && v.unanswered.length === 0 && placement(v.slaves).join() === sorted.join());
    if (ok) return performance.now() - started;
    if (performance.now() - started > timeoutMs) {
      throw new Error(`views not exact after ${timeoutMs} ms: ${JSON.stringify(views.map((v) => [placement(v.slaves), v.unanswered]))}`);
    }
    await sleep(20);
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

describe("cluster mode under faults", function () {
  this.timeout(20_000);
  let server: NatsServer;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
  });
  beforeEach(() => {
    server = new NatsServer();
  });
  afterEach(async () => {
    killAllCli();
    await cleanup();
    await server.kill();
  });

  async function threeMasters(): Promise<[Master, Master, Master]> {
    await server.start();
    const masters = (await Promise.all(["m1", "m2", "m3"].map((n) => clusterMaster(n, [server.url])))) as [Master, Master, Master];
    await mastersConverged(masters, ["m1", "m2", "m3"]);
    for (const [i, m] of masters.entries()) await echoSlave(m, `s${i + 1}`);
    return masters;
  }

  it("SIGKILL of a CLI master: its slaves (given --master k,m1,m2) re-home to the survivors, every view exact, no ghosts", async () => {
    await server.start();
    const port = await freePort();
    const killed = runCli([
      "master",
      "--port",
      String(port),
      "--name",
      "k",
      "--cluster",
      server.url,
      "--heartbeat-interval",
      "100ms",
      "--heartbeat-timeout",
      "1s",
    ]);
    await killed.waitFor(/connected to NATS/, 10_000);
    const [m1, m2] = (await Promise.all(["m1", "m2"].map((n) => clusterMaster(n, [server.url])))) as [Master, Master];
    await mastersConverged([m1, m2], ["k", "m1", "m2"]);
    const kAddress = `127.0.0.1:${port}`;
    const ids = ["r1", "r2", "r3", "r4", "r5", "r6"];
    const events = [recordEvents(m1), recordEvents(m2)];
    for (const id of ids) {
      createSlave(kAddress, {
        id,
        master: [kAddress, m1.address, m2.address],
        startAt: 0,
        masterTimeout: 1_000,
        backoff: { initial: 50, max: 200 },
        onCommand: (c) => `echo:${c.data}`,
      });
    }
    await viewsExact(
      [m1, m2],
      ids.map((id) => `${id}@k`),
      5_000,
    );
    expect(await m1.request("r1", "via k")).to.equal("echo:via k");

    const killedAt = performance.now();
    killed.child.kill("SIGKILL");
    await waitFor(() => ids.every((id) => m1.has(id) || m2.has(id)), 5_000, "every slave re-homed");
    const rehomedMs = performance.now() - killedAt;
    await Promise.all([m1.clusterFlush(), m2.clusterFlush()]);
    const routable = await Promise.all(ids.map((id) => m2.request(id, id, { timeout: 1_000 })));
    expect(routable).to.deep.equal(ids.map((id) => `echo:${id}`));
    const want = ids.map((id) => `${id}@${m1.has(id) ? "m1" : "m2"}`);
    await viewsExact([m1, m2], want, 5_000);
    const exactMs = performance.now() - killedAt;
    console.log(
      `      SIGKILL: ${ids.length} slaves re-homed in ${rehomedMs.toFixed(0)} ms, every view exact after ${exactMs.toFixed(0)} ms (k's beats 1 s × 3 to expire)`,
    );
    expect(exactMs).to.be.below(5_000);
    for (const m of [m1, m2])
      expect(
        m
          .masters()
          .map((x) => x.id)
          .sort(),
      ).to.deep.equal(["m1", "m2"]);
    expect(events.flatMap((e) => e.evicted)).to.deep.equal([]);
  });

  it("NATS SIGKILLed for 30 s: 0 evictions, fast partial answers meanwhile, views converge within 5 s of the restart", async function () {
    this.timeout(60_000);
    const outageMs = 30_000;
    const masters = await threeMasters();
    const [m1, m2, m3] = masters;
    const events = masters.map(recordEvents);
    await server.kill("SIGKILL");
    const downAt = performance.now();
    await waitFor(() => masters.every((m) => m.clusterState !== "connected"), 2_000, "every master to notice");
    const admin = adminClient(m1.address);
    const [list, listMs] = await timed(() => admin.listSlaves());
    expect(placement(list.slaves)).to.deep.equal(["s1@m1"]);
    expect(list.unansweredMasters.sort()).to.deep.equal(["m2", "m3"]);
    const [local, localMs] = await timed(() => admin.send("s1", "local", { timeout: 1_000 }));
    expect(local.reply?.result.value).to.equal("echo:local");
    const [remote, remoteMs] = await timed(() =>
      admin.send("s2", "x").then(
        () => ({ code: Code.OK }),
        (e: unknown) => e as NetSyncError,
      ),
    );
    expect(remote.code).to.equal(Code.UNAVAILABLE);
    const [broadcast, broadcastMs] = await timed(() => admin.broadcastDetails("b"));
    expect(broadcast.written).to.equal(1);
    expect(broadcast.unansweredMasters.sort()).to.deep.equal(["m2", "m3"]);
    const [listed] = await timed(() => admin.listMasters());
    expect(listed.clusterConnected).to.equal(false);
    console.log(
      `      NATS down: ListSlaves ${listMs.toFixed(1)} ms, local Send+reply ${localMs.toFixed(1)} ms, ` +
        `remote Send UNAVAILABLE ${remoteMs.toFixed(1)} ms, Broadcast ${broadcastMs.toFixed(1)} ms`,
    );
    for (const ms of [listMs, localMs, remoteMs, broadcastMs]) expect(ms).to.be.below(100);
    await sleep(Math.max(0, outageMs - (performance.now() - downAt)));
    // A slave that joins during the outage is announced after it.
    await echoSlave(m3, "late");
    const restartedAt = performance.now();
    await server.start();
    await viewsExact(masters, ["s1@m1", "s2@m2", "s3@m3", "late@m3"], 5_000);
    const convergedMs = performance.now() - restartedAt;
    console.log(`      outage ${(restartedAt - downAt).toFixed(0)} ms; views exact ${convergedMs.toFixed(0)} ms after the restart`);
    expect(convergedMs).to.be.below(5_000);
    expect(await m1.request("late", "x")).to.equal("echo:x");
    expect(events.flatMap((e) => e.evicted)).to.deep.equal([]);
    expect(events.flatMap((e) => e.disconnected)).to.deep.equal([]);
    void m2;
  });

  it("NATS frozen (SIGSTOP): local serving goes on, cluster calls end within their timeout then at once, SIGCONT converges", async () => {
    const masters = await threeMasters();
    const [m1] = masters;
    const events = masters.map(recordEvents);
    await server.freeze();
    const frozenAt = performance.now();
    const admin = adminClient(m1.address);
    const [local, localMs] = await timed(() => admin.send("s1", "local", { timeout: 1_000 }));
    expect(local.reply?.result.value).to.equal("echo:local");
    const [first, firstMs] = await timed(() => admin.listSlaves());
    expect(placement(first.slaves)).to.deep.equal(["s1@m1"]);
    expect(first.unansweredMasters.sort()).to.deep.equal(["m2", "m3"]);
    // Until the client notices (pings every 500 ms, 2 missed), a call waits out gatherTimeout (300 ms), never longer.
    expect(firstMs).to.be.below(450);
    await waitFor(() => m1.clusterState !== "connected", 3_000, "m1 to notice the frozen server");
    const noticedMs = performance.now() - frozenAt;
    const [later, laterMs] = await timed(() => admin.listSlaves());
    expect(later.unansweredMasters.sort()).to.deep.equal(["m2", "m3"]);
    expect(laterMs).to.be.below(100);
    console.log(
      `      frozen: local Send ${localMs.toFixed(1)} ms, first ListSlaves ${firstMs.toFixed(0)} ms, noticed after ${noticedMs.toFixed(0)} ms, then ListSlaves ${laterMs.toFixed(1)} ms`,
    );
    const thawedAt = performance.now();
    server.thaw();
    await viewsExact(masters, ["s1@m1", "s2@m2", "s3@m3"], 5_000);
    console.log(`      views exact ${(performance.now() - thawedAt).toFixed(0)} ms after SIGCONT`);
    expect(events.flatMap((e) => e.evicted)).to.deep.equal([]);
  });

  it("a blackholed link from one master to NATS (no bytes, no RST): it serves locally and answers fast once it notices; the others drop it; the view heals", async () => {
    await server.start();
    const proxy = new TcpProxy({ host: "127.0.0.1", port: server.port });
    const proxyPort = await proxy.listen();
    track(() => proxy.close());
    const cut = await clusterMaster("cut", [`nats://127.0.0.1:${proxyPort}`]);
    const [m2, m3] = (await Promise.all(["m2", "m3"].map((n) => clusterMaster(n, [server.url])))) as [Master, Master];
    const masters = [cut, m2, m3];
    await mastersConverged(masters, ["cut", "m2", "m3"]);
    for (const [i, m] of masters.entries()) await echoSlave(m, `s${i + 1}`);
    const events = masters.map(recordEvents);

    proxy.freeze({ newConnections: true });
    const frozenAt = performance.now();
    const admin = adminClient(cut.address);
    const [local, localMs] = await timed(() => admin.send("s1", "local", { timeout: 1_000 }));
    expect(local.reply?.result.value).to.equal("echo:local");
    // The others expire the silent master after 3 missed beats (300 ms here) and answer without it.
    await mastersConverged([m2, m3], ["m2", "m3"]);
    const expiredMs = performance.now() - frozenAt;
    expect(placement((await m2.fleet()).slaves)).to.deep.equal(["s2@m2", "s3@m3"]);
    // The cut master notices (pings every 500 ms, 2 missed) and then answers at once with what is local.
    await waitFor(() => cut.clusterState !== "connected", 3_000, "the cut master to notice");
    const noticedMs = performance.now() - frozenAt;
    const [list, listMs] = await timed(() => admin.listSlaves());
    expect(placement(list.slaves)).to.deep.equal(["s1@cut"]);
    expect(list.unansweredMasters.sort()).to.deep.equal(["m2", "m3"]);
    expect(listMs).to.be.below(100);

    const thawedAt = performance.now();
    proxy.thaw();
    await viewsExact(masters, ["s1@cut", "s2@m2", "s3@m3"], 5_000);
    console.log(
      `      blackholed: local Send ${localMs.toFixed(1)} ms, dropped by the others after ${expiredMs.toFixed(0)} ms, ` +
        `noticed after ${noticedMs.toFixed(0)} ms, then ListSlaves ${listMs.toFixed(1)} ms; views exact ${(performance.now() - thawedAt).toFixed(0)} ms after the link came back`,
    );
    expect(events.flatMap((e) => e.evicted)).to.deep.equal([]);
  });

  it("a master started before NATS is up listens at once, serves locally, and joins when NATS comes", async () => {
    await server.reservePort();
    const [early, listenMs] = await timed(() => clusterMaster("early", [server.url]));
    expect(listenMs).to.be.below(500);
    await echoSlave(early, "e1");
    expect(await early.request("e1", "x")).to.equal("echo:x");
    const view = await early.fleet();
    expect(view).to.deep.include({ clusterAvailable: false, unanswered: [] });
    expect(placement(view.slaves)).to.deep.equal(["e1@early"]);
    const startedAt = performance.now();
    await server.start();
    await waitFor(() => early.clusterState === "connected", 3_000, "early to connect");
    console.log(`      connected ${(performance.now() - startedAt).toFixed(0)} ms after NATS started`);
    const late = await clusterMaster("late", [server.url]);
    await mastersConverged([early, late], ["early", "late"]);
    expect((await late.routeRequest("e1", "y")).masterId).to.equal("early");
  });

  it("TLS and a token: masters that trust the CA connect and route; one that does not gets a clear error and serves locally", async () => {
    const pki = makeTestPki();
    track(() => pki.cleanup());
    server = new NatsServer({ token: "tls-s3cret", tls: { cert: pki.paths.serverCert, key: pki.paths.serverKey } });
    await server.start();
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
    const secured = { token: "tls-s3cret", tlsCa: pki.ca };
    const [t1, t2] = (await Promise.all(["t1", "t2"].map((n) => clusterMaster(n, [server.url], secured, { logger })))) as [Master, Master];
    await mastersConverged([t1, t2], ["t1", "t2"]);
    await echoSlave(t2, "over-tls");
    expect(await t1.request("over-tls", "x")).to.equal("echo:x");

    const untrusting = await clusterMaster("untrusting", [server.url], { token: "tls-s3cret" }, { logger });
    await echoSlave(untrusting, "u1");
    await waitFor(() => lines.some((l) => /^(error|warn) .*certificate/.test(l)), 3_000, "a TLS error line");
    console.log(`      ${lines.filter((l) => /^(error|warn)/.test(l)).join("\n      ")}`);
    expect(await untrusting.request("u1", "y")).to.equal("echo:y");
    expect(untrusting.clusterState).to.not.equal("connected");
    expect(lines.join("\n")).not.to.include("tls-s3cret");
  });

  it("wrong cluster credentials: one clear error without the secret, the master serves locally; right ones in the URL connect", async () => {
    server = new NatsServer({ token: "right-s3cret" });
    await server.start();
    const lines: string[] = [];
    const logger = createConsola({ level: 5, reporters: [{ log: (o: LogObject) => lines.push(`${o.type} ${format(...o.args)}`) }] });
    const wrongUrl = server.url.replace("nats://", "nats://wrong-s3cret@");
    const bad = await clusterMaster("bad", [wrongUrl], {}, { logger });
    await echoSlave(bad, "b1");
    await waitFor(() => lines.some((l) => l.startsWith("error")), 3_000, "the error line");
    expect(await bad.request("b1", "x")).to.equal("echo:x");
    const admin = adminClient(bad.address);
    expect(placement((await admin.listSlaves()).slaves)).to.deep.equal(["b1@bad"]);
    expect((await admin.listMasters()).clusterConnected).to.equal(false);
    await sleep(700); // two more retries (authRetryInterval 300 ms): still one line
    const errors = lines.filter((l) => l.startsWith("error"));
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(/refused this master's cluster credentials/);
    expect(lines.join("\n")).not.to.include("s3cret");

    const good = await clusterMaster("good", [server.url.replace("nats://", "nats://right-s3cret@")]);
    const other = await clusterMaster("other", [server.url], { token: "right-s3cret" });
    await mastersConverged([good, other], ["good", "other"]);
  });

  it("CLI: --cluster with a wrong token in the URL logs one clear error, never the token, and serves; bad flags are usage errors", async () => {
    server = new NatsServer({ token: "cli-s3cret" });
    await server.start();
    const port = await freePort();
    const url = server.url.replace("nats://", "nats://nope-s3cret@");
    const master = runCli(["master", "--port", String(port), "--name", "cli-bad", "--cluster", url]);
    await master.waitFor(/refused this master's cluster credentials/, 10_000);
    const slaves = runCli(["slaves", "--master", `127.0.0.1:${port}`]);
    expect((await slaves.exit).code, slaves.output()).to.equal(0);
    expect(slaves.stdout()).to.equal("no slaves\n");
    const masters = runCli(["masters", "--master", `127.0.0.1:${port}`]);
    expect((await masters.exit).code, masters.output()).to.equal(0);
    expect(masters.stdout()).to.match(/^ID\s+ADDRESS\s+SLAVES\s+LAST HEARD\ncli-bad\s+127\.0\.0\.1:\d+\s+0\s+/);
    expect(masters.stderr()).to.match(/not connected to a cluster/);
    master.child.kill("SIGTERM");
    await master.exit;
    expect(master.output()).to.match(/cluster "netsync"/);
    expect(master.output()).not.to.include("s3cret");
    for (const [args, error] of [
      [["--cluster-name", "x"], /--cluster-name needs --cluster/],
      [["--cluster-ping-interval", "10s"], /--cluster-ping-interval needs --cluster/],
      [["--cluster", server.url, "--cluster-ping-interval", "soon"], /--cluster-ping-interval/],
      [["--cluster", server.url, "--cluster-name", "a.b"], /--cluster: cluster name must be/],
      [["--cluster", "nats://a@h:1,nats://b@h:2"], /same credentials/],
    ] as const) {
      const run = runCli(["master", "--port", "0", ...args]);
      const { code } = await run.exit;
      expect(code, run.output()).to.equal(2);
      expect(run.stderr()).to.match(error);
    }
  });
});
