import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";

/** Anything the scheduler watches. */
export interface Watched {
  /** When the peer was last heard from, in ms of the scheduler's clock. */
  lastSeen: number;
  /** Written by the scheduler: its total excused pause time when the peer was last seen. */
  pauseAtSeen?: number;
}

/** What the scheduler drives; the master implements it. */
export interface HeartbeatHost<T extends Watched> {
  /**
   * Time for a ping round, or for one slice of it: write Ping{seq} to the
   * streams of `slice` (0 ≤ slice < slices). Every slice of a round has the
   * same seq. `slices` may change from one round to the next (a small fleet
   * gets fewer), so the host maps slice j to a fixed share of its peers,
   * e.g. partitions [j·S/slices, (j+1)·S/slices) of S = scheduler.slices.
   */
  ping(seq: bigint, now: number, slice: number, slices: number): void;
  /** `target` has been silent past the timeout; it is no longer watched. */
  expire(target: T, silentMs: number): void;
  /** The scheduler woke `lagMs` late; that time is not held against anyone. */
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
  /**
   * Most slices a round is spread over, one every interval / slices. Default:
   * one slice per 10 ms of interval, at most 100, and no slicing below 200 ms.
   */
  slices?: number;
  /**
   * Fewest peers per slice: a round has at most ceil(watched / minSliceSize)
   * slices, since every slice costs a wake-up whatever it holds. Default 0:
   * every round has `slices` slices.
   */
  minSliceSize?: number;
  /**
   * Most slices sent in one wake-up when several are due (the scheduler woke
   * late): the rest follow on the next turn of the event loop, after the I/O
   * that came in meanwhile, so a short lag is caught up on without one long
   * turn. Default 4. Once the oldest due slice is `interval / 10` late,
   * every due slice goes out at once, as without the bound: on a saturated
   * master a turn can last longer than 4 slices' worth of schedule, and a
   * bounded catch-up would then fall behind for good, stretching rounds past
   * the timeout (a bench at 10k under load evicted 7,271 live slaves so).
   */
  maxSlicesPerWake?: number;
  /**
   * How much later than scheduled a sliced round may end, in ms. A wake-up
   * late by no more than what is left of this allowance moves the rest of
   * the round with it, instead of sending the overdue slices together; only
   * lateness past it is caught up on. Default min(interval / 2,
   * (timeout - interval) / 4): on that account a peer's pings are at most
   * interval + (timeout - interval) / 4 apart, and a busy master still pings
   * at two thirds of its rate or more. 0: every late slice is caught up on.
   */
  maxStretch?: number;
  /** Most peers expired in one wake-up; the rest on the next turn of the event loop. Default 256. */
  maxExpiriesPerWake?: number;
  /** Clock in ms; injectable for tests. Default performance.now. */
  now?: () => number;
}

/** Spacing of round slices, and the most slices a round is cut into. */
const SLICE_MS = 10;
const MAX_SLICES = 100;
/** Shorter intervals are not sliced: their rounds are small in time already. */
const MIN_SLICED_INTERVAL_MS = 200;

/**
 * One timer for the whole fleet. It wakes at the next slice of a ping round
 * or at the earliest deadline, whichever comes first, so a silent peer is
 * expired within `resolution` of its deadline rather than up to an interval
 * late.
 *
 * Rounds are cut into slices spread over the interval (each peer is pinged
 * once per interval, in its own slice), so a large fleet's pongs do not all
 * come back in one burst that delays everyone's RTT and the next checks.
 * A small fleet gets fewer slices (at least minSliceSize peers each), since
 * every slice costs a wake-up whatever it holds.
 *
 * Watched peers sit in a Set ordered by when they were last seen (seen()
 * moves a peer to the end), so the earliest deadline is always the first
 * entry and a check costs O(expired + 1), not a scan of the fleet.
 *
 * Like Cassandra after a local pause, the scheduler does not convict peers
 * for time it was not running: when it wakes later than `pauseThreshold`,
 * the whole lag is excused, i.e. added to every deadline. Only the lag is
 * excused (not a fresh timeout for everyone), so a peer that really died is
 * still expired about one timeout of running time after its last message,
 * even on a master that keeps stalling under load.
 */
/**
 * The one check of a heartbeat's timings, for the scheduler, the master's
 * options and the CLI alike: INVALID_ARGUMENT unless 0 < interval < timeout.
 */
export function checkTimeouts(interval: number, timeout: number): void {
  if (!(interval > 0)) throw new NetSyncError(`heartbeat interval must be > 0, got ${interval} ms`, Code.INVALID_ARGUMENT);
  if (!(timeout > interval)) {
    throw new NetSyncError(
      `heartbeat timeout (${timeout} ms) must be greater than the heartbeat interval (${interval} ms)`,
      Code.INVALID_ARGUMENT,
    );
  }
}

export class HeartbeatScheduler<T extends Watched> {
  readonly interval: number;
  readonly timeout: number;
  readonly resolution: number;
  readonly pauseThreshold: number;
  readonly slices: number;
  readonly minSliceSize: number;
  readonly maxSlicesPerWake: number;
  readonly maxExpiriesPerWake: number;
  readonly maxStretch: number;
  private readonly now: () => number;
  private readonly watched = new Set<T>();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0n;
  /** The slice to send next, and when; slice k of a round is due at roundStart + k * interval / slices. */
  private slice = 0;
  private nextSliceAt = 0;
  private roundStart = 0;
  /** Slices in the current round (at most `slices`), fixed when the round starts. */
  private roundSlices = 1;
  /** How much of maxStretch the current round has used. */
  private stretched = 0;
  private wakeAt = 0;
  /** Total lag excused so far. */
  private pausedTotal = 0;

