// A real Master in a process of its own, for the job tests that kill or freeze the master that accepted a job:
// SIGKILL leaves its jobs to the cluster's JetStream store, SIGSTOP leaves it known but silent.
//
// Config (JSON in NETSYNC_TEST_MASTER): { name, servers, cluster?: {...timings} }.
// Prints one JSON line {"address"} once listening, connected to NATS and keeping jobs in JetStream. Then reads
// JSON lines on stdin: {"run": {"data", "options"}} starts a job and prints {"jobId", "targets", "unanswered"};
// SIGTERM closes the master and exits.
import { createInterface } from "node:readline";
import { Master, type RunOptions, silentLogger } from "../../src/index.js";
import type { MasterClusterOptions } from "../../src/options.js";
import { waitFor } from "../support/wait.js";

interface Config {
  name: string;
  servers: string[];
  cluster?: Omit<MasterClusterOptions, "servers">;
}

const config = JSON.parse(process.env.NETSYNC_TEST_MASTER ?? "{}") as Config;
const master = new Master({
  name: config.name,
  port: 0,
  heartbeatInterval: 100,
  heartbeatTimeout: 1_000,
  logger: silentLogger(),
  cluster: { servers: config.servers, ...config.cluster },
});
await master.listen();
await waitFor(() => master.clusterState === "connected" && master.jobStore === "jetstream", 10_000, "NATS and the job store");
process.stdout.write(`${JSON.stringify({ address: master.address })}\n`);

createInterface({ input: process.stdin }).on("line", async (line) => {
  const order = JSON.parse(line) as { run?: { data: string; options: RunOptions } };
  if (!order.run) return;
  try {
    const job = await master.run(order.run.data, order.run.options);
    process.stdout.write(`${JSON.stringify({ jobId: job.id, targets: job.targets, unanswered: job.unansweredMasters })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`);
  }
});
process.once("SIGTERM", async () => {
  await master.close();
  process.exit(0);
});
