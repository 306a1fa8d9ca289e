/**
 * A master's refusals and how slaves take them, with real masters and real
 * Slaves on 127.0.0.1: refused credentials (an error, a long wait, giving
 * up), admission under a storm (RESOURCE_EXHAUSTED with a retry hint, spread
 * retries), and two live slaves with one id (damped, one warning per cool-down).
 */
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { createConsola, type LogObject } from "consola";
import { type Master, RETRY_AFTER_METADATA_KEY, type Slave } from "../../src/index.js";
import { cleanup, createSlave, once, rawClient, sleep, startMaster, statusOf, waitFor } from "../helpers.js";

/** A logger that records each line with the time it was written. */
function recorder() {
  const lines: { at: number; type: string; text: string }[] = [];
  const logger = createConsola({
    level: 5,
    throttle: 0,
    reporters: [{ log: (o: LogObject) => lines.push({ at: performance.now(), type: o.type, text: format(...o.args) }) }],
  });
  return { logger, lines, of: (type: string) => lines.filter((l) => l.type === type) };
}

async function metric(master: Master, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${master.metricsPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("refusals", () => {
  afterEach(cleanup);

  describe("credentials", () => {
    it("a refused slave logs an ERROR naming the cause, waits authRetryInterval (not the backoff) and gives up after maxAuthRefusals in a row", async () => {
      const master = await startMaster({ token: "right" });
      const log = recorder();
      const slave = createSlave(master.address, {
        id: "w1",
        token: "wrong",
        authRetryInterval: 300,
        maxAuthRefusals: 3,
        logger: log.logger,
      });
      const [error] = await once(slave, "failed", 5_000);
      expect(error.message).to.match(
        /gave up: the master refused this slave's credentials 3 times in a row \(UNAUTHENTICATED: wrong bearer token\)/,
      );
      expect(slave.state).to.equal("closed");
      const errors = log.of("error");
      expect(errors.map((l) => l.text)).to.have.length(3);
      expect(errors[0]!.text).to.match(
        /^the master at 127\.0\.0\.1:\d+ refused this slave's credentials \(UNAUTHENTICATED: wrong bearer token\); check its token \(--token-file or \$NETSYNC_TOKEN\).*retrying in \d+ ms \(refusal 1 of 3 before giving up\)$/,
      );
      expect(errors[2]!.text).to.match(/giving up after 3 refusals in a row$/);
      // ±25 % of 300 ms between attempts: the 20..200 ms reconnect backoff would be much shorter.
      for (let i = 1; i < errors.length; i++) expect(errors[i]!.at - errors[i - 1]!.at).to.be.within(220, 600);
      expect(log.of("info").filter((l) => /cannot reach/.test(l.text))).to.deep.equal([]);
      // Closed for good: nothing is scheduled, no further attempt.
      await sleep(400);
      expect(log.of("error")).to.have.length(3);
    });

    it("maxAuthRefusals 0 retries forever", async () => {
      const master = await startMaster({ token: "right" });
      const log = recorder();
      const slave = createSlave(master.address, {
        id: "w2",
        token: "wrong",
        authRetryInterval: 50,
        maxAuthRefusals: 0,
        logger: log.logger,
      });
      let failed = false;
      slave.on("failed", () => (failed = true));
      await waitFor(() => log.of("error").length >= 6, 3_000, "six refusals");
      expect(failed).to.equal(false);
      expect(log.of("error")[5]!.text).to.match(/\(retrying forever\)$/);
    });
  });

  describe("admission", () => {
    it("a storm of slaves is refused with RESOURCE_EXHAUSTED and a hint, spread over the refill, and all connect within a bound", async function () {
      this.timeout(20_000);
      const rate = 20;
      const burst = 5;
      const count = 30;
      const master = await startMaster({ admission: { rate, burst }, metricsPort: 0 });
      const logs = Array.from({ length: count }, () => recorder());
      const t0 = performance.now();
      const slaves: Slave[] = logs.map((log, i) => createSlave(master.address, { id: `s${i}`, logger: log.logger }));
      const connectedAt = await Promise.all(slaves.map((s) => once(s, "connected", 15_000).then(() => performance.now() - t0)));
      expect(master.slaves()).to.have.length(count);

      // The slaves' connections take some ms to come up, and the bucket refills meanwhile: up to `burst` more get in.
      const least = count - 2 * burst;
      const refused = await metric(master, "netsync_admission_refused_total", 'reason="rate"');
      expect(refused).to.be.at.least(least);
      // The first retry of each refused slave: what its hint (and jitter) told it.
      const firstRetry = logs
        .map((log) => log.of("info").find((l) => /RESOURCE_EXHAUSTED/.test(l.text)))
        .filter((l) => l !== undefined)
        .map((l) => Number(/retrying in (\d+) ms/.exec(l.text)?.[1]));
      expect(firstRetry.length).to.be.at.least(least);
      // Spread, not synchronised: the refused take successive slots of the refill, 1000 / rate ms
      // apart, so the earliest and the latest first retries are about that far apart (the jitter only adds).
      const spread = Math.max(...firstRetry) - Math.min(...firstRetry);
      expect(spread, `first retries ${firstRetry.sort((a, b) => a - b).join(", ")}`).to.be.at.least(((least - 1) * 1000) / rate);
      expect(new Set(firstRetry).size).to.be.at.least(firstRetry.length - 2);
      // No slave waits much past what the rate allows: (count - burst) / rate, times the jitter (1.5), plus slack.
      const bound = (((count - burst) / rate) * 1.5 + 1) * 1000;
      expect(Math.max(...connectedAt)).to.be.below(bound);
    });

    it("tells a refused stream when to retry in netsync-retry-after-ms", async () => {
      const master = await startMaster({ admission: { rate: 1, burst: 1 } });
      const first = rawClient(master.address, { id: "a", autoPong: true });
      await first.headers;
      const second = rawClient(master.address, { id: "b" });
      const status = await statusOf(second);
      expect(status.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
      expect(status.details).to.match(/retry in \d+ ms/);
      const hint = Number(status.metadata.get(RETRY_AFTER_METADATA_KEY)[0]);
      expect(hint).to.be.within(1, 1_000);
    });
  });

  describe("two live slaves with one id on one master", () => {
    it("newest wins, then the id is damped: bounded kicks, one warning naming both peers per cool-down, the holder kept", async function () {
      this.timeout(20_000);
      const limit = 3;
      const window = 1_000;
      const cooldown = 1_500;
      const log = recorder();
      const master = await startMaster({ duplicateIds: { limit, window, cooldown }, logger: log.logger });
      const kicks: number[] = [];
      master.on("slave:disconnected", (e) => {
        if (e.reason === "replaced") kicks.push(performance.now());
      });
      const a = createSlave(master.address, { id: "twin", labels: { side: "a" } });
      const b = createSlave(master.address, { id: "twin", labels: { side: "b" } });
      const t0 = performance.now();
      const warnings = () => log.of("warn").filter((l) => /two live slaves use the id twin/.test(l.text));
      await waitFor(() => warnings().length >= 1, 5_000, "the first cool-down's warning");
      const first = warnings()[0]!;
      expect(first.text).to.match(
        /^two live slaves use the id twin: 127\.0\.0\.1:\d+ and 127\.0\.0\.1:\d+ keep replacing each other \(4 connections in 1 s\); keeping 127\.0\.0\.1:\d+ and refusing new connections for twin for 1\.5 s$/,
      );

      // During the cool-down a new stream for the id is refused with a hint, and no second warning is logged.
      const intruder = rawClient(master.address, { id: "twin" });
      const status = await statusOf(intruder);
      expect(status.code).to.equal(grpc.status.ALREADY_EXISTS);
      expect(status.details).to.match(/^slave id twin is in use by 127\.0\.0\.1:\d+; .*refused for \d(\.\d)? s$/);
      expect(Number(status.metadata.get(RETRY_AFTER_METADATA_KEY)[0])).to.be.within(1, cooldown);
      expect(warnings()).to.have.length(1);

      // Measured over a few cool-downs: each cool-down is one warning, and no kick falls inside one.
      await sleep(4 * cooldown);
      const elapsed = performance.now() - t0;
      const warned = warnings();
      for (const w of warned) {
        const inside = kicks.filter((k) => k > w.at && k < w.at + cooldown - 50);
        expect(inside, `kicks within the cool-down that began at ${Math.round(w.at - t0)} ms`).to.deep.equal([]);
      }
      // Each cool-down is preceded by at most `limit` kicks (the first by limit - 1): undamped, the two
      // slaves (20..200 ms backoff) replace each other several times a second.
      expect(kicks.length).to.be.at.most(limit * (warned.length + 1));
      expect(warned.length).to.be.within(2, Math.ceil(elapsed / cooldown));
      const perMinute = (kicks.length / elapsed) * 60_000;
      expect(perMinute).to.be.below((limit / cooldown) * 60_000 + 60);
      expect(a.state === "open" || b.state === "open").to.equal(true);
    });
  });
});
