import { EventEmitter } from "node:events";
import type { Reply } from "../gen/netsync/v1/netsync_pb.js";
import type { ClusterScope } from "./cluster/cluster-scope.js";
import { Code } from "./code.js";
import type { DashboardServer } from "./dashboard/http-server.js";
import { DEFAULTS } from "./defaults.js";
import { NetSyncError } from "./errors.js";
import { Fleet } from "./fleet/fleet.js";
import { LocalScope, type Scope, type Self } from "./fleet/scope.js";
import { WatchHub } from "./fleet/watch-hub.js";
import type { Job } from "./jobs/job.js";
import { type JobHost, JobRunner } from "./jobs/runner.js";
import { getLogger, type Logger } from "./logger.js";
import { MasterMetrics } from "./metrics.js";
import type {
  ClosedSlaveInfo,
  ClusterStatus,
  CustomInput,
  FleetBroadcastResult,
  FleetOptions,
  FleetPage,
  FleetPageOptions,
  FleetSummary,
  FleetView,
  JobRecord,
  MasterEvents,
  MasterInfo,
  RequestOptions,
  RoutedReplyResult,
  RoutedSendResult,
  RunOptions,
  SelectOptions,
  SlaveEvent,
  SlaveInfo,
  WatchEvent,
  WatchListener,
} from "./model.js";
import { type MasterOptions, type ResolvedMasterOptions, resolveMasterOptions } from "./options.js";
import { Selector } from "./selector.js";
import { adminImplementation } from "./server/admin-service.js";
import { MasterServer } from "./server/master-server.js";
import { WatchService } from "./server/watch-service.js";
import { pageSizeOf } from "./slave-pages.js";

/** Longest delay setTimeout honours; beyond it Node fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type State = "idle" | "listening" | "closing" | "closed";

/**
 * The master, as its users see it, and the composition root that builds it:
 * the local fleet (src/fleet/, the core, which knows no adapter), the scope
 * of its fleet-wide calls (local, or a cluster's over NATS), the gRPC server
 * with the admin service, and, when asked, the dashboard and the metrics
 * endpoint. It owns the order of listen() and close(); every call is handed
 * to the fleet (local slaves) or to the scope (slaves anywhere in reach).
 */
export class Master extends EventEmitter<MasterEvents> {
  /** Private in the language, not only in the types: it holds the token and TLS keys. */
  readonly #options: ResolvedMasterOptions;
  private readonly log: Logger;
  private readonly local: Fleet;
  /** Jobs run from here: their deliveries, pending commands and cache. */
  private readonly jobRunner: JobRunner;
  private readonly metrics: MasterMetrics | undefined;
  /** Local until listen() joins a cluster, and again once closed. */
  private scope: Scope;
  /** The scope when it is a cluster's (metrics read its counters); its module is loaded only then. */
  private cluster: ClusterScope | undefined;
  private server: MasterServer | undefined;
  /** The dashboard's HTTP server, with httpPort; its module is loaded only then. */
  private dashboard: DashboardServer | undefined;
  private state: State = "idle";
  private boundPort = 0;
  private boundMetricsPort: number | undefined;
  private boundHttpPort: number | undefined;
  /** The local fleet's slave events, for the scope (a cluster's publishes them to the other masters). */
  private readonly events = new WatchHub();
  /** Listeners of watch(); the scope is followed only while there is one. */
  private readonly watchers = new Set<WatchListener>();
  private unwatchScope: (() => void) | undefined;
  /** AdminService.Watch's streams, ended first on close(). */
  private watchService: WatchService | undefined;

  constructor(options: MasterOptions = {}) {
    super();
    this.#options = resolveMasterOptions(options);
    this.log = this.#options.logger ?? getLogger("master");
    const o = this.#options;
    // The dashboard serves /metrics too, so either port turns metrics on.
    if (o.metricsPort !== undefined || o.httpPort !== undefined) {
      const clusterStats = o.cluster ? () => this.cluster?.stats() : undefined;
      this.metrics = new MasterMetrics(() => ({ ...this.local.stats, connected: this.local.size }), clusterStats);
    }
    this.local = new Fleet({
      heartbeatInterval: o.heartbeatInterval,
      heartbeatTimeout: o.heartbeatTimeout,
      heartbeatSliceSize: o.heartbeatSliceSize,
      maxPendingBytes: o.maxPendingBytes,
      maxMessagesPerSecond: o.maxMessagesPerSecond,
      historySize: o.historySize,
      admission: o.admission,
      duplicateIds: o.duplicateIds,
      log: this.log,
      notify: (event, ...args) => this.notify(event, ...args),
      observer: this.metrics,
    });
    this.scope = new LocalScope(this.local, this.self(), this.events);
    this.jobRunner = new JobRunner(this.jobHost(), { log: this.log });
  }

