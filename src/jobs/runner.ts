import { randomBytes } from "node:crypto";
import type { Reply } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { JOB_DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { pace, yieldTurn } from "../fleet/pacer.js";
import type { BatchHandlers, CommandBatch } from "../fleet/request-batch.js";
import type { JobDelivery } from "../fleet/scope.js";
import type { Logger } from "../logger.js";
import type { CustomInput, JobRecord, JobResult, JobResultStatus, RoutedReplyResult, RunOptions } from "../model.js";
import { Selector } from "../selector.js";
import { validateSlaveId } from "../wire.js";
import { Job, type JobSpec } from "./job.js";
import { JobCache } from "./job-cache.js";
import { type JobFollower, type JobStore, type KeptCommand, MemoryJobStore, type SettleOutcome, type StoredSpec } from "./store.js";
import { lastMoment, recordOf } from "./stored.js";

/** Longest a Node timer waits (ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long past a delivery's reply timeout its result may take to be recorded, as another master announces it. */
const TAKING_SLACK_MS = 2_000;

/**
 * What a job needs of the master it runs on, and nothing else: resolving a
 * selector in reach (the fleet, or every master of a cluster), one request
 * to one slave wherever it is held, and word of slaves connecting. The
 * composition root builds it over the master's scope.
 */
export interface JobHost {
  readonly masterId: string;
  /** The ids of every slave in reach the selector matches, and the masters that did not answer. */
  resolve(selector: Selector): Promise<{ ids: string[]; unanswered: string[] }>;
  /**
   * Writes the command (with its command_id) to the slave wherever it is
   * held and waits `timeout` ms for its Reply. Rejects with a NetSyncError:
   * NOT_FOUND (no master holds it), RESOURCE_EXHAUSTED (not written),
   * UNAVAILABLE (its stream ended before the Reply, or the cluster is
   * unreachable, or became so before the holder answered),
   * DEADLINE_EXCEEDED (written, no Reply in time). With `job`, the master
   * holding the slave may record the reply as the job's result (the answer
   * says `recorded`).
   */
  request(slaveId: string, custom: { data: string; commandId: string }, timeout: number, job?: JobDelivery): Promise<RoutedReplyResult>;
  /**
   * A job's first fan-out: one encoding and request_id for every target held
   * here, no promise or timer per target, and in a cluster one message per
   * holding master and turn for the others; each outcome (the same as
   * request()'s) to `handlers`, once. With `job`, holders elsewhere may
   * record replies (the handler's `via` says so).
   */
  requestMany(custom: { data: string; commandId: string }, timeout: number, handlers: BatchHandlers, job?: JobDelivery): CommandBatch;
  /** Whether a master in reach is known to hold the slave now; from memory, maybe stale. */
  reachable(slaveId: string): boolean;
  /** The slaves this master holds now (a shared store's kept commands are delivered by the slave's holder). */
  heldIds(): string[];
  /** Calls `listener` with the id of each slave that connects anywhere in reach; returns the function that stops it. */
  watchConnects(listener: (slaveId: string) => void): () => void;
}

export interface JobsConfig {
  /** Default per-slave reply timeout (ms). */
  timeout: number;
  /** Longest deliverWithin accepted (ms): the slaves' command logs must remember ids at least this long. */
  maxDeliverWithin: number;
  pending: { perSlave: number; total: number };
  cache: { entries: number; maxAgeMs: number; results?: number };
  /** How often slaves with pending commands that a master is known to hold are tried again (ms): connect events may be missed. */
  retryInterval: number;
  log: Logger;
}

/** A job this master started, while it runs. */
interface Running {
  job: Job;
  /** Where it is recorded and its commands are kept: fixed at its start. */
  store: JobStore;
  /** Wall-clock ms past which nothing more is delivered (deliverWithin), if it keeps commands at all. */
  expiresAt: number | undefined;
  /** Its deliverWithin expiry and its guard. */
  timers: NodeJS.Timeout[];
  /** Writes per slave, for JobResult.deliveries. */
  deliveries: Map<string, number>;
  /** Commands kept for its targets, by slave, and when. */
  kept: Map<string, { command: KeptCommand; at: number }>;
  /** keep() calls not resolved yet. */
  keeping: number;
  /** Targets another master is delivering a kept command to, and until when (wall-clock ms). */
  taking: Map<string, number>;
  /** Stops following the results other masters record for it (a shared store, once something is kept). */
  unfollow?: () => void;
  /** Its first deliveries, as one batch (redeliveries of kept commands go one by one, through host.request()). */
  batch?: CommandBatch;
}

/** What a delivery needs of its job: the command, its reply timeout, when it started. */
type DeliverySpec = Pick<StoredSpec, "data" | "timeout" | "startedAt" | "deliverWithin">;

/**
 * Runs jobs: one command on a fixed set of slaves, each result kept. It
 * resolves the targets once at start, writes the command to each paced (no
 * turn of the event loop longer than ~10 ms, so heartbeats keep time during
 * a fan-out to the whole fleet), and turns what each request came to into a
 * result. With deliverWithin, a command that could not be delivered, or
 * whose stream broke before its Reply, is kept (bounded) and delivered again,
 * in order per slave, when the slave connects; the job's id is the command's
 * command_id on every delivery, so the slave runs it once.
 *
 * What is kept, and where, is its {@link JobStore}'s: this process's memory
 * (the asking master delivers kept commands when it hears the slave connect
 * anywhere in reach; a master that dies loses them and its jobs' results), or
 * a store every master of a cluster shares (`useStore`): then the master a
 * slave connects to delivers what is kept for it, whoever asked, and records
 * the result, so neither outlives the asking master's death.
 */
export class JobRunner {
  private readonly host: JobHost;
  private readonly config: JobsConfig;
  private readonly cache: JobCache;
  private readonly memory: MemoryJobStore;
  /** The cluster's shared store, once open: jobs started from then on are kept there. */
  private shared: JobStore | undefined;
  /** Set when the cluster asks for a shared store that is not open: run() refuses until it is. */
  private required: string | undefined;
  private readonly running = new Map<string, Running>();
  /** Kept commands this master is delivering now ("jobId\0slaveId"): a second trigger leaves them alone. */
  private readonly inFlight = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private unwatch: (() => void) | undefined;
  /**
   * Slaves heard connecting while a job kept in memory still waited for its
   * first delivery to them, and when. That delivery may fail NOT_FOUND after
   * the word came (a routed lookup in flight while the slave connected
   * elsewhere), and the command is kept only then: without this nothing
   * would try it again (the connect is past, and the retry tries only slaves
   * it knows a holder of). Forgotten once used, or after a retry interval.
   */
  private readonly connectedMeanwhile = new Map<string, number>();
  private unwake: (() => void) | undefined;
  private closed = false;

  constructor(host: JobHost, config: Partial<JobsConfig> & { log: Logger }) {
    this.host = host;
    this.config = { ...JOB_DEFAULTS, ...config };
    this.cache = new JobCache(this.config.cache);
    this.memory = new MemoryJobStore(this.config.pending);
  }

  /** The bounds a shared store should apply, and how long it keeps jobs: the same as this runner's. */
  get bounds(): Pick<JobsConfig, "pending" | "cache" | "maxDeliverWithin"> {
    const { pending, cache, maxDeliverWithin } = this.config;
    return { pending, cache, maxDeliverWithin };
  }

  /** Where new jobs are kept: "memory", or the shared store's kind. */
  get storeKind(): string {
    return (this.shared ?? this.memory).kind;
  }

  /**
   * Keeps every job started from now on in `store` (shared by every master of
   * a cluster). Jobs already running stay where they started.
   */
  useStore(store: JobStore): void {
    if (this.closed || this.shared) return;
    this.shared = store;
    this.required = undefined;
    if (!store.shared) return;
    // After (re)connecting, slaves held here may have commands kept while the store was away, or before it opened.
    this.unwake = store.onWake(() => void this.rescan(store));
    void this.rescan(store);
  }

  /** Refuses jobs (UNAVAILABLE, saying `why`) until useStore() or useMemory() is called: the cluster requires its shared store, or has not yet learned whether it has one. */
  requireStore(why: string): void {
    if (!this.shared) this.required = why;
  }

  /** Accepts jobs into this process's memory again (the cluster turned out to have no shared store). */
  useMemory(): void {
    if (!this.shared) this.required = undefined;
  }

  /** Commands kept (or being kept) for targets of the jobs this master runs, waiting for their slaves. */
  get pendingCount(): number {
    let count = 0;
    for (const run of this.running.values()) {
      count += run.keeping;
      for (const slaveId of run.kept.keys()) if (run.job.waitsFor(slaveId)) count++;
    }
    return count;
  }

  /** A job this master started (running, or finished within the cache's bounds). */
  get(jobId: string): Job | undefined {
    return this.cache.get(jobId);
  }

  /** Recent jobs this master started, newest first. */
  list(limit = 100): Job[] {
    return this.cache.list(limit);
  }

  /**
   * A recent job by id, whichever master started it: this master's from
   * memory, another's from the shared store (with a "did not return" result
   * for each target that has none past the job's last moment). Rejects with
   * UNAVAILABLE when the store cannot be read.
   */
  async read(jobId: string): Promise<JobRecord | undefined> {
    const local = this.cache.get(jobId);
    if (local) return local.record();
    if (!this.shared) return undefined;
    const stored = await this.shared.read(jobId).catch((err: unknown) => {
      throw NetSyncError.from(err, Code.UNAVAILABLE);
    });
    return stored && recordOf(stored);
  }

  /** Recent jobs of every master sharing the store (this one's alone without), newest first, without their results. */
  async readList(limit = 100): Promise<JobRecord[]> {
    const records = new Map<string, JobRecord>();
    for (const job of this.cache.list(limit)) records.set(job.id, job.record(false));
    if (this.shared) {
      const stored = await this.shared.list(limit).catch((err: unknown) => {
        throw NetSyncError.from(err, Code.UNAVAILABLE);
      });
      for (const entry of stored) {
        if (records.has(entry.spec.id)) continue;
        if (entry.summary) {
          records.set(entry.spec.id, { ...recordOf(entry, Date.now(), false), summary: entry.summary });
          continue;
        }
        // A job whose asking master did not see it end (still running, or it died) has no final counts: count its results.
        const full = await this.shared.read(entry.spec.id).catch(() => undefined);
        records.set(entry.spec.id, recordOf(full ?? entry, Date.now(), false));
      }
    }
    return [...records.values()].sort(newestFirst).slice(0, limit);
  }

  /**
   * Starts a job and returns it as soon as its targets are fixed (and, with a
   * shared store, it is recorded); the command is being written meanwhile.
   * Rejects with INVALID_ARGUMENT for a bad option, id or selector,
   * FAILED_PRECONDITION once closed, UNAVAILABLE when the job cannot be
   * recorded.
   */
  async run(custom: CustomInput, options: RunOptions = {}): Promise<Job> {
    if (this.closed) throw new NetSyncError("master is closed", Code.FAILED_PRECONDITION);
    if (this.required !== undefined) throw new NetSyncError(`jobs are not accepted yet: ${this.required}`, Code.UNAVAILABLE);
    const data = typeof custom === "string" ? custom : (custom.data ?? "");
    const timeout = checkDuration("timeout", options.timeout ?? this.config.timeout, MAX_TIMER_MS);
    const deliverWithin =
      options.deliverWithin === undefined || options.deliverWithin === 0
        ? undefined
        : checkDuration("deliverWithin", options.deliverWithin, this.config.maxDeliverWithin);
    let targets: string[];
    let unanswered: string[] = [];
    let selectorText = "";
    if (options.ids !== undefined) {
      for (const id of options.ids) {
        const problem = validateSlaveId(id);
        if (problem) throw new NetSyncError(`bad target "${id}": ${problem}`, Code.INVALID_ARGUMENT);
      }
      targets = sortedUnique(options.ids);
    } else {
      const selector = Selector.from(options.selector);
      selectorText = selector.toString();
      const resolved = await this.host.resolve(selector);
      // A turn of its own for resolving: the Set, the sort and the job come in the next one, the writes after.
      await yieldTurn();
      targets = sortedUnique(resolved.ids);
      unanswered = resolved.unanswered;
    }
    const store = this.shared ?? this.memory;
    const spec: JobSpec = {
      id: newJobId(),
      masterId: this.host.masterId,
      data,
      selector: selectorText,
      timeout,
      ...(deliverWithin !== undefined ? { deliverWithin } : {}),
      targets,
      unansweredMasters: unanswered,
      startedAt: new Date(),
    };
    try {
      await store.record(spec);
    } catch (err) {
      const error = NetSyncError.from(err, Code.UNAVAILABLE);
      throw new NetSyncError(`cannot record the job in the ${store.kind} job store: ${error.message}`, error.code, { cause: err });
    }
    if (this.closed) throw new NetSyncError("master is closed", Code.FAILED_PRECONDITION);
    const job = new Job(spec);
    this.cache.add(job);
    if (job.finished) {
      store.finish(job.id, job.summary());
      return job;
    }
    const run: Running = {
      job,
      store,
      expiresAt: deliverWithin === undefined ? undefined : spec.startedAt.getTime() + deliverWithin,
      timers: [],
      deliveries: new Map(),
      kept: new Map(),
      keeping: 0,
      taking: new Map(),
    };
    run.batch = this.host.requestMany(
      { data, commandId: job.id },
      timeout,
      {
        reply: (slaveId, reply, via) => this.replied(run, slaveId, reply, via?.masterId ?? this.host.masterId, via?.recorded === true),
        fail: (slaveId, error) => this.failed(run, slaveId, error),
      },
      store.shared ? { startedAt: spec.startedAt.getTime(), deliveries: 1 } : undefined,
    );
    this.running.set(job.id, run);
    this.own(run);
    void job.done.then(() => this.release(run));
    // Kept in memory, a command waits for word that its slave connected somewhere: listen before the first delivery,
    // not once a target is found absent, or a slave connecting elsewhere in between is never heard of (in a cluster
    // the other masters' events reach this one only while it listens, and the listening goes out ahead of the calls).
    if (run.expiresAt !== undefined && !store.shared) this.followConnects(store);
    // Paced: a job to the whole fleet writes to each stream in turns that leave the heartbeat room.
    // The first chunk in a turn after the one that created the job (closed meanwhile: pace() writes nothing); run()
    // resolves once it is written, as before.
    await yieldTurn();
    void pace(targets, (slaveId) => this.deliver(run, slaveId), { stopped: () => this.closed });
    return job;
  }

  /**
   * A slave's stream was accepted here. With a shared store this master now
   * delivers whatever is kept for it, whichever master's job it is.
   */
  connectedHere(slaveId: string): void {
    const store = this.shared;
    if (this.closed || !store?.shared) return;
    store.kept(slaveId).then(
      (commands) => this.deliverKept(store, commands),
      (err: unknown) => this.config.log.debug(`cannot read what is kept for slave ${slaveId}: ${NetSyncError.from(err).message}`),
    );
  }

  /**
   * Ends every running job here. In memory their outstanding targets get
   * "expired" (with deliverWithin) or "not-connected", saying the master shut
   * down, since nothing kept survives it. A job in a shared store goes on
   * without this master (its kept commands are delivered by the slaves'
   * holders, their results recorded): its Job object here ends the same way,
   * but nothing of that is recorded. Stops every timer.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopFollowing();
    this.unwake?.();
    this.unwake = undefined;
    for (const run of [...this.running.values()]) {
      const { job } = run;
      const status = job.deliverWithin !== undefined ? "expired" : "not-connected";
      const error = run.store.shared
        ? `master ${this.host.masterId} shut down before a result came; the job goes on in the cluster's job store (read it on another master)`
        : `master ${this.host.masterId} shut down before a result came`;
      for (const slaveId of job.targets) {
        if (job.waitsFor(slaveId)) job.settle(this.resultOf(job.startedAt, slaveId, { status, error }, "", run.deliveries.get(slaveId)));
      }
      for (const timer of run.timers) clearTimeout(timer);
      run.unfollow?.();
      run.batch?.close();
    }
    void this.memory.close();
  }

  // --- the first delivery -------------------------------------------------------

  private deliver(run: Running, slaveId: string): void {
    if (this.closed || !run.job.waitsFor(slaveId)) return;
    run.batch?.send(slaveId);
  }

  /** A first delivery's Reply. */
  private replied(run: Running, slaveId: string, reply: Reply, masterId: string, recorded: boolean): void {
    const { job } = run;
    // Counted, not stored: a reply settles the target, and nothing reads its count again.
    const deliveries = (run.deliveries.get(slaveId) ?? 0) + 1;
    const result = this.resultOf(job.startedAt, slaveId, outcomeOf(reply), masterId, deliveries);
    // Recorded by the master holding the slave (it outlives this one), or kept in this process's memory (whose
    // settle always wins): only the Job here needs it.
    if (recorded || run.store === this.memory) job.settle(result);
    else void this.record(run.store, job.id, result, job);
  }

  /** A first delivery that came to no Reply. */
  private failed(run: Running, slaveId: string, err: unknown): void {
    const { job } = run;
    const error = NetSyncError.from(err, Code.UNAVAILABLE);
    const written = error.code !== Code.NOT_FOUND && error.code !== Code.RESOURCE_EXHAUSTED;
    const delivered = written ? bump(run, slaveId) : (run.deliveries.get(slaveId) ?? 0);
    if (error.code === Code.DEADLINE_EXCEEDED || !isUndelivered(error.code)) {
      const outcome = { status: error.code === Code.DEADLINE_EXCEEDED ? "timeout" : "error", error: error.message } as const;
      void this.record(run.store, job.id, this.resultOf(job.startedAt, slaveId, outcome, "", delivered), job);
      return;
    }
    void this.undelivered(run, slaveId, error.message, delivered);
  }

  /** The command did not reach the slave, or its Reply was lost with the stream: keep it for later, or say so now. */
  private async undelivered(run: Running, slaveId: string, why: string, delivered: number): Promise<void> {
    const { job, store } = run;
    if (this.closed || !job.waitsFor(slaveId)) return;
    const settle = (status: JobResultStatus, error: string) =>
      this.record(store, job.id, this.resultOf(job.startedAt, slaveId, { status, error }, "", delivered), job);
    if (run.expiresAt === undefined) return void (await settle("not-connected", why));
    if (Date.now() >= run.expiresAt) return void (await settle("expired", `not delivered within ${job.deliverWithin} ms (${why})`));
    const command: KeptCommand = {
      jobId: job.id,
      slaveId,
      expiresAt: run.expiresAt,
      deliveries: delivered,
      startedAt: job.startedAt.getTime(),
    };
    run.keeping++;
    let refused: string | undefined;
    try {
      refused = await store.keep(command);
    } catch (err) {
      refused = `the ${store.kind} job store could not keep it: ${NetSyncError.from(err).message}`;
    } finally {
      run.keeping--;
    }
    if (refused !== undefined) return void (await settle("expired", `not kept for later delivery: ${refused}`));
    if (!job.waitsFor(slaveId)) {
      // Settled while it was being kept (closed, or its guard): nothing will deliver it for this job.
      if (!this.closed || !store.shared) void store.remove(command).catch(() => undefined);
      return;
    }
    if (this.closed) return;
    run.kept.set(slaveId, { command, at: Date.now() });
    if (Date.now() >= run.expiresAt) {
      // deliverWithin ran out while it was being kept.
      void this.expireKept(store, command, run);
      return;
    }
    if (store.shared) run.unfollow ??= store.follow(job.id, this.followerOf(run));
    this.followConnects(store);
    // It connected while this delivery was out: that word will not come again.
    if (!store.shared && this.connectedMeanwhile.delete(slaveId)) this.drainMemory(slaveId);
  }

  // --- kept commands ----------------------------------------------------------------

  /**
   * Delivers kept commands to their slave (local, or routed to its holder),
   * written in the order they were kept. A command already being delivered
   * here is left alone; one of a job already settled for that slave is
   * forgotten; one past its deliverWithin expires. The result is recorded
   * before the command is forgotten, so a master that dies in between leaves
   * it for the slave's next holder, and the slave, which remembers the
   * command_id, answers that one without running it again.
   */
  private async deliverKept(store: JobStore, commands: KeptCommand[]): Promise<void> {
    const claimed: { command: KeptCommand; run: Running | undefined }[] = [];
    for (const command of commands) {
      const key = keyOf(command);
      if (this.closed || this.inFlight.has(key)) continue;
      const run = this.running.get(command.jobId);
      if (run && run.store !== store) continue;
      if (run && !run.job.waitsFor(command.slaveId)) {
        void store.remove(command).catch(() => undefined);
        continue;
      }
      this.inFlight.add(key);
      claimed.push({ command, run });
    }
    const ready: { command: KeptCommand; run: Running | undefined; spec: DeliverySpec }[] = [];
    for (const { command, run } of claimed) {
      if (Date.now() >= command.expiresAt) {
        this.inFlight.delete(keyOf(command));
        void this.expireKept(store, command, run);
        continue;
      }
      const spec = run ? deliverySpecOf(run.job) : await this.specOf(store, command);
      if (!spec) {
        this.inFlight.delete(keyOf(command));
        continue;
      }
      ready.push({ command, run, spec });
    }
    // Written in one turn, in the order kept: the slave gets them in that order.
    for (const { command, run, spec } of ready) this.deliverOne(store, command, spec, run);
  }

  /** The spec of another master's job, for one of its kept commands; a command of a job nobody knows any more is dropped. */
  private async specOf(store: JobStore, command: KeptCommand): Promise<StoredSpec | undefined> {
    try {
      const spec = await store.spec(command.jobId);
      if (!spec) {
        this.config.log.warn(`dropping a command kept for slave ${command.slaveId}: job ${command.jobId} is not in the job store`);
        void store.remove(command).catch(() => undefined);
      }
      return spec;
    } catch (err) {
      this.config.log.debug(`cannot read job ${command.jobId}: ${NetSyncError.from(err).message}; its command waits`);
      return undefined;
    }
  }

  private deliverOne(store: JobStore, command: KeptCommand, spec: DeliverySpec, run: Running | undefined): void {
    const { slaveId, jobId } = command;
    const key = keyOf(command);
    if (this.closed) {
      this.inFlight.delete(key);
      return;
    }
    if (store.shared) store.taking(command, Date.now() + spec.timeout + TAKING_SLACK_MS);
    const delivered = () => (run ? bump(run, slaveId) : command.deliveries + 1);
    const done = async (outcome: Outcome, masterId: string, deliveries: number, recorded = false) => {
      try {
        const result = this.resultOf(spec.startedAt, slaveId, outcome, masterId, deliveries);
        if (recorded) run?.job.settle(result);
        else await this.record(store, jobId, result, run?.job);
        await store.remove(command).catch(() => undefined);
      } finally {
        this.inFlight.delete(key);
        run?.kept.delete(slaveId);
      }
    };
    const next = run ? (run.deliveries.get(slaveId) ?? 0) + 1 : command.deliveries + 1;
    const delivery = store.shared ? { startedAt: spec.startedAt.getTime(), deliveries: next } : undefined;
    this.host.request(slaveId, { data: spec.data, commandId: jobId }, spec.timeout, delivery).then(
      ({ reply, masterId, recorded }) => done(outcomeOf(reply), masterId, delivered(), recorded === true),
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.UNAVAILABLE);
        const written = error.code !== Code.NOT_FOUND && error.code !== Code.RESOURCE_EXHAUSTED;
        const deliveries = written ? delivered() : run ? (run.deliveries.get(slaveId) ?? 0) : command.deliveries;
        if (error.code === Code.DEADLINE_EXCEEDED || !isUndelivered(error.code)) {
          return done({ status: error.code === Code.DEADLINE_EXCEEDED ? "timeout" : "error", error: error.message }, "", deliveries);
        }
        // Not delivered (the slave left again, or is elsewhere): it stays kept for its next connect.
        this.inFlight.delete(key);
        command.deliveries = deliveries;
        if (Date.now() >= command.expiresAt) void this.expireKept(store, command, run);
      },
    );
  }

  /** A kept command past its deliverWithin: "expired", unless another master delivered it first (it is gone then). */
  private async expireKept(store: JobStore, command: KeptCommand, run: Running | undefined): Promise<void> {
    const removed = await store.remove(command).catch(() => false);
    run?.kept.delete(command.slaveId);
    if (!removed) return;
    const deliverWithin = command.expiresAt - command.startedAt;
    const error = `not delivered within ${deliverWithin} ms`;
    const result = this.resultOf(new Date(command.startedAt), command.slaveId, { status: "expired", error }, "", command.deliveries);
    await this.record(store, command.jobId, result, run?.job);
  }

  /** A slave connected somewhere in reach: deliver what memory keeps for it, and remember it if a first delivery is still out. */
  private heardConnect(slaveId: string): void {
    for (const run of this.running.values()) {
      if (!run.store.shared && !run.kept.has(slaveId) && run.job.waitsFor(slaveId)) {
        this.connectedMeanwhile.set(slaveId, Date.now());
        break;
      }
    }
    this.drainMemory(slaveId);
  }

  /** Delivers again what this master kept for a slave that connected somewhere (a memory store: nobody else can). */
  private drainMemory(slaveId: string): void {
    if (this.closed) return;
    void this.memory.kept(slaveId).then((commands) => this.deliverKept(this.memory, commands));
  }

  /** The shared store (re)connected: deliver what is kept for the slaves held here. */
  private async rescan(store: JobStore): Promise<void> {
    if (this.closed) return;
    let slaves: string[];
    try {
      slaves = await store.keptAmong(this.host.heldIds());
    } catch (err) {
      this.config.log.debug(`cannot list the slaves with kept commands: ${NetSyncError.from(err).message}`);
      return;
    }
    for (const slaveId of slaves) {
      if (this.closed) return;
      try {
        await this.deliverKept(store, await store.kept(slaveId));
      } catch (err) {
        this.config.log.debug(`cannot read what is kept for slave ${slaveId}: ${NetSyncError.from(err).message}`);
      }
    }
  }

  /**
   * While something is kept: a memory store listens for connects anywhere
   * (only this master can deliver it), and, for either store, kept commands
   * of slaves a master is known to hold are tried again now and then (a
   * connect event may have been missed, or a slave may have connected to its
   * holder just before the command was kept there).
   */
  private followConnects(store: JobStore): void {
    if (!store.shared) this.unwatch ??= this.host.watchConnects((slaveId) => this.heardConnect(slaveId));
    this.retryTimer ??= setInterval(() => this.retry(), this.config.retryInterval);
  }

  private retry(): void {
    const now = Date.now();
    for (const [slaveId, at] of this.connectedMeanwhile) if (now - at > this.config.retryInterval) this.connectedMeanwhile.delete(slaveId);
    const shared = new Map<string, KeptCommand[]>();
    let any = false;
    for (const run of this.running.values()) {
      // A job that may still keep commands in memory goes on listening until it ends (see run()).
      if (run.expiresAt !== undefined && !run.store.shared && !run.job.finished) any = true;
      for (const [slaveId, { command, at }] of run.kept) {
        if (!run.job.waitsFor(slaveId)) continue;
        any = true;
        if (this.inFlight.has(keyOf(command)) || (run.taking.get(slaveId) ?? 0) > now || !this.host.reachable(slaveId)) continue;
        if (!run.store.shared) {
          this.drainMemory(slaveId);
          continue;
        }
        // Its holder delivers it when the slave connects there: ask it ourselves only if that has not happened a while later.
        if (now - at < this.config.retryInterval) continue;
        const list = shared.get(slaveId) ?? [];
        list.push(command);
        shared.set(slaveId, list);
      }
    }
    for (const commands of shared.values()) {
      commands.sort((a, b) => (a.ref ?? 0) - (b.ref ?? 0));
      const store = this.running.get(commands[0]?.jobId ?? "")?.store;
      if (store) void this.deliverKept(store, commands);
    }
    if (!any) this.stopFollowing();
  }

  private stopFollowing(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
    this.connectedMeanwhile.clear();
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /** How a running job hears of what other masters record for it (a shared store). */
  private followerOf(run: Running): JobFollower {
    return {
      result: (result) => {
        // Recorded elsewhere: a command still kept for that target is moot (its holder may not have removed it yet,
        // or it was kept here after the reply had reached another master), and is removed.
        const kept = run.kept.get(result.slaveId);
        run.kept.delete(result.slaveId);
        if (kept && !this.inFlight.has(keyOf(kept.command))) void run.store.remove(kept.command).catch(() => undefined);
        run.job.settle(result);
      },
      taking: (slaveId, until) => {
        if (run.job.waitsFor(slaveId)) run.taking.set(slaveId, until);
      },
    };
  }

  // --- a job's own timers and end ----------------------------------------------

  private own(run: Running): void {
    const { job } = run;
    const deliverWithin = job.deliverWithin;
    if (deliverWithin !== undefined) {
      // What is still kept when deliverWithin runs out expires; deliveries under way keep their reply timeout.
      run.timers.push(
        setTimeout(() => {
          const now = Date.now();
          for (const [slaveId, { command }] of run.kept) {
            if (!job.waitsFor(slaveId) || this.inFlight.has(keyOf(command)) || (run.taking.get(slaveId) ?? 0) > now) continue;
            void this.expireKept(run.store, command, run);
          }
        }, deliverWithin),
      );
    }
    // Every request settles by its timeout; this names any target that still has no result (its holder died, or a
    // result was lost on the way). Only here: a reader of a shared store says the same of a target with no result.
    const last = Math.min(MAX_TIMER_MS, lastMoment(job) - job.startedAt.getTime());
    run.timers.push(
      setTimeout(() => {
        for (const slaveId of job.targets) {
          if (!job.waitsFor(slaveId)) continue;
          this.config.log.warn(`job ${job.id}: no result for slave ${slaveId} by its last moment; reporting it as timed out`);
          job.settle(
            this.resultOf(job.startedAt, slaveId, { status: "timeout", error: "no result came in time" }, "", run.deliveries.get(slaveId)),
          );
        }
      }, last),
    );
  }

  private release(run: Running): void {
    const { job } = run;
    for (const timer of run.timers) clearTimeout(timer);
    run.unfollow?.();
    run.batch?.close();
    this.running.delete(job.id);
    // In memory, a kept command whose target was settled otherwise (its guard) would never be removed; a shared
    // store's may still be delivered late by the slave's holder, whose result then shows on a read of the job.
    if (!run.store.shared) for (const { command } of run.kept.values()) void run.store.remove(command);
    const summary = job.summary();
    if (!this.closed) run.store.finish(job.id, summary);
    const others = summary.targets - summary.ok;
    this.config.log.info(
      `job ${job.id} done: ${summary.ok} ok` +
        (others > 0 ? ` of ${summary.targets} (${describeMissing(summary)})` : ` of ${summary.targets}`),
    );
  }

  /**
   * Records a result in the job's store and, if it was the first recorded
   * for its slave (or waits for the store to come back), in the Job here. A
   * result that lost was preceded by another master's, which reaches the Job
   * through the store. A store that refuses for good is logged; the Job
   * still gets the result.
   */
  private async record(store: JobStore, jobId: string, result: JobResult, job: Job | undefined): Promise<void> {
    let outcome: SettleOutcome;
    try {
      outcome = await store.settle(jobId, result);
    } catch (err) {
      this.config.log.error(`job ${jobId}: cannot record the result of slave ${result.slaveId}: ${NetSyncError.from(err).message}`);
      outcome = "queued";
    }
    if (outcome !== "lost") job?.settle(result);
    else if (!job)
      this.config.log.debug(`job ${jobId}: slave ${result.slaveId} already had a result; this one (${result.status}) was not kept`);
  }

  private resultOf(startedAt: Date, slaveId: string, outcome: Outcome, masterId: string, deliveries = 0): JobResult {
    const { status, data, error } = outcome;
    const latencyMs = Date.now() - startedAt.getTime();
    // One literal per shape (a reply's data, or an error), not spreads: one result per target of every job is made here.
    if (data !== undefined) return { slaveId, masterId, status, data, latencyMs, deliveries };
    if (error !== undefined) return { slaveId, masterId, status, error, latencyMs, deliveries };
    return { slaveId, masterId, status, latencyMs, deliveries };
  }
}

