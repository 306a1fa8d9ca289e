/**
 * `npm run bench:transport -- [--ladder 5000,10000] [--rounds 20] [--repeats 2]
 * [--systems grpc,grpc-call,h2,sio,sio-bcast,ws] [--spinner F] [--per-gen 5000]`:
 * what one message out and one answer back cost each transport, with nothing
 * of NetSync or of a job around them, in the same run: grpc-js (a bidi call
 * per client, raw bytes; grpc-call: the same calls driven at grpc-js's call
 * level through a server interceptor, with no Duplex stream between), bare
 * node:http2 with gRPC's framing and the same grpc-js clients, Socket.IO (an
 * emit with an ack per socket; sio-bcast: one broadcast emitWithAck, as
 * bench:jobs uses) and bare ws. Every server but
 * sio-bcast writes one pre-encoded message per target, paced as NetSync
 * paces its fan-outs, and counts answers; a row gives the server's and the
 * clients' CPU per answer and the round's time (p50). It tells what a gRPC
 * master cannot go below, and which layer the cost is in. See
 * bench/README.md, "Transport floor".
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { BackgroundLoad } from "../lib/background-load.js";
import { Child, percentile, round, sleep, sum } from "../lib/common.js";
import { log } from "../lib/log.js";
import { machine } from "../lib/machine.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** Each system's server script and what it is given (Socket.IO's two modes are one script). */
const SERVERS = {
  grpc: { script: "grpc-server.ts", config: {} },
  "grpc-call": { script: "grpc-call-server.ts", config: {} },
  h2: { script: "h2-server.ts", config: {} },
  sio: { script: "sio-server.ts", config: {} },
  "sio-bcast": { script: "sio-server.ts", config: { broadcast: true } },
  ws: { script: "ws-server.ts", config: {} },
} as const;
const CLIENTS = { grpc: "grpc", "grpc-call": "grpc", h2: "grpc", sio: "sio", "sio-bcast": "sio", ws: "ws" } as const;
type System = keyof typeof SERVERS;

const { values } = parseArgs({
  options: {
    ladder: { type: "string", default: "5000,10000" },
    rounds: { type: "string", default: "20" },
    repeats: { type: "string", default: "2" },
    systems: { type: "string", default: "grpc,grpc-call,h2,sio,sio-bcast,ws" },
    spinner: { type: "string", default: "0" },
    "per-gen": { type: "string", default: "5000" },
    out: { type: "string", default: join(HERE, "..", "out") },
    // No runs: the table again from a transport JSON.
    report: { type: "string" },
  },
});
const ladder = values.ladder.split(",").map(Number);
const systems = values.systems.split(",") as System[];
for (const system of systems) if (!(system in SERVERS)) throw new Error(`unknown system ${system}: ${Object.keys(SERVERS).join(", ")}`);
const rounds = Number(values.rounds);
const perGen = Number(values["per-gen"]);

interface Row {
  system: System;
  n: number;
  repeat: number;
  serverUsPerAnswer: number;
  clientsUsPerAnswer: number;
  roundP50Ms: number;
  spinnerPct?: number;
}

async function runOnce(system: System, n: number, repeat: number): Promise<Row> {
  const load = await BackgroundLoad.start(Number(values.spinner));
  const server = new Child(`${system}-server`, join(HERE, SERVERS[system].script), SERVERS[system].config);
  const generators: Child[] = [];
  try {
    const { port } = (await server.waitFor("ready", 30_000)) as { port: number };
    for (let from = 0; from < n; from += perGen) {
      const generator = new Child(`${system}-clients-${from}`, join(HERE, "clients.ts"), {
        kind: CLIENTS[system],
        port,
        count: Math.min(perGen, n - from),
      });
      generators.push(generator);
    }
    await Promise.all(generators.map((g) => g.waitFor("opened", 120_000)));
    for (let waited = 0; ((await server.request({ cmd: "size" })).size as number) < n; waited += 200) {
      if (waited > 60_000) throw new Error(`${system}: fewer than ${n} clients held after 60 s`);
      await sleep(200);
    }
    await sleep(1_000);
    const clientsCpu = async () => sum(await Promise.all(generators.map(async (g) => (await g.request({ cmd: "cpu" })).cpuMs as number)));
    const before = await clientsCpu();
    const run = (await server.request({ cmd: "run", rounds }, 600_000)) as unknown as { cpuMs: number; answers: number; times: number[] };
    const clients = (await clientsCpu()) - before;
    const row: Row = {
      system,
      n,
      repeat,
      serverUsPerAnswer: round((run.cpuMs * 1000) / run.answers, 1),
      clientsUsPerAnswer: round((clients * 1000) / run.answers, 1),
      roundP50Ms: round(
        percentile(
          [...run.times].sort((a, b) => a - b),
          50,
        ),
        1,
      ),
    };
    if (load) row.spinnerPct = round(load.runPct(), 0);
    return row;
  } finally {
    for (const generator of generators) await generator.stop();
    await server.stop();
    await load?.stop();
  }
}

