/**
 * The NATS subjects of one cluster, all under `netsync.<cluster>.`. Ids of
 * slaves and masters are arbitrary text (".", "*", ">", spaces, non-ASCII),
 * so they enter a subject as base64url of their UTF-8: one token of
 * [A-Za-z0-9_-]. A 128-character id is at most 384 bytes of UTF-8, 512
 * characters encoded; with the prefix a subject stays far below NATS's
 * 4 KiB control-line limit.
 */
export class Subjects {
  readonly prefix: string;
  /** Heartbeats and leave messages of every master. */
  readonly members: string;

  constructor(readonly cluster: string) {
    this.prefix = `netsync.${cluster}`;
    this.members = `${this.prefix}.members`;
  }

  /**
   * One slave id's subject: its holders' claims (newest wins) and lookups
   * of who holds it (requests, answered by each holder; "no responders"
   * when none). Per id, so a master hears claims only for the ids it holds:
   * claim traffic scales with a master's own slaves, not with the fleet (a
   * fleet-wide subject delivered every claim of a million slaves to every
   * master after a NATS restart). Literal, not a wildcard: nats-server pays
   * for inserting a wildcard subscription with a scan of its match cache.
   */
  slave(slaveId: string): string {
    return `${this.prefix}.slave.${encodeToken(slaveId)}`;
  }

  /**
   * Sends and requests addressed to one master, for a slave it holds (as
   * its claim, or its answer to a lookup, said): one plain subscription per
   * master, so no other master competes for them.
   */
  route(masterId: string): string {
    return `${this.prefix}.master.${encodeToken(masterId)}.route`;
  }

  /** ListSlaves scatter-gather requests for one master. */
  list(masterId: string): string {
    return `${this.prefix}.master.${encodeToken(masterId)}.list`;
  }

  /** Requests for one master's slice of a fleet page (and for the chunks of a whole listing). */
  page(masterId: string): string {
    return `${this.prefix}.master.${encodeToken(masterId)}.page`;
  }

  /** Requests for one master's count and RTT histogram (the dashboard's summary). */
  summary(masterId: string): string {
    return `${this.prefix}.master.${encodeToken(masterId)}.summary`;
  }

  /** Broadcast requests for one master. */
  broadcast(masterId: string): string {
    return `${this.prefix}.master.${encodeToken(masterId)}.broadcast`;
  }

  /** Slave events of every master (connects, disconnects, evictions), for every master's watchers. */
  get events(): string {
    return `${this.prefix}.events`;
  }
}

/** base64url of the UTF-8 of `id`: a single subject token, never empty for a non-empty id. */
export function encodeToken(id: string): string {
  return Buffer.from(id, "utf8").toString("base64url");
}

export function decodeToken(token: string): string {
  return Buffer.from(token, "base64url").toString("utf8");
}
