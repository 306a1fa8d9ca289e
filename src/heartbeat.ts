/** Anything the scheduler watches: it only reads and writes `lastSeen`. */
export interface Watched {
  /** When the peer was last heard from, in ms of the scheduler's clock. */
  lastSeen: number;
}

/** What the scheduler drives; the master implements it. */
export interface HeartbeatHost<T extends Watched> {
  /** Time for a ping round: write Ping{seq} to every stream. */
  ping(seq: bigint, now: number): void;
  /** `target` has been silent past the timeout; it is no longer watched. */
  expire(target: T, silentMs: number): void;
  /** The scheduler woke `lagMs` late; no one is convicted for that time. */
  pause?(lagMs: number): void;
}

export interface HeartbeatOptions {
  /** Time between ping rounds, in ms. */
  interval: number;
  /** Silence after which a peer is expired, in ms. Must exceed `interval`. */
  timeout: number;
  /**
   * Shortest wait between two deadline checks, in ms, so a dense fleet does
   * not wake the scheduler once per peer. Default min(10, timeout / 10).
   */
  resolution?: number;
  /**
   * A wake-up this late means the process itself stalled (event-loop block,
   * GC, SIGSTOP). Default (timeout - interval) / 2: half the margin a healthy
   * peer has before it would look silent.
   */
  pauseThreshold?: number;
  /** Clock in ms; injectable for tests. Default performance.now. */
  now?: () => number;
}

/**
 * One timer for the whole fleet. It wakes at the next ping round or at the
 * earliest deadline, whichever comes first, so a silent peer is expired
 * within `resolution` of its deadline rather than up to an interval late.
 *
 * Watched peers sit in a Set ordered by lastSeen (seen() moves a peer to
 * the end), so the earliest deadline is always the first entry and a check
 * costs O(expired + 1), not a scan of the fleet.
 *
 * Like Cassandra after a local pause, the scheduler does not convict peers
 * for time it was not running: when it wakes later than `pauseThreshold`,
 * every deadline is counted from the moment it resumed, so pongs that
 * queued up during the stall get their chance to be read first.
 */
export class HeartbeatScheduler<T extends Watched> {
  readonly interval: number;
  readonly timeout: number;
  readonly resolution: number;
  readonly pauseThreshold: number;
  private readonly now: () => number;
  private readonly watched = new Set<T>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0n;
  private nextRoundAt = 0;
  private wakeAt = 0;
  /** Deadlines count from no earlier than this (the end of the last local pause). */
  private resumedAt = -Infinity;

  constructor(
    private readonly host: HeartbeatHost<T>,
    options: HeartbeatOptions,
  ) {
    if (!(options.interval > 0)) throw new RangeError("heartbeat interval must be > 0");
    if (!(options.timeout > options.interval)) {
      throw new RangeError(`heartbeat timeout (${options.timeout} ms) must be greater than the interval (${options.interval} ms)`);
    }
    this.interval = options.interval;
    this.timeout = options.timeout;
    this.resolution = options.resolution ?? Math.min(10, options.timeout / 10);
    this.pauseThreshold = options.pauseThreshold ?? (options.timeout - options.interval) / 2;
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.watched.size;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts ping rounds; the first one goes out after one interval. */
  start(): void {
    this.stop();
    const now = this.now();
    this.nextRoundAt = now + this.interval;
    this.arm(now);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Starts watching `target`, heard from now. */
  watch(target: T, now = this.now()): void {
    this.seen(target, now);
  }

  /** Records a sign of life from `target`. */
  seen(target: T, now = this.now()): void {
    target.lastSeen = now;
    // Re-inserting keeps the Set ordered by lastSeen.
    this.watched.delete(target);
    this.watched.add(target);
  }

  unwatch(target: T): void {
    this.watched.delete(target);
  }

  private arm(now: number): void {
    let at = this.nextRoundAt;
    const first = this.watched.values().next();
    if (!first.done) {
      const deadline = Math.max(first.value.lastSeen, this.resumedAt) + this.timeout;
      at = Math.min(at, Math.max(deadline, now + this.resolution));
    }
    this.wakeAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - now));
    // The owner (the master's server) keeps the process alive, not this timer.
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    const now = this.now();
    const lag = now - this.wakeAt;
    if (lag > this.pauseThreshold) {
      this.resumedAt = now;
      this.host.pause?.(lag);
    }
    if (now >= this.nextRoundAt) {
      this.seq++;
      // A stalled process sends one round on waking, not every round it missed.
      this.nextRoundAt = Math.max(this.nextRoundAt + this.interval, now + this.resolution);
      this.host.ping(this.seq, now);
    }
    this.expireDue(now);
    if (this.timer !== undefined) this.arm(this.now());
  };

  private expireDue(now: number): void {
    for (const target of this.watched) {
      if (Math.max(target.lastSeen, this.resumedAt) + this.timeout > now) break;
      this.watched.delete(target);
      this.host.expire(target, now - target.lastSeen);
    }
  }
}
