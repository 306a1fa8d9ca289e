import type { IncomingMessage, ServerResponse } from "node:http";
import type { ConsolaInstance } from "consola";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import type { Asset } from "./assets.js";
import type { FleetFeed } from "./fleet-feed.js";
import { type Auth, checkAction, checkHost, unauthorized } from "./guard.js";
import { HttpError, readJsonBody, SECURITY_HEADERS, sendJson } from "./http.js";
import type { DashboardMaster, MetricsSource } from "./port.js";
import { MAX_SELECTOR_LENGTH, pagedQuery, parseSlavesQuery, querySlaves, slaveJson } from "./slaves-query.js";

/*
 * What each path answers, and which guards it passes first. The routes hold
 * no state of their own: the feed, the auth and the page's files are made
 * by the server and handed in, so this file is only the mapping from a
 * request to an answer.
 */

/** Largest POST /api/send body. */
const MAX_BODY_BYTES = 64 * 1024;

export interface RoutesContext {
  master: DashboardMaster;
  feed: FleetFeed;
  auth: Auth;
  /** The address the server is bound to, for the Host check. */
  host: string;
  assets: ReadonlyMap<string, Asset>;
  /** Whether POST /api/send is on. */
  actions: boolean;
  metrics: MetricsSource | undefined;
  log: ConsolaInstance;
}

/**
 * The request handler of the dashboard: `/` and its files, `/api/slaves`,
 * `/api/summary`, `/api/events` (SSE), `/metrics` and, with actions,
 * POST `/api/send`. Every answer gets the security headers and no-store; an
 * HttpError is answered as its status, INVALID_ARGUMENT as 400, anything
 * else as 500 and logged.
 */
