/**
 * One run: one system at one N, measured in phases so that no measure
 * perturbs another: ramp, warmup, steady (CPU, RSS), rtt (echo probes),
 * bcast (delivery), then the freeze (eviction latency).
 */
import { BackgroundLoad } from "./background-load.js";
import { round, sleep } from "./common.js";
import { log } from "./log.js";
import { broadcast } from "./phases/broadcast.js";
import { endOfRun, freeze } from "./phases/freeze.js";
import { ramp } from "./phases/ramp.js";
import { PhaseRecorder } from "./phases/recorder.js";
import { rtt } from "./phases/rtt.js";
import { steady } from "./phases/steady.js";
import { startRig } from "./rig.js";
import { RunProcesses } from "./run-processes.js";
import type { SystemName } from "./systems.js";
import type { BenchConfig, RunResult } from "./types.js";

/** A failed run is a result with `error` set, not a rejection: the ladder goes on. */
export async function runOne(config: BenchConfig, system: SystemName, n: number, soak: boolean): Promise<RunResult> {
  const result: RunResult = { system, n };
  const procs = new RunProcesses();
  procs.load = await BackgroundLoad.start(config.spinner);
  try {
    await measurePhases(config, system, n, soak, procs, result);
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
    log(`${system} N=${n} FAILED: ${result.error}`);
  } finally {
    if (procs.load && result.spinner) result.spinner.runPct = procs.load.runPct();
    await procs.stopAll();
    // The machine settles (sockets in TIME_WAIT, memory given back) before the next run.
    await sleep(config.quick ? 300 : 1000);
  }
  return result;
}

/** Fills in `result` phase by phase; the fields are set in results.json's order. */
async function measurePhases(config: BenchConfig, system: SystemName, n: number, soak: boolean, procs: RunProcesses, result: RunResult) {
  const rig = await startRig(config, system, n, procs);
  const phases = new PhaseRecorder(rig, procs.load);
  result.phases = phases.phases;

  Object.assign(result, await ramp(rig));
  await phases.boundary("ramp", "warmup");
  await sleep(Math.max(2 * config.interval, config.warmupSeconds * 1000));
  await phases.boundary("warmup", "steady");
  const { measured, rates } = await steady(rig, procs.load, soak);
  Object.assign(result, measured);

  await phases.boundary("steady", "rtt");
  result.rtt = await rtt(rig);
  await phases.boundary("rtt", "bcast");
  result.bcast = await broadcast(rig, rates);

  await phases.boundary("bcast", "freeze");
  const stopAt = await freeze(rig);
  await phases.boundary("freeze", "end", [rig.frozen]);
  Object.assign(result, await endOfRun(rig, stopAt, phases));
  log(
    `${system} N=${n}: rtt p99 ${round(result.rtt.p99)} ms, bcast p99 ${round(result.bcast.p99)} ms (call ${result.bcast.callMs?.join("/")} ms; CPU per delivery ${result.bcast.cpuPerDelivery?.serverUs} µs server, ${result.bcast.cpuPerDelivery?.loadgenUs} µs generators), evict p99 ${round(result.evict!.silence.p99)} ms, false evictions ${result.falseEvictions}`,
  );
}
