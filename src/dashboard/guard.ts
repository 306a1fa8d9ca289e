import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { isIP } from "node:net";
import { bearerToken, Secret } from "../server/auth.js";
import { HttpError, parseCookies } from "./http.js";

/*
 * Who may use the dashboard, decided from a request's headers alone: the
 * Host check (DNS rebinding), the token or its session cookie, and the
 * same-origin proof a state-changing request must carry (CSRF). Pure
 * functions plus one small factory that holds the secrets, so each rule can
 * be tested without a server.
 */

/** The session cookie's name. */
export const SESSION_COOKIE = "netsync_dashboard";

/** The 401 of a request without the token or the session cookie. */
export const unauthorized = (): HttpError => new HttpError(401, "missing or wrong token", { "www-authenticate": 'Bearer realm="netsync"' });

/** Whether `host` (a name or an address, no port) is this machine's loopback. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

/** The host part of a Host header: "[::1]:8080" is "::1", "localhost:80" is "localhost". */
export function hostName(header: string): string {
  return header.startsWith("[") ? header.slice(1, header.indexOf("]")) : header.split(":")[0]!;
}

/**
 * On a loopback bind, the Host header must name a loopback address or the
 * bound host: a DNS-rebinding page (an attacker's name resolving to
 * 127.0.0.1) is refused (421) before it can read the API. A server bound to
 * another address is reached by whatever name the network gives it, so any
 * Host is taken there.
 */
export function checkHost(boundHost: string, header: string | undefined): void {
  if (!isLoopback(boundHost)) return;
  const name = hostName(header ?? "");
  if (name === "localhost" || name === boundHost || isLoopback(name)) return;
  throw new HttpError(421, `unexpected Host "${header ?? ""}"`);
}

/**
 * A state-changing request must come from the page itself: it carries a
 * custom header, which a cross-site form cannot send and a cross-site
 * fetch cannot without a CORS preflight this server never grants; and
 * browsers' Origin / Sec-Fetch-Site, when present, must say same origin.
 * Throws 403 (or 415 for a body that is not declared JSON).
 */
export function checkAction(headers: IncomingHttpHeaders): void {
  if (headers["x-netsync-action"] !== "1") throw new HttpError(403, "missing X-NetSync-Action: 1");
  const site = headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") throw new HttpError(403, "cross-site request refused");
  const origin = headers.origin;
  if (origin !== undefined && origin !== "null") {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new HttpError(403, "bad Origin");
    }
    if (host !== headers.host) throw new HttpError(403, "cross-origin request refused");
  }
  if (!(headers["content-type"] ?? "").startsWith("application/json")) throw new HttpError(415, "send application/json");
}

/** The token check of one server: it holds the token's digest and its own session, nothing else. */
export interface Auth {
  /** Whether a token is configured at all; without one every request is authorized. */
  readonly required: boolean;
  /** Whether the request shows the token (Authorization: Bearer) or this server's session cookie. */
  authorized(headers: IncomingHttpHeaders): boolean;
  /** authorized(), or a 401 with WWW-Authenticate. */
  require(headers: IncomingHttpHeaders): void;
  /**
   * /?token=…: the Set-Cookie value that starts a session for the right
   * token; a 401 for a wrong one; undefined when no token is configured.
   */
  login(token: string): string | undefined;
}

/**
 * The session cookie's value is random per server, so the cookie never
 * holds the token itself (nor lets a stolen cookie outlive a restart).
 * `secure` marks the cookie Secure: set it when serving HTTPS.
 */
export function createAuth(options: { token?: string; secure?: boolean }): Auth {
  const expected = options.token === undefined ? undefined : new Secret(options.token);
  const session = randomBytes(32).toString("base64url");
  const sessionSecret = new Secret(session);
  const cookie = `${SESSION_COOKIE}=${session}; Path=/; HttpOnly; SameSite=Strict${options.secure ? "; Secure" : ""}`;

  const authorized = (headers: IncomingHttpHeaders): boolean => {
    if (!expected) return true;
    const bearer = bearerToken(headers.authorization);
    if (bearer !== undefined && expected.matches(bearer)) return true;
    const presented = parseCookies(headers.cookie)[SESSION_COOKIE];
    return presented !== undefined && sessionSecret.matches(presented);
  };

  return {
    required: expected !== undefined,
    authorized,
    require(headers) {
      if (!authorized(headers)) throw unauthorized();
    },
    login(token) {
      if (!expected) return undefined;
      if (!expected.matches(token)) throw new HttpError(401, "wrong token");
      return cookie;
    },
  };
}
