/** Totals of one cluster node as plain numbers; the master's metrics read them at scrape time. */
export interface ClusterStats {
  /** 1 while connected to NATS, else 0. */
  connected: number;
  /** Masters known alive, this one included. */
  mastersSeen: number;
  /** Sends and requests routed to another master, by outcome ("ok", "not_found", "timeout", "unavailable", "error"). */
  routed: Record<string, number>;
  /** Routed sends and requests asked again because the master that answered had just released the slave's route. */
  rerouted: number;
  /** Sends of routed calls by where they went: to the holder the newest claim names, or to the slave's subject (no live holder known). */
  routedVia: { holder: number; discovery: number };
  /** Routed calls sent again because a newer claim of the slave arrived while they waited (the slave moved). */
  fenced: number;
  /** Routed calls this master refused because they reached it after their deadline (it was stalled). */
  late: number;
  /** Routed sends and requests served here for another master (a batch counts each of its slaves). */
  served: number;
  /** Jobs' batches sent to holding masters: one message carrying one command for many of that master's slaves. */
  batches: number;
  /** Claims published by this node. */
  claimsPublished: number;
  /** Claims this node heard (its own echoed back, other holders' of its ids, and of ids it waits on). */
  claimsHeard: number;
  /** Local connections ended because a newer one exists elsewhere. */
  replacements: number;
  /** Claims held back by damping. */
  claimsDamped: number;
  /** Times the NATS connection was lost. */
  disconnects: number;
}

/** Observations reported as they happen (only when an observer is given). */
export interface ClusterObserver {
  /** Time of a routed send or request, in ms, with its outcome. */
  routedLatency(ms: number, outcome: string): void;
}

export function emptyStats(): ClusterStats {
  return {
    connected: 0,
    mastersSeen: 1,
    routed: { ok: 0, not_found: 0, timeout: 0, unavailable: 0, error: 0 },
    rerouted: 0,
    routedVia: { holder: 0, discovery: 0 },
    fenced: 0,
    late: 0,
    served: 0,
    batches: 0,
    claimsPublished: 0,
    claimsHeard: 0,
    replacements: 0,
    claimsDamped: 0,
    disconnects: 0,
  };
}
