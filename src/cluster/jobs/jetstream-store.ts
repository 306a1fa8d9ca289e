import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { InvalidArgumentError, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Code } from "../../code.js";
import { CLUSTER_DEFAULTS } from "../../defaults.js";
import { NetSyncError } from "../../errors.js";
import type { JobSpec } from "../../jobs/job.js";
import type { JobFollower, JobStore, KeptCommand, PendingBounds, SettleOutcome, StoredJob, StoredSpec } from "../../jobs/store.js";
import type { Logger } from "../../logger.js";
import type { JobResult, JobSummary } from "../../model.js";
import { encodeToken } from "../subjects.js";
import {
  decodeHead,
  decodeKept,
  decodeResult,
  decodeSummary,
  decodeTaking,
  decodeTargets,
  encodeKept,
  isJobId,
  JobNames,
  type StoredHead,
  specOfHead,
} from "./names.js";
import { Outbox } from "./outbox.js";

/** How long one JetStream API call or publish waits for its answer. */
const REQUEST_TIMEOUT_MS = 3_000;
/** Targets per KV value past which they go in chunks of their own (a value must fit NATS's max_payload, 1 MiB by default). */
const CHUNK_BYTES = 256 * 1024;
/** Specs of other masters' jobs remembered for delivering their kept commands. */
const SPEC_CACHE = 1_000;
/** Slaves probed at once when asking which held slaves have kept commands. */
const PROBE_CONCURRENCY = 64;
/** Results fetched per pull when reading a job. */
const READ_BATCH = 1_000;
/** Nats-Msg-Id dedupe window of the pending stream (a retried keep is stored once); at most its max_age. */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
/** How long close() tries to write what waits in the outbox. */
const CLOSE_FLUSH_MS = 500;
/** How long after NATS lost a follow's consumer it is replaced. */
const RESTART_FOLLOW_MS = 100;
/** Between two tries to reopen the store after NATS came back (JetStream may take a moment to recover its streams). */
const REOPEN_MS = 500;

/** The cluster node's NATS connection, as the store sees it. */
export interface StoreLink {
  readonly nc: NatsConnection | undefined;
  /** Whether NATS answers now. */
  readonly connected: boolean;
}

export interface JetStreamJobStoreOptions {
  clusterName: string;
  pending: PendingBounds;
  /** How long jobs and results are kept (the job cache's maxAgeMs): the bucket's TTL and the results' max_age. */
  retentionMs: number;
  /** Longest deliverWithin: kept commands' max_age. */
  maxDeliverWithin: number;
  /** Writes held while NATS is away. */
  outbox: number;
  log: Logger;
}

interface Session {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  kv: KV;
}

interface Follow {
  jobId: string;
  startedAt: number;
  follower: JobFollower;
  /** The connection its consumer and subscription live on. */
  nc?: NatsConnection;
  /** The stream sequence of the last result seen: a replaced consumer starts after it. */
  lastSeq: number;
  stop?: () => void;
  /** Replaces its consumer (NATS lost it), keeping the subscription. */
  restart?: () => void;
  stopped: boolean;
}

/**
 * A cluster's jobs in NATS JetStream, shared by every master (see
 * {@link JobNames} for what is stored where): the master that accepted a job
 * may die without losing its kept commands (the master a slave connects to
 * delivers them) or its results (they are in the results stream, and any
 * master reads the job back). The server enforces the first-result-wins rule
 * and the bounds on kept commands (per slave and in total). Writes made while
 * NATS is away wait in a bounded outbox and are replayed in order once it is
 * back; reads then fail at once with UNAVAILABLE.
 */
export class JetStreamJobStore implements JobStore {
  readonly kind = "jetstream";
  readonly shared = true;
  readonly names: JobNames;
  private readonly outbox: Outbox<Session>;
  private current: Session | undefined;
  private opening: Promise<Session> | undefined;
  private readonly specs = new Map<string, StoredSpec>();
  /** Start times of the jobs recorded here, for following their results from that moment. */
  private readonly started = new Map<string, number>();
  private readonly follows = new Set<Follow>();
  private readonly wakers = new Set<() => void>();
  private closed = false;
  private reopening = false;

  private constructor(
    private readonly link: StoreLink,
    private readonly options: JetStreamJobStoreOptions,
  ) {
    this.names = new JobNames(options.clusterName);
    this.outbox = new Outbox<Session>(
      options.outbox,
      () => this.session(),
      () => this.open(),
      isTransient,
      options.log,
    );
  }

