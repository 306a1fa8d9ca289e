import { EventEmitter } from "node:events";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { JobDelivery } from "../fleet/scope.js";
import type { FleetBroadcastResult, RoutedSendResult } from "../model.js";
import type { PageToken } from "../slave-pages.js";
import { Claims } from "./claims.js";
import { HolderDirectory } from "./directory.js";
import type { Epoch } from "./epoch.js";
import { EventBus } from "./event-bus.js";
import type { ClusterEvent } from "./events.js";
import { NodeHost } from "./host.js";
import { NatsLink } from "./nats-link.js";
import { type ClusterOptions, type ResolvedClusterOptions, resolveClusterOptions } from "./options.js";
import { Presence } from "./presence.js";
import type { BatchCommand, RoutedBatch, RoutedBatchHandlers } from "./routed-batch.js";
import { Router } from "./router.js";
import { Scatter } from "./scatter.js";
import type { ClusterStats } from "./stats.js";
import type {
  ClusterMember,
  ClusterSlave,
  ClusterState,
  FleetCounts,
  FleetIds,
  FleetSlaves,
  FleetSlavesPage,
  LocalFleet,
  RoutedReply,
} from "./types.js";

export { routeError } from "./router.js";

/**
 * How long the claims of a master that left or expired are kept: its slaves
 * re-home and claim again well within it (a slave notices in its
 * masterTimeout, 15 s by default), and what is left after it names slaves
 * that are gone for good.
 */
const DEPARTED_CLAIMS_MS = 60_000;

export interface ClusterNodeEvents {
  /** Connected to NATS (first time or again); membership and claims were just announced. */
  connected: [];
  /** Lost NATS, or could not reach it; `refused` when the server rejected the credentials. */
  disconnected: [reason: string, refused: boolean];
  "member-joined": [member: ClusterMember];
  "member-left": [member: ClusterMember, reason: "left" | "expired"];
  /** Slave events of another master (see publishEvent). */
  "slave-events": [events: ClusterEvent[], from: string];
}

/**
 * One master's membership in a cluster: it owns the NATS connection, its
 * subscriptions and its timers, and reaches the local master only through
 * {@link LocalFleet}. Local slaves never depend on it: every call answers
 * from the local fleet at once when NATS is away.
 *
 * Subjects (under `netsync.<cluster>.`): `members` (heartbeats, leave),
 * `slave.<id>` (one literal subscription per held slave, by its holders
 * only: its claims, newest wins, and lookups of who holds it),
 * `master.<id>.route` (sends and requests for the slaves a
 * master holds), `master.<id>.list`, `master.<id>.page`,
 * `master.<id>.summary` and `master.<id>.broadcast` (scatter-gather). Ids
 * are base64url-encoded.
 *
 * The work is done by four parts over one {@link NodeHost} (the connection,
 * subjects, log and counters they share): {@link Presence} (heartbeats and
 * expiry), {@link Claims} (held slaves' routes and claims), {@link Router}
 * (routed sends and requests) and {@link Scatter} (fleet-wide calls). This
 * class drives the link's ups and downs through them.
 */
export class ClusterNode extends EventEmitter<ClusterNodeEvents> {
  readonly #options: ResolvedClusterOptions;
  private readonly link: NatsLink;
  private readonly host: NodeHost;
  private readonly presence: Presence;
  private readonly claims: Claims;
  private readonly router: Router;
  private readonly scatter: Scatter;
  private readonly events: EventBus;
  /** Who holds the slaves this master has heard of (claims heard, answers to routed calls): routed calls go straight to the holder. */
  private readonly directory = new HolderDirectory();
  /** Masters that left or expired, and when: their claims are forgotten DEPARTED_CLAIMS_MS later unless they come back. */
  private readonly departed = new Map<string, number>();
  private started = false;
  /** Whether the last state logged was "down", and for what kind, so a retry loop logs one line, not one per attempt. */
  private loggedDown: "lost" | "refused" | undefined;
  private everConnected = false;
  /** Someone watches here: other masters' slave events are subscribed (see followEvents). */
  private eventsWanted = false;
  private eventsSubscription: Subscription | undefined;

