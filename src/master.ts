import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import { LogLevels } from "consola";
import { type Command, CommandSchema, type Custom, CustomSchema, type Reply } from "../gen/netsync/v1/netsync_pb.js";
import type { ClusterNode } from "./cluster/cluster-node.js";
import { fleetSlaveOf, masterInfoOf, replyOf } from "./cluster/convert.js";
import type { EpochClock } from "./cluster/epoch.js";
import type { LocalMaster } from "./cluster/master-fleet.js";
import { redactServer } from "./cluster/options.js";
import { Code } from "./code.js";
import type { DashboardServer } from "./dashboard/http-server.js";
import { DEFAULTS } from "./defaults.js";
import { NetSyncError } from "./errors.js";
import { type HeartbeatHost, HeartbeatScheduler } from "./fleet/heartbeat.js";
import { PingSlots } from "./fleet/ping-slots.js";
import { Registry } from "./fleet/registry.js";
import { SlaveConnection, type SyncCall } from "./fleet/slave-connection.js";
import { DecodeFailure, Encoded } from "./grpc-adapter.js";
import { formatLabels, type Labels, parseLabels } from "./labels.js";
import { getLogger, type Logger } from "./logger.js";
import { MasterMetrics, type MasterObserver, type MasterStats } from "./metrics.js";
import type {
  ClosedSlaveInfo,
  CloseReason,
  ClusterStatus,
  CustomInput,
  Epoch,
  FleetBroadcastResult,
  FleetOptions,
  FleetView,
  MasterEvents,
  MasterInfo,
  RequestOptions,
  RoutedReplyResult,
  RoutedSendResult,
  SelectOptions,
  SlaveInfo,
} from "./model.js";
import { type MasterOptions, type ResolvedMasterOptions, resolveMasterOptions, validateSlaveId } from "./options.js";
import { Selector } from "./selector.js";
import { adminImplementation } from "./server/admin-service.js";
import { MasterServer } from "./server/master-server.js";
import { LABELS_METADATA_KEY, SLAVE_ID_METADATA_KEY } from "./wire.js";

/** Why an eviction happened, as counted in metrics. */
type EvictionKind = "heartbeat_timeout" | "slow_consumer" | "rate_limit";

/** New connections accepted one after another share a ping slot, this many at a time (see PingSlots). */
const PING_SLOT_BLOCK = 32;
/** Longest delay setTimeout honours; beyond it Node fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Longest close() waits for the cluster node to leave and close its NATS connection (a frozen server never answers). */
const CLUSTER_CLOSE_WAIT_MS = 1_000;

type State = "idle" | "listening" | "closing" | "closed";

/**
 * The master: a gRPC server that keeps a registry of slaves, pings them all
 * on one schedule, evicts the silent ones and pushes commands to them. It
 * coordinates: the scheduler decides when, the ping slots who, each
 * SlaveConnection holds its own state and timers, and MasterServer owns the
 * grpc-js server.
 */
export class Master extends EventEmitter<MasterEvents> {
  /** Private in the language, not only in the types: it holds the token and TLS keys. */
  readonly #options: ResolvedMasterOptions;
  private readonly log: Logger;
  /** Whether debug lines are wanted; checked first so the pong path builds no strings otherwise. */
  private readonly debug: boolean;
  private readonly heartbeat: HeartbeatScheduler<SlaveConnection>;
  /** Which slice of a round each connection is pinged in. */
  private readonly slots: PingSlots<SlaveConnection>;
  private readonly registry: Registry;
  private readonly stats: MasterStats = {
    connected: 0,
    connectionsTotal: 0,
    pingsSent: 0,
    pongsReceived: 0,
    commandsSent: 0,
    evictions: { heartbeat_timeout: 0, slow_consumer: 0, rate_limit: 0 },
    disconnects: { disconnected: 0, replaced: 0, shutdown: 0, error: 0 },
  };
  private readonly metrics: MasterMetrics | undefined;
  /** Receives RTT and reply latencies; only set when metrics are on, so the pong path stays bare otherwise. */
  private readonly observer: MasterObserver | undefined;
  private nextRequestId = 0n;
  /** Connections ended but maybe never read by their peer, each with a pending reset; close() disposes of them. */
  private readonly ending = new Set<SlaveConnection>();
  private server: MasterServer | undefined;
  /** Set while listening in cluster mode; the module behind it is loaded only then. */
  private cluster: ClusterNode | undefined;
  private epochs: EpochClock | undefined;
  private state: State = "idle";
  private boundPort = 0;
  private boundMetricsPort: number | undefined;
  /** The dashboard's HTTP server, with httpPort; its module is loaded only then. */
  private dashboard: DashboardServer | undefined;
  private boundHttpPort: number | undefined;

