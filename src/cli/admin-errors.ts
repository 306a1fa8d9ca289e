import { Code, codeName } from "../code.js";
import { NetSyncError } from "../errors.js";

/**
 * An admin call's failure as one sentence a person understands: what went
 * wrong, with which master, and what to check. grpc-js's own wording
 * ("No connection established. Last error: …") names neither the flag nor
 * the fix; the master's own details (e.g. 'no slave with id "x"') are kept.
 */
export function explainAdminError(e: unknown, master: string): NetSyncError {
  if (!(e instanceof NetSyncError)) return NetSyncError.from(e);
  const details = (e.cause as { details?: string } | undefined)?.details || e.message;
  const at = `the master at ${master}`;
  const say = (message: string) => new NetSyncError(message, e.code, { cause: e });
  switch (e.code) {
    case Code.UNAVAILABLE:
      if (/ECONNREFUSED/.test(details)) return say(`cannot reach ${at}: connection refused (is it running? check --master)`);
      if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(details))
        return say(`cannot reach ${at}: its host name does not resolve (check --master)`);
      if (/SSL|TLS|certificate|handshake|wrong version/i.test(details))
        return say(`cannot reach ${at}: the TLS handshake failed: ${tlsReason(details)} (does it serve TLS, and is --tls-ca its CA?)`);
      return say(`${at} is unavailable: ${details}`);
    case Code.DEADLINE_EXCEEDED:
      // A slave that did not reply in time is the master's own sentence; a silent master is grpc-js's.
      return say(/^slave /.test(details) ? details : `${at} did not answer in time (${details})`);
    case Code.NOT_FOUND:
      if (/^no slave /.test(details)) return say(`${details}: it is not connected to ${at}, nor to any other master of its cluster`);
      return say(`${at}: ${details}`);
    case Code.UNAUTHENTICATED:
      return say(`${at} refused this client (UNAUTHENTICATED): ${details} (give its token with --token-file or NETSYNC_TOKEN)`);
    case Code.PERMISSION_DENIED:
      return say(`${at} denied the call (PERMISSION_DENIED): ${details}`);
    case Code.INVALID_ARGUMENT:
      return say(`${at} refused the request: ${details}`);
    case Code.UNIMPLEMENTED:
      return say(`${at} does not serve this admin call (${details}): is it a NetSync master of this version?`);
    default:
      return say(`${at} answered ${codeName(e.code)}: ${details}`);
  }
}

/** OpenSSL's reason out of grpc-js's multi-line "No connection established. Last error: Error: 80…:SSL routines:…:wrong version number:…". */
function tlsReason(details: string): string {
  return (
    details.match(/SSL routines:[^:]*:([^:\n]+)/)?.[1] ??
    details.match(/(self[- ]signed certificate[^.\n]*|unable to verify[^.\n]*|certificate[^.\n]*)/i)?.[1] ??
    details.split("\n")[0]!
  );
}
