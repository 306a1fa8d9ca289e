/** The broadcast phase: delivery latency of a few broadcasts to all N, and what a delivery costs in CPU. */
import { round, sleep, summarize } from "../common.js";
import type { Rig } from "../rig.js";
import type { BroadcastResult } from "../types.js";
import type { SteadyRates } from "./steady.js";

export async function broadcast(rig: Rig, steadyRates: SteadyRates): Promise<BroadcastResult> {
  const { server, generators, config, n } = rig;
  const callMs: number[] = [];
  const start = { at: performance.now(), server: (await rig.serverUsage()).cpuMs, gens: rig.generatorsCpuMs() };
  for (let b = 0; b < config.broadcasts; b++) {
    const reply = await server.request({ cmd: "broadcast" });
    callMs.push(round(reply.callMs as number, 2));
    // Spaced so they do not all land on a ping round.
    await sleep(Math.max(200, Math.round(config.interval * 0.37)));
  }
  await sleep(Math.max(config.quick ? 500 : 1000, config.interval));
  // CPU a delivery costs each side: the phase's CPU beyond what heartbeats alone used at the steady-phase rate.
  const elapsed = performance.now() - start.at;
  const extraUs = (used: number, steadyRate: number) =>
    round((Math.max(0, used - steadyRate * elapsed) * 1000) / (n * config.broadcasts), 2);
  const cpuPerDelivery = {
    serverUs: extraUs((await rig.serverUsage()).cpuMs - start.server, steadyRates.server),
    loadgenUs: extraUs(rig.generatorsCpuMs() - start.gens, steadyRates.generators),
  };
  const deliveries = await Promise.all(generators.map((g) => g.request({ cmd: "collect" })));
  return {
    ...summarize(deliveries.flatMap((d) => d.bcast as number[])),
    expected: n * config.broadcasts,
    callMs,
    cpuPerDelivery,
  };
}
