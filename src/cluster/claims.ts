import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { Code } from "../code.js";
import { ClaimDamper } from "./claim-damper.js";
import type { HolderDirectory } from "./directory.js";
import { compareEpochs, type Epoch, sameEpoch } from "./epoch.js";
import type { ClusterHost } from "./host.js";
import type { ClaimMessage } from "./messages.js";
import { RouteTable } from "./route-table.js";

/** Claims per round trip when re-announcing every held slave (see claimAll). */
const REANNOUNCE_CHUNK = 1_000;

/**
 * The slaves this master holds, cluster-wide: one subscription per held
 * slave, to the id's own subject (`slave.<id>`, literal: nats-server inserts
 * a wildcard subscription at the cost of a scan of its match cache, 4× the
 * time at 300,000 slaves with claims flowing), where this master claims it
 * (newest wins) and answers lookups of its holder (see router.ts).
 * Calls then come to this master's own route subject, so a held slave costs
 * NATS one subscription.
 *
 * Claims go only where they matter: to the masters holding the same id (a
 * slave that moved, or two processes sharing an id). So after a NATS
 * restart each master hears its own claims back and the contested ones, not
 * the fleet's. Claims are damped
 * (claim-damper.ts), and only contested ids enter the damper: the damper's
 * cool-down timers are this object's, and end with it.
 */
export class Claims {
  private readonly routes = new RouteTable<Subscription>();
  private readonly damper: ClaimDamper;
  /** Re-announce passes started (claimAll): a pass stops when a newer one starts, or on stop(). */
  private reannounces = 0;

  constructor(
    private readonly host: ClusterHost,
    /** Who holds the slaves this master hears about: fed by the claims heard here. */
    private readonly directory: HolderDirectory,
  ) {
    const { options } = host;
    this.damper = new ClaimDamper(options.claimLimit, options.claimWindow, options.claimCooldown, (id) => this.cooldownEnded(id));
  }

  /** Slaves held. */
  get size(): number {
    return this.routes.size;
  }

  /** Ids the damper keeps a window for (contested lately). */
  get contested(): number {
    return this.damper.size;
  }

  /** Whether this master holds `slaveId` (as add() told it). */
  holds(slaveId: string): boolean {
    return this.routes.get(slaveId) !== undefined;
  }

  /** The epoch this master holds `slaveId` with, if it does. */
  epochOf(slaveId: string): Epoch | undefined {
    return this.routes.get(slaveId)?.epoch;
  }

  /** A local slave connected with `epoch`: subscribe its subjects and claim it. */
  add(slaveId: string, epoch: Epoch): void {
    const { host } = this;
    const { route, stale } = this.routes.add(slaveId, epoch);
    if (stale) return;
    const nc = host.nc;
    // Subscribed before the claim goes out (one connection keeps order): this master hears answers to its own claim.
    if (!route.handle && nc && !host.closing) route.handle = this.subscribe(nc, slaveId);
    if (nc && host.connected) this.claim(nc, slaveId, epoch);
  }

  /**
   * A local connection ended: drop its route, unless a newer connection of
   * the same id holds it now. Nothing is published: a master that routes
   * here later is answered "released" and asks again.
   */
  remove(slaveId: string, epoch: Epoch): void {
    const route = this.routes.remove(slaveId, epoch);
    if (!route) return;
    release(route.handle);
    this.directory.release(slaveId, epoch);
  }

  /** A fresh connection (the old one dropped every subscription with it): subscribe every held slave again. */
  subscribeRoutes(nc: NatsConnection): void {
    for (const route of this.routes.values()) route.handle = this.subscribe(nc, route.slaveId);
  }

  /**
   * Claims every held slave again, each on its own subject, after a
   * (re)connect: claims published while this master was cut off never
   * reached it, so a holder of one of its ids that appeared meanwhile learns
   * of this one only now. It costs this master one message per held slave,
   * and it hears back its own claims and those of contested ids: O(its
   * slaves), whatever the fleet's size.
   *
   * Paced: REANNOUNCE_CHUNK claims, then a flush (a round trip) before the
   * next. After a NATS restart every master re-subscribes and re-claims at
   * once; all at once, a busy server answered the masters' pings too late,
   * they took the link for dead, reconnected and re-claimed everything
   * again (measured at 300,000 slaves: 62 of 67 masters, 5.7 re-claims per
   * slave). A newer (re)connect or stop() ends an unfinished pass.
   */
  async claimAll(nc: NatsConnection): Promise<void> {
    const pass = ++this.reannounces;
    const held = Array.from(this.routes.values(), (r) => ({ slaveId: r.slaveId, epoch: r.epoch }));
    for (let i = 0; i < held.length; i += REANNOUNCE_CHUNK) {
      if (pass !== this.reannounces || !this.host.connected || this.host.closing) return;
      for (const { slaveId, epoch } of held.slice(i, i + REANNOUNCE_CHUNK)) {
        // Only what is still held with that epoch: a newer connection has claimed for itself.
        const route = this.routes.get(slaveId);
        if (route && sameEpoch(route.epoch, epoch)) this.claim(nc, slaveId, epoch);
      }
      await nc.flush().catch(() => undefined);
    }
  }

