// Interop: the Python slave of examples/python-slave, built from stubs that
// grpc_tools.protoc generates from proto/netsync/v1/netsync.proto, against a
// real Master. Needs /usr/bin/python3 with grpcio and grpc_tools (Debian:
// .ci/install-debian.sh); without them the suite is skipped, loudly.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { Master, type SlaveEvent, silentLogger } from "../../src/index.js";

const PYTHON = "/usr/bin/python3";
const EXAMPLE_DIR = fileURLToPath(new URL("../../examples/python-slave/", import.meta.url));
const SLAVE_ID = "py-1";
const HEARTBEAT_INTERVAL = 50;
const HEARTBEAT_TIMEOUT = 200;

const SKIP_BANNER = [
  "",
  "=".repeat(78),
  "  SKIPPED: Python interop test needs python3-grpcio and python3-grpc-tools;",
  "  run .ci/install-debian.sh",
  `  (\`${PYTHON} -c "import grpc, grpc_tools"\` failed)`,
  "=".repeat(78),
  "",
].join("\n");

function pythonHasGrpc(): boolean {
  return spawnSync(PYTHON, ["-c", "import grpc, grpc_tools"], { stdio: "ignore" }).status === 0;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A running Python slave, with its output collected for assertions and failure messages. */
class PythonSlave {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  stdout = "";
  stderr = "";
  private readonly waiters = new Set<() => void>();

  constructor(masterAddress: string, genDir: string) {
    this.child = spawn(PYTHON, [path.join(EXAMPLE_DIR, "slave.py"), "--master", masterAddress, "--id", SLAVE_ID], {
      env: { ...process.env, PYTHONPATH: genDir, PYTHONDONTWRITEBYTECODE: "1", PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stdout += chunk;
      for (const waiter of this.waiters) waiter();
    });
    this.child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything it printed, for failure messages. */
  get output(): string {
    return `--- python stdout ---\n${this.stdout}--- python stderr ---\n${this.stderr}`;
  }

  /** Resolves once stdout contains `text`. */
  waitForStdout(text: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.stdout.includes(text)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`python slave did not print ${JSON.stringify(text)} within ${timeoutMs} ms\n${this.output}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async kill(): Promise<void> {
    if (this.running) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** Resolves with the next `event` of the master about `id`; rejects after `timeoutMs`. */
function nextEvent(
  master: Master,
  event: "slave:connected" | "slave:disconnected" | "slave:evicted",
  id: string,
  timeoutMs: number,
  context: () => string,
): Promise<SlaveEvent> {
  return new Promise((resolve, reject) => {
    const listener = (e: SlaveEvent) => {
      if (e.slave.id !== id) return;
      master.off(event, listener);
      clearTimeout(timer);
      resolve(e);
    };
    const timer = setTimeout(() => {
      master.off(event, listener);
      reject(new Error(`master emitted no "${event}" for ${id} within ${timeoutMs} ms\n${context()}`));
    }, timeoutMs);
    master.on(event, listener);
  });
}

describe("interop: Python slave (examples/python-slave)", function () {
  this.timeout(10_000);

  let genDir: string | undefined;
  let master: Master | undefined;
  let python: PythonSlave | undefined;
  /** Every removal the master reported, in order. */
  let removals: string[];
  /** From spawning the Python process to "slave:connected". */
  let connectMs = 0;

  before(function () {
    if (!pythonHasGrpc()) {
      console.warn(SKIP_BANNER);
      this.skip();
    }
    // Generate the stubs into a temporary directory, so the repository stays clean.
    genDir = mkdtempSync(path.join(tmpdir(), "netsync-python-gen-"));
    const result = spawnSync("bash", [path.join(EXAMPLE_DIR, "generate.sh"), genDir], {
      encoding: "utf8",
      env: { ...process.env, PYTHON },
    });
    if (result.status !== 0) {
      throw new Error(`generate.sh failed (status ${result.status}):\n${result.stdout}${result.stderr}`);
    }
  });

  after(() => {
    if (genDir) rmSync(genDir, { recursive: true, force: true });
  });

  /** A master on a free port and a Python slave registered with it. */
  beforeEach(async () => {
    removals = [];
    master = new Master({
      host: "127.0.0.1",
      port: 0,
      heartbeatInterval: HEARTBEAT_INTERVAL,
      heartbeatTimeout: HEARTBEAT_TIMEOUT,
      logger: silentLogger(),
    });
    master.on("slave:evicted", (e) => removals.push(`evicted ${e.slave.id}: ${e.details}`));
    master.on("slave:disconnected", (e) => removals.push(`disconnected ${e.slave.id}: ${e.details}`));
    const port = await master.listen();
    const m = master;
    const connected = nextEvent(m, "slave:connected", SLAVE_ID, 5_000, () => python?.output ?? "");
    const spawnedAt = performance.now();
    python = new PythonSlave(`127.0.0.1:${port}`, genDir!);
    await connected;
    connectMs = performance.now() - spawnedAt;
  });

  afterEach(async () => {
    await python?.kill();
    python = undefined;
    await master?.close();
    master = undefined;
  });

  it("stays registered for more than three heartbeat timeouts, answering every ping", async () => {
    const m = master!;
    const first = m.slaves().find((s) => s.id === SLAVE_ID);
    expect(first, "py-1 in the registry").to.not.equal(undefined);

    await sleep(4 * HEARTBEAT_TIMEOUT); // 800 ms: 16 heartbeat rounds

    expect(removals, `no eviction or disconnect\n${python!.output}`).to.deep.equal([]);
    const later = m.slaves().find((s) => s.id === SLAVE_ID);
    expect(later, "py-1 still in the registry").to.not.equal(undefined);
    expect(later!.connectedAt.getTime(), "the same registration (no reconnect)").to.equal(first!.connectedAt.getTime());
    // 16 rounds went by; allow for a loaded machine but demand steady answers.
    expect(later!.pongsReceived - first!.pongsReceived, "pongs received in 800 ms").to.be.at.least(8);
    expect(later!.rttMs, "an RTT was measured").to.be.a("number");
    console.log(
      `      (spawn → connected in ${connectMs.toFixed(0)} ms; ${later!.pongsReceived - first!.pongsReceived} pongs in ` +
        `${4 * HEARTBEAT_TIMEOUT} ms, RTT ${later!.rttMs!.toFixed(2)} ms)`,
    );
  });

  it("prints a broadcast Custom command", async () => {
    const data = `hello from node ${process.pid}-${Date.now()}`;
    expect(master!.broadcast(data), "written to one slave").to.equal(1);
    await python!.waitForStdout(`command: ${data}\n`, 2_000);
    expect(master!.slaves().find((s) => s.id === SLAVE_ID)?.commandsSent).to.equal(1);
  });

  it("answers a Custom that asks for a reply with a Reply carrying its request_id", async () => {
    const reply = await master!.requestReply(SLAVE_ID, "ping-pong", { timeout: 2_000 });
    expect(reply.result, "a data result").to.deep.equal({ case: "data", value: "python:ping-pong" });
    expect(reply.requestId, "the request_id the master chose").to.not.equal(0n);
    await python!.waitForStdout("command: ping-pong\n", 1_000);
  });

  it("runs a command with a command_id once: a repeat is answered with the first result and not run again", async () => {
    const data = `once ${process.pid}-${Date.now()}`;
    const first = await master!.requestReply(SLAVE_ID, { data, commandId: `c-${data}` }, { timeout: 2_000 });
    const repeat = await master!.requestReply(SLAVE_ID, { data, commandId: `c-${data}` }, { timeout: 2_000 });
    const expected = { case: "data", value: `python:${data}` };
    expect([first.result, repeat.result]).to.deep.equal([expected, expected]);
    expect(repeat.requestId, "the repeat answered under its own request_id").to.not.equal(first.requestId);
    // A repeat that asks for no reply is not run either.
    expect(master!.send(SLAVE_ID, { data, commandId: `c-${data}` }), "written").to.equal(1);
    await python!.waitForStdout(`command: ${data}\n`, 1_000);
    // A marker after both: by the time it is printed, a second run of the repeat would have been too.
    await master!.request(SLAVE_ID, "marker", { timeout: 2_000 });
    await python!.waitForStdout("command: marker\n", 1_000);
    expect(python!.stdout.split(`command: ${data}\n`).length - 1, "times the command ran").to.equal(1);
  });

  it("remembers command_ids bounded in count and age (its CommandLog, on a clock of the test's)", () => {
    const check = `
import slave
t = [0.0]
log = slave.CommandLog(max_entries=2, max_age=10.0, now=lambda: t[0])
log.add("a", "ra"); log.add("b", "rb")
assert log.get("a") == "ra"
log.add("c", "rc")  # one too many: the oldest goes
assert (log.get("a"), log.get("b"), len(log)) == (None, "rb", 2), log.entries
t[0] = 10.0
assert log.get("b") == "rb", "kept up to its age"
t[0] = 10.5
assert log.get("b") is None, "gone past its age"
log.add("d", "rd")  # c, run at 0, is too old as well
assert list(log.entries) == ["d"], log.entries
assert (slave.RAN_ENTRIES, slave.RAN_MAX_AGE) == (10_000, 600.0)
print("ok")
`;
    const result = spawnSync(PYTHON, ["-c", check], {
      cwd: EXAMPLE_DIR,
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: genDir, PYTHONDONTWRITEBYTECODE: "1" },
    });
    expect(result.stdout + result.stderr).to.equal("ok\n");
  });

  it("on SIGTERM half-closes its stream, so the master sees a clean leave, and exits 0", async () => {
    const m = master!;
    const disconnected = nextEvent(m, "slave:disconnected", SLAVE_ID, 2_000, () => python!.output);
    const exitCode = new Promise<number | null>((resolve) => python!.child.once("exit", (code) => resolve(code)));
    python!.child.kill("SIGTERM");
    const event = await disconnected;
    expect(event.details, "the slave ended its side of the stream").to.equal("slave closed the stream");
    expect(await exitCode, python!.output).to.equal(0);
    expect(
      removals.filter((r) => r.startsWith("evicted")),
      "not evicted",
    ).to.deep.equal([]);
  });

  it("is reported disconnected within 1 s when the Python process is SIGKILLed", async () => {
    const m = master!;
    const disconnected = nextEvent(m, "slave:disconnected", SLAVE_ID, 1_000, () => `removals: ${removals.join("; ")}`);
    const killedAt = performance.now();
    python!.child.kill("SIGKILL");
    const event = await disconnected;
    const elapsed = performance.now() - killedAt;
    expect(elapsed).to.be.below(1_000);
    console.log(`      (SIGKILL → "slave:disconnected" in ${elapsed.toFixed(0)} ms)`);
    expect(event.reason, event.details).to.equal("disconnected");
    expect(m.slaves().map((s) => s.id)).to.not.include(SLAVE_ID);
    expect(
      removals.filter((r) => r.startsWith("evicted")),
      "not evicted",
    ).to.deep.equal([]);
  });
});
