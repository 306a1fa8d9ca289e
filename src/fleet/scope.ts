import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type {
  ClusterStatus,
  CustomInput,
  FleetBroadcastResult,
  FleetPage,
  FleetSlaveInfo,
  FleetSummary,
  FleetView,
  MasterInfo,
  RoutedReplyResult,
  RoutedSendResult,
  WatchListener,
} from "../model.js";
import type { Selector } from "../selector.js";
import { decodePageToken, PAGE_ROUNDS, PAGE_SCAN_LIMIT, PageAssembler } from "../slave-pages.js";
import type { Fleet } from "./fleet.js";
import type { BatchHandlers, CommandBatch } from "./request-batch.js";
import { sortedPercentile } from "./rtt-histogram.js";
import { WatchHub } from "./watch-hub.js";

/** One page of the fleet-wide listing, as the scope is asked for it (the page size already checked). */
export interface PageRequest {
  /** Most slaves, ≥ 1. */
  pageSize: number;
  /** The previous page's nextPageToken, "" for the first; INVALID_ARGUMENT if it is not one, or of another selector. */
  pageToken: string;
  /** How long to wait for each other master, per round of asking. */
  timeout?: number;
  /** Bytes the page may take as `sizeOf` weighs its slaves (the first always fits). */
  maxBytes?: number;
  sizeOf?: (slave: FleetSlaveInfo) => number;
}

/**
 * The reach of a master's fleet-wide calls: this process alone
 * ({@link LocalScope}) or every master of a cluster (ClusterScope, in
 * src/cluster/). The composition root chooses one in listen(); the admin
 * service, the dashboard and the public API then ask the scope, never which
 * kind it is. A slave held here is always served here, at once, whatever the
 * scope: a scope only decides what happens to the others.
 */
export interface Scope {
  /** "off" for a lone master; else the cluster's link to NATS. */
  readonly status: ClusterStatus;
  /** What the master's "listening on" line adds about this scope ("" when there is nothing to say). */
  describe(): string;
  start(): void;
  /** Stops reaching other masters; bounded in time, never rejects. */
  close(): Promise<void>;
  /** Resolves once the routes published so far are known to the other masters. */
  flush(): Promise<void>;
  /** The masters known alive, this one first. */
  masters(): MasterInfo[];
  /** Every slave in reach that the selector matches, with its master; partial (never hanging) past `timeout`. */
  list(selector: Selector, timeout?: number): Promise<FleetView>;
  /** The ids of every slave in reach the selector matches (a job's targets), and the masters that did not answer: list() without the slaves. */
  ids(selector: Selector, timeout?: number): Promise<{ ids: string[]; unanswered: string[] }>;
  /**
   * One page of `list()`, in (id, master) order, after the position in its
   * token: each master answers only the next slice of its own sorted ids,
   * so a page costs O(page), not O(fleet).
   */
  page(selector: Selector, request: PageRequest): Promise<FleetPage>;
  /** Every master's count and its slaves' RTTs, without listing anyone; partial past `timeout`. */
  summary(timeout?: number): Promise<FleetSummary>;
  /** Whether a master in reach is known to hold `slaveId` now: from memory, never the network; a cluster's answer may be stale. */
  reachable(slaveId: string): boolean;
  /** Writes a Custom to a slave held anywhere in reach; NOT_FOUND when none holds it. */
  send(slaveId: string, custom: CustomInput): Promise<RoutedSendResult>;
  /**
   * Writes a Custom asking for a Reply to a slave held anywhere in reach and waits `timeout` ms (already checked) for it.
   * With `job`, a holder elsewhere may record the reply as the job's result (see JobDelivery).
   */
  request(slaveId: string, custom: CustomInput, timeout: number, job?: JobDelivery): Promise<RoutedReplyResult>;
  /**
   * A job's fan-out: one command (with its command_id) asking for a Reply,
   * written by `send(slaveId)` to slaves anywhere in reach, encoded once for
   * the local ones, each outcome to `handlers` once (what request() would
   * have come to). With `job`, holders elsewhere may record replies as
   * request() does.
   */
  requestMany(custom: BatchCustom, timeout: number, handlers: BatchHandlers, job?: JobDelivery): CommandBatch;
  /** Writes a Custom to every slave in reach the selector matches, counted by master. */
  broadcast(custom: CustomInput, selector: Selector, timeout?: number): Promise<FleetBroadcastResult>;
  /**
   * Follows the events of every slave and master in reach (the local fleet's
   * from `events`, the scope was given it; a cluster's adds the other
   * masters' and membership); returns the function that stops it.
   */
  watch(listener: WatchListener): () => void;
}

