import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { type Msg, type NatsConnection, NoRespondersError, RequestError, type Subscription, TimeoutError } from "@nats-io/transport-node";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import { getLogger, type Logger } from "../logger.js";
import { ClaimDamper } from "./claim-damper.js";
import { compareEpochs, type Epoch } from "./epoch.js";
import { gather } from "./gather.js";
import { Membership } from "./membership.js";
import {
  type AnswerMessage,
  type BeatMessage,
  type ClaimMessage,
  type ClusterMessage,
  decodeMessage,
  encodeMessage,
  type ListMessage,
  type PartMessage,
  type RouteMessage,
  splitSlaves,
} from "./messages.js";
import { NatsLink } from "./nats-link.js";
import { type ClusterOptions, type ResolvedClusterOptions, resolveClusterOptions } from "./options.js";
import { RouteTable } from "./route-table.js";
import { type ClusterStats, emptyStats } from "./stats.js";
import { Subjects } from "./subjects.js";
import type {
  ClusterMember,
  ClusterSlave,
  ClusterState,
  FleetBroadcast,
  FleetSlaves,
  LocalFleet,
  RoutedReply,
  RoutedSend,
} from "./types.js";

/** Queue group of route subscriptions: if two masters briefly hold one id, a routed message reaches only one of them. */
const ROUTE_QUEUE = "holder";
/** Attempts of one routed call: a route released mid-handoff is asked again, each time past the master that released it. */
const MAX_ROUTE_ATTEMPTS = 3;
/** Share of the server's max_payload one part of a ListSlaves answer may fill. */
const PART_SHARE = 0.5;
/** Claims per message when re-announcing every held slave. */
const CLAIM_BATCH = 500;

export interface ClusterNodeEvents {
  /** Connected to NATS (first time or again); membership and claims were just announced. */
  connected: [];
  /** Lost NATS, or could not reach it; `refused` when the server rejected the credentials. */
  disconnected: [reason: string, refused: boolean];
  "member-joined": [member: ClusterMember];
  "member-left": [member: ClusterMember, reason: "left" | "expired"];
}

/**
 * One master's membership in a cluster: it owns the NATS connection, its
 * subscriptions and its timers, and reaches the local master only through
 * {@link LocalFleet}. Local slaves never depend on it: every call answers
 * from the local fleet at once when NATS is away.
 *
 * Subjects (under `netsync.<cluster>.`): `members` (heartbeats, leave),
 * `claims` (newest wins), `slave.<id>` (one queue subscription per held
 * slave: sends and requests), `master.<id>.list` and
 * `master.<id>.broadcast` (scatter-gather). Ids are base64url-encoded.
 */
export class ClusterNode extends EventEmitter<ClusterNodeEvents> {
  readonly #options: ResolvedClusterOptions;
  private readonly log: Logger;
  private readonly subjects: Subjects;
  /** Random per process: tells this node apart from another one misconfigured with the same id. */
  private readonly instance = randomUUID();
  private readonly link: NatsLink;
  private readonly membership: Membership;
  private readonly routes = new RouteTable<Subscription>();
  private readonly damper: ClaimDamper;
  private readonly counters: ClusterStats = emptyStats();
  private beatTimer: NodeJS.Timeout | undefined;
  private promptBeat: NodeJS.Timeout | undefined;
  private started = false;
  private closing = false;
  /** Whether the last state logged was "down", and for what kind, so a retry loop logs one line, not one per attempt. */
  private loggedDown: "lost" | "refused" | undefined;
  private everConnected = false;
  private conflictWarned = false;
  /**
   * Date.now() when this node last heard its own heartbeat back from NATS.
   * A server that froze (SIGSTOP, a blackhole) keeps the connection "up"
   * until pings go stale, which takes longer than member expiry: without
   * this, every other master would expire meanwhile and vanish from
   * answers instead of being named unanswered.
   */
  private lastEcho = 0;
  /** Expiry was held back because our own beats stopped coming back. */
  private echoLost = false;

