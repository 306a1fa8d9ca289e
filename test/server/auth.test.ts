import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { type ConsolaInstance, createConsola, type LogObject } from "consola";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { openBidi } from "../../src/grpc-adapter.js";
import { type Master, type MasterOptions, SLAVE_ID_METADATA_KEY, type Slave } from "../../src/index.js";
import { type ClientTlsOptions, clientCredentials, tokenMetadata } from "../../src/server/auth.js";
import { makeTestPki, type TestPki } from "../certs.js";
import { CLI_TEST_ENV, killAllCli, runCli } from "../cli-process.js";
import { adminClient, healthCheck } from "../grpc-helpers.js";
import { cleanup, createSlave, once, rejection, sleep, startMaster, startSlave, track, waitFor, within } from "../helpers.js";

const Status = grpc.status;
const TOKEN = "s3cret";

// --- capturing logger ------------------------------------------------------------

interface Capture {
  logger: ConsolaInstance;
  entries: LogObject[];
  /** Every captured line as text ("type message"). */
  lines(): string[];
  /** Text of the captured lines of one type (warn, info, ...). */
  of(type: string): string[];
}

/** A consola logger that keeps every line (throttling off, so repeated lines are counted as they are). */
function capture(): Capture {
  const entries: LogObject[] = [];
  const logger = createConsola({ level: 5, throttle: 0, reporters: [{ log: (o) => entries.push(o) }] });
  const text = (o: LogObject) => format(...o.args);
  return {
    logger,
    entries,
    lines: () => entries.map((o) => `${o.type} ${text(o)}`),
    // The heartbeat's own stall warning (a slow TLS handshake or GC in this process) is not about security.
    of: (type) =>
      entries
        .filter((o) => o.type === type)
        .map(text)
        .filter((line) => !/^master stalled for/.test(line)),
  };
}

/** Asserts that no captured line carries a secret. */
function expectNoSecret(lines: string[], ...secrets: string[]): void {
  for (const line of lines) {
    for (const secret of [...secrets, "PRIVATE KEY", "BEGIN CERTIFICATE", "Bearer"]) {
      expect(line, "a log line").not.to.include(secret);
    }
  }
}

// --- raw calls --------------------------------------------------------------------

/**
 * Opens a Sync stream with a plain grpc-js client and resolves with its final
 * status (plus whether the master sent response headers, which it does only
 * after registering the stream). The call is cancelled and the channel closed.
 */
async function rawSync(
  address: string,
  tls: ClientTlsOptions | undefined,
  metadata = new grpc.Metadata(),
  timeoutMs = 3_000,
): Promise<{ status: grpc.StatusObject; registered: boolean }> {
  const client = new grpc.Client(address, clientCredentials(tls), { "grpc.use_local_subchannel_pool": 1 });
  track(() => client.close());
  const call = openBidi(client, NetSyncService.method.sync, metadata);
  let registered = false;
  call.on("metadata", (headers: grpc.Metadata) => {
    if (headers.get(SLAVE_ID_METADATA_KEY).length > 0) registered = true;
  });
  call.on("data", () => {});
  call.on("error", () => {});
  try {
    const status = await within(
      new Promise<grpc.StatusObject>((resolve) => call.once("status", resolve)),
      timeoutMs,
      "the status of a raw Sync call",
    );
    return { status, registered };
  } finally {
    call.cancel();
    client.close();
  }
}

function withId(id: string, metadata = new grpc.Metadata()): grpc.Metadata {
  metadata.set(SLAVE_ID_METADATA_KEY, id);
  return metadata;
}

/** grpc.health.v1.Health/Check over a channel of its own; resolves with the serving status. */
async function healthStatus(address: string, tls?: ClientTlsOptions, service = ""): Promise<ServingStatus> {
  const client = new grpc.Client(address, clientCredentials(tls), { "grpc.use_local_subchannel_pool": 1 });
  try {
    return (await healthCheck(client, service, 3_000)).status;
  } finally {
    client.close();
  }
}

/** Counts the master's 'slave:connected' events from now on. */
function connections(master: Master): string[] {
  const ids: string[] = [];
  master.on("slave:connected", ({ slave }) => ids.push(slave.id));
  return ids;
}

