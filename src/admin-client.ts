import { create, type DescMessage, type DescMethod, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  AdminService,
  BroadcastRequestSchema,
  type BroadcastResponse,
  GetJobRequestSchema,
  type GetJobResponse,
  ListJobsRequestSchema,
  ListMastersRequestSchema,
  type ListMastersResponse,
  ListSlavesRequestSchema,
  type ListSlavesResponse,
  RunRequestSchema,
  RunResponseSchema,
  SendRequestSchema,
  type SendResponse,
  type WatchEventKind,
  WatchRequestSchema,
  type WatchResponse,
  WatchResponseSchema,
} from "../gen/netsync/v1/admin_pb.js";
import { Code, codeName, isCode } from "./code.js";
import { NetSyncError } from "./errors.js";
import { callUnary, methodPath } from "./grpc-adapter.js";
import type { JobRecord, JobResult, JobSummary } from "./model.js";
import { type ClientTlsOptions, clientCredentials, tokenMetadata } from "./server/auth.js";
import { type JobStartedInfo, jobRecordOf, jobResultOf, jobStartedOf, jobSummaryOf } from "./server/job-message.js";

/** Targets (with their results) per GetJob page: well within the default 1 MiB message with replies of a few dozen bytes. */
const GET_JOB_PAGE = 2_000;

/** How long an admin call may take before it fails with DEADLINE_EXCEEDED, beyond any reply wait. */
const CALL_DEADLINE_MS = 5_000;

/** Options of {@link AdminClient.listSlaves}. */
export interface ListSlavesOptions {
  /** Also return the recently closed slaves (on the first page). Default false. */
  includeClosed?: boolean;
  /** Only slaves whose labels match (e.g. "region=eu,role!=db"). Default every slave. */
  selector?: string;
  /** Most slaves per page; default the master's choice (1,000, fewer near its message limit). */
  pageSize?: number;
  /** The nextPageToken of the previous page. */
  pageToken?: string;
}

/** Options of {@link AdminClient.watch}. */
export interface WatchOptions {
  /** Only events of slaves whose labels match; master events always pass. Default every slave. */
  selector?: string;
  /** Only these kinds (SYNCED is always sent). Default every kind. */
  kinds?: WatchEventKind[];
  /** Start with one SNAPSHOT event per connected slave, then SYNCED. Default false. */
  snapshot?: boolean;
  /** Ends the watch when aborted (the iteration then just ends). */
  signal?: AbortSignal;
}

/** Options of {@link AdminClient.run}: exactly one of `ids`, `selector` and `all` names the targets. */
export interface RunCallOptions {
  /** These slaves, connected or not. */
  ids?: readonly string[];
  /** The slaves whose labels match (fleet-wide in a cluster), fixed when the job starts. */
  selector?: string;
  /** Every slave (fleet-wide in a cluster). */
  all?: boolean;
  /** How long each slave has to reply once the command is written to it, in ms. Default 10 s. */
  timeout?: number;
  /** Keep the command for a target that is not connected and deliver it when it connects, for at most this long (ms). Default none. */
  deliverWithin?: number;
  /** Stops following the job when aborted (the iteration then just ends); the job runs on. */
  signal?: AbortSignal;
}

/** What AdminClient.run() yields: the job's targets first, then one result per target, then the counts. */
export type RunEvent =
  | ({ type: "started" } & JobStartedInfo)
  | { type: "result"; result: JobResult }
  | { type: "summary"; summary: JobSummary };

/** Options of {@link AdminClient}. */
export interface AdminClientOptions {
  /** Connect with TLS (and a client certificate for mTLS). Default plaintext. */
  tls?: ClientTlsOptions;
  /** Bearer token sent as `authorization`. Default none. */
  token?: string;
}

/** A typed client of a master's AdminService, for the CLI and for scripts. */
export class AdminClient {
  private readonly client: grpc.Client;
  private readonly metadata: grpc.Metadata;

  constructor(master: string, options: AdminClientOptions = {}) {
    this.client = new grpc.Client(master, clientCredentials(options.tls));
    this.metadata = tokenMetadata(options.token);
  }

