/**
 * The job runner over a host of the test's own making (the runner's port,
 * JobHost; no gRPC or NATS to fake): a slave that connects elsewhere while
 * the job's first delivery to it is still out, and whose delivery then fails
 * NOT_FOUND, is delivered to once the command is kept, not left to expire.
 * In a cluster this is a routed lookup racing the slave's connect on another
 * master: the likeliest cause of the one CI failure of durable-jobs "a
 * cluster whose NATS has no JetStream ... delivers later across masters"
 * (expired), which did not recur in 15 local runs.
 */
import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { ReplySchema } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../../src/code.js";
import { NetSyncError } from "../../src/errors.js";
import type { BatchHandlers } from "../../src/fleet/request-batch.js";
import { type JobHost, JobRunner } from "../../src/jobs/runner.js";
import { silentLogger } from "../../src/logger.js";

function racingHost() {
  const connectListeners = new Set<(slaveId: string) => void>();
  const requests: string[] = [];
  const host: JobHost = {
    masterId: "m1",
    resolve: async () => ({ ids: [], unanswered: [] }),
    request: async (slaveId, custom) => {
      requests.push(slaveId);
      return { reply: create(ReplySchema, { result: { case: "data", value: `${slaveId}:${custom.data}` } }), masterId: "m2" };
    },
    requestMany: (_custom, _timeout, handlers: BatchHandlers) => ({
      send: (slaveId) => {
        // The slave connects on another master while the lookup is out; the lookup then comes back empty.
        setTimeout(() => {
          for (const listener of connectListeners) listener(slaveId);
          setTimeout(() => handlers.fail(slaveId, new NetSyncError(`no master holds slave ${slaveId}`, Code.NOT_FOUND)), 5);
        }, 5);
      },
      close: () => {},
    }),
    // The directory never learnt where it went: only the connect event tells.
    reachable: () => false,
    heldIds: () => [],
    watchConnects: (listener) => {
      connectListeners.add(listener);
      return () => connectListeners.delete(listener);
    },
  };
  return { host, requests };
}

describe("JobRunner: a connect heard while the first delivery is out", () => {
  it("delivers once the command is kept, instead of waiting for a connect that already came", async () => {
    const { host, requests } = racingHost();
    // A retry far beyond deliverWithin: only the remembered connect can deliver in time.
    const runner = new JobRunner(host, { log: silentLogger(), retryInterval: 60_000 });
    try {
      const job = await runner.run("x", { ids: ["later"], timeout: 1_000, deliverWithin: 1_500 });
      const summary = await job.done;
      expect(summary.ok).to.equal(1);
      expect(requests).to.deep.equal(["later"]);
      expect(job.record().results.map((r) => [r.slaveId, r.status, r.masterId])).to.deep.equal([["later", "ok", "m2"]]);
    } finally {
      runner.close();
    }
  });
});
