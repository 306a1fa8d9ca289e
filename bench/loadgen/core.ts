/**
 * What every load generator shares: its config, the samples it collects and
 * the commands it answers. A generator holds `count` slaves of one system.
 *
 * Samples, the same method for every system:
 * - rtt: slave-side round trip of an echo probe. While probing is on, every
 *   slave, right after answering a ping, sends a message carrying its own
 *   timestamp on its liveness channel; the server sends it straight back on
 *   the same channel; the slave records now - timestamp (its own clock).
 * - bcast: one-way delivery of a broadcast: receive time minus the send time
 *   the server wrote into the payload (same machine, same clock).
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { childConfig, emit, onCommands, round } from "../lib/common.js";
import { withPhases } from "../lib/probe.js";

export interface LoadgenConfig {
  /** Destination hosts (loopback addresses), used round-robin per connection. */
  hosts: string[];
  port: number;
  natsUrl?: string;
  count: number;
  /** Slave ids are prefix + index. */
  prefix: string;
  /** Slave streams per connection (gRPC systems only); 1 = a connection per slave. */
  streamsPerConn: number;
  /** How many connections to open at once during the ramp. */
  openBatch: number;
}

export const config = childConfig<LoadgenConfig>();

/** An echo slower than this is recorded with its slave and send time too. */
export const SLOW_RTT_MS = 50;

export const state = {
  probing: false,
  stopping: false,
  rtt: [] as number[],
  /** Echoes slower than SLOW_RTT_MS, as [slave index, send time, rtt]: where a tail comes from (some slaves, or one moment). */
  slow: [] as [number, number, number][],
  bcast: [] as number[],
  ended: 0,
  endReasons: new Map<string, number>(),
  /** Streams opened so far and pings answered: diagnostics for a ramp that stalls. */
  opened: 0,
  pings: 0,
};

// Event-loop delay of this generator, so a ramp that stalls can be pinned on the generator or the server.
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();

export function ended(reason: string): void {
  if (state.stopping) return;
  state.ended++;
  state.endReasons.set(reason, (state.endReasons.get(reason) ?? 0) + 1);
}

/** Opens `count` slaves with `open(i)`, `openBatch` at a time, then serves commands. */
export async function run(open: (index: number) => Promise<void>): Promise<void> {
  onCommands(
    withPhases((command) => {
      switch (command.cmd) {
        case "probe":
          state.probing = Boolean(command.on);
          return {};
        case "collect": {
          const reply = {
            rtt: state.rtt.map((v) => round(v)),
            slow: state.slow.map(([i, at, v]) => [i, round(at), round(v)]),
            bcast: state.bcast.map((v) => round(v)),
            ended: state.ended,
            endReasons: Object.fromEntries(state.endReasons),
          };
          state.rtt = [];
          state.slow = [];
          state.bcast = [];
          return reply;
        }
        case "status": {
          const reply = {
            opened: state.opened,
            pings: state.pings,
            ended: state.ended,
            endReasons: Object.fromEntries(state.endReasons),
            lagMaxMs: round(loopDelay.max / 1e6, 1),
            heapMB: round(process.memoryUsage().heapUsed / 2 ** 20, 1),
          };
          loopDelay.reset();
          return reply;
        }
        default:
          return { error: `unknown command ${command.cmd}` };
      }
    }),
  );

  process.on("SIGTERM", () => {
    state.stopping = true;
    process.exit(0);
  });
  const started = performance.now();
  for (let i = 0; i < config.count; i += config.openBatch) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(config.count, i + config.openBatch); j++) batch.push(open(j));
    await Promise.all(batch);
    emit({ ev: "progress", n: Math.min(config.count, i + config.openBatch) });
  }
  emit({ ev: "ready", n: config.count, ms: Math.round(performance.now() - started) });
}

export const hostFor = (connection: number): string => config.hosts[connection % config.hosts.length]!;