type Outcome = { status: JobResultStatus; data?: string; error?: string };

/** A Reply as a result: the handler's data, or its error. */
function outcomeOf(reply: Reply): Outcome {
  if (reply.result.case === "error") return { status: "error", error: reply.result.value };
  return { status: "ok", data: reply.result.case === "data" ? reply.result.value : "" };
}

/** Codes that mean the command may not have run (not written, or its stream ended before the Reply): worth delivering again. */
function isUndelivered(code: Code): boolean {
  return code === Code.NOT_FOUND || code === Code.UNAVAILABLE || code === Code.RESOURCE_EXHAUSTED;
}

/** The ids sorted, each once; as given when they already are (a lone master's fleet lists its ids sorted). */
function sortedUnique(ids: readonly string[]): string[] {
  let sorted = true;
  for (let i = 1; i < ids.length && sorted; i++) sorted = (ids[i - 1] as string) < (ids[i] as string);
  return sorted ? [...ids] : [...new Set(ids)].sort();
}

function bump(run: Running, slaveId: string): number {
  const next = (run.deliveries.get(slaveId) ?? 0) + 1;
  run.deliveries.set(slaveId, next);
  return next;
}

function deliverySpecOf(job: Job): DeliverySpec {
  return {
    data: job.data,
    timeout: job.timeout,
    startedAt: job.startedAt,
    ...(job.deliverWithin !== undefined ? { deliverWithin: job.deliverWithin } : {}),
  };
}

