import type { ChannelOptions } from "@grpc/grpc-js";
import type { ConsolaInstance } from "consola";
import type { Custom } from "../gen/netsync/v1/netsync_pb.js";
import { type ClusterOptions, resolveClusterOptions } from "./cluster/options.js";
import { Code } from "./code.js";
import { DEFAULTS } from "./defaults.js";
import { NetSyncError } from "./errors.js";
import { checkTimeouts } from "./fleet/heartbeat.js";
import { checkLabels, type Labels } from "./labels.js";
import type { ClientTlsOptions, MasterTlsOptions } from "./server/auth.js";
import type { BackoffOptions } from "./slave/backoff.js";
import { validateSlaveId } from "./wire.js";

export const MAX_MASTER_NAME_LENGTH = 128;

export interface MasterOptions {
  /** This master's id, as admin responses and (in a cluster) other masters name it. Default "host:port" once listening. */
  name?: string;
  /** Address to listen on. Default "127.0.0.1". */
  host?: string;
  /** Port to listen on; 0 picks a free one. Default 50051. */
  port?: number;
  /** Time between ping rounds. Default 5 s. */
  heartbeatInterval?: number;
  /** Silence after which a slave is evicted; must exceed the interval. Default 10 s. */
  heartbeatTimeout?: number;
  /** Fewest slaves pinged together in one slice of a round; 1 spreads even a small fleet over the interval. Default 100. */
  heartbeatSliceSize?: number;
  /** Largest inbound message; larger ones end the stream with RESOURCE_EXHAUSTED. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Queued outbound bytes per slave before it is evicted as a slow consumer. Default 1 MiB. */
  maxPendingBytes?: number;
  /** How long close() waits for streams to finish before cutting connections. Default 5 s. */
  shutdownGrace?: number;
  /** Serve gRPC server reflection (v1 and v1alpha) for grpcurl and buf curl. Default true. */
  reflection?: boolean;
  /** Serve Prometheus metrics on http://host:metricsPort/metrics; 0 picks a free port. Default off. */
  metricsPort?: number;
  /**
   * Serve the live dashboard on http(s)://host:httpPort/ with /metrics, /api/slaves and /api/events (SSE);
   * 0 picks a free port. With a token, the page and the API require it. Default off.
   */
  httpPort?: number;
  /** Let the dashboard send commands to one slave or a selection (POST /api/send). Default false: read-only. */
  dashboardActions?: boolean;
  /** Closed slaves kept for ListSlaves. Default 1000. */
  historySize?: number;
  /** Events queued for one AdminService.Watch client that does not read before it is cut with RESOURCE_EXHAUSTED. Default 1000. */
  watchBuffer?: number;
  /** Messages per second one slave may send (averaged over one second) before it is evicted. Default 1000. */
  maxMessagesPerSecond?: number;
  /**
   * Admission of new slave streams, a token bucket: at most `rate` a second, `burst` at once; beyond it a
   * stream is refused with RESOURCE_EXHAUSTED and a retry hint (`netsync-retry-after-ms`), so a failover
   * storm is spread instead of timing out. `rate` 0 admits everything. Default 2000/s, burst 2000.
   */
  admission?: { rate?: number; burst?: number };
  /**
   * Two live slaves with one id: the newest wins while at most `limit` connections of the id arrived
   * within `window`; the next starts a `cooldown` during which new streams for it are refused with
   * ALREADY_EXISTS and a retry hint, and the holder keeps its stream (a cluster damps its claims the
   * same way). `limit` or `cooldown` 0: the newest always wins. Default 3 in 10 s, 30 s.
   */
  duplicateIds?: { limit?: number; window?: number; cooldown?: number };
  /** Serve TLS; with `clientCa`, require client certificates whose CN/SAN becomes the slave id. Default plaintext. */
  tls?: MasterTlsOptions;
  /** Bearer token every slave and admin client must present. Default none. */
  token?: string;
  /** Extra grpc-js server options; they win over the ones NetSync derives. */
  serverOptions?: ChannelOptions;
  /** Join a cluster of masters over NATS (see README "Cluster mode"). Default none: a master on its own, which never loads NATS. */
  cluster?: MasterClusterOptions;
  /** Logger; default the root logger tagged "master". */
  logger?: ConsolaInstance;
}

