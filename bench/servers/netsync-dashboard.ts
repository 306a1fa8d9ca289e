/**
 * The master of the dashboard cost bench (bench/dashboard.ts): the real
 * Master with its defaults (reflection off, a silent logger, as in
 * bench/servers/netsync.ts) and a DashboardServer on a port of its own.
 *
 * Protocol (JSON lines): prints {"ev":"ready","port","httpPort"}; answers
 * "cpu" (this process's CPU time, user + system, in ms, all threads) and
 * "stats" (connected slaves, evictions and other losses so far). "cpu" also
 * gives dashboardMs, the time spent in the dashboard's own code so far.
 * "fill" {count, stride, offset} registers synthetic slaves (no stream behind
 * them, nothing pings them; see bench/servers/netsync-listing.ts) for
 * bench:dashboard --synthetic.
 */
import { DashboardServer } from "../../src/dashboard/http-server.js";
import { Master, silentLogger } from "../../src/index.js";
import { childConfig, emit, onCommands } from "../lib/common.js";
import type { ServerConfig } from "./types.js";

/** With natsUrl, a master named `name` of a cluster; `dashboard: false` for the masters nobody views. */
const config = childConfig<ServerConfig & { name?: string; dashboard?: boolean }>();
const master = new Master({
  host: config.host,
  port: 0,
  heartbeatInterval: config.interval,
  heartbeatTimeout: config.timeout,
  logger: silentLogger(),
  reflection: false,
  name: config.name,
  cluster: config.natsUrl ? { servers: [config.natsUrl] } : undefined,
});
let evicted = 0;
let lost = 0;
master.on("slave:evicted", () => evicted++);
master.on("slave:disconnected", () => lost++);

const port = await master.listen();
const dashboard = new DashboardServer(master, { port: 0, host: config.host, log: silentLogger() });
const withDashboard = config.dashboard ?? true;
/**
 * Instrumentation only: the time the dashboard's own synchronous work takes
 * (the feed's tick and event pushes, every request handler with its JSON), a
 * direct figure next to the with/without CPU comparison, which on a busy
 * machine is noisier than the effect it measures.
 */
let dashboardMs = 0;
function timed(target: object, method: string): void {
  const record = target as Record<string, (...args: unknown[]) => unknown>;
  if (typeof record[method] !== "function") return; // not in this version of the feed
  const original = record[method]!.bind(target);
  record[method] = (...args: unknown[]) => {
    const start = performance.now();
    try {
      return original(...args);
    } finally {
      dashboardMs += performance.now() - start;
    }
  };
}
const internals = dashboard as unknown as { feed: object };
// Synchronous parts only: the feed's tick and snapshot now await the fleet view, and the request handler is a closure
// of routes.ts since the http-server split (timing the old DashboardServer.handle made this process exit at start).
timed(internals.feed, "tick");
timed(internals.feed, "take");
timed(internals.feed, "clusterFigures");
timed(internals.feed, "flushEvents");
const httpPort = withDashboard ? await dashboard.listen() : 0;
emit({ ev: "ready", port, httpPort });

/** The fleet's registry and the SlaveConnection class, reached the way a test would: "fill" only adds entries. */
const registry = (master as unknown as { local: { registry: { add(connection: unknown): unknown } } }).local.registry;
const { SlaveConnection } = await import("../../src/fleet/slave-connection.js");

onCommands((command) => {
  switch (command.cmd) {
    case "fill": {
      const { count, stride, offset } = command as unknown as { count: number; stride: number; offset: number };
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
        const c = connection as unknown as { lastRtt?: number };
        if ("lastRtt" in c) c.lastRtt = 0.5 + (i % 100) / 100;
        registry.add(connection);
      }
      return { size: master.size };
    }
    case "cpu": {
      const { user, system } = process.cpuUsage();
      return {
        cpuMs: (user + system) / 1000,
        dashboardMs,
        at: performance.now(),
        viewers: dashboard.viewers,
        feedActive: dashboard.feedActive,
      };
    }
    case "stats":
      return { connected: master.size, evicted, lost, masters: master.masters().length };
    default:
      return { error: `unknown command ${command.cmd}` };
  }
});

process.on("SIGTERM", () => process.exit(0));
