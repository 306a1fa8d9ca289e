export { Master } from "./master.js";
export type { MasterEvents, SlaveEvent, CustomInput } from "./master.js";
export { Slave } from "./slave.js";
export type { SlaveEvents, SlaveState } from "./slave.js";
export type { SlaveInfo, CloseReason } from "./slave-connection.js";
export { HeartbeatScheduler } from "./heartbeat.js";
export type { HeartbeatHost, HeartbeatOptions, Watched } from "./heartbeat.js";
export { Backoff } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { NetSyncError } from "./errors.js";
export { DEFAULTS, SLAVE_ID_METADATA_KEY } from "./options.js";
export type { MasterOptions, SlaveOptions, CommandHandler, CommandContext } from "./options.js";
export { Encoded, DecodeFailure, serviceDefinition, openBidi } from "./grpc-adapter.js";
export { getLogger, setLogLevel, resolveLogLevel, silentLogger } from "./logger.js";
export type { Logger, LogLevelName } from "./logger.js";

