import { Master } from "../../master.js";
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
  shutdownGrace: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  tokenFile?: string;
}

/** `netsync master`: serves until SIGINT/SIGTERM. */
export async function runMaster(opts: MasterFlags): Promise<void> {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  if (opts.tlsClientCa !== undefined && opts.tlsCert === undefined) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
  const { tlsCert, tlsKey, tlsClientCa, tokenFile, ...rest } = opts;
  const master = new Master({
    ...rest,
    tls: tlsCert
      ? { cert: readPem("--tls-cert", tlsCert)!, key: readPem("--tls-key", tlsKey)!, clientCa: readPem("--tls-client-ca", tlsClientCa) }
      : undefined,
    token: resolveToken(tokenFile),
  });
  await runUntilStopped(async () => {
    await master.listen();
    return () => master.close();
  });
}
