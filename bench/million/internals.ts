/**
 * What the bench reads of a Master that its API does not offer, reached with
 * casts the way a test would (nothing in src/ is changed for it): the local
 * fleet, to hand it synthetic streams through Fleet.accept(), and the
 * cluster node's NATS connection, for the client's message and byte counters.
 */
import type { Master } from "../../src/index.js";
import type { SyntheticSlave } from "./synthetic-slave.js";

interface NatsStats {
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
}

interface Internals {
  local: { accept(call: unknown): void };
  cluster?: { node: { connection?: { stats(): NatsStats } }; stats(): { disconnects: number; claimsPublished: number } };
}

export function masterInternals(master: Master) {
  const internals = master as unknown as Internals;
  return {
    /** Fleet.accept(): the gate, the registry, the heartbeat, the claim and route (cluster). */
    accept(call: SyntheticSlave): void {
      internals.local.accept(call);
    },
    /** The cluster's counters: NATS disconnects seen, claims published (src/cluster/stats.ts). */
    clusterCounters(): { disconnects: number; claimsPublished: number } {
      const stats = internals.cluster?.stats();
      return { disconnects: stats?.disconnects ?? 0, claimsPublished: stats?.claimsPublished ?? 0 };
    },
    /** The NATS client's counters since its connection opened (zeros without one). */
    natsStats(): NatsStats {
      return internals.cluster?.node.connection?.stats() ?? { inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0 };
    },
  };
}
