/**
 * One process of the million bench (bench/million/main.ts): several real
 * Masters, each in a cluster over the three nats-servers (its own server
 * first), each with its own NATS connection and subscriptions; silent
 * logger, reflection off, a long heartbeat. Their slaves are synthetic
 * (synthetic-slave.ts) and enter through Fleet.accept(), the path a real
 * Sync stream takes.
 *
 * Protocol (JSON lines, bench/lib/common.ts): prints {"ev":"ready","masters"}
 * once every master listens and is connected to NATS; answers the commands
 * in `handlers` below (see each).
 */
import { Master, silentLogger } from "../../src/index.js";
import { childConfig, emit, onCommands, sleep } from "../lib/common.js";
import { type FillPlan, fill, rehome } from "./fill.js";
import { masterInternals } from "./internals.js";
import { listAll, requestMany } from "./probes.js";

export interface NodeConfig {
  /** The masters of this process: name, and the NATS URLs it is given (its own server first). */
  masters: { name: string; servers: string[] }[];
  interval: number;
  timeout: number;
  /** The masters' NATS client ping interval (ms), if not the default (see --nats-ping). */
  natsPing?: number;
}

const config = childConfig<NodeConfig>();
const masters = config.masters.map(
  (m) =>
    new Master({
      name: m.name,
      host: "127.0.0.1",
      port: 0,
      heartbeatInterval: config.interval,
      heartbeatTimeout: config.timeout,
      logger: silentLogger(),
      reflection: false,
      cluster: { servers: m.servers, jobStore: "memory", ...(config.natsPing ? { pingInterval: config.natsPing } : {}) },
    }),
);
await Promise.all(masters.map((m) => m.listen()));
while (masters.some((m) => m.clusterState !== "connected")) await sleep(20);
emit({ ev: "ready", masters: masters.map((m) => m.id) });

const byName = (name: unknown): Master => {
  const master = masters.find((m) => m.id === name) ?? masters[0];
  if (!master) throw new Error("no master");
  return master;
};

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

onCommands(async (command) => {
  try {
    switch (command.cmd) {
      case "fill":
        // {plan}: register this process's share of the fleet, paced; see fill.ts.
        return await fill(masters, command.plan as FillPlan);
      case "rehome":
        // {ids, windowMs}: the victim's slaves reconnect here, each at a random moment of the window, to a random master.
        return await rehome(masters, command.ids as number[], command.windowMs as number);
      case "views": {
        // Each master's view: masters known, and the fleet count its summary gives.
        const views = await Promise.all(
          masters.map(async (m) => {
            const summary = await m.fleetSummary({ timeout: (command.timeout as number) ?? 5_000 });
            return { id: m.id, masters: m.masters().length, connected: summary.connected, unanswered: summary.unanswered.length };
          }),
        );
        return { views };
      }
      case "requests":
        // {from, ids, timeout}: routed requests one after another from one master; latencies and failures.
        return await requestMany(byName(command.from), command.ids as number[], (command.timeout as number) ?? 5_000);
      case "listing":
        // {from, selector, pageSize, maxPages}: the fleet page by page from one master.
        return await listAll(byName(command.from), command.selector as string | undefined, command.pageSize as number);
      case "broadcast": {
        const master = byName(command.from);
        const started = performance.now();
        const result = await master.broadcastFleet("bench-broadcast", { timeout: 10_000 });
        return { ms: performance.now() - started, written: result.written, byMaster: result.byMaster, unanswered: result.unanswered };
      }
      case "ncstats":
        // Each master's NATS client counters (in/out messages and bytes since its connection opened).
        return {
          stats: masters.map((m) => ({
            id: m.id,
            held: m.size,
            ...masterInternals(m).natsStats(),
            ...masterInternals(m).clusterCounters(),
          })),
        };
      case "mem": {
        gc();
        gc();
        const { rss, heapUsed } = process.memoryUsage();
        return { rss, heapUsed, held: masters.reduce((n, m) => n + m.size, 0), masters: masters.length };
      }
      default:
        return { error: `unknown command ${command.cmd}` };
    }
  } catch (err) {
    return { error: (err as Error).stack ?? String(err) };
  }
});
