/** CommandLog (src/slave/command-log.ts): the slave's bounded memory of the commands it ran, by command_id. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { CommandJournal } from "../../src/slave/command-journal.js";
import { CommandLog, type CommandResult, INTERRUPTED } from "../../src/slave/command-log.js";

const done = (value: string): Promise<CommandResult> => Promise.resolve({ case: "data", value });

describe("CommandLog", () => {
  it("keeps at most maxEntries, dropping the oldest first", async () => {
    const log = new CommandLog(3, 60_000, () => 0);
    for (const id of ["a", "b", "c", "d"]) log.add(id, done(id));
    expect(log.size).to.equal(3);
    expect(log.get("a")).to.equal(undefined);
    expect(await log.get("d")).to.deep.equal({ case: "data", value: "d" });
  });

  it("forgets entries older than maxAgeMs, on read and as new ones arrive", () => {
    let now = 0;
    const log = new CommandLog(100, 1_000, () => now);
    log.add("old", done("old"));
    now = 600;
    log.add("newer", done("newer"));
    now = 1_001;
    expect(log.get("old")).to.equal(undefined);
    expect(log.get("newer")).to.not.equal(undefined);
    now = 1_700;
    log.add("newest", done("newest"));
    expect(log.size).to.equal(1);
  });
});

describe("CommandLog with a journal (CommandJournal)", () => {
  const dirs: string[] = [];
  const fileIn = () => {
    const dir = mkdtempSync(join(tmpdir(), "netsync-log-"));
    dirs.push(dir);
    return join(dir, "journal.jsonl");
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("remembers across a restart: finished commands by their result, a running one as interrupted", async () => {
    const file = fileIn();
    const log = new CommandLog(100, 60_000, undefined, new CommandJournal(file));
    log.add("finished", done("result"));
    log.add("running", new Promise<CommandResult>(() => {}));
    await Promise.resolve();
    await Promise.resolve();
    // No close(): the process is killed.
    const again = new CommandLog(100, 60_000, undefined, new CommandJournal(file));
    expect(again.size).to.equal(2);
    expect(await again.get("finished")).to.deep.equal({ case: "data", value: "result" });
    expect(await again.get("running")).to.deep.equal(INTERRUPTED);
    again.close();
    log.close();
  });

  it("skips a line cut short by the kill, and forgets entries past maxAgeMs", async () => {
    const file = fileIn();
    const old = Date.now() - 120_000;
    writeFileSync(file, `${JSON.stringify({ id: "old", at: old, result: { case: "data", value: "x" } })}\n{"id":"cut","at`);
    const log = new CommandLog(100, 60_000, undefined, new CommandJournal(file));
    expect(log.size).to.equal(0);
    log.close();
  });

  it("compacts the file once it holds twice as many lines as it may keep, keeping what it remembers", async () => {
    const file = fileIn();
    const log = new CommandLog(1_000, 60_000, undefined, new CommandJournal(file));
    for (let i = 0; i < 1_500; i++) {
      log.add(`c${i}`, done(`r${i}`));
      await Promise.resolve();
    }
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean).length;
    // 1,500 commands make 3,000 lines unless compacted; the last compaction left at most 1,000 live entries.
    expect(lines).to.be.lessThan(2_100);
    log.close();
    const again = new CommandLog(1_000, 60_000, undefined, new CommandJournal(file));
    expect(again.size).to.equal(1_000);
    expect(await again.get("c1499")).to.deep.equal({ case: "data", value: "r1499" });
    expect(again.get("c0")).to.equal(undefined);
    again.close();
  });
});
