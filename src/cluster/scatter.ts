import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { FleetBroadcastResult } from "../model.js";
import { gather } from "./gather.js";
import type { ClusterHost } from "./host.js";
import { type BroadcastMessage, encodeMessage, type ListMessage, type PartMessage, splitSlaves } from "./messages.js";
import type { ClusterMember, ClusterSlave, FleetSlaves } from "./types.js";

/** Share of the server's max_payload one part of a ListSlaves answer may fill. */
const PART_SHARE = 0.5;

/** The masters a fleet-wide call asks: the membership, as the scatter-gather needs it. */
export interface Roster {
  /** This master, as it names itself in answers. */
  self(): ClusterMember;
  /** The other masters known alive: each is asked, and named unanswered if it does not answer in full. */
  others(): ClusterMember[];
}

/**
 * The fleet-wide calls: the local part from the local fleet, then one
 * request to each master known alive, gathered over one inbox (gather.ts).
 * Never waits without NATS: then only the local part, every other known
 * master unanswered. Serves the other side too: the list and broadcast
 * requests of other masters, on this master's own subjects.
 */
export class Scatter {
  constructor(
    private readonly host: ClusterHost,
    private readonly roster: Roster,
  ) {}

  /**
   * Every slave of the cluster matching `selector`: the local ones, and those
   * of each master known alive that answers within `timeoutMs`.
   */
  async listSlaves(selector: string | undefined, timeoutMs: number): Promise<FleetSlaves> {
    const { host } = this;
    const local = host.fleet.slaves(selector);
    const self = this.roster.self();
    const others = this.roster.others();
    const nc = host.nc;
    if (!nc || !host.connected) {
      return { slaves: local, masters: [self], unanswered: others.map((m) => m.id), clusterAvailable: false };
    }
    const request: ListMessage = { kind: "list", cluster: host.clusterName, from: host.fleet.id };
    if (selector) request.selector = selector;
    const targets = others.map((m) => ({ id: m.id, subject: host.subjects.list(m.id) }));
    const { answers, unanswered } = await gather(nc, host.clusterName, targets, encodeMessage(request), timeoutMs);
    const slaves = [...local];
    const masters = [self];
    for (const member of others) {
      const parts = answers.get(member.id);
      if (!parts) continue;
      for (const part of parts) if (part.slaves) slaves.push(...part.slaves);
      masters.push(answered(member, parts[0]!));
    }
    return { slaves, masters, unanswered, clusterAvailable: true };
  }

  /**
   * Writes `data` to every slave of the cluster matching `selector`; counts by
   * master. Each master acknowledges at once, before its write loop, then
   * answers its count: one that did not acknowledge within `timeoutMs` is
   * unanswered; the count of one that did is waited for up to the cluster's
   * `broadcastTimeout` (a loaded master writing to 10,000 slaves answers
   * seconds late, and must not be reported as having done nothing), and if it
   * still has not come, the master is `pending`, not unanswered. The local
   * part is paced over turns of the event loop (Fleet.broadcast) and runs
   * while the other masters write theirs, not before they are asked.
   */
  async broadcast(data: string, selector: string | undefined, timeoutMs: number): Promise<FleetBroadcastResult> {
    const { host } = this;
    const local = host.fleet.broadcast(data, selector);
    const others = this.roster.others();
    const nc = host.nc;
    if (!nc || !host.connected) {
      const localCount = await local;
      return {
        written: localCount,
        byMaster: { [host.fleet.id]: localCount },
        unanswered: others.map((m) => m.id),
        clusterAvailable: false,
      };
    }
    const request: BroadcastMessage = { kind: "broadcast", cluster: host.clusterName, from: host.fleet.id, data, ack: true };
    if (selector) request.selector = selector;
    const targets = others.map((m) => ({ id: m.id, subject: host.subjects.broadcast(m.id) }));
    const answerTimeoutMs = Math.max(timeoutMs, host.options.broadcastTimeout);
    const [localCount, { answers, unanswered, pending }] = await Promise.all([
      local,
      gather(nc, host.clusterName, targets, encodeMessage(request), timeoutMs, { answerTimeoutMs }),
    ]);
    const byMaster: Record<string, number> = { [host.fleet.id]: localCount };
    let written = localCount;
    for (const [id, parts] of answers) {
      const count = parts[0]?.count ?? 0;
      byMaster[id] = count;
      written += count;
    }
    const result: FleetBroadcastResult = { written, byMaster, unanswered, clusterAvailable: true };
    if (pending.length > 0) {
      result.pending = pending;
      host.log.warn(
        `fleet broadcast: ${pending.join(", ")} acknowledged but sent no count within ${answerTimeoutMs} ms; ${written} written is a lower bound`,
      );
    }
    return result;
  }

  /** Another master's list request: this master's slaves, in parts that each fit half the server's max_payload. */
  onList(nc: NatsConnection, msg: Msg): void {
    const message = this.host.decode(msg);
    if (!msg.reply || message?.kind !== "list") return;
    const slaves: ClusterSlave[] = this.host.fleet.slaves(message.selector);
    const budget = Math.max(16 * 1024, Math.floor((nc.info?.max_payload ?? 1024 * 1024) * PART_SHARE));
    const parts = splitSlaves(slaves, budget);
    parts.forEach((part, i) => {
      this.host.respond(msg.reply!, this.part(i, parts.length, { slaves: part }));
    });
  }

  /**
   * Another master's broadcast: acknowledged at once if it asks, written to
   * the local slaves (paced), answered with how many. The writes start on
   * the next turn of the event loop: nats.js flushes what was published in a
   * microtask, so the acknowledgement is on the socket before the fan-out's
   * first turn (or a stall) begins, and the asker knows this master is
   * acting on it.
   */
  onBroadcast(msg: Msg): void {
    const message = this.host.decode(msg);
    const reply = msg.reply;
    if (!reply || message?.kind !== "broadcast") return;
    const write = async () => {
      if (this.host.closing) return;
      const count = await this.host.fleet.broadcast(message.data, message.selector);
      this.host.respond(reply, this.part(0, 1, { count }));
    };
    const failed = (err: unknown) => this.host.log.error(`fleet broadcast from ${message.from} failed: ${(err as Error).message}`);
    if (!message.ack) {
      write().catch(failed);
      return;
    }
    this.host.respond(reply, { ...this.part(0, 1, {}), accepted: true });
    setImmediate(() => write().catch(failed));
  }

  private part(part: number, parts: number, fields: Pick<PartMessage, "slaves" | "count">): PartMessage {
    const { fleet } = this.host;
    return {
      kind: "part",
      cluster: this.host.clusterName,
      masterId: fleet.id,
      address: fleet.address,
      slavesHeld: fleet.size,
      part,
      parts,
      ...fields,
    };
  }
}

/** A member as it answered: its address and count from its answer, fresher than from its last beat. */
function answered(member: ClusterMember, part: PartMessage): ClusterMember {
  return { ...member, address: part.address, slavesHeld: part.slavesHeld };
}
