import { createHash, timingSafeEqual, X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { ConsolaInstance } from "consola";
import { Code } from "../code.js";
import { DEFAULTS } from "../defaults.js";
import { SLAVE_ID_METADATA_KEY } from "../wire.js";
import { RefusalLog } from "./refusal-log.js";

/** TLS material of a master, as PEM. */
export interface MasterTlsOptions {
  cert: Buffer;
  key: Buffer;
  /** CA that client certificates must chain to; when set, every slave needs one (mTLS). */
  clientCa?: Buffer;
}

/** TLS material of a slave or admin client, as PEM. */
export interface ClientTlsOptions {
  /** CA the master's certificate must chain to; default the system's. */
  ca?: Buffer;
  /** Client certificate and key, for a master that requires mTLS. */
  cert?: Buffer;
  key?: Buffer;
}

/**
 * A certificate provider that hands out fixed PEM buffers. It answers on the
 * next tick: grpc-js registers its server's watcher only after adding the
 * listener, so a synchronous answer would never reach the server.
 */
class StaticCertificates implements grpc.experimental.CertificateProvider {
  constructor(
    private readonly ca: Buffer | null,
    private readonly identity: { certificate: Buffer; privateKey: Buffer } | null,
  ) {}
  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    queueMicrotask(() => listener(this.ca ? { caCertificate: this.ca } : null));
  }
  removeCaCertificateListener(): void {}
  addIdentityCertificateListener(listener: grpc.experimental.IdentityCertificateUpdateListener): void {
    queueMicrotask(() => listener(this.identity));
  }
  removeIdentityCertificateListener(): void {}
}

export function serverCredentials(tls: MasterTlsOptions | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (!tls.clientCa) return grpc.ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false);
  // Ask for a client certificate but let the handshake succeed without a good one, so
  // the peer gets UNAUTHENTICATED with a reason instead of a bare TLS failure.
  // grpc-js names its parameters (ca, identity) but uses them as (identity, ca).
  return grpc.experimental.createCertificateProviderServerCredentials(
    new StaticCertificates(null, { certificate: tls.cert, privateKey: tls.key }),
    new StaticCertificates(tls.clientCa, null),
    false,
  );
}

export function clientCredentials(tls: ClientTlsOptions | undefined): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null);
}

/** Metadata carrying a bearer token, for slaves and admin clients. */
export function tokenMetadata(token: string | undefined, metadata = new grpc.Metadata()): grpc.Metadata {
  if (token) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * A secret (a bearer token, a session id) kept only as its SHA-256 digest
 * and compared in constant time: it cannot be read back or logged, and how
 * long a wrong guess takes says nothing about the right one.
 */
export class Secret {
  readonly #digest: Buffer;

  constructor(secret: string) {
    this.#digest = digest(secret);
  }

  matches(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.#digest);
  }
}

/** The token of an `authorization: Bearer …` header value, if that is what it holds. */
export function bearerToken(header: unknown): string | undefined {
  return typeof header === "string" ? /^Bearer (.+)$/i.exec(header)?.[1] : undefined;
}

/** The identity a verified client certificate vouches for: its first DNS SAN, else its CN. */
export function certificateIdentity(raw: Buffer): string | undefined {
  const cert = new X509Certificate(raw);
  const san = cert.subjectAltName?.split(", ").find((entry) => entry.startsWith("DNS:"));
  if (san) return san.slice(4);
  return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
}

export interface AuthOptions {
  token: string | undefined;
  requireClientCert: boolean;
  /** Method paths under these prefixes need credentials; others (health, reflection) stay open. */
  protectedPrefixes: readonly string[];
  log: ConsolaInstance;
}

/**
 * A server interceptor that refuses a call with UNAUTHENTICATED before any
 * handler sees it: missing or wrong bearer token (compared in constant time,
 * never logged), missing or untrusted client certificate, or a
 * `netsync-slave-id` that disagrees with the certificate. With mTLS the
 * certificate's identity is written into the metadata as the slave id.
 */
export function authInterceptor(options: AuthOptions): grpc.ServerInterceptor {
  const expected = options.token === undefined ? undefined : new Secret(options.token);
  // A slave with a wrong token retries; one line per host per interval says so, with a count.
  const refusals = new RefusalLog(options.log, DEFAULTS.refusalLogInterval, DEFAULTS.refusalLogPeers);
  const refuse = (call: grpc.ServerInterceptingCallInterface, peer: string, path: string, reason: string) => {
    refusals.refused(peer, path, reason);
    call.sendStatus({ code: Code.UNAUTHENTICATED, details: reason, metadata: null });
  };
  return (method, call) => {
    if (!options.protectedPrefixes.some((prefix) => method.path.startsWith(prefix))) return new grpc.ServerInterceptingCall(call);
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const peer = call.getPeer();
        if (expected) {
          const token = bearerToken(metadata.get("authorization")[0]);
          if (token === undefined) return refuse(call, peer, method.path, "missing bearer token");
          if (!expected.matches(token)) return refuse(call, peer, method.path, "wrong bearer token");
          // Checked; handlers have no use for it, so the call does not carry the secret any further.
          metadata.remove("authorization");
        }
        if (options.requireClientCert) {
          const certificate = call.getAuthContext().sslPeerCertificate;
          if (!certificate) return refuse(call, peer, method.path, "no trusted client certificate");
          const identity = certificateIdentity(certificate.raw);
          if (!identity) return refuse(call, peer, method.path, "client certificate names no CN or DNS SAN");
          const claimed = metadata.get(SLAVE_ID_METADATA_KEY)[0];
          if (claimed !== undefined && claimed !== identity) {
            return refuse(
              call,
              peer,
              method.path,
              `${SLAVE_ID_METADATA_KEY} "${String(claimed)}" disagrees with the certificate ("${identity}")`,
            );
          }
          metadata.set(SLAVE_ID_METADATA_KEY, identity);
        }
        next(metadata);
      })
      .build();
    const responder = new grpc.ResponderBuilder().withStart((next) => next(listener)).build();
    return new grpc.ServerInterceptingCall(call, responder);
  };
}
