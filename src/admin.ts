/**
 * `netsync/admin`: a typed client of a master's AdminService, and the
 * messages it exchanges, for scripts and dashboards that manage a fleet.
 */
export { AdminClient } from "./admin-client.js";
export type { AdminClientOptions } from "./admin-client.js";
export type { ClientTlsOptions } from "./auth.js";
export {
  AdminService,
  CloseReason,
  ListSlavesRequestSchema,
  ListSlavesResponseSchema,
  BroadcastRequestSchema,
  BroadcastResponseSchema,
  SendRequestSchema,
  SendResponseSchema,
  SlaveSchema,
  ClosedSlaveSchema,
} from "../gen/netsync/v1/admin_pb.js";
export type {
  ListSlavesRequest,
  ListSlavesResponse,
  BroadcastRequest,
  BroadcastResponse,
  SendRequest,
  SendResponse,
  Slave,
  ClosedSlave,
} from "../gen/netsync/v1/admin_pb.js";