export function createRoutes(ctx: RoutesContext): (req: IncomingMessage, res: ServerResponse) => void {
  const { master, feed, auth, log } = ctx;

  function fail(res: ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (err instanceof HttpError) {
      sendJson(res, err.status, { error: err.message }, err.headers);
      return;
    }
    // By its code, not its class: under some loaders (tsx in the tests) the cluster module, loaded with import(), has its own copy of errors.ts.
    const error = NetSyncError.from(err);
    if (error.code === Code.INVALID_ARGUMENT) {
      sendJson(res, 400, { error: error.message, code: "INVALID_ARGUMENT" });
    } else {
      log.error(`dashboard request failed: ${error.message}`);
      sendJson(res, 500, { error: "internal error" });
    }
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    checkHost(ctx.host, req.headers.host);
    const url = new URL(req.url ?? "/", "http://dashboard.invalid");
    const path = url.pathname;
    if (path === "/api/send") {
      if (req.method !== "POST") throw new HttpError(405, "POST only", { allow: "POST" });
      if (!ctx.actions) throw new HttpError(403, "read-only dashboard: the master was started without dashboard actions");
      auth.require(req.headers);
      checkAction(req.headers);
      readJsonBody(
        req,
        MAX_BODY_BYTES,
        (body) => send(req, res, body),
        (err) => fail(res, err),
      );
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "GET only", { allow: "GET, HEAD" });
    if (path === "/" && url.searchParams.has("token")) {
      // The session cookie, then a redirect to /: the token leaves the address bar and the history.
      const cookie = auth.login(url.searchParams.get("token") ?? "");
      res.writeHead(303, cookie === undefined ? { location: "/" } : { location: "/", "set-cookie": cookie }).end();
      return;
    }
    if (!auth.authorized(req.headers)) {
      if (path === "/") {
        // A person at a browser gets told what to do, not a JSON error.
        res.writeHead(401, { "content-type": "text/plain; charset=utf-8" });
        res.end(
          "401 Unauthorized: this master requires its token.\n" +
            "Open /?token=YOUR_TOKEN once (it sets a session cookie and takes you to the dashboard),\n" +
            "or send Authorization: Bearer YOUR_TOKEN.\n",
        );
        return;
      }
      throw unauthorized();
    }
    const asset = ctx.assets.get(path);
    if (asset) {
      // The page's files may be cached but must be revalidated: an upgrade shows at the next load.
      res.setHeader("cache-control", "no-cache");
      res.writeHead(200, { "content-type": asset.type });
      res.end(req.method === "HEAD" ? undefined : asset.body);
      return;
    }
    switch (path) {
      case "/api/slaves":
        answer(res, slaves(url.searchParams));
        return;
      case "/api/summary":
        answer(res, feed.summary());
        return;
      case "/api/events":
        events(res);
        return;
      case "/metrics":
        metrics(res);
        return;
      default:
        throw new HttpError(404, "not found");
    }
  }

  /** Sends what `body` resolves to as JSON, or its failure as fail() answers it. */
  function answer(res: ServerResponse, body: Promise<unknown>): void {
    body.then(
      (value) => sendJson(res, 200, value),
      (err: unknown) => fail(res, err),
    );
  }

  /**
   * In a cluster, every master's slaves (those that answered: `unanswered`
   * names the others); else this master's. A cluster's table by id (the
   * default) is one page of the fleet-wide listing, `after` its token: each
   * master answers only its next slice, so it costs the same at any fleet
   * size; `nextPageToken` goes on, `matched` is null with a selector (not
   * counted). Any other sort, or text, needs every slave: a fleet-wide listing.
   */
  async function slaves(params: URLSearchParams): Promise<unknown> {
    const query = parseSlavesQuery(params);
    if (feed.cluster && pagedQuery(query)) {
      const page = await feed.page(query.selector, query.limit, query.after);
      const total = page.masters.reduce((sum, m) => sum + m.slavesHeld, 0);
      return {
        master: master.id,
        cluster: true,
        now: Date.now(),
        total,
        matched: query.selector ? null : total,
        offset: query.offset,
        limit: query.limit,
        unanswered: page.unanswered,
        slaves: page.slaves.map(slaveJson),
        paged: true,
        nextPageToken: page.nextPageToken,
      };
    }
    // The feed's snapshot is shared with the tick that preceded this fetch; a selector asks the master (every master, in a cluster).
    const snapshot = await feed.snapshot();
    const selected = query.selector ? await feed.select(query.selector) : snapshot;
    const page = querySlaves(selected.slaves, query);
    return {
      master: master.id,
      cluster: snapshot.cluster,
      now: Date.now(),
      total: snapshot.slaves.length,
      matched: page.matched,
      offset: query.offset,
      limit: query.limit,
      unanswered: selected.unanswered,
      slaves: page.slaves.map(slaveJson),
    };
  }

  function events(res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    if (!feed.add(res)) {
      res.end("event: full\ndata: {}\n\n");
    }
  }

  function metrics(res: ServerResponse): void {
    const source = ctx.metrics;
    if (!source) throw new HttpError(404, "metrics are off");
    source.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": source.registry.contentType }).end(text),
      (err: unknown) => fail(res, err),
    );
  }

  /** POST /api/send: `{ data, to }` to one slave or `{ data, selector }` to a selection; logged with who asked. */
  function send(req: IncomingMessage, res: ServerResponse, body: unknown): void {
    const { data, to, selector } = (body ?? {}) as { data?: unknown; to?: unknown; selector?: unknown };
    if (typeof data !== "string") throw new HttpError(400, '"data" must be a string');
    if ((to === undefined) === (selector === undefined)) throw new HttpError(400, 'give either "to" (a slave id) or "selector"');
    const who = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    if (to !== undefined) {
      if (typeof to !== "string") throw new HttpError(400, '"to" must be a string');
      const sent = master.send(to, data);
      log.info(`dashboard (${who}): command to slave ${JSON.stringify(to)}: ${sent ? "sent" : "not sent"}`);
      if (sent === 0) throw new HttpError(404, `no slave with id ${JSON.stringify(to)} is connected, or it is not reading`);
      sendJson(res, 200, { sent });
      return;
    }
    if (typeof selector !== "string" || selector.length > MAX_SELECTOR_LENGTH) throw new HttpError(400, '"selector" must be a string');
    const sent = master.broadcast(data, { selector });
    log.info(`dashboard (${who}): command to selector ${JSON.stringify(selector)}: sent to ${sent}`);
    sendJson(res, 200, { sent });
  }

  return (req, res) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    res.setHeader("cache-control", "no-store");
    try {
      route(req, res);
    } catch (err) {
      fail(res, err);
    }
  };
}