  /** The job runner's view of this master: always through the current scope (local, or the cluster once listening). */
  private jobHost(): JobHost {
    const master = this;
    return {
      get masterId() {
        return master.id;
      },
      // A lone master reads the ids from its registry; a cluster gathers every master's (ids only, not the slaves).
      resolve: (selector) => this.scope.ids(selector),
      request: (slaveId, custom, timeout, job) => this.scope.request(slaveId, custom, timeout, job),
      requestMany: (custom, timeout, handlers, job) => this.scope.requestMany(custom, timeout, handlers, job),
      reachable: (slaveId) => this.scope.reachable(slaveId),
      heldIds: () => this.local.ids(),
      watchConnects: (listener) =>
        this.watch((event) => {
          if (event.kind === "connected" && event.slave) listener(event.slave.id);
        }),
    };
  }

  /** The port bound by listen(); useful with port 0. */
  get port(): number {
    return this.boundPort;
  }

  /** The port of the dashboard (httpPort), when it is on and listening. */
  get httpPort(): number | undefined {
    return this.boundHttpPort;
  }

  /** The port of the metrics endpoint, when metrics are on and listening. */
  get metricsPort(): number | undefined {
    return this.boundMetricsPort;
  }

  /** "host:port" as clients dial it (IPv6 hosts in brackets). */
  get address(): string {
    return `${this.urlHost}:${this.boundPort}`;
  }

  /** This master's id: its `name` option, else "host:port" (known once listening). */
  get id(): string {
    return this.#options.name ?? this.address;
  }

  /** Largest message this master sends or accepts, in bytes. */
  get maxMessageBytes(): number {
    return this.#options.maxMessageBytes;
  }

  /** Time between ping rounds, in ms. */
  get heartbeatInterval(): number {
    return this.#options.heartbeatInterval;
  }

  /** Silence after which a slave is evicted, in ms. */
  get heartbeatTimeout(): number {
    return this.#options.heartbeatTimeout;
  }

  private get urlHost(): string {
    return this.#options.host.includes(":") ? `[${this.#options.host}]` : this.#options.host;
  }

  /** This master as its scopes name it; read live, since the default id is known only once bound. */
  private self(): Self {
    const master = this;
    return {
      get id() {
        return master.id;
      },
      get address() {
        return master.address;
      },
    };
  }

  /** Starts serving and the heartbeat (and, with a `cluster` option, joining the cluster in the background); resolves with the bound port. */
  async listen(): Promise<number> {
    if (this.state !== "idle") throw new NetSyncError(`master is ${this.state}`, Code.FAILED_PRECONDITION);
    const options = this.#options;
    // Loaded only in cluster mode, so a master on its own never loads NATS. Before binding: once bound, accepting waits for nothing.
    const clusterModule = options.cluster ? await import("./cluster/cluster-scope.js") : undefined;
    const watchService = new WatchService(this, {
      buffer: options.watchBuffer,
      onCut: (peer, queued) => this.log.warn(`cut the watch of ${peer}: too slow, ${queued} events buffered`),
    });
    this.watchService = watchService;
    const server = new MasterServer({
      heartbeatTimeout: options.heartbeatTimeout,
      maxMessageBytes: options.maxMessageBytes,
      reflection: options.reflection,
      tls: options.tls,
      token: options.token,
      serverOptions: options.serverOptions,
      log: this.log,
      onSync: (call) => this.local.accept(call),
      admin: adminImplementation(this, watchService),
    });
    this.boundPort = await server.bind(this.urlHost, options.port);
    this.server = server;
    if (clusterModule && options.cluster) {
      // Chosen once, before the first stream is accepted: each is stamped and claimed from the start.
      this.cluster = new clusterModule.ClusterScope(this.local, this.self(), options.cluster, {
        observer: this.metrics,
        logger: options.logger,
        events: this.events,
        jobs: this.jobRunner,
      });
      this.useScope(this.cluster);
    }
    this.state = "listening";
    this.scope.start();
    this.local.start();
    server.setServing(true);
    await this.listenHttp();
    const security =
      (options.tls ? " with TLS" : "") +
      (options.tls?.clientCa ? " (client certificates required)" : "") +
      (options.token ? " (bearer token required)" : "");
    const scope = this.scope.describe();
    this.log.info(
      `listening on ${this.address}${security} ` +
        `(heartbeat every ${options.heartbeatInterval} ms, timeout ${options.heartbeatTimeout} ms)` +
        (scope ? `, ${scope}` : ""),
    );
    return this.boundPort;
  }

