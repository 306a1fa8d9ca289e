/** The RTT phase: every slave sends an echo probe right after answering each ping, for 3 rounds. */
import { type Summary, sleep, summarize } from "../common.js";
import type { Rig } from "../rig.js";

export async function rtt({ generators, config }: Rig): Promise<Summary> {
  for (const g of generators) g.send({ cmd: "probe", on: true });
  await sleep(3 * config.interval + 50);
  for (const g of generators) g.send({ cmd: "probe", on: false });
  // The last probes' echoes are still on their way.
  await sleep(Math.max(500, config.interval));
  const probes = await Promise.all(generators.map((g) => g.request({ cmd: "collect" })));
  return summarize(probes.flatMap((p) => p.rtt as number[]));
}
