import type { ServerResponse } from "node:http";
import { DASHBOARD_DEFAULTS, DEFAULTS } from "../defaults.js";
import type { ClosedSlaveInfo, SlaveEvent, SlaveInfo } from "../model.js";
import type { DashboardMaster } from "./port.js";

/** How long fleet events (connects, evictions) are coalesced before they are pushed. */
const EVENT_COALESCE_MS = 100;
/** Fleet events in one push at most; the rest are counted, not listed (a mass disconnect is 10,000 of them). */
const MAX_EVENTS_PER_PUSH = 100;
/** Recently closed slaves in each tick. */
const CLOSED_IN_TICK = 25;
/** The window of the "evictions in the last 5 minutes" figure. */
const EVICTION_WINDOW_MS = 5 * 60_000;
/**
 * Slaves per batch interval: a larger fleet is batched proportionally less
 * often (10,000 slaves: one snapshot every 2 s), since each batch costs a
 * snapshot of every slave and the page's fetch of its table right after.
 * At one batch a second, one viewer of 10,000 slaves cost the master +5 %
 * CPU (bench:dashboard, median of 4 pairs); this keeps it near half that.
 */
const SLAVES_PER_BATCH = 5_000;

/** One connect, disconnect or eviction, as the page shows it. */
export interface FeedEvent {
  at: number;
  kind: "connected" | "evicted" | "disconnected";
  id: string;
  peer: string;
  reason: string;
  details: string;
}

export interface ClosedJson {
  id: string;
  peer: string;
  labels: Readonly<Record<string, string>>;
  closedAt: number;
  reason: string;
  details: string;
}

/** The fleet summary pushed on every tick. */
export interface Summary {
  master: string;
  now: number;
  connected: number;
  /** Evictions in the last five minutes, as far as the closed history reaches. */
  evictions5m: number;
  /** True when the closed history is full and older than five minutes is not covered: the figure is a lower bound. */
  evictionsTruncated: boolean;
  rttP50: number | null;
  rttP99: number | null;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  actions: boolean;
  closed: ClosedJson[];
}

