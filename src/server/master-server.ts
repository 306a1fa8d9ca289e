import * as grpc from "@grpc/grpc-js";
import type { ConsolaInstance } from "consola";
import { HealthImplementation } from "grpc-health-check";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import { AdminService, file_netsync_v1_admin } from "../../gen/netsync/v1/admin_pb.js";
import { file_netsync_v1_netsync, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { SyncCall } from "../fleet/slave-connection.js";
import { serviceDefinition } from "../grpc-adapter.js";
import { authInterceptor, type MasterTlsOptions, serverCredentials } from "./auth.js";
import { addReflection } from "./reflection.js";

/** Services whose health the master reports. */
const HEALTH_SERVICES = ["", NetSyncService.typeName, AdminService.typeName] as const;

/** What the grpc-js server is built from: the master's settings (token and TLS keys among them, hence #config) and its handlers. */
export interface MasterServerConfig {
  heartbeatTimeout: number;
  maxMessageBytes: number;
  reflection: boolean;
  tls: MasterTlsOptions | undefined;
  token: string | undefined;
  /** Extra grpc-js server options; they win over the derived ones. */
  serverOptions: grpc.ChannelOptions;
  log: ConsolaInstance;
  /** Handles each NetSyncService.Sync stream. */
  onSync(call: SyncCall): void;
  /** The AdminService handlers. */
  admin: grpc.UntypedServiceImplementation;
}

/**
 * The grpc-js server of a master: its options, its services (Sync, Admin,
 * health, reflection), binding, and a shutdown that waits for streams to
 * end but never longer than a grace period.
 */
export class MasterServer {
  private readonly server: grpc.Server;
  private readonly health = new HealthImplementation(Object.fromEntries(HEALTH_SERVICES.map((name) => [name, "NOT_SERVING"])));

  readonly #config: MasterServerConfig;

  constructor(config: MasterServerConfig) {
    this.#config = config;
    this.server = new grpc.Server(serverOptions(config));
    this.server.addService(serviceDefinition(NetSyncService), {
      [NetSyncService.method.sync.localName]: (call: SyncCall) => config.onSync(call),
    });
    this.server.addService(serviceDefinition(AdminService), config.admin);
    this.health.addToServer(this.server);
    if (config.reflection) addReflection(this.server, [file_netsync_v1_netsync, file_netsync_v1_admin, file_grpc_health_v1_health]);
  }

  /** Binds `host:port` (port 0: any free one); resolves with the bound port. */
  bind(urlHost: string, port: number): Promise<number> {
    return new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${urlHost}:${port}`, serverCredentials(this.#config.tls), (err, bound) =>
        err ? reject(NetSyncError.from(err, Code.UNAVAILABLE)) : resolve(bound),
      ),
    );
  }

  /** What health checks answer for every service NetSync serves. */
  setServing(serving: boolean): void {
    for (const name of HEALTH_SERVICES) this.health.setStatus(name, serving ? "SERVING" : "NOT_SERVING");
  }

  /**
   * Stops accepting calls and resolves once every stream has ended, or after
   * `grace` ms, when the connections still open are cut.
   */
  shutdown(grace: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#config.log.warn(`streams still open after ${grace} ms; closing connections`);
        this.server.forceShutdown();
        resolve();
      }, grace);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

/**
 * Server options. Transport keepalive is not liveness; here it is only the
 * last resort that frees a connection whose peer vanished.
 */
function serverOptions(config: MasterServerConfig): grpc.ServerOptions {
  const { heartbeatTimeout, maxMessageBytes, token, tls } = config;
  const secured = token !== undefined || tls?.clientCa !== undefined;
  return {
    // Health and reflection stay open for probes and grpcurl; the slave stream and the admin API do not.
    interceptors: secured
      ? [
          authInterceptor({
            token,
            requireClientCert: tls?.clientCa !== undefined,
            protectedPrefixes: [`/${NetSyncService.typeName}/`, `/${AdminService.typeName}/`],
            log: config.log,
          }),
        ]
      : [],
    // Only a backstop: an evicted slave's stream is reset by endStream() and its connection closed by
    // the idle timer. A PING per connection costs a write and a read, so it is rare: every 10 heartbeat
    // timeouts (at least a minute), given up after 2 × timeout, which also lets a dead slave always be
    // evicted (and counted) before keepalive could tear its connection down.
    "grpc.keepalive_time_ms": Math.max(10 * heartbeatTimeout, 60_000),
    "grpc.keepalive_timeout_ms": 2 * heartbeatTimeout,
    // Channelz stays on although nothing reads it (~4% CPU in the benchmark): with it off,
    // grpc-js's forceShutdown() no longer destroys open sessions, and close() must cut them.
    // A connection whose streams all ended (e.g. an evicted raw client) is not kept.
    "grpc.max_connection_idle_ms": heartbeatTimeout,
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    ...config.serverOptions,
  };
}
