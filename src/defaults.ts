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
  /** Most slaves in one page of the fleet-wide listing, whatever the request asks (ListSlaves, Master.fleetPage). */
  maxListPageSize: 10_000,
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
  /**
   * A master refused the slave's credentials (UNAUTHENTICATED, PERMISSION_DENIED): wait about this long
   * (±25 % jitter) before trying again, since a wrong token does not fix itself in 100 ms; give up after
   * `maxAuthRefusals` refusals in a row (0: never), so `netsync slave` exits non-zero instead of looping.
   */
  authRetryInterval: 30_000,
  maxAuthRefusals: 5,
  /**
   * Commands a slave remembers by command_id, and for how long, so one a master sends again after a
   * failover runs once (netsync.proto, Custom.command_id). A repeat comes within a routed call's deadline
   * (seconds); 10 minutes and 10,000 entries (about 1 MB) leave a wide margin.
   */
  commandLog: { entries: 10_000, maxAgeMs: 10 * 60_000 },
  /** A master hinted when to retry (`netsync-retry-after-ms`): the slave waits the hint plus up to this fraction of it more, at random. */
  retryJitter: 0.5,
  /**
   * Admission of new Sync streams, a token bucket per master: `rate` streams a second, `burst` at once.
   * Measured: the bench's ramp registers 1,800 to 2,000 streams/s on one master, and is bound by its
   * load generators (the "floor" server that does nothing ramps at the same pace; results-2a45265.json:
   * 10,000 in 5.1 s, 15,000 in 8.4 s), so 2,000/s with a burst of 2,000 never refuses a ramp or a test.
   * It refuses the storm of a failover: 10,000 slaves that lost their master reach a survivor within
   * about a second; it takes 2,000 at once and tells the rest when to come back (spread at 2,000/s,
   * about 4 s for all) instead of letting their connects time out while it struggles. 0 turns it off.
   */
  admission: { rate: 2_000, burst: 2_000 },
  /**
   * Two live slaves with one id replace each other forever. Both a lone master (the fleet) and a
   * cluster (claims) damp it the same way: at most `limit` connections of an id within `window`, the
   * next while one is held starts a cool-down of `cooldown` during which the holder keeps its stream.
   */
  duplicateIds: { limit: 3, window: 10_000, cooldown: 30_000 },
  /** A master logs refused credentials at most once per peer host per interval, with a count; it remembers this many hosts. */
  refusalLogInterval: 60_000,
  refusalLogPeers: 1_024,
  /**
   * A slave that runs a program per command (execHandler, `netsync slave --exec`): longest run before its
   * process group is killed, programs at once, commands waiting for a run (one more is refused at once),
   * stdout bytes kept as the reply, stderr bytes (the last ones) kept for an error reply.
   */
  exec: { timeout: 60_000, concurrency: 4, queue: 64, maxOutputBytes: 64 * 1024, stderrTailBytes: 2 * 1024 },
} as const;

/** Every default of cluster mode, in one place. Durations are in milliseconds. */
export const CLUSTER_DEFAULTS = {
  clusterName: "netsync",
  /** Time between membership heartbeats; a member is dropped after `memberExpiryBeats` missed ones. */
  membershipInterval: 1_000,
  memberExpiryBeats: 3,
  /** How long a fleet-wide call (ListSlaves, Broadcast) waits for each master. */
  gatherTimeout: 1_000,
  /**
   * How long a fleet broadcast waits for the count of a master that acknowledged it within `gatherTimeout`
   * (a loaded master acks at once but may take seconds to write to its slaves); under the AdminClient's 5 s call deadline.
   */
  broadcastTimeout: 4_000,
  /** How long a routed send waits for the holding master's acknowledgement. */
  requestTimeout: 2_000,
  /** Extra time a routed request waits beyond the slave's own reply timeout, for the answer to travel back. */
  routeGrace: 250,
  /** Damping of one id claimed again and again: at most `claimLimit` claims within `claimWindow`... */
  claimLimit: DEFAULTS.duplicateIds.limit,
  claimWindow: DEFAULTS.duplicateIds.window,
  /** ...after which claims for it are held back this long (the same policy as a lone master's, DEFAULTS.duplicateIds). */
  claimCooldown: DEFAULTS.duplicateIds.cooldown,
  /** NATS client: wait between reconnect attempts (plus up to 100 ms jitter); attempts never stop. */
  reconnectTimeWait: 500,
  /** NATS client: ping the server this often; `maxPingOut` unanswered pings mark it stale (≈ 2 × 2 s). */
  pingInterval: 2_000,
  maxPingOut: 2,
  /** NATS refused the credentials: try again this often (nats.js itself gives up on an auth error). */
  authRetryInterval: 5_000,
  /**
   * Where a cluster keeps its jobs: "auto" uses JetStream when the NATS server has it (nats-server -js) and
   * this master's memory otherwise, saying so in the log; "jetstream" refuses jobs until the JetStream job
   * store is open; "memory" never uses JetStream.
   */
  jobStore: "auto",
  /**
   * Writes to the JetStream job store (results, kept commands, records) held in memory while NATS is
   * unreachable, replayed in order once it is back; past this, a command is not kept ("expired") and a
   * result is kept only in the asking master's memory.
   */
  jobStoreOutbox: 10_000,
  /**
   * How long starting a job waits for the JetStream job store to confirm its record. A job is accepted
   * only once its record is stored, so the death of the master that accepted it never loses it; while
   * NATS is away, run() waits this long for it to come back, then rejects with UNAVAILABLE (nothing sent).
   */
  jobRecordWait: 5_000,
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

/** Jobs (Master.run, AdminService.Run): their timeouts, pending deliveries and cache. Durations in ms. */
export const JOB_DEFAULTS = {
  /** How long each slave has to reply once a job's command is written to it. */
  timeout: DEFAULTS.requestTimeout,
  /**
   * Longest deliverWithin a job may ask for: a redelivered command runs once only while the slave still
   * remembers its command_id, and slaves keep ids for DEFAULTS.commandLog.maxAgeMs (10 minutes).
   */
  maxDeliverWithin: DEFAULTS.commandLog.maxAgeMs,
  /**
   * Commands kept for slaves that are not connected: per slave, and in all. 100,000 entries of a few
   * hundred bytes each (the data is shared with the job) is tens of MB at worst.
   */
  pending: { perSlave: 100, total: 100_000 },
  /**
   * Jobs kept for GetJob and ListJobs, and for how long after they start (running ones are always kept),
   * and the results they may hold in all: a result costs ~150 B of heap (bench:jobs), so 1,000,000 is
   * ~150 MB; past it the oldest finished jobs go first (1,000 jobs to 10,000 slaves would be 1.5 GB).
   */
  cache: { entries: 1_000, maxAgeMs: 60 * 60_000, results: 1_000_000 },
  /** How often pending slaves that a master is known to hold are tried again, in case a connect event was missed. */
  retryInterval: 2_000,
} as const;
