/**
 * `netsync`: the master, the slave, their options and events, the one error
 * type with its codes, logging, and the protobuf contract they speak.
 * Internals (the grpc-js adapter, the scheduler, the registry) are not here;
 * tools that need them import `netsync/internal`, which makes no promises.
 */

export type { Command, Custom, Ping, Pong, Reply } from "../gen/netsync/v1/netsync_pb.js";
export {
  CommandSchema,
  CustomSchema,
  file_netsync_v1_netsync,
  NetSyncService,
  PingSchema,
  PongSchema,
  ReplySchema,
} from "../gen/netsync/v1/netsync_pb.js";
export { Code, codeName } from "./code.js";
export { CLUSTER_DEFAULTS, DEFAULTS, JOB_DEFAULTS } from "./defaults.js";
export { NetSyncError } from "./errors.js";
export { Job } from "./jobs/job.js";
export type { Labels } from "./labels.js";
export { formatLabels, parseLabels } from "./labels.js";
export type { LogFormat, Logger, LogLevelName } from "./logger.js";
export {
  getLogger,
  LOG_FORMAT_ENV,
  LOG_LEVEL_ENV,
  resolveLogFormat,
  resolveLogLevel,
  setLogFormat,
  setLogLevel,
  silentLogger,
} from "./logger.js";
export { Master } from "./master.js";
export type {
  ClosedSlaveInfo,
  CloseReason,
  ClusterState,
  ClusterStatus,
  CustomInput,
  FleetBroadcastResult,
  FleetOptions,
  FleetSlaveInfo,
  FleetView,
  JobRecord,
  JobResult,
  JobResultStatus,
  JobSummary,
  MasterEvents,
  MasterInfo,
  RequestOptions,
  RoutedReplyResult,
  RoutedSendResult,
  RunOptions,
  SelectOptions,
  SlaveEvent,
  SlaveInfo,
  WatchEvent,
  WatchEventKind,
  WatchListener,
} from "./model.js";
export type { CommandContext, CommandHandler, MasterClusterOptions, MasterOptions, SlaveOptions } from "./options.js";
export type { Requirement } from "./selector.js";
export { Selector } from "./selector.js";
export type { ClientTlsOptions, MasterTlsOptions } from "./server/auth.js";
export type { BackoffOptions } from "./slave/backoff.js";
export type { ExecHandler, ExecOptions } from "./slave/exec.js";
export { execHandler } from "./slave/exec.js";
export type { SlaveEvents, SlaveState } from "./slave/slave.js";
export { Slave } from "./slave/slave.js";
export { LABELS_METADATA_KEY, MAX_LABELS, MAX_SLAVE_ID_LENGTH, RETRY_AFTER_METADATA_KEY, SLAVE_ID_METADATA_KEY } from "./wire.js";
