import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import {
  type GetJobRequest,
  type GetJobResponseSchema,
  type Job as JobMessage,
  JobSchema,
  type ListJobsRequest,
  type ListJobsResponseSchema,
  type RunRequest,
  type RunResponse,
  RunResponseSchema,
} from "../../gen/netsync/v1/admin_pb.js";
import { Code } from "../code.js";
import { JOB_DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { DecodeFailure, rejectCall } from "../grpc-adapter.js";
import type { Job } from "../jobs/job.js";
import type { CustomInput, JobRecord, JobResult, JobSummary, RunOptions } from "../model.js";
import { jobMessage, jobResultMessage, jobStartedMessage, jobSummaryMessage, splitIds } from "./job-message.js";

/**
 * What AdminService's job calls need of a master: Master.run(), getJob() and
 * listJobs() (a cluster whose NATS has JetStream shares its jobs: any master
 * answers for any master's job).
 */
export interface JobPort {
  readonly maxMessageBytes: number;
  run(custom: CustomInput, options: RunOptions): Promise<Job>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  listJobs(limit?: number): Promise<JobRecord[]>;
}

type RunCall = grpc.ServerWritableStream<RunRequest | DecodeFailure, RunResponse>;

/** ListJobs' limit when the request leaves it 0. */
export const DEFAULT_LIST_JOBS = 100;

/**
 * Targets ListJobs lists of each job at most, fewer when they would not fit
 * one message (JobStarted.target_count says how many in all; GetJob pages
 * through them).
 */
export const LIST_JOBS_TARGETS = 1_000;

/** Room ListJobs leaves in a message for a job's fields besides its targets (its id, data, summary, unanswered masters). */
const JOB_FIELDS_BYTES = 1024;

/** A GetJob page token: where the next page starts among the job's targets (sorted). */
function jobPageToken(offset: number): string {
  return Buffer.from(`job-page:${offset}`).toString("base64url");
}

/** The offset a GetJob page token names; INVALID_ARGUMENT for anything that is not one of ours (or past the targets). */
function jobPageOffset(token: string, targets: number): number {
  if (token === "") return 0;
  const match = /^job-page:(\d{1,9})$/.exec(Buffer.from(token, "base64url").toString());
  const offset = match ? Number(match[1]) : Number.NaN;
  if (!(offset > 0 && offset < targets))
    throw new NetSyncError(`bad page_token "${token}": not one GetJob gave for this job`, Code.INVALID_ARGUMENT);
  return offset;
}

/** Room left in a message for what surrounds the jobs (framing, the response's own fields). */
const HEADROOM_BYTES = 4 * 1024;

/** Exactly one of slave_ids, selector and all, as Master.run() options; INVALID_ARGUMENT otherwise. */
export function runOptionsOf(request: RunRequest): RunOptions & { data: string } {
  const given = [
    request.slaveIds.length > 0 ? "slave_ids" : undefined,
    request.selector !== "" ? "selector" : undefined,
    request.all ? "all" : undefined,
  ].filter((name) => name !== undefined);
  if (given.length === 0) throw new NetSyncError("no target: give exactly one of slave_ids, selector or all", Code.INVALID_ARGUMENT);
  if (given.length > 1)
    throw new NetSyncError(`give exactly one of slave_ids, selector or all (got ${given.join(" and ")})`, Code.INVALID_ARGUMENT);
  if (!request.custom) throw new NetSyncError("custom is required", Code.INVALID_ARGUMENT);
  const timeout = request.timeout ? durationMs(request.timeout) : JOB_DEFAULTS.timeout;
  if (timeout <= 0) throw new NetSyncError("timeout must be more than zero (leave it unset for 10 s)", Code.INVALID_ARGUMENT);
  const deliverWithin = request.deliverWithin ? durationMs(request.deliverWithin) : 0;
  if (deliverWithin < 0) throw new NetSyncError("deliver_within must not be negative", Code.INVALID_ARGUMENT);
  return {
    data: request.custom.data,
    ...(request.slaveIds.length > 0 ? { ids: request.slaveIds } : {}),
    ...(request.selector !== "" ? { selector: request.selector } : {}),
    timeout,
    ...(deliverWithin > 0 ? { deliverWithin } : {}),
  };
}

/**
 * One Run stream following one job: `started`, then each result as the job
 * settles it, then `summary`, then OK. It writes while grpc-js takes writes
 * and stops writing once call.write() returns false, until 'drain'. While
 * it waits it keeps only references to the results in arrival order: the
 * job holds the results themselves (its record) whether anyone follows or
 * not, so a client that reads slowly, or not at all, costs the master one
 * pointer per target and no encoded message. A client that goes away only
 * stops the following; the job runs on.
 */
class RunStream {
  private readonly waiting: JobResult[] = [];
  private next = 0;
  private summary: JobSummary | undefined;
  private blocked = false;
  private stopFollowing: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly call: RunCall,
    private readonly job: Job,
    /** Bytes the targets may take in one message. */
    private readonly targetBytes: number,
    private readonly onClose: (stream: RunStream) => void,
  ) {}

  start(): void {
    this.call.on("drain", () => {
      this.blocked = false;
      this.pump();
    });
    const started = {
      jobId: this.job.id,
      targets: [...this.job.targets],
      unansweredMasters: [...this.job.unansweredMasters],
      masterId: this.job.masterId,
    };
    // Targets past one message's worth follow in JobTargets, before any result (the job holds them anyway).
    const [first = [], ...rest] = splitIds(started.targets, this.targetBytes);
    this.write({ case: "started", value: jobStartedMessage(started, first) });
    for (const slaveIds of rest) this.write({ case: "targets", value: { slaveIds } });
    const stop = this.job.follow(
      (result) => {
        this.waiting.push(result);
        this.pump();
      },
      (summary) => {
        this.summary = summary;
        this.pump();
      },
    );
    // A finished job calls both back before follow() returns, and may have ended the stream already.
    if (this.closed) stop();
    else this.stopFollowing = stop;
  }

  /** Stops following the job (the call ended, or the client went away); the job runs on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopFollowing?.();
    this.stopFollowing = undefined;
    this.waiting.length = 0;
    this.onClose(this);
  }

  private pump(): void {
    while (!this.blocked && !this.closed) {
      const result = this.waiting[this.next];
      if (result) {
        this.next++;
        this.write({ case: "result", value: jobResultMessage(result) });
        continue;
      }
      // Caught up: start the list again rather than let it grow to the job's size.
      this.waiting.length = 0;
      this.next = 0;
      if (this.summary) {
        this.write({ case: "summary", value: jobSummaryMessage(this.summary) });
        this.call.end();
        this.close();
      }
      return;
    }
  }

  private write(event: MessageInitShape<typeof RunResponseSchema>["event"]): void {
    if (!this.call.write(create(RunResponseSchema, { event }))) this.blocked = true;
  }
}

/**
 * AdminService.Run, GetJob and ListJobs over a master's jobs (Master.run(),
 * job(), jobs()). Run streams follow their job until its summary, the client
 * cancelling, or the master closing (closing ends every job, so their last
 * results and summaries are written first); they never end a job.
 */
export class JobService {
  private readonly streams = new Set<RunStream>();

  constructor(private readonly port: JobPort) {}

  /** Run streams following a job now. */
  get size(): number {
    return this.streams.size;
  }

  readonly run = (call: RunCall): void => {
    const request = call.request;
    if (request instanceof DecodeFailure) {
      rejectCall(call, Code.INVALID_ARGUMENT, `malformed request: ${request.error.message}`);
      return;
    }
    let options: ReturnType<typeof runOptionsOf>;
    try {
      options = runOptionsOf(request);
    } catch (err) {
      const error = NetSyncError.from(err, Code.INVALID_ARGUMENT);
      rejectCall(call, error.code, error.message);
      return;
    }
    const { data, ...runOptions } = options;
    let gone = false;
    let stream: RunStream | undefined;
    const leave = () => {
      gone = true;
      stream?.close();
    };
    call.on("cancelled", leave);
    call.on("close", leave);
    call.on("error", leave);
    this.port.run({ data }, runOptions).then(
      (job) => {
        // A client gone before the targets were fixed leaves the job running, followed by no one.
        if (gone) return;
        stream = new RunStream(call, job, this.port.maxMessageBytes - HEADROOM_BYTES, (s) => this.streams.delete(s));
        this.streams.add(stream);
        stream.start();
      },
      (err: unknown) => {
        const error = NetSyncError.from(err, Code.INTERNAL);
        if (!gone) rejectCall(call, error.code, error.message);
      },
    );
  };

  /**
   * GetJob: the job with its results so far, whole or (page_size) a slice of
   * its targets in id order with their results; NOT_FOUND for an id the
   * cache does not hold.
   */
  async getJob(request: GetJobRequest): Promise<MessageInitShape<typeof GetJobResponseSchema>> {
    if (request.jobId === "") throw new NetSyncError("job_id is required", Code.INVALID_ARGUMENT);
    if (request.pageSize < 0) throw new NetSyncError("page_size must not be negative", Code.INVALID_ARGUMENT);
    if (request.pageSize === 0 && request.pageToken !== "")
      throw new NetSyncError("page_token goes with page_size (the size of the pages)", Code.INVALID_ARGUMENT);
    const job = await this.port.getJob(request.jobId);
    if (!job) throw new NetSyncError(`no job with id "${request.jobId}" (never run, or aged out of the job cache)`, Code.NOT_FOUND);
    const limit = this.port.maxMessageBytes - HEADROOM_BYTES;
    const paged = request.pageSize > 0;
    const offset = paged ? jobPageOffset(request.pageToken, job.targets.length) : 0;
    const slice = paged ? job.targets.slice(offset, offset + request.pageSize) : undefined;
    const message = create(JobSchema, jobMessage(job, true, slice));
    const bytes = toBinary(JobSchema, message).byteLength;
    if (bytes > limit) {
      throw new NetSyncError(
        slice
          ? `a page of ${slice.length} targets of job ${job.id} is too big for one response: ${bytes} bytes with their results, ` +
              `the limit is ${limit}; ask for fewer (page_size)`
          : `job ${job.id} is too big for one response: ${bytes} bytes with its ${message.results.length} results, ` +
              `the limit is ${limit} (ask in pages: page_size; its summary: ListJobs)`,
        Code.RESOURCE_EXHAUSTED,
      );
    }
    if (!slice) return { job: message };
    const next = offset + slice.length;
    return { job: message, nextPageToken: next < job.targets.length ? jobPageToken(next) : "" };
  }

  /**
   * ListJobs: the newest `limit` jobs (default 100), without their results;
   * fewer when they would not fit one message (RESOURCE_EXHAUSTED if not even
   * the newest does).
   */
  async listJobs(request: ListJobsRequest): Promise<MessageInitShape<typeof ListJobsResponseSchema>> {
    if (request.limit < 0) throw new NetSyncError("limit must not be negative", Code.INVALID_ARGUMENT);
    const limit = this.port.maxMessageBytes - HEADROOM_BYTES;
    const jobs: JobMessage[] = [];
    let bytes = 0;
    for (const job of await this.port.listJobs(request.limit || DEFAULT_LIST_JOBS)) {
      // A job to the whole fleet would fill the response with its targets alone: the first few (as many as leave the
      // job's other fields room in one message), and target_count.
      const [listed = []] = splitIds(job.targets.slice(0, LIST_JOBS_TARGETS), limit - JOB_FIELDS_BYTES);
      const message = create(JobSchema, jobMessage(job, false, listed.length < job.targets.length ? listed : undefined));
      // Each job is a length-delimited field: its bytes plus a tag and a length prefix.
      const size = toBinary(JobSchema, message).byteLength + 6;
      if (bytes + size > limit) {
        if (jobs.length === 0)
          throw new NetSyncError(
            `job ${job.id} alone is too big for one response (${size} bytes, the limit is ${limit})`,
            Code.RESOURCE_EXHAUSTED,
          );
        break;
      }
      bytes += size;
      jobs.push(message);
    }
    return { jobs };
  }
}