  /** The metrics endpoint and the dashboard, when asked for; a failure leaves nothing running behind listen(). */
  private async listenHttp(): Promise<void> {
    const options = this.#options;
    try {
      if (this.metrics && options.metricsPort !== undefined) {
        this.boundMetricsPort = await this.metrics.listen(options.metricsPort, options.host);
        this.log.info(`metrics on http://${this.urlHost}:${this.boundMetricsPort}/metrics`);
      }
      if (options.httpPort !== undefined) {
        // Loaded only when asked for, like the cluster: a master without a dashboard loads none of it.
        const { DashboardServer } = await import("./dashboard/http-server.js");
        this.dashboard = new DashboardServer(this, {
          port: options.httpPort,
          host: options.host,
          token: options.token,
          actions: options.dashboardActions,
          metrics: this.metrics,
          tls: options.tls && { cert: options.tls.cert, key: options.tls.key },
          historySize: options.historySize,
          log: this.log,
        });
        this.boundHttpPort = await this.dashboard.listen();
      }
    } catch (err) {
      await this.close();
      throw NetSyncError.from(err, Code.UNAVAILABLE);
    }
  }

  /** Ends every stream with UNAVAILABLE, leaves the cluster, stops the heartbeat, the server and the HTTP endpoints. */
  async close(): Promise<void> {
    if (this.state === "closed" || this.state === "closing") return;
    const wasListening = this.state === "listening";
    this.state = "closing";
    this.server?.setServing(false);
    this.watchService?.close();
    this.jobRunner.close();
    this.local.stop();
    // Leave before dropping the streams, so no route is released one by one on the way out.
    await this.scope.close();
    this.useScope(new LocalScope(this.local, this.self(), this.events));
    this.cluster = undefined;
    this.local.close();
    const server = this.server;
    this.server = undefined;
    await server?.shutdown(this.#options.shutdownGrace);
    await this.dashboard?.close();
    this.dashboard = undefined;
    this.boundHttpPort = undefined;
    await this.metrics?.close();
    this.boundMetricsPort = undefined;
    this.state = "closed";
    if (wasListening) this.log.info("master stopped");
  }

  /**
   * Emits an event; a listener that throws is logged, not propagated, since
   * it would otherwise surface inside grpc-js's stream callbacks and could
   * take the master (and every other slave) down.
   */
  private notify<K extends keyof MasterEvents>(event: K, ...args: MasterEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: MasterEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      this.log.error(`a "${String(event)}" listener threw: ${NetSyncError.from(err).message}`);
    }
    // A shared job store's kept commands are delivered by the master the slave connects to.
    if (event === "slave:connected") this.jobRunner.connectedHere((args[0] as SlaveEvent).slave.id);
    // Only built when a watcher or the cluster wants it: a master nobody watches does no more per event than before.
    if (this.events.size > 0 && (event === "slave:connected" || event === "slave:evicted" || event === "slave:disconnected")) {
      this.events.emit(this.watchEventOf(args[0] as SlaveEvent));
    }
  }

  private watchEventOf({ slave, reason, details }: SlaveEvent): WatchEvent {
    const kind =
      reason === "connected" ? "connected" : reason === "evicted" ? "evicted" : reason === "replaced" ? "replaced" : "disconnected";
    const event: WatchEvent = { kind, slave: { ...slave, masterId: this.id }, masterId: this.id, at: new Date(), details };
    if (reason !== "connected") event.reason = reason;
    return event;
  }

  /** Switches the scope, moving the watch over to it. */
  private useScope(scope: Scope): void {
    this.scope = scope;
    if (!this.unwatchScope) return;
    this.unwatchScope();
    this.unwatchScope = scope.watch((event) => this.fanOut(event));
  }

  private fanOut(event: WatchEvent): void {
    for (const listener of this.watchers) {
      try {
        listener(event);
      } catch (err) {
        this.log.error(`a watch listener threw: ${NetSyncError.from(err).message}`);
      }
    }
  }

  /** Listeners of watch() now (the dashboard's feed is one while it has viewers, each Watch stream one). */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /**
   * Follows every slave and master event in reach: the local fleet's and,
   * in a cluster, every other master's and the membership's (master joined,
   * left). Returns the function that stops it. Delivered at most once, in
   * the order each master saw them; remote events are missed while NATS is
   * unreachable. The listener runs inside the master's event path: it must
   * return quickly (queue, do not wait).
   */
  watch(listener: WatchListener): () => void {
    this.watchers.add(listener);
    // A Set: the same function twice is one watch, and stopping either stops it.
    this.unwatchScope ??= this.scope.watch((event) => this.fanOut(event));
    return () => {
      this.watchers.delete(listener);
      if (this.watchers.size > 0 || !this.unwatchScope) return;
      this.unwatchScope();
      this.unwatchScope = undefined;
    };
  }

