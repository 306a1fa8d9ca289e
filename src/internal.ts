/**
 * `netsync/internal`: building blocks of the master and the slave, for
 * NetSync's own tests, benchmarks and tools. Not part of the public API:
 * anything here may change in any release.
 */

export { authInterceptor, certificateIdentity, clientCredentials, serverCredentials, tokenMetadata } from "./auth.js";
export { Backoff } from "./backoff.js";
// Cluster mode (src/cluster/) is not re-exported here: importing it loads NATS. Import "src/cluster/index.js" where it is needed.
export type { LocalMaster, MasterCluster } from "./cluster/master-fleet.js";
export type { BidiMethod, ClientBidiCall, ServerBidiCall, UnaryMethod } from "./grpc-adapter.js";
export { callUnary, DecodeFailure, Encoded, methodPath, openBidi, serviceDefinition } from "./grpc-adapter.js";
export type { HeartbeatHost, HeartbeatOptions, Watched } from "./heartbeat.js";
export { HeartbeatScheduler } from "./heartbeat.js";
export { MasterServer } from "./master-server.js";
export type { ResolvedMasterOptions, ResolvedSlaveOptions } from "./options.js";
export { checkTimeouts, resolveMasterOptions, resolveSlaveOptions, validateSlaveId } from "./options.js";
export type { Slotted } from "./ping-slots.js";
export { PingSlots, spreadOrder } from "./ping-slots.js";
export { Registry } from "./registry.js";
export type { SyncCall } from "./slave-connection.js";
export { SlaveConnection } from "./slave-connection.js";
