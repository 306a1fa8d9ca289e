import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { bufCurl, grpcClient, healthCheck, healthWatch } from "../grpc-helpers.js";
import { cleanup, once, startMaster, startSlave, waitFor, within } from "../helpers.js";

const Status = grpc.status;

describe("master-server", function () {
  this.timeout(10_000);

  afterEach(cleanup);

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
});
