import type { ConsolaInstance } from "consola";
import { Code } from "../code.js";
import { CLUSTER_DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import type { ClusterObserver } from "./stats.js";

/** Cluster names are one subject token: letters, digits, "_" and "-". */
const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface ClusterOptions {
  /** NATS server URLs, e.g. ["nats://127.0.0.1:4222"]. Required. */
  servers: readonly string[];
  /** Subjects are namespaced `netsync.<clusterName>.`, so several fleets can share one NATS. Default "netsync". */
  clusterName?: string;
  /** A NATS credentials file (JWT + NKey seed), read once at start. Default none. */
  credsFile?: string;
  /** A NATS authentication token. Default none. */
  token?: string;
  /** Trust this CA (PEM) for the NATS connection and require TLS. Default plaintext unless the URL says tls://. */
  tlsCa?: Buffer;
  /** Time between membership heartbeats. Default 1 s. */
  membershipInterval?: number;
  /** Missed heartbeats after which a member is dropped. Default 3. */
  memberExpiryBeats?: number;
  /** Per-master wait of ListSlaves and Broadcast. Default 1 s. */
  gatherTimeout?: number;
  /** Wait for the count of a master that acknowledged a Broadcast within `gatherTimeout` (at least that). Default 4 s. */
  broadcastTimeout?: number;
  /** Wait for a routed send's acknowledgement. Default 2 s. */
  requestTimeout?: number;
  /** Extra wait of a routed request beyond its reply timeout. Default 250 ms. */
  routeGrace?: number;
  /** Claims of one id within `claimWindow` after which it is damped. Default 3. */
  claimLimit?: number;
  /** Window of the claim count. Default 10 s. */
  claimWindow?: number;
  /** How long claims of a damped id are held back. Default 30 s. */
  claimCooldown?: number;
  /** NATS reconnect wait. Default 500 ms. */
  reconnectTimeWait?: number;
  /** NATS client ping interval. Default 2 s. */
  pingInterval?: number;
  /** Unanswered NATS pings before the server counts as stale. Default 2. */
  maxPingOut?: number;
  /** Retry interval after NATS refused the credentials. Default 5 s. */
  authRetryInterval?: number;
  /**
   * Where jobs are kept: "auto" (JetStream when NATS has it, else this master's memory), "jetstream"
   * (refuse jobs until the JetStream job store is open), "memory". Default "auto".
   */
  jobStore?: "auto" | "jetstream" | "memory";
  /** Writes to the JetStream job store held while NATS is unreachable. Default 10,000. */
  jobStoreOutbox?: number;
  /** Counters' observer (latencies), for the master's metrics. Default none. */
  observer?: ClusterObserver;
  /** Logger; default the root logger tagged "cluster". */
  logger?: ConsolaInstance;
}

export interface ResolvedClusterOptions
  extends Required<Omit<ClusterOptions, "credsFile" | "token" | "tlsCa" | "observer" | "logger" | "servers">> {
  /** The server URLs with any credentials taken out of them (nats.js ignores URL credentials). */
  servers: string[];
  credsFile: string | undefined;
  /** The token option, or one given in the URLs ("nats://TOKEN@host"). */
  token: string | undefined;
  /** User and password given in the URLs ("nats://user:pass@host"). */
  user: string | undefined;
  pass: string | undefined;
  tlsCa: Buffer | undefined;
  observer: ClusterObserver | undefined;
  logger: ConsolaInstance | undefined;
}

export function resolveClusterOptions(options: ClusterOptions): ResolvedClusterOptions {
  const d = CLUSTER_DEFAULTS;
  const invalid = (message: string) => new NetSyncError(`cluster: ${message}`, Code.INVALID_ARGUMENT);
  const urls = splitCredentials(options.servers, invalid);
  if (urls.token !== undefined && options.token !== undefined) throw invalid("give the token in the URL or as an option, not both");
  if ((urls.token !== undefined || urls.user !== undefined) && options.credsFile !== undefined) {
    throw invalid("give credentials in the URL or a creds file, not both");
  }
  const resolved: ResolvedClusterOptions = {
    servers: urls.servers,
    clusterName: options.clusterName ?? d.clusterName,
    credsFile: options.credsFile,
    token: options.token ?? urls.token,
    user: urls.user,
    pass: urls.pass,
    tlsCa: options.tlsCa,
    membershipInterval: options.membershipInterval ?? d.membershipInterval,
    memberExpiryBeats: options.memberExpiryBeats ?? d.memberExpiryBeats,
    gatherTimeout: options.gatherTimeout ?? d.gatherTimeout,
    broadcastTimeout: options.broadcastTimeout ?? d.broadcastTimeout,
    requestTimeout: options.requestTimeout ?? d.requestTimeout,
    routeGrace: options.routeGrace ?? d.routeGrace,
    claimLimit: options.claimLimit ?? d.claimLimit,
    claimWindow: options.claimWindow ?? d.claimWindow,
    claimCooldown: options.claimCooldown ?? d.claimCooldown,
    reconnectTimeWait: options.reconnectTimeWait ?? d.reconnectTimeWait,
    pingInterval: options.pingInterval ?? d.pingInterval,
    maxPingOut: options.maxPingOut ?? d.maxPingOut,
    authRetryInterval: options.authRetryInterval ?? d.authRetryInterval,
    jobStore: options.jobStore ?? d.jobStore,
    jobStoreOutbox: options.jobStoreOutbox ?? d.jobStoreOutbox,
    observer: options.observer,
    logger: options.logger,
  };
  if (resolved.servers.length === 0 || resolved.servers.some((s) => s.trim() === "")) throw invalid("no NATS server given");
  if (!CLUSTER_NAME.test(resolved.clusterName)) {
    throw invalid(`cluster name must be 1 to 64 letters, digits, "_" or "-", got "${resolved.clusterName}"`);
  }
  if (resolved.token !== undefined && resolved.credsFile !== undefined) throw invalid("give a token or a creds file, not both");
  for (const key of [
    "membershipInterval",
    "gatherTimeout",
    "broadcastTimeout",
    "requestTimeout",
    "claimWindow",
    "reconnectTimeWait",
    "pingInterval",
    "authRetryInterval",
  ] as const) {
    if (!(resolved[key] > 0)) throw invalid(`${key} must be > 0, got ${resolved[key]}`);
  }
  if (!["auto", "jetstream", "memory"].includes(resolved.jobStore)) {
    throw invalid(`jobStore must be "auto", "jetstream" or "memory", got "${resolved.jobStore}"`);
  }
  for (const key of ["memberExpiryBeats", "claimLimit", "maxPingOut", "jobStoreOutbox"] as const) {
    if (!Number.isInteger(resolved[key]) || resolved[key] < 1) throw invalid(`${key} must be an integer ≥ 1, got ${resolved[key]}`);
  }
  for (const key of ["routeGrace", "claimCooldown"] as const) {
    if (!(resolved[key] >= 0)) throw invalid(`${key} must be ≥ 0, got ${resolved[key]}`);
  }
  return resolved;
}

/** A server URL as it may be logged: user, password or token in it replaced by "***". */
export function redactServer(server: string): string {
  return server.replace(/\/\/[^/@]*@/, "//***@");
}

/**
 * Takes credentials out of server URLs: nats.js (3.x) does not read the
 * userinfo of a URL, so "nats://user:pass@host" or "nats://token@host" would
 * silently connect without them. Every URL must carry the same credentials
 * (or none): one connection presents one identity to whichever server it
 * reaches.
 */
export function splitCredentials(
  servers: readonly string[],
  invalid: (message: string) => Error,
): { servers: string[]; user?: string; pass?: string; token?: string } {
  let found: { user?: string; pass?: string; token?: string } | undefined;
  let key: string | undefined;
  const out: string[] = [];
  for (const server of servers) {
    const match = /^([a-z][a-z0-9+.-]*:\/\/)?([^/@]*)@(.*)$/i.exec(server.trim());
    if (!match) {
      out.push(server.trim());
      continue;
    }
    const [, scheme = "", userinfo = "", rest = ""] = match;
    out.push(`${scheme}${rest}`);
    const colon = userinfo.indexOf(":");
    const decode = (text: string) => {
      try {
        return decodeURIComponent(text);
      } catch {
        return text;
      }
    };
    const these =
      colon < 0 ? { token: decode(userinfo) } : { user: decode(userinfo.slice(0, colon)), pass: decode(userinfo.slice(colon + 1)) };
    const theseKey = JSON.stringify(these);
    if (key !== undefined && key !== theseKey) throw invalid("every server URL must carry the same credentials");
    key = theseKey;
    found = these;
  }
  if (found && servers.some((s) => !s.includes("@"))) throw invalid("every server URL must carry the same credentials");
  return { servers: out, ...found };
}