  /**
   * Opens the store on the link's connection: creates (or binds) its streams and bucket. Rejects
   * with FAILED_PRECONDITION if NATS has no JetStream (nothing to try again until NATS restarts),
   * otherwise with what went wrong (a JetStream that did not answer in time, a refused request),
   * which is worth trying again while connected.
   */
  static async open(link: StoreLink, options: JetStreamJobStoreOptions): Promise<JetStreamJobStore> {
    const store = new JetStreamJobStore(link, options);
    try {
      await store.open();
    } catch (err) {
      // @nats-io/jetstream's public entry does not export the JetStreamNotEnabled class, only its errors' names.
      if (err instanceof Error && err.name === "JetStreamNotEnabled") {
        throw new NetSyncError(err.message, Code.FAILED_PRECONDITION, { cause: err });
      }
      throw err;
    }
    return store;
  }

  /** Writes waiting for NATS. */
  get waiting(): number {
    return this.outbox.size;
  }

  /**
   * The link is up again: reopen on a new connection if it changed, replay
   * what waits, restart the follows, and wake the runner (slaves held here
   * may have commands kept while NATS was away).
   */
  async up(): Promise<void> {
    if (this.closed || this.reopening) return;
    this.reopening = true;
    try {
      for (let attempt = 1; ; attempt++) {
        if (this.closed || !this.link.connected) return;
        try {
          await this.open();
          break;
        } catch (err) {
          // JetStream recovers its streams after a restart before it answers: "no responders" or 503 until then.
          if (attempt === 10) this.options.log.warn(`job store: JetStream does not answer yet (${describe(err)}); still trying`);
          await new Promise((resolve) => setTimeout(resolve, REOPEN_MS));
        }
      }
    } finally {
      this.reopening = false;
    }
    await this.outbox.pump();
    for (const follow of this.follows) if (follow.nc !== this.current?.nc) this.startFollow(follow);
    for (const wake of this.wakers) wake();
  }

  // --- writes ---------------------------------------------------------------------

