/**
 * The NetSync master under test: the real Master class with its defaults,
 * except reflection off and a silent logger (logging 15,000 connects would
 * measure the terminal, not the master).
 *
 * Protocol (JSON lines): prints {"ev":"ready","port"}; answers "stats",
 * "broadcast" (a Custom whose data is "b:<send time>") and "events"
 * (evictions and other losses seen so far). A Custom "e:<t>" from a slave is
 * echoed back to it with master.send(), for the slave-side RTT probe.
 */
import { Master, type MasterOptions, silentLogger } from "../../src/index.js";
import { childConfig, emit, hrNow, onCommands, usage } from "../lib/common.js";
import { withPhases } from "../lib/probe.js";
import type { ServerConfig, ServerEvents } from "./types.js";

const config = childConfig<ServerConfig>();
const master = new Master({
  host: config.host,
  port: 0,
  heartbeatInterval: config.interval,
  heartbeatTimeout: config.timeout,
  logger: silentLogger(),
  reflection: false,
  // Ablation knob for finding hot spots, e.g. '{"grpc.keepalive_time_ms":2147483647}'; unset in every reported run.
  ...(process.env.NETSYNC_BENCH_SERVER_OPTIONS
    ? { serverOptions: JSON.parse(process.env.NETSYNC_BENCH_SERVER_OPTIONS) as Record<string, number> }
    : {}),
  // The same for Master options, e.g. '{"heartbeatSliceSize":200}'; unset in every reported run.
  ...(process.env.NETSYNC_BENCH_MASTER_OPTIONS ? (JSON.parse(process.env.NETSYNC_BENCH_MASTER_OPTIONS) as MasterOptions) : {}),
});

const events: ServerEvents = { evicted: [], lost: [] };

master.on("slave:evicted", ({ slave, details }) => {
  const at = hrNow();
  const silent = /no message for (\d+) ms/.exec(details);
  events.evicted.push({ id: slave.id, at, silentMs: silent ? Number(silent[1]) : Number.NaN, details });
});
master.on("slave:disconnected", ({ slave, reason, details }) => {
  events.lost.push({ id: slave.id, at: hrNow(), reason: `${reason}: ${details}` });
});
// Instrumentation only: count the master's own stalls (its pause detector; while one is detected, nobody is evicted).
const pauses: number[] = [];
const pauseLog: { at: number; ms: number }[] = [];
function countBy(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}
master.on("stalled", (lagMs) => {
  pauses.push(Math.round(lagMs));
  pauseLog.push({ at: hrNow(), ms: Math.round(lagMs) });
});
master.on("command", (slaveId, custom) => {
  if (custom.data.startsWith("e:")) master.send(slaveId, custom.data);
});

const port = await master.listen();
emit({ ev: "ready", port });

onCommands(
  withPhases(async (command) => {
    switch (command.cmd) {
      case "stats":
        return {
          connected: master.size,
          evicted: events.evicted.length,
          // Eviction reasons by kind (the details up to the first colon), to tell timeouts from slow consumers.
          evictedBy: countBy(events.evicted.map((e) => (e.details ?? "").split(":")[0]!)),
          lost: events.lost.length,
          pauses: pauses.length,
          ...usage(),
        };
      case "broadcast": {
        // broadcastFleet: the paced fan-out (without a cluster, the local fleet's), answered once every stream is written.
        const sentAt = hrNow();
        const { written } = await master.broadcastFleet(`b:${sentAt}`);
        return { sentAt, callMs: hrNow() - sentAt, written };
      }
      case "events":
        return { ...events, pauses, pauseLog };
      default:
        return { error: `unknown command ${command.cmd}` };
    }
  }),
);

process.on("SIGTERM", () => process.exit(0));