  /**
   * One page of the connected slaves (those a selector matches), in id order,
   * with the recently closed ones on the first page if asked; pass the
   * response's nextPageToken as pageToken for the next page.
   */
  listSlaves(options: ListSlavesOptions = {}): Promise<ListSlavesResponse> {
    const request = create(ListSlavesRequestSchema, {
      includeClosed: options.includeClosed ?? false,
      selector: options.selector ?? "",
      pageSize: options.pageSize ?? 0,
      pageToken: options.pageToken ?? "",
    });
    return this.call(() => callUnary(this.client, AdminService.method.listSlaves, request, this.deadline(), this.metadata));
  }

  /** Every page of listSlaves() in one response: all slaves, and every master any page named as unanswered. */
  async listAllSlaves(options: Omit<ListSlavesOptions, "pageToken"> = {}): Promise<ListSlavesResponse> {
    const first = await this.listSlaves(options);
    const unanswered = new Set(first.unansweredMasters);
    for (let token = first.nextPageToken; token !== ""; ) {
      const next = await this.listSlaves({ ...options, pageToken: token });
      first.slaves.push(...next.slaves);
      for (const id of next.unansweredMasters) unanswered.add(id);
      token = next.nextPageToken;
    }
    first.unansweredMasters = [...unanswered];
    first.nextPageToken = "";
    return first;
  }

  /** Writes a Custom to every slave, or to those a selector matches; resolves with how many it reached. */
  async broadcast(data: string, options: { selector?: string } = {}): Promise<number> {
    return (await this.broadcastDetails(data, options)).written;
  }

  /** Like broadcast(), with the whole response: the count on each master and, in a cluster, the masters that did not answer. */
  broadcastDetails(data: string, options: { selector?: string } = {}): Promise<BroadcastResponse> {
    const request = create(BroadcastRequestSchema, { custom: { data }, selector: options.selector ?? "" });
    return this.call(() => callUnary(this.client, AdminService.method.broadcast, request, this.deadline(), this.metadata));
  }

  /** The masters of the answering master's cluster. */
  listMasters(): Promise<ListMastersResponse> {
    const request = create(ListMastersRequestSchema, {});
    return this.call(() => callUnary(this.client, AdminService.method.listMasters, request, this.deadline(), this.metadata));
  }

  send(slaveId: string, data: string, wait?: { timeout: number }): Promise<SendResponse> {
    const request = create(SendRequestSchema, {
      slaveId,
      custom: { data },
      waitReply: wait !== undefined,
      timeout: wait ? durationFromMs(wait.timeout) : undefined,
    });
    return this.call(() => callUnary(this.client, AdminService.method.send, request, this.deadline(wait?.timeout ?? 0), this.metadata));
  }

  /**
   * AdminService.Watch: the fleet's events as they happen (fleet-wide in a
   * cluster), one WatchResponse each, starting with SYNCED (after the
   * snapshot, if asked for). Runs until the loop stops iterating, `signal`
   * aborts, or the master ends it: then it throws a NetSyncError with the
   * status (RESOURCE_EXHAUSTED for a watcher that read too slowly,
   * UNAVAILABLE when the master shuts down).
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<WatchResponse, void, undefined> {
    const request = create(WatchRequestSchema, {
      selector: options.selector ?? "",
      kinds: options.kinds ?? [],
      snapshot: options.snapshot ?? false,
    });
    yield* this.serverStream(AdminService.method.watch, WatchRequestSchema, WatchResponseSchema, request, options.signal);
  }

  /**
   * AdminService.Run: runs a command as a job on the targets (exactly one of
   * `ids`, `selector`, `all`) and yields what became of it: `started` (the
   * job's id and targets, fixed), then one `result` per target as it
   * arrives, then `summary`, then the iteration ends. Breaking out of the
   * loop or aborting `signal` stops following; the job runs on (getJob()
   * shows it). Throws a NetSyncError with the status for a refused request
   * (INVALID_ARGUMENT names what is wrong) or a broken stream.
   */
  async *run(data: string, options: RunCallOptions = {}): AsyncGenerator<RunEvent, void, undefined> {
    const request = create(RunRequestSchema, {
      custom: { data },
      slaveIds: [...(options.ids ?? [])],
      selector: options.selector ?? "",
      all: options.all ?? false,
      timeout: options.timeout !== undefined ? durationFromMs(options.timeout) : undefined,
      deliverWithin: options.deliverWithin !== undefined ? durationFromMs(options.deliverWithin) : undefined,
    });
    // A job's targets past one message come in JobTargets after `started`: `started` is yielded once they are all in.
    let started: (JobStartedInfo & { count: number }) | undefined;
    for await (const message of this.serverStream(AdminService.method.run, RunRequestSchema, RunResponseSchema, request, options.signal)) {
      const event = message.event;
      if (event.case === "started") started = { ...jobStartedOf(event.value), count: event.value.targetCount };
      else if (event.case === "targets") started?.targets.push(...event.value.slaveIds);
      if (started && started.targets.length >= started.count) {
        const { count: _, ...info } = started;
        started = undefined;
        yield { type: "started", ...info };
      }
      if (event.case === "result") yield { type: "result", result: jobResultOf(event.value) };
      else if (event.case === "summary") yield { type: "summary", summary: jobSummaryOf(event.value) };
    }
  }