/** Lets a refused slave run for `ms`, then checks that it never registered. */
async function expectNeverRegisters(master: Master, slave: Slave, connected: string[], ms = 600): Promise<void> {
  const states = new Set<string>();
  const sampler = setInterval(() => states.add(slave.state), 5);
  let opened = false;
  slave.on("connected", () => (opened = true));
  try {
    await sleep(ms);
  } finally {
    clearInterval(sampler);
  }
  expect(opened, "the slave's 'connected'").to.equal(false);
  expect(master.slaves()).to.deep.equal([]);
  expect(connected).to.deep.equal([]);
  expect([...states]).not.to.include("open");
  expect([...states]).to.include("backoff");
}

// --- CLI ----------------------------------------------------------------------------

/** Output lines without Node's DEP0123 warning (TLS servername set to an IP), which may appear on stderr. */
function meaningfulLines(text: string): string[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .filter((line) => !/DEP0123|DeprecationWarning|--trace-deprecation/.test(line));
}

// --- the tests ------------------------------------------------------------------------

describe("security", function () {
  this.timeout(15_000);
  let pki: TestPki;

  before(() => {
    pki = makeTestPki();
  });

  after(() => pki?.cleanup());

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  const serverTls = () => ({ cert: pki.serverCert, key: pki.serverKey });
  const mtls = () => ({ cert: pki.serverCert, key: pki.serverKey, clientCa: pki.ca });
  const clientTls = () => ({ ca: pki.ca, cert: pki.clientCert, key: pki.clientKey });
  const wrongCa = () => readFileSync(join(pki.dir, "stranger-ca.crt"));

  async function captured(opts: MasterOptions): Promise<{ master: Master; log: Capture; connected: string[] }> {
    const log = capture();
    // A roomy heartbeat: these tests are about who gets in, not about liveness timing.
    const master = await startMaster({ heartbeatInterval: 50, heartbeatTimeout: 2_000, ...opts, logger: log.logger });
    return { master, log, connected: connections(master) };
  }

  describe("TLS", () => {
    it("a slave trusting the master's CA connects over TLS and answers pings", async () => {
      const { master, log } = await captured({ tls: serverTls() });
      expect(log.of("info").join("\n")).to.match(/listening on 127\.0\.0\.1:\d+ with TLS/);
      const slave = await startSlave(master.address, { id: "tls-a", tls: { ca: pki.ca } });
      expect(slave.state).to.equal("open");
      await waitFor(() => (master.slaves()[0]?.pongsReceived ?? 0) >= 2, 2_000, "two pongs over TLS");
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["tls-a"]);
      expect(master.slaves()[0]!.rttMs).to.be.a("number");
    });

    it("a plaintext slave never registers with a TLS master", async () => {
      const { master, connected } = await captured({ tls: serverTls() });
      const slaveLog = capture();
      const slave = createSlave(master.address, { id: "plain", logger: slaveLog.logger });
      await expectNeverRegisters(master, slave, connected);
      expect(slaveLog.of("info").join("\n")).to.match(/cannot reach the master/);
    });

    it("a TLS slave trusting the wrong CA never registers", async () => {
      const { master, connected } = await captured({ tls: serverTls() });
      const slaveLog = capture();
      const slave = createSlave(master.address, { id: "doubter", tls: { ca: wrongCa() }, logger: slaveLog.logger });
      await expectNeverRegisters(master, slave, connected);
      expect(slaveLog.of("info").join("\n")).to.match(/cannot reach the master/);
    });
  });

  describe("mTLS", () => {
    it("registers a slave under the id of its certificate when it names none", async () => {
      const { master, connected } = await captured({ tls: mtls() });
      const slave = createSlave(master.address, { tls: clientTls() });
      const [{ id }] = await once(slave, "connected", 3_000);
      expect(id).to.equal("slave-cert");
      expect(slave.id).to.equal("slave-cert");
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["slave-cert"]);
      expect(connected).to.deep.equal(["slave-cert"]);
    });

    it("registers a slave that names the id of its certificate", async () => {
      const { master, connected } = await captured({ tls: mtls() });
      const slave = await startSlave(master.address, { id: "slave-cert", tls: clientTls() }, 3_000);
      expect(slave.id).to.equal("slave-cert");
      await waitFor(() => (master.slaves()[0]?.pongsReceived ?? 0) >= 1, 2_000, "a pong over mTLS");
      // Registered under its certificate's id, and only that one: with the tests' 100 ms heartbeat timeout a
      // loaded machine may evict and reconnect it once (seen in CI), which registers the same id again.
      expect([...new Set(connected)]).to.deep.equal(["slave-cert"]);
    });

    it("refuses a slave whose id disagrees with its certificate (UNAUTHENTICATED)", async () => {
      const { master, log, connected } = await captured({ tls: mtls() });
      const { status, registered } = await rawSync(master.address, clientTls(), withId("other"));
      expect(status.code).to.equal(Status.UNAUTHENTICATED);
      expect(status.details)
        .to.include("other")
        .and.to.include("slave-cert")
        .and.to.match(/disagrees with the certificate/);
      expect(registered).to.equal(false);

      // The Slave itself sees the refusal as a failed attempt, never as a connection.
      const slaveLog = capture();
      const slave = createSlave(master.address, {
        id: "other",
        tls: clientTls(),
        logger: slaveLog.logger,
        authRetryInterval: 50,
        maxAuthRefusals: 0,
      });
      await expectNeverRegisters(master, slave, connected);
      expect(slaveLog.of("error").join("\n")).to.match(
        /refused this slave's credentials \(UNAUTHENTICATED: .*disagrees with the certificate .*\); check its token .*retrying in \d+ ms \(retrying forever\)/,
      );
      await slave.close();
      await sleep(50);
      expect(connected).to.deep.equal([]);
      // The raw call and each of the Slave's refused attempts come from one host: one warn line for them all.
      const failures = slaveLog.of("error").filter((line) => /refused this slave's credentials/.test(line)).length;
      const warns = log.of("warn");
      expect(failures).to.be.at.least(2);
      expect(warns, log.lines().join("\n")).to.have.length(1);
      expect(warns[0]).to.match(
        /^refused \/netsync\.v1\.NetSyncService\/Sync from 127\.0\.0\.1:\d+: netsync-slave-id "other" disagrees with the certificate \("slave-cert"\) \(at most one line per host every 60 s\)$/,
      );
      expectNoSecret(log.lines(), pki.clientKey.toString().split("\n")[1]!, pki.serverKey.toString().split("\n")[1]!);
    });

    for (const [name, tls, reason] of [
      ["no client certificate", () => ({ ca: pki.ca }), /no trusted client certificate/],
      [
        "a certificate from an untrusted CA",
        () => ({ ca: pki.ca, cert: pki.strangerCert, key: pki.strangerKey }),
        /no trusted client certificate/,
      ],
    ] as const) {
      it(`refuses ${name} with UNAUTHENTICATED, one warn line per host however many attempts, no secret logged`, async () => {
        const { master, log, connected } = await captured({ tls: mtls() });
        const attempts = 3;
        for (let i = 0; i < attempts; i++) {
          const { status, registered } = await rawSync(master.address, tls(), i === 1 ? withId("intruder") : undefined);
          expect(status.code, status.details).to.equal(Status.UNAUTHENTICATED);
          expect(status.details).to.match(reason);
          expect(registered).to.equal(false);
        }
        await sleep(50);
        const warns = log.of("warn");
        expect(warns, log.lines().join("\n")).to.have.length(1);
        for (const line of warns) {
          expect(line)
            .to.match(/^refused \/netsync\.v1\.NetSyncService\/Sync from 127\.0\.0\.1:\d+: /)
            .and.to.match(reason);
        }
        expect(master.slaves()).to.deep.equal([]);
        expect(connected).to.deep.equal([]);
        expectNoSecret(log.lines(), pki.strangerKey.toString().split("\n")[1]!, pki.serverKey.toString().split("\n")[1]!);

        const slave = createSlave(master.address, { tls: tls(), authRetryInterval: 50 });
        await expectNeverRegisters(master, slave, connected);
      });
    }

    it("keeps health open to a TLS client without a certificate", async () => {
      const { master } = await captured({ tls: mtls() });
      expect(await healthStatus(master.address, { ca: pki.ca })).to.equal(ServingStatus.SERVING);
      expect(await healthStatus(master.address, { ca: pki.ca }, "netsync.v1.NetSyncService")).to.equal(ServingStatus.SERVING);
    });
  });

  describe("bearer token", () => {
    it("registers a slave with the token; refuses none or a wrong one with UNAUTHENTICATED; never logs it", async () => {
      const { master, log, connected } = await captured({ token: TOKEN });
      expect(log.of("info").join("\n")).to.match(/bearer token required/);
      const slave = await startSlave(master.address, { id: "tokened", token: TOKEN, logger: log.logger });
      expect(slave.state).to.equal("open");
      await waitFor(() => (master.slaves()[0]?.pongsReceived ?? 0) >= 1, 2_000, "a pong");
      expect(connected).to.deep.equal(["tokened"]);

      const none = await rawSync(master.address, undefined, withId("tokenless"));
      expect(none.status.code).to.equal(Status.UNAUTHENTICATED);
      expect(none.status.details).to.equal("missing bearer token");
      expect(none.registered).to.equal(false);

      const wrong = await rawSync(master.address, undefined, tokenMetadata("n0t-the-s3cret", withId("guesser")));
      expect(wrong.status.code).to.equal(Status.UNAUTHENTICATED);
      expect(wrong.status.details).to.equal("wrong bearer token");

      const malformed = new grpc.Metadata();
      malformed.set("authorization", `Basic ${TOKEN}`);
      const basic = await rawSync(master.address, undefined, malformed);
      expect(basic.status.code).to.equal(Status.UNAUTHENTICATED);

      await sleep(50);
      expect(master.slaves().map((s) => s.id)).to.deep.equal(["tokened"]);
      expect(connected).to.deep.equal(["tokened"]);
      // Three refusals from one host, one line (the next, after the interval, would count the other two).
      expect(log.of("warn")).to.have.length(1);
      expectNoSecret(log.lines(), TOKEN, "n0t-the-s3cret");
    });

    it("a Slave without the token never registers", async () => {
      const { master, log, connected } = await captured({ token: TOKEN });
      const slaveLog = capture();
      const slave = createSlave(master.address, { id: "tokenless", logger: slaveLog.logger, authRetryInterval: 50 });
      await expectNeverRegisters(master, slave, connected);
      expect(slaveLog.of("error").join("\n")).to.match(/refused this slave's credentials \(UNAUTHENTICATED: missing bearer token\)/);
      await slave.close();
      expectNoSecret(log.lines(), TOKEN);
    });

    it("guards AdminService but leaves health open", async () => {
      const { master, log } = await captured({ token: TOKEN });
      await startSlave(master.address, { id: "listed", token: TOKEN });

      const anonymous = adminClient(master.address);
      const err = await rejection(anonymous.listSlaves(), 3_000, "listSlaves without a token");
      expect(err.code).to.equal(Status.UNAUTHENTICATED);
      expect(err.message).to.match(/UNAUTHENTICATED: missing bearer token/);
      expect((await rejection(anonymous.broadcast("x"), 3_000, "broadcast without a token")).code).to.equal(Status.UNAUTHENTICATED);
      expect(
        (await rejection(adminClient(master.address, { token: "wrong" }).listSlaves(), 3_000, "listSlaves with a wrong token")).code,
      ).to.equal(Status.UNAUTHENTICATED);

      const response = await adminClient(master.address, { token: TOKEN }).listSlaves();
      expect(response.slaves.map((s) => s.id)).to.deep.equal(["listed"]);

      expect(await healthStatus(master.address)).to.equal(ServingStatus.SERVING);
      expect(await healthStatus(master.address, undefined, "netsync.v1.NetSyncService")).to.equal(ServingStatus.SERVING);
      for (const line of log.of("warn")) expect(line).to.match(/^refused \/netsync\.v1\.AdminService\/(ListSlaves|Broadcast) /);
      expect(log.of("warn")).to.have.length(1);
      expectNoSecret(log.lines(), TOKEN);
    });

    it("works together with TLS", async () => {
      const { master, log, connected } = await captured({ tls: serverTls(), token: TOKEN });
      await startSlave(master.address, { id: "both", tls: { ca: pki.ca }, token: TOKEN }, 3_000);
      expect(connected).to.deep.equal(["both"]);
      const none = await rawSync(master.address, { ca: pki.ca }, withId("tls-only"));
      expect(none.status.code).to.equal(Status.UNAUTHENTICATED);
      const admin = adminClient(master.address, { tls: { ca: pki.ca }, token: TOKEN });
      expect((await admin.listSlaves()).slaves.map((s) => s.id)).to.deep.equal(["both"]);
      expect(await healthStatus(master.address, { ca: pki.ca })).to.equal(ServingStatus.SERVING);
      expect(connected).to.deep.equal(["both"]);
      expectNoSecret(log.lines(), TOKEN);
    });
  });

  describe("CLI", function () {
    this.timeout(30_000);

    it("mTLS + token: a slave connects as slave-cert, `slaves` lists it, and without the token is refused", async () => {
      const tokenFile = join(pki.dir, "token");
      writeFileSync(tokenFile, `${TOKEN}\n`);
      const p = pki.paths;
      const master = runCli(
        [
          "master",
          "--port",
          "0",
          "--heartbeat-interval",
          "100ms",
          "--heartbeat-timeout",
          "2s",
          "--tls-cert",
          p.serverCert,
          "--tls-key",
          p.serverKey,
          "--tls-client-ca",
          p.ca,
        ],
        { ...CLI_TEST_ENV, NETSYNC_TOKEN: TOKEN },
      );
      const [, address] = await master.waitFor(
        /listening on (127\.0\.0\.1:\d+) with TLS \(client certificates required\) \(bearer token required\)/,
      );
      const tlsFlags = ["--tls-ca", p.ca, "--tls-cert", p.clientCert, "--tls-key", p.clientKey];
      const slave = runCli(["slave", "--master", address!, ...tlsFlags, "--token-file", tokenFile, "--master-timeout", "2s"]);
      await master.waitFor(/slave slave-cert connected from 127\.0\.0\.1:\d+/, 10_000);
      await slave.waitFor(/connected to .* as slave-cert/);

      const list = runCli(["slaves", "--master", address!, ...tlsFlags, "--token-file", tokenFile]);
      expect((await list.exit).code, list.output()).to.equal(0);
      expect(list.stdout())
        .to.match(/^ID\s+MASTER\s+PEER/m)
        .and.to.match(/^slave-cert\s+127\.0\.0\.1:\d+\s+127\.0\.0\.1:\d+/m);

      const refused = runCli(["slaves", "--master", address!, ...tlsFlags]);
      expect((await refused.exit).code, refused.output()).to.equal(1);
      expect(refused.stderr()).to.match(/UNAUTHENTICATED/);
      expect(refused.stdout()).not.to.match(/slave-cert/);
      await master.waitFor(/refused \/netsync\.v1\.AdminService\/ListSlaves from 127\.0\.0\.1:\d+: missing bearer token/);

      slave.child.kill("SIGTERM");
      expect((await slave.exit).code).to.equal(0);
      await master.waitFor(/slave slave-cert .*disconnected: slave closed the stream/);
      master.child.kill("SIGTERM");
      expect((await master.exit).code).to.equal(0);
      for (const out of [master.output(), slave.output(), list.output(), refused.output()]) {
        expect(out).not.to.include(TOKEN);
        expect(out).not.to.include("PRIVATE KEY");
      }
    });

    for (const [name, args, message] of [
      [
        "master --tls-cert without --tls-key",
        () => ["master", "--port", "0", "--tls-cert", pki.paths.serverCert],
        /--tls-cert and --tls-key go together/,
      ],
      [
        "master --tls-key without --tls-cert",
        () => ["master", "--port", "0", "--tls-key", pki.paths.serverKey],
        /--tls-cert and --tls-key go together/,
      ],
      [
        "slave --tls-cert without --tls-key",
        () => ["slave", "--master", "127.0.0.1:1", "--tls-cert", pki.paths.clientCert],
        /--tls-cert and --tls-key go together/,
      ],
      [
        "slaves --tls-cert without --tls-key",
        () => ["slaves", "--master", "127.0.0.1:1", "--tls-cert", pki.paths.clientCert],
        /--tls-cert and --tls-key go together/,
      ],
      [
        "a missing master cert file",
        () => ["master", "--port", "0", "--tls-cert", join(pki.dir, "nope.crt"), "--tls-key", pki.paths.serverKey],
        /--tls-cert: cannot read .*nope\.crt: ENOENT/,
      ],
      [
        "a missing CA file",
        () => ["slave", "--master", "127.0.0.1:1", "--tls-ca", join(pki.dir, "nope-ca.crt")],
        /--tls-ca: cannot read .*nope-ca\.crt: ENOENT/,
      ],
      [
        "a missing token file",
        () => ["slaves", "--master", "127.0.0.1:1", "--token-file", join(pki.dir, "nope.token")],
        /--token-file: cannot read .*nope\.token: ENOENT/,
      ],
      [
        "--tls-client-ca without a certificate",
        () => ["master", "--port", "0", "--tls-client-ca", pki.paths.ca],
        /--tls-client-ca needs --tls-cert/,
      ],
    ] as const) {
      it(`exits 2 with a one-line error on ${name}`, async () => {
        const r = runCli([...args()]);
        expect((await r.exit).code, r.output()).to.equal(2);
        const lines = meaningfulLines(r.output());
        expect(lines, r.output()).to.have.length(1);
        expect(lines[0])
          .to.match(/^error: /)
          .and.to.match(message);
      });
    }
  });
});