function keyOf(command: KeptCommand): string {
  return `${command.jobId}\0${command.slaveId}`;
}

function newestFirst(a: JobRecord, b: JobRecord): number {
  return b.startedAt.getTime() - a.startedAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function checkDuration(name: string, value: number, max: number): number {
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new NetSyncError(`${name} must be a positive number of ms, at most ${max} (got ${value})`, Code.INVALID_ARGUMENT);
  }
  return value;
}

/** "1 error, 2 not connected", the parts of a summary that are not ok. */
export function describeMissing(summary: {
  error: number;
  timeout: number;
  notConnected: number;
  expired: number;
  pending: number;
}): string {
  const parts: string[] = [];
  if (summary.error) parts.push(`${summary.error} error`);
  if (summary.timeout) parts.push(`${summary.timeout} timeout`);
  if (summary.notConnected) parts.push(`${summary.notConnected} not connected`);
  if (summary.expired) parts.push(`${summary.expired} expired`);
  if (summary.pending) parts.push(`${summary.pending} pending`);
  return parts.join(", ");
}

/** The last millisecond a job id of this process was stamped with. */
let lastIdMs = 0;

/**
 * A job id that sorts by start time, like Salt's jids: UTC yyyymmddhhmmssSSS,
 * then 6 random hex digits so two masters starting a job in the same ms differ.
 * Within one process the stamp only grows (as Salt's gen_jid bumps a jid equal
 * to the last): two jobs started in the same ms would otherwise be ordered by
 * their random digits, and ListJobs could show the later one as older.
 */
function newJobId(): string {
  lastIdMs = Math.max(Date.now(), lastIdMs + 1);
  const stamp = new Date(lastIdMs).toISOString().replace(/[-:TZ.]/g, "");
  return `${stamp}-${randomBytes(3).toString("hex")}`;
}
