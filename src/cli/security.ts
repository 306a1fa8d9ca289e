import { readFileSync } from "node:fs";
import { UsageError } from "./usage.js";

export const TOKEN_ENV = "NETSYNC_TOKEN";

export interface ClientSecurityFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

export function readPem(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The bearer token: --token-file, else $NETSYNC_TOKEN, else none. */
export function resolveToken(tokenFile: string | undefined): string | undefined {
  const token = tokenFile !== undefined ? readPem("--token-file", tokenFile)!.toString("utf8").trim() : process.env[TOKEN_ENV];
  if (token === "") throw new UsageError(tokenFile !== undefined ? "--token-file: the file is empty" : `${TOKEN_ENV} is set but empty`);
  return token;
}

/** TLS material and token of a slave or admin client, from its flags. */
export function clientSecurity(flags: ClientSecurityFlags) {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  const tls =
    flags.tlsCa !== undefined || flags.tlsCert !== undefined
      ? { ca: readPem("--tls-ca", flags.tlsCa), cert: readPem("--tls-cert", flags.tlsCert), key: readPem("--tls-key", flags.tlsKey) }
      : undefined;
  return { tls, token: resolveToken(flags.tokenFile) };
}
