import * as http from "node:http";
import * as https from "node:https";
import type { ConsolaInstance } from "consola";
import { DEFAULTS } from "../defaults.js";
import { getLogger } from "../logger.js";
import { loadAssets } from "./assets.js";
import { FleetFeed } from "./fleet-feed.js";
import { type Auth, createAuth } from "./guard.js";
import type { DashboardMaster, MetricsSource } from "./port.js";
import { createRoutes } from "./routes.js";

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

/**
 * The master's web face, one node:http server: `/` the live dashboard (a
 * static page and its script, from the package), `/metrics`, `/api/slaves`
 * (JSON, selector, text filter, sort, paging), `/api/events` (Server-Sent
 * Events, batched by FleetFeed) and, with `actions`, POST `/api/send`. It
 * uses only the master's public API and does nothing until a request comes.
 *
 * This class is the lifecycle (listen, TLS, close) and the composition;
 * what the paths answer is routes.ts, who may ask is guard.ts.
 */
export class DashboardServer {
  private readonly log: ConsolaInstance;
  private readonly feed: FleetFeed;
  private readonly auth: Auth;
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
    this.auth = createAuth({ token: options.token, secure: options.tls !== undefined });
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
    const handler = createRoutes({
      master: this.master,
      feed: this.feed,
      auth: this.auth,
      host: this.host,
      assets: await loadAssets(),
      actions: this.#options.actions ?? false,
      metrics: this.#options.metrics,
      log: this.log,
    });
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
        `${this.auth.required ? " (token required: open /?token=… once)" : ""}${this.#options.actions ? " with actions enabled" : " (read-only)"}`,
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
}
