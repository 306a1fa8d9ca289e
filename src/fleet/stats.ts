/**
 * What the fleet counts and reports, as plain numbers and a narrow observer:
 * the metrics adapter reads the totals when scraped and receives the
 * latencies, so the heartbeat path pays nothing for metrics that are off.
 */

/** Totals a master keeps as plain numbers; metrics read them at scrape time. */
export interface MasterStats {
  connected: number;
  connectionsTotal: number;
  pingsSent: number;
  pongsReceived: number;
  commandsSent: number;
  evictions: Record<string, number>;
  disconnects: Record<string, number>;
  /** New streams refused before they were registered: `rate` (arriving faster than admitted), `duplicate_id` (id cooling down). */
  refused: Record<string, number>;
}

/** Observations the master reports as they happen (only when metrics are on). */
export interface MasterObserver {
  rtt(ms: number): void;
  replyLatency(ms: number): void;
}
