// A cluster node in a process of its own, for the broadcast tests that block or stop a master: the
// asker's timers must keep running while this master's event loop is blocked, so the two cannot share a
// process. Its local fleet holds `slaves` entries (no gRPC) and, like a loaded master writing to 10,000
// slaves, blocks its event loop for the ms a broadcast's data names ("block:<ms>") before counting.
//
// Usage: node --import tsx broadcast-child.ts <nats url> <master id> <slaves>
// Prints "ready" once connected with its slaves routable, "wrote <data> <count>" after each broadcast;
// SIGTERM closes the node (a leave) and exits.
import { ClusterNode } from "../../src/cluster/cluster-node.js";
import { silentLogger } from "../../src/logger.js";
import { busyWait } from "../helpers.js";
import { FakeFleet } from "./fake-fleet.js";

/** Beats every second: the asker (FAST_CLUSTER) expires it only after 3 s of silence, longer than any block here. */
const MEMBERSHIP_INTERVAL = 1_000;

class SlowFleet extends FakeFleet {
  override async broadcast(data: string, selector?: string): Promise<number> {
    const block = /^block:(\d+)$/.exec(data);
    if (block) busyWait(Number(block[1]));
    const count = await super.broadcast(data, selector);
    process.stdout.write(`wrote ${data} ${count}\n`);
    return count;
  }
}

const [url, id, slaves] = process.argv.slice(2) as [string, string, string];
const fleet = new SlowFleet(id);
const node = new ClusterNode(fleet, { servers: [url], membershipInterval: MEMBERSHIP_INTERVAL, logger: silentLogger() });
fleet.node = node;
node.once("connected", async () => {
  for (let i = 0; i < Number(slaves); i++) fleet.connect(`${id}-s${i}`);
  await node.flush();
  process.stdout.write("ready\n");
});
node.start();
process.once("SIGTERM", async () => {
  await node.close();
  process.exit(0);
});
