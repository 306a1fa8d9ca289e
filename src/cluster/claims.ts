import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ClaimDamper } from "./claim-damper.js";
import type { HolderDirectory } from "./directory.js";
import { compareEpochs, type Epoch } from "./epoch.js";
import type { ClusterHost } from "./host.js";
import type { ClaimMessage } from "./messages.js";
import { RouteTable } from "./route-table.js";

/** Queue group of route subscriptions: if two masters briefly hold one id, a routed message reaches only one of them. */
const ROUTE_QUEUE = "holder";
/** Claims per message when re-announcing every held slave. */
const CLAIM_BATCH = 500;

type Claim = { slaveId: string; epoch: Epoch };

/**
 * The slaves this master holds, cluster-wide: each held slave's route (a
 * queue subscription on its subject, whose messages go to `serve`) and its
 * claim on the claims subject, where newest wins. Claims are damped
 * (claim-damper.ts): the damper's cool-down timers are this object's, and
 * end with it.
 */
export class Claims {
  private readonly routes = new RouteTable<Subscription>();
  private readonly damper: ClaimDamper;
  /** Connections that ended since the last release was published: one message for all that end in one turn. */
  private released: Claim[] = [];
  private releaseTimer: NodeJS.Immediate | undefined;

  constructor(
    private readonly host: ClusterHost,
    /** Where the messages of a held slave's subject go (the router). */
    private readonly serve: (msg: Msg) => void,
    /** Who holds every slave of the cluster, as the claims heard here say: fed by onClaims. */
    private readonly directory: HolderDirectory,
  ) {
    const { options } = host;
    this.damper = new ClaimDamper(options.claimLimit, options.claimWindow, options.claimCooldown, (id) => this.cooldownEnded(id));
  }

  /** Slaves held. */
  get size(): number {
    return this.routes.size;
  }

  /** Whether this master holds `slaveId` (as add() told it). */
  holds(slaveId: string): boolean {
    return this.routes.get(slaveId) !== undefined;
  }

  /** The epoch this master holds `slaveId` with, if it does. */
  epochOf(slaveId: string): Epoch | undefined {
    return this.routes.get(slaveId)?.epoch;
  }

  /** A local slave connected with `epoch`: route its subject here and claim it cluster-wide. */
  add(slaveId: string, epoch: Epoch): void {
    const { host } = this;
    const { route, stale } = this.routes.add(slaveId, epoch);
    if (stale) return;
    const nc = host.nc;
    if (!route.handle && nc && !host.closing) route.handle = this.subscribeRoute(nc, slaveId);
    if (nc && host.connected) this.claim(nc, [{ slaveId, epoch }]);
  }

  /** A local connection ended: drop its route, unless a newer connection of the same id holds it now. */
  remove(slaveId: string, epoch: Epoch): void {
    const route = this.routes.remove(slaveId, epoch);
    if (!route) return;
    release(route.handle);
    // Tell the other directories, so their next call to this id asks whoever holds it now (or learns at once that nobody does).
    this.directory.release(slaveId, epoch);
    if (!this.host.connected || this.host.closing) return;
    this.released.push({ slaveId, epoch });
    this.releaseTimer ??= setImmediate(() => this.publishReleased());
  }

  /** A fresh connection (the old one dropped every subscription with it): subscribe every held slave's route again. */
  subscribeRoutes(nc: NatsConnection): void {
    for (const route of this.routes.values()) route.handle = this.subscribeRoute(nc, route.slaveId);
  }

  /** Claims every held slave again: after a (re)connect, a master that missed claims meanwhile still converges. */
  claimAll(nc: NatsConnection): void {
    this.claim(
      nc,
      Array.from(this.routes.values(), (r) => ({ slaveId: r.slaveId, epoch: r.epoch })),
    );
  }

