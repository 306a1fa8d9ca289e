import type { Master } from "../../src/master.js";
import type { MasterClusterOptions, MasterOptions } from "../../src/options.js";
import type { Slave } from "../../src/slave/slave.js";
import { startMaster, startSlave, waitFor } from "../helpers.js";
import { listMasters, percentile } from "./helpers.js";

/** Cluster timings of a test: a membership beat every 100 ms (expiry 300 ms), short gathers and NATS pings. */
export const FAST_CLUSTER: Omit<MasterClusterOptions, "servers"> = {
  membershipInterval: 100,
  gatherTimeout: 300,
  requestTimeout: 1_000,
  routeGrace: 50,
  reconnectTimeWait: 100,
  pingInterval: 500,
  maxPingOut: 2,
  authRetryInterval: 300,
};

/** Slaves are pinged every 100 ms and evicted after 1 s: an outage of NATS must not cost one eviction. */
export const MASTER_TIMINGS: MasterOptions = { heartbeatInterval: 100, heartbeatTimeout: 1_000 };

/** A listening master named `name` in the cluster on `servers`, closed by cleanup(). */
export function clusterMaster(name: string, servers: string[], cluster: Partial<MasterClusterOptions> = {}, opts: MasterOptions = {}) {
  return startMaster({ ...MASTER_TIMINGS, name, cluster: { servers, ...FAST_CLUSTER, ...cluster }, ...opts });
}

/** Resolves once every master lists exactly `ids` as the masters of its cluster; returns the time taken. */
export async function mastersConverged(masters: Master[], ids: string[], timeoutMs = 3_000): Promise<number> {
  const started = performance.now();
  await waitFor(
    () => listMasters(masters, ids),
    timeoutMs,
    () => `every master to list ${[...ids].sort().join(",")}: ${masters.map((m) => `${m.id}→${m.masters().map((x) => x.id)}`).join("; ")}`,
  );
  return performance.now() - started;
}

/** A slave on `master` answering every request with "echo:<data>", routable cluster-wide when this resolves. */
export async function echoSlave(master: Master, id: string, labels: Record<string, string> = {}): Promise<Slave> {
  const slave = await startSlave(master.address, { id, labels, onCommand: (c) => `echo:${c.data}` });
  await waitFor(() => master.has(id), 2_000, `${id} registered on ${master.id}`);
  await master.clusterFlush();
  return slave;
}

/** "id@master" of every slave in a fleet view, sorted. */
export function placement(slaves: { id: string; masterId: string }[]): string[] {
  return slaves.map((s) => `${s.id}@${s.masterId}`).sort();
}

/** p50 and p99 of `n` sequential runs of `fn`, in ms. */
export async function timings(n: number, fn: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** A metric of the master serving /metrics on `port`, summed over its labels; NaN when it has no such metric. */
export async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let total = Number.NaN;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm")))
    total = (Number.isNaN(total) ? 0 : total) + Number(match[1]);
  return total;
}
