import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { CloseReason } from "../gen/netsync/v1/admin_pb.js";
import { killAllCli, runCli } from "./cli-process.js";
import { adminClient, grpcClient, healthCheck, healthWatch } from "./grpc-helpers.js";
import { cleanup, gate, once, onceWhere, rawClient, rejection, sleep, startMaster, startSlave, waitFor, within } from "./helpers.js";

const Status = grpc.status;
const BUF = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));

// --- buf curl ------------------------------------------------------------------

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `buf curl --protocol grpc --http2-prior-knowledge ...args`; never rejects. */
function bufCurl(args: string[], timeoutMs = 8_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const EXPECTED_METHODS = [
  "netsync.v1.NetSyncService/Sync",
  "netsync.v1.AdminService/ListSlaves",
  "netsync.v1.AdminService/Broadcast",
  "netsync.v1.AdminService/Send",
  "grpc.health.v1.Health/Check",
];

// --- CLI -----------------------------------------------------------------------

/**
 * The environment in which consola's own heuristics would drop to warn. Unlike
 * runCli()'s default, it keeps the parent's NETSYNC_TOKEN.
 */
const TEST_ENV = { ...process.env, NODE_ENV: "test", CI: "true", NETSYNC_LOG_LEVEL: "", NETSYNC_LOG_FORMAT: "" };

/** Runs the CLI to completion (killed after `timeoutMs`); never rejects. */
async function cli(args: string[], timeoutMs = 8_000): Promise<Exec> {
  const run = runCli(args, TEST_ENV);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), timeoutMs);
  const { code } = await run.exit;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe("admin", function () {
  this.timeout(10_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  describe("server reflection (buf curl)", () => {
    it("lists every method, over reflection v1 and v1alpha", async () => {
      const master = await startMaster();
      const url = `http://${master.address}`;
      const [v1, v1alpha] = await Promise.all([
        bufCurl([url, "--list-methods"]),
        bufCurl(["--reflect-protocol", "grpc-v1alpha", url, "--list-methods"]),
      ]);
      for (const result of [v1, v1alpha]) {
        expect(result.code, result.stderr).to.equal(0);
        const methods = result.stdout.trim().split("\n");
        expect(methods).to.include.members(EXPECTED_METHODS);
      }
    });

    it("calls ListSlaves by reflection alone and gets the connected slaves as JSON", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "refl-a" });
      await startSlave(master.address, { id: "refl-b" });
      await waitFor(() => master.slaves().every((s) => s.pingsSent > 0), 2_000, "a ping round");
      const result = await bufCurl([`http://${master.address}/netsync.v1.AdminService/ListSlaves`, "-d", "{}"]);
      expect(result.code, result.stderr).to.equal(0);
      const body = JSON.parse(result.stdout) as { slaves: Array<Record<string, unknown>> };
      expect(body.slaves.map((s) => s.id)).to.have.members(["refl-a", "refl-b"]);
      for (const slave of body.slaves) {
        expect(slave.peer).to.match(/^127\.0\.0\.1:\d+$/);
        expect(Date.parse(slave.connectedAt as string)).to.be.closeTo(Date.now(), 10_000);
        expect(Date.parse(slave.lastSeen as string)).to.be.closeTo(Date.now(), 10_000);
        expect(Number(slave.pingsSent)).to.be.greaterThan(0);
      }
    });

    it("is off with reflection: false (buf curl --list-methods fails), the services still serve", async () => {
      const master = await startMaster({ reflection: false });
      await startSlave(master.address, { id: "no-refl" });
      const url = `http://${master.address}`;
      const results = await Promise.all([
        bufCurl([url, "--list-methods"]),
        bufCurl(["--reflect-protocol", "grpc-v1alpha", url, "--list-methods"]),
      ]);
      for (const result of results) {
        expect(result.code).to.be.a("number").and.not.equal(0);
        expect(result.stdout).not.to.include("netsync.v1");
      }
      expect((await adminClient(master.address).listSlaves()).slaves.map((s) => s.id)).to.deep.equal(["no-refl"]);
    });
  });

  describe("health", () => {
    it("reports SERVING for the server and for NetSyncService (buf curl)", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "healthy" });
      const url = `http://${master.address}/grpc.health.v1.Health/Check`;
      const results = await Promise.all([bufCurl([url, "-d", "{}"]), bufCurl([url, "-d", '{"service":"netsync.v1.NetSyncService"}'])]);
      for (const result of results) {
        expect(result.code, result.stderr).to.equal(0);
        expect(JSON.parse(result.stdout)).to.deep.equal({ status: "SERVING" });
      }
    });

    for (const slaveFirst of [false, true]) {
      it(`reports NOT_SERVING as soon as close() begins (${slaveFirst ? "slave closed first" : "slave still connected"})`, async () => {
        const master = await startMaster();
        const slave = await startSlave(master.address, { id: "on-shutdown" });
        const client = grpcClient(master.address, {}); // on the process's shared subchannel pool
        expect((await healthCheck(client)).status).to.equal(ServingStatus.SERVING);
        expect((await healthCheck(client, "netsync.v1.NetSyncService")).status).to.equal(ServingStatus.SERVING);
        const watches = [healthWatch(client), healthWatch(client, "netsync.v1.NetSyncService")];
        await waitFor(() => watches.every((w) => w.statuses.length > 0), 2_000, "the first Watch status");
        for (const w of watches) expect(w.statuses).to.deep.equal([ServingStatus.SERVING]);

        if (slaveFirst) {
          const gone = once(master, "slave:disconnected");
          await slave.close();
          await gone;
          expect((await healthCheck(client)).status).to.equal(ServingStatus.SERVING);
        }

        const closing = master.close();
        // Issued right after close() started, on a connection the server is shutting down.
        const checks = ["", "netsync.v1.NetSyncService"].map((service) =>
          healthCheck(client, service).then(
            (r) => ({ status: r.status, code: Status.OK as grpc.status }),
            (e: grpc.ServiceError) => ({ status: undefined, code: e.code }),
          ),
        );
        for (const check of await within(Promise.all(checks), 3_000, "Check during close()")) {
          if (check.code === Status.OK) expect(check.status).to.equal(ServingStatus.NOT_SERVING);
          else expect(check.code).to.equal(Status.UNAVAILABLE);
        }
        // The open Watch streams see the change at once (and then let the server finish shutting down).
        await waitFor(() => watches.every((w) => w.statuses.length > 1), 1_000, "NOT_SERVING on Watch");
        for (const w of watches) {
          expect(w.statuses).to.deep.equal([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
          w.call.cancel();
        }
        await within(closing, 3_000, "master.close()");
      });
    }
  });

  describe("AdminService (AdminClient)", () => {
    it("lists the connected slaves with peer, RTT and counters", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "list-a" });
      await startSlave(master.address, { id: "list-b" });
      await waitFor(() => master.slaves().every((s) => s.rttMs !== undefined), 2_000, "a pong from each slave");
      const response = await adminClient(master.address).listSlaves();
      expect(response.slaves.map((s) => s.id)).to.have.members(["list-a", "list-b"]);
      expect(response.closed).to.deep.equal([]);
      for (const s of response.slaves) {
        expect(s.peer).to.match(/^127\.0\.0\.1:\d+$/);
        expect(s.connectedAt).to.not.equal(undefined);
        expect(s.lastSeen).to.not.equal(undefined);
        expect(s.rtt, `rtt of ${s.id}`).to.not.equal(undefined);
        expect(Number(s.rtt!.seconds) * 1000 + s.rtt!.nanos / 1e6)
          .to.be.greaterThan(0)
          .and.lessThan(1_000);
        expect(s.pingsSent > 0n).to.equal(true);
        expect(s.pongsReceived > 0n).to.equal(true);
        expect(s.commandsSent).to.equal(0n);
      }
    });

    it("lists recently closed slaves with their reason, newest first, only when asked", async () => {
      const master = await startMaster();
      // A generous master timeout: a reconnect under CPU load would add entries to the history.
      await startSlave(master.address, { id: "stayer", masterTimeout: 2_000 });
      const leaver = await startSlave(master.address, { id: "leaver", masterTimeout: 2_000 });
      const disconnected = onceWhere(master, "slave:disconnected", (e) => e.slave.id === "leaver");
      await leaver.close();
      await disconnected;
      const evicted = onceWhere(master, "slave:evicted", (e) => e.slave.id === "mute");
      rawClient(master.address, { id: "mute" });
      await evicted;

      const client = adminClient(master.address);
      const all = await client.listSlaves({ includeClosed: true });
      expect(all.slaves.map((s) => s.id)).to.deep.equal(["stayer"]);
      expect(all.closed.map((c) => [c.slave?.id, c.reason])).to.deep.equal([
        ["mute", CloseReason.EVICTED],
        ["leaver", CloseReason.DISCONNECTED],
      ]);
      for (const c of all.closed) {
        expect(c.details).to.be.a("string").and.not.equal("");
        expect(c.closedAt).to.not.equal(undefined);
      }
      expect(all.closed[0]!.details).to.match(/heartbeat timeout/);
      expect((await client.listSlaves()).closed).to.deep.equal([]);
    });

    it("keeps a bounded history (historySize)", async () => {
      const master = await startMaster({ historySize: 3 });
      for (let i = 0; i < 5; i++) {
        const slave = await startSlave(master.address, { id: `h${i}` });
        const gone = onceWhere(master, "slave:disconnected", (e) => e.slave.id === `h${i}`);
        await slave.close();
        await gone;
      }
      const response = await adminClient(master.address).listSlaves({ includeClosed: true });
      expect(response.closed.map((c) => c.slave?.id)).to.deep.equal(["h4", "h3", "h2"]);
      expect(master.recentlyClosed()).to.have.length(3);
    });

    it("broadcasts to every slave and returns the count", async () => {
      const master = await startMaster();
      const slaves = await Promise.all(["b1", "b2", "b3"].map((id) => startSlave(master.address, { id })));
      const received = slaves.map((s) => once(s, "command"));
      expect(await adminClient(master.address).broadcast("flush")).to.equal(3);
      for (const [command] of await Promise.all(received)) {
        expect(command.data).to.equal("flush");
        expect(command.requestId).to.equal(0n);
      }
    });

    it("sends to one slave, with and without waiting for the reply", async () => {
      const master = await startMaster();
      const texter = await startSlave(master.address, { id: "texter", onCommand: (c) => `echo:${c.data}` });
      const objecter = await startSlave(master.address, {
        id: "objecter",
        onCommand: (c, { slaveId }) => ({ got: c.data, by: slaveId, n: 1 }),
      });
      const objecterGot: string[] = [];
      objecter.on("command", (c) => objecterGot.push(c.data));
      const client = adminClient(master.address);

      const got = once(texter, "command");
      const fired = await client.send("texter", "fire");
      expect(fired.written).to.equal(true);
      expect(fired.reply).to.equal(undefined);
      expect((await got)[0].data).to.equal("fire");
      await sleep(50);
      expect(objecterGot, "commands seen by the other slave").to.deep.equal([]);

      const text = await client.send("texter", "hello", { timeout: 2_000 });
      expect(text.written).to.equal(true);
      expect(text.reply?.result).to.deep.equal({ case: "data", value: "echo:hello" });

      const json = await client.send("objecter", "hi", { timeout: 2_000 });
      expect(json.reply?.result.case).to.equal("data");
      expect(JSON.parse(json.reply!.result.value as string)).to.deep.equal({ got: "hi", by: "objecter", n: 1 });
    });

    it("returns the handler's error in the reply when it throws", async () => {
      const master = await startMaster();
      await startSlave(master.address, {
        id: "thrower",
        onCommand: () => {
          throw new Error("disk on fire");
        },
      });
      const response = await adminClient(master.address).send("thrower", "x", { timeout: 2_000 });
      expect(response.written).to.equal(true);
      expect(response.reply?.result.case).to.equal("error");
      expect(response.reply?.result.value).to.match(/disk on fire/);
    });

    it("answers NOT_FOUND for an unknown slave", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "known" });
      const client = adminClient(master.address);
      for (const wait of [undefined, { timeout: 1_000 }]) {
        const error = await rejection(client.send("ghost", "x", wait), 3_000, "send to ghost");
        expect(error.code).to.equal(Status.NOT_FOUND);
        expect(error.message)
          .to.match(/NOT_FOUND/)
          .and.to.match(/ghost/);
      }
    });
  });

  describe("master.request()", () => {
    it("resolves with the handler's return value (text, or JSON for objects)", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "r-text", onCommand: (c) => c.data.toUpperCase() });
      await startSlave(master.address, { id: "r-obj", onCommand: async (c) => ({ len: c.data.length }) });
      await startSlave(master.address, { id: "r-void", onCommand: () => undefined });
      expect(await within(master.request("r-text", "abc", { timeout: 2_000 }), 3_000, "request")).to.equal("ABC");
      expect(JSON.parse(await within(master.request("r-obj", { data: "abcd" }, { timeout: 2_000 }), 3_000, "request"))).to.deep.equal({
        len: 4,
      });
      expect(await within(master.request("r-void", "x", { timeout: 2_000 }), 3_000, "request")).to.equal("");
      // Concurrent requests each get their own reply.
      const many = await within(
        Promise.all(["a", "b", "c", "d"].map((d) => master.request("r-text", d, { timeout: 2_000 }))),
        3_000,
        "concurrent requests",
      );
      expect(many).to.deep.equal(["A", "B", "C", "D"]);
    });

    it("rejects with DEADLINE_EXCEEDED when the handler takes longer than the timeout", async () => {
      const master = await startMaster();
      const slow = gate();
      await startSlave(master.address, { id: "slow", onCommand: (c) => (c.data === "slow" ? slow.promise : "quick") });
      const started = performance.now();
      const error = await rejection(master.request("slow", "slow", { timeout: 80 }), 2_000, "request to a slow handler");
      expect(error.code).to.equal(Status.DEADLINE_EXCEEDED);
      expect(performance.now() - started).to.be.within(70, 1_000);
      // The late reply is dropped and the slave stays usable.
      slow.release("late");
      expect(await within(master.request("slow", "other", { timeout: 2_000 }), 3_000, "a second request")).to.equal("quick");
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["slow"]);
    });

    it("rejects with UNAVAILABLE when the slave disconnects before replying", async () => {
      const master = await startMaster();
      const never = gate();
      const slave = await startSlave(master.address, { id: "quitter", onCommand: () => never.promise });
      const command = once(slave, "command");
      const pending = master.request("quitter", "x", { timeout: 5_000 });
      await command;
      const [error] = await Promise.all([rejection(pending, 2_000, "request to a closing slave"), slave.close()]);
      expect(error.code).to.equal(Status.UNAVAILABLE);
      expect(error.message).to.match(/disconnected/);
    });

    it("rejects with UNAVAILABLE when the slave is evicted before replying", async () => {
      const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 300 });
      const raw = rawClient(master.address, { id: "reader" });
      await within(raw.headers, 2_000, "the raw client's headers");
      const started = performance.now();
      const error = await rejection(master.request("reader", "x", { timeout: 5_000 }), 2_000, "request to a mute client");
      expect(error.code).to.equal(Status.UNAVAILABLE);
      expect(error.message).to.match(/evicted/);
      expect(performance.now() - started).to.be.lessThan(1_500);
      const custom = raw.received.find((c) => c.kind.case === "custom");
      expect(custom?.kind.value).to.include({ data: "x" });
      expect(custom?.kind.case === "custom" && custom.kind.value.requestId).to.not.equal(0n);
      expect((await within(raw.status, 2_000, "the raw client's status")).code).to.equal(Status.UNAVAILABLE);
    });

    it("rejects with UNAVAILABLE when the master closes while it is pending", async () => {
      const master = await startMaster();
      const never = gate();
      const slave = await startSlave(master.address, { id: "orphan", onCommand: () => never.promise });
      const command = once(slave, "command");
      const pending = master.request("orphan", "x", { timeout: 5_000 });
      await command;
      const [error] = await Promise.all([
        rejection(pending, 2_000, "request pending at close()"),
        within(master.close(), 3_000, "master.close()"),
      ]);
      expect(error.code).to.equal(Status.UNAVAILABLE);
      expect(error.message).to.match(/shutdown|shutting down/);
    });

    it("rejects with NOT_FOUND for an unknown slave and UNKNOWN when the handler throws", async () => {
      const master = await startMaster();
      await startSlave(master.address, {
        id: "r-throw",
        onCommand: async () => {
          throw new Error("no such file");
        },
      });
      const notFound = await rejection(master.request("nobody", "x", { timeout: 1_000 }), 500, "request to nobody");
      expect(notFound.code).to.equal(Status.NOT_FOUND);
      const unknown = await rejection(master.request("r-throw", "x", { timeout: 2_000 }), 3_000, "request to a throwing handler");
      expect(unknown.code).to.equal(Status.UNKNOWN);
      expect(unknown.message).to.match(/no such file/);
      const reply = await within(master.requestReply("r-throw", "y", { timeout: 2_000 }), 3_000, "requestReply");
      expect(reply.result.case).to.equal("error");
      expect(reply.requestId).to.not.equal(0n);
    });
  });

  describe("CLI slaves and send", function () {
    this.timeout(15_000);

    it("lists slaves as a table and as JSON", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "cli-listed" });
      await waitFor(() => master.slaves().every((s) => s.rttMs !== undefined), 2_000, "a pong");
      const [tableRun, jsonRun] = await Promise.all([
        cli(["slaves", "--master", master.address]),
        cli(["slaves", "--master", master.address, "--json"]),
      ]);
      expect(tableRun.code, tableRun.stderr).to.equal(0);
      const lines = tableRun.stdout.trim().split("\n");
      expect(lines[0]).to.match(/^ID\s+PEER\s+CONNECTED\s+LAST SEEN\s+RTT\s+PINGS\s+PONGS$/);
      expect(lines).to.have.length(2);
      expect(lines[1]).to.match(/^cli-listed\s+127\.0\.0\.1:\d+\s+\S+\s+.* ago\s+\d+\.\d\d ms\s+\d+\s+\d+$/);

      expect(jsonRun.code, jsonRun.stderr).to.equal(0);
      const body = JSON.parse(jsonRun.stdout) as { slaves: Array<{ id: string; peer: string }> };
      expect(body.slaves).to.have.length(1);
      expect(body.slaves[0]!.id).to.equal("cli-listed");
      expect(body.slaves[0]!.peer).to.match(/^127\.0\.0\.1:\d+$/);
    });

    it("sends with --wait, to --all, and fails on an unknown slave or a missing target", async () => {
      const master = await startMaster();
      await startSlave(master.address, { id: "cli-echo", onCommand: (c) => `echo:${c.data}` });
      await startSlave(master.address, { id: "cli-other" });
      const [waited, all, ghost, missing] = await Promise.all([
        cli(["send", "--master", master.address, "--to", "cli-echo", "--wait", "ping me"]),
        cli(["send", "--master", master.address, "--all", "hello all"]),
        cli(["send", "--master", master.address, "--to", "ghost", "x"]),
        cli(["send", "--master", master.address, "x"]),
      ]);
      expect(waited.code, waited.stderr).to.equal(0);
      expect(waited.stdout).to.equal("echo:ping me\n");
      expect(all.code, all.stderr).to.equal(0);
      expect(all.stdout).to.equal("written to 2 slaves\n");
      expect(ghost.code).to.equal(1);
      expect(ghost.stderr)
        .to.match(/NOT_FOUND/)
        .and.to.match(/ghost/);
      expect(ghost.stdout).to.equal("");
      expect(missing.code).to.equal(2);
      expect(missing.stderr).to.match(/^error: .*--to.*--all/);
    });
  });
});