/** Nearest-rank percentile of an ascending-sorted array. */
function percentile(sorted: Float64Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const closedJson = (closed: ClosedSlaveInfo): ClosedJson => ({
  id: closed.slave.id,
  peer: closed.slave.peer,
  labels: closed.slave.labels,
  closedAt: closed.closedAt.getTime(),
  reason: closed.reason,
  details: closed.details,
});

/**
 * Server-Sent Events to the dashboard's viewers, batched. It costs nothing
 * while nobody watches: the master's event listeners and the batch timer
 * exist only from the first viewer's arrival to the last one's departure.
 * Per-pong state is never touched: each tick reads one registry snapshot,
 * which also serves the page's table fetch that follows it.
 */
export class FleetFeed {
  private readonly viewers = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private eventTimer: NodeJS.Timeout | undefined;
  private pending: FeedEvent[] = [];
  private dropped = 0;
  private cached: { at: number; slaves: SlaveInfo[]; interval: number } | undefined;
  private readonly listeners = {
    connected: (event: SlaveEvent) => this.queue("connected", event),
    evicted: (event: SlaveEvent) => this.queue("evicted", event),
    disconnected: (event: SlaveEvent) => this.queue("disconnected", event),
  };

  constructor(
    private readonly master: DashboardMaster,
    private readonly options: { actions: boolean; batchMs?: number; maxViewers?: number; historySize?: number },
  ) {}

  get viewerCount(): number {
    return this.viewers.size;
  }

  /** Whether anything runs on the feed's behalf (for tests: nothing should while nobody watches). */
  get active(): boolean {
    return this.timer !== undefined;
  }

  /** All connected slaves, as one snapshot shared by the tick and the fetches right after it. */
  snapshot(): SlaveInfo[] {
    const now = performance.now();
    // Reused by the page's fetch right after a tick, and until shortly before the next one.
    if (this.cached && now - this.cached.at < 0.9 * this.cached.interval) return this.cached.slaves;
    const slaves = this.master.slaves();
    // Only cached while someone watches: an idle dashboard keeps no copy of the fleet.
    this.cached = this.timer ? { at: now, slaves, interval: this.interval } : undefined;
    return slaves;
  }

  /** Takes an SSE response; false when there are too many viewers already. */
  add(res: ServerResponse): boolean {
    if (this.viewers.size >= (this.options.maxViewers ?? DASHBOARD_DEFAULTS.maxViewers)) return false;
    res.write("retry: 2000\n\n");
    this.viewers.add(res);
    res.on("close", () => this.remove(res));
    if (this.viewers.size === 1) this.start();
    const recent = this.master
      .recentlyClosed()
      .slice(0, 50)
      .map(
        (closed): FeedEvent => ({
          at: closed.closedAt.getTime(),
          kind: closed.reason === "evicted" ? "evicted" : "disconnected",
          id: closed.slave.id,
          peer: closed.slave.peer,
          reason: closed.reason,
          details: closed.details,
        }),
      )
      .reverse();
    writeEvent(res, "hello", this.summary());
    if (recent.length > 0) writeEvent(res, "feed", { events: recent, dropped: 0 });
    return true;
  }

  /** Ends every viewer's stream and stops. */
  close(): void {
    for (const res of this.viewers) res.end();
    this.viewers.clear();
    this.stop();
  }

  private remove(res: ServerResponse): void {
    if (!this.viewers.delete(res)) return;
    if (this.viewers.size === 0) this.stop();
  }

  private start(): void {
    this.master.on("slave:connected", this.listeners.connected);
    this.master.on("slave:evicted", this.listeners.evicted);
    this.master.on("slave:disconnected", this.listeners.disconnected);
    this.schedule();
  }

  /** The time between two batches: batchMs, times one per SLAVES_PER_BATCH slaves. */
  get interval(): number {
    const base = this.options.batchMs ?? DASHBOARD_DEFAULTS.batchMs;
    return base * Math.max(1, Math.ceil(this.master.size / SLAVES_PER_BATCH));
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.tick();
      if (this.timer) this.schedule();
    }, this.interval);
    this.timer.unref();
  }

  private stop(): void {
    this.master.off("slave:connected", this.listeners.connected);
    this.master.off("slave:evicted", this.listeners.evicted);
    this.master.off("slave:disconnected", this.listeners.disconnected);
    clearTimeout(this.timer);
    clearTimeout(this.eventTimer);
    this.timer = undefined;
    this.eventTimer = undefined;
    this.pending = [];
    this.dropped = 0;
    this.cached = undefined;
  }

  private queue(kind: FeedEvent["kind"], { slave, reason, details }: SlaveEvent): void {
    if (this.pending.length < MAX_EVENTS_PER_PUSH) {
      this.pending.push({ at: Date.now(), kind, id: slave.id, peer: slave.peer, reason, details });
    } else {
      this.dropped++;
    }
    this.eventTimer ??= setTimeout(() => this.flushEvents(), EVENT_COALESCE_MS);
  }

  private flushEvents(): void {
    this.eventTimer = undefined;
    if (this.pending.length === 0) return;
    const payload = { events: this.pending, dropped: this.dropped };
    this.pending = [];
    this.dropped = 0;
    this.broadcast("feed", payload);
  }

  private tick(): void {
    this.cached = undefined;
    this.broadcast("tick", this.summary());
  }

  private broadcast(event: string, data: unknown): void {
    const frame = formatEvent(event, data);
    for (const res of this.viewers) {
      // A viewer that does not read (its socket buffer is full) skips batches rather than queueing them.
      if (res.writableNeedDrain) continue;
      res.write(frame);
    }
  }

  /** The fleet summary, from one snapshot of the registry and of the closed history. */
  summary(): Summary {
    const slaves = this.snapshot();
    const rtts = new Float64Array(slaves.length);
    let n = 0;
    for (const slave of slaves) if (slave.rttMs !== undefined) rtts[n++] = slave.rttMs;
    const sorted = rtts.subarray(0, n).sort();
    const now = Date.now();
    const closed = this.master.recentlyClosed();
    let evictions = 0;
    for (const entry of closed) if (entry.reason === "evicted" && now - entry.closedAt.getTime() <= EVICTION_WINDOW_MS) evictions++;
    const oldest = closed[closed.length - 1];
    return {
      master: this.master.id,
      now,
      connected: slaves.length,
      evictions5m: evictions,
      // The history is a ring: when its oldest entry is still within the window, older evictions may have fallen out.
      evictionsTruncated:
        closed.length > 0 &&
        closed.length >= (this.options.historySize ?? DEFAULTS.historySize) &&
        now - oldest!.closedAt.getTime() <= EVICTION_WINDOW_MS,
      rttP50: percentile(sorted, 50),
      rttP99: percentile(sorted, 99),
      heartbeatInterval: this.master.heartbeatInterval,
      heartbeatTimeout: this.master.heartbeatTimeout,
      actions: this.options.actions,
      closed: closed.slice(0, CLOSED_IN_TICK).map(closedJson),
    };
  }
}

function formatEvent(event: string, data: unknown): string {
  // JSON has no raw newlines, so one data: line carries it.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function writeEvent(res: ServerResponse, event: string, data: unknown): void {
  res.write(formatEvent(event, data));
}