  constructor(
    private readonly host: HeartbeatHost<T>,
    options: HeartbeatOptions,
  ) {
    checkTimeouts(options.interval, options.timeout);
    this.interval = options.interval;
    this.timeout = options.timeout;
    this.resolution = options.resolution ?? Math.min(10, options.timeout / 10);
    this.pauseThreshold = options.pauseThreshold ?? (options.timeout - options.interval) / 2;
    const slices = options.slices ?? (options.interval < MIN_SLICED_INTERVAL_MS ? 1 : Math.floor(options.interval / SLICE_MS));
    this.slices = Math.max(1, Math.min(MAX_SLICES, Math.floor(slices)));
    this.minSliceSize = Math.max(0, options.minSliceSize ?? 0);
    this.maxSlicesPerWake = Math.max(1, Math.floor(options.maxSlicesPerWake ?? 4));
    this.maxExpiriesPerWake = Math.max(1, Math.floor(options.maxExpiriesPerWake ?? 256));
    this.maxStretch = Math.max(0, options.maxStretch ?? Math.min(this.interval / 2, (this.timeout - this.interval) / 4));
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.watched.size;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts ping rounds; the first one begins after one interval. */
  start(): void {
    this.stop();
    const now = this.now();
    this.slice = 0;
    this.nextSliceAt = now + this.interval;
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
    target.pauseAtSeen = this.pausedTotal;
    // Re-inserting keeps the Set ordered by last seen.
    this.watched.delete(target);
    this.watched.add(target);
  }

  unwatch(target: T): void {
    this.watched.delete(target);
  }

  /** When `target` expires: last seen + timeout + whatever lag was excused since. */
  private deadline(target: T): number {
    return target.lastSeen + this.timeout + (this.pausedTotal - (target.pauseAtSeen ?? 0));
  }

  /** `backlog`: work was left due (a bounded wake-up); come back on the next turn of the event loop. */
  private arm(now: number, backlog = false): void {
    let at = this.nextSliceAt;
    const first = this.watched.values().next();
    if (!first.done) at = Math.min(at, Math.max(this.deadline(first.value), now + this.resolution));
    if (backlog) at = now;
    this.wakeAt = at;
    this.timer = setTimeout(this.onTimer, Math.max(0, at - now));
    // The owner (the master's server) keeps the process alive, not this timer.
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    const now = this.now();
    const lag = now - this.wakeAt;
    if (lag > this.pauseThreshold) {
      this.pausedTotal += lag;
      this.host.pause?.(lag);
      // An excused stall moves the ping schedule too, so waking from one does not burst the slices it covered.
      this.roundStart += lag;
      this.nextSliceAt += lag;
    }
    const slicesLeft = this.pingDue(now);
    const expiriesLeft = this.expireDue(now);
    if (this.timer !== undefined) this.arm(this.now(), slicesLeft || expiriesLeft);
  };

  /**
   * Sends every slice of the current round that is due. A late wake-up
   * first moves the rest of the round later, up to maxStretch per round;
   * past that, a master that keeps waking late (a busy event loop, each lag
   * below pauseThreshold) catches up within the round instead of stretching
   * it further: a round stretched past the timeout would leave the peers of
   * its last slices unpinged, and they would be expired while alive. At
   * most maxSlicesPerWake go out per wake-up while the backlog is younger
   * than interval / 10 (else all that are due); returns true if more are
   * due (the next wake-up is then at once).
   */
  private pingDue(now: number): boolean {
    for (let sent = 0; now >= this.nextSliceAt; sent++) {
      if (sent >= this.maxSlicesPerWake && now - this.nextSliceAt < this.interval / 10) return true;
      if (this.slice === 0) {
        this.seq++;
        this.roundStart = this.nextSliceAt;
        this.roundSlices =
          this.minSliceSize > 0 ? Math.max(1, Math.min(this.slices, Math.ceil(this.watched.size / this.minSliceSize))) : this.slices;
        this.stretched = 0;
      }
      const slice = this.slice;
      this.slice = (slice + 1) % this.roundSlices;
      this.host.ping(this.seq, now, slice, this.roundSlices);
      if (this.slice !== 0) {
        this.nextSliceAt = this.roundStart + (this.slice * this.interval) / this.roundSlices;
        // The next slice is overdue already: rather than send it now, together with this one, move the
        // rest of the round later, while the round's allowance lasts. Overdue slices sent together bunch
        // their Pongs, and on a busy master the bunching is what makes the next wake-up late again (bench,
        // 10k slaves on a loaded machine: echo RTT p99 over 50 ms in 12 of 17 windows when every late
        // slice was caught up on, in 4 of 14 with this allowance).
        if (this.nextSliceAt <= now) {
          const shift = Math.min(now + this.interval / this.roundSlices - this.nextSliceAt, this.maxStretch - this.stretched);
          if (shift > 0) {
            this.stretched += shift;
            this.roundStart += shift;
            this.nextSliceAt += shift;
          }
        }
      } else {
        // A round that ended late starts the next one after a short breath, not several rounds at once.
        this.nextSliceAt = Math.max(this.roundStart + this.interval, now + this.resolution);
        return false;
      }
    }
    return false;
  }

  /** Expires the peers past their deadline, at most maxExpiriesPerWake; returns true if more are due. */
  private expireDue(now: number): boolean {
    let expired = 0;
    for (const target of this.watched) {
      if (this.deadline(target) > now) break;
      if (expired++ === this.maxExpiriesPerWake) return true;
      this.watched.delete(target);
      this.host.expire(target, now - target.lastSeen);
    }
    return false;
  }
}