  constructor(
    private readonly fleet: LocalFleet,
    options: ClusterOptions,
  ) {
    super();
    this.#options = resolveClusterOptions(options);
    this.log = this.#options.logger ?? getLogger("cluster");
    this.subjects = new Subjects(this.#options.clusterName);
    this.membership = new Membership(fleet.id, this.instance, this.#options.memberExpiryBeats);
    this.damper = new ClaimDamper(this.#options.claimLimit, this.#options.claimWindow, this.#options.claimCooldown, (id) =>
      this.cooldownEnded(id),
    );
    this.link = new NatsLink(this.#options, `netsync master ${fleet.id}`);
    this.link.on("up", (nc, fresh) => this.onUp(nc, fresh));
    this.link.on("down", (reason, refused) => this.onDown(reason, refused));
  }

  get clusterName(): string {
    return this.#options.clusterName;
  }

  /** "connected" only while NATS answers; cluster-wide calls fall back to local answers otherwise. */
  get state(): ClusterState {
    return this.closing ? "closed" : this.link.state;
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  /** Starts connecting in the background and beating; returns at once (wait for "connected" if needed). */
  start(): void {
    if (this.started || this.closing) return;
    this.started = true;
    this.link.start();
    this.armBeat();
  }

  /**
   * Leaves the cluster: announces it (unless `leave` is false, which behaves
   * like a crash, for tests) so others drop this master at once, then
   * closes the connection and every timer.
   */
  async close(options: { leave?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    const nc = this.link.nc;
    if ((options.leave ?? true) && nc && this.connected) {
      this.publish(nc, this.subjects.members, { kind: "leave", cluster: this.clusterName, id: this.fleet.id, instance: this.instance });
    }
    this.closing = true;
    clearTimeout(this.beatTimer);
    clearTimeout(this.promptBeat);
    this.damper.clear();
    await this.link.close();
    for (const route of this.routes.values()) route.handle = undefined;
    this.counters.connected = 0;
  }

  // --- membership ------------------------------------------------------------

  /** The masters known alive, this one first, each with when it was last heard from. */
  masters(): ClusterMember[] {
    return [this.selfMember(), ...this.membership.list()];
  }

  private selfMember(): ClusterMember {
    return { id: this.fleet.id, address: this.fleet.address, slavesHeld: this.fleet.size, lastHeard: Date.now(), self: true };
  }

  private armBeat(): void {
    clearTimeout(this.beatTimer);
    this.beatTimer = setTimeout(() => {
      this.beat();
      this.sweep();
      this.armBeat();
    }, this.#options.membershipInterval);
    this.beatTimer.unref();
  }

  private beat(): void {
    const nc = this.link.nc;
    if (!nc || !this.connected) return;
    const beat: BeatMessage = {
      kind: "beat",
      cluster: this.clusterName,
      id: this.fleet.id,
      address: this.fleet.address,
      slavesHeld: this.fleet.size,
      interval: this.#options.membershipInterval,
      instance: this.instance,
    };
    this.publish(nc, this.subjects.members, beat);
  }

  /** A beat soon (coalesced), so a master that just joined learns of this one without waiting an interval. */
  private beatSoon(): void {
    if (this.promptBeat || this.closing) return;
    this.promptBeat = setTimeout(() => {
      this.promptBeat = undefined;
      this.beat();
    }, 0);
    this.promptBeat.unref();
  }

  private sweep(): void {
    if (!this.connected) return;
    const echoWindow = this.#options.membershipInterval * this.#options.memberExpiryBeats;
    if (this.lastEcho > 0 && Date.now() - this.lastEcho > echoWindow) {
      // Our own beats do not come back: the silence is ours, not theirs. Keep the members (named unanswered).
      this.echoLost = true;
      this.damper.sweep();
      return;
    }
    // Silence counts only up to our own latest echo: a member's beat and our echo race over the same link,
    // so a link that just went dark must not expire members whose deadline passed after it did.
    const until = this.lastEcho > 0 ? Math.min(Date.now(), this.lastEcho + this.#options.membershipInterval) : Date.now();
    for (const member of this.membership.expire(until)) this.memberLeft(member, "expired");
    this.damper.sweep();
  }

  private memberLeft(member: ClusterMember, reason: "left" | "expired"): void {
    this.log.info(
      reason === "left"
        ? `master ${member.id} (${member.address}) left cluster "${this.clusterName}"`
        : `master ${member.id} (${member.address}) expired from cluster "${this.clusterName}": silent for ${this.#options.memberExpiryBeats} heartbeats`,
    );
    this.emit("member-left", member, reason);
  }

  private onMembers(msg: Msg): void {
    const message = this.decode(msg);
    if (message?.kind === "beat") {
      const result = this.membership.heard(message);
      if (result === "self") {
        if (this.echoLost) this.membership.renewAll();
        this.echoLost = false;
        this.lastEcho = Date.now();
      } else if (result === "joined") {
        const member = this.membership.get(message.id)!;
        this.log.info(`master ${member.id} (${member.address}) joined cluster "${this.clusterName}"`);
        this.emit("member-joined", member);
        this.beatSoon();
      } else if (result === "conflict" && !this.conflictWarned) {
        this.conflictWarned = true;
        this.log.warn(
          `another master also calls itself "${this.fleet.id}" in cluster "${this.clusterName}": give each master its own --name`,
        );
      }
    } else if (message?.kind === "leave") {
      const member = this.membership.left(message.id, message.instance);
      if (member) this.memberLeft(member, "left");
    }
  }

  // --- connection state --------------------------------------------------------

  private onUp(nc: NatsConnection, fresh: boolean): void {
    if (this.closing) return;
    if (fresh) this.subscribeAll(nc);
    this.membership.renewAll();
    this.lastEcho = Date.now();
    this.echoLost = false;
    this.counters.connected = 1;
    if (this.loggedDown) this.log.warn(`connected to NATS again (cluster "${this.clusterName}"); re-announcing ${this.routes.size} slaves`);
    else if (!this.everConnected) this.log.info(`connected to NATS (cluster "${this.clusterName}")`);
    this.loggedDown = undefined;
    this.everConnected = true;
    this.beat();
    this.claimAll(nc);
    this.emit("connected");
  }

  private onDown(reason: string, refused: boolean): void {
    if (this.closing) return;
    const kind = refused ? "refused" : "lost";
    if (this.counters.connected === 1) this.counters.disconnects++;
    this.counters.connected = 0;
    if (this.loggedDown === kind) {
      this.log.debug(`NATS still unavailable: ${reason}`);
      return;
    }
    this.loggedDown = kind;
    if (refused) {
      this.log.error(
        `NATS refused this master's cluster credentials (${reason}); serving local slaves only, retrying every ${this.#options.authRetryInterval} ms`,
      );
    } else {
      this.log.warn(`NATS unavailable (${reason}); serving local slaves only, reconnecting`);
    }
    this.emit("disconnected", reason, refused);
  }

  private subscribeAll(nc: NatsConnection): void {
    const self = this.fleet.id;
    // Dropped with the connection; a fresh connection subscribes them again.
    nc.subscribe(this.subjects.members, { callback: this.handler((msg) => this.onMembers(msg)) });
    nc.subscribe(this.subjects.claims, { callback: this.handler((msg) => this.onClaims(msg)) });
    nc.subscribe(this.subjects.list(self), { callback: this.handler((msg) => this.onList(nc, msg)) });
    nc.subscribe(this.subjects.broadcast(self), { callback: this.handler((msg) => this.onBroadcast(nc, msg)) });
    for (const route of this.routes.values()) route.handle = this.subscribeRoute(nc, route.slaveId);
  }

  // --- routes and claims -------------------------------------------------------

  /** A local slave connected with `epoch`: route its subject here and claim it cluster-wide. */
  slaveAdded(slaveId: string, epoch: Epoch): void {
    const { route, stale } = this.routes.add(slaveId, epoch);
    if (stale) return;
    const nc = this.link.nc;
    if (!route.handle && nc && !this.closing) route.handle = this.subscribeRoute(nc, slaveId);
    if (nc && this.connected) this.claim(nc, [{ slaveId, epoch }]);
  }

  /** A local connection ended: drop its route, unless a newer connection of the same id holds it now. */
  slaveRemoved(slaveId: string, epoch: Epoch): void {
    const route = this.routes.remove(slaveId, epoch);
    if (route) release(route.handle);
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
    return this.routes.get(slaveId) !== undefined;
  }

  private subscribeRoute(nc: NatsConnection, slaveId: string): Subscription | undefined {
    try {
      return nc.subscribe(this.subjects.slave(slaveId), { queue: ROUTE_QUEUE, callback: this.handler((msg) => this.onRoute(msg)) });
    } catch (err) {
      this.log.debug(`cannot subscribe the route of ${slaveId}: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Publishes claims unless damped (held back until the cool-down ends). */
  private claim(nc: NatsConnection, claims: { slaveId: string; epoch: Epoch }[]): void {
    const allowed = claims.filter((c) => {
      if (!this.damper.damped(c.slaveId)) return true;
      this.counters.claimsDamped++;
      return false;
    });
    for (let i = 0; i < allowed.length; i += CLAIM_BATCH) {
      const message: ClaimMessage = {
        kind: "claim",
        cluster: this.clusterName,
        master: this.fleet.id,
        claims: allowed.slice(i, i + CLAIM_BATCH),
      };
      this.publish(nc, this.subjects.claims, message);
      this.counters.claimsPublished += message.claims.length;
    }
  }

  private claimAll(nc: NatsConnection): void {
    this.claim(
      nc,
      Array.from(this.routes.values(), (r) => ({ slaveId: r.slaveId, epoch: r.epoch })),
    );
  }

  private cooldownEnded(slaveId: string): void {
    const route = this.routes.get(slaveId);
    const nc = this.link.nc;
    if (route && nc && this.connected) this.claim(nc, [{ slaveId, epoch: route.epoch }]);
  }

  private onClaims(msg: Msg): void {
    const message = this.decode(msg);
    if (message?.kind !== "claim") return;
    const again: { slaveId: string; epoch: Epoch }[] = [];
    for (const { slaveId, epoch } of message.claims) {
      if (!this.damper.admit(slaveId, epoch)) {
        this.counters.claimsDamped++;
        continue;
      }
      if (message.master === this.fleet.id) continue;
      const route = this.routes.get(slaveId);
      if (!route) continue;
      const order = compareEpochs(route.epoch, epoch);
      if (order < 0) {
        // Ours is older: stop routing to it first, so nothing reaches the old stream, then let the master end it.
        this.routes.remove(slaveId, route.epoch);
        release(route.handle);
        this.counters.replacements++;
        this.fleet.replaced(slaveId, epoch, message.master);
      } else if (order > 0) {
        // Theirs is older (it may have missed our claim): say ours again, so it ends its copy.
        again.push({ slaveId, epoch: route.epoch });
      }
    }
    const nc = this.link.nc;
    if (again.length > 0 && nc && this.connected) this.claim(nc, again);
  }

  private onRoute(msg: Msg): void {
    const message = this.decode(msg);
    if (!msg.reply || (message?.kind !== "send" && message?.kind !== "request")) return;
    const reply = msg.reply;
    this.counters.served++;
    const answer = (fields: Omit<AnswerMessage, "kind" | "cluster" | "masterId">) =>
      this.respond(reply, { kind: "answer", cluster: this.clusterName, masterId: this.fleet.id, ...fields });
    const slaveId = message.slaveId;
    if (!this.holds(slaveId)) {
      // Only a released route's subscription delivers this: the slave left or moved since NATS routed the request.
      answer({ error: { code: Code.NOT_FOUND, message: `no slave with id "${slaveId}" on master ${this.fleet.id}` }, released: true });
      return;
    }
    if (message.kind === "send") {
      answer({ written: this.fleet.send(slaveId, message.data) });
      return;
    }
    this.fleet.requestReply(slaveId, message.data, message.timeoutMs).then(
      (result) => answer({ written: true, reply: { case: result.case, value: result.value } }),
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.INTERNAL);
        answer({ error: { code: error.code, message: error.message } });
      },
    );
  }

  // --- routed calls ------------------------------------------------------------

  /** Writes `data` to `slaveId` wherever it is held; NOT_FOUND if no master holds it, UNAVAILABLE without NATS. */
  async send(slaveId: string, data: string): Promise<RoutedSend> {
    if (this.holds(slaveId)) return { written: this.fleet.send(slaveId, data), masterId: this.fleet.id };
    const answer = await this.route(slaveId, { kind: "send", data, timeoutMs: 0 }, this.#options.requestTimeout);
    return { written: answer.written === true, masterId: answer.masterId };
  }

  /** Writes `data` to `slaveId` wherever it is held and waits up to `timeoutMs` for its Reply. */
  async request(slaveId: string, data: string, timeoutMs: number): Promise<RoutedReply> {
    if (this.holds(slaveId)) return { reply: await this.fleet.requestReply(slaveId, data, timeoutMs), masterId: this.fleet.id };
    const answer = await this.route(slaveId, { kind: "request", data, timeoutMs }, timeoutMs + this.#options.routeGrace);
    if (!answer.reply) throw new NetSyncError(`master ${answer.masterId} answered without a reply`, Code.INTERNAL);
    return { reply: answer.reply, masterId: answer.masterId };
  }

  private async route(
    slaveId: string,
    fields: Pick<RouteMessage, "kind" | "data" | "timeoutMs">,
    timeoutMs: number,
  ): Promise<AnswerMessage> {
    const started = performance.now();
    let outcome = "error";
    try {
      const nc = this.link.nc;
      if (!nc || !this.connected) {
        outcome = "unavailable";
        throw new NetSyncError(
          `cluster "${this.clusterName}" unavailable: cannot reach slave "${slaveId}" on another master`,
          Code.UNAVAILABLE,
        );
      }
      for (let attempt = 1; ; attempt++) {
        const spent = performance.now() - started;
        // A retry keeps the caller's deadline: the holder waits for the slave only for what is left of it.
        const message: RouteMessage = {
          ...fields,
          timeoutMs: Math.max(0, fields.timeoutMs - Math.round(spent)),
          cluster: this.clusterName,
          from: this.fleet.id,
          slaveId,
        };
        let msg: Msg;
        try {
          msg = await nc.request(this.subjects.slave(slaveId), encodeMessage(message), { timeout: Math.max(1, timeoutMs - spent) });
        } catch (err) {
          const error = routeError(err, slaveId, this.clusterName, timeoutMs);
          outcome = outcomeOf(error.code, "unavailable");
          throw error;
        }
        const answer = this.decode(msg);
        if (answer?.kind !== "answer") throw new NetSyncError(`malformed answer routing to slave "${slaveId}"`, Code.INTERNAL);
        // The releasing master sent its UNSUB before this answer, so NATS routes the next attempt past it.
        if (answer.released && attempt < MAX_ROUTE_ATTEMPTS && performance.now() - started < timeoutMs) {
          this.counters.rerouted++;
          continue;
        }
        if (answer.error) {
          outcome = outcomeOf(answer.error.code, "error");
          throw new NetSyncError(answer.error.message, answer.error.code);
        }
        outcome = "ok";
        return answer;
      }
    } finally {
      this.counters.routed[outcome] = (this.counters.routed[outcome] ?? 0) + 1;
      this.#options.observer?.routedLatency(performance.now() - started, outcome);
    }
  }

  // --- fleet-wide calls --------------------------------------------------------

  /**
   * Every slave of the cluster matching `selector`: the local ones, and those
   * of each master known alive that answers within `timeoutMs`. Never waits
   * without NATS: then only local slaves, every other known master unanswered.
   */
  async listSlaves(selector?: string, timeoutMs: number = this.#options.gatherTimeout): Promise<FleetSlaves> {
    const local = this.fleet.slaves(selector);
    const self = this.selfMember();
    const others = this.membership.list();
    const nc = this.link.nc;
    if (!nc || !this.connected) {
      return { slaves: local, masters: [self], unanswered: others.map((m) => m.id), clusterAvailable: false };
    }
    const request: ListMessage = { kind: "list", cluster: this.clusterName, from: this.fleet.id };
    if (selector) request.selector = selector;
    const targets = others.map((m) => ({ id: m.id, subject: this.subjects.list(m.id) }));
    const { answers, unanswered } = await gather(nc, this.clusterName, targets, encodeMessage(request), timeoutMs);
    const slaves = [...local];
    const masters = [self];
    for (const member of others) {
      const parts = answers.get(member.id);
      if (!parts) continue;
      for (const part of parts) if (part.slaves) slaves.push(...part.slaves);
      masters.push(this.answered(member, parts[0]!));
    }
    return { slaves, masters, unanswered, clusterAvailable: true };
  }

  /** Writes `data` to every slave of the cluster matching `selector`; counts by master. */
  async broadcast(data: string, selector?: string, timeoutMs: number = this.#options.gatherTimeout): Promise<FleetBroadcast> {
    const localCount = this.fleet.broadcast(data, selector);
    const byMaster: Record<string, number> = { [this.fleet.id]: localCount };
    const others = this.membership.list();
    const nc = this.link.nc;
    if (!nc || !this.connected) {
      return { total: localCount, byMaster, unanswered: others.map((m) => m.id), clusterAvailable: false };
    }
    const request: ClusterMessage = { kind: "broadcast", cluster: this.clusterName, from: this.fleet.id, data };
    if (selector) request.selector = selector;
    const targets = others.map((m) => ({ id: m.id, subject: this.subjects.broadcast(m.id) }));
    const { answers, unanswered } = await gather(nc, this.clusterName, targets, encodeMessage(request), timeoutMs);
    let total = localCount;
    for (const [id, parts] of answers) {
      const count = parts[0]?.count ?? 0;
      byMaster[id] = count;
      total += count;
    }
    return { total, byMaster, unanswered, clusterAvailable: true };
  }

  private answered(member: ClusterMember, part: PartMessage): ClusterMember {
    return { ...member, address: part.address, slavesHeld: part.slavesHeld };
  }

  private onList(nc: NatsConnection, msg: Msg): void {
    const message = this.decode(msg);
    if (!msg.reply || message?.kind !== "list") return;
    const slaves: ClusterSlave[] = this.fleet.slaves(message.selector);
    const budget = Math.max(16 * 1024, Math.floor((nc.info?.max_payload ?? 1024 * 1024) * PART_SHARE));
    const parts = splitSlaves(slaves, budget);
    parts.forEach((part, i) => {
      this.respond(msg.reply!, this.part(i, parts.length, { slaves: part }));
    });
  }

  private onBroadcast(_nc: NatsConnection, msg: Msg): void {
    const message = this.decode(msg);
    if (!msg.reply || message?.kind !== "broadcast") return;
    const count = this.fleet.broadcast(message.data, message.selector);
    this.respond(msg.reply, this.part(0, 1, { count }));
  }

  private part(part: number, parts: number, fields: Pick<PartMessage, "slaves" | "count">): PartMessage {
    return {
      kind: "part",
      cluster: this.clusterName,
      masterId: this.fleet.id,
      address: this.fleet.address,
      slavesHeld: this.fleet.size,
      part,
      parts,
      ...fields,
    };
  }

  // --- plumbing ------------------------------------------------------------------

  /** Totals for metrics, read at scrape time. */
  stats(): ClusterStats {
    return { ...this.counters, routed: { ...this.counters.routed }, mastersSeen: 1 + this.membership.size };
  }

  /** A subscription callback that ignores subscription errors and never lets a handler's exception into nats.js. */
  private handler(fn: (msg: Msg) => void): (err: Error | null, msg: Msg) => void {
    return (err, msg) => {
      if (err || this.closing) return;
      try {
        fn(msg);
      } catch (error) {
        this.log.error(`cluster message handler failed on ${msg.subject}: ${(error as Error).message}`);
      }
    };
  }

  private decode(msg: Msg): ClusterMessage | undefined {
    return decodeMessage(msg.string(), this.clusterName);
  }

  private publish(nc: NatsConnection, subject: string, message: ClusterMessage): void {
    try {
      nc.publish(subject, encodeMessage(message));
    } catch (err) {
      this.log.debug(`cannot publish to ${subject}: ${(err as Error).message}`);
    }
  }

  private respond(reply: string, message: ClusterMessage): void {
    const nc = this.link.nc;
    if (nc) this.publish(nc, reply, message);
  }
}

/**
 * Ends a route's subscription by draining it rather than unsubscribing: a
 * request NATS delivered before it saw the UNSUB still reaches onRoute, which
 * answers it (released) instead of the client dropping it and the requester
 * waiting out its whole timeout.
 */
function release(sub: Subscription | undefined): void {
  // Rejects only when the connection is closed: the server dropped the subscription with it.
  sub?.drain().catch(() => undefined);
}

/** The `routed` counter's outcome for a failed routed call's code. */
function outcomeOf(code: Code, otherwise: "unavailable" | "error"): string {
  return code === Code.NOT_FOUND ? "not_found" : code === Code.DEADLINE_EXCEEDED ? "timeout" : otherwise;
}

/** A failed NATS request as a NetSyncError: no responders is NOT_FOUND (nobody holds the id), a timeout DEADLINE_EXCEEDED. */
export function routeError(err: unknown, slaveId: string, cluster: string, timeoutMs: number): NetSyncError {
  if (err instanceof NetSyncError) return err;
  const cause = (err as { cause?: unknown }).cause;
  if (err instanceof NoRespondersError || cause instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
    return new NetSyncError(`no slave with id "${slaveId}" in cluster "${cluster}"`, Code.NOT_FOUND, { cause: err });
  }
  if (err instanceof TimeoutError || cause instanceof TimeoutError) {
    return new NetSyncError(`no answer routing to slave "${slaveId}" within ${timeoutMs} ms`, Code.DEADLINE_EXCEEDED, { cause: err });
  }
  return NetSyncError.from(err, Code.UNAVAILABLE);
}
