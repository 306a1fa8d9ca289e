import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CLI_TEST_ENV, killAllCli, runCli } from "../../cli-process.js";
import { cleanup, onceWhere, RELAXED_HEARTBEAT, startMaster, track, waitFor } from "../../helpers.js";

/** Heartbeats a CLI process on a busy machine keeps up with. */
const RELAXED = RELAXED_HEARTBEAT;

describe("cli slave --exec", function () {
  this.timeout(20_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("runs the program for each command: stdin the data, stdout the reply, a non-zero exit an error reply", async () => {
    const master = await startMaster({ token: "s3cret", ...RELAXED });
    const connected = onceWhere(master, "slave:connected", (e) => e.slave.id === "exec-cli", 8_000);
    // The program sees the data, not the slave's token.
    const script =
      'read -r line; [ "$line" != fail ] || { echo "refused: $line" >&2; exit 4; }; echo "$line" | tr a-z A-Z; echo "token=$NETSYNC_TOKEN"';
    const run = runCli(["slave", "--master", master.address, "--id", "exec-cli", "--exec", "sh", "--", "-c", script], {
      ...CLI_TEST_ENV,
      NETSYNC_TOKEN: "s3cret",
    });
    await connected;

    expect(await master.request("exec-cli", "hello", { timeout: 5_000 })).to.equal("HELLO\ntoken=\n");
    const reply = await master.requestReply("exec-cli", "fail", { timeout: 5_000 });
    expect(reply.result).to.deep.equal({ case: "error", value: "sh exited with code 4; stderr: refused: fail" });

    run.child.kill("SIGTERM");
    expect((await run.exit).code, run.output()).to.equal(0);
    expect(run.output()).to.match(/--exec: every custom command runs "sh" "-c" .* as this user \(timeout 1m, 4 at once, 64 waiting\)/);
  });

  it("on SIGTERM kills the running program, answers its command with an error, and exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "netsync-cli-exec-"));
    track(() => rmSync(dir, { recursive: true, force: true }));
    const pidFile = join(dir, "pid");
    const master = await startMaster(RELAXED);
    const connected = onceWhere(master, "slave:connected", (e) => e.slave.id === "exec-cli", 8_000);
    const run = runCli(
      [
        "slave",
        "--master",
        master.address,
        "--id",
        "exec-cli",
        "--exec-timeout",
        "30s",
        "--exec",
        "sh",
        "--",
        "-c",
        'echo $$ > "$1"; exec sleep 100',
        "sh",
        pidFile,
      ],
      CLI_TEST_ENV,
    );
    await connected;

    const reply = master.requestReply("exec-cli", "", { timeout: 10_000 });
    await waitFor(() => readFileSync(pidFile, { encoding: "utf8", flag: "a+" }).endsWith("\n"), 5_000, "the program started");
    const pid = Number(readFileSync(pidFile, "utf8"));
    run.child.kill("SIGTERM");
    expect((await reply).result).to.deep.equal({ case: "error", value: "sh killed: the slave is closing" });
    expect((await run.exit).code, run.output()).to.equal(0);
    expect(() => process.kill(pid, 0), "the program is gone").to.throw(/ESRCH/);
  });

  for (const [name, args, message] of [
    [
      "arguments without --exec",
      ["slave", "--master", "127.0.0.1:1", "stray"],
      /unexpected argument 'stray': arguments go with --exec PROGRAM/,
    ],
    ["--exec-timeout without --exec", ["slave", "--master", "127.0.0.1:1", "--exec-timeout", "5s"], /--exec-timeout goes with --exec/],
    ["a bad --exec-concurrency", ["slave", "--master", "127.0.0.1:1", "--exec", "cat", "--exec-concurrency", "0"], /integer from 1/],
    [
      "a --command-journal that cannot be opened",
      ["slave", "--master", "127.0.0.1:1", "--command-journal", "/nonexistent/dir/journal"],
      /--command-journal: cannot open the command journal \/nonexistent\/dir\/journal: ENOENT/,
    ],
  ] as const) {
    it(`exits 2 with a one-line error on ${name}`, async () => {
      const run = runCli([...args], CLI_TEST_ENV);
      expect((await run.exit).code).to.equal(2);
      const lines = run.output().trim().split("\n");
      expect(lines).to.have.length(1);
      expect(lines[0])
        .to.match(/^error: /)
        .and.to.match(message);
    });
  }
});
