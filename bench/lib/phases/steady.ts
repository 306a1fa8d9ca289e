/** The steady phase: CPU and memory of the server with nothing but heartbeats. */
import type { BackgroundLoad } from "../background-load.js";
import { round, sleep, sum } from "../common.js";
import { log } from "../log.js";
import type { Rig } from "../rig.js";
import type { RunResult } from "../types.js";

/** CPU use during the steady phase, ms per ms: the broadcast phase subtracts it to cost a delivery. */
export interface SteadyRates {
  server: number;
  generators: number;
}

/** What changed over config.steadySeconds of heartbeats. */
interface Sample {
  startedAt: number;
  elapsed: number;
  serverCpuMs: number;
  generatorsCpuMs: number;
  spinnerCpuMs: number;
  /** Pings the slaves received. */
  pings: number;
  /** Server RSS at the end, bytes. */
  rss: number;
}

/**
 * Measures the steady phase; with `soak`, it then goes on to config.soakSeconds
 * and the RSS is read again at its end. The measures are over the same length of
 * steady phase for every system.
 */
export async function steady(
  rig: Rig,
  load: BackgroundLoad | undefined,
  soak: boolean,
): Promise<{ measured: Partial<RunResult>; rates: SteadyRates }> {
  const { config, n } = rig;
  const sample = await sampleSteady(rig, load);
  const soakSeconds = soak ? Math.max(config.soakSeconds, config.steadySeconds) : config.steadySeconds;
  // The soak's two fields come first, as they always have in results.json.
  const measured: Partial<RunResult> = {};
  if (soakSeconds > config.steadySeconds) {
    await sleep((soakSeconds - config.steadySeconds) * 1000);
    const after = await rig.serverUsage();
    measured.soakSeconds = round((performance.now() - sample.startedAt) / 1000, 1);
    measured.rssKbPerSlaveAfterSoak = round((after.rss - rig.rssBase) / 1024 / n, 2);
  }
  Object.assign(measured, steadyMeasures(rig, load, sample));
  log(
    `${rig.system} N=${n}: steady ${measured.steadySeconds} s, ${measured.cpuUsPerSlaveRound} µs/slave/round, ${measured.rssKbPerSlave} KB/slave, ${measured.pingsPerSlaveRound ?? "?"} pings/slave/round`,
  );
  const rates = { server: sample.serverCpuMs / sample.elapsed, generators: sample.generatorsCpuMs / sample.elapsed };
  return { measured, rates };
}

async function sampleSteady(rig: Rig, load: BackgroundLoad | undefined): Promise<Sample> {
  // Pings the slaves received, to check that the server really pings once per interval (CPU is divided by that many rounds).
  const pingsSoFar = async () =>
    sum((await Promise.all(rig.generators.map((g) => g.request({ cmd: "status" })))).map((st) => (st.pings as number) ?? 0));
  const spinnerCpu = () => load?.cpuMs() ?? Number.NaN;
  const pings0 = await pingsSoFar();
  const gen0 = rig.generatorsCpuMs();
  const spin0 = spinnerCpu();
  const cpu0 = (await rig.serverUsage()).cpuMs;
  const startedAt = performance.now();
  await sleep(rig.config.steadySeconds * 1000);
  const { cpuMs: cpu1, rss } = await rig.serverUsage();
  const elapsed = performance.now() - startedAt;
  const gen1 = rig.generatorsCpuMs();
  const spin1 = spinnerCpu();
  const pings1 = await pingsSoFar();
  return {
    startedAt,
    elapsed,
    serverCpuMs: cpu1 - cpu0,
    generatorsCpuMs: gen1 - gen0,
    spinnerCpuMs: spin1 - spin0,
    pings: pings1 - pings0,
    rss,
  };
}

/** The steady phase's fields of RunResult, in results.json's order. */
function steadyMeasures({ config, n, rssBase }: Rig, load: BackgroundLoad | undefined, s: Sample): Partial<RunResult> {
  const rounds = s.elapsed / config.interval;
  const measured: Partial<RunResult> = {
    steadySeconds: round(s.elapsed / 1000, 1),
    rounds: round(rounds, 1),
    serverCpuMs: s.serverCpuMs,
    cpuUsPerSlaveRound: round((s.serverCpuMs * 1000) / rounds / n, 2),
  };
  if (s.pings > 0) {
    measured.pingsPerSlaveRound = round(s.pings / n / rounds, 3);
    measured.cpuUsPerPing = round((s.serverCpuMs * 1000) / s.pings, 2);
  }
  if (load) measured.spinner = { fraction: config.spinner, runPct: 0, steadyPct: round((s.spinnerCpuMs / s.elapsed) * 100, 1) };
  measured.serverCpuPct = round((s.serverCpuMs / s.elapsed) * 100, 1);
  measured.loadgenCpuPct = round((s.generatorsCpuMs / s.elapsed) * 100, 1);
  measured.rssBaseMB = round(rssBase / 2 ** 20, 1);
  measured.rssMB = round(s.rss / 2 ** 20, 1);
  measured.rssKbPerSlave = round((s.rss - rssBase) / 1024 / n, 2);
  return measured;
}
