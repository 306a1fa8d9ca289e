/**
 * `netsync/admin`: a typed client of a master's AdminService, and the
 * messages it exchanges, for scripts and dashboards that manage a fleet.
 */

export type {
  BroadcastRequest,
  BroadcastResponse,
  ClosedSlave,
  GetJobRequest,
  GetJobResponse,
  Job as JobMessage,
  JobResult as JobResultMessage,
  JobStarted,
  JobSummary as JobSummaryMessage,
  ListJobsRequest,
  ListJobsResponse,
  ListSlavesRequest,
  ListSlavesResponse,
  RunRequest,
  RunResponse,
  SendRequest,
  SendResponse,
  Slave,
  WatchRequest,
  WatchResponse,
} from "../gen/netsync/v1/admin_pb.js";
export {
  AdminService,
  BroadcastRequestSchema,
  BroadcastResponseSchema,
  ClosedSlaveSchema,
  CloseReason,
  GetJobRequestSchema,
  GetJobResponseSchema,
  JobResultStatus,
  ListJobsRequestSchema,
  ListJobsResponseSchema,
  ListSlavesRequestSchema,
  ListSlavesResponseSchema,
  RunRequestSchema,
  RunResponseSchema,
  SendRequestSchema,
  SendResponseSchema,
  SlaveSchema,
  WatchEventKind,
  WatchRequestSchema,
  WatchResponseSchema,
} from "../gen/netsync/v1/admin_pb.js";
export type { AdminClientOptions, ListSlavesOptions, RunCallOptions, RunEvent, WatchOptions } from "./admin-client.js";
export { AdminClient } from "./admin-client.js";
export type { JobRecord, JobResult, JobSummary } from "./model.js";
export type { ClientTlsOptions } from "./server/auth.js";
export type { JobStartedInfo } from "./server/job-message.js";
