import { Code } from "../code.js";
import { CLUSTER_DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import type { Fleet, StreamTracker } from "../fleet/fleet.js";
import type { BatchHandlers, CommandBatch } from "../fleet/request-batch.js";
import { histogramPercentile, histogramToWire, mergeWireHistogram, type RttHistogram } from "../fleet/rtt-histogram.js";
import type { BatchCustom, JobDelivery, PageRequest, Scope, Self } from "../fleet/scope.js";
import { mergeSortedUnique } from "../fleet/sorted-ids.js";
import { WatchHub } from "../fleet/watch-hub.js";
import type { JobStoreSink } from "../jobs/store.js";
import { getLogger, type Logger } from "../logger.js";
import type {
  ClusterStatus,
  CustomInput,
  Epoch,
  FleetBroadcastResult,
  FleetPage,
  FleetSummary,
  FleetView,
  MasterInfo,
  RoutedReplyResult,
  RoutedSendResult,
  WatchEvent,
  WatchListener,
} from "../model.js";
import { Selector } from "../selector.js";
import { decodePageToken } from "../slave-pages.js";
import { ClusterNode } from "./cluster-node.js";
import { clusterEventOf, clusterReplyOf, clusterSlaveOf, fleetSlaveOf, masterInfoOf, replyOf, watchEventOf } from "./convert.js";
import { compareEpochs, EpochClock } from "./epoch.js";
import type { JetStreamJobStore } from "./jobs/jetstream-store.js";
import { isJobId } from "./jobs/names.js";
import { type ClusterOptions, redactServer } from "./options.js";
import type { ClusterObserver, ClusterStats } from "./stats.js";
import type { ClusterSlave, LocalFleet } from "./types.js";

/** Longest close() waits for the node to leave and close its NATS connection (a frozen server never answers). */
const CLOSE_WAIT_MS = 1_000;
/**
 * First and longest wait before trying again to open the JetStream job store after it failed for a
 * reason other than NATS having no JetStream (e.g. its API did not answer within its timeout on a
 * loaded machine): without it, such a master kept jobs in memory until its next reconnect.
 */
const JOB_STORE_RETRY_MIN_MS = 1_000;
const JOB_STORE_RETRY_MAX_MS = 30_000;

/**
 * A master in a cluster: the {@link Scope} that reaches every master over
 * NATS, and the one adapter between the local fleet and the cluster node.
 * It stamps each accepted stream with an epoch and claims its route (as the
 * fleet's StreamTracker), hands the node the local-only operations it serves
 * other masters with (its LocalFleet, never the routed calls, or a routed
 * call could bounce back out), and converts the node's wire data to the
 * master's model. Loaded by the composition root with a dynamic import(),
 * only in cluster mode, so a master on its own never loads NATS.
 */
export class ClusterScope implements Scope {
  private readonly node: ClusterNode;
  private readonly clock: EpochClock;
  private readonly tracker: StreamTracker;
  /** The local fleet's events: published to the other masters, and half of what a watch here sees. */
  private readonly events: WatchHub;
  /** Watchers of the other half: other masters' slave events and the membership. */
  private readonly remote = new Set<WatchListener>();
  private unpublish: (() => void) | undefined;
  /** The job runner, to which the JetStream job store is given once open (unless jobStore is "memory"). */
  private readonly jobs: JobStoreSink | undefined;
  private jobStore: JetStreamJobStore | undefined;
  private jobStoreOpening = false;
  /** What was last logged about the job store, so a retry on every reconnect logs one line. */
  private jobStoreLogged: string | undefined;
  /** The next try to open the job store after a failure worth retrying, and the wait before the one after. */
  private jobStoreRetry: NodeJS.Timeout | undefined;
  private jobStoreRetryMs = JOB_STORE_RETRY_MIN_MS;
  private closing = false;
  private readonly log: Logger;

  constructor(
    private readonly fleet: Fleet,
    private readonly self: Self,
    private readonly options: ClusterOptions,
    extras: { observer?: ClusterObserver; logger?: Logger; events?: WatchHub; jobs?: JobStoreSink } = {},
  ) {
    this.events = extras.events ?? new WatchHub();
    this.jobs = extras.jobs;
    this.log = extras.logger ?? getLogger("cluster");
    // Made before the first stream is accepted: the id (default host:port) is known by now.
    this.clock = new EpochClock(self.id);
    this.node = new ClusterNode(this.localFleet(), { ...options, ...extras });
    this.tracker = {
      stamp: () => this.clock.next(),
      added: (slaveId, epoch) => this.node.slaveAdded(slaveId, epoch),
      removed: (slaveId, epoch) => this.node.slaveRemoved(slaveId, epoch),
    };
    this.node.on("slave-events", (events) => {
      if (this.remote.size === 0) return;
      for (const event of events) this.emitRemote(watchEventOf(event));
    });
    this.node.on("member-joined", (member) =>
      this.emitRemote({ kind: "master_joined", masterId: member.id, at: new Date(), details: `at ${member.address}` }),
    );
    this.node.on("member-left", (member, reason) =>
      this.emitRemote({ kind: "master_left", masterId: member.id, at: new Date(), details: reason }),
    );
    if (this.jobs && (options.jobStore ?? CLUSTER_DEFAULTS.jobStore) !== "memory") {
      // "auto" too: until this master knows whether NATS has JetStream, a job accepted into its memory would die
      // with it while the client was told it started (the soak found exactly that after a master restart).
      this.jobs.requireStore(
        options.jobStore === "jetstream"
          ? `the cluster's JetStream job store is not open yet (jobStore "jetstream")`
          : "this master has not yet learned whether the cluster keeps jobs in JetStream (it is connecting to NATS)",
      );
      this.node.on("connected", () => this.jobStoreUp());
    }
  }

  /**
   * NATS is up: open the JetStream job store the first time (it then keeps
   * every job started here, and delivers what other masters kept for the
   * slaves held here), or tell it NATS is back. Without JetStream on the
   * server, jobs stay in this master's memory ("auto": one warn line; tried
   * again on every reconnect, so a server restarted with -js is used).
   */
  private jobStoreUp(): void {
    const jobs = this.jobs;
    if (!jobs || this.closing) return;
    if (this.jobStore) {
      void this.jobStore.up();
      return;
    }
    if (this.jobStoreOpening) return;
    this.jobStoreOpening = true;
    const log = this.log;
    void (async () => {
      // Loaded only when wanted, like the cluster itself: a master with jobStore "memory" never loads JetStream.
      const { JetStreamJobStore } = await import("./jobs/jetstream-store.js");
      const node = this.node;
      const store = await JetStreamJobStore.open(
        {
          get nc() {
            return node.connection;
          },
          get connected() {
            return node.connected;
          },
        },
        {
          clusterName: node.clusterName,
          pending: jobs.bounds.pending,
          retentionMs: jobs.bounds.cache.maxAgeMs,
          maxDeliverWithin: jobs.bounds.maxDeliverWithin,
          outbox: this.options.jobStoreOutbox ?? CLUSTER_DEFAULTS.jobStoreOutbox,
          log,
        },
      );
      if (this.closing) {
        await store.close();
        return;
      }
      this.jobStore = store;
      this.jobStoreRetryMs = JOB_STORE_RETRY_MIN_MS;
      jobs.useStore(store);
      // A reply this master receives for another master's job is recorded here, so it outlives that master.
      const self = this.self;
      node.jobRecorder = async (jobId, slaveId, reply, job) => {
        if (!isJobId(jobId)) return false;
        const outcome = await store.settle(jobId, {
          slaveId,
          masterId: self.id,
          status: reply.case === "error" ? "error" : "ok",
          ...(reply.case === "error" ? { error: reply.value } : { data: reply.value }),
          latencyMs: Date.now() - job.startedAt,
          deliveries: job.deliveries,
        });
        return outcome !== "lost";
      };
      const { names } = store;
      log.info(
        `jobs are kept in JetStream (streams ${names.resultsStream}, ${names.pendingStream}, bucket ${names.bucket}): ` +
          "a master's death loses neither its pending deliveries nor its results",
      );
    })()
      .catch((err: unknown) => {
        const error = NetSyncError.from(err);
        const why = error.message;
        const required = this.options.jobStore === "jetstream";
        // NATS without JetStream changes only with a restart (a reconnect tries again); anything else may pass.
        const lasting = error.code === Code.FAILED_PRECONDITION;
        const line = required
          ? `cannot open the cluster's JetStream job store (${why}); jobs are refused until it opens (jobStore "jetstream"), tried again ${lasting ? "on every reconnect" : "in the background"}`
          : lasting
            ? `NATS has no usable JetStream (${why}): jobs are kept in this master's memory, and its death loses its pending deliveries and results; run nats-server with -js to keep them`
            : `the cluster's JetStream job store did not open (${why}): jobs are kept in this master's memory until it does (tried again in the background), and its death loses those`;
        if (line !== this.jobStoreLogged) (required ? log.error : log.warn)(line);
        this.jobStoreLogged = line;
        if (!required) jobs.useMemory();
        if (!lasting) this.retryJobStore();
      })
      .finally(() => {
        this.jobStoreOpening = false;
      });
  }

  /** Tries to open the job store again later, waiting twice as long each time (up to a cap); a reconnect meanwhile tries at once. */
  private retryJobStore(): void {
    if (this.closing || this.jobStoreRetry) return;
    const wait = this.jobStoreRetryMs;
    this.jobStoreRetryMs = Math.min(2 * wait, JOB_STORE_RETRY_MAX_MS);
    this.jobStoreRetry = setTimeout(() => {
      this.jobStoreRetry = undefined;
      // A reconnect meanwhile may have opened it already; then there is nothing to try.
      if (this.node.connected && !this.jobStore) this.jobStoreUp();
    }, wait);
  }

  get status(): ClusterStatus {
    return this.node.state;
  }

  describe(): string {
    return `master ${this.self.id} of cluster "${this.node.clusterName}" over ${this.options.servers.map(redactServer).join(",")}`;
  }

  /** Counters for the netsync_cluster_* metrics. */
  stats(): ClusterStats {
    return this.node.stats();
  }

  start(): void {
    this.fleet.tracker = this.tracker;
    // Every local slave event goes to the other masters' watchers, whoever watches here.
    this.unpublish ??= this.events.on((event) => {
      if (event.slave && event.kind !== "master_joined" && event.kind !== "master_left") {
        this.node.publishEvent(clusterEventOf({ ...event, slave: event.slave, kind: event.kind }));
      }
    });
    this.node.start();
  }

  /** Leaves first, so other masters drop this one at once rather than after missed heartbeats; NATS drops its routes with the connection. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.jobStoreRetry);
    this.jobStoreRetry = undefined;
    // Before the connection closes: the store gets a moment to write what waits for NATS.
    this.node.jobRecorder = undefined;
    await this.jobStore?.close();
    this.jobStore = undefined;
    if (this.fleet.tracker === this.tracker) this.fleet.tracker = undefined;
    this.unpublish?.();
    this.unpublish = undefined;
    this.remote.clear();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.node.close({ leave: true }), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  flush(): Promise<void> {
    return this.node.flush();
  }

  masters(): MasterInfo[] {
    return this.node.masters().map(masterInfoOf);
  }

  async list(selector: Selector, timeout?: number): Promise<FleetView> {
    const view = await this.node.listSlaves(textOf(selector), timeout);
    return {
      slaves: view.slaves.map(fleetSlaveOf),
      masters: view.masters.map(masterInfoOf),
      unanswered: view.unanswered,
      clusterAvailable: view.clusterAvailable,
    };
  }

  async ids(selector: Selector, timeout?: number): Promise<{ ids: string[]; unanswered: string[] }> {
    const found = await this.node.listIds(textOf(selector), timeout);
    // Each master's ids come in id order: merged, they stay sorted, and the job taking them skips its Set and sort.
    return { ids: mergeSortedUnique(found.byMaster.map((part) => part.ids)), unanswered: found.unanswered };
  }

  async page(selector: Selector, request: PageRequest): Promise<FleetPage> {
    const token = decodePageToken(request.pageToken, selector.toString());
    const { sizeOf } = request;
    const page = await this.node.page(textOf(selector), token, request.pageSize, request.timeout, {
      max: request.maxBytes,
      sizeOf: sizeOf ? (slave) => sizeOf(fleetSlaveOf(slave)) : undefined,
    });
    return {
      slaves: page.slaves.map(fleetSlaveOf),
      nextPageToken: page.nextPageToken,
      masters: page.masters.map(masterInfoOf),
      unanswered: page.unanswered,
      clusterAvailable: page.clusterAvailable,
    };
  }

  async summary(timeout?: number): Promise<FleetSummary> {
    const counts = await this.node.summary(timeout);
    const histogram: RttHistogram = new Map();
    for (const wire of counts.rtt) mergeWireHistogram(histogram, wire);
    return {
      connected: counts.masters.reduce((sum, m) => sum + m.slavesHeld, 0),
      rttP50: histogramPercentile(histogram, 50),
      rttP99: histogramPercentile(histogram, 99),
      masters: counts.masters.map(masterInfoOf),
      unanswered: counts.unanswered,
      clusterAvailable: counts.clusterAvailable,
    };
  }

  reachable(slaveId: string): boolean {
    return this.fleet.has(slaveId) || this.node.knowsHolder(slaveId);
  }

  async send(slaveId: string, custom: CustomInput): Promise<RoutedSendResult> {
    if (this.fleet.has(slaveId)) return { written: this.fleet.send(slaveId, custom) === 1, masterId: this.self.id };
    return this.node.send(slaveId, dataOf(custom));
  }

  async request(slaveId: string, custom: CustomInput, timeout: number, job?: JobDelivery): Promise<RoutedReplyResult> {
    if (this.fleet.has(slaveId)) return { reply: await this.fleet.request(slaveId, custom, timeout), masterId: this.self.id };
    const commandId = typeof custom === "string" ? undefined : custom.commandId || undefined;
    const routed = await this.node.request(slaveId, dataOf(custom), timeout, commandId, commandId ? job : undefined);
    return { reply: replyOf(routed.reply), masterId: routed.masterId, ...(routed.recorded ? { recorded: true } : {}) };
  }

  /**
   * A job's fan-out: its slaves held here through the fleet's request batch,
   * those held elsewhere by holder, one message per holder and turn (the
   * node's RoutedBatch), each outcome to `handlers` once.
   */
  requestMany(custom: BatchCustom, timeout: number, handlers: BatchHandlers, job?: JobDelivery): CommandBatch {
    const local = this.fleet.requestMany(custom, timeout, handlers);
    const remote = this.node.requestMany(
      { data: custom.data, commandId: custom.commandId, timeoutMs: timeout, ...(job ? { job } : {}) },
      {
        reply: (slaveId, reply, masterId, recorded) => handlers.reply(slaveId, replyOf(reply), { masterId, recorded }),
        fail: (slaveId, error) => handlers.fail(slaveId, error),
      },
    );
    return {
      send: (slaveId) => (this.fleet.has(slaveId) ? local.send(slaveId) : remote.send(slaveId)),
      close: () => {
        local.close();
        remote.close();
      },
    };
  }

  async broadcast(custom: CustomInput, selector: Selector, timeout?: number): Promise<FleetBroadcastResult> {
    return this.node.broadcast(dataOf(custom), textOf(selector), timeout);
  }

  /** Local events from the fleet's hub; other masters' events and the membership from the node. */
  watch(listener: WatchListener): () => void {
    const off = this.events.on(listener);
    this.remote.add(listener);
    this.node.followEvents(true);
    return () => {
      off();
      this.remote.delete(listener);
      if (this.remote.size === 0) this.node.followEvents(false);
    };
  }

  private emitRemote(event: WatchEvent): void {
    for (const listener of this.remote) listener(event);
  }

  /** The local fleet as the node serves other masters from it: local-only operations, in the cluster's wire data. */
  private localFleet(): LocalFleet {
    const { fleet, self } = this;
    return {
      get id() {
        return self.id;
      },
      get address() {
        return self.address;
      },
      get size() {
        return fleet.size;
      },
      slaves: (selector) => fleet.slaves(Selector.from(selector)).map((slave) => clusterSlaveOf(slave, self.id)),
      page: (selector, after, inclusive, limit, scanLimit, maxBytes = Number.POSITIVE_INFINITY) => {
        const cursor = after === undefined ? undefined : { id: after, inclusive };
        // Each slave converted (and weighed) once, as the walk reaches it: nothing past the budget is made.
        const slaves: ClusterSlave[] = [];
        let bytes = 0;
        const part = fleet.page(Selector.from(selector), cursor, limit, scanLimit, (info) => {
          const slave = clusterSlaveOf(info, self.id);
          bytes += maxBytes === Number.POSITIVE_INFINITY ? 0 : Buffer.byteLength(JSON.stringify(slave)) + 1;
          if (bytes > maxBytes && slaves.length > 0) return false;
          slaves.push(slave);
          return true;
        });
        return { slaves, last: part.last, done: part.done };
      },
      pageIds: (selector, after, inclusive, limit, scanLimit, maxBytes = Number.POSITIVE_INFINITY) => {
        const cursor = after === undefined ? undefined : { id: after, inclusive };
        const ids: string[] = [];
        let bytes = 0;
        const part = fleet.page(Selector.from(selector), cursor, limit, scanLimit, (info) => {
          // An id in a JSON array: its characters, quotes and a comma (ids are printable; escapes are rare).
          bytes += info.id.length + 3;
          if (bytes > maxBytes && ids.length > 0) return false;
          ids.push(info.id);
          return true;
        });
        return { ids, last: part.last, done: part.done };
      },
      ids: (selector) => fleet.ids(Selector.from(selector)),
      rttHistogram: () => histogramToWire(fleet.rttHistogram()),
      send: (slaveId, data, commandId) => fleet.send(slaveId, { data, commandId }) === 1,
      requestReply: async (slaveId, data, timeoutMs, commandId) =>
        clusterReplyOf(await fleet.request(slaveId, { data, commandId }, timeoutMs)),
      requestMany: (data, commandId, timeoutMs, handlers) =>
        fleet.requestMany({ data, commandId }, timeoutMs, {
          reply: (slaveId, reply) => handlers.reply(slaveId, clusterReplyOf(reply)),
          fail: (slaveId, error) => handlers.fail(slaveId, error),
        }),
      broadcast: async (data, selector) => fleet.broadcast(data, Selector.from(selector)),
      replaced: (slaveId: string, epoch: Epoch, byMaster: string) => {
        // Compare-and-delete: only a local connection older than `epoch` ends; a newer local one is kept (the node re-claims it).
        const local = fleet.epochOf(slaveId);
        if (local === undefined || compareEpochs(local, epoch) >= 0) return;
        fleet.endReplaced(slaveId, local, byMaster);
      },
    };
  }
}

/** The part of a Custom that travels between masters: its data (the holder chooses the request id). */
function dataOf(custom: CustomInput): string {
  return typeof custom === "string" ? custom : (custom.data ?? "");
}

/** The node takes a selector as text, undefined for every slave. */
function textOf(selector: Selector): string | undefined {
  return selector.empty ? undefined : selector.toString();
}