  constructor(options: MasterOptions = {}) {
    super();
    this.#options = resolveMasterOptions(options);
    this.log = this.#options.logger ?? getLogger("master");
    this.debug = this.log.level >= LogLevels.debug;
    this.registry = new Registry(this.#options.historySize);
    // The dashboard serves /metrics too, so either port turns metrics on.
    if (this.#options.metricsPort !== undefined || this.#options.httpPort !== undefined) {
      const clusterStats = this.#options.cluster ? () => this.cluster?.stats() : undefined;
      this.metrics = new MasterMetrics(() => ({ ...this.stats, connected: this.registry.size }), clusterStats);
      this.observer = this.metrics;
    }
    // The scheduler's host is private: rounds and expiries are not part of the Master's API.
    const host: HeartbeatHost<SlaveConnection> = {
      ping: (seq, now, slice, slices) => this.pingSlice(seq, now, slice, slices),
      expire: (connection, silentMs) => this.expire(connection, silentMs),
      pause: (lagMs) => {
        this.log.warn(`master stalled for ${Math.round(lagMs)} ms; that time is not held against any slave`);
        this.notify("stalled", lagMs);
      },
    };
    this.heartbeat = new HeartbeatScheduler(host, {
      interval: this.#options.heartbeatInterval,
      timeout: this.#options.heartbeatTimeout,
      minSliceSize: this.#options.heartbeatSliceSize,
    });
    this.slots = new PingSlots(this.heartbeat.slices, PING_SLOT_BLOCK);
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

  /** Starts serving and the heartbeat (and, with a `cluster` option, joining the cluster in the background); resolves with the bound port. */
  async listen(): Promise<number> {
    if (this.state !== "idle") throw new NetSyncError(`master is ${this.state}`, Code.FAILED_PRECONDITION);
    const options = this.#options;
    // Loaded only in cluster mode, so a master on its own never loads NATS. Before binding: once bound, accepting waits for nothing.
    const clusterModule = options.cluster ? await import("./cluster/master-fleet.js") : undefined;
    const server = new MasterServer({
      heartbeatTimeout: options.heartbeatTimeout,
      maxMessageBytes: options.maxMessageBytes,
      reflection: options.reflection,
      tls: options.tls,
      token: options.token,
      serverOptions: options.serverOptions,
      log: this.log,
      onSync: (call) => this.onSync(call),
      admin: adminImplementation(this),
    });
    this.boundPort = await server.bind(this.urlHost, options.port);
    this.server = server;
    if (clusterModule && options.cluster) {
      // Made before the first stream is accepted (the id, default host:port, is known now), started once serving.
      const { node, clock } = clusterModule.createMasterCluster(this.localMaster(), options.cluster, {
        observer: this.metrics,
        logger: options.logger,
      });
      this.cluster = node;
      this.epochs = clock;
    }
    this.state = "listening";
    this.heartbeat.start();
    server.setServing(true);
    this.cluster?.start();
    if (this.metrics && options.metricsPort !== undefined) {
      try {
        this.boundMetricsPort = await this.metrics.listen(options.metricsPort, options.host);
      } catch (err) {
        // Leave nothing running behind a failed listen().
        await this.close();
        throw NetSyncError.from(err, Code.UNAVAILABLE);
      }
      this.log.info(`metrics on http://${this.urlHost}:${this.boundMetricsPort}/metrics`);
    }
    if (options.httpPort !== undefined) {
      try {
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
      } catch (err) {
        await this.close();
        throw NetSyncError.from(err, Code.UNAVAILABLE);
      }
    }
    const security =
      (options.tls ? " with TLS" : "") +
      (options.tls?.clientCa ? " (client certificates required)" : "") +
      (options.token ? " (bearer token required)" : "");
    this.log.info(
      `listening on ${this.address}${security} ` +
        `(heartbeat every ${options.heartbeatInterval} ms, timeout ${options.heartbeatTimeout} ms)` +
        (this.cluster
          ? `, master ${this.id} of cluster "${this.cluster.clusterName}" over ${options.cluster!.servers.map(redactServer).join(",")}`
          : ""),
    );
    return this.boundPort;
  }

  /** The local-only operations the cluster core reaches this master through. */
  private localMaster(): LocalMaster {
    const master = this;
    return {
      get id() {
        return master.id;
      },
      get address() {
        return master.address;
      },
      get size() {
        return master.size;
      },
      slaves: (selector) => this.slaves({ selector }),
      send: (slaveId, data) => this.send(slaveId, data) === 1,
      requestReply: (slaveId, data, timeoutMs) => this.requestLocal(slaveId, data, timeoutMs),
      broadcast: (data, selector) => this.broadcast(data, { selector }),
      epochOf: (slaveId) => this.registry.get(slaveId)?.epoch,
      endReplaced: (slaveId, epoch, byMaster) => this.endReplaced(slaveId, epoch, byMaster),
    };
  }

  private endReplaced(slaveId: string, epoch: Epoch, byMaster: string): void {
    const connection = this.registry.get(slaveId);
    if (!connection || connection.epoch !== epoch) return;
    this.drop(connection, "replaced", `replaced by a newer connection on master ${byMaster}`, Code.UNAVAILABLE);
  }

  // --- cluster-wide calls ------------------------------------------------------------
  // slaves(), has(), send(), broadcast() stay local and synchronous; these reach every master
  // of the cluster and, without one, answer from the local registry.

  /** "off" without a cluster; else the link to NATS ("connected" while cluster-wide calls can reach other masters). */
  get clusterState(): ClusterStatus {
    return this.cluster?.state ?? "off";
  }

  /** The masters known alive, this one first (only this one without a cluster). */
  masters(): MasterInfo[] {
    if (this.cluster) return this.cluster.masters().map(masterInfoOf);
    return [{ id: this.id, address: this.address, slavesHeld: this.size, lastHeard: new Date(), self: true }];
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
    const selector = Selector.from(options.selector);
    if (!this.cluster) {
      const slaves = this.slaves({ selector }).map((slave) => ({ ...slave, masterId: this.id }));
      return { slaves, masters: this.masters(), unanswered: [], clusterAvailable: false };
    }
    const view = await this.cluster.listSlaves(selector.empty ? undefined : selector.toString(), options.timeout);
    return {
      slaves: view.slaves.map(fleetSlaveOf),
      masters: view.masters.map(masterInfoOf),
      unanswered: view.unanswered,
      clusterAvailable: view.clusterAvailable,
    };
  }

  /**
   * Writes a Custom command to a slave held by any master of the cluster.
   * Rejects with NOT_FOUND when no master holds it (fast: NATS has no
   * responder), UNAVAILABLE when it is not local and NATS is unreachable.
   */
  async routeSend(slaveId: string, custom: CustomInput): Promise<RoutedSendResult> {
    if (this.registry.get(slaveId)) return { written: this.send(slaveId, custom) === 1, masterId: this.id };
    if (!this.cluster) throw new NetSyncError(`no slave with id "${slaveId}"`, Code.NOT_FOUND);
    return this.cluster.send(slaveId, dataOf(custom));
  }

  /** Like requestReply(), and says which master held the slave. */
  async routeRequest(slaveId: string, custom: CustomInput, options: RequestOptions = {}): Promise<RoutedReplyResult> {
    const timeout = options.timeout ?? DEFAULTS.requestTimeout;
    if (!(timeout > 0 && timeout <= MAX_TIMER_MS)) {
      throw new NetSyncError(`request timeout must be from 1 ms to ${MAX_TIMER_MS} ms, got ${timeout}`, Code.INVALID_ARGUMENT);
    }
    if (this.registry.get(slaveId) || !this.cluster) return { reply: await this.requestLocal(slaveId, custom, timeout), masterId: this.id };
    const routed = await this.cluster.request(slaveId, dataOf(custom), timeout);
    return { reply: replyOf(routed.reply), masterId: routed.masterId };
  }

  /**
   * Writes a Custom command to every slave of the cluster (those a selector
   * matches) and counts them by master; partial like fleet(). Without a
   * cluster, broadcast() with the count under this master's id.
   */
  async broadcastFleet(custom: CustomInput, options: FleetOptions = {}): Promise<FleetBroadcastResult> {
    const selector = Selector.from(options.selector);
    if (!this.cluster) {
      const written = this.broadcast(custom, { selector });
      return { written, byMaster: { [this.id]: written }, unanswered: [], clusterAvailable: false };
    }
    const result = await this.cluster.broadcast(dataOf(custom), selector.empty ? undefined : selector.toString(), options.timeout);
    return { written: result.total, byMaster: result.byMaster, unanswered: result.unanswered, clusterAvailable: result.clusterAvailable };
  }

  /** Resolves once NATS has seen this master's routes so far (tests, and callers that just accepted a slave); at once without a cluster. */
  async clusterFlush(): Promise<void> {
    await this.cluster?.flush();
  }

  /**
   * Connected slaves, as a snapshot; with a selector, only those whose
   * labels match it. A malformed selector throws NetSyncError INVALID_ARGUMENT.
   */
  slaves(options: SelectOptions = {}): SlaveInfo[] {
    const selector = Selector.from(options.selector);
    if (selector.empty) return this.registry.snapshot();
    const out: SlaveInfo[] = [];
    for (const connection of this.registry.values()) if (selector.matches(connection.labels)) out.push(connection.info());
    return out;
  }

  /** Whether a slave with this id is connected. */
  has(slaveId: string): boolean {
    return this.registry.get(slaveId) !== undefined;
  }

  /** Slaves that left recently (bounded by historySize), newest first. */
  recentlyClosed(): ClosedSlaveInfo[] {
    return this.registry.recentlyClosed();
  }

  /** Number of connected slaves. */
  get size(): number {
    return this.registry.size;
  }

  /** Sends a Custom command to one slave; returns 1 if it was written, else 0. */
  send(slaveId: string, custom: CustomInput): number {
    const connection = this.registry.get(slaveId);
    if (!connection) return 0;
    return this.writeCustom(connection, encodeCustom(custom)) ? 1 : 0;
  }

  /**
   * Sends a Custom command to every slave, or with a selector to those whose
   * labels match it; returns how many it was written to. A malformed
   * selector throws NetSyncError INVALID_ARGUMENT and sends nothing.
   */
  broadcast(custom: CustomInput, options: SelectOptions = {}): number {
    const selector = Selector.from(options.selector);
    const message = encodeCustom(custom);
    let written = 0;
    for (const connection of this.registry.values()) {
      if (!selector.empty && !selector.matches(connection.labels)) continue;
      if (this.writeCustom(connection, message)) written++;
    }
    return written;
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

  /** A request to a local slave only; `timeout` already checked. */
  private requestLocal(slaveId: string, custom: CustomInput, timeout: number): Promise<Reply> {
    const connection = this.registry.get(slaveId);
    if (!connection) return Promise.reject(new NetSyncError(`no slave with id "${slaveId}"`, Code.NOT_FOUND));
    const requestId = ++this.nextRequestId;
    const base = typeof custom === "string" ? { data: custom } : custom;
    // Written before it is registered as pending: a failed write must not look like the slave leaving.
    if (!this.writeCustom(connection, encodeCustom({ ...base, requestId }))) {
      return Promise.reject(new NetSyncError(`could not write to slave ${slaveId}: it is not reading its stream`, Code.RESOURCE_EXHAUSTED));
    }
    return connection.awaitReply(requestId, timeout, performance.now());
  }

  private writeCustom(connection: SlaveConnection, message: Encoded): boolean {
    if (!this.write(connection, message)) return false;
    connection.commandsSent++;
    this.stats.commandsSent++;
    return true;
  }

  /** Writes or, when the slave's queue is full, evicts it as a slow consumer. */
  private write(connection: SlaveConnection, message: Encoded): boolean {
    if (connection.write(message)) return true;
    if (!connection.closed) {
      this.evict(
        connection,
        "slow_consumer",
        Code.RESOURCE_EXHAUSTED,
        `slow consumer: more than ${this.#options.maxPendingBytes} bytes queued`,
        `${connection.pendingBytes} bytes queued, not reading`,
      );
    }
    return false;
  }

  /** Ends every stream with UNAVAILABLE, stops the heartbeat and the server. */
  async close(): Promise<void> {
    if (this.state === "closed" || this.state === "closing") return;
    const wasListening = this.state === "listening";
    this.state = "closing";
    this.server?.setServing(false);
    this.heartbeat.stop();
    const cluster = this.cluster;
    this.cluster = undefined;
    if (cluster) {
      // Leave first, so other masters drop this one at once rather than after missed heartbeats; NATS drops its routes with the connection.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([cluster.close({ leave: true }), new Promise((resolve) => (timer = setTimeout(resolve, CLUSTER_CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    for (const connection of this.ending) connection.dispose();
    this.ending.clear();
    for (const connection of Array.from(this.registry.values())) {
      this.drop(connection, "shutdown", "master shutting down", Code.UNAVAILABLE);
    }
    const server = this.server;
    this.server = undefined;
    await server?.shutdown(this.#options.shutdownGrace);
    await this.dashboard?.close();
    this.dashboard = undefined;
    this.boundHttpPort = undefined;
    await this.metrics?.close();
    this.boundMetricsPort = undefined;
    this.slots.clear();
    this.state = "closed";
    if (wasListening) this.log.info("master stopped");
  }

  // --- heartbeat rounds and expiries (the scheduler's host) ---------------------

  private pingSlice(seq: bigint, now: number, slice: number, slices: number): void {
    let message: Encoded | undefined;
    let sent = 0;
    const round = Number(seq);
    for (const slot of this.slots.slice(slice, slices)) {
      // One encoding per slice, shared by every stream in it.
      message ??= Encoded.of(
        CommandSchema,
        create(CommandSchema, { kind: { case: "ping", value: { seq, sentAtUnixMs: BigInt(Date.now()) } } }),
      );
      // No copy of the slot: an eviction during the loop only deletes, which Set iteration tolerates.
      for (const connection of slot) {
        if (this.write(connection, message)) {
          connection.pinged(round, now);
          sent++;
        }
      }
    }
    if (sent === 0) return;
    this.stats.pingsSent += sent;
    if (this.debug) this.log.debug(`ping round ${seq}, slice ${slice + 1}/${slices}, sent to ${sent} slaves`);
  }

  private expire(connection: SlaveConnection, silentMs: number): void {
    this.evict(
      connection,
      "heartbeat_timeout",
      Code.UNAVAILABLE,
      `heartbeat timeout: no message for ${Math.round(silentMs)} ms (timeout ${this.#options.heartbeatTimeout} ms)`,
      `silent for ${Math.round(silentMs)} ms`,
    );
  }

  // --- streams ---------------------------------------------------------------

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
  }

  private onSync(call: SyncCall): void {
    if (this.state !== "listening") {
      call.emit("error", Object.assign(new Error("master shutting down"), { code: Code.UNAVAILABLE }));
      return;
    }
    const claimed = call.metadata.get(SLAVE_ID_METADATA_KEY)[0];
    let id: string;
    let assigned = false;
    if (claimed === undefined) {
      id = `slave-${randomUUID().slice(0, 8)}`;
      assigned = true;
    } else {
      id = typeof claimed === "string" ? claimed : claimed.toString("utf8");
      const problem = validateSlaveId(id);
      if (problem) {
        this.log.warn(`refused a stream from ${call.getPeer()}: ${problem}`);
        call.emit("error", Object.assign(new Error(`${SLAVE_ID_METADATA_KEY}: ${problem}`), { code: Code.INVALID_ARGUMENT }));
        return;
      }
    }

    let labels: Labels;
    try {
      const declared = call.metadata.get(LABELS_METADATA_KEY).map((v) => (typeof v === "string" ? v : v.toString("utf8")));
      labels = parseLabels(declared.join(","));
    } catch (err) {
      const { message } = NetSyncError.from(err);
      this.log.warn({ message: `refused slave ${id} from ${call.getPeer()}: ${message}`, slaveId: id, peer: call.getPeer() });
      call.emit("error", Object.assign(new Error(message), { code: Code.INVALID_ARGUMENT }));
      return;
    }

    const connection = new SlaveConnection(id, call.getPeer(), call, performance.now(), this.#options.maxPendingBytes, labels);
    connection.epoch = this.epochs?.next();
    this.stats.connectionsTotal++;
    const previous = this.registry.add(connection);
    // Never waits on NATS: routes and claims are published in the background (or on reconnect).
    if (this.cluster && connection.epoch) this.cluster.slaveAdded(id, connection.epoch);
    if (previous) {
      this.drop(previous, "replaced", `replaced by a newer connection from ${connection.peer}`, Code.UNAVAILABLE);
    }
    this.heartbeat.watch(connection);
    this.slots.assign(connection);

    const headers = new Metadata();
    headers.set(SLAVE_ID_METADATA_KEY, id);
    call.sendMetadata(headers);

    call.on("data", (message: Command | DecodeFailure) => this.onMessage(connection, message));
    call.on("end", () => {
      // grpc-js also ends the readable side when the connection dies, just before 'cancelled';
      // one turn later tells a slave that left cleanly (finish with OK) from one that crashed.
      setImmediate(() => {
        if (call.cancelled) this.drop(connection, "disconnected", "connection lost");
        else this.drop(connection, "disconnected", "slave closed the stream", Code.OK);
      });
    });
    call.on("cancelled", () => this.drop(connection, "disconnected", "connection lost or stream cancelled by the slave"));
    call.on("error", (err: Error) => this.drop(connection, "error", `stream error: ${err.message}`));

    this.log.info({
      message:
        `slave ${id} connected from ${connection.peer}${assigned ? " (id assigned by the master)" : ""}` +
        (Object.keys(labels).length > 0 ? ` with labels ${formatLabels(labels)}` : ""),
      slaveId: id,
      peer: connection.peer,
    });
    this.notify("slave:connected", { slave: connection.info(), reason: "connected", details: `from ${connection.peer}` });
  }

  private onMessage(connection: SlaveConnection, message: Command | DecodeFailure): void {
    if (connection.closed) return;
    if (message instanceof DecodeFailure) {
      this.drop(connection, "error", `malformed Command: ${message.error.message}`, Code.INVALID_ARGUMENT);
      return;
    }
    const now = performance.now();
    if (!connection.admit(now, this.#options.maxMessagesPerSecond)) {
      this.evict(
        connection,
        "rate_limit",
        Code.RESOURCE_EXHAUSTED,
        `rate limit: more than ${this.#options.maxMessagesPerSecond} messages in one second`,
        "flooding",
      );
      return;
    }
    this.heartbeat.seen(connection, now);
    switch (message.kind.case) {
      case "pong": {
        this.stats.pongsReceived++;
        const { seq } = message.kind.value;
        const rtt = connection.ponged(seq, now);
        if (rtt === undefined) {
          if (this.debug) this.log.debug(`pong from ${connection.id} for an unknown or outdated seq ${seq}`);
          return;
        }
        this.observer?.rtt(rtt);
        if (this.debug) this.log.debug(`pong from ${connection.id} seq ${seq} rtt ${rtt.toFixed(2)} ms`);
        return;
      }
      case "custom":
        this.notify("command", connection.id, message.kind.value);
        return;
      case "reply": {
        const latency = connection.replied(message.kind.value, now);
        if (latency === undefined) {
          if (this.debug) this.log.debug(`reply from ${connection.id} to unknown or expired request ${message.kind.value.requestId}`);
          return;
        }
        this.observer?.replyLatency(latency);
        return;
      }
      default:
        // A Ping from a slave, or a Command with no kind: a sign of life, nothing more.
        return;
    }
  }

  private evict(connection: SlaveConnection, kind: EvictionKind, code: Code, details: string, logDetail: string): void {
    if (connection.closed) return;
    const slave = this.forget(connection, "evicted", details);
    this.stats.evictions[kind] = (this.stats.evictions[kind] ?? 0) + 1;
    this.endStream(connection, code, details);
    this.log.warn({
      message: `slave ${connection.id} (${connection.peer}) evicted: ${kind.replace("_", " ")}, ${logDetail}`,
      slaveId: connection.id,
      peer: connection.peer,
    });
    this.notify("slave:evicted", { slave, reason: "evicted", details });
  }

  /**
   * Takes a connection out of the registry and the heartbeat, records it in
   * the closed history, fails its pending requests, and returns the snapshot
   * it was recorded with (the one the close event carries).
   */
  private forget(connection: SlaveConnection, reason: CloseReason, details: string): SlaveInfo {
    this.heartbeat.unwatch(connection);
    this.slots.release(connection);
    this.registry.remove(connection);
    // Compare-and-delete on the epoch: the cleanup of an older connection never drops a newer one's route.
    if (this.cluster && connection.epoch) this.cluster.slaveRemoved(connection.id, connection.epoch);
    const slave = connection.info();
    this.registry.recordClosed({ slave, closedAt: new Date(), reason, details });
    connection.failRequests(new NetSyncError(`slave ${connection.id} left before replying (${reason}: ${details})`, Code.UNAVAILABLE));
    return slave;
  }

  /**
   * Ends a stream with a status and, should the peer never read it (frozen or
   * partitioned, so the status cannot flush), resets the stream one heartbeat
   * timeout later, which lets the idle timer close its connection: nothing
   * stale is kept.
   */
  private endStream(connection: SlaveConnection, code: Code, details: string): void {
    connection.end(code, details);
    if (this.state !== "listening") return; // close() cuts whatever is left
    this.ending.add(connection);
    connection.abortAfter(this.#options.heartbeatTimeout, (reset) => {
      this.ending.delete(connection);
      if (reset && this.debug) this.log.debug(`reset the unread stream of ${connection.id} (${connection.peer})`);
    });
  }

  /** Removes a connection whose stream ended or must end; idempotent. */
  private drop(connection: SlaveConnection, reason: CloseReason, details: string, code?: Code): void {
    if (connection.closed) return;
    const slave = this.forget(connection, reason, details);
    this.stats.disconnects[reason] = (this.stats.disconnects[reason] ?? 0) + 1;
    if (code === undefined) connection.closed = true;
    else if (code === Code.OK) {
      connection.closed = true;
      connection.call.end();
    } else this.endStream(connection, code, details);
    const line = `slave ${connection.id} (${connection.peer}) ${reason === "replaced" ? "" : "disconnected: "}${details}`;
    const entry = { message: line, slaveId: connection.id, peer: connection.peer };
    if (reason === "replaced" || reason === "error") this.log.warn(entry);
    else this.log.info(entry);
    this.notify("slave:disconnected", { slave, reason, details });
  }
}

/** The part of a Custom that travels between masters: its data (a request id is chosen by the master holding the slave). */
function dataOf(custom: CustomInput): string {
  return typeof custom === "string" ? custom : (custom.data ?? "");
}

function encodeCustom(custom: CustomInput): Encoded {
  const value = create(CustomSchema, typeof custom === "string" ? { data: custom } : custom);
  return Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "custom", value } }));
}
