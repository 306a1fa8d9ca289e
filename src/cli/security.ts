import { readFileSync } from "node:fs";
import { UsageError } from "./usage.js";

export const TOKEN_ENV = "NETSYNC_TOKEN";

export interface ClientSecurityFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

/** The usual reasons a file given by a flag cannot be read, in words (Node gives ENOENT, EACCES, …). */
const FILE_ERRORS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "it is a directory, not a file",
};

export function readPem(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // The code first, for a search (and test/server/auth.test.ts), then in words.
    const reason = code && FILE_ERRORS[code] ? `${code} (${FILE_ERRORS[code]})` : (e as Error).message;
    throw new UsageError(`${flag}: cannot read ${path}: ${reason}`);
  }
}

/** The bearer token: --token-file, else $NETSYNC_TOKEN, else none. */
export function resolveToken(tokenFile: string | undefined): string | undefined {
  const token = tokenFile !== undefined ? readPem("--token-file", tokenFile)!.toString("utf8").trim() : process.env[TOKEN_ENV];
  if (token === "")
    throw new UsageError(
      tokenFile !== undefined
        ? `--token-file: ${tokenFile} is empty (it must hold the token)`
        : `${TOKEN_ENV} is set but empty: set it to the token, or unset it`,
    );
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
