import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { Code } from "../../code.js";
import { NetSyncError } from "../../errors.js";
import { getLogger } from "../../logger.js";
import { Master } from "../../master.js";
import type { MasterClusterOptions } from "../../options.js";
import { runUntilStopped } from "../run.js";
import { readPem, resolveToken } from "../security.js";
import { UsageError } from "../usage.js";

export interface MasterFlags {
  host: string;
  port: number;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  reflection: boolean;
  metricsPort?: number;
  httpPort?: number;
  dashboardActions?: boolean;
  shutdownGrace: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  tokenFile?: string;
  name?: string;
  cluster?: string[];
  clusterName?: string;
  clusterCreds?: string;
  clusterTokenFile?: string;
  clusterTlsCa?: string;
  clusterJobStore?: "auto" | "jetstream" | "memory";
  clusterPingInterval?: number;
}

/** The `cluster` option from the --cluster* flags; undefined without --cluster. */
function clusterOption(opts: MasterFlags): MasterClusterOptions | undefined {
  const { cluster, clusterName, clusterCreds, clusterTokenFile, clusterTlsCa, clusterJobStore, clusterPingInterval } = opts;
  if (cluster === undefined) {
    const stray = [
      ["--cluster-name", clusterName],
      ["--cluster-creds", clusterCreds],
      ["--cluster-token-file", clusterTokenFile],
      ["--cluster-tls-ca", clusterTlsCa],
      ["--cluster-job-store", clusterJobStore],
      ["--cluster-ping-interval", clusterPingInterval],
    ].find(([, value]) => value !== undefined);
    if (stray) throw new UsageError(`${stray[0]} needs --cluster`);
    return undefined;
  }
  if (clusterCreds !== undefined && clusterTokenFile !== undefined)
    throw new UsageError("--cluster-creds and --cluster-token-file exclude each other");
  const option: MasterClusterOptions = { servers: cluster };
  if (clusterName !== undefined) option.name = clusterName;
  if (clusterJobStore !== undefined) option.jobStore = clusterJobStore;
  if (clusterPingInterval !== undefined) option.pingInterval = clusterPingInterval;
  if (clusterCreds !== undefined) {
    readPem("--cluster-creds", clusterCreds); // fail now, as a usage error, not later in the background
    option.credsFile = clusterCreds;
  }
  if (clusterTokenFile !== undefined) {
    const token = readPem("--cluster-token-file", clusterTokenFile)!.toString("utf8").trim();
    if (token === "") throw new UsageError(`--cluster-token-file: ${clusterTokenFile} is empty (it must hold the NATS token)`);
    option.token = token;
  }
  if (clusterTlsCa !== undefined) option.tlsCa = readPem("--cluster-tls-ca", clusterTlsCa);
  return option;
}

/** `netsync master`: serves until SIGINT/SIGTERM. */
export async function runMaster(opts: MasterFlags): Promise<void> {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  if (opts.tlsClientCa !== undefined && opts.tlsCert === undefined) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
  const {
    tlsCert,
    tlsKey,
    tlsClientCa,
    tokenFile,
    cluster,
    clusterName,
    clusterCreds,
    clusterTokenFile,
    clusterTlsCa,
    clusterJobStore,
    clusterPingInterval,
    ...rest
  } = opts;
  let master: Master;
  try {
    master = new Master({
      ...rest,
      tls: tlsCert
        ? { cert: readPem("--tls-cert", tlsCert)!, key: readPem("--tls-key", tlsKey)!, clientCa: readPem("--tls-client-ca", tlsClientCa) }
        : undefined,
      token: resolveToken(tokenFile),
      cluster: clusterOption(opts),
    });
  } catch (e) {
    // The cluster's checks (cluster/options.ts) name the problem; from the CLI it is a usage error.
    if (e instanceof NetSyncError && e.code === Code.INVALID_ARGUMENT && e.message.startsWith("cluster:")) {
      throw new UsageError(`--cluster: ${e.message.slice("cluster: ".length)}`);
    }
    throw e;
  }
  // grpc-js prints its own line for a failed bind ("No address added out of
  // total 1 resolved") before it rejects; the rejection is reported below as
  // one sentence, so its lines go to our logger at debug.
  const grpcLog = getLogger("grpc");
  grpc.setLogger({ error: (...args: unknown[]) => grpcLog.debug(format(...args)) });
  await runUntilStopped(async () => {
    try {
      await master.listen();
    } catch (e) {
      throw explainListenError(e, `${opts.host}:${opts.port}`);
    }
    return () => master.close();
  });
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: "the address is already in use (another master? pick another --port, or stop it)",
  EACCES: "permission denied (ports below 1024 need privileges: pick another --port)",
  EADDRNOTAVAIL: "this machine has no such address (check --host)",
};

/**
 * A port that cannot be bound (gRPC, --metrics-port or --http-port) as one
 * sentence naming the address; grpc-js words it "No address added out of
 * total 1 resolved errors: [listen EADDRINUSE: address already in use …]".
 */
export function explainListenError(e: unknown, grpcAddress: string): unknown {
  const message = e instanceof Error ? e.message : String(e);
  const code = Object.keys(LISTEN_ERRORS).find((c) => message.includes(c));
  if (code === undefined) return e;
  // Node's message ends with the address it tried ("… 127.0.0.1:8080"); grpc-js's names it too.
  const address = message.match(new RegExp(`${code}[^\\]]*?\\s(\\[?[\\w.:]+\\]?:\\d+)`))?.[1] ?? grpcAddress;
  return new NetSyncError(`cannot listen on ${address}: ${LISTEN_ERRORS[code]}`, Code.UNAVAILABLE, { cause: e });
}