  /** A claim on the claims subject (ours included: every master damps every claim the same way). */
  onClaims(msg: Msg): void {
    const { host } = this;
    const message = host.decode(msg);
    if (message?.kind !== "claim") return;
    const again: Claim[] = [];
    for (const { slaveId, epoch } of message.released ?? []) this.directory.release(slaveId, epoch);
    for (const { slaveId, epoch } of message.claims) {
      // Routing follows the newest claim even while the id is damped: damping only stops masters ending each other's streams.
      this.directory.learn(slaveId, message.master, epoch);
      if (!this.damper.admit(slaveId, epoch)) {
        host.counters.claimsDamped++;
        continue;
      }
      if (message.master === host.fleet.id) continue;
      const route = this.routes.get(slaveId);
      if (!route) continue;
      const order = compareEpochs(route.epoch, epoch);
      if (order < 0) {
        // Ours is older: stop routing to it first, so nothing reaches the old stream, then let the master end it.
        this.routes.remove(slaveId, route.epoch);
        release(route.handle);
        host.counters.replacements++;
        host.fleet.replaced(slaveId, epoch, message.master);
      } else if (order > 0) {
        // Theirs is older (it may have missed our claim): say ours again, so it ends its copy.
        again.push({ slaveId, epoch: route.epoch });
      }
    }
    const nc = host.nc;
    if (again.length > 0 && nc && host.connected) this.claim(nc, again);
  }

  /** Forgets the damper's ended windows; the node calls it each membership interval while connected. */
  sweep(): void {
    this.damper.sweep();
  }

  /** Closing: cancels the cool-downs (their re-claims would find no connection) and releases not yet published. */
  stop(): void {
    this.damper.clear();
    if (this.releaseTimer) clearImmediate(this.releaseTimer);
    this.releaseTimer = undefined;
    this.released = [];
  }

  /** The connection is closed, and the server dropped every route subscription with it. */
  detach(): void {
    for (const route of this.routes.values()) route.handle = undefined;
  }

  private subscribeRoute(nc: NatsConnection, slaveId: string): Subscription | undefined {
    const { host } = this;
    try {
      return nc.subscribe(host.subjects.slave(slaveId), { queue: ROUTE_QUEUE, callback: host.handler(this.serve) });
    } catch (err) {
      host.log.debug(`cannot subscribe the route of ${slaveId}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Publishes claims unless damped (held back until the cool-down ends). */
  private claim(nc: NatsConnection, claims: Claim[]): void {
    const { host } = this;
    const allowed = claims.filter((c) => {
      if (!this.damper.damped(c.slaveId)) return true;
      host.counters.claimsDamped++;
      return false;
    });
    for (let i = 0; i < allowed.length; i += CLAIM_BATCH) {
      const message: ClaimMessage = {
        kind: "claim",
        cluster: host.clusterName,
        master: host.fleet.id,
        claims: allowed.slice(i, i + CLAIM_BATCH),
      };
      host.publish(nc, host.subjects.claims, message);
      host.counters.claimsPublished += message.claims.length;
    }
  }

  private publishReleased(): void {
    this.releaseTimer = undefined;
    const released = this.released;
    this.released = [];
    const { host } = this;
    const nc = host.nc;
    if (!nc || !host.connected || host.closing) return;
    for (let i = 0; i < released.length; i += CLAIM_BATCH) {
      host.publish(nc, host.subjects.claims, {
        kind: "claim",
        cluster: host.clusterName,
        master: host.fleet.id,
        claims: [],
        released: released.slice(i, i + CLAIM_BATCH),
      });
    }
  }

  /** A cool-down ended: claim the connection held here for the id again; the newest wins once. */
  private cooldownEnded(slaveId: string): void {
    const route = this.routes.get(slaveId);
    const nc = this.host.nc;
    if (route && nc && this.host.connected) this.claim(nc, [{ slaveId, epoch: route.epoch }]);
  }
}

/**
 * Ends a route's subscription by draining it rather than unsubscribing: a
 * request NATS delivered before it saw the UNSUB still reaches the router,
 * which answers it (released) instead of the client dropping it and the
 * requester waiting out its whole timeout.
 */
function release(sub: Subscription | undefined): void {
  // Rejects only when the connection is closed: the server dropped the subscription with it.
  sub?.drain().catch(() => undefined);
}