  /** A message on a held slave's subject: a claim, or a lookup of who holds it. */
  onClaims(msg: Msg): void {
    const { host } = this;
    const message = host.decode(msg);
    if (message?.kind === "who") {
      if (msg.reply) this.answerWho(message.slaveId, msg.reply);
      return;
    }
    if (message?.kind !== "claim") return;
    const { slaveId, epoch } = message;
    host.counters.claimsHeard++;
    const foreign = message.master !== host.fleet.id;
    // Its own claim heard back, uncontested (every held id after a reconnect): nothing to learn or count.
    if (!foreign && !this.damper.tracks(slaveId)) return;
    // Routing follows the newest claim even while the id is damped: damping only stops masters ending each other's streams.
    this.directory.learn(slaveId, message.master, epoch);
    const route = this.routes.get(slaveId);
    // A claim of an id held here by another master is a contest; the damper counts only contested ids (so after a NATS
    // restart it holds nothing for the claims masters hear back from themselves), starting from the epoch held here.
    if ((foreign && route) || this.damper.tracks(slaveId)) {
      if (foreign && route && !this.damper.tracks(slaveId)) this.damper.admit(slaveId, route.epoch);
      if (!this.damper.admit(slaveId, epoch)) {
        host.counters.claimsDamped++;
        return;
      }
    }
    if (!foreign || !route) return;
    const order = compareEpochs(route.epoch, epoch);
    if (order < 0) {
      // Ours is older: stop routing to it first, so nothing reaches the old stream, then let the master end it.
      this.routes.remove(slaveId, route.epoch);
      release(route.handle);
      host.counters.replacements++;
      host.fleet.replaced(slaveId, epoch, message.master);
    } else if (order > 0) {
      // Theirs is older (it may have missed our claim): say ours again, so it ends its copy.
      const nc = host.nc;
      if (nc && host.connected) this.claim(nc, slaveId, route.epoch);
    }
  }

  /** Forgets the damper's ended windows; the node calls it each membership interval while connected. */
  sweep(): void {
    this.damper.sweep();
  }

  /** Closing: cancels the cool-downs (their re-claims would find no connection) and an unfinished re-announce. */
  stop(): void {
    this.reannounces++;
    this.damper.clear();
  }

  /** The connection is closed, and the server dropped every subscription with it. */
  detach(): void {
    for (const route of this.routes.values()) route.handle = undefined;
  }

  private subscribe(nc: NatsConnection, slaveId: string): Subscription | undefined {
    const { host } = this;
    try {
      return nc.subscribe(host.subjects.slave(slaveId), { callback: host.handler((msg) => this.onClaims(msg)) });
    } catch (err) {
      host.log.debug(`cannot subscribe the claims of ${slaveId}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Publishes a claim on the id's subject unless damped (held back until the cool-down ends). */
  private claim(nc: NatsConnection, slaveId: string, epoch: Epoch): void {
    const { host } = this;
    if (this.damper.damped(slaveId)) {
      host.counters.claimsDamped++;
      return;
    }
    host.publish(nc, host.subjects.slave(slaveId), this.claimOf(slaveId, epoch));
    host.counters.claimsPublished++;
  }

  private claimOf(slaveId: string, epoch: Epoch): ClaimMessage {
    const { host } = this;
    return { kind: "claim", cluster: host.clusterName, master: host.fleet.id, slaveId, epoch };
  }

  /**
   * A lookup of `slaveId`: if this master holds it, it says so with its
   * claim, to the asker alone, even while the id is damped (both holders
   * stay reachable during a cool-down).
   */
  private answerWho(slaveId: string, reply: string): void {
    const { host } = this;
    const route = this.routes.get(slaveId);
    if (!host.nc || !host.connected) return;
    if (!route) {
      // Let go of since NATS delivered the lookup here (the subscription is draining): say so, or the asker waits out its
      // timeout.
      host.respond(reply, {
        kind: "answer",
        cluster: host.clusterName,
        masterId: host.fleet.id,
        released: true,
        error: { code: Code.NOT_FOUND, message: `no slave with id "${slaveId}" on master ${host.fleet.id}` },
      });
      return;
    }
    host.respond(reply, this.claimOf(slaveId, route.epoch));
  }

  /** A cool-down ended: claim the connection held here for the id again; the newest wins once. */
  private cooldownEnded(slaveId: string): void {
    const route = this.routes.get(slaveId);
    const nc = this.host.nc;
    if (route && nc && this.host.connected) this.claim(nc, slaveId, route.epoch);
  }
}

/**
 * Ends a held slave's subscription by draining it rather than unsubscribing:
 * a lookup NATS delivered before it saw the UNSUB is still answered
 * ("released"), instead of the client dropping it and the asker waiting out
 * its whole timeout.
 */
function release(subscription: Subscription | undefined): void {
  // Rejects only when the connection is closed: the server dropped the subscription with it.
  subscription?.drain().catch(() => undefined);
}
