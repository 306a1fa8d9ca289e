import { expect } from "chai";
import { RefusalLog } from "../../src/server/refusal-log.js";

describe("RefusalLog", () => {
  it("logs one line per host per interval with the count since its last line, and remembers at most maxPeers hosts", () => {
    let now = 0;
    const lines: string[] = [];
    const log = new RefusalLog({ warn: (line: string) => lines.push(line) } as never, 1_000, 2, () => now);
    for (let port = 1; port <= 5; port++) log.refused(`127.0.0.1:${port}`, "/Sync", "wrong bearer token");
    expect(lines).to.have.length(1);
    now = 1_000;
    log.refused("127.0.0.1:6", "/Sync", "wrong bearer token");
    expect(lines[1]).to.match(
      /^refused \/Sync from 127\.0\.0\.1:6: wrong bearer token \(4 more refused from 127\.0\.0\.1 since its last line; /,
    );
    log.refused("10.0.0.1:1", "/Sync", "missing bearer token");
    log.refused("127.0.0.1:7", "/Sync", "wrong bearer token");
    // A third host forgets the one logged longest ago, with a line for what it had not logged.
    log.refused("10.0.0.2:1", "/Sync", "missing bearer token");
    expect(log.size).to.equal(2);
    expect(lines.at(-1)).to.equal("refused 1 more calls from 127.0.0.1 (no longer tracked)");
  });
});
