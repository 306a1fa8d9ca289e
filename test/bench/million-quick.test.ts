// `npm run bench:million -- --quick` as a child process: 20,000 synthetic slaves on 9 real masters over a
// 3-node NATS cluster; it exits non-zero if a check fails (slow consumers, the full listing, routes after a
// NATS restart, the re-announce traffic bound). About 15 s on a 2-core machine.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { haveNatsServer } from "../cluster/nats-server.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LIMIT_MS = 80_000;

describe("bench:million --quick", function () {
  this.timeout(LIMIT_MS + 5_000);

  it("fills, lists, restarts NATS and fails a master over with every check passing", async function () {
    if (!(await haveNatsServer())) this.skip();
    const dir = mkdtempSync(join(tmpdir(), "million-quick-"));
    const out = join(dir, "million.json");
    try {
      const child = spawn(process.execPath, ["--import", "tsx", "bench/million/main.ts", "--quick", "--out", out], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      const timer = setTimeout(() => child.kill("SIGTERM"), LIMIT_MS);
      const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
      clearTimeout(timer);
      expect(code, output).to.equal(0);
      expect(output).to.match(/claims traffic after the NATS restart: max [\d.]+ bytes received per own slave/);
      const report = JSON.parse(readFileSync(out, "utf8")) as { failures: string[]; passes: { listing: { count: number } }[] };
      expect(report.failures).to.deep.equal([]);
      expect(report.passes[0]!.listing.count).to.equal(20_000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
