import type { ServerResponse } from "node:http";
import { DASHBOARD_DEFAULTS, DEFAULTS } from "../defaults.js";
import type { ClosedSlaveInfo, FleetPage, WatchEvent } from "../model.js";
import type { DashboardMaster } from "./port.js";
import type { ListedSlave } from "./slaves-query.js";

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
/**
 * The same in a cluster. When a batch was a scatter-gather of every slave
 * (every master serialized its slaves to JSON for the viewed one, which
 * parsed them all), one viewer of 10,000 slaves on 3 masters cost the masters
 * +10.7 % and +12.5 % CPU at 5,000 per batch, and +6.8–7.1 % at 1,000 (a
 * batch every 10 s at 10,000). A batch is now every master's counts and the
 * viewer's page of the listing, whatever the fleet's size. Connects,
 * disconnects and evictions still reach the page within 100 ms (the feed is
 * not batched this way).
 */
const CLUSTER_SLAVES_PER_BATCH = 1_000;

/** One connect, disconnect or eviction (or, in a cluster, a master joining or leaving), as the page shows it. */
export interface FeedEvent {
  at: number;
  kind: "connected" | "evicted" | "disconnected" | "master_joined" | "master_left";
  /** The slave's id (the master's, for master events). */
  id: string;
  /** The master it happened on. */
  master: string;
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

/** A master in the dashboard's masters panel (cluster mode). */
export interface MasterJson {
  id: string;
  address: string;
  slavesHeld: number;
  lastHeard: number;
  self: boolean;
  /** Whether it answered the latest fleet-wide view: false means its slaves are missing, not that it has none. */
  answered: boolean;
}

/** The slaves the page lists: the local fleet, or in a cluster every master's, and who answered. */
export interface FleetSnapshot {
  slaves: ListedSlave[];
  cluster: boolean;
  masters: MasterJson[];
  unanswered: string[];
}

/** The fleet summary pushed on every tick. */
export interface Summary {
  master: string;
  /** Whether the figures are the cluster's (every master that answered) rather than this master's. */
  cluster: boolean;
  /** The masters of the cluster, this one first; empty without a cluster. */
  masters: MasterJson[];
  /** Masters known alive that did not answer: their slaves are missing from the figures. */
  unanswered: string[];
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

/** The fleet-wide part of a summary: how many are connected, their RTTs, and who answered. */
interface Figures {
  cluster: boolean;
  masters: MasterJson[];
  unanswered: string[];
  connected: number;
  rttP50: number | null;
  rttP99: number | null;
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
 * Per-pong state is never touched. A lone master's tick reads one registry
 * snapshot, which also serves the page's table fetch that follows it; a
 * cluster's tick reads every master's count and RTT histogram (one small
 * answer each), and its table is a page of the fleet-wide listing: nothing
 * the feed does while watched reads every slave of the cluster, unless the
 * viewer sorts by something else than the id or filters by text.
 */
export class FleetFeed {
  private readonly viewers = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private eventTimer: NodeJS.Timeout | undefined;
  private pending: FeedEvent[] = [];
  private dropped = 0;
  private cached: { at: number; snapshot: Promise<FleetSnapshot>; interval: number } | undefined;
  /** A cluster's figures of the latest tick (every master's count and RTT histogram), shared like the snapshot. */
  private cachedFigures: { at: number; figures: Promise<Figures>; interval: number } | undefined;
  private unwatch: (() => void) | undefined;

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

  /** Whether the page shows a cluster's fleet (every master's slaves) rather than this master's. */
  get cluster(): boolean {
    return this.master.clusterState !== "off";
  }

  /**
   * All connected slaves (in a cluster, every master's that answers), as one
   * snapshot shared by the tick and the fetches right after it. A lone
   * master's ticks read it; in a cluster only a table sorted by something
   * else than the id, or filtered by text, needs it (a fleet-wide listing):
   * the ticks read every master's counts and the default table is a page.
   */
  snapshot(): Promise<FleetSnapshot> {
    const now = performance.now();
    // Reused by the page's fetch right after a tick, and until shortly before the next one.
    if (this.cached && now - this.cached.at < 0.9 * this.cached.interval) return this.cached.snapshot;
    const snapshot = this.take();
    // Only cached while someone watches: an idle dashboard keeps no copy of the fleet.
    this.cached = this.timer ? { at: now, snapshot, interval: this.interval } : undefined;
    return snapshot;
  }

