import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { Code, CustomSchema, type ExecOptions, execHandler, type Master, NetSyncError } from "../../src/index.js";
import { cleanup, once, RELAXED_HEARTBEAT, rejection, startMaster, startSlave, track, waitFor } from "../helpers.js";

/** A master and a slave `id` whose commands run `options.program`; the handler is closed by cleanup(). */
async function execSlave(options: ExecOptions, id = "exec-1") {
  const master = await startMaster(RELAXED_HEARTBEAT);
  const exec = execHandler(options);
  track(() => exec.close());
  const slave = await startSlave(master.address, { id, onCommand: exec, masterTimeout: 5_000 });
  return { master, slave, exec, id };
}

/** A temporary directory, removed by cleanup(). */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "netsync-exec-"));
  track(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The lines of `file` so far ([] before it exists). */
function lines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

/** Whether `pid` is a live process (a zombie waiting for its parent to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

/** The Reply's error, failing the test if the slave answered with data. */
async function errorOf(master: Master, id: string, data: string, timeout = 5_000): Promise<string> {
  const reply = await master.requestReply(id, data, { timeout });
  if (reply.result.case !== "error") expect.fail(`expected an error reply, got ${JSON.stringify(reply.result)}`);
  return reply.result.value;
}

const processes = () => process.getActiveResourcesInfo().filter((name) => name === "ProcessWrap").length;

describe("execHandler: a slave that runs a program per command", function () {
  this.timeout(15_000);
  afterEach(cleanup);

  it("gives the command's data to the program's stdin and replies with its stdout", async () => {
    const { master, id } = await execSlave({ program: "cat" });
    const data = "hello\nwörld ✓ 😀\n";
    expect(await master.request(id, data, { timeout: 5_000 })).to.equal(data);
    expect(await master.request(id, "", { timeout: 5_000 })).to.equal("");
  });

  it("passes the arguments as given, without a shell", async () => {
    const { master, id } = await execSlave({ program: "printf", args: ["%s|", "a b", "$HOME", "*", ";echo no"] });
    expect(await master.request(id, "", { timeout: 5_000 })).to.equal("a b|$HOME|*|;echo no|");
  });

  it("answers a non-zero exit with an error carrying the exit code and the tail of stderr", async () => {
    const script = 'cat >/dev/null; echo partial; head -c 5000 /dev/zero | tr "\\0" e >&2; echo "bad input: no such user" >&2; exit 3';
    const { master, id } = await execSlave({ program: "sh", args: ["-c", script] });
    const error = await errorOf(master, id, "x");
    expect(error).to.match(/^sh exited with code 3; stderr: …e+bad input: no such user$/);
    // The last 2 KiB of stderr, not all 5 KiB of it.
    expect(error.length).to.be.within(2_000, 2_100);

    const err = await rejection(master.request(id, "x", { timeout: 5_000 }), 5_000, "a request whose program fails");
    expect(err.code).to.equal(Code.UNKNOWN);
    expect(err.message).to.contain("sh exited with code 3");
  });

  it("answers a death by signal with an error naming the signal", async () => {
    const { master, id } = await execSlave({ program: "sh", args: ["-c", "echo dying >&2; kill -TERM $$"] });
    expect(await errorOf(master, id, "")).to.equal("sh was killed by SIGTERM; stderr: dying");
  });

  it("answers a program that cannot start with an error, and keeps serving", async () => {
    const { master, slave, id } = await execSlave({ program: "/nonexistent/netsync-program" });
    expect(await errorOf(master, id, "")).to.match(/^cannot run \/nonexistent\/netsync-program: .*ENOENT/);
    expect(slave.state).to.equal("open");
  });

  it("on timeout kills the program's whole process group and replies 'timed out after …'", async () => {
    const pids = join(tempDir(), "pids");
    // A background sleep and, in the shell's place, a foreground one: both in the program's process group.
    const script = 'sleep 100 & echo $! >> "$1"; echo $$ >> "$1"; echo started >&2; exec sleep 100';
    const { master, exec, id } = await execSlave({ program: "sh", args: ["-c", script, "sh", pids], timeout: 1_000 });
    const reply = errorOf(master, id, "");
    await waitFor(() => lines(pids).length === 2, 5_000, "both sleeps started");
    const [background, foreground] = lines(pids).map(Number) as [number, number];
    expect(alive(background) && alive(foreground), "both sleeps run").to.equal(true);

    expect(await reply).to.equal("sh timed out after 1 s (process group killed); stderr: started");
    expect(alive(foreground), "the group leader is gone").to.equal(false);
    // The orphaned background sleep is reaped by init, a moment after the kill.
    await waitFor(() => !alive(background), 2_000, "the background sleep gone");
    expect(exec.running).to.equal(0);
  });

  it("runs at most `concurrency` programs at once; the others wait their turn, first come first served", async () => {
    const log = join(tempDir(), "log");
    const script = 'read n; echo "+ $n" >> "$1"; sleep 0.2; echo "- $n" >> "$1"; echo "$n"';
    const { master, id } = await execSlave({ program: "sh", args: ["-c", script, "sh", log], concurrency: 2 });
    const replies = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => master.request(id, `${n}\n`, { timeout: 10_000 })));
    expect(replies).to.deep.equal(["1\n", "2\n", "3\n", "4\n", "5\n", "6\n"]);

    let now = 0;
    let most = 0;
    for (const line of lines(log)) {
      now += line.startsWith("+") ? 1 : -1;
      most = Math.max(most, now);
    }
    expect(most, `most running at once, from the programs' own log:\n${lines(log).join("\n")}`).to.equal(2);
    const starts = lines(log).filter((line) => line.startsWith("+"));
    // Two at a time, in the order they came (the two of a pair start together, so either may log first).
    const pairs = [0, 2, 4].map((i) => starts.slice(i, i + 2).sort());
    expect(pairs, "started in pairs, in order").to.deep.equal([
      ["+ 1", "+ 2"],
      ["+ 3", "+ 4"],
      ["+ 5", "+ 6"],
    ]);
  });

  it("refuses a command at once when the queue is full", async () => {
    const gate = join(tempDir(), "open");
    // Each program waits for the test to create `gate`, then echoes its input.
    const script = 'while [ ! -e "$1" ]; do sleep 0.01; done; cat';
    const { master, exec, id } = await execSlave({ program: "sh", args: ["-c", script, "sh", gate], concurrency: 1, queue: 1 });
    const first = master.request(id, "first", { timeout: 5_000 });
    const second = master.request(id, "second", { timeout: 5_000 });
    expect(await errorOf(master, id, "third")).to.equal("not run: the slave is busy (1 running, 1 waiting)");
    expect([exec.running, exec.queued]).to.deep.equal([1, 1]);
    writeFileSync(gate, "");
    expect(await Promise.all([first, second])).to.deep.equal(["first", "second"]);
  });

  it("caps the reply at 64 KiB of stdout and says so", async () => {
    const { master, id } = await execSlave({ program: "sh", args: ["-c", 'head -c 100000 /dev/zero | tr "\\0" x'] });
    const reply = await master.request(id, "", { timeout: 5_000 });
    expect(reply).to.equal(`${"x".repeat(65_536)}\n[output truncated: the first 65536 of 100000 bytes]`);
  });

  it("cuts the stdout at a character boundary", async () => {
    const { master, id } = await execSlave({ program: "cat", maxOutputBytes: 5 });
    expect(await master.request(id, "ééé", { timeout: 5_000 })).to.equal("éé\n[output truncated: the first 5 of 6 bytes]");
    expect(await master.request(id, "éé", { timeout: 5_000 })).to.equal("éé");
  });

  it("runs a command repeated with the same command_id once (the slave's dedupe)", async () => {
    const log = join(tempDir(), "log");
    const { master, id } = await execSlave({ program: "sh", args: ["-c", 'echo ran >> "$1"; echo "run $(wc -l < "$1")"', "sh", log] });
    const first = await master.request(id, { data: "", commandId: "c-1" }, { timeout: 5_000 });
    const repeat = await master.request(id, { data: "", commandId: "c-1" }, { timeout: 5_000 });
    expect([first, repeat]).to.deep.equal(["run 1\n", "run 1\n"]);
    expect(await master.request(id, { data: "", commandId: "c-2" }, { timeout: 5_000 })).to.equal("run 2\n");
    expect(lines(log)).to.have.length(2);
  });

  it("close() kills every running program's process group, fails the queued commands and leaves no process open", async () => {
    const baseline = { processes: processes(), exitListeners: process.listenerCount("exit") };
    const pids = join(tempDir(), "pids");
    const script = 'sleep 100 & echo $! >> "$1"; echo $$ >> "$1"; exec sleep 100';
    const { master, slave, exec, id } = await execSlave({ program: "sh", args: ["-c", script, "sh", pids], concurrency: 2, queue: 1 });
    const running = [errorOf(master, id, "a"), errorOf(master, id, "b")];
    const queued = errorOf(master, id, "c");
    await waitFor(() => lines(pids).length === 4 && exec.queued === 1, 5_000, "two programs started (two sleeps each), one queued");
    expect(processes()).to.equal(baseline.processes + 2);

    // The slave closed right after the handler still sends the error replies of the commands it failed.
    await exec.close();
    await slave.close();
    expect(await Promise.all(running)).to.deep.equal(["sh killed: the slave is closing", "sh killed: the slave is closing"]);
    expect(await queued).to.equal("not run: the slave is closing");
    const after = await rejection(exec(create(CustomSchema, { data: "d" }), { slaveId: id }), 1_000, "a command after close()");
    expect([after.code, after.message]).to.deep.equal([Code.UNAVAILABLE, "not run: the slave is closing"]);
    expect([exec.running, exec.queued]).to.deep.equal([0, 0]);
    expect(processes(), "no child process handle left").to.equal(baseline.processes);
    expect(process.listenerCount("exit"), "no exit listener left").to.equal(baseline.exitListeners);
    const all = lines(pids).map(Number);
    await waitFor(() => !all.some(alive), 2_000, "every program and its background sleep gone");
  });

  it("kills its programs when the process exits without close()", async () => {
    const pids = join(tempDir(), "pids");
    // Another node process: it starts one program through the handler and, once the program runs, calls process.exit().
    const code = `
      const { readFileSync } = await import("node:fs");
      const { execHandler } = await import(${JSON.stringify(new URL("../../src/index.ts", import.meta.url).href)});
      const exec = execHandler({ program: "sh", args: ["-c", 'echo $$ >> "$1"; exec sleep 100', "sh", ${JSON.stringify(pids)}] });
      exec({ data: "" }, { slaveId: "x" }).catch(() => {});
      const started = () => { try { return readFileSync(${JSON.stringify(pids)}, "utf8").endsWith("\\n"); } catch { return false; } };
      const wait = () => (started() ? process.exit(0) : setTimeout(wait, 10));
      wait();
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "--eval", code], { stdio: "inherit" });
    const [status] = await once(child, "exit", 10_000);
    expect(status, "the other process exited by itself").to.equal(0);
    const [pid] = lines(pids).map(Number) as [number];
    await waitFor(() => !alive(pid), 2_000, "its program gone with it");
  });

  it("refuses bad options with INVALID_ARGUMENT", () => {
    for (const options of [
      { program: "" },
      { program: "cat", timeout: 0 },
      { program: "cat", concurrency: 0 },
      { program: "cat", queue: -1 },
      { program: "cat", maxOutputBytes: 1.5 },
    ]) {
      expect(() => execHandler(options), JSON.stringify(options))
        .to.throw(NetSyncError)
        .with.property("code", Code.INVALID_ARGUMENT);
    }
  });
});
