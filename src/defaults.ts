/**
 * Every default of NetSync, declared once. Durations are in milliseconds.
 * Option interfaces say these values in their comments; resolvers read them
 * from here, and nothing else spells a default of its own.
 */

export const DEFAULTS = {
  host: "127.0.0.1",
  port: 50051,
  heartbeatInterval: 5_000,
  heartbeatTimeout: 10_000,
  /**
   * Fewest slaves per round slice. A round is spread over up to 100 slices
   * (one every 10 ms of the interval), but each slice costs a wake-up and a
   * flush whatever it holds: at 1,000 slaves, 100 slices of 10 cost 1.37x
   * the CPU of one burst, 10 slices of 100 cost 0.94x (bench, same run).
   */
  heartbeatSliceSize: 100,
  masterTimeout: 15_000,
  /** Largest message either side accepts (gRPC's own default is 4 MiB). */
  maxMessageBytes: 1024 * 1024,
  /** Bytes the master may hold queued for one slave that does not read. */
  maxPendingBytes: 1024 * 1024,
  shutdownGrace: 5_000,
  historySize: 1_000,
  /** Slaves in one AdminService.ListSlaves page when the request does not say (fewer if they near the message limit). */
  listPageSize: 1_000,
  maxMessagesPerSecond: 1_000,
  /**
   * Events queued for one AdminService.Watch client past what grpc-js and
   * HTTP/2 flow control hold; more and it is cut (RESOURCE_EXHAUSTED), so a
   * watcher that stops reading costs the master a bounded amount of memory.
   */
  watchBuffer: 1_000,
  /** How long a request (or AdminService.Send with wait_reply) waits for the slave's Reply. */
  requestTimeout: 10_000,
  /** Reconnect backoff of a slave: first cap, growth per attempt, largest cap (full jitter below the cap). */
  backoff: { initial: 100, factor: 2, max: 10_000 },
} as const;

/** Every default of cluster mode, in one place. Durations are in milliseconds. */
export const CLUSTER_DEFAULTS = {
  clusterName: "netsync",
  /** Time between membership heartbeats; a member is dropped after `memberExpiryBeats` missed ones. */
  membershipInterval: 1_000,
  memberExpiryBeats: 3,
  /** How long a fleet-wide call (ListSlaves, Broadcast) waits for each master. */
  gatherTimeout: 1_000,
  /** How long a routed send waits for the holding master's acknowledgement. */
  requestTimeout: 2_000,
  /** Extra time a routed request waits beyond the slave's own reply timeout, for the answer to travel back. */
  routeGrace: 250,
  /** Damping of one id claimed again and again: at most `claimLimit` claims within `claimWindow`... */
  claimLimit: 3,
  claimWindow: 10_000,
  /** ...after which claims for it are held back this long. */
  claimCooldown: 30_000,
  /** NATS client: wait between reconnect attempts (plus up to 100 ms jitter); attempts never stop. */
  reconnectTimeWait: 500,
  /** NATS client: ping the server this often; `maxPingOut` unanswered pings mark it stale (≈ 2 × 2 s). */
  pingInterval: 2_000,
  maxPingOut: 2,
  /** NATS refused the credentials: try again this often (nats.js itself gives up on an auth error). */
  authRetryInterval: 5_000,
} as const;

/** The dashboard's own defaults (its host and port come from the master's options). */
export const DASHBOARD_DEFAULTS = {
  /** Live viewers (SSE streams) one dashboard serves at once; more get 503. */
  maxViewers: 32,
  /** Time between the feed's pushes to its viewers; grows by 1x per 5,000 slaves held. */
  batchMs: 1_000,
  /** Slaves in one /api/slaves page when the query does not say, and the most it may ask for. */
  pageSize: 500,
  maxPageSize: 1_000,
} as const;
