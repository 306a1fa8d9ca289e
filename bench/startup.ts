/**
 * CLI startup time: `npm run bench:startup [-- --runs 15 --baseline DIR]`.
 *
 * Spawns the CLI `--runs` times (after one unmeasured warm-up run) for each of
 * `--version` and `master --help`, and prints the median and p90 wall time in
 * ms, from spawn to the child's exit. Targets:
 *
 * - built: `node bin/netsync.js`, the launcher of the compiled dist/ (what an
 *   installed package runs; `npm run build` first);
 * - tsx: the same CLI from src/ compiled on the fly by tsx, as bin/netsync.js
 *   did before the build existed (tsx's cache warm after the warm-up run);
 * - baseline: `node DIR/bin/netsync.js` for another checkout given with
 *   `--baseline DIR`, e.g. a `git worktree` of an older commit.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { percentile } from "./lib/common.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "15" },
    baseline: { type: "string" },
    "no-tsx": { type: "boolean", default: false },
  },
});
const runs = Number(args.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got ${args.runs}`);

const COMMANDS: Array<[string, string[]]> = [
  ["--version", ["--version"]],
  ["master --help", ["master", "--help"]],
];

/** The tsx path: register tsx, then run src/cli/main.ts's main() with the CLI's argv. */
const TSX_LAUNCHER = `
import { register } from "tsx/esm/api";
register();
const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, "src/cli/main.ts")).href)});
process.exitCode = await main(["node", "netsync", ...process.argv.slice(1)]);
`;

interface Target {
  name: string;
  argv: (args: string[]) => string[];
}

const targets: Target[] = [];
const bin = join(ROOT, "bin/netsync.js");
if (!existsSync(join(ROOT, "dist/src/cli/main.js"))) throw new Error("dist/ is missing: run `npm run build` first");
targets.push({ name: "built", argv: (a) => [bin, ...a] });
if (!args["no-tsx"]) targets.push({ name: "tsx", argv: (a) => ["--input-type=module", "-e", TSX_LAUNCHER, "--", ...a] });
if (args.baseline !== undefined) {
  const baselineBin = resolve(args.baseline, "bin/netsync.js");
  if (!existsSync(baselineBin)) throw new Error(`--baseline: no ${baselineBin}`);
  targets.push({ name: "baseline", argv: (a) => [baselineBin, ...a] });
}

const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

/** One spawn, timed from spawn to exit; fails loudly on a non-zero exit or on output that is not the CLI's. */
function timeOnce(argv: string[]): number {
  const start = performance.now();
  // cwd ROOT so tsx/esm/api resolves from the checkout's node_modules.
  const r = spawnSync(process.execPath, argv, { cwd: ROOT, encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
  const elapsed = performance.now() - start;
  if (r.status !== 0) throw new Error(`node ${argv.join(" ")} exited ${r.status ?? r.signal}:\n${r.stderr}`);
  const expected = argv.includes("--help") ? /Usage: netsync master/ : new RegExp(`^${version.replaceAll(".", "\\.")}\\s*$`);
  if (!expected.test(r.stdout))
    throw new Error(`node ${argv.join(" ")} printed ${JSON.stringify(r.stdout.slice(0, 200))}, not ${expected}`);
  return elapsed;
}

const rows: string[][] = [];
for (const [label, cliArgs] of COMMANDS) {
  for (const target of targets) {
    timeOnce(target.argv(cliArgs)); // warm-up: disk cache, tsx's compile cache
    const times = Array.from({ length: runs }, () => timeOnce(target.argv(cliArgs))).sort((a, b) => a - b);
    rows.push([label, target.name, percentile(times, 50).toFixed(0), percentile(times, 90).toFixed(0)]);
  }
}

const header = ["command", "target", "median ms", "p90 ms"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
console.log(`CLI startup, ${runs} runs each after one warm-up (node ${process.version})\n`);
console.log([line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n"));