  async record(spec: JobSpec): Promise<void> {
    const { id } = spec;
    const { head, chunks } = headOf(spec);
    this.started.set(id, spec.startedAt.getTime());
    const text = JSON.stringify(head);
    const max = this.link.nc?.info?.max_payload;
    if (max !== undefined && Buffer.byteLength(text) > max - 1_024) {
      throw new NetSyncError(
        `the job's record is ${Buffer.byteLength(text)} bytes, more than NATS's max_payload (${max})`,
        Code.INVALID_ARGUMENT,
      );
    }
    // Accepted only once stored: a record that waits in the outbox would die with this master, and the job with it.
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => {
        gaveUp = true;
        reject(
          new NetSyncError(
            `the JetStream job store did not confirm the job's record within ${CLUSTER_DEFAULTS.jobRecordWait} ms (is NATS reachable?); the job was not started`,
            Code.UNAVAILABLE,
          ),
        );
      }, CLUSTER_DEFAULTS.jobRecordWait);
      this.outbox.write({
        what: `record job ${id}`,
        run: async ({ kv }) => {
          // Given up on while it waited: the job was refused, so no record of it is written late.
          if (gaveUp) return;
          try {
            // Chunks first: a reader that finds the head finds its targets.
            for (const [n, chunk] of chunks.entries()) await kv.put(`${id}.targets.${n}`, JSON.stringify(chunk));
            await kv.put(id, text);
            resolve();
          } catch (err) {
            if (isTransient(err)) throw err;
            reject(err);
          }
        },
        queued: () => {},
        refused: (why) => reject(new NetSyncError(why, Code.UNAVAILABLE)),
      });
    }).finally(() => clearTimeout(timer));
  }

  settle(jobId: string, result: JobResult): Promise<SettleOutcome> {
    return new Promise((resolve, reject) => {
      this.outbox.write({
        what: `result of slave ${result.slaveId} in job ${jobId}`,
        run: async ({ js }) => {
          try {
            await js.publish(this.names.result(jobId, result.slaveId), JSON.stringify(result), { timeout: REQUEST_TIMEOUT_MS });
            resolve("won");
          } catch (err) {
            if (isTransient(err)) throw err;
            if (refusedAs(err) === "per-subject") resolve("lost");
            else reject(err);
          }
        },
        queued: () => resolve("queued"),
        refused: (why) => reject(new NetSyncError(why, Code.UNAVAILABLE)),
      });
    });
  }

  finish(jobId: string, summary: JobSummary): void {
    this.started.delete(jobId);
    this.outbox.write({
      what: `final counts of job ${jobId}`,
      run: async ({ kv }) => {
        await kv.put(`${jobId}.done`, JSON.stringify(summary));
      },
      refused: () => {},
    });
  }

  keep(command: KeptCommand): Promise<string | undefined> {
    const { pending } = this.options;
    return new Promise((resolve) => {
      this.outbox.write({
        what: `keep job ${command.jobId}'s command for slave ${command.slaveId}`,
        run: async ({ js }) => {
          try {
            // The id makes a keep retried after a lost ack one message (within the duplicate window).
            const ack = await js.publish(this.names.pending(command.slaveId), encodeKept(command), {
              msgID: `${command.jobId}.${encodeToken(command.slaveId)}`,
              timeout: REQUEST_TIMEOUT_MS,
            });
            command.ref = ack.seq;
            resolve(undefined);
          } catch (err) {
            if (isTransient(err)) throw err;
            const refused = refusedAs(err);
            resolve(
              refused === "per-subject"
                ? `${pending.perSlave} commands are already pending for slave ${command.slaveId} (the per-slave bound)`
                : refused === "total"
                  ? `the cluster already keeps ${pending.total} pending deliveries (its total bound)`
                  : `the job store refused it: ${describe(err)}`,
            );
          }
        },
        refused: resolve,
      });
    });
  }

  remove(command: KeptCommand): Promise<boolean> {
    const seq = command.ref;
    if (seq === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.outbox.write({
        what: `remove job ${command.jobId}'s command for slave ${command.slaveId}`,
        run: async ({ jsm }) => {
          try {
            resolve(await jsm.streams.deleteMessage(this.names.pendingStream, seq, false));
          } catch (err) {
            if (isTransient(err)) throw err;
            // "no message found": another master delivered (or expired) it and removed it first.
            resolve(false);
          }
        },
        refused: () => resolve(false),
      });
    });
  }

  taking(command: KeptCommand, until: number): void {
    const nc = this.link.nc;
    if (!nc || !this.link.connected) return;
    try {
      nc.publish(this.names.taking(command.jobId), JSON.stringify({ slaveId: command.slaveId, until }));
    } catch {
      // Best effort: without it, the asking master may expire a command that is being delivered, and say so.
    }
  }

  // --- reads ------------------------------------------------------------------------

  async kept(slaveId: string): Promise<KeptCommand[]> {
    const { jsm } = await this.readable();
    const stream = this.names.pendingStream;
    const subject = this.names.pending(slaveId);
    // The last one first: on 2.9 a "next by subject" past a subject's last message scans the rest of its block
    // (measured: 6x the cost of a hit), so the walk below stops at the last one instead of asking for one more.
    const last = await jsm.direct.getMessage(stream, { last_by_subj: subject });
    if (!last) return [];
    const out: KeptCommand[] = [];
    let seq = 0;
    // At most perSlave of them (the server's bound), oldest first, one direct get by subject each.
    for (let i = 0; i <= this.options.pending.perSlave && seq < last.seq; i++) {
      const msg = seq + 1 === last.seq ? last : await jsm.direct.getMessage(stream, { next_by_subj: subject, seq: seq + 1 });
      if (!msg) break;
      seq = msg.seq;
      const command = decodeKept(msg.string(), slaveId, msg.seq);
      if (command) out.push(command);
    }
    return out;
  }

  async keptAmong(held: readonly string[]): Promise<string[]> {
    if (held.length === 0) return [];
    const { jsm } = await this.readable();
    const stream = this.names.pendingStream;
    const { state } = await jsm.streams.info(stream);
    if (state.messages === 0) return [];
    if ((state.num_subjects ?? Number.POSITIVE_INFINITY) <= held.length) {
      // Fewer slaves with kept commands than held here: list them (one paged request) rather than probe each held one.
      const { state: listed } = await jsm.streams.info(stream, { subjects_filter: this.names.allPending });
      const mine = new Set(held);
      return Object.keys(listed.subjects ?? {})
        .map((subject) => this.names.slaveOfPending(subject))
        .filter((id): id is string => id !== undefined && mine.has(id));
    }
    const found: string[] = [];
    for (let i = 0; i < held.length; i += PROBE_CONCURRENCY) {
      const batch = held.slice(i, i + PROBE_CONCURRENCY);
      const hits = await Promise.all(
        batch.map((id) => jsm.direct.getMessage(stream, { next_by_subj: this.names.pending(id), seq: 1 }).then((m) => m !== null)),
      );
      for (const [n, hit] of hits.entries()) if (hit) found.push(batch[n] as string);
    }
    return found;
  }

  async spec(jobId: string): Promise<StoredSpec | undefined> {
    const cached = this.specs.get(jobId);
    if (cached) return cached;
    if (!isJobId(jobId)) return undefined;
    const head = await this.head(await this.readable(), jobId);
    if (!head) return undefined;
    const spec = specOfHead(head);
    if (this.specs.size >= SPEC_CACHE) this.specs.delete(this.specs.keys().next().value as string);
    this.specs.set(jobId, spec);
    return spec;
  }

  async read(jobId: string): Promise<StoredJob | undefined> {
    if (!isJobId(jobId)) return undefined;
    const session = await this.readable();
    const head = await this.head(session, jobId);
    if (!head) return undefined;
    const [targets, results, summary] = await Promise.all([
      this.targetsOf(session, head),
      this.resultsOf(session, jobId, head.startedAt),
      this.summaryOf(session, jobId),
    ]);
    return { spec: { ...specOfHead(head), targets }, results, ...(summary ? { summary } : {}) };
  }

  async list(limit: number): Promise<StoredJob[]> {
    const session = await this.readable();
    const ids: string[] = [];
    // Single-token keys are the jobs' heads (".targets.n" and ".done" have more tokens).
    for await (const key of await session.kv.keys("*")) if (isJobId(key)) ids.push(key);
    ids.sort().reverse();
    const out: StoredJob[] = [];
    for (const id of ids.slice(0, limit)) {
      const head = await this.head(session, id);
      if (!head) continue;
      const summary = await this.summaryOf(session, id);
      // A large job's targets are left out of a listing (they are read with the job).
      out.push({ spec: { ...specOfHead(head), targets: head.targets ?? [] }, results: [], ...(summary ? { summary } : {}) });
    }
    return out;
  }

  // --- following a job ------------------------------------------------------------------

  follow(jobId: string, follower: JobFollower): () => void {
    const follow: Follow = { jobId, startedAt: this.started.get(jobId) ?? Date.now(), follower, lastSeq: 0, stopped: false };
    this.follows.add(follow);
    this.startFollow(follow);
    return () => {
      follow.stopped = true;
      follow.stop?.();
      this.follows.delete(follow);
    };
  }

  /**
   * Follows a job's results with an ordered consumer from its start (so
   * nothing recorded before is missed), and "taking" notes with a core
   * subscription. Started again by up() if the connection was replaced.
   */
  private startFollow(follow: Follow): void {
    follow.stop?.();
    follow.stop = undefined;
    const session = this.session();
    if (!session || follow.stopped) return;
    follow.nc = session.nc;
    let sub: Subscription | undefined;
    try {
      sub = session.nc.subscribe(this.names.taking(follow.jobId), {
        callback: (err, msg) => {
          const taking = err ? undefined : decodeTaking(msg.string());
          if (taking && !follow.stopped) follow.follower.taking(taking.slaveId, taking.until);
        },
      });
    } catch (err) {
      this.options.log.debug(`job store: cannot follow job ${follow.jobId}'s deliveries: ${describe(err)}`);
    }
    let stopResults = this.followResults(follow, session);
    follow.stop = () => {
      sub?.unsubscribe();
      stopResults();
    };
    follow.restart = () => {
      stopResults();
      stopResults = this.followResults(follow, session);
    };
  }

  /**
   * One ordered consumer on a job's results, from the last one seen (or the
   * job's start). nats.js recreates an ordered consumer that NATS lost (a
   * restart: they live in memory), but not one created from a start time
   * (its reset asks for both a time and a sequence), so a lost consumer is
   * replaced here, from the last sequence seen. Returns the function that stops it.
   */
  private followResults(follow: Follow, session: Session): () => void {
    let stopped = false;
    let close: (() => void) | undefined;
    const stop = () => {
      stopped = true;
      close?.();
    };
    void (async () => {
      const from =
        follow.lastSeq > 0 ? { opt_start_seq: follow.lastSeq + 1 } : { opt_start_time: new Date(follow.startedAt).toISOString() };
      const consumer = await session.js.consumers.get(this.names.resultsStream, {
        filter_subjects: this.names.results(follow.jobId),
        ...from,
      });
      const messages = await consumer.consume({ max_messages: 256 });
      close = () => {
        void messages.close();
        void consumer.delete().catch(() => undefined);
      };
      if (stopped) close();
      void (async () => {
        for await (const status of messages.status()) {
          if (stopped) return;
          if (status.type === "consumer_not_found" || status.type === "consumer_deleted") {
            // Replaced one turn later (not from inside the iterator that reported it).
            setTimeout(() => follow.restart?.(), RESTART_FOLLOW_MS).unref();
            return;
          }
        }
      })();
      for await (const msg of messages) {
        if (stopped) break;
        follow.lastSeq = Math.max(follow.lastSeq, msg.seq);
        const result = decodeResult(msg.string());
        if (result) follow.follower.result(result);
      }
    })().catch((err: unknown) => {
      if (stopped) return;
      // Tried again on the next up(): the link is down, or JetStream was not ready.
      follow.nc = undefined;
      this.options.log.debug(`job store: cannot follow job ${follow.jobId}'s results: ${describe(err)}`);
    });
    return stop;
  }

  onWake(listener: () => void): () => void {
    this.wakers.add(listener);
    return () => this.wakers.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const follow of this.follows) follow.stop?.();
    this.follows.clear();
    this.wakers.clear();
    const left = await this.outbox.close(CLOSE_FLUSH_MS);
    this.closed = true;
    if (left > 0) this.options.log.warn(`job store: closed with ${left} writes not made (NATS unreachable): they are lost`);
  }

  // --- sessions ---------------------------------------------------------------------------

  /** The session of the current connection, if NATS answers now. */
  private session(): Session | undefined {
    const nc = this.link.nc;
    return nc && this.link.connected && this.current?.nc === nc ? this.current : undefined;
  }

  /** A session for a read: fails at once (UNAVAILABLE) while NATS is away, rather than waiting out a timeout. */
  private async readable(): Promise<Session> {
    if (!this.link.connected) throw new NetSyncError("the cluster's job store is unavailable: NATS is unreachable", Code.UNAVAILABLE);
    return this.session() ?? (await this.open());
  }

  /** Opens a session on the link's connection: streams and bucket created or bound (checked again on every new session). */
  private open(): Promise<Session> {
    const nc = this.link.nc;
    if (!nc || !this.link.connected) return Promise.reject(new NetSyncError("NATS is unreachable", Code.UNAVAILABLE));
    if (this.current?.nc === nc && this.opening === undefined) return this.ensure(this.current);
    this.opening ??= (async () => {
      const jsm = await jetstreamManager(nc, { timeout: REQUEST_TIMEOUT_MS });
      const js = jsm.jetstream();
      const kv = await new Kvm(js).create(this.names.bucket, {
        ttl: this.options.retentionMs,
        history: 1,
        storage: StorageType.File,
      });
      const session = { nc, js, jsm, kv };
      await this.ensure(session);
      this.current = session;
      return session;
    })().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  /** Creates the two streams, or brings an existing one to this master's bounds (the last master started sets them). */
  private async ensure(session: Session): Promise<Session> {
    const { pending, retentionMs, maxDeliverWithin } = this.options;
    const ns = (ms: number) => ms * 1_000_000;
    const common: Partial<StreamConfig> = {
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
      allow_direct: true,
      num_replicas: 1,
    };
    await ensureStream(session.jsm, this.options.log, {
      ...common,
      name: this.names.resultsStream,
      subjects: [this.names.allResults],
      // The first result of a slave wins at the server: a second publish on its subject is refused.
      max_msgs_per_subject: 1,
      max_age: ns(retentionMs),
      duplicate_window: ns(Math.min(DUPLICATE_WINDOW_MS, retentionMs)),
    });
    await ensureStream(session.jsm, this.options.log, {
      ...common,
      name: this.names.pendingStream,
      subjects: [this.names.allPending],
      max_msgs_per_subject: pending.perSlave,
      max_msgs: pending.total,
      max_age: ns(maxDeliverWithin),
      duplicate_window: ns(Math.min(DUPLICATE_WINDOW_MS, maxDeliverWithin)),
    });
    return session;
  }

  // --- pieces of a job ----------------------------------------------------------------------

  private async head({ kv }: Session, jobId: string): Promise<StoredHead | undefined> {
    const entry = await kv.get(jobId);
    return entry && entry.operation === "PUT" ? decodeHead(entry.string()) : undefined;
  }

  private async targetsOf({ kv }: Session, head: StoredHead): Promise<string[]> {
    if (head.targets) return head.targets;
    const chunks = await Promise.all(
      Array.from({ length: head.chunks }, (_, n) =>
        kv.get(`${head.id}.targets.${n}`).then((e) => (e ? decodeTargets(e.string()) : undefined)),
      ),
    );
    return chunks.flatMap((chunk) => chunk ?? []);
  }

  private async summaryOf({ kv }: Session, jobId: string): Promise<JobSummary | undefined> {
    const entry = await kv.get(`${jobId}.done`);
    return entry && entry.operation === "PUT" ? decodeSummary(entry.string()) : undefined;
  }

  /** Every result of a job, in the order recorded: one ordered consumer from the job's start, pulled in batches, then deleted. */
  private async resultsOf({ js }: Session, jobId: string, startedAt: number): Promise<JobResult[]> {
    const consumer = await js.consumers.get(this.names.resultsStream, {
      filter_subjects: this.names.results(jobId),
      opt_start_time: new Date(startedAt).toISOString(),
    });
    const out: JobResult[] = [];
    try {
      let left = (await consumer.info(true)).num_pending;
      while (left > 0) {
        const batch = await consumer.fetch({ max_messages: Math.min(left, READ_BATCH), expires: REQUEST_TIMEOUT_MS });
        let got = 0;
        for await (const msg of batch) {
          got++;
          left = msg.info.pending;
          const result = decodeResult(msg.string());
          if (result) out.push(result);
          if (left === 0) break;
        }
        if (got === 0) break;
      }
    } finally {
      void consumer.delete().catch(() => undefined);
    }
    return out;
  }
}

