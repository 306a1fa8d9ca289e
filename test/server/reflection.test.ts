import { expect } from "chai";
import { adminClient, bufCurl } from "../grpc-helpers.js";
import { cleanup, startMaster, startSlave, waitFor } from "../helpers.js";

const EXPECTED_METHODS = [
  "netsync.v1.NetSyncService/Sync",
  "netsync.v1.AdminService/ListSlaves",
  "netsync.v1.AdminService/Broadcast",
  "netsync.v1.AdminService/Send",
  "netsync.v1.AdminService/Run",
  "netsync.v1.AdminService/GetJob",
  "netsync.v1.AdminService/ListJobs",
  "grpc.health.v1.Health/Check",
];

describe("reflection", function () {
  this.timeout(10_000);

  afterEach(cleanup);

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
});
