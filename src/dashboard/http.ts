import type { IncomingMessage, ServerResponse } from "node:http";

/*
 * The HTTP helpers every part of the dashboard shares: an error that carries
 * its status, the headers every answer gets, JSON in and out, cookies. No
 * state and nothing dashboard-specific, so the guard, the query and the
 * routes can all use them without using each other.
 */

/** A refusal with its HTTP status: the routes answer it as `{ error }` JSON with these headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The page loads only its own files and connects only to its own origin:
 * even an injected string could run no script and reach no other server.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Set on every answer, errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

/** Answers `body` as JSON (headers only for HEAD). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

/**
 * Reads a JSON request body of at most `maxBytes` and hands it to `onBody`;
 * anything wrong (too large: 413, not JSON: 400, or what `onBody` throws)
 * goes to `onError`. Callbacks rather than a promise for the 413: the
 * refusal is written before the request is destroyed, in the same turn, so
 * it still goes out and the rest of the body is never read.
 */
export function readJsonBody(
  req: IncomingMessage,
  maxBytes: number,
  onBody: (body: unknown) => void,
  onError: (err: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) {
      onError(new HttpError(413, `body larger than ${maxBytes} bytes`));
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > maxBytes) return;
    try {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        throw new HttpError(400, "body is not JSON");
      }
      onBody(body);
    } catch (err) {
      onError(err);
    }
  });
}

/** The cookies of a Cookie header, by name (values as sent, not decoded). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  if (!header) return cookies;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) cookies[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return cookies;
}