  /**
   * One server-streaming call (Watch, Run) as an async iterator: a cancelled
   * call, or one whose `signal` aborted, just ends it; any other failure is
   * thrown as a NetSyncError. Leaving the loop cancels the call.
   */
  private async *serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethod,
    input: I,
    output: O,
    request: MessageShape<I>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<MessageShape<O>, void, undefined> {
    const call = this.client.makeServerStreamRequest(
      methodPath(method),
      (value: MessageShape<I>) => Buffer.from(toBinary(input, value)),
      (bytes: Buffer) => fromBinary(output, bytes),
      request,
      this.metadata,
    );
    call.on("error", () => {}); // surfaced by the iterator below
    const abort = () => call.cancel();
    signal?.addEventListener("abort", abort);
    try {
      for await (const message of call as AsyncIterable<MessageShape<O>>) yield message;
    } catch (err) {
      if (signal?.aborted || (err as grpc.ServiceError).code === Code.CANCELLED) return;
      throw this.wrap(err);
    } finally {
      signal?.removeEventListener("abort", abort);
      call.cancel();
    }
  }

  /**
   * AdminService.GetJob: a recent job with its results so far, read in pages
   * of `pageSize` targets (a job to a whole fleet does not fit one
   * response); NOT_FOUND once it aged out of the master's job cache. Read
   * in pages, the results come in target order; from a master that answers
   * whole jobs only, in the order they came.
   */
  async getJob(jobId: string, pageSize = GET_JOB_PAGE): Promise<JobRecord> {
    let record: JobRecord | undefined;
    let pageToken = "";
    let size = pageSize;
    for (;;) {
      const request = create(GetJobRequestSchema, { jobId, pageSize: size, pageToken });
      let response: GetJobResponse;
      try {
        response = await this.call(() => callUnary(this.client, AdminService.method.getJob, request, this.deadline(), this.metadata));
      } catch (err) {
        // Large replies make a page of this many too big for one message: fewer per page.
        if (!(err instanceof NetSyncError) || err.code !== Code.RESOURCE_EXHAUSTED || size <= 1) throw err;
        size = Math.floor(size / 2);
        continue;
      }
      if (!response.job) throw new NetSyncError(`the master answered GetJob ${jobId} without a job`, Code.INTERNAL);
      const page = jobRecordOf(response.job);
      if (record) {
        record.targets.push(...page.targets);
        record.results.push(...page.results);
      } else record = page;
      pageToken = response.nextPageToken;
      if (pageToken === "") return record;
    }
  }

  /** AdminService.ListJobs: the master's recent jobs, newest first, without their results (`limit` default 100). */
  async listJobs(limit = 0): Promise<JobRecord[]> {
    const request = create(ListJobsRequestSchema, { limit });
    const response = await this.call(() => callUnary(this.client, AdminService.method.listJobs, request, this.deadline(), this.metadata));
    return response.jobs.map(jobRecordOf);
  }

  close(): void {
    this.client.close();
  }

  private deadline(extraMs = 0): grpc.CallOptions {
    return { deadline: Date.now() + CALL_DEADLINE_MS + extraMs };
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.wrap(err);
    }
  }

  private wrap(err: unknown): NetSyncError {
    const e = err as grpc.ServiceError;
    return new NetSyncError(`${codeName(e.code)}: ${e.details || e.message}`, isCode(e.code) ? e.code : Code.UNKNOWN, { cause: err });
  }
}