/** The middle value, or the mean of the middle two (with 2 repeats, their mean). */
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * One line per system and N: medians over the repeats, each over Socket.IO's emit per socket and
 * (server CPU, round time) over its broadcast in the same run; "–" where that system has no run at this N.
 */
function table(rows: Row[]): string {
  const lines = [
    "| N | system | server µs / answer | ÷ sio | ÷ sio-bcast | clients µs / answer | ÷ sio | round p50 ms | ÷ sio | ÷ sio-bcast |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const ns = [...new Set(rows.map((r) => r.n))];
  const names = [...new Set(rows.map((r) => r.system))];
  for (const n of ns) {
    const of = (system: System, key: Measure) => median(rows.filter((r) => r.system === system && r.n === n).map((r) => r[key]));
    for (const system of names) {
      const cell = (key: Measure, bases: System[]) => {
        const value = of(system, key);
        const ratios = bases.map((base) => {
          const ratio = value / of(base, key);
          return Number.isFinite(ratio) ? round(ratio, 2) : "–";
        });
        return [round(value, 1), ...ratios].join(" | ");
      };
      lines.push(
        `| ${n} | ${system} | ${cell("serverUsPerAnswer", ["sio", "sio-bcast"])} | ${cell("clientsUsPerAnswer", ["sio"])} | ${cell("roundP50Ms", ["sio", "sio-bcast"])} |`,
      );
    }
  }
  return lines.join("\n");
}
type Measure = "serverUsPerAnswer" | "clientsUsPerAnswer" | "roundP50Ms";

if (values.report) {
  const saved = JSON.parse(readFileSync(values.report, "utf8")) as { rows: Row[] };
  process.stdout.write(`${table(saved.rows)}\n`);
  process.exit(0);
}
mkdirSync(values.out, { recursive: true });
log(
  `transport: N ${ladder.join(", ")}; ${rounds} rounds; ${values.repeats} repeats; systems ${systems.join(", ")}${Number(values.spinner) > 0 ? `; spinner ${values.spinner}` : ""}`,
);
const rows: Row[] = [];
/** Runs that did not complete (e.g. the clients were not all held in time): said, kept in the JSON, left out of the medians. */
const failed: { system: System; n: number; repeat: number; error: string }[] = [];
const file = join(values.out, `transport${Number(values.spinner) > 0 ? "-spinner" : ""}.json`);
// Written after every run, so a run that fails late loses nothing measured before it.
const save = () =>
  writeFileSync(file, `${JSON.stringify({ machine: machine(), config: { ...values, out: undefined }, rows, failed }, null, 2)}\n`);
// Repeats outermost, systems innermost: a machine that changes speed mid-run hits every system.
for (let repeat = 1; repeat <= Number(values.repeats); repeat++) {
  for (const n of ladder) {
    for (const system of systems) {
      try {
        const row = await runOnce(system, n, repeat);
        log(
          `${system} N=${n}: server ${row.serverUsPerAnswer} µs/answer, clients ${row.clientsUsPerAnswer} µs/answer, round p50 ${row.roundP50Ms} ms`,
        );
        rows.push(row);
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        log(`${system} N=${n}, repeat ${repeat}: FAILED, left out: ${error}`);
        failed.push({ system, n, repeat, error });
      }
      save();
    }
  }
}
process.stdout.write(
  `Medians over ${values.repeats} repeat(s), ${rounds} rounds each${failed.length > 0 ? ` (${failed.length} failed run(s) left out)` : ""}:\n\n${table(rows)}\n`,
);
log(`wrote ${file}`);
