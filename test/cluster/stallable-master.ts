// A real Master in a process of its own, for the tests that stall a master: SIGSTOP freezes it, SIGUSR2
// blocks its event loop for NETSYNC_TEST_BLOCK_MS (a long GC, a saturated loop), and its NATS link may go
// through a proxy the test freezes. The test's own masters and slaves keep running meanwhile.
//
// Config (JSON in NETSYNC_TEST_MASTER): { name, servers, cluster?: {...timings} }.
// Prints one JSON line {"address","metricsPort"} once listening and connected to NATS, then
// {"unblocked":ms} after each SIGUSR2 block; SIGTERM closes the master (a leave) and exits.
import { Master, silentLogger } from "../../src/index.js";
import type { MasterClusterOptions } from "../../src/options.js";
import { busyWait } from "../helpers.js";
import { waitFor } from "../support/wait.js";

interface Config {
  name: string;
  servers: string[];
  cluster?: Omit<MasterClusterOptions, "servers">;
}

const config = JSON.parse(process.env.NETSYNC_TEST_MASTER ?? "{}") as Config;
const blockMs = Number(process.env.NETSYNC_TEST_BLOCK_MS ?? 4_000);
const master = new Master({
  name: config.name,
  port: 0,
  metricsPort: 0,
  heartbeatInterval: 100,
  heartbeatTimeout: 1_000,
  logger: silentLogger(),
  cluster: { servers: config.servers, ...config.cluster },
});
await master.listen();
await waitFor(() => master.clusterState === "connected", 10_000, "the connection to NATS");
process.stdout.write(`${JSON.stringify({ address: master.address, metricsPort: master.metricsPort })}\n`);

process.on("SIGUSR2", () => {
  const started = performance.now();
  busyWait(blockMs);
  process.stdout.write(`${JSON.stringify({ unblocked: Math.round(performance.now() - started) })}\n`);
});
process.once("SIGTERM", async () => {
  await master.close();
  process.exit(0);
});