  /** The slaves a selector matches, fleet-wide in a cluster; INVALID_ARGUMENT for a malformed selector. */
  async select(selector: string): Promise<{ slaves: ListedSlave[]; unanswered: string[] }> {
    if (!this.cluster) return { slaves: this.master.slaves({ selector }), unanswered: [] };
    const view = await this.master.fleet({ selector });
    return { slaves: view.slaves, unanswered: view.unanswered };
  }

  /** One page of the fleet in id order after `pageToken` (a cluster's default table): each master answers only its next slice. */
  page(selector: string, pageSize: number, pageToken: string): Promise<FleetPage> {
    return this.master.fleetPage({ selector, pageSize, pageToken });
  }

  private async take(): Promise<FleetSnapshot> {
    // A lone master reads its registry, as it always did: no copy per slave to add a master id.
    if (!this.cluster) return { slaves: this.master.slaves(), cluster: false, masters: [], unanswered: [] };
    const view = await this.master.fleet();
    const unanswered = new Set(view.unanswered);
    const heard = new Map(view.masters.map((m) => [m.id, m]));
    // Every master known alive, with its count as it answered (or as its last beat said, when it did not).
    const masters = this.master.masters().map((m) => {
      const answer = heard.get(m.id) ?? m;
      return {
        id: m.id,
        address: m.address,
        slavesHeld: answer.slavesHeld,
        lastHeard: m.lastHeard.getTime(),
        self: m.self,
        answered: !unanswered.has(m.id),
      };
    });
    return { slaves: view.slaves, cluster: true, masters, unanswered: view.unanswered };
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
          master: this.master.id,
          peer: closed.slave.peer,
          reason: closed.reason,
          details: closed.details,
        }),
      )
      .reverse();
    void this.summary().then((summary) => {
      if (!this.viewers.has(res)) return;
      writeEvent(res, "hello", summary);
      if (recent.length > 0) writeEvent(res, "feed", { events: recent, dropped: 0 });
    });
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
    this.unwatch = this.master.watch((event) => this.queue(event));
    this.schedule();
  }

