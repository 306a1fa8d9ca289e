/**
 * One NetSync master of the cluster benchmark, in its own process: the real
 * Master with a silent logger, reflection off, and (unless `natsUrl` is
 * absent: the single-master baseline) `cluster: { servers: [natsUrl] }`.
 *
 * Protocol (JSON lines): prints {"ev":"ready","port"}; answers
 * - "stats": slaves held, evictions and other losses, CPU and RSS, cluster state;
 * - "request" {target, count, gapMs}: `count` sequential routeRequest()s to
 *   one slave (local or on another master), their latencies;
 * - "fleet" {times}: master.fleet() `times` times, its durations and a check
 *   of the last view against the expected ids (count, duplicates, holders);
 * - "broadcast": broadcastFleet() of "b:<send time>", counts by master;
 * - "admin-list": AdminService.ListSlaves through an AdminClient on this
 *   master (what `netsync slaves` does): its time, or its error;
 * - "jobs" {count, gapMs, timeout} and "loop" (bench:jobs, bench/jobs/serve.ts):
 *   `master.run("q", { timeout })` to every slave in reach, one after another,
 *   each timed to its last result; the event loop watched meanwhile.
 */
import { AdminClient } from "../../src/admin.js";
import { Master, silentLogger } from "../../src/index.js";
import { jobCommand } from "../jobs/serve.js";
import { childConfig, emit, hrNow, onCommands, round, usage } from "../lib/common.js";

export interface ClusterMasterConfig {
  name: string;
  host: string;
  interval: number;
  timeout: number;
  /** The nats-server URL; absent for the single-master baseline. */
  natsUrl?: string;
}

const config = childConfig<ClusterMasterConfig>();
const master = new Master({
  name: config.name,
  host: config.host,
  port: 0,
  heartbeatInterval: config.interval,
  heartbeatTimeout: config.timeout,
  logger: silentLogger(),
  reflection: false,
  ...(config.natsUrl ? { cluster: { servers: [config.natsUrl] } } : {}),
});

let evicted = 0;
let stalled = 0;
const lostBy = new Map<string, number>();
master.on("slave:evicted", () => evicted++);
master.on("slave:disconnected", ({ reason }) => lostBy.set(reason, (lostBy.get(reason) ?? 0) + 1));
// The master's own pause detector (no evictions are made for a stall it saw).
master.on("stalled", () => stalled++);

const port = await master.listen();
emit({ ev: "ready", port });

/** One job to every slave in reach (bench:jobs): its time to the last result is taken around this call. */
async function oneJob(timeout: number) {
  const started = performance.now();
  const job = await master.run("q", { timeout });
  const resolveMs = round(performance.now() - started, 2);
  const s = await job.done;
  const others = { error: s.error, timeout: s.timeout, notConnected: s.notConnected, expired: s.expired };
  return { replies: s.ok, resolveMs, others: Object.fromEntries(Object.entries(others).filter(([, v]) => v > 0)) };
}

onCommands(async (command) => {
  const jobs = jobCommand(command, () => oneJob(Number(command.timeout ?? 10_000)));
  if (jobs) return jobs;
  switch (command.cmd) {
    case "stats":
      return {
        size: master.size,
        evicted,
        stalled,
        lost: Object.fromEntries(lostBy),
        heapMB: round(process.memoryUsage().heapUsed / 2 ** 20, 1),
        clusterState: master.clusterState,
        masters: master.masters().map((m) => m.id),
        ...usage(),
      };
    case "request": {
      const target = String(command.target);
      const count = Number(command.count ?? 100);
      const gapMs = Number(command.gapMs ?? 5);
      const samples: number[] = [];
      const errors: Record<string, number> = {};
      const holders = new Set<string>();
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        try {
          const { masterId } = await master.routeRequest(target, `q${i}`, { timeout: 5_000 });
          samples.push(performance.now() - started);
          holders.add(masterId);
        } catch (err) {
          const key = (err as Error).message.slice(0, 80);
          errors[key] = (errors[key] ?? 0) + 1;
        }
        if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      }
      return { samples: samples.map((v) => round(v)), errors, holders: [...holders] };
    }
    case "fleet": {
      const times = Number(command.times ?? 3);
      const durations: number[] = [];
      let view: Awaited<ReturnType<Master["fleet"]>> | undefined;
      for (let i = 0; i < times; i++) {
        const started = performance.now();
        view = await master.fleet({ timeout: Number(command.timeout ?? 5_000) });
        durations.push(performance.now() - started);
      }
      const ids = new Set(view!.slaves.map((s) => s.id));
      const byMaster: Record<string, number> = {};
      for (const slave of view!.slaves) byMaster[slave.masterId] = (byMaster[slave.masterId] ?? 0) + 1;
      return {
        durations: durations.map((v) => round(v, 1)),
        slaves: view!.slaves.length,
        distinct: ids.size,
        byMaster,
        masters: view!.masters.map((m) => m.id),
        unanswered: view!.unanswered,
        heapMB: round(process.memoryUsage().heapUsed / 2 ** 20, 1),
      };
    }
    case "admin-list": {
      const client = new AdminClient(`127.0.0.1:${port}`);
      const started = performance.now();
      try {
        const response = await client.listSlaves();
        return { ms: round(performance.now() - started, 1), slaves: response.slaves.length, unanswered: response.unansweredMasters };
      } catch (err) {
        return { ms: round(performance.now() - started, 1), failed: (err as Error).message.slice(0, 200) };
      } finally {
        client.close();
      }
    }
    case "broadcast": {
      const sentAt = hrNow();
      const result = await master.broadcastFleet(`b:${sentAt}`);
      return { sentAt, callMs: round(hrNow() - sentAt), written: result.written, byMaster: result.byMaster, unanswered: result.unanswered };
    }
    default:
      return { error: `unknown command ${command.cmd}` };
  }
});

process.on("SIGTERM", () => {
  void master.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2_000).unref();
});