/**
 * Cluster mode of a master: the NATS servers and, optionally, the cluster's
 * name, credentials and timings. Defaults are those of CLUSTER_DEFAULTS
 * (src/cluster/options.ts), the one place they are declared.
 */
export interface MasterClusterOptions
  extends Omit<ClusterOptions, "servers" | "clusterName" | "observer" | "logger" | "credsFile" | "token" | "tlsCa"> {
  /** NATS server URLs, e.g. ["nats://127.0.0.1:4222"]; "nats://user:pass@host" and "nats://token@host" work too. Required. */
  servers: readonly string[];
  /** The cluster's name: subjects are namespaced by it, so several fleets can share one NATS. Default "netsync". */
  name?: string;
  /** A NATS credentials file (JWT + NKey seed). Default none. */
  credsFile?: string;
  /** A NATS authentication token; never logged. Default none. */
  token?: string;
  /** Trust this CA (PEM) for NATS and require TLS. Default plaintext unless the URL says tls://. */
  tlsCa?: Buffer;
}

export interface ResolvedMasterOptions
  extends Required<
    Omit<
      MasterOptions,
      "name" | "logger" | "serverOptions" | "metricsPort" | "httpPort" | "tls" | "token" | "cluster" | "admission" | "duplicateIds"
    >
  > {
  admission: { rate: number; burst: number };
  duplicateIds: { limit: number; window: number; cooldown: number };
  httpPort: number | undefined;
  name: string | undefined;
  /** What the master hands to its ClusterNode (validated here, so a bad option fails the constructor, not listen()). */
  cluster: ClusterOptions | undefined;
  serverOptions: ChannelOptions;
  metricsPort: number | undefined;
  tls: MasterTlsOptions | undefined;
  token: string | undefined;
  logger: ConsolaInstance | undefined;
}

export function resolveMasterOptions(options: MasterOptions = {}): ResolvedMasterOptions {
  const resolved: ResolvedMasterOptions = {
    host: options.host ?? DEFAULTS.host,
    port: options.port ?? DEFAULTS.port,
    heartbeatInterval: options.heartbeatInterval ?? DEFAULTS.heartbeatInterval,
    heartbeatTimeout: options.heartbeatTimeout ?? DEFAULTS.heartbeatTimeout,
    heartbeatSliceSize: options.heartbeatSliceSize ?? DEFAULTS.heartbeatSliceSize,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    maxPendingBytes: options.maxPendingBytes ?? DEFAULTS.maxPendingBytes,
    shutdownGrace: options.shutdownGrace ?? DEFAULTS.shutdownGrace,
    reflection: options.reflection ?? true,
    name: options.name,
    metricsPort: options.metricsPort,
    httpPort: options.httpPort,
    dashboardActions: options.dashboardActions ?? false,
    historySize: options.historySize ?? DEFAULTS.historySize,
    watchBuffer: options.watchBuffer ?? DEFAULTS.watchBuffer,
    maxMessagesPerSecond: options.maxMessagesPerSecond ?? DEFAULTS.maxMessagesPerSecond,
    admission: { ...DEFAULTS.admission, ...options.admission },
    duplicateIds: { ...DEFAULTS.duplicateIds, ...options.duplicateIds },
    tls: options.tls,
    token: options.token,
    serverOptions: options.serverOptions ?? {},
    cluster: clusterOptionsOf(options.cluster),
    logger: options.logger,
  };
  checkTimeouts(resolved.heartbeatInterval, resolved.heartbeatTimeout);
  if (!Number.isInteger(resolved.heartbeatSliceSize) || resolved.heartbeatSliceSize < 1) {
    throw new NetSyncError(`heartbeatSliceSize must be an integer ≥ 1, got ${resolved.heartbeatSliceSize}`, Code.INVALID_ARGUMENT);
  }
  for (const [name, value] of [
    ["admission.rate", resolved.admission.rate],
    ["admission.burst", resolved.admission.burst],
    ["duplicateIds.limit", resolved.duplicateIds.limit],
    ["duplicateIds.window", resolved.duplicateIds.window],
    ["duplicateIds.cooldown", resolved.duplicateIds.cooldown],
  ] as const) {
    if (!Number.isFinite(value) || value < 0) throw new NetSyncError(`${name} must be a number ≥ 0, got ${value}`, Code.INVALID_ARGUMENT);
  }
  if (resolved.admission.rate > 0 && resolved.admission.burst < 1) {
    throw new NetSyncError(
      `admission.burst must be ≥ 1 when admission.rate is set, got ${resolved.admission.burst}`,
      Code.INVALID_ARGUMENT,
    );
  }
  if (resolved.name !== undefined && (resolved.name.length === 0 || resolved.name.length > MAX_MASTER_NAME_LENGTH)) {
    throw new NetSyncError(`name must be 1 to ${MAX_MASTER_NAME_LENGTH} characters`, Code.INVALID_ARGUMENT);
  }
  if (!Number.isInteger(resolved.historySize) || resolved.historySize < 0) {
    throw new NetSyncError(`historySize must be an integer ≥ 0, got ${resolved.historySize}`, Code.INVALID_ARGUMENT);
  }
  if (!Number.isInteger(resolved.watchBuffer) || resolved.watchBuffer < 1) {
    throw new NetSyncError(`watchBuffer must be an integer ≥ 1, got ${resolved.watchBuffer}`, Code.INVALID_ARGUMENT);
  }
  for (const [name, port] of [
    ["port", resolved.port],
    ["metricsPort", resolved.metricsPort],
    ["httpPort", resolved.httpPort],
  ] as const) {
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
      throw new NetSyncError(`${name} must be an integer from 0 to 65535, got ${port}`, Code.INVALID_ARGUMENT);
    }
  }
  return resolved;
}