  // --- local slaves: synchronous, this master's streams only ----------------------

  /**
   * Connected slaves, as a snapshot; with a selector, only those whose
   * labels match it. A malformed selector throws NetSyncError INVALID_ARGUMENT.
   */
  slaves(options: SelectOptions = {}): SlaveInfo[] {
    return this.local.slaves(Selector.from(options.selector));
  }

  /** Whether a slave with this id is connected. */
  has(slaveId: string): boolean {
    return this.local.has(slaveId);
  }

  /** Slaves that left recently (bounded by historySize), newest first. */
  recentlyClosed(): ClosedSlaveInfo[] {
    return this.local.recentlyClosed();
  }

  /** Number of connected slaves. */
  get size(): number {
    return this.local.size;
  }

  /** Sends a Custom command to one slave; returns 1 if it was written, else 0. */
  send(slaveId: string, custom: CustomInput): number {
    return this.local.send(slaveId, custom);
  }

  /**
   * Sends a Custom command to every slave, or with a selector to those whose
   * labels match it; returns how many it was written to. A malformed
   * selector throws NetSyncError INVALID_ARGUMENT and sends nothing.
   */
  broadcast(custom: CustomInput, options: SelectOptions = {}): number {
    return this.local.broadcastNow(custom, Selector.from(options.selector));
  }

  // --- the scope: every master of the cluster, or this one alone ------------------

  /** "off" without a cluster; else the link to NATS ("connected" while cluster-wide calls can reach other masters). */
  get clusterState(): ClusterStatus {
    return this.scope.status;
  }

  /** The masters known alive, this one first (only this one without a cluster). */
  masters(): MasterInfo[] {
    return this.scope.masters();
  }

  /**
   * Every slave of the cluster (those a selector matches), each with the id
   * of its master, and the masters that answered. Partial, never hanging: a
   * master that does not answer within `timeout` is named in `unanswered`;
   * while NATS is unreachable it answers at once with the local slaves.
   * Without a cluster, the local slaves. A malformed selector rejects with
   * INVALID_ARGUMENT.
   */
  async fleet(options: FleetOptions = {}): Promise<FleetView> {
    return this.scope.list(Selector.from(options.selector), options.timeout);
  }

  /**
   * One page of fleet(), in (id, master) order: pass the page's
   * nextPageToken as pageToken for the next one, until it is "". Each master
   * answers only the next slice of its own sorted ids, so a page costs the
   * same whatever the fleet's size. The token is a position, not a snapshot
   * (a slave that connects or leaves between pages is listed as it was when
   * each page was taken); a master that does not answer a page is named in
   * its `unanswered` and its slaves up to where the page ends are missing.
   * Rejects with INVALID_ARGUMENT for a malformed selector, a negative
   * pageSize, or a token that is not one a listing with this selector gave.
   */
  async fleetPage(options: FleetPageOptions = {}): Promise<FleetPage> {
    const selector = Selector.from(options.selector);
    const pageSize = pageSizeOf(options.pageSize, DEFAULTS.listPageSize, DEFAULTS.maxListPageSize);
    return this.scope.page(selector, {
      pageSize,
      pageToken: options.pageToken ?? "",
      timeout: options.timeout,
      maxBytes: options.maxBytes,
      sizeOf: options.sizeOf,
    });
  }

  /**
   * The fleet's count and RTT percentiles without listing anyone: in a
   * cluster, one small answer from each master (its count and an RTT
   * histogram); partial like fleet().
   */
  async fleetSummary(options: { timeout?: number } = {}): Promise<FleetSummary> {
    return this.scope.summary(options.timeout);
  }

  /**
   * Writes a Custom command to a slave held by any master of the cluster.
   * Rejects with NOT_FOUND when no master holds it (fast: NATS has no
   * responder), UNAVAILABLE when it is not local and NATS is unreachable.
   */
  async routeSend(slaveId: string, custom: CustomInput): Promise<RoutedSendResult> {
    return this.scope.send(slaveId, custom);
  }