  constructor(
    private readonly fleet: LocalFleet,
    options: ClusterOptions,
  ) {
    super();
    this.#options = resolveClusterOptions(options);
    this.link = new NatsLink(this.#options, `netsync master ${fleet.id}`);
    this.host = new NodeHost(fleet, this.#options, this.link);
    this.presence = new Presence(this.host, {
      left: (member, reason) => {
        // A master that left closed its streams: its claims are void. One that went silent may come back (a stall longer
        // than member expiry) still holding them: they stay a while, unused for routing, and name it when nobody answers.
        if (reason === "left") this.directory.forgetMaster(member.id);
        else this.departed.set(member.id, Date.now());
        this.emit("member-left", member, reason);
      },
      joined: (member) => {
        this.departed.delete(member.id);
        this.emit("member-joined", member);
      },
      sweep: () => {
        this.claims.sweep();
        this.forgetDeparted();
      },
    });
    // The router asks the claims what is held here, and to watch an id whose holder is slow to answer.
    this.claims = new Claims(this.host, this.directory);
    this.router = new Router(this.host, this.claims, this.directory, this.presence);
    this.scatter = new Scatter(this.host, this.presence);
    this.events = new EventBus(this.host, (events, from) => this.emit("slave-events", events, from));
    this.link.on("up", (nc, fresh) => this.onUp(nc, fresh));
    this.link.on("down", (reason, refused) => this.onDown(reason, refused));
  }

  get clusterName(): string {
    return this.#options.clusterName;
  }

  /** "connected" only while NATS answers; cluster-wide calls fall back to local answers otherwise. */
  get state(): ClusterState {
    return this.host.state;
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  /** The NATS connection, if there is one (it may be reconnecting): for the job store, which shares it. */
  get connection(): NatsConnection | undefined {
    return this.host.closing ? undefined : this.link.nc;
  }

  /** Starts connecting in the background and beating; returns at once (wait for "connected" if needed). */
  start(): void {
    if (this.started || this.host.closing) return;
    this.started = true;
    this.link.start();
    this.presence.start();
  }

  /**
   * Leaves the cluster: announces it (unless `leave` is false, which behaves
   * like a crash, for tests) so others drop this master at once, then
   * closes the connection and every timer.
   */
  async close(options: { leave?: boolean } = {}): Promise<void> {
    if (this.host.closing) return;
    const nc = this.link.nc;
    if ((options.leave ?? true) && nc && this.connected) this.presence.leave(nc);
    this.host.closing = true;
    this.presence.stop();
    this.claims.stop();
    this.events.stop();
    this.router.close();
    await this.link.close();
    this.claims.detach();
    this.eventsSubscription = undefined;
    this.host.counters.connected = 0;
  }

  /** The masters known alive, this one first, each with when it was last heard from. */
  masters(): ClusterMember[] {
    return [this.presence.self(), ...this.presence.others()];
  }

  private forgetDeparted(): void {
    const now = Date.now();
    for (const [master, since] of this.departed) {
      if (now - since < DEPARTED_CLAIMS_MS) continue;
      this.departed.delete(master);
      this.directory.forgetMaster(master);
    }
  }

  // --- connection state --------------------------------------------------------

  private onUp(nc: NatsConnection, fresh: boolean): void {
    const { host } = this;
    if (host.closing) return;
    if (fresh) this.subscribeAll(nc);
    this.presence.connected();
    host.counters.connected = 1;
    if (this.loggedDown) host.log.warn(`connected to NATS again (cluster "${this.clusterName}"); re-announcing ${this.claims.size} slaves`);
    else if (!this.everConnected) host.log.info(`connected to NATS (cluster "${this.clusterName}")`);
    this.loggedDown = undefined;
    this.everConnected = true;
    this.presence.beat();
    void this.claims.claimAll(nc);
    this.emit("connected");
  }

  private onDown(reason: string, refused: boolean): void {
    const { host } = this;
    if (host.closing) return;
    const kind = refused ? "refused" : "lost";
    if (host.counters.connected === 1) host.counters.disconnects++;
    host.counters.connected = 0;
    if (this.loggedDown === kind) {
      host.log.debug(`NATS still unavailable: ${reason}`);
      return;
    }
    this.loggedDown = kind;
    if (refused) {
      host.log.error(
        `NATS refused this master's cluster credentials (${reason}); serving local slaves only, retrying every ${this.#options.authRetryInterval} ms`,
      );
    } else {
      host.log.warn(`NATS unavailable (${reason}); serving local slaves only, reconnecting`);
    }
    this.emit("disconnected", reason, refused);
  }

  /** Every subscription of a fresh connection (one that nats.js reconnected kept them; a new one has none). */
  private subscribeAll(nc: NatsConnection): void {
    const { host, fleet } = this;
    const { subjects } = host;
    nc.subscribe(subjects.members, { callback: host.handler((msg) => this.presence.onMembers(msg)) });
    nc.subscribe(subjects.route(fleet.id), { callback: host.handler((msg) => this.router.serve(msg)) });
    nc.subscribe(subjects.list(fleet.id), { callback: host.handler((msg) => this.scatter.onList(nc, msg)) });
    nc.subscribe(subjects.page(fleet.id), { callback: host.handler((msg) => this.scatter.onPage(nc, msg)) });
    nc.subscribe(subjects.summary(fleet.id), { callback: host.handler((msg) => this.scatter.onSummary(msg)) });
    nc.subscribe(subjects.broadcast(fleet.id), { callback: host.handler((msg) => this.scatter.onBroadcast(msg)) });
    this.eventsSubscription = this.eventsWanted ? this.subscribeEvents(nc) : undefined;
    this.claims.subscribeRoutes(nc);
  }

  /**
   * Whether other masters' slave events are wanted here (someone watches):
   * the events subject is subscribed only then, so NATS delivers the
   * fleet's connects and disconnects only to masters with a watcher, not to
   * every master (at a million slaves, a failover's re-homing is tens of
   * thousands of events).
   */
  followEvents(on: boolean): void {
    if (this.eventsWanted === on) return;
    this.eventsWanted = on;
    const nc = this.link.nc;
    if (!on) {
      this.eventsSubscription?.unsubscribe();
      this.eventsSubscription = undefined;
    } else if (nc && !this.host.closing && !this.eventsSubscription) {
      this.eventsSubscription = this.subscribeEvents(nc);
    }
  }

  private subscribeEvents(nc: NatsConnection): Subscription | undefined {
    try {
      return nc.subscribe(this.host.subjects.events, { callback: this.host.handler((msg) => this.events.onEvents(msg)) });
    } catch (err) {
      this.host.log.debug(`cannot subscribe to the cluster's events: ${(err as Error).message}`);
      return undefined;
    }
  }

  // --- held slaves ---------------------------------------------------------------

  /** A local slave connected with `epoch`: route its subject here and claim it cluster-wide. */
  slaveAdded(slaveId: string, epoch: Epoch): void {
    this.claims.add(slaveId, epoch);
  }

  /** A local connection ended: drop its route, unless a newer connection of the same id holds it now. */
  slaveRemoved(slaveId: string, epoch: Epoch): void {
    this.claims.remove(slaveId, epoch);
  }

  /** A local slave event, for the other masters' watchers (batched; dropped while NATS is away). */
  publishEvent(event: ClusterEvent): void {
    this.events.publish(event);
  }

  /**
   * Resolves once NATS has processed everything this node sent so far (route
   * subscriptions, claims): a slave added before it is routable from every
   * master. Resolves at once without a connection.
   */
  async flush(): Promise<void> {
    const nc = this.link.nc;
    if (nc && this.connected) await nc.flush().catch(() => undefined);
  }

  /** Whether this master holds `slaveId` (as slaveAdded told it). */
  holds(slaveId: string): boolean {
    return this.claims.holds(slaveId);
  }

  // --- calls -----------------------------------------------------------------------

  /** Writes `data` to `slaveId` wherever it is held; NOT_FOUND if no master holds it, UNAVAILABLE without NATS. */
  send(slaveId: string, data: string): Promise<RoutedSendResult> {
    return this.router.send(slaveId, data);
  }

  /**
   * Whether a live master is known to hold `slaveId` (from a claim or an
   * answer heard here): cheap, from memory, maybe stale, and silent about
   * slaves this master has not dealt with.
   */
  knowsHolder(slaveId: string): boolean {
    const holder = this.directory.get(slaveId);
    return holder !== undefined && this.presence.knows(holder.master);
  }

  /** Writes `data` to `slaveId` wherever it is held and waits up to `timeoutMs` for its Reply. */
  request(slaveId: string, data: string, timeoutMs: number, commandId?: string, job?: JobDelivery): Promise<RoutedReply> {
    return this.router.request(slaveId, data, timeoutMs, commandId, job);
  }

  /**
   * A job's command to many slaves other masters hold: one message per
   * holder and turn (see RoutedBatch); each outcome to `handlers`, once.
   */
  requestMany(command: BatchCommand, handlers: RoutedBatchHandlers): RoutedBatch {
    return this.router.requestMany(command, handlers);
  }

  /** Where replies to jobs' routed deliveries served here are recorded (the cluster's job store, once open). */
  set jobRecorder(record: Router["recordJob"]) {
    this.router.recordJob = record;
  }

  /**
   * Every slave of the cluster matching `selector`: the local ones, and those
   * of each master known alive that answers within `timeoutMs`. Never waits
   * without NATS: then only local slaves, every other known master unanswered.
   */
  async listSlaves(selector?: string, timeoutMs: number = this.#options.gatherTimeout): Promise<FleetSlaves> {
    const view = await this.scatter.listSlaves(selector, timeoutMs);
    // Fresh word of who holds what: a job that lists its targets then calls each one goes straight to the holder,
    // without a lookup first (a hint, older than any claim: a wrong one is answered "released", then looked up).
    const self = this.host.fleet.id;
    for (const slave of view.slaves) if (slave.masterId !== self) this.directory.hint(slave.id, slave.masterId);
    return view;
  }

  /**
   * The ids of every slave of the cluster matching `selector`, by master (a
   * job's targets); the directory learns each one's holder from it, as from
   * a listing.
   */
  async listIds(selector?: string, timeoutMs: number = this.#options.gatherTimeout): Promise<FleetIds> {
    const found = await this.scatter.listIds(selector, timeoutMs);
    const self = this.host.fleet.id;
    for (const { masterId, ids } of found.byMaster) if (masterId !== self) for (const id of ids) this.directory.hint(id, masterId);
    return found;
  }

  /** One page of the cluster's fleet after `token`, merged in (id, master) order from every master's next slice. */
  page(
    selector: string | undefined,
    token: PageToken,
    pageSize: number,
    timeoutMs: number = this.#options.gatherTimeout,
    bytes: { max?: number; sizeOf?: (slave: ClusterSlave) => number } = {},
  ): Promise<FleetSlavesPage> {
    return this.scatter.page(selector, token, pageSize, timeoutMs, bytes);
  }

  /** Every master's count and RTT histogram, listing nobody. */
  summary(timeoutMs: number = this.#options.gatherTimeout): Promise<FleetCounts> {
    return this.scatter.summary(timeoutMs);
  }

  /** Writes `data` to every slave of the cluster matching `selector`; counts by master. */
  broadcast(data: string, selector?: string, timeoutMs: number = this.#options.gatherTimeout): Promise<FleetBroadcastResult> {
    return this.scatter.broadcast(data, selector, timeoutMs);
  }

  /** Totals for metrics, read at scrape time. */
  stats(): ClusterStats {
    const { counters } = this.host;
    return { ...counters, routed: { ...counters.routed }, routedVia: { ...counters.routedVia }, mastersSeen: 1 + this.presence.size };
  }
}
