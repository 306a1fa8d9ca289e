/**
 * Writes to JetStream that must not be lost while NATS is away: each is
 * tried at once when nothing waits before it, else queued; the queue is
 * replayed in order once the store is reachable again (so a job's record
 * still precedes its kept commands, and a result precedes the removal of the
 * command it answers). Bounded: past `limit` queued writes, a new one is
 * refused (its caller decides what that means).
 *
 * A write is a function of the current session that settles its own caller
 * and throws only when it should be tried again later (the connection, or
 * JetStream not answering); anything else it must handle itself.
 */
export interface OutboxWrite<S> {
  /** What it is, for the log. */
  what: string;
  run(session: S): Promise<void>;
  /** It was queued (at once, or after a failed try): its caller need not wait. */
  queued?(): void;
  /** It was refused: the outbox is full, or closed. */
  refused(why: string): void;
}

/** How long after a failed replay it is tried again, while the connection is up. */
const RETRY_MS = 500;

export class Outbox<S> {
  private readonly queue: OutboxWrite<S>[] = [];
  private pumping = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly limit: number,
    /** The session to write with, if the store is reachable now; undefined queues the write. */
    private readonly session: () => S | undefined,
    /** Opens a session (after a reconnect); rejects when it cannot. */
    private readonly open: () => Promise<S>,
    private readonly transient: (err: unknown) => boolean,
    private readonly log: { debug(message: string): void; warn(message: string): void },
  ) {}

  /** Writes waiting for the store. */
  get size(): number {
    return this.queue.length;
  }

  write(write: OutboxWrite<S>): void {
    if (this.closed) {
      write.refused("the job store is closed");
      return;
    }
    const session = this.queue.length === 0 && !this.pumping ? this.session() : undefined;
    if (!session) {
      this.enqueue(write);
      return;
    }
    write.run(session).catch((err: unknown) => {
      if (!this.transient(err)) {
        this.log.warn(`job store: ${write.what} failed: ${(err as Error).message}`);
        return;
      }
      this.log.debug(`job store: ${write.what} will be tried again: ${(err as Error).message}`);
      this.enqueue(write);
      this.schedule();
    });
  }

  /** Replays what waits, in order, until it is empty or a write fails again. */
  async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const session = this.session() ?? (await this.open());
        const write = this.queue[0] as OutboxWrite<S>;
        try {
          await write.run(session);
        } catch (err) {
          if (this.transient(err)) throw err;
          this.log.warn(`job store: ${write.what} failed: ${(err as Error).message}`);
        }
        this.queue.shift();
      }
    } catch (err) {
      this.log.debug(`job store: ${this.queue.length} writes wait: ${(err as Error).message}`);
      this.schedule();
    } finally {
      this.pumping = false;
    }
  }

  /** Tries for at most `ms` to write what waits; refuses the rest. */
  async close(ms: number): Promise<number> {
    if (this.queue.length > 0 && this.session()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.pump(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
      clearTimeout(timer);
    }
    this.closed = true;
    clearTimeout(this.timer);
    const left = this.queue.splice(0);
    for (const write of left) write.refused("the job store closed before NATS came back");
    return left.length;
  }

  private enqueue(write: OutboxWrite<S>): void {
    if (this.queue.length >= this.limit) {
      write.refused(`NATS is unreachable and ${this.limit} writes to the job store already wait for it`);
      return;
    }
    this.queue.push(write);
    write.queued?.();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.session()) void this.pump();
    }, RETRY_MS);
    this.timer.unref();
  }
}
