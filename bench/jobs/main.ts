/**
 * `npm run bench:jobs -- [options]`: a job to every slave (master.run(), all
 * replies collected) against Socket.IO's `io.timeout(t).emitWithAck()` to as
 * many sockets, at each N of the ladder, single or (--cluster) 3 masters on
 * NATS against 3 Socket.IO nodes on @socket.io/redis-adapter. See
 * bench/README.md, "Jobs".
 *
 * Reading order: this file (the ladder and the output), config.ts (the
 * options), run-one.ts (one system at one N), serve.ts (the job loop inside
 * the server processes, bench/cluster/master.ts and sio-node.ts), report.ts.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { round } from "../lib/common.js";
import { log } from "../lib/log.js";
import { machine } from "../lib/machine.js";
import { type JobsConfig, readJobsConfig } from "./config.js";
import { jobsMarkdown, jobsRatios, jobsTargets } from "./report.js";
import { type JobsRunResult, runJobsOnce } from "./run-one.js";

const config = readJobsConfig();
if (config.report) {
  const saved = JSON.parse(readFileSync(config.report, "utf8")) as {
    machine: { date: string };
    seconds: number;
    config: Omit<JobsConfig, "out" | "report">;
    results: JobsRunResult[];
  };
  process.stdout.write(
    `${jobsMarkdown({ ...saved.config, out: config.out, report: config.report }, saved.results, jobsRatios(saved.results), { date: saved.machine.date, seconds: saved.seconds })}\n`,
  );
  process.exit(0);
}
mkdirSync(config.out, { recursive: true });
const started = performance.now();
const date = new Date().toISOString();
log(
  `jobs: ${config.cluster ? `cluster of ${config.servers}` : "single"}; N ${config.ladder.join(", ")}; ${config.repeats} jobs each; systems ${config.systems.join(", ")}` +
    (config.spinner > 0 ? `; spinner ${config.spinner}` : ""),
);
const results: JobsRunResult[] = [];
// Every N in turn, both systems at each, each alone on the machine.
for (const n of config.ladder) for (const system of config.systems) results.push(await runJobsOnce(config, system, n));

const ratios = jobsRatios(results);
const seconds = round((performance.now() - started) / 1000, 0);
const file = join(config.out, `jobs-${config.cluster ? "cluster" : "single"}${config.spinner > 0 ? "-spinner" : ""}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ machine: machine(), config: { ...config, out: undefined }, seconds, ratios, targets: jobsTargets(results, ratios), results }, null, 2)}\n`,
);
process.stdout.write(`${jobsMarkdown(config, results, ratios, { date, seconds })}\n`);
log(`wrote ${file} in ${seconds} s`);
if (results.some((r) => r.error)) process.exitCode = 1;
