/** bench:jobs's command line, resolved (see bench/README.md, "Jobs"). */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** "floor" (bench/jobs/floor.ts, single mode only) is run only when named in --systems. */
export const JOB_SYSTEMS = ["netsync", "floor", "socketio"] as const;
export type JobSystem = (typeof JOB_SYSTEMS)[number];

const USAGE = `npm run bench:jobs -- [--quick] [--ladder 1000,5000,10000] [--repeats 20] [--spinner FRACTION_OF_ONE_CORE]
  [--cluster] [--masters 3] [--systems netsync,socketio (floor too, single mode)] [--interval 5000] [--timeout 10000] [--job-timeout 10000]
  [--warmup 5] [--warmup-jobs 2] [--baseline 10] [--gap MS] [--per-gen 5000] [--prof] [--out bench/out] [--report JOBS_JSON (no runs: the tables again)]`;

export interface JobsConfig {
  quick: boolean;
  /** Slaves (sockets) in all, per N; in cluster mode spread evenly over the masters (nodes). */
  ladder: number[];
  /** Measured jobs per system and N, one after another. */
  repeats: number;
  /** Jobs run and discarded before the baseline (V8 optimizes the job path meanwhile). */
  warmupJobs: number;
  /** Fraction of one core the spinner asks for (0: none): a slowed machine. */
  spinner: number;
  cluster: boolean;
  /** Masters (Socket.IO nodes) in cluster mode; 1 otherwise. */
  servers: number;
  systems: JobSystem[];
  /** Heartbeat interval and eviction timeout of both systems, ms (NetSync's defaults). */
  interval: number;
  timeout: number;
  /** Each slave's time to reply once its command is written (NetSync), the emit's timeout (Socket.IO), ms. */
  jobTimeout: number;
  /** Heartbeats after the ramp before the warm-up jobs, s. */
  warmupSeconds: number;
  /** Heartbeats alone, before the jobs: the CPU rate that is not the jobs', s. */
  baselineSeconds: number;
  /** Pause after each job, ms (undefined: 500 + N / 20). */
  gapMs: number | undefined;
  perGen: number;
  prof: boolean;
  out: string;
  /** --report FILE: no runs; the tables again from a jobs-*.json this bench wrote. */
  report: string | undefined;
}

export function readJobsConfig(): JobsConfig {
  const { values: a } = parseArgs({
    args: process.argv.slice(2).filter((x) => x !== "--"),
    options: {
      quick: { type: "boolean", default: false },
      ladder: { type: "string" },
      repeats: { type: "string" },
      "warmup-jobs": { type: "string" },
      spinner: { type: "string" },
      cluster: { type: "boolean", default: false },
      masters: { type: "string" },
      systems: { type: "string" },
      interval: { type: "string" },
      timeout: { type: "string" },
      "job-timeout": { type: "string" },
      warmup: { type: "string" },
      baseline: { type: "string" },
      gap: { type: "string" },
      "per-gen": { type: "string" },
      prof: { type: "boolean", default: false },
      out: { type: "string" },
      report: { type: "string" },
      help: { type: "boolean", default: false },
    },
    allowPositionals: false,
  });
  if (a.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = a.quick;
  const systems = (a.systems?.split(",") ?? ["netsync", "socketio"]) as JobSystem[];
  for (const s of systems) if (!(JOB_SYSTEMS as readonly string[]).includes(s)) throw new Error(`unknown system ${s}`);
  if (a.cluster && systems.includes("floor")) throw new Error("the floor has no cluster mode");
  return {
    quick,
    ladder: (a.ladder ?? (quick ? "200" : "1000,5000,10000")).split(",").map(Number),
    repeats: Math.max(1, Number(a.repeats ?? (quick ? 5 : 20))),
    warmupJobs: Number(a["warmup-jobs"] ?? (quick ? 1 : 2)),
    spinner: Math.max(0, Math.min(1, Number(a.spinner ?? 0))),
    cluster: a.cluster,
    servers: a.cluster ? Number(a.masters ?? 3) : 1,
    systems,
    interval: Number(a.interval ?? 5_000),
    timeout: Number(a.timeout ?? 10_000),
    jobTimeout: Number(a["job-timeout"] ?? 10_000),
    warmupSeconds: Number(a.warmup ?? (quick ? 1 : 5)),
    baselineSeconds: Number(a.baseline ?? (quick ? 3 : 10)),
    gapMs: a.gap !== undefined ? Number(a.gap) : undefined,
    perGen: Number(a["per-gen"] ?? 5_000),
    prof: a.prof,
    out: resolve(ROOT, a.out ?? "bench/out"),
    report: a.report ? resolve(a.report) : undefined,
  };
}
