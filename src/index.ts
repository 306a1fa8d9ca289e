/**
 * `netsync`: the master, the slave, their options and events, the one error
 * type with its codes, logging, and the protobuf contract they speak.
 * Internals (the grpc-js adapter, the scheduler, the registry) are not here;
 * tools that need them import `netsync/internal`, which makes no promises.
 */
export { Master } from "./master.js";
export type { MasterEvents, SlaveEvent, CustomInput, RequestOptions } from "./master.js";
export { Slave } from "./slave.js";
export type { SlaveEvents, SlaveState } from "./slave.js";
export type { SlaveInfo, ClosedSlaveInfo, CloseReason } from "./slave-connection.js";
export { DEFAULTS, SLAVE_ID_METADATA_KEY, MAX_SLAVE_ID_LENGTH } from "./options.js";
export type { MasterOptions, SlaveOptions, CommandHandler, CommandContext } from "./options.js";
export type { BackoffOptions } from "./backoff.js";
export type { MasterTlsOptions, ClientTlsOptions } from "./auth.js";
export { NetSyncError } from "./errors.js";
export { Code, codeName } from "./code.js";
export { getLogger, setLogLevel, setLogFormat, resolveLogLevel, resolveLogFormat, silentLogger, LOG_LEVEL_ENV, LOG_FORMAT_ENV } from "./logger.js";
export type { Logger, LogLevelName, LogFormat } from "./logger.js";
export {
  NetSyncService,
  CommandSchema,
  PingSchema,
  PongSchema,
  CustomSchema,
  ReplySchema,
  file_netsync_v1_netsync,
} from "../gen/netsync/v1/netsync_pb.js";
export type { Command, Ping, Pong, Custom, Reply } from "../gen/netsync/v1/netsync_pb.js";