/** The KV head of a job, and its targets in chunks when they do not fit in it. */
function headOf(spec: JobSpec): { head: StoredHead; chunks: string[][] } {
  const head: StoredHead = {
    v: 1,
    id: spec.id,
    masterId: spec.masterId,
    data: spec.data,
    selector: spec.selector,
    timeout: spec.timeout,
    ...(spec.deliverWithin !== undefined ? { deliverWithin: spec.deliverWithin } : {}),
    unansweredMasters: spec.unansweredMasters,
    startedAt: spec.startedAt.getTime(),
    targetCount: spec.targets.length,
    chunks: 0,
  };
  const bytes = spec.targets.reduce((sum, id) => sum + Buffer.byteLength(id) + 3, 0);
  if (bytes <= CHUNK_BYTES) return { head: { ...head, targets: spec.targets }, chunks: [] };
  const chunks: string[][] = [];
  let chunk: string[] = [];
  let size = 0;
  for (const id of spec.targets) {
    const cost = Buffer.byteLength(id) + 3;
    if (size + cost > CHUNK_BYTES && chunk.length > 0) {
      chunks.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(id);
    size += cost;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return { head: { ...head, chunks: chunks.length }, chunks };
}

/** Creates a stream, or updates one that exists with other settings (another master's bounds, an older NetSync). */
async function ensureStream(jsm: JetStreamManager, log: Logger, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
    await jsm.streams.update(config.name, config);
    log.info(`job store: stream ${config.name} existed with other settings; updated to this master's`);
  }
}

/** JetStream's "stream name already in use with a different configuration". */
const STREAM_NAME_IN_USE = 10058;

/**
 * Whether a failed write should be tried again later: the connection, a
 * timeout, no responders (JetStream not up yet after a restart), or
 * JetStream saying it is temporarily unavailable. A refusal by the
 * stream (a bound, a duplicate result) or a message too large is final.
 */
function isTransient(err: unknown): boolean {
  if (err instanceof NetSyncError) return err.code === Code.UNAVAILABLE;
  if (err instanceof InvalidArgumentError) return false;
  // A stream's refusal is a 503 too (err_code 10077, "maximum messages per subject exceeded"): only 10008 is "try later".
  if (err instanceof JetStreamApiError) return err.code === JETSTREAM_TEMPORARILY_UNAVAILABLE;
  return true;
}

/** JetStream's "JetStream system temporarily unavailable". */
const JETSTREAM_TEMPORARILY_UNAVAILABLE = 10008;

/** Which bound of a stream refused a publish, if one did. */
function refusedAs(err: unknown): "per-subject" | "total" | undefined {
  if (!(err instanceof JetStreamApiError)) return undefined;
  if (/maximum messages per subject exceeded/i.test(err.message)) return "per-subject";
  if (/maximum (messages|bytes) exceeded/i.test(err.message)) return "total";
  return undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
