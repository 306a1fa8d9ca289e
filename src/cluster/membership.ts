import type { BeatMessage } from "./messages.js";
import type { ClusterMember } from "./types.js";

interface Entry {
  member: ClusterMember;
  /** What expiry counts from: when it was last heard, or when this node reconnected, whichever is later. */
  since: number;
  instance: string;
  /** The sender's own interval: it is expired after `expiryBeats` of them. */
  interval: number;
}

/** What a heartbeat changed. */
export type HeardResult = "joined" | "updated" | "conflict" | "self";

/**
 * The masters this node has heard from, expired locally after
 * `expiryBeats` missed heartbeats (by each sender's own interval). Pure
 * bookkeeping with an injectable clock; the node publishes, and sweeps
 * only while connected (a node cut off from NATS keeps the members it
 * knew, and names them unanswered, rather than forgetting them).
 */
export class Membership {
  private readonly others = new Map<string, Entry>();

  constructor(
    private readonly selfId: string,
    private readonly selfInstance: string,
    private readonly expiryBeats: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records a heartbeat. "conflict": another process beats under this
   * node's own id (two masters configured with one name).
   */
  heard(beat: BeatMessage): HeardResult {
    if (beat.id === this.selfId) return beat.instance === this.selfInstance ? "self" : "conflict";
    const existing = this.others.get(beat.id);
    const member: ClusterMember = { id: beat.id, address: beat.address, slavesHeld: beat.slavesHeld, lastHeard: this.now(), self: false };
    this.others.set(beat.id, { member, since: member.lastHeard, instance: beat.instance, interval: beat.interval });
    return existing ? "updated" : "joined";
  }

  /** Drops a member that announced it is leaving; only the process that beat under that id may remove it. */
  left(id: string, instance: string): ClusterMember | undefined {
    const entry = this.others.get(id);
    if (!entry || entry.instance !== instance) return undefined;
    this.others.delete(id);
    return entry.member;
  }

  /**
   * Drops and returns the members silent for more than `expiryBeats` of
   * their intervals, counting silence only `until` the last moment this
   * node knows its own link carried messages (default now).
   */
  expire(until: number = this.now()): ClusterMember[] {
    const gone: ClusterMember[] = [];
    for (const [id, entry] of this.others) {
      if (until - entry.since > entry.interval * this.expiryBeats) {
        this.others.delete(id);
        gone.push(entry.member);
      }
    }
    return gone;
  }

  /**
   * Restarts every member's expiry from now: after this node was cut off
   * from NATS, silence it could not have heard through says nothing about
   * the others, so each gets `expiryBeats` fresh intervals to be heard.
   */
  renewAll(): void {
    const now = this.now();
    for (const entry of this.others.values()) entry.since = now;
  }

  get(id: string): ClusterMember | undefined {
    return this.others.get(id)?.member;
  }

  /** The other masters known alive, in id order. */
  list(): ClusterMember[] {
    return Array.from(this.others.values(), (e) => ({ ...e.member })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get size(): number {
    return this.others.size;
  }
}