/** A master's cluster option as ClusterNode options, checked now (resolveClusterOptions throws INVALID_ARGUMENT). */
function clusterOptionsOf(cluster: MasterClusterOptions | undefined): ClusterOptions | undefined {
  if (cluster === undefined) return undefined;
  const { name, ...rest } = cluster;
  const options: ClusterOptions = { ...rest, servers: [...cluster.servers] };
  if (name !== undefined) options.clusterName = name;
  resolveClusterOptions(options);
  return options;
}

export interface SlaveOptions<Reply = unknown> {
  /** The master's address, "host:port", or several: on loss the slave moves on to another one, at random. */
  master: string | readonly string[];
  /** This slave's id, sent as `netsync-slave-id`; when absent the master assigns one. */
  id?: string;
  /** Labels declared to the master (metadata `netsync-slave-labels`), e.g. `{ region: "eu" }`; at most 16, Kubernetes syntax. Default none. */
  labels?: Record<string, string>;
  /** Handles Custom commands. Its errors are logged; it never delays a Pong. */
  onCommand?: CommandHandler<Reply>;
  /** Silence from the master after which the stream is dropped and reopened. Default 15 s. */
  masterTimeout?: number;
  /** Reconnect backoff. Default 100 ms initial, x2, capped at 10 s, full jitter. */
  backoff?: BackoffOptions;
  /**
   * After a master refuses this slave's credentials (UNAUTHENTICATED, PERMISSION_DENIED), wait about this
   * long (±25 %) before trying again, not the reconnect backoff: a wrong token does not fix itself. Default 30 s.
   */
  authRetryInterval?: number;
  /** Give up (emit `failed` and close) after this many refusals of the credentials in a row; 0 retries forever. Default 5. */
  maxAuthRefusals?: number;
  /** A master's retry hint (`netsync-retry-after-ms`) is waited, plus up to this fraction of it more at random. Default 0.5. */
  retryJitter?: number;
  /** Largest inbound message. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Connect with TLS (and a client certificate for mTLS). Default plaintext. */
  tls?: ClientTlsOptions;
  /** Bearer token sent as `authorization`. Default none. */
  token?: string;
  /** Extra grpc-js channel options; they win over the ones NetSync derives. */
  channelOptions?: ChannelOptions;
  /**
   * Index in `master` of the first master to dial. Default a random one, so
   * a fleet given the same list spreads over its masters; on loss the slave
   * moves on to another entry, picked at random.
   */
  startAt?: number;
  /**
   * A file where the slave records the commands it runs (by command_id) before running them, so that
   * after the process is killed and started again a redelivered command is still run at most once: a
   * finished one is answered with its result, one that was running when the process died with an error
   * saying so. Default none: the log lives in memory and a restarted process forgets it.
   */
  commandJournal?: string;
  /** Logger; default the root logger tagged "slave". */
  logger?: ConsolaInstance;
}

