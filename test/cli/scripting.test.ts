import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { buildProgram } from "../../src/cli/main.js";
import { CLI_BIN, CLI_TEST_ENV, killAllCli, runCli } from "../cli-process.js";
import { cleanup, startMaster, startSlave } from "../helpers.js";

/** Runs the built CLI to completion with extra environment; never rejects. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const run = runCli(args, { ...CLI_TEST_ENV, ...env });
  const timer = setTimeout(() => run.child.kill("SIGKILL"), 8_000);
  const { code } = await run.exit;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

describe("cli for scripts", function () {
  this.timeout(15_000);

  afterEach(async () => {
    killAllCli();
    await cleanup();
  });

  it("gives every flag of every command a NETSYNC_ variable but the log flags, which logger.ts reads itself", () => {
    const program = buildProgram();
    const missing: string[] = [];
    for (const command of [program, ...program.commands])
      for (const option of command.options) {
        const own = ["--version", "--log-level", "--log-format"].includes(option.long!);
        if (own !== (option.envVar === undefined)) missing.push(`${command.name()} ${option.long} ${option.envVar}`);
        if (option.envVar !== undefined)
          expect(option.envVar).to.equal(`NETSYNC_${option.long!.slice(2).replace(/-/g, "_").toUpperCase()}`);
      }
    expect(missing).to.deep.equal([]);
  });

  it("takes --master and a switch from the environment; the command line wins; a bad value names its variable", async () => {
    const master = await startMaster();
    await startSlave(master.address, { id: "env-listed" });
    const [fromEnv, flagWins, badValue, offSwitch] = await Promise.all([
      cli(["slaves"], { NETSYNC_MASTER: master.address, NETSYNC_JSON: "1" }),
      cli(["slaves", "--master", master.address], { NETSYNC_MASTER: "127.0.0.1:1" }),
      cli(["master"], { NETSYNC_PORT: "x" }),
      cli(["slaves"], { NETSYNC_MASTER: master.address, NETSYNC_JSON: "0" }),
    ]);
    expect(fromEnv.code, fromEnv.stderr).to.equal(0);
    expect(JSON.parse(fromEnv.stdout).id).to.equal("env-listed");
    expect(flagWins.code, flagWins.stderr).to.equal(0);
    expect(flagWins.stdout).to.match(/^ID\s+MASTER/);
    expect(badValue.code).to.equal(2);
    expect(badValue.stderr).to.match(/^error: .*'x' from env 'NETSYNC_PORT' is invalid/);
    expect(offSwitch.code).to.equal(2);
    expect(offSwitch.stderr).to.equal("error: NETSYNC_JSON=0 would turn --json on: set it to 1 to turn it on, unset it to leave it off\n");
  });

  it("send --json: one object of the same shape for --to, --selector and --all, nothing on stderr", async () => {
    const master = await startMaster();
    await startSlave(master.address, { id: "json-a", labels: { role: "db" }, onCommand: (c) => `got ${c.data}` });
    await startSlave(master.address, { id: "json-b" });
    const base = ["send", "--master", master.address, "--json"];
    const runs = await Promise.all([
      cli([...base, "--to", "json-a", "x"]),
      cli([...base, "--selector", "role=db", "x"]),
      cli([...base, "--all", "x"]),
      cli([...base, "--to", "json-a", "--wait", "y"]),
    ]);
    for (const r of runs) {
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stderr).to.equal("");
      expect(r.stdout.trim().split("\n")).to.have.length(1);
    }
    const [to, selector, all, waited] = runs.map((r) => JSON.parse(r.stdout));
    expect(to).to.deep.equal({ written: 1, byMaster: { [master.address]: 1 }, unanswered: [] });
    expect(selector).to.deep.equal({ written: 1, byMaster: { [master.address]: 1 }, unanswered: [] });
    expect(all).to.deep.equal({ written: 2, byMaster: { [master.address]: 2 }, unanswered: [] });
    expect(waited).to.deep.equal({ written: 1, byMaster: { [master.address]: 1 }, unanswered: [], reply: "got y" });
  });

  for (const [name, args, message] of [
    [
      "--timeout without --wait",
      ["send", "--master", "127.0.0.1:1", "--to", "a", "--timeout", "1s", "x"],
      /^error: --timeout goes with --wait/,
    ],
    [
      "--to with --all",
      ["send", "--master", "127.0.0.1:1", "--to", "a", "--all", "x"],
      /^error: option '--to <id>' cannot be used with option '--all'/,
    ],
    [
      "--to with --selector",
      ["send", "--master", "127.0.0.1:1", "--to", "a", "--selector", "r=1", "x"],
      /^error: option '--to <id>' cannot be used with option '--selector/,
    ],
    ["no target", ["send", "--master", "127.0.0.1:1", "x"], /^error: say whom to send to: --to ID, --selector SELECTOR or --all\n$/],
    ["--wait with --all", ["send", "--master", "127.0.0.1:1", "--all", "--wait", "x"], /^error: --wait goes with --to: only one/],
    ["an unknown shell", ["completion", "fish"], /^error: command-argument value 'fish' is invalid.*bash, zsh/],
  ] as const) {
    it(`refuses ${name} with exit 2 and one line`, async () => {
      const r = await cli([...args]);
      expect(r.code).to.equal(2);
      expect(r.stdout).to.equal("");
      expect(r.stderr.trim().split("\n")).to.have.length(1);
      expect(r.stderr).to.match(message);
    });
  }

  it("lists masters as one JSON object per line", async () => {
    const master = await startMaster();
    const r = await cli(["masters", "--master", master.address, "--json"]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr, "--json: the cluster note is left out").to.equal("");
    const lines = r.stdout.trim().split("\n");
    expect(lines).to.have.length(1);
    const m = JSON.parse(lines[0]!);
    expect(m).to.include({ id: master.address, address: master.address, slavesHeld: 0 });
    expect(m.lastHeard)
      .to.be.a("number")
      .within(Date.now() - 5_000, Date.now());
  });

  describe("completion", () => {
    /** Sources the script in bash, sets the words typed so far and calls the completion function. */
    function complete(words: string[]): string[] {
      const script = spawnSync(process.execPath, [CLI_BIN, "completion", "bash"], { encoding: "utf8", env: CLI_TEST_ENV });
      expect(script.status, script.stderr).to.equal(0);
      const dir = mkdtempSync(join(tmpdir(), "netsync-completion-"));
      try {
        writeFileSync(join(dir, "netsync.bash"), script.stdout);
        const quoted = words.map((w) => `'${w}'`).join(" ");
        const r = spawnSync(
          "bash",
          [
            "-c",
            `source "$1"; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _netsync; printf '%s\\n' "\${COMPREPLY[@]}"`,
            "_",
            join(dir, "netsync.bash"),
          ],
          { encoding: "utf8" },
        );
        expect(r.status, r.stderr).to.equal(0);
        return r.stdout.split("\n").filter(Boolean);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }

    it("completes a subcommand, a flag of that subcommand, a choice, and skips a global flag's value", () => {
      expect(complete(["netsync", "sl"])).to.deep.equal(["slave", "slaves"]);
      expect(complete(["netsync", "send", "--ti"])).to.deep.equal(["--timeout"]);
      expect(complete(["netsync", "send", "--to", "x", "--js"])).to.deep.equal(["--json"]);
      expect(complete(["netsync", "--log-level", "de"])).to.deep.equal(["debug"]);
      expect(complete(["netsync", "--log-level", "debug", "master", "--heartbeat-i"])).to.deep.equal(["--heartbeat-interval"]);
      expect(complete(["netsync", "completion", ""])).to.include.members(["bash", "zsh"]);
      expect(complete(["netsync", "jo"])).to.deep.equal(["job", "jobs"]);
      expect(complete(["netsync", "run", "--to", "a", "b", "--deliver"])).to.deep.equal(["--deliver-within"]);
    });

    it("prints a zsh script that loads the same function through bashcompinit", () => {
      const r = spawnSync(process.execPath, [CLI_BIN, "completion", "zsh"], { encoding: "utf8", env: CLI_TEST_ENV });
      expect(r.status).to.equal(0);
      expect(r.stdout).to.match(/^#compdef netsync\nautoload -U \+X bashcompinit && bashcompinit\n/);
      expect(r.stdout).to.match(/complete -o default -F _netsync netsync/);
    });
  });
});
