/**
 * The benchmark orchestrator: `npm run bench [-- options]`, see bench/README.md.
 *
 * For each N of the ladder and each system, it starts the server in its own
 * process (for NATS: nats-server plus a small master), load-generator
 * processes holding N slaves (1% of them in a separate generator that is
 * frozen with SIGSTOP at the end), and measures in phases so no measure
 * perturbs another: steady state (CPU, RSS), echo probes (RTT), broadcasts
 * (delivery), then the freeze (eviction latency). Writes bench/out/results.json,
 * one SVG chart per measure, and prints a markdown table.
 *
 * Reading order: this file (the ladder and the output), lib/config.ts (the
 * options), lib/run-one.ts (one run, phase by phase), lib/phases/ (each phase).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { round } from "./lib/common.js";
import { readConfig } from "./lib/config.js";
import { log } from "./lib/log.js";
import { machine } from "./lib/machine.js";
import { combineRepeats } from "./lib/repeats.js";
import { computeRatios, evaluateTargets, markdownReport, renderCharts } from "./lib/report.js";
import { runOne } from "./lib/run-one.js";
import { SYSTEMS } from "./lib/systems.js";
import type { BenchConfig, RunResult } from "./lib/types.js";

// `--cluster K`: the cluster benchmark (bench/cluster/main.ts, its own options), not the ladder.
if (process.argv.includes("--cluster")) {
  await import("./cluster/main.js");
  process.exit(process.exitCode ?? 0);
}

const { config, reportOnly } = readConfig();
const mux = config.streamsPerConn;

async function main(): Promise<void> {
  mkdirSync(config.out, { recursive: true });
  const started = performance.now();
  log(
    `systems ${config.systems.join(", ")}; N ${config.ladder.join(", ")}; interval ${config.interval} ms, timeout ${config.timeout} ms${mux > 1 ? `; ${mux} streams per connection` : ""}`,
  );
  if (reportOnly) config.systems = [];
  const results = reportOnly ? [] : await runLadder(config);
  if (config.merge) mergePrevious(config, config.merge, results, reportOnly);
  results.sort((a, b) => a.n - b.n || SYSTEMS.indexOf(a.system) - SYSTEMS.indexOf(b.system));
  const output = {
    machine: machine(),
    config: { ...config, out: undefined },
    durationSeconds: round((performance.now() - started) / 1000, 1),
    systems: config.systems.map((name) => ({ name, results: results.filter((r) => r.system === name).sort((a, b) => a.n - b.n) })),
    ratios: computeRatios(results),
    targets: evaluateTargets(results, config),
  };
  const jsonFile = join(config.out, mux > 1 ? "results-mux.json" : "results.json");
  writeFileSync(jsonFile, `${JSON.stringify(output, null, 2)}\n`);
  const charts = await renderCharts(results, config.out, mux > 1 ? "mux-" : "");
  process.stdout.write(`${markdownReport(output, results)}\n`);
  log(`wrote ${jsonFile} and ${charts.length} charts in ${round((performance.now() - started) / 1000, 1)} s`);
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    log(`${failed.length} run(s) failed`);
    process.exitCode = 1;
  }
}

/**
 * Every N of the ladder, smallest first; at each N every system in turn, config.repeat times
 * (interleaved, so a slow spell of the machine does not fall on one system only).
 */
async function runLadder(config: BenchConfig): Promise<RunResult[]> {
  const results: RunResult[] = [];
  const largest = Math.max(0, ...config.ladder);
  for (const n of config.ladder) {
    const runs: RunResult[] = [];
    for (let r = 0; r < config.repeat; r++) {
      for (const system of config.systems) {
        // The soak (the 60 s hold) is run once, in the first repeat.
        runs.push(await runOne(config, system, n, r === 0 && system === "netsync" && n === largest && config.soakSeconds > 0));
      }
    }
    for (const system of config.systems) {
      const mine = runs.filter((r) => r.system === system);
      results.push(mine.length === 1 ? mine[0]! : combineRepeats(mine));
    }
  }
  return results;
}

/**
 * --merge (or --report): adds the results of a previous results.json for the systems and N this run
 * did not measure, marked mergedFrom (not with --report, which only redraws), and widens
 * config.systems and config.ladder to them.
 */
function mergePrevious(config: BenchConfig, file: string, results: RunResult[], redrawOnly: boolean): void {
  const previous = JSON.parse(readFileSync(file, "utf8")) as { systems: { results: RunResult[] }[] };
  for (const old of previous.systems.flatMap((s) => s.results)) {
    if (!results.some((r) => r.system === old.system && r.n === old.n))
      results.push(old.mergedFrom || redrawOnly ? old : { ...old, mergedFrom: file });
  }
  for (const system of previous.systems.flatMap((s) => s.results.map((r) => r.system))) {
    if (!config.systems.includes(system)) config.systems.push(system);
  }
  config.systems.sort((a, b) => SYSTEMS.indexOf(a) - SYSTEMS.indexOf(b));
  config.ladder = [...new Set([...config.ladder, ...results.map((r) => r.n)])].sort((a, b) => a - b);
}

await main();
