import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { CloseReason } from "../../gen/netsync/v1/admin_pb.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, once, onceWhere, rawClient, rejection, sleep, startMaster, startSlave, waitFor } from "../helpers.js";

const Status = grpc.status;

describe("admin-service", function () {
  this.timeout(10_000);

  afterEach(cleanup);

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
});
