/**
 * One master of the listing bench (bench/listing.ts): the real Master in a
 * cluster over `natsUrl` (silent logger, reflection off), in its own process.
 *
 * Protocol (JSON lines): prints {"ev":"ready","port"} once listening and
 * connected to NATS; answers
 * - "fill" {count, stride, offset}: registers `count` synthetic slaves, ids
 *   "s" + (n × stride + offset) in 8 digits (so K masters given strides K
 *   and offsets 0…K−1 hold interleaved ids), labels {shard: id % 10}, an
 *   RTT of 0.5–1.5 ms. They are
 *   SlaveConnections in the fleet's registry with no stream behind them:
 *   nothing pings them and no NATS route is claimed for them; a listing
 *   reads them as it reads real ones. The same code works on an older
 *   src/ (the registry's add() is all it uses), so before/after runs share it.
 * - "fleet": master.fleet() of the whole fleet: its time, how many slaves,
 *   which masters were unanswered.
 * - "stats": slaves held, masters known, CPU time.
 */
import { Master, silentLogger } from "../../src/index.js";
import { childConfig, emit, onCommands, usage } from "../lib/common.js";

interface ListingMasterConfig {
  name: string;
  host: string;
  natsUrl: string;
  interval: number;
  timeout: number;
}

const config = childConfig<ListingMasterConfig>();
const master = new Master({
  name: config.name,
  host: config.host,
  port: 0,
  heartbeatInterval: config.interval,
  heartbeatTimeout: config.timeout,
  logger: silentLogger(),
  reflection: false,
  cluster: { servers: [config.natsUrl] },
});
const port = await master.listen();
while (master.clusterState !== "connected") await new Promise((resolve) => setTimeout(resolve, 50));
emit({ ev: "ready", port });

/** The fleet's registry and the SlaveConnection class, reached the way a test would: the bench only adds entries. */
type Registry = { add(connection: unknown): unknown };
const registry = (master as unknown as { local: { registry: Registry } }).local.registry;
const { SlaveConnection } = await import("../../src/fleet/slave-connection.js");

onCommands(async (command) => {
  switch (command.cmd) {
    case "fleet": {
      const started = performance.now();
      const view = await master.fleet();
      return { ms: performance.now() - started, slaves: view.slaves.length, unanswered: view.unanswered };
    }
    case "fill": {
      const count = command.count as number;
      const stride = command.stride as number;
      const offset = command.offset as number;
      const started = performance.now();
      const now = Date.now();
      for (let n = 0; n < count; n++) {
        const i = n * stride + offset;
        const connection = new SlaveConnection(
          `s${String(i).padStart(8, "0")}`,
          `10.0.${(i >> 8) & 255}.${i & 255}:40000`,
          {} as never,
          now,
          1 << 20,
          {
            shard: String(i % 10),
          },
        );
        const c = connection as unknown as { lastRtt?: number; rtt?: number };
        // The RTT field's name differs between versions; set whichever exists (it only feeds the summary).
        if ("lastRtt" in c) c.lastRtt = 0.5 + (i % 100) / 100;
        registry.add(connection);
      }
      return { filled: count, ms: performance.now() - started, size: master.size };
    }
    case "stats":
      return { size: master.size, masters: master.masters().length, clusterState: master.clusterState, ...usage() };
    default:
      return { error: `unknown command ${command.cmd}` };
  }
});
