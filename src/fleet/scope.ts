import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type {
  ClusterStatus,
  CustomInput,
  FleetBroadcastResult,
  FleetView,
  MasterInfo,
  RoutedReplyResult,
  RoutedSendResult,
  WatchListener,
} from "../model.js";
import type { Selector } from "../selector.js";
import type { Fleet } from "./fleet.js";
import { WatchHub } from "./watch-hub.js";

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
  /** Whether a master in reach is known to hold `slaveId` now: from memory, never the network; a cluster's answer may be stale. */
  reachable(slaveId: string): boolean;
  /** Writes a Custom to a slave held anywhere in reach; NOT_FOUND when none holds it. */
  send(slaveId: string, custom: CustomInput): Promise<RoutedSendResult>;
  /**
   * Writes a Custom asking for a Reply to a slave held anywhere in reach and waits `timeout` ms (already checked) for it.
   * With `job`, a holder elsewhere may record the reply as the job's result (see JobDelivery).
   */
  request(slaveId: string, custom: CustomInput, timeout: number, job?: JobDelivery): Promise<RoutedReplyResult>;
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

  async broadcast(custom: CustomInput, selector: Selector): Promise<FleetBroadcastResult> {
    const written = await this.fleet.broadcast(custom, selector);
    return { written, byMaster: { [this.self.id]: written }, unanswered: [], clusterAvailable: false };
  }

  watch(listener: WatchListener): () => void {
    return this.events.on(listener);
  }
}
