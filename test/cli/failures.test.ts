import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { expect } from "chai";
import { makeTestPki, type TestPki } from "../certs.js";
import { CLI_TEST_ENV, killAllCli, runCli } from "../cli-process.js";
import { cleanup, startMaster, startSlave } from "../helpers.js";

/** Runs the built CLI to completion; never rejects. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = runCli(args, { ...CLI_TEST_ENV, ...env });
  const timer = setTimeout(() => run.child.kill("SIGKILL"), 10_000);
  const { code } = await run.exit;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** stderr without Node's own deprecation notices (grpc-js sets an IP as TLS server name: DEP0123). */
const errorLines = (stderr: string) =>
  stderr
    .trim()
    .split("\n")
    .filter((line) => line !== "" && !/DeprecationWarning|--trace-deprecation/.test(line));

/** A port something else already holds. */
async function heldPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as { port: number }).port, server };
}

describe("cli failures say what they are, in one line", function () {
  this.timeout(15_000);
  let pki: TestPki;

  before(() => {
    pki = makeTestPki();
  });
  after(() => pki.cleanup());
  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("a master on a port in use: one sentence naming the address, exit 1 (gRPC, --http-port and --metrics-port)", async () => {
    const { port, server } = await heldPort();
    try {
      const [grpcPort, httpPort, metricsPort, json] = await Promise.all([
        cli(["master", "--port", String(port)]),
        cli(["master", "--port", "0", "--http-port", String(port)]),
        cli(["master", "--port", "0", "--metrics-port", String(port)]),
        cli(["--log-format", "json", "master", "--port", String(port)]),
      ]);
      const expected = `error: cannot listen on 127.0.0.1:${port}: the address is already in use (another master? pick another --port, or stop it)`;
      expect(grpcPort.code).to.equal(1);
      expect(grpcPort.stdout + grpcPort.stderr).to.equal(`${expected}\n`);
      for (const r of [httpPort, metricsPort]) {
        expect(r.code).to.equal(1);
        expect(errorLines(r.stderr).filter((l) => !/master stopped/.test(l))).to.deep.equal([expected]);
        expect(r.stderr).not.to.match(/No address added|EADDRINUSE/);
      }
      expect(json.code).to.equal(1);
      const line = JSON.parse(json.stderr.trim()) as { level: string; message: string };
      expect(line).to.include({ level: "error", message: expected.slice("error: ".length) });
    } finally {
      server.close();
    }
  });

  it("an admin command against a master that is not there, or a host that does not resolve", async () => {
    const { port, server } = await heldPort();
    server.close(); // a port nothing listens on
    const [refused, unresolved] = await Promise.all([
      cli(["slaves", "--master", `127.0.0.1:${port}`]),
      cli(["masters", "--master", "nohost.invalid:50051"]),
    ]);
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.equal(
      `error: cannot reach the master at 127.0.0.1:${port}: connection refused (is it running? check --master)\n`,
    );
    expect(unresolved.code).to.equal(1);
    expect(unresolved.stderr).to.equal(
      "error: cannot reach the master at nohost.invalid:50051: its host name does not resolve (check --master)\n",
    );
  });

  it("a wrong or missing token, TLS against a plaintext master, a selector the master refuses", async () => {
    const master = await startMaster({ token: "right-token" });
    const plain = await startMaster();
    const [wrong, missing, tls, selector] = await Promise.all([
      cli(["slaves", "--master", master.address], { NETSYNC_TOKEN: "wrong-token" }),
      cli(["send", "--master", master.address, "--all", "x"]),
      cli(["slaves", "--master", plain.address, "--tls-ca", pki.paths.ca]),
      cli(["slaves", "--master", plain.address, "--selector", "a in b"]),
    ]);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(
      new RegExp(
        `^error: the master at ${master.address} refused this client \\(UNAUTHENTICATED\\): .*token.* \\(give its token with --token-file or NETSYNC_TOKEN\\)\\n$`,
      ),
    );
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/^error: the master at \S+ refused this client \(UNAUTHENTICATED\): .*token/);
    expect(tls.code).to.equal(1);
    expect(errorLines(tls.stderr)).to.deep.equal([
      `error: cannot reach the master at ${plain.address}: the TLS handshake failed: wrong version number (does it serve TLS, and is --tls-ca its CA?)`,
    ]);
    expect(selector.code).to.equal(1);
    expect(selector.stderr).to.match(new RegExp(`^error: the master at ${plain.address} refused the request: .*selector "a in b"`));
  });

  it("a send --wait the slave does not answer in time names the slave", async () => {
    const master = await startMaster();
    await startSlave(master.address, { id: "slow", onCommand: () => new Promise(() => {}) /* never replies */ });
    const r = await cli(["send", "--master", master.address, "--to", "slow", "--wait", "--timeout", "200ms", "x"]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^error: slave slow did not reply within 200 ms\n$/);
  });

  it("token and TLS files that are missing or empty, with the file named and the reason in words", async () => {
    const empty = join(pki.dir, "empty.token");
    writeFileSync(empty, "\n");
    const [missingCa, emptyToken, emptyEnv, emptyClusterToken] = await Promise.all([
      cli(["slaves", "--master", "127.0.0.1:1", "--tls-ca", join(pki.dir, "nope.crt")]),
      cli(["slaves", "--master", "127.0.0.1:1", "--token-file", empty]),
      cli(["slaves", "--master", "127.0.0.1:1"], { NETSYNC_TOKEN: "" }),
      cli(["master", "--port", "0", "--cluster", "nats://127.0.0.1:1", "--cluster-token-file", empty]),
    ]);
    for (const r of [missingCa, emptyToken, emptyEnv, emptyClusterToken]) expect(r.code).to.equal(2);
    expect(missingCa.stderr).to.equal(`error: --tls-ca: cannot read ${join(pki.dir, "nope.crt")}: ENOENT (no such file)\n`);
    expect(emptyToken.stderr).to.equal(`error: --token-file: ${empty} is empty (it must hold the token)\n`);
    expect(emptyEnv.stderr).to.equal("error: NETSYNC_TOKEN is set but empty: set it to the token, or unset it\n");
    expect(emptyClusterToken.stderr).to.equal(`error: --cluster-token-file: ${empty} is empty (it must hold the NATS token)\n`);
  });
});
