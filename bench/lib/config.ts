/** bench/run.ts's command line, resolved into a BenchConfig (the meaning of each field is on the type). */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SYSTEMS, type SystemName } from "./systems.js";
import type { BenchConfig } from "./types.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

const USAGE = `npm run bench -- [--quick] [--systems netsync,floor,socketio,nats] [--ladder 1000,5000,10000,15000]
  [--interval 1000] [--timeout 3000] [--warmup 5] [--steady 10] [--soak 60] [--repeat 1] [--per-gen 5000] [--mux STREAMS_PER_CONN]
  [--hosts K] [--broadcasts 5] [--prof] [--prof-phase steady] [--spinner FRACTION_OF_ONE_CORE] [--out bench/out] [--merge PREVIOUS_RESULTS_JSON] [--report RESULTS_JSON (no runs: redo table and charts)]`;

type Args = ReturnType<typeof parseOptions>;

function parseOptions() {
  return parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      systems: { type: "string" },
      ladder: { type: "string" },
      interval: { type: "string" },
      timeout: { type: "string" },
      steady: { type: "string" },
      warmup: { type: "string" },
      repeat: { type: "string" },
      soak: { type: "string" },
      "per-gen": { type: "string" },
      mux: { type: "string" },
      hosts: { type: "string" },
      broadcasts: { type: "string" },
      prof: { type: "boolean", default: false },
      "prof-phase": { type: "string" },
      spinner: { type: "string" },
      out: { type: "string" },
      merge: { type: "string" },
      report: { type: "string" },
      help: { type: "boolean", default: false },
    },
    allowPositionals: false,
  }).values;
}

/**
 * The configuration from process.argv (prints the usage and exits on --help). reportOnly (--report FILE):
 * no runs, the table and charts are redone from FILE, which is then config.merge.
 */
export function readConfig(): { config: BenchConfig; reportOnly: boolean } {
  const args = parseOptions();
  if (args.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const config = resolveConfig(args);
  for (const system of config.systems) {
    if (!(SYSTEMS as readonly string[]).includes(system)) throw new Error(`unknown system ${system}`);
    if (config.streamsPerConn > 1 && (system === "socketio" || system === "nats"))
      throw new Error(`--mux applies to the gRPC systems only, not ${system}`);
  }
  return { config, reportOnly: Boolean(args.report) };
}

/** Defaults depend on --quick (a CI-sized run) and --mux (only the gRPC systems can multiplex streams). */
function resolveConfig(args: Args): BenchConfig {
  const quick = args.quick;
  const mux = Number(args.mux ?? 1);
  // The key order is results.json's.
  return {
    quick,
    systems: (args.systems?.split(",") ?? (mux > 1 ? ["netsync", "floor"] : SYSTEMS.filter((s) => s !== "floor-spread"))) as SystemName[],
    ladder: (args.ladder ?? (quick ? "200" : "1000,5000,10000,15000")).split(",").map(Number),
    interval: Number(args.interval ?? (quick ? 500 : 1000)),
    timeout: Number(args.timeout ?? (quick ? 1500 : 3000)),
    warmupSeconds: Number(args.warmup ?? (quick ? 0 : 5)),
    steadySeconds: Number(args.steady ?? (quick ? 2 : 10)),
    soakSeconds: Number(args.soak ?? (quick ? 0 : 60)),
    repeat: Math.max(1, Number(args.repeat ?? 1)),
    perGen: Number(args["per-gen"] ?? (mux > 1 ? 25_000 : 5_000)),
    streamsPerConn: mux,
    broadcasts: Number(args.broadcasts ?? (quick ? 3 : 5)),
    hosts: args.hosts ? Number(args.hosts) : undefined,
    prof: args.prof,
    profPhase: args["prof-phase"],
    spinner: Math.max(0, Math.min(1, Number(args.spinner ?? 0))),
    merge: args.report ? resolve(args.report) : args.merge ? resolve(args.merge) : undefined,
    out: resolve(ROOT, args.out ?? "bench/out"),
  };
}
