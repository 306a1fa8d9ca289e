// The dashboard in a real browser: Debian's Chromium driven by
// playwright-core (no browser download). Without /usr/bin/chromium the suite
// is skipped, loudly (CI installs it: .ci/install-debian.sh).
import { expect } from "chai";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { TcpProxy } from "../../src/cli/tcp-proxy.js";
import { DashboardServer } from "../../src/dashboard/http-server.js";
import { silentLogger } from "../../src/logger.js";
import type { Master } from "../../src/master.js";
import { clusterMaster, mastersConverged } from "../cluster/masters-helpers.js";
import { haveNatsServer, NatsServer } from "../cluster/nats-server.js";
import { cleanup, rawClient, track, waitFor } from "../helpers.js";
import { artifactPath, hasChromium, launchChromium, SKIP_BANNER, startDashboard, startTolerantSlave, TIMEOUT } from "./server.js";

/** Ids of the table's rows, in order. */
const rowIds = (page: Page) => page.$$eval("#slave-rows tr", (rows) => rows.map((row) => (row as HTMLElement).dataset.id ?? ""));

describe("dashboard in Chromium", function () {
  this.timeout(30_000);
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  /** Console errors and CSP violations of the page: any is a failure. */
  let pageErrors: string[] = [];

  before(async function () {
    if (!hasChromium()) {
      console.warn(SKIP_BANNER);
      this.skip();
    }
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    await cleanup();
  });

  async function open(url: string, viewport = { width: 1280, height: 720 }): Promise<Page> {
    context = await browser!.newContext({ viewport });
    const page = await context.newPage();
    pageErrors = [];
    page.on("console", (message) => {
      if (message.type() === "error") pageErrors.push(message.text());
    });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(url);
    return page;
  }

  it("lists the slaves with their labels, and a summary", async () => {
    const { master, url } = await startDashboard();
    const fleet: { id: string; labels: Record<string, string> }[] = [
      { id: "api-eu-1", labels: { region: "eu", role: "api" } },
      { id: "api-eu-2", labels: { region: "eu", role: "api" } },
      { id: "db-eu-1", labels: { region: "eu", role: "db" } },
      { id: "api-us-1", labels: { region: "us", role: "api" } },
      { id: "db-us-1", labels: { region: "us", role: "db", tier: "gold" } },
    ];
    for (const slave of fleet) await startTolerantSlave(master.address, slave);
    const page = await open(url);
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 5);
    expect(await rowIds(page)).to.deep.equal(fleet.map((s) => s.id).sort());
    for (const slave of fleet) {
      const chips = await page.$$eval(`#slave-rows tr[data-id="${slave.id}"] .chip`, (nodes) => nodes.map((n) => n.textContent));
      expect(chips, slave.id).to.deep.equal(Object.entries(slave.labels).map(([k, v]) => `${k}=${v}`));
    }
    expect(await page.textContent("#sum-connected")).to.equal("5");
    expect(await page.textContent("#master-id")).to.equal(master.id);
    // RTT sparklines fill in as pongs come (one sample per batch with a new pong).
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows svg.spark polyline").length === 5, undefined, {
      timeout: 5_000,
    });
    // Sorting by a column, in the browser.
    await page.click('th[data-sort="labels"]');
    await page.waitForFunction(() => document.querySelector("#slave-rows tr")?.getAttribute("data-id") === "api-eu-1");
    await page.click('th[data-sort="id"]');
    await page.click('th[data-sort="id"]');
    await page.waitForFunction(() => document.querySelector("#slave-rows tr")?.getAttribute("data-id") === "db-us-1");
    expect(await page.getAttribute('th[data-sort="id"]', "aria-sort")).to.equal("descending");
    await page.screenshot({ path: artifactPath("dashboard-list.png") });
    expect(pageErrors).to.deep.equal([]);
  });

  it("shows a frozen slave evicted within the heartbeat timeout + 1 s, without a reload", async () => {
    const { master, url } = await startDashboard();
    await startTolerantSlave(master.address, { id: "steady", labels: { role: "web" } });
    const proxy = new TcpProxy({ host: "127.0.0.1", port: master.port });
    track(() => proxy.close());
    const proxyPort = await proxy.listen();
    await startTolerantSlave(`127.0.0.1:${proxyPort}`, { id: "frozen", labels: { role: "db" }, masterTimeout: 60_000 });
    const page = await open(url);
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 2);
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 42;
    });

    proxy.freeze({ newConnections: true });
    const frozenAt = performance.now();
    await page.waitForFunction(() => document.querySelector('#feed li[data-kind="evicted"][data-id="frozen"]') !== null, undefined, {
      timeout: TIMEOUT + 1_000 + 500,
      polling: 20,
    });
    const shownMs = performance.now() - frozenAt;
    expect(shownMs, "from freeze to the page showing the eviction").to.be.below(TIMEOUT + 1_000);
    // The same page (no reload) then drops the row and lists it as closed, evicted.
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).to.equal(42);
    await page.waitForFunction(() => document.querySelector('#closed-rows tr[data-id="frozen"][data-reason="evicted"]') !== null);
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 1);
    expect(await page.textContent('#feed li[data-id="frozen"] .details')).to.match(/heartbeat timeout/);
    expect(Number(await page.textContent("#sum-evictions"))).to.equal(1);
    expect(pageErrors).to.deep.equal([]);
  });

  it("shows a hostile slave id literally, and no script of it runs", async () => {
    const { master, url } = await startDashboard();
    const hostile = "<img src=x onerror=alert(1)>";
    const page = await open(url);
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    const slave = await startTolerantSlave(master.address, { id: hostile });
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 1);
    expect(await page.textContent("#slave-rows td.id")).to.equal(hostile);
    // In the feed and the closed list too, once it leaves.
    await slave.close();
    await page.waitForFunction(() => document.querySelectorAll('#feed li[data-kind="disconnected"]').length === 1);
    expect(await page.textContent('#feed li[data-kind="disconnected"] .id')).to.equal(hostile);
    await page.waitForFunction(() => document.querySelectorAll("#closed-rows tr").length === 1);
    expect(await page.textContent("#closed-rows td.id")).to.equal(hostile);
    await page.waitForTimeout(300);
    expect(await page.$$eval("img", (images) => images.length)).to.equal(0);
    expect(dialogs).to.deep.equal([]);
  });

  it("with a token, refuses an unauthenticated visit (401) and works after /?token=", async () => {
    const token = "dashboard-test-token";
    const { master, url } = await startDashboard({ token });
    await startTolerantSlave(master.address, { id: "authed", token });
    const page = await open(url);
    const refused = await page.goto(url);
    expect(refused?.status()).to.equal(401);
    expect(await page.textContent("body")).to.include("?token=");
    const wrong = await page.goto(`${url}?token=nope`);
    expect(wrong?.status()).to.equal(401);
    const ok = await page.goto(`${url}?token=${token}`);
    expect(ok?.status()).to.equal(200);
    expect(page.url(), "the token leaves the address bar").to.equal(url);
    await page.waitForFunction(() => document.querySelector('#slave-rows tr[data-id="authed"]') !== null);
    expect(await page.textContent("#link")).to.equal("live");
    const cookies = await context!.cookies();
    expect(cookies.map((c) => [c.httpOnly, c.sameSite])).to.deep.equal([[true, "Strict"]]);
  });

  it("narrows the table with a selector, and with free text", async () => {
    const { master, url } = await startDashboard();
    await startTolerantSlave(master.address, { id: "a1", labels: { region: "eu", role: "db" } });
    await startTolerantSlave(master.address, { id: "a2", labels: { region: "eu", role: "web" } });
    await startTolerantSlave(master.address, { id: "b1", labels: { region: "us", role: "db" } });
    await startTolerantSlave(master.address, { id: "b2", labels: { region: "us", role: "web" } });
    const page = await open(url);
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 4);
    await page.fill("#selector", "region=eu");
    await page.press("#selector", "Enter");
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 2);
    expect(await rowIds(page)).to.deep.equal(["a1", "a2"]);
    expect(await page.textContent("#range")).to.include("2 matching (4 connected)");
    await page.fill("#selector", "region=eu,role!=db");
    await page.press("#selector", "Enter");
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 1);
    expect(await rowIds(page)).to.deep.equal(["a2"]);
    // A malformed selector is reported, and the table keeps what it had.
    await page.fill("#selector", "role in (db");
    await page.press("#selector", "Enter");
    await page.waitForFunction(() => (document.querySelector("#selector-error")?.textContent ?? "") !== "");
    expect(await rowIds(page)).to.deep.equal(["a2"]);
    // Free text on top of a selector.
    await page.fill("#selector", "role=db");
    await page.press("#selector", "Enter");
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 2);
    await page.fill("#filter", "us");
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 1);
    expect(await rowIds(page)).to.deep.equal(["b1"]);
    expect(await page.textContent("#selector-error")).to.equal("");
  });

  it("sends a command to one slave from the page when actions are on; hides the form and refuses when off", async () => {
    const { master, url } = await startDashboard({}, { actions: true });
    const received: string[] = [];
    await startTolerantSlave(master.address, { id: "target", onCommand: (command) => void received.push(command.data) });
    await startTolerantSlave(master.address, { id: "other", onCommand: (command) => void received.push(`other:${command.data}`) });
    const page = await open(url);
    await page.waitForSelector("#actions:not([hidden])");
    await page.click('#slave-rows tr[data-id="target"]');
    expect(await page.inputValue("#action-target")).to.equal("target");
    await page.fill("#action-data", "restart please");
    await page.click("#action-send");
    await page.waitForFunction(() => document.querySelector("#action-result")?.textContent === "sent to 1 slave");
    await waitFor(() => received.length === 1, 2_000, "the command at the slave");
    expect(received).to.deep.equal(["restart please"]);

    const readOnly = await startDashboard();
    await startTolerantSlave(readOnly.master.address, { id: "ro" });
    const roPage = await context!.newPage();
    await roPage.goto(readOnly.url);
    await roPage.waitForFunction(() => document.querySelector('#slave-rows tr[data-id="ro"]') !== null);
    expect(await roPage.isHidden("#actions")).to.equal(true);
    const status = await roPage.evaluate(async () => {
      const res = await fetch("api/send", {
        method: "POST",
        headers: { "content-type": "application/json", "x-netsync-action": "1" },
        body: JSON.stringify({ to: "ro", data: "x" }),
      });
      return res.status;
    });
    expect(status).to.equal(403);
  });

  describe("in a cluster of two masters", () => {
    const nats = new NatsServer();

    before(async function () {
      if (!(await haveNatsServer())) this.skip();
      await nats.start();
    });
    after(() => nats.kill());

    it("lists both masters' slaves with a master column and a masters panel, and a connect on the other master arrives live", async () => {
      const [m1, m2] = (await Promise.all(["m1", "m2"].map((name) => clusterMaster(name, [nats.url])))) as [Master, Master];
      await mastersConverged([m1, m2], ["m1", "m2"]);
      await startTolerantSlave(m1.address, { id: "on-m1", labels: { region: "eu" } });
      await startTolerantSlave(m2.address, { id: "on-m2", labels: { region: "us" } });
      await waitFor(() => m1.masters().find((m) => m.id === "m2")?.slavesHeld === 1, 3_000, "m2's count in m1's membership");
      const dashboard = new DashboardServer(m1, { port: 0, host: "127.0.0.1", log: silentLogger() });
      track(() => dashboard.close());
      const url = `http://127.0.0.1:${await dashboard.listen()}/`;
      const page = await open(url);
      await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 2);
      expect(await rowIds(page)).to.deep.equal(["on-m1", "on-m2"]);
      const masterCells = await page.$$eval("#slave-rows td.master", (cells) => cells.map((c) => c.textContent));
      expect(masterCells).to.deep.equal(["m1", "m2"]);
      expect(await page.isVisible('th[data-sort="masterId"]')).to.equal(true);
      await page.waitForFunction(() => document.querySelectorAll('#master-rows tr[data-answered="1"]').length === 2);
      expect(await page.$$eval("#master-rows tr", (rows) => rows.map((r) => (r as HTMLElement).dataset.id))).to.deep.equal(["m1", "m2"]);
      expect(await page.textContent("#sum-connected")).to.equal("2");
      expect(await page.isHidden("#unanswered")).to.equal(true);

      // A slave connecting to the other master: its event comes over NATS into the feed, then its row.
      await startTolerantSlave(m2.address, { id: "late-m2", labels: { region: "us" } });
      await page.waitForFunction(
        () => document.querySelector('#feed li[data-kind="connected"][data-id="late-m2"][data-master="m2"]') !== null,
        undefined,
        { timeout: 3_000 },
      );
      await page.waitForFunction(() => document.querySelector('#slave-rows tr[data-id="late-m2"] td.master')?.textContent === "m2");
      // Selectors are fleet-wide too.
      await page.fill("#selector", "region=us");
      await page.press("#selector", "Enter");
      await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 2);
      expect(await rowIds(page)).to.deep.equal(["late-m2", "on-m2"]);
      await page.screenshot({ path: artifactPath("dashboard-cluster.png") });
      expect(pageErrors).to.deep.equal([]);
    });

    it("pages a cluster's table by id with next and prev (a page of the fleet-wide listing each)", async () => {
      const slow = { heartbeatInterval: 1_000, heartbeatTimeout: 5_000 };
      const [m1, m2] = (await Promise.all(["m1", "m2"].map((name) => clusterMaster(name, [nats.url], {}, slow)))) as [Master, Master];
      await mastersConverged([m1, m2], ["m1", "m2"]);
      const ids = Array.from({ length: 520 }, (_, i) => `p${String(i).padStart(3, "0")}`);
      for (const [i, id] of ids.entries()) rawClient((i % 2 ? m2 : m1).address, { id, autoPong: true });
      await waitFor(() => m1.masters().reduce((sum, m) => sum + m.slavesHeld, 0) === 520, 10_000, "520 slaves in m1's membership");
      const dashboard = new DashboardServer(m1, { port: 0, host: "127.0.0.1", log: silentLogger() });
      track(() => dashboard.close());
      const page = await open(`http://127.0.0.1:${await dashboard.listen()}/`);
      await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 500);
      expect(await rowIds(page)).to.deep.equal(ids.slice(0, 500));
      expect(await page.textContent("#range")).to.equal("1–500 of 520");
      expect(await page.isDisabled("#prev")).to.equal(true);
      await page.click("#next");
      await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 20);
      expect(await rowIds(page)).to.deep.equal(ids.slice(500));
      expect(await page.textContent("#range")).to.equal("501–520 of 520");
      expect(await page.isDisabled("#next")).to.equal(true);
      await page.click("#prev");
      await page.waitForFunction(() => document.querySelectorAll("#slave-rows tr").length === 500);
      expect((await rowIds(page))[0]).to.equal("p000");
      expect(await page.textContent("#range")).to.equal("1–500 of 520");
      expect(pageErrors).to.deep.equal([]);
    });
  });

  it("screenshot: a few labelled slaves, one evicted (test-artifacts/dashboard.png)", async () => {
    const { master, url } = await startDashboard();
    const fleet: [string, Record<string, string>][] = [
      ["api-eu-1", { region: "eu", role: "api" }],
      ["api-eu-2", { region: "eu", role: "api" }],
      ["db-eu-1", { region: "eu", role: "db", tier: "gold" }],
      ["api-us-1", { region: "us", role: "api" }],
      ["cache-us-1", { region: "us", role: "cache" }],
      ["db-us-1", { region: "us", role: "db", tier: "gold" }],
    ];
    for (const [id, labels] of fleet) await startTolerantSlave(master.address, { id, labels });
    const proxy = new TcpProxy({ host: "127.0.0.1", port: master.port });
    track(() => proxy.close());
    const proxyPort = await proxy.listen();
    await startTolerantSlave(`127.0.0.1:${proxyPort}`, {
      id: "batch-eu-7",
      labels: { region: "eu", role: "batch" },
      masterTimeout: 60_000,
    });
    const page = await open(url);
    await page.waitForFunction(() => document.querySelectorAll("#slave-rows svg.spark polyline").length === 7, undefined, {
      timeout: 8_000,
    });
    proxy.freeze({ newConnections: true });
    await page.waitForFunction(() => document.querySelector('#closed-rows tr[data-reason="evicted"]') !== null, undefined, {
      timeout: 5_000,
    });
    await page.waitForTimeout(2_500);
    await page.screenshot({ path: artifactPath("dashboard.png"), fullPage: false });
  });
});
