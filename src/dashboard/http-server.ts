import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import type { ConsolaInstance } from "consola";
import { Code } from "../code.js";
import { DASHBOARD_DEFAULTS, DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { getLogger } from "../logger.js";
import type { SlaveInfo } from "../model.js";
import { bearerToken, Secret } from "../server/auth.js";
import { FleetFeed } from "./fleet-feed.js";
import type { DashboardMaster, MetricsSource } from "./port.js";

export type { DashboardMaster, MetricsSource } from "./port.js";

export interface DashboardOptions {
  /** Port to listen on; 0 for any free one. */
  port: number;
  /** Address to bind; default 127.0.0.1. */
  host?: string;
  /** When set, the page and every route require it (cookie from /?token=…, or Authorization: Bearer). */
  token?: string;
  /** Enables POST /api/send (a command to one slave or a selection). Default off: read-only. */
  actions?: boolean;
  /** Serves GET /metrics from these metrics when given. */
  metrics?: MetricsSource;
  /** Serve HTTPS with this certificate, as the master's gRPC port does. */
  tls?: { cert: Buffer; key: Buffer };
  /** The master's closed-history size, to tell when "evictions in 5 minutes" is a lower bound. Default 1000. */
  historySize?: number;
  /** Shortest time between two snapshots pushed to viewers, ms. Default 1000. */
  batchMs?: number;
  /** Concurrent viewers (SSE streams) at most. Default 32. */
  maxViewers?: number;
  log?: ConsolaInstance;
}

/** The page's files: a top-level dashboard/ folder of the package, found from src/ (tsx) and dist/src/ alike. */
function assetDir(): string {
  for (const relative of ["../../dashboard/", "../../../dashboard/"]) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new NetSyncError("the dashboard's files (dashboard/index.html) are missing from the package", Code.INTERNAL);
}

const ASSETS: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/favicon.svg": { file: "favicon.svg", type: "image/svg+xml" },
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const COOKIE = "netsync_dashboard";
const MAX_BODY_BYTES = 64 * 1024;
const MAX_SELECTOR_LENGTH = 1024;

const SORT_KEYS = ["id", "labels", "peer", "connectedAt", "lastSeen", "rttMs", "pingsSent", "pongsReceived", "commandsSent"] as const;
type SortKey = (typeof SORT_KEYS)[number];

/** A slave as /api/slaves gives it: dates as Unix ms. */
export interface SlaveJson {
  id: string;
  labels: Readonly<Record<string, string>>;
  peer: string;
  connectedAt: number;
  lastSeen: number;
  rttMs: number | null;
  pingsSent: number;
  pongsReceived: number;
  commandsSent: number;
}

const slaveJson = (slave: SlaveInfo): SlaveJson => ({
  id: slave.id,
  labels: slave.labels,
  peer: slave.peer,
  connectedAt: slave.connectedAt.getTime(),
  lastSeen: slave.lastSeen.getTime(),
  rttMs: slave.rttMs ?? null,
  pingsSent: slave.pingsSent,
  pongsReceived: slave.pongsReceived,
  commandsSent: slave.commandsSent,
});

const formatLabels = (labels: Readonly<Record<string, string>>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

function sortKey(slave: SlaveInfo, key: SortKey): string | number {
  switch (key) {
    case "id":
      return slave.id;
    case "labels":
      return formatLabels(slave.labels);
    case "peer":
      return slave.peer;
    case "connectedAt":
      return slave.connectedAt.getTime();
    case "lastSeen":
      return slave.lastSeen.getTime();
    case "rttMs":
      return slave.rttMs ?? Number.POSITIVE_INFINITY;
    default:
      return slave[key];
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * The master's web face, one node:http server: `/` the live dashboard (a
 * static page and its script, from the package), `/metrics`, `/api/slaves`
 * (JSON, selector, text filter, sort, paging), `/api/events` (Server-Sent
 * Events, batched by FleetFeed) and, with `actions`, POST `/api/send`. It
 * uses only the master's public API and does nothing until a request comes.
 */
export class DashboardServer {
  private readonly log: ConsolaInstance;
  private readonly feed: FleetFeed;
  private readonly expectedToken: Secret | undefined;
  /** The session cookie's value: random per server, so the cookie never holds the token itself. */
  private readonly session = randomBytes(32).toString("base64url");
  private readonly sessionSecret = new Secret(this.session);
  private readonly assets = new Map<string, Buffer>();
  private server: http.Server | undefined;
  private boundPort = 0;

  /** Language-private: it holds the token. */
  readonly #options: DashboardOptions;

  constructor(
    private readonly master: DashboardMaster,
    options: DashboardOptions,
  ) {
    this.#options = options;
    this.log = options.log ?? getLogger("dashboard");
    this.expectedToken = options.token === undefined ? undefined : new Secret(options.token);
    this.feed = new FleetFeed(master, {
      actions: options.actions ?? false,
      batchMs: options.batchMs,
      maxViewers: options.maxViewers,
      historySize: options.historySize,
    });
  }

  /** The bound port, once listening. */
  get port(): number {
    return this.boundPort;
  }

  /** Viewers connected to /api/events now. */
  get viewers(): number {
    return this.feed.viewerCount;
  }

  /** Whether the feed's timer and listeners are running (only while someone watches). */
  get feedActive(): boolean {
    return this.feed.active;
  }

  private get host(): string {
    return this.#options.host ?? DEFAULTS.host;
  }

  async listen(): Promise<number> {
    const dir = assetDir();
    for (const { file } of Object.values(ASSETS)) this.assets.set(file, await readFile(`${dir}${file}`));
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    const server = this.#options.tls
      ? https.createServer({ cert: this.#options.tls.cert, key: this.#options.tls.key }, handler)
      : http.createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#options.port, this.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    this.boundPort = (server.address() as { port: number }).port;
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    this.log.info(
      `dashboard on ${this.#options.tls ? "https" : "http"}://${host}:${this.boundPort}/` +
        `${this.expectedToken ? " (token required: open /?token=… once)" : ""}${this.#options.actions ? " with actions enabled" : " (read-only)"}`,
    );
    return this.boundPort;
  }

  async close(): Promise<void> {
    this.feed.close();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // --- requests --------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    res.setHeader("cache-control", "no-store");
    try {
      this.route(req, res);
    } catch (err) {
      this.fail(res, err);
    }
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.message }, err.headers);
    } else if (err instanceof NetSyncError && err.code === Code.INVALID_ARGUMENT) {
      sendJson(res, 400, { error: err.message, code: "INVALID_ARGUMENT" });
    } else {
      this.log.error(`dashboard request failed: ${NetSyncError.from(err).message}`);
      sendJson(res, 500, { error: "internal error" });
    }
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.checkHost(req);
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    const path = url.pathname;
    if (path === "/api/send") {
      if (req.method !== "POST") throw new HttpError(405, "POST only", { allow: "POST" });
      if (!this.#options.actions) throw new HttpError(403, "read-only dashboard: the master was started without dashboard actions");
      this.requireAuth(req);
      this.checkAction(req);
      this.send(req, res);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "GET only", { allow: "GET, HEAD" });
    if (path === "/" && url.searchParams.has("token")) {
      this.login(url.searchParams.get("token") ?? "", res);
      return;
    }
    if (!this.authorized(req)) {
      if (path === "/") {
        res.writeHead(401, { "content-type": "text/plain; charset=utf-8" });
        res.end(
          "401 Unauthorized: this master requires its token.\n" +
            "Open /?token=YOUR_TOKEN once (it sets a session cookie and takes you to the dashboard),\n" +
            "or send Authorization: Bearer YOUR_TOKEN.\n",
        );
        return;
      }
      throw new HttpError(401, "missing or wrong token", { "www-authenticate": 'Bearer realm="netsync"' });
    }
    const asset = ASSETS[path];
    if (asset) {
      res.setHeader("cache-control", "no-cache");
      res.writeHead(200, { "content-type": asset.type });
      res.end(req.method === "HEAD" ? undefined : this.assets.get(asset.file));
      return;
    }
    switch (path) {
      case "/api/slaves":
        sendJson(res, 200, this.slaves(url.searchParams));
        return;
      case "/api/summary":
        sendJson(res, 200, this.feed.summary());
        return;
      case "/api/events":
        this.events(res);
        return;
      case "/metrics":
        this.metrics(res);
        return;
      default:
        throw new HttpError(404, "not found");
    }
  }

  /**
   * On a loopback bind, the Host header must name a loopback address or the
   * bound host: a DNS-rebinding page (an attacker's name resolving to
   * 127.0.0.1) is refused before it can read the API.
   */
  private checkHost(req: http.IncomingMessage): void {
    if (!isLoopback(this.host)) return;
    const header = req.headers.host ?? "";
    const name = header.startsWith("[") ? header.slice(1, header.indexOf("]")) : header.split(":")[0]!;
    if (name === "localhost" || name === this.host || isLoopback(name)) return;
    throw new HttpError(421, `unexpected Host "${header}"`);
  }

  private tokenMatches(presented: string): boolean {
    return this.expectedToken?.matches(presented) ?? false;
  }

  private authorized(req: http.IncomingMessage): boolean {
    if (!this.expectedToken) return true;
    const bearer = bearerToken(req.headers.authorization);
    if (bearer !== undefined && this.tokenMatches(bearer)) return true;
    const cookie = parseCookies(req.headers.cookie)[COOKIE];
    return cookie !== undefined && this.sessionSecret.matches(cookie);
  }

  private requireAuth(req: http.IncomingMessage): void {
    if (!this.authorized(req)) throw new HttpError(401, "missing or wrong token", { "www-authenticate": 'Bearer realm="netsync"' });
  }

  /** /?token=…: a right token sets the session cookie and redirects to /, out of the address bar and history. */
  private login(token: string, res: http.ServerResponse): void {
    if (!this.expectedToken) {
      res.writeHead(303, { location: "/" }).end();
      return;
    }
    if (!this.tokenMatches(token)) throw new HttpError(401, "wrong token");
    const secure = this.#options.tls ? "; Secure" : "";
    res.writeHead(303, { location: "/", "set-cookie": `${COOKIE}=${this.session}; Path=/; HttpOnly; SameSite=Strict${secure}` }).end();
  }

  /**
   * A state-changing request must come from the page itself: it carries a
   * custom header, which a cross-site form cannot send and a cross-site
   * fetch cannot without a CORS preflight this server never grants; and
   * browsers' Origin / Sec-Fetch-Site, when present, must say same origin.
   */
  private checkAction(req: http.IncomingMessage): void {
    if (req.headers["x-netsync-action"] !== "1") throw new HttpError(403, "missing X-NetSync-Action: 1");
    const site = req.headers["sec-fetch-site"];
    if (site !== undefined && site !== "same-origin" && site !== "none") throw new HttpError(403, "cross-site request refused");
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== "null") {
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        throw new HttpError(403, "bad Origin");
      }
      if (host !== req.headers.host) throw new HttpError(403, "cross-origin request refused");
    }
    if (!(req.headers["content-type"] ?? "").startsWith("application/json")) throw new HttpError(415, "send application/json");
  }

  private slaves(params: URLSearchParams): unknown {
    const selector = params.get("selector")?.trim() ?? "";
    if (selector.length > MAX_SELECTOR_LENGTH) throw new HttpError(400, `selector longer than ${MAX_SELECTOR_LENGTH} characters`);
    const sort = (params.get("sort") ?? "id") as SortKey;
    if (!SORT_KEYS.includes(sort)) throw new HttpError(400, `sort must be one of ${SORT_KEYS.join(", ")}`);
    const descending = params.get("order") === "desc";
    const offset = integerParam(params, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
    const limit = integerParam(params, "limit", DASHBOARD_DEFAULTS.pageSize, 1, DASHBOARD_DEFAULTS.maxPageSize);
    const text = (params.get("q") ?? "").trim().toLowerCase();

    const all = selector ? this.master.slaves({ selector }) : this.feed.snapshot();
    const total = selector ? this.feed.snapshot().length : all.length;
    const matched = text ? all.filter((slave) => matchesText(slave, text)) : all.slice();
    const direction = descending ? -1 : 1;
    if (sort === "id") matched.sort((a, b) => (a.id < b.id ? -direction : a.id > b.id ? direction : 0));
    else {
      const keyed = matched.map((slave) => ({ slave, key: sortKey(slave, sort) }));
      keyed.sort((a, b) => (a.key < b.key ? -direction : a.key > b.key ? direction : a.slave.id < b.slave.id ? -1 : 1));
      for (let i = 0; i < keyed.length; i++) matched[i] = keyed[i]!.slave;
    }
    return {
      master: this.master.id,
      now: Date.now(),
      total,
      matched: matched.length,
      offset,
      limit,
      slaves: matched.slice(offset, offset + limit).map(slaveJson),
    };
  }

  private events(res: http.ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    if (!this.feed.add(res)) {
      res.end("event: full\ndata: {}\n\n");
    }
  }

  private metrics(res: http.ServerResponse): void {
    const metrics = this.#options.metrics;
    if (!metrics) throw new HttpError(404, "metrics are off");
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      (err: unknown) => this.fail(res, err),
    );
  }

  private send(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        this.fail(res, new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      try {
        if (size > MAX_BODY_BYTES) return;
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          throw new HttpError(400, "body is not JSON");
        }
        const { data, to, selector } = (body ?? {}) as { data?: unknown; to?: unknown; selector?: unknown };
        if (typeof data !== "string") throw new HttpError(400, '"data" must be a string');
        if ((to === undefined) === (selector === undefined)) throw new HttpError(400, 'give either "to" (a slave id) or "selector"');
        const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
        if (to !== undefined) {
          if (typeof to !== "string") throw new HttpError(400, '"to" must be a string');
          const sent = this.master.send(to, data);
          this.log.info(`dashboard (${who}): command to slave ${JSON.stringify(to)}: ${sent ? "sent" : "not sent"}`);
          if (sent === 0) throw new HttpError(404, `no slave with id ${JSON.stringify(to)} is connected, or it is not reading`);
          sendJson(res, 200, { sent });
          return;
        }
        if (typeof selector !== "string" || selector.length > MAX_SELECTOR_LENGTH) throw new HttpError(400, '"selector" must be a string');
        const sent = this.master.broadcast(data, { selector });
        this.log.info(`dashboard (${who}): command to selector ${JSON.stringify(selector)}: sent to ${sent}`);
        sendJson(res, 200, { sent });
      } catch (err) {
        this.fail(res, err);
      }
    });
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(res.req.method === "HEAD" ? undefined : text);
}

function integerParam(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = params.get(name);
  if (raw === null || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new HttpError(400, `${name} must be an integer from ${min} to ${max}`);
  return value;
}

function matchesText(slave: SlaveInfo, text: string): boolean {
  if (slave.id.toLowerCase().includes(text) || slave.peer.toLowerCase().includes(text)) return true;
  for (const [key, value] of Object.entries(slave.labels)) if (`${key}=${value}`.toLowerCase().includes(text)) return true;
  return false;
}

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  if (!header) return cookies;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) cookies[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return cookies;
}

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}
