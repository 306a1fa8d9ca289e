/**
 * `npm run bench:million` (issue 21): a fleet of up to 1,000,000 slaves
 * simulated as K real masters (67 by default) on a real 3-node NATS cluster,
 * their slaves synthetic streams going through the real registration path.
 * See bench/README.md, "A million slaves, simulated".
 *
 *   --sizes 100000,300000,1000000   fleet totals, one fresh pass each
 *   --spinner 0,0.5                 background load (fraction of a core) for each size
 *   --masters 67 --per-process 11   K masters, so many to a process (+ the victim alone)
 *   --fill-rate 20000               slaves registered per second, cluster-wide
 *   --quick                         20,000 slaves, 9 masters (4 per process + the victim), one pass, checks; exits 1 if one fails
 *   --out bench/out/million.json
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Command } from "commander";
import { runPass } from "./pass.js";
import { printTable } from "./table.js";

/**
 * The claims-traffic check of --quick: bytes the master that received most during the re-announce after a
 * NATS restart received, per slave it holds itself. With claims on a fleet-wide subject every master received
 * every claim (≈ 75 B × fleet: 701 at the quick size, 9 masters); with claims on each id's own subject a
 * master hears its own back and the contested ones (129 measured). 400 fails the first and passes the second.
 */
export const MAX_REANNOUNCE_BYTES_PER_OWN_SLAVE = 400;

const program = new Command()
  .option("--sizes <list>", "fleet totals", "100000,300000,1000000")
  .option("--spinner <list>", "background load fractions", "0,0.5")
  .option("--masters <k>", "masters in the cluster (the last is the victim)", "67")
  .option("--per-process <m>", "masters per process", "11")
  .option("--fill-rate <n>", "slaves registered per second, cluster-wide", "20000")
  .option("--samples <n>", "routed requests per measurement", "200")
  .option("--interval <ms>", "heartbeat interval", "60000")
  .option("--nats-ping <ms>", "the masters' NATS client ping interval (default: NetSync's, 2 s × 2 missed)")
  .option("--timeout <ms>", "heartbeat timeout", "180000")
  .option("--heap-mb <mb>", "V8 old-space limit of each master process", "8192")
  .option("--restart-wait <ms>", "longest wait for the routes after the NATS restart", "120000")
  .option("--min-free-gb <gb>", "stop a pass when available memory falls below this", "3")
  .option("--quick", "20,000 slaves, 9 masters, one pass, checks")
  .option("--out <file>", "JSON results", "bench/out/million.json")
  .parse();
const opts = program.opts<Record<string, string | boolean>>();
const quick = opts.quick === true;
const list = (s: string) => s.split(",").map(Number);
const sizes = quick ? [20_000] : list(String(opts.sizes));
const spinners = quick ? [0] : list(String(opts.spinner));
const k = quick ? 9 : Number(opts.masters);
const perProcess = quick ? 4 : Number(opts.perProcess);

const log = (line: string) => process.stderr.write(`${line}\n`);
const out = String(opts.out);
/** The last partial figures of each pass, so a pass that fails keeps what it measured. */
const partials = new Map<string, Record<string, unknown>>();
const partialOf = (n: number, spinner: number) => partials.get(`${n}/${spinner}`) ?? { n, k, spinner };
function save(list: Record<string, unknown>[]): void {
  const last = list[list.length - 1];
  if (last?.partial) partials.set(`${last.n}/${last.spinner}`, last);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ started: started.toISOString(), quick, k, perProcess, passes: list, failures }, null, 2)}\n`);
}
const started = new Date();
const passes: Record<string, unknown>[] = [];
const failures: string[] = [];
for (const n of sizes) {
  for (const spinner of spinners) {
    log(`pass: ${n} slaves, ${k} masters (${perProcess} per process + the victim), spinner ${spinner}`);
    const t0 = performance.now();
    try {
      const { result, failures: failed } = await runPass({
        n,
        k,
        perProcess,
        spinner,
        fillRate: Number(opts.fillRate),
        interval: Number(opts.interval),
        timeout: Number(opts.timeout),
        heapMb: Number(opts.heapMb),
        ...(opts.natsPing ? { natsPing: Number(opts.natsPing) } : {}),
        minFreeGb: Number(opts.minFreeGb),
        restartWaitMs: quick ? 30_000 : Number(opts.restartWait),
        save: (partial) => save([...passes, { ...partial, partial: true }]),
        samples: quick ? 100 : Number(opts.samples),
        waitMs: quick ? 30_000 : 300_000,
        log,
      });
      const restart = result.natsRestart as { receivedPerMaster: { bytesPerOwnSlaveMax: number } };
      const ratio = restart.receivedPerMaster.bytesPerOwnSlaveMax;
      log(
        `  claims traffic after the NATS restart: max ${ratio} bytes received per own slave (check: ≤ ${MAX_REANNOUNCE_BYTES_PER_OWN_SLAVE})`,
      );
      if (quick && !(ratio <= MAX_REANNOUNCE_BYTES_PER_OWN_SLAVE))
        failed.push(`re-announce: ${ratio} bytes per own slave > ${MAX_REANNOUNCE_BYTES_PER_OWN_SLAVE}`);
      passes.push({ ...result, passMs: performance.now() - t0, failures: failed });
      failures.push(...failed.map((f) => `${n}/${spinner}: ${f}`));
    } catch (err) {
      log(`  pass failed: ${(err as Error).stack ?? err}`);
      passes.push({ ...partialOf(n, spinner), error: String(err) });
      failures.push(`${n}/${spinner}: ${String(err)}`);
    }
  }
}

save(passes);
printTable(passes);
if (failures.length > 0) {
  console.log(`\nFAILED:\n${failures.map((f) => `  - ${f}`).join("\n")}`);
  process.exit(1);
}
console.log(`\nall checks passed; JSON in ${out}`);
process.exit(0);
