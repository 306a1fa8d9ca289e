// The dashboard's HTTP side without a browser: headers, auth, the API, the
// SSE feed's cost structure (nothing runs while nobody watches) and the
// page's script never assigning HTML.

import { readFileSync } from "node:fs";
import * as http from "node:http";
import { expect } from "chai";
import { cleanup, waitFor } from "../helpers.js";
import { startDashboard, startTolerantSlave } from "./server.js";

/** A GET with raw headers (fetch cannot set Host). */
function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on("error", reject);
  });
}

/** Opens /api/events and collects its events until close(). */
function sse(url: string, headers: Record<string, string> = {}) {
  const events: { event: string; data: unknown }[] = [];
  let buffer = "";
  const req = http.get(`${url}api/events`, { headers }, (res) => {
    res.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1];
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
        end = buffer.indexOf("\n\n");
      }
    });
  });
  req.on("error", () => {});
  return { events, close: () => req.destroy() };
}

describe("dashboard HTTP server", () => {
  // Inside the describe: at the top of the file it would be a root hook, run after every test of the whole suite,
  // closing what other suites keep across their tests (the paced fan-out's shared fleet).
  afterEach(cleanup);

  it("sends a strict CSP, nosniff and no-store on the page and the API", async () => {
    const { url } = await startDashboard();
    for (const path of ["", "api/slaves", "app.js"]) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).to.equal(200);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).to.include("default-src 'none'").and.include("script-src 'self'").and.include("frame-ancestors 'none'");
      expect(csp).not.to.include("unsafe-inline");
      expect(res.headers.get("x-content-type-options")).to.equal("nosniff");
    }
    expect((await fetch(`${url}api/slaves`)).headers.get("cache-control")).to.equal("no-store");
  });

  it("lists slaves with labels, filters them by selector and text, sorts and pages, and refuses a bad selector", async () => {
    const { master, url } = await startDashboard();
    await startTolerantSlave(master.address, { id: "a", labels: { region: "eu", role: "db" } });
    await startTolerantSlave(master.address, { id: "b", labels: { region: "eu", role: "web" } });
    await startTolerantSlave(master.address, { id: "c", labels: { region: "us" } });
    const list = async (query: string) =>
      (await (await fetch(`${url}api/slaves?${query}`)).json()) as {
        matched: number;
        total: number;
        slaves: { id: string; labels: Record<string, string> }[];
      };
    const all = await list("");
    expect(all.slaves.map((s) => s.id)).to.deep.equal(["a", "b", "c"]);
    expect(all.slaves[0]!.labels).to.deep.equal({ region: "eu", role: "db" });
    expect((await list("selector=region%3Deu,role!%3Ddb")).slaves.map((s) => s.id)).to.deep.equal(["b"]);
    expect((await list("selector=region+in+(us)")).slaves.map((s) => s.id)).to.deep.equal(["c"]);
    expect((await list("q=WEB")).slaves.map((s) => s.id)).to.deep.equal(["b"]);
    expect((await list("sort=id&order=desc")).slaves.map((s) => s.id)).to.deep.equal(["c", "b", "a"]);
    const page = await list("limit=2&offset=2");
    expect(page).to.include({ matched: 3, total: 3 });
    expect(page.slaves.map((s) => s.id)).to.deep.equal(["c"]);
    const bad = await fetch(`${url}api/slaves?selector=${encodeURIComponent("region in (eu")}`);
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { code: string }).code).to.equal("INVALID_ARGUMENT");
    expect((await fetch(`${url}api/slaves?limit=5000`)).status).to.equal(400);
    expect((await fetch(`${url}api/slaves?sort=nope`)).status).to.equal(400);
  });

  it("does nothing while nobody watches: no master watch, no timer; both come and go with the first and last viewer", async () => {
    const { master, server, url } = await startDashboard();
    const listeners = () => master.watcherCount;
    const before = listeners();
    await startTolerantSlave(master.address, { id: "x" });
    expect(server.feedActive).to.equal(false);
    expect(listeners()).to.equal(before);

    const one = sse(url);
    const two = sse(url);
    await waitFor(() => server.viewers === 2, 2_000, "two viewers");
    expect(server.feedActive).to.equal(true);
    expect(listeners()).to.equal(before + 1);
    await waitFor(() => one.events.some((e) => e.event === "tick"), 2_500, "a tick");
    const hello = one.events.find((e) => e.event === "hello")!.data as { connected: number; master: string };
    expect(hello).to.include({ connected: 1, master: master.id });

    one.close();
    await waitFor(() => server.viewers === 1, 2_000, "one viewer left");
    expect(server.feedActive).to.equal(true);
    two.close();
    await waitFor(() => server.viewers === 0, 2_000, "no viewer left");
    expect(server.feedActive).to.equal(false);
    expect(listeners()).to.equal(before);
  });

  it("pushes connects and disconnects to viewers, batched", async () => {
    const { master, server, url } = await startDashboard();
    const viewer = sse(url);
    await waitFor(() => server.viewers === 1, 2_000, "a viewer");
    const slave = await startTolerantSlave(master.address, { id: "feed-1" });
    await slave.close();
    await waitFor(
      () => viewer.events.some((e) => e.event === "feed" && JSON.stringify(e.data).includes('"disconnected"')),
      2_000,
      "the disconnect in the feed",
    );
    const kinds = viewer.events
      .filter((e) => e.event === "feed")
      .flatMap((e) => (e.data as { events: { kind: string; id: string }[] }).events);
    expect(kinds.filter((k) => k.id === "feed-1").map((k) => k.kind)).to.deep.equal(["connected", "disconnected"]);
    viewer.close();
  });

  it("with a token, refuses the page, the API and the feed without it; /?token= sets an HttpOnly SameSite=Strict cookie", async () => {
    const { url } = await startDashboard({ token: "t0ken" });
    for (const path of ["", "api/slaves", "api/events", "app.js", "metrics"]) {
      expect((await get(`${url}${path}`)).status, path).to.equal(401);
    }
    expect((await get(`${url}api/slaves`, { authorization: "Bearer wrong" })).status).to.equal(401);
    expect((await get(`${url}api/slaves`, { authorization: "Bearer t0ken" })).status).to.equal(200);
    expect((await get(`${url}?token=wrong`)).status).to.equal(401);
    const login = await get(`${url}?token=t0ken`);
    expect(login.status).to.equal(303);
    expect(login.headers.location).to.equal("/");
    const cookie = login.headers["set-cookie"]![0]!;
    expect(cookie)
      .to.match(/HttpOnly/)
      .and.match(/SameSite=Strict/);
    expect(cookie).not.to.include("t0ken");
    const session = cookie.split(";")[0]!;
    expect((await get(url, { cookie: session })).status).to.equal(200);
    expect((await get(`${url}api/slaves`, { cookie: session })).status).to.equal(200);
  });

  it("refuses a Host that is not loopback (DNS rebinding)", async () => {
    const { url } = await startDashboard();
    expect((await get(`${url}api/slaves`, { host: "evil.example:80" })).status).to.equal(421);
    expect((await get(`${url}api/slaves`, { host: "localhost" })).status).to.equal(200);
  });

  it("is read-only unless actions are on: POST /api/send is 403, GET is 405", async () => {
    const { url } = await startDashboard();
    const post = await fetch(`${url}api/send`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-netsync-action": "1" },
      body: JSON.stringify({ to: "a", data: "x" }),
    });
    expect(post.status).to.equal(403);
    expect((await fetch(`${url}api/send`)).status).to.equal(405);
  });

  it("with actions on, POST /api/send needs the action header and the same origin, and sends to one slave or a selector", async () => {
    const { master, url } = await startDashboard({}, { actions: true });
    const received: string[] = [];
    await startTolerantSlave(master.address, { id: "a", labels: { role: "db" }, onCommand: (c) => void received.push(`a:${c.data}`) });
    await startTolerantSlave(master.address, { id: "b", labels: { role: "web" }, onCommand: (c) => void received.push(`b:${c.data}`) });
    const send = (body: unknown, headers: Record<string, string> = { "x-netsync-action": "1" }) =>
      fetch(`${url}api/send`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    expect((await send({ to: "a", data: "x" }, {})).status).to.equal(403);
    expect((await send({ to: "a", data: "x" }, { "x-netsync-action": "1", origin: "http://evil.example" })).status).to.equal(403);
    expect((await send({ to: "a", data: "x" }, { "x-netsync-action": "1", "sec-fetch-site": "cross-site" })).status).to.equal(403);
    expect((await send({ data: "x" })).status).to.equal(400);
    expect((await send({ to: "nobody", data: "x" })).status).to.equal(404);
    expect((await send({ selector: "role in (", data: "x" })).status).to.equal(400);
    expect(await (await send({ to: "a", data: "one" })).json()).to.deep.equal({ sent: 1 });
    expect(await (await send({ selector: "role=web", data: "two" })).json()).to.deep.equal({ sent: 1 });
    await waitFor(() => received.length === 2, 2_000, "both commands");
    expect(received.sort()).to.deep.equal(["a:one", "b:two"]);
  });

  it("with actions on, refuses a POST /api/send body over 64 KiB (413) or not JSON (400)", async () => {
    const { url } = await startDashboard({}, { actions: true });
    const send = (body: string) =>
      fetch(`${url}api/send`, { method: "POST", headers: { "content-type": "application/json", "x-netsync-action": "1" }, body });
    const big = await send(JSON.stringify({ to: "a", data: "x".repeat(70 * 1024) }));
    expect(big.status).to.equal(413);
    expect(((await big.json()) as { error: string }).error).to.match(/larger than 65536 bytes/);
    expect((await send("{not json")).status).to.equal(400);
  });

  it("serves /metrics when given the master's metrics", async () => {
    const { MasterMetrics } = await import("../../src/metrics.js");
    const metrics = new MasterMetrics(() => ({
      connected: 7,
      connectionsTotal: 7,
      pingsSent: 0,
      pongsReceived: 0,
      commandsSent: 0,
      evictions: {},
      disconnects: {},
      refused: {},
    }));
    const { url } = await startDashboard({}, { metrics });
    const text = await (await fetch(`${url}metrics`)).text();
    expect(text).to.match(/^netsync_slaves_connected 7$/m);
    const { url: bare } = await startDashboard();
    expect((await fetch(`${bare}metrics`)).status).to.equal(404);
  });

  it("the page's script never assigns HTML", () => {
    const script = readFileSync(new URL("../../dashboard/app.js", import.meta.url), "utf8");
    const code = script.replace(/^\s*\/\/.*$/gm, "");
    expect(code).not.to.match(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
  });
});
