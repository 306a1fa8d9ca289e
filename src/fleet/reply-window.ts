/**
 * A bound on what a master's fan-outs that ask for Replies may get back at
 * once. The pacer spreads a job's writes over turns, but not the Replies: a
 * slave answers in a millisecond or two, and libuv runs every socket that is
 * ready in one poll phase (1,024 per epoll_wait, up to 48 rounds), so when
 * the master is held up (GC, another process on its core) the Replies to a
 * few thousand writes are read and handled in one turn of the loop, each
 * through HTTP/2, grpc-js and the job (50–80 µs at 10,000 slaves on this
 * machine): turns of 150–300 ms with the heartbeat's timers waiting behind.
 *
 * So a request counts against the window from its write until its Reply, its
 * failure, or `settleMs` after its write, whichever comes first; a fan-out
 * that finds `limit` requests counted waits (`ready()`) until half of them
 * are gone. A Reply that has not come within `settleMs` will not come in
 * the same burst as the others (its slave is slow: a long handler, a
 * stalled process), so it stops holding the window: slow or mute slaves cost
 * a fan-out at most `settleMs` per `limit` of them, never their timeout.
 *
 * One window per master, shared by every job and cluster batch it writes,
 * since they all come back through the same loop.
 */
export interface ReplyWindowOptions {
  /** Most requests counted at once. */
  limit: number;
  /** How long after its write a request stops counting, answered or not (ms). */
  settleMs: number;
}

export class ReplyWindow {
  /** Write times (performance.now()) of tickets `base`, `base + 1`, …; a settled ticket's time is negated. */
  private readonly at: number[] = [];
  /** The ticket `at[0]` stands for. */
  private base = 0;
  /** Oldest ticket still counted unless settled: those before it aged out. */
  private head = 0;
  /** Tickets from `head` on not settled. */
  private counted = 0;
  private waiting: { promise: Promise<void>; resolve: () => void } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ReplyWindowOptions) {}

  /** Requests counted against the window now. */
  get size(): number {
    this.age(performance.now());
    return this.counted;
  }

  /** Counts a request written at `now`; its ticket goes back with `settle()`. */
  take(now: number): number {
    this.at.push(now);
    this.counted++;
    return this.base + this.at.length - 1;
  }

  /** The request of `ticket` got its Reply or failed (once is enough: a second call does nothing). */
  settle(ticket: number): void {
    const i = ticket - this.base;
    const sentAt = this.at[i];
    if (sentAt === undefined || sentAt < 0) return;
    this.at[i] = -sentAt;
    if (ticket >= this.head) {
      this.counted--;
      if (this.waiting && this.counted <= this.options.limit / 2) this.wake();
    }
  }

  /** Undefined while the window has room; otherwise a promise that resolves once half of it is free (or on close()). */
  ready(): Promise<void> | undefined {
    if (this.closed) return undefined;
    const now = performance.now();
    this.age(now);
    if (this.counted < this.options.limit) return undefined;
    if (!this.waiting) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      this.waiting = { promise, resolve };
      this.armAging(now);
    }
    return this.waiting.promise;
  }

  /** Stops the aging timer and lets every waiting fan-out go on (to find its master closed). */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** Stops counting tickets written `settleMs` ago or earlier, and forgets the settled ones behind them. */
  private age(now: number): void {
    const horizon = now - this.options.settleMs;
    const { at } = this;
    let i = this.head - this.base;
    while (i < at.length) {
      const sentAt = at[i] as number;
      if (sentAt >= 0) {
        if (sentAt > horizon) break;
        this.counted--;
      } else if (-sentAt > horizon) break;
      i++;
    }
    this.head = this.base + i;
    // Compact once the aged-out part is large and most of the array: amortised O(1) per ticket.
    if (i >= 1024 && i * 2 >= at.length) {
      at.splice(0, i);
      this.base += i;
    }
  }

  /** Wakes the waiters when the oldest counted ticket ages out, if Replies have not freed the window first. */
  private armAging(now: number): void {
    clearTimeout(this.timer);
    const oldest = this.at[this.head - this.base];
    if (oldest === undefined) return;
    const delay = Math.max(1, Math.abs(oldest) + this.options.settleMs - now);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const at = performance.now();
      this.age(at);
      if (this.counted < this.options.limit) this.wake();
      else this.armAging(at);
    }, delay);
  }

  private wake(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve();
  }
}