  /**
   * Sends a Custom command that asks for a reply and resolves with the
   * slave's handler result; in a cluster, a slave held by another master is
   * reached through it. Rejects (never hangs) with a NetSyncError:
   * INVALID_ARGUMENT for a timeout setTimeout cannot honour (over 2^31-1 ms),
   * NOT_FOUND for an unknown slave (UNAVAILABLE if it is not local and NATS is unreachable), RESOURCE_EXHAUSTED if it could not be
   * written, DEADLINE_EXCEEDED after `timeout`, UNAVAILABLE if the slave
   * leaves or the master closes first, UNKNOWN if the slave's handler threw.
   */
  async request(slaveId: string, custom: CustomInput, options: RequestOptions = {}): Promise<string> {
    const reply = await this.requestReply(slaveId, custom, options);
    if (reply.result.case === "error") {
      throw new NetSyncError(`slave ${slaveId} failed to handle the command: ${reply.result.value}`, Code.UNKNOWN, { cause: reply });
    }
    return reply.result.value ?? "";
  }

  /** Like request(), but resolves with the Reply as the slave sent it, error included. */
  async requestReply(slaveId: string, custom: CustomInput, options: RequestOptions = {}): Promise<Reply> {
    return (await this.routeRequest(slaveId, custom, options)).reply;
  }

  /** Like requestReply(), and says which master held the slave. */
  async routeRequest(slaveId: string, custom: CustomInput, options: RequestOptions = {}): Promise<RoutedReplyResult> {
    const timeout = options.timeout ?? DEFAULTS.requestTimeout;
    if (!(timeout > 0 && timeout <= MAX_TIMER_MS)) {
      throw new NetSyncError(`request timeout must be from 1 ms to ${MAX_TIMER_MS} ms, got ${timeout}`, Code.INVALID_ARGUMENT);
    }
    return this.scope.request(slaveId, custom, timeout);
  }

  /**
   * Writes a Custom command to every slave of the cluster (those a selector
   * matches) and counts them by master; partial like fleet(). Without a
   * cluster, broadcast() with the count under this master's id.
   */
  async broadcastFleet(custom: CustomInput, options: FleetOptions = {}): Promise<FleetBroadcastResult> {
    return this.scope.broadcast(custom, Selector.from(options.selector), options.timeout);
  }

  // --- jobs: one command on many slaves, every result kept ------------------------

  /**
   * Runs a Custom command as a job: on the slaves `ids` names (connected or
   * not), else on every slave in reach (fleet-wide in a cluster) that the
   * selector matches, all when it is empty. Resolves once the targets are
   * fixed; read the per-slave results as they come with `for await`, or
   * wait for `job.done`. Every target gets exactly one result: "ok",
   * "error" (its handler failed), "timeout" (delivered, no reply within
   * `timeout`), "not-connected", or "expired" (not delivered within
   * `deliverWithin`, or a pending bound refused to keep it). The job's id
   * is the command's command_id, so a slave that gets it again runs it once.
   * Rejects with INVALID_ARGUMENT for a bad option, id or selector.
   */
  async run(custom: CustomInput, options: RunOptions = {}): Promise<Job> {
    return this.jobRunner.run(custom, options);
  }

  /** A recent job this master started, by id (running, or finished within the cache's bounds), if known here. */
  job(jobId: string): Job | undefined {
    return this.jobRunner.get(jobId);
  }

  /** Recent jobs this master started, newest first. */
  jobs(limit?: number): Job[] {
    return this.jobRunner.list(limit);
  }

  /**
   * A recent job by id, whichever master of the cluster started it, as a
   * snapshot with its results: this master's from memory; in a cluster
   * whose NATS has JetStream, another master's from the shared job store
   * (even if that master died: a target with no result past the job's last
   * moment shows "did not return"). Without a shared store, like job().
   * Rejects with UNAVAILABLE when the store cannot be read.
   */
  async getJob(jobId: string): Promise<JobRecord | undefined> {
    return this.jobRunner.read(jobId);
  }

  /** Recent jobs of every master sharing the job store (this master's alone without one), newest first, without results. */
  async listJobs(limit = 100): Promise<JobRecord[]> {
    return this.jobRunner.readList(limit);
  }

  /** Where new jobs are kept: "memory" (this process), or "jetstream" (the cluster's shared job store). */
  get jobStore(): string {
    return this.jobRunner.storeKind;
  }

  /** Commands kept for slaves that are not connected, waiting for them. */
  get pendingDeliveries(): number {
    return this.jobRunner.pendingCount;
  }

  /** Resolves once NATS has seen this master's routes so far (tests, and callers that just accepted a slave); at once without a cluster. */
  async clusterFlush(): Promise<void> {
    await this.scope.flush();
  }
}
