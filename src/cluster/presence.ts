import { randomUUID } from "node:crypto";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { ClusterHost } from "./host.js";
import { Membership } from "./membership.js";
import type { BeatMessage } from "./messages.js";
import type { ClusterMember } from "./types.js";

/** What the membership tells the node. */
export interface PresenceEvents {
  joined(member: ClusterMember): void;
  left(member: ClusterMember, reason: "left" | "expired"): void;
  /** Each membership interval while connected, after expiry: the other parts' housekeeping. */
  sweep(): void;
}

/**
 * This master's membership in the cluster: it beats every interval on the
 * members subject, hears the others' beats into the {@link Membership}
 * table, and expires the silent ones. Owns the beat timers, started by
 * start() and cleared by stop().
 */
export class Presence {
  /** Random per process: tells this node apart from another one misconfigured with the same id. */
  private readonly instance = randomUUID();
  private readonly table: Membership;
  private beatTimer: NodeJS.Timeout | undefined;
  private promptBeat: NodeJS.Timeout | undefined;
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
    private readonly host: ClusterHost,
    private readonly events: PresenceEvents,
  ) {
    this.table = new Membership(host.fleet.id, this.instance, host.options.memberExpiryBeats);
  }

  /** This master as a member, heard now. */
  self(): ClusterMember {
    const { fleet } = this.host;
    return { id: fleet.id, address: fleet.address, slavesHeld: fleet.size, lastHeard: Date.now(), self: true };
  }

  /** The other masters known alive, in id order. */
  others(): ClusterMember[] {
    return this.table.list();
  }

  /** Whether `masterId` is a member known alive (this master included). */
  knows(masterId: string): boolean {
    return masterId === this.host.fleet.id || this.table.get(masterId) !== undefined;
  }

  /** How many other masters are known alive. */
  get size(): number {
    return this.table.size;
  }

  /** Starts beating (a beat goes out only while connected). */
  start(): void {
    this.armBeat();
  }

  stop(): void {
    clearTimeout(this.beatTimer);
    clearTimeout(this.promptBeat);
  }

  /**
   * Connected (again): silence this node could not have heard through says
   * nothing about the others, so their expiry and our echo start afresh.
   */
  connected(): void {
    this.table.renewAll();
    this.lastEcho = Date.now();
    this.echoLost = false;
  }

  beat(): void {
    const { host } = this;
    const nc = host.nc;
    if (!nc || !host.connected) return;
    const beat: BeatMessage = {
      kind: "beat",
      cluster: host.clusterName,
      id: host.fleet.id,
      address: host.fleet.address,
      slavesHeld: host.fleet.size,
      interval: host.options.membershipInterval,
      instance: this.instance,
    };
    host.publish(nc, host.subjects.members, beat);
  }

  /** Announces that this master leaves, so the others drop it at once rather than after missed beats. */
  leave(nc: NatsConnection): void {
    const { host } = this;
    host.publish(nc, host.subjects.members, { kind: "leave", cluster: host.clusterName, id: host.fleet.id, instance: this.instance });
  }

  /** A beat or a leave on the members subject (our own beats included: they are the echo). */
  onMembers(msg: Msg): void {
    const { host } = this;
    const message = host.decode(msg);
    if (message?.kind === "beat") {
      const result = this.table.heard(message);
      if (result === "self") {
        if (this.echoLost) this.table.renewAll();
        this.echoLost = false;
        this.lastEcho = Date.now();
      } else if (result === "joined") {
        const member = this.table.get(message.id)!;
        host.log.info(`master ${member.id} (${member.address}) joined cluster "${host.clusterName}"`);
        this.events.joined(member);
        this.beatSoon();
      } else if (result === "conflict" && !this.conflictWarned) {
        this.conflictWarned = true;
        host.log.warn(
          `another master also calls itself "${host.fleet.id}" in cluster "${host.clusterName}": give each master its own --name`,
        );
      }
    } else if (message?.kind === "leave") {
      const member = this.table.left(message.id, message.instance);
      if (member) this.memberLeft(member, "left");
    }
  }

  private armBeat(): void {
    clearTimeout(this.beatTimer);
    this.beatTimer = setTimeout(() => {
      this.beat();
      this.sweep();
      this.armBeat();
    }, this.host.options.membershipInterval);
    this.beatTimer.unref();
  }

  /** A beat soon (coalesced), so a master that just joined learns of this one without waiting an interval. */
  private beatSoon(): void {
    if (this.promptBeat || this.host.closing) return;
    this.promptBeat = setTimeout(() => {
      this.promptBeat = undefined;
      this.beat();
    }, 0);
    this.promptBeat.unref();
  }

  private sweep(): void {
    const { host } = this;
    if (!host.connected) return;
    const { membershipInterval, memberExpiryBeats } = host.options;
    const echoWindow = membershipInterval * memberExpiryBeats;
    if (this.lastEcho > 0 && Date.now() - this.lastEcho > echoWindow) {
      // Our own beats do not come back: the silence is ours, not theirs. Keep the members (named unanswered).
      this.echoLost = true;
      this.events.sweep();
      return;
    }
    // Silence counts only up to our own latest echo: a member's beat and our echo race over the same link,
    // so a link that just went dark must not expire members whose deadline passed after it did.
    const until = this.lastEcho > 0 ? Math.min(Date.now(), this.lastEcho + membershipInterval) : Date.now();
    for (const member of this.table.expire(until)) this.memberLeft(member, "expired");
    this.events.sweep();
  }

  private memberLeft(member: ClusterMember, reason: "left" | "expired"): void {
    const { host } = this;
    host.log.info(
      reason === "left"
        ? `master ${member.id} (${member.address}) left cluster "${host.clusterName}"`
        : `master ${member.id} (${member.address}) expired from cluster "${host.clusterName}": silent for ${host.options.memberExpiryBeats} heartbeats`,
    );
    this.events.left(member, reason);
  }
}
