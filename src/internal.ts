/**
 * `netsync/internal`: building blocks of the master and the slave, for
 * NetSync's own tests, benchmarks and tools. Not part of the public API:
 * anything here may change in any release.
 */

// Cluster mode (src/cluster/) is not re-exported here: importing it loads NATS. Import "src/cluster/index.js" where it is needed.
export type { HeartbeatHost, HeartbeatOptions, Watched } from "./fleet/heartbeat.js";
export { checkTimeouts, HeartbeatScheduler } from "./fleet/heartbeat.js";
export type { Slotted } from "./fleet/ping-slots.js";
export { PingSlots, spreadOrder } from "./fleet/ping-slots.js";
export { Registry } from "./fleet/registry.js";
export type { SyncCall } from "./fleet/slave-connection.js";
export { SlaveConnection } from "./fleet/slave-connection.js";
export type { BidiMethod, ClientBidiCall, ServerBidiCall, UnaryMethod } from "./grpc-adapter.js";
export { callUnary, DecodeFailure, Encoded, methodPath, openBidi, serviceDefinition } from "./grpc-adapter.js";
export type { ResolvedMasterOptions, ResolvedSlaveOptions } from "./options.js";
export { resolveMasterOptions, resolveSlaveOptions } from "./options.js";
export { authInterceptor, certificateIdentity, clientCredentials, serverCredentials, tokenMetadata } from "./server/auth.js";
export { MasterServer } from "./server/master-server.js";
export { Backoff } from "./slave/backoff.js";
export { validateSlaveId } from "./wire.js";