/**
 * A routed request that delivers a job's command (its command_id is the job's
 * id): the master holding the slave records the reply as the job's result,
 * where a store shared by the cluster is open, so the result outlives the
 * asking master. The request's answer then says `recorded`.
 */
export interface JobDelivery {
  /** When the job started, ms since the epoch (a result's latency counts from it). */
  startedAt: number;
  /** Writes of the command to the slave, this one included. */
  deliveries: number;
}

/** A job's command as a batch carries it: its data and its id (Custom.command_id). */
export interface BatchCustom {
  data: string;
  commandId: string;
}

/** Who this master is, as a scope names it; known once listening (the id defaults to host:port). */
export interface Self {
  readonly id: string;
  readonly address: string;
}

/** A master on its own: every fleet-wide call answers from the local fleet. */
export class LocalScope implements Scope {
  readonly status = "off";

  constructor(
    private readonly fleet: Fleet,
    private readonly self: Self,
    private readonly events: WatchHub = new WatchHub(),
  ) {}

  describe(): string {
    return "";
  }

  start(): void {}

  async close(): Promise<void> {}

  async flush(): Promise<void> {}

  masters(): MasterInfo[] {
    return [{ id: this.self.id, address: this.self.address, slavesHeld: this.fleet.size, lastHeard: new Date(), self: true }];
  }

  async list(selector: Selector): Promise<FleetView> {
    const masterId = this.self.id;
    const slaves = this.fleet.slaves(selector).map((slave) => ({ ...slave, masterId }));
    return { slaves, masters: this.masters(), unanswered: [], clusterAvailable: false };
  }

  async ids(selector: Selector): Promise<{ ids: string[]; unanswered: string[] }> {
    return { ids: this.fleet.ids(selector), unanswered: [] };
  }

  async page(selector: Selector, request: PageRequest): Promise<FleetPage> {
    const masterId = this.self.id;
    const token = decodePageToken(request.pageToken, selector.toString());
    const assembler = new PageAssembler<FleetSlaveInfo>(token, [masterId], request.pageSize, request.maxBytes, request.sizeOf);
    for (let round = 0; round < PAGE_ROUNDS; round++) {
      const [ask] = assembler.requests();
      if (!ask) break;
      const part = this.fleet.page(selector, ask.cursor, ask.limit, PAGE_SCAN_LIMIT);
      assembler.answer({ masterId, slaves: part.slaves.map((slave) => ({ ...slave, masterId })), last: part.last, done: part.done });
      assembler.place();
    }
    return {
      slaves: assembler.page,
      nextPageToken: assembler.nextToken(),
      masters: this.masters(),
      unanswered: [],
      clusterAvailable: false,
    };
  }

  async summary(): Promise<FleetSummary> {
    const rtts = Float64Array.from(this.fleet.rtts()).sort();
    return {
      connected: this.fleet.size,
      rttP50: sortedPercentile(rtts, 50),
      rttP99: sortedPercentile(rtts, 99),
      masters: this.masters(),
      unanswered: [],
      clusterAvailable: false,
    };
  }

  reachable(slaveId: string): boolean {
    return this.fleet.has(slaveId);
  }

  async send(slaveId: string, custom: CustomInput): Promise<RoutedSendResult> {
    if (!this.fleet.has(slaveId)) throw new NetSyncError(`no slave with id "${slaveId}"`, Code.NOT_FOUND);
    return { written: this.fleet.send(slaveId, custom) === 1, masterId: this.self.id };
  }

  async request(slaveId: string, custom: CustomInput, timeout: number): Promise<RoutedReplyResult> {
    return { reply: await this.fleet.request(slaveId, custom, timeout), masterId: this.self.id };
  }

  requestMany(custom: BatchCustom, timeout: number, handlers: BatchHandlers): CommandBatch {
    return this.fleet.requestMany(custom, timeout, handlers);
  }

  async broadcast(custom: CustomInput, selector: Selector): Promise<FleetBroadcastResult> {
    const written = await this.fleet.broadcast(custom, selector);
    return { written, byMaster: { [this.self.id]: written }, unanswered: [], clusterAvailable: false };
  }

  watch(listener: WatchListener): () => void {
    return this.events.on(listener);
  }
}
