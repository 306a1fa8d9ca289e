/**
 * `netsync/internal`: building blocks of the master and the slave, for
 * NetSync's own tests, benchmarks and tools. Not part of the public API:
 * anything here may change in any release.
 */
export { Encoded, DecodeFailure, serviceDefinition, openBidi, callUnary, methodPath } from "./grpc-adapter.js";
export type { BidiMethod, UnaryMethod, ServerBidiCall, ClientBidiCall } from "./grpc-adapter.js";
export { HeartbeatScheduler } from "./heartbeat.js";
export type { HeartbeatHost, HeartbeatOptions, Watched } from "./heartbeat.js";
export { PingSlots, spreadOrder } from "./ping-slots.js";
export type { Slotted } from "./ping-slots.js";
export { Registry } from "./registry.js";
export { SlaveConnection } from "./slave-connection.js";
export type { SyncCall } from "./slave-connection.js";
export { Backoff } from "./backoff.js";
export { MasterServer } from "./master-server.js";
export { resolveMasterOptions, resolveSlaveOptions, checkTimeouts, validateSlaveId } from "./options.js";
export type { ResolvedMasterOptions, ResolvedSlaveOptions } from "./options.js";
export { clientCredentials, serverCredentials, tokenMetadata, authInterceptor, certificateIdentity } from "./auth.js";
