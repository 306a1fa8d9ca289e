/**
 * The dashboard as a Master option (httpPort, dashboardActions) and a CLI
 * flag (--http-port, --dashboard-actions): the master starts it, hands it
 * its token and metrics, and closes it.
 */
import { expect } from "chai";
import { killAllCli, runCli } from "../cli-process.js";
import { cleanup, startMaster, startSlave } from "../helpers.js";

describe("dashboard as a master option", function () {
  this.timeout(15_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("httpPort starts it with the master's token and metrics; close() stops it", async () => {
    const master = await startMaster({ httpPort: 0, token: "dash-token" });
    expect(master.httpPort).to.be.a("number").and.not.equal(master.port);
    const url = `http://127.0.0.1:${master.httpPort}/`;
    await startSlave(master.address, { id: "w1", token: "dash-token", labels: { region: "eu" } });

    expect((await fetch(url)).status, "no token").to.equal(401);
    const bearer = { authorization: "Bearer dash-token" };
    const page = await fetch(url, { headers: bearer });
    expect(page.status).to.equal(200);
    expect(page.headers.get("content-security-policy")).to.contain("default-src 'none'");
    const slaves = (await (await fetch(`${url}api/slaves?selector=region%3Deu`, { headers: bearer })).json()) as {
      slaves: Array<{ id: string }>;
    };
    expect(slaves.slaves.map((s) => s.id)).to.deep.equal(["w1"]);
    expect(await (await fetch(`${url}metrics`, { headers: bearer })).text()).to.match(/^netsync_slaves_connected 1$/m);
    const post = await fetch(`${url}api/send`, {
      method: "POST",
      headers: { ...bearer, "content-type": "application/json", "x-netsync-action": "1" },
      body: JSON.stringify({ to: "w1", data: "x" }),
    });
    expect(post.status, "read-only without dashboardActions").to.equal(403);

    await master.close();
    expect(master.httpPort).to.equal(undefined);
    const after = await fetch(url).then(
      () => "answered",
      () => "refused",
    );
    expect(after).to.equal("refused");
  });

  it("dashboardActions lets the page send; an invalid httpPort is INVALID_ARGUMENT", async () => {
    const master = await startMaster({ httpPort: 0, dashboardActions: true });
    const received: string[] = [];
    await startSlave(master.address, { id: "w2", onCommand: (c) => void received.push(c.data) });
    const post = await fetch(`http://127.0.0.1:${master.httpPort}/api/send`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-netsync-action": "1" },
      body: JSON.stringify({ to: "w2", data: "from the page" }),
    });
    expect(await post.json()).to.deep.equal({ sent: 1 });
    const { Master } = await import("../../src/index.js");
    expect(() => new Master({ httpPort: 70_000 })).to.throw(/httpPort must be an integer from 0 to 65535/);
  });

  it("netsync master --http-port 0 serves the page and logs where", async () => {
    const run = runCli(["master", "--port", "0", "--http-port", "0", "--heartbeat-interval", "100ms", "--heartbeat-timeout", "300ms"]);
    const [, url] = await run.waitFor(/dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/);
    const page = await fetch(url!);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain("<script src=");
    run.child.kill("SIGTERM");
    expect((await run.exit).code).to.equal(0);
  });
});
