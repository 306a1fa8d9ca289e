/**
 * The processes of one pass: K masters named m0…m{K−1}, master g on NATS
 * server g mod 3 (given all three URLs, its own first), `perProcess` of them
 * to a process, and the victim (the last master) alone in a process of its
 * own so it can be SIGKILLed for real.
 */
import { fileURLToPath } from "node:url";
import { Child } from "../lib/common.js";
import type { NatsCluster } from "./nats-cluster.js";
import type { NodeConfig } from "./node.js";

const NODE_SCRIPT = fileURLToPath(new URL("./node.ts", import.meta.url));

export interface Proc {
  child: Child;
  /** Global indexes of its masters. */
  indexes: number[];
  victim: boolean;
}

export interface TopologyOptions {
  k: number;
  perProcess: number;
  interval: number;
  timeout: number;
  heapMb: number;
  natsPing?: number;
}

export const masterName = (g: number): string => `m${g}`;

export function spawnMasters(nats: NatsCluster, o: TopologyOptions): Proc[] {
  const victim = o.k - 1;
  const groups: number[][] = [];
  for (let g = 0; g < victim; g++) {
    if (g % o.perProcess === 0) groups.push([]);
    groups[groups.length - 1]!.push(g);
  }
  groups.push([victim]);
  return groups.map((indexes, p) => {
    const config: NodeConfig = {
      masters: indexes.map((g) => ({ name: masterName(g), servers: nats.serversFor(g) })),
      interval: o.interval,
      timeout: o.timeout,
      ...(o.natsPing ? { natsPing: o.natsPing } : {}),
    };
    const isVictim = indexes[0] === victim;
    const child = new Child(isVictim ? "victim" : `node${p}`, NODE_SCRIPT, config as unknown as Record<string, unknown>, [
      "--expose-gc",
      `--max-old-space-size=${o.heapMb}`,
    ]);
    return { child, indexes, victim: isVictim };
  });
}