/** Context passed to a command handler. */
export interface CommandContext {
  /** The id this slave registered under (assigned by the master if none was given). */
  slaveId: string;
}

export type CommandHandler<Reply = unknown> = (command: Custom, context: CommandContext) => Reply | Promise<Reply>;

export interface ResolvedSlaveOptions {
  masters: readonly string[];
  id: string | undefined;
  labels: Labels;
  onCommand: CommandHandler | undefined;
  masterTimeout: number;
  backoff: BackoffOptions;
  authRetryInterval: number;
  maxAuthRefusals: number;
  retryJitter: number;
  maxMessageBytes: number;
  tls: ClientTlsOptions | undefined;
  token: string | undefined;
  channelOptions: ChannelOptions;
  startAt: number;
  commandJournal: string | undefined;
  logger: ConsolaInstance | undefined;
}

export function resolveSlaveOptions(options: SlaveOptions): ResolvedSlaveOptions {
  if (options.id !== undefined) {
    const problem = validateSlaveId(options.id);
    if (problem) throw new NetSyncError(problem, Code.INVALID_ARGUMENT);
  }
  const masters = typeof options.master === "string" ? [options.master] : [...options.master];
  if (masters.length === 0) throw new NetSyncError("no master address given", Code.INVALID_ARGUMENT);
  const masterTimeout = options.masterTimeout ?? DEFAULTS.masterTimeout;
  if (!(masterTimeout > 0)) throw new NetSyncError(`masterTimeout must be > 0, got ${masterTimeout} ms`, Code.INVALID_ARGUMENT);
  const authRetryInterval = options.authRetryInterval ?? DEFAULTS.authRetryInterval;
  if (!(authRetryInterval > 0)) throw new NetSyncError(`authRetryInterval must be > 0, got ${authRetryInterval} ms`, Code.INVALID_ARGUMENT);
  const maxAuthRefusals = options.maxAuthRefusals ?? DEFAULTS.maxAuthRefusals;
  if (!Number.isInteger(maxAuthRefusals) || maxAuthRefusals < 0) {
    throw new NetSyncError(`maxAuthRefusals must be an integer ≥ 0 (0: retry forever), got ${maxAuthRefusals}`, Code.INVALID_ARGUMENT);
  }
  const retryJitter = options.retryJitter ?? DEFAULTS.retryJitter;
  if (!(retryJitter >= 0)) throw new NetSyncError(`retryJitter must be ≥ 0, got ${retryJitter}`, Code.INVALID_ARGUMENT);
  const startAt = options.startAt ?? Math.floor(Math.random() * masters.length);
  if (!Number.isInteger(startAt) || startAt < 0 || startAt >= masters.length) {
    throw new NetSyncError(`startAt must be an index into the ${masters.length} masters, got ${startAt}`, Code.INVALID_ARGUMENT);
  }
  return {
    masters,
    id: options.id,
    labels: checkLabels(options.labels ?? {}),
    onCommand: options.onCommand as CommandHandler | undefined,
    masterTimeout,
    backoff: { ...DEFAULTS.backoff, ...options.backoff },
    authRetryInterval,
    maxAuthRefusals,
    retryJitter,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULTS.maxMessageBytes,
    tls: options.tls,
    token: options.token,
    channelOptions: options.channelOptions ?? {},
    startAt,
    commandJournal: options.commandJournal,
    logger: options.logger,
  };
}
