/**
 * The processes of one run, started: the server under test (for NATS,
 * nats-server plus a small master) and load generators holding N slaves,
 * 1% of them in a generator of their own that the freeze phase stops.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Child, cpuMs, rssBytes, sleep, sum } from "./common.js";
import { startNatsServer } from "./nats-server.js";
import { profileEnv } from "./probe.js";
import type { RunProcesses } from "./run-processes.js";
import { floorSpreadSlices, isFloor, type SystemName } from "./systems.js";
import type { BenchConfig } from "./types.js";

const BENCH = join(dirname(fileURLToPath(import.meta.url)), "..");

/** What a phase of a run works with. */
export interface Rig {
  config: BenchConfig;
  system: SystemName;
  n: number;
  server: Child;
  /** Every generator, the one to freeze last. */
  generators: Child[];
  frozen: Child;
  /** Slaves in the frozen generator, ids prefixed "f-". */
  frozenCount: number;
  /** Server RSS before any slave connected, bytes. */
  rssBase: number;
  /** Server CPU (ms) and RSS (bytes) so far, nats-server included. */
  serverUsage(): Promise<{ cpuMs: number; rss: number }>;
  /** CPU of the generators still running, ms. */
  generatorsCpuMs(): number;
}

/** Starts the server, then the generators (they connect at once; the ramp phase waits for them). */
export async function startRig(config: BenchConfig, system: SystemName, n: number, procs: RunProcesses): Promise<Rig> {
  const hosts = hostsFor(config, n);
  const bindHost = hosts.length > 1 ? "0.0.0.0" : "127.0.0.1";
  if (system === "nats") procs.nats = await startNatsServer(bindHost, config.out);
  const server = serverProcess(config, system, n, bindHost, procs.nats?.url);
  procs.server = server;
  const ready = await server.waitFor("ready", 30_000);
  const port = procs.nats?.port ?? (ready.port as number);
  // The server reports its own usage (µs resolution); a nats-server is read from /proc.
  const external = procs.nats ? [procs.nats.proc.pid!] : [];
  const serverUsage = async () => {
    const s = await server.request({ cmd: "stats" });
    return { cpuMs: (s.cpuMs as number) + sum(external.map(cpuMs)), rss: (s.rss as number) + sum(external.map(rssBytes)) };
  };
  await sleep(config.quick ? 200 : 500);
  const rssBase = (await serverUsage()).rss;
  const { generators, frozen, frozenCount } = startGenerators(config, system, n, { hosts, port, natsUrl: procs.nats?.url });
  procs.generators.push(...generators);
  const generatorsCpuMs = () => sum(generators.filter((g) => !g.exited).map((g) => cpuMs(g.pid)));
  return { config, system, n, server, generators, frozen, frozenCount, rssBase, serverUsage, generatorsCpuMs };
}

/**
 * Loopback destination addresses for the generators' connections. One gives
 * ~28,000 ephemeral source ports (32768-60999); past 25,000 connections they
 * spread over 127.0.0.2, 127.0.0.3, ... (the server then listens on 0.0.0.0).
 */
function hostsFor(config: BenchConfig, n: number): string[] {
  const connections = Math.ceil(n / config.streamsPerConn);
  const count = config.hosts ?? Math.max(1, Math.ceil(connections / 25_000));
  if (count === 1) return ["127.0.0.1"];
  return Array.from({ length: count }, (_, i) => `127.0.0.${i + 2}`);
}

function serverProcess(config: BenchConfig, system: SystemName, n: number, host: string, natsUrl: string | undefined): Child {
  const nodeArgs =
    config.prof && (system === "netsync" || isFloor(system))
      ? ["--cpu-prof", "--cpu-prof-interval", "200", "--cpu-prof-dir", join(config.out, "prof", system)]
      : [];
  return new Child(
    system,
    join(BENCH, "servers", `${isFloor(system) ? "floor" : system}.ts`),
    {
      host,
      interval: config.interval,
      timeout: config.timeout,
      natsUrl,
      slices: system === "floor-spread" ? floorSpreadSlices(n, config.interval) : 1,
    },
    nodeArgs,
    config.profPhase
      ? profileEnv(config.profPhase, join(config.out, "prof", `${system}-${n}-${config.profPhase}-${Date.now()}.cpuprofile`))
      : {},
  );
}

/** The bulk generators (config.perGen slaves each), then the one holding the 1% that will freeze. */
function startGenerators(
  config: BenchConfig,
  system: SystemName,
  n: number,
  target: { hosts: string[]; port: number; natsUrl: string | undefined },
): { generators: Child[]; frozen: Child; frozenCount: number } {
  const frozenCount = Math.max(1, Math.round(n * 0.01));
  const script = join(BENCH, "loadgen", system === "netsync" || isFloor(system) ? "grpc.ts" : `${system}.ts`);
  const genConfig = (count: number, prefix: string) => ({
    ...target,
    count,
    prefix,
    streamsPerConn: config.streamsPerConn,
    openBatch: system === "nats" ? 100 : 200,
  });
  const generators: Child[] = [];
  for (let k = 0, left = n - frozenCount; left > 0; k++, left -= config.perGen) {
    // With --prof-phase, the bulk generators are profiled too: a latency can be the clients' as much as the server's.
    const genProfile = config.profPhase
      ? profileEnv(config.profPhase, join(config.out, "prof", `${system}-${n}-gen${k}-${config.profPhase}-${Date.now()}.cpuprofile`))
      : {};
    generators.push(new Child(`${system} generator ${k}`, script, genConfig(Math.min(config.perGen, left), `g${k}-`), [], genProfile));
  }
  const frozen = new Child(`${system} generator (to freeze)`, script, genConfig(frozenCount, "f-"));
  generators.push(frozen);
  return { generators, frozen, frozenCount };
}
