/** CommandLog (src/slave/command-log.ts): the slave's bounded memory of the commands it ran, by command_id. */
import { expect } from "chai";
import { CommandLog, type CommandResult } from "../../src/slave/command-log.js";

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
