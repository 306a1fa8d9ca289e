import type { BeatMessage } from "./messages.js";
import type { ClusterMember } from "./types.js";

interface Entry {
  member: ClusterMember;
  instance: string;
  /** The sender's own interval: it is expired after `expiryBeats` of them. */
  interval: number;
}

/** What a heartbeat changed. */
export type HeardResult = "joined" | "updated" | "conflict" | "self";

/**
 * The masters this node has heard from, expired locally after
 * `expiryBeats` missed heartbeats (by each sender's own interval). Pure
 * bookkeeping with an injectable clock; the node publishes and sweeps.
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
    this.others.set(beat.id, { member, instance: beat.instance, interval: beat.interval });
    return existing ? "updated" : "joined";
  }

  /** Drops a member that announced it is leaving; only the process that beat under that id may remove it. */
  left(id: string, instance: string): ClusterMember | undefined {
    const entry = this.others.get(id);
    if (!entry || entry.instance !== instance) return undefined;
    this.others.delete(id);
    return entry.member;
  }

  /** Drops and returns the members silent for more than `expiryBeats` of their intervals. */
  expire(): ClusterMember[] {
    const now = this.now();
    const gone: ClusterMember[] = [];
    for (const [id, entry] of this.others) {
      if (now - entry.member.lastHeard > entry.interval * this.expiryBeats) {
        this.others.delete(id);
        gone.push(entry.member);
      }
    }
    return gone;
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
