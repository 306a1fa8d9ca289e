import { ClusterNode } from "../../src/cluster/cluster-node.js";
import type { ClusterOptions } from "../../src/cluster/options.js";
import { silentLogger } from "../../src/logger.js";
import { waitFor } from "../support/wait.js";
import { FakeFleet } from "./fake-fleet.js";

/** Short intervals so a suite runs in seconds; each test may override. */
export const FAST: Partial<ClusterOptions> = {
  membershipInterval: 100,
  gatherTimeout: 500,
  requestTimeout: 1_000,
  routeGrace: 50,
  reconnectTimeWait: 100,
  pingInterval: 500,
  maxPingOut: 2,
  authRetryInterval: 300,
};

/** The nodes a test made; close them all in afterEach. */
export class Nodes {
  private readonly made: ClusterNode[] = [];

  /** A started node for master `id` with a fake local fleet. */
  add(servers: string[], id: string, options: Partial<ClusterOptions> = {}): { node: ClusterNode; fleet: FakeFleet } {
    const fleet = new FakeFleet(id);
    const node = new ClusterNode(fleet, { servers, logger: silentLogger(), ...FAST, ...options });
    fleet.node = node;
    this.made.push(node);
    node.start();
    return { node, fleet };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.made.splice(0).map((n) => n.close()));
  }
}

/** Whether every one of `members` (cluster nodes or masters) lists exactly `ids` as the masters of its cluster. */
export function listMasters(members: Array<{ masters(): Array<{ id: string }> }>, ids: string[]): boolean {
  const want = [...ids].sort().join(",");
  return members.every(
    (m) =>
      m
        .masters()
        .map((x) => x.id)
        .sort()
        .join(",") === want,
  );
}

/** Resolves once every node lists exactly `ids` as its masters. */
export function converged(nodes: ClusterNode[], ids: string[], timeoutMs = 3_000): Promise<void> {
  return waitFor(() => listMasters(nodes, ids), timeoutMs, `every node to see masters ${[...ids].sort().join(",")}`);
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
