import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { FleetBroadcastResult } from "../model.js";
import { PAGE_ROUNDS, PAGE_SCAN_LIMIT, PageAssembler, type PageToken } from "../slave-pages.js";
import { gather } from "./gather.js";
import type { ClusterHost } from "./host.js";
import { type BroadcastMessage, encodeMessage, type PageMessage, type PartMessage, type SummaryMessage, splitSlaves } from "./messages.js";
import type { ClusterMember, ClusterSlave, FleetCounts, FleetIds, FleetSlaves, FleetSlavesPage } from "./types.js";

/** Share of the server's max_payload one part of a ListSlaves answer may fill. */
const PART_SHARE = 0.5;

/**
 * Bytes all the answers of one listing gather may take together: each
 * master's answer is capped at its share of this (and at half of
 * max_payload), so one round never puts more than this in the asking
 * master's inbox, far below nats-server's max_pending (64 MB), past which the
 * server would cut the asker as a slow consumer.
 */
const GATHER_BYTES = 8 * 1024 * 1024;
/** Smallest cap of one master's answer, however many masters there are. */
const MIN_ANSWER_BYTES = 16 * 1024;
/** Slaves one master is asked for per round of a whole listing (its byte cap usually ends the chunk first). */
const LIST_CHUNK = 20_000;

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
   * of each master known alive that answers every round within `timeoutMs`.
   * Pulled in chunks, every master from its own cursor in each round, each
   * answer capped (answerBytes): a round never holds more than GATHER_BYTES
   * in this master's inbox, whatever the fleet's size. A master that misses
   * a round is unanswered and none of its slaves are listed.
   */
  async listSlaves(selector: string | undefined, timeoutMs: number): Promise<FleetSlaves> {
    const { host } = this;
    const local = host.fleet.slaves(selector);
    const self = this.roster.self();
    const pulled = await this.pullAll(selector, timeoutMs, false);
    if (!pulled) return { slaves: local, masters: [self], unanswered: this.roster.others().map((m) => m.id), clusterAvailable: false };
    const slaves = [...local];
    const masters = [self];
    for (const { member, part, slaves: theirs } of pulled.answered) {
      for (const slave of theirs) slaves.push(slave);
      masters.push(answered(member, part));
    }
    return { slaves, masters, unanswered: pulled.unanswered, clusterAvailable: true };
  }

  /**
   * The ids of every slave of the cluster matching `selector`, by master:
   * listSlaves() without the slaves, ≈ 10 bytes an id on the wire instead of
   * ≈ 200 a slave, and nothing converted on the masters answering.
   */
  async listIds(selector: string | undefined, timeoutMs: number): Promise<FleetIds> {
    const { host } = this;
    const local = { masterId: host.fleet.id, ids: host.fleet.ids(selector) };
    const pulled = await this.pullAll(selector, timeoutMs, true);
    if (!pulled) return { byMaster: [local], unanswered: this.roster.others().map((m) => m.id), clusterAvailable: false };
    const byMaster = [local];
    for (const { member, ids } of pulled.answered) byMaster.push({ masterId: member.id, ids });
    return { byMaster, unanswered: pulled.unanswered, clusterAvailable: true };
  }

  /**
   * Every other master's slaves (or ids) matching `selector`, pulled in
   * chunks, every master from its own cursor in each round, each answer
   * capped (answerBytes): a round never holds more than GATHER_BYTES in this
   * master's inbox, whatever the fleet's size. A master that misses a round
   * is unanswered and none of its slaves are listed. Undefined without NATS.
   */
  private async pullAll(
    selector: string | undefined,
    timeoutMs: number,
    idsOnly: boolean,
  ): Promise<
    { answered: { member: ClusterMember; part: PartMessage; slaves: ClusterSlave[]; ids: string[] }[]; unanswered: string[] } | undefined
  > {
    const { host } = this;
    const others = this.roster.others();
    const nc = host.nc;
    if (!nc || !host.connected) return undefined;
    const maxBytes = this.answerBytes(nc, others.length);
    /** Each master's slaves (or ids) so far and its last answer; where the next chunk starts for those still pulled. */
    const pulled = new Map(
      others.map((m) => [m.id, { slaves: [] as ClusterSlave[], ids: [] as string[], part: undefined as PartMessage | undefined }]),
    );
    const open = new Map<string, string | undefined>(others.map((m) => [m.id, undefined]));
    const unanswered: string[] = [];
    while (open.size > 0) {
      const targets = [...open].map(([id, after]) => ({
        id,
        subject: host.subjects.page(id),
        payload: encodeMessage(this.pageRequest(selector, after, false, LIST_CHUNK, maxBytes, idsOnly)),
      }));
      const round = await gather(nc, host.clusterName, targets, "", timeoutMs);
      for (const id of round.unanswered) {
        open.delete(id);
        pulled.delete(id);
        unanswered.push(id);
      }
      for (const [id, parts] of round.answers) {
        const pull = pulled.get(id)!;
        const part = parts[0]!;
        if (part.slaves) for (const slave of part.slaves) pull.slaves.push(slave);
        if (part.ids) for (const slaveId of part.ids) pull.ids.push(slaveId);
        pull.part = part;
        if (part.done || part.last === undefined) open.delete(id);
        else open.set(id, part.last);
      }
    }
    const answered = [];
    for (const member of others) {
      const pull = pulled.get(member.id);
      if (pull?.part) answered.push({ member, part: pull.part, slaves: pull.slaves, ids: pull.ids });
    }
    return { answered, unanswered };
  }

  /**
   * One page of the cluster's fleet after `token` (see src/slave-pages.ts):
   * in rounds, each master asked answers only the next slice of its sorted
   * ids after its own cursor, and the pieces are merged in (id, master)
   * order. A master that does not answer a round is left out of the page
   * and named unanswered (its slaves up to where the page ends are missing
   * from the listing). No new round starts once `timeoutMs` has passed.
   */
  async page(
    selector: string | undefined,
    token: PageToken,
    pageSize: number,
    timeoutMs: number,
    bytes: { max?: number; sizeOf?: (slave: ClusterSlave) => number } = {},
  ): Promise<FleetSlavesPage> {
    const { host } = this;
    const self = this.roster.self();
    const others = this.roster.others();
    const nc = host.nc;
    const connected = nc !== undefined && host.connected;
    const asked = connected ? others : [];
    const assembler = new PageAssembler<ClusterSlave>(token, [self.id, ...asked.map((m) => m.id)], pageSize, bytes.max, bytes.sizeOf);
    const heard = new Map<string, PartMessage>();
    const unanswered = new Set(connected ? [] : others.map((m) => m.id));
    const maxBytes = nc ? this.answerBytes(nc, asked.length) : 0;
    const started = performance.now();
    for (let round = 0; round < PAGE_ROUNDS; round++) {
      if (round > 0 && performance.now() - started >= timeoutMs) break;
      const requests = assembler.requests();
      if (requests.length === 0) break;
      const targets = requests
        .filter((r) => r.masterId !== self.id)
        .map((r) => ({
          id: r.masterId,
          subject: host.subjects.page(r.masterId),
          payload: encodeMessage(this.pageRequest(selector, r.cursor?.id, r.cursor?.inclusive ?? false, r.limit, maxBytes)),
        }));
      // The requests go out first; this master's own slice is read while they travel.
      const gathered = targets.length > 0 && nc ? gather(nc, host.clusterName, targets, "", timeoutMs) : undefined;
      const own = requests.find((r) => r.masterId === self.id);
      if (own) {
        const part = host.fleet.page(selector, own.cursor?.id, own.cursor?.inclusive ?? false, own.limit, PAGE_SCAN_LIMIT);
        assembler.answer({ masterId: self.id, ...part });
      }
      if (gathered) {
        const result = await gathered;
        for (const id of result.unanswered) {
          assembler.fail(id);
          unanswered.add(id);
        }
        for (const [id, parts] of result.answers) {
          const part = parts[0]!;
          if (assembler.answer({ masterId: id, slaves: part.slaves ?? [], last: part.last, done: part.done === true })) heard.set(id, part);
          else unanswered.add(id);
        }
      }
      assembler.place();
    }
    const masters = [self];
    for (const member of asked) {
      const part = heard.get(member.id);
      if (part && !unanswered.has(member.id)) masters.push(answered(member, part));
    }
    return {
      slaves: assembler.page,
      nextPageToken: assembler.nextToken(),
      masters,
      unanswered: [...unanswered],
      clusterAvailable: connected,
    };
  }

  /** Every master's count and RTT histogram (one small answer each), for a fleet summary without listing anyone. */
  async summary(timeoutMs: number): Promise<FleetCounts> {
    const { host } = this;
    const self = this.roster.self();
    const others = this.roster.others();
    const rtt = [host.fleet.rttHistogram()];
    const nc = host.nc;
    if (!nc || !host.connected) return { rtt, masters: [self], unanswered: others.map((m) => m.id), clusterAvailable: false };
    const request: SummaryMessage = { kind: "summary", cluster: host.clusterName, from: host.fleet.id };
    const targets = others.map((m) => ({ id: m.id, subject: host.subjects.summary(m.id) }));
    const { answers, unanswered } = await gather(nc, host.clusterName, targets, encodeMessage(request), timeoutMs);
    const masters = [self];
    for (const member of others) {
      const part = answers.get(member.id)?.[0];
      if (!part) continue;
      masters.push(answered(member, part));
      rtt.push(part.rtt ?? []);
    }
    return { rtt, masters, unanswered, clusterAvailable: true };
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
   * Another master's page request: the next slice of this master's sorted
   * ids after its cursor, in one answer capped at the bytes it asks for and
   * at half the server's max_payload (the first slave always goes).
   */
  onPage(nc: NatsConnection, msg: Msg): void {
    const message = this.host.decode(msg);
    if (!msg.reply || message?.kind !== "page") return;
    const budget = Math.max(
      MIN_ANSWER_BYTES,
      Math.min(message.maxBytes ?? Number.POSITIVE_INFINITY, Math.floor((nc.info?.max_payload ?? 1024 * 1024) * PART_SHARE)),
    );
    const limit = Math.min(message.limit, LIST_CHUNK);
    const { fleet } = this.host;
    // The message's own fields and the JSON array's brackets are a few hundred bytes: kept out of the slaves' budget.
    const args = [
      message.selector,
      message.after,
      message.inclusive === true,
      limit,
      Math.max(PAGE_SCAN_LIMIT, 4 * limit),
      budget - 1024,
    ] as const;
    const slice = message.idsOnly ? fleet.pageIds(...args) : fleet.page(...args);
    const fields: Pick<PartMessage, "slaves" | "ids" | "last" | "done"> = { done: slice.done };
    if ("ids" in slice) fields.ids = slice.ids;
    else fields.slaves = slice.slaves;
    if (slice.last !== undefined) fields.last = slice.last;
    this.host.respond(msg.reply, this.part(0, 1, fields));
  }

  /** Another master's summary request: this master's count (in every part) and its slaves' RTT histogram. */
  onSummary(msg: Msg): void {
    const message = this.host.decode(msg);
    if (!msg.reply || message?.kind !== "summary") return;
    this.host.respond(msg.reply, this.part(0, 1, { rtt: this.host.fleet.rttHistogram() }));
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

  private pageRequest(
    selector: string | undefined,
    after: string | undefined,
    inclusive: boolean,
    limit: number,
    maxBytes: number,
    idsOnly = false,
  ): PageMessage {
    const request: PageMessage = { kind: "page", cluster: this.host.clusterName, from: this.host.fleet.id, limit, maxBytes };
    if (idsOnly) request.idsOnly = true;
    if (selector) request.selector = selector;
    if (after !== undefined) request.after = after;
    if (inclusive) request.inclusive = true;
    return request;
  }

  /** The cap of one master's answer in a gather asking `asked` masters: its share of GATHER_BYTES, within half of max_payload. */
  private answerBytes(nc: NatsConnection, asked: number): number {
    const payloadShare = Math.floor((nc.info?.max_payload ?? 1024 * 1024) * PART_SHARE);
    return Math.max(MIN_ANSWER_BYTES, Math.min(payloadShare, Math.floor(GATHER_BYTES / Math.max(1, asked))));
  }

  private part(part: number, parts: number, fields: Pick<PartMessage, "slaves" | "count" | "last" | "done" | "rtt">): PartMessage {
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
