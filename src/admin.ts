/**
 * `netsync/admin`: a typed client of a master's AdminService, and the
 * messages it exchanges, for scripts and dashboards that manage a fleet.
 */

export type {
  BroadcastRequest,
  BroadcastResponse,
  ClosedSlave,
  ListSlavesRequest,
  ListSlavesResponse,
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
  ListSlavesRequestSchema,
  ListSlavesResponseSchema,
  SendRequestSchema,
  SendResponseSchema,
  SlaveSchema,
  WatchEventKind,
  WatchRequestSchema,
  WatchResponseSchema,
} from "../gen/netsync/v1/admin_pb.js";
export type { AdminClientOptions, ListSlavesOptions, WatchOptions } from "./admin-client.js";
export { AdminClient } from "./admin-client.js";
export type { ClientTlsOptions } from "./server/auth.js";