  /** The time between two batches: batchMs, times one per SLAVES_PER_BATCH slaves (CLUSTER_SLAVES_PER_BATCH of the cluster's, in a cluster). */
  get interval(): number {
    const base = this.options.batchMs ?? DASHBOARD_DEFAULTS.batchMs;
    if (!this.cluster) return base * Math.max(1, Math.ceil(this.master.size / SLAVES_PER_BATCH));
    const size = this.master.masters().reduce((sum, m) => sum + m.slavesHeld, 0);
    return base * Math.max(1, Math.ceil(size / CLUSTER_SLAVES_PER_BATCH));
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      // The next batch is timed from the end of this one: a cluster's view may take up to its gather timeout.
      void this.tick().then(() => {
        if (this.timer) this.schedule();
      });
    }, this.interval);
    this.timer.unref();
  }

  private stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    clearTimeout(this.timer);
    clearTimeout(this.eventTimer);
    this.timer = undefined;
    this.eventTimer = undefined;
    this.pending = [];
    this.dropped = 0;
    this.cached = undefined;
    this.cachedFigures = undefined;
  }

  private queue(event: WatchEvent): void {
    if (this.pending.length < MAX_EVENTS_PER_PUSH) {
      // A replacement reads as a disconnect with its reason, as the page always showed it.
      const kind = event.kind === "replaced" ? "disconnected" : event.kind;
      const { slave } = event;
      this.pending.push({
        at: event.at.getTime(),
        kind,
        id: slave?.id ?? event.masterId,
        master: event.masterId,
        peer: slave?.peer ?? "",
        reason: event.reason ?? event.kind,
        details: event.details,
      });
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

  private async tick(): Promise<void> {
    this.cached = undefined;
    this.cachedFigures = undefined;
    const summary = await this.summary();
    if (this.timer) this.broadcast("tick", summary);
  }

  private broadcast(event: string, data: unknown): void {
    const frame = formatEvent(event, data);
    for (const res of this.viewers) {
      // A viewer that does not read (its socket buffer is full) skips batches rather than queueing them.
      if (res.writableNeedDrain) continue;
      res.write(frame);
    }
  }

  /**
   * The fleet summary: a lone master's from one snapshot of its registry, a
   * cluster's from every master's count and RTT histogram (no slave listed);
   * the closed history is this master's either way.
   */
  async summary(): Promise<Summary> {
    const { cluster, masters, unanswered, connected, rttP50, rttP99 } = await this.figures();
    const now = Date.now();
    const closed = this.master.recentlyClosed();
    let evictions = 0;
    for (const entry of closed) if (entry.reason === "evicted" && now - entry.closedAt.getTime() <= EVICTION_WINDOW_MS) evictions++;
    const oldest = closed[closed.length - 1];
    return {
      master: this.master.id,
      cluster,
      masters,
      unanswered,
      now,
      connected,
      evictions5m: evictions,
      // The history is a ring: when its oldest entry is still within the window, older evictions may have fallen out.
      evictionsTruncated:
        closed.length > 0 &&
        closed.length >= (this.options.historySize ?? DEFAULTS.historySize) &&
        now - oldest!.closedAt.getTime() <= EVICTION_WINDOW_MS,
      rttP50,
      rttP99,
      heartbeatInterval: this.master.heartbeatInterval,
      heartbeatTimeout: this.master.heartbeatTimeout,
      actions: this.options.actions,
      closed: closed.slice(0, CLOSED_IN_TICK).map(closedJson),
    };
  }

  private figures(): Promise<Figures> {
    if (!this.cluster) return this.snapshot().then(localFigures);
    const now = performance.now();
    if (this.cachedFigures && now - this.cachedFigures.at < 0.9 * this.cachedFigures.interval) return this.cachedFigures.figures;
    const figures = this.clusterFigures();
    this.cachedFigures = this.timer ? { at: now, figures, interval: this.interval } : undefined;
    return figures;
  }

  /** Every master's count and RTT histogram: one small answer each, whatever the fleet's size. */
  private async clusterFigures(): Promise<Figures> {
    const summary = await this.master.fleetSummary();
    const heard = new Map(summary.masters.map((m) => [m.id, m]));
    // Every master known alive, with its count as it answered (or as its last beat said, when it did not).
    const masters = this.master.masters().map((m) => ({
      id: m.id,
      address: m.address,
      slavesHeld: (heard.get(m.id) ?? m).slavesHeld,
      lastHeard: m.lastHeard.getTime(),
      self: m.self,
      answered: heard.has(m.id),
    }));
    return {
      cluster: true,
      masters,
      unanswered: summary.unanswered,
      connected: summary.connected,
      rttP50: summary.rttP50,
      rttP99: summary.rttP99,
    };
  }
}

/** A lone master's figures, from its registry's snapshot. */
function localFigures(snapshot: FleetSnapshot): Figures {
  const { slaves } = snapshot;
  const rtts = new Float64Array(slaves.length);
  let n = 0;
  for (const slave of slaves) if (slave.rttMs !== undefined) rtts[n++] = slave.rttMs;
  const sorted = rtts.subarray(0, n).sort();
  return {
    cluster: snapshot.cluster,
    masters: snapshot.masters,
    unanswered: snapshot.unanswered,
    connected: slaves.length,
    rttP50: percentile(sorted, 50),
    rttP99: percentile(sorted, 99),
  };
}

function formatEvent(event: string, data: unknown): string {
  // JSON has no raw newlines, so one data: line carries it.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function writeEvent(res: ServerResponse, event: string, data: unknown): void {
  res.write(formatEvent(event, data));
}
