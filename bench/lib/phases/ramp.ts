/** The ramp: every slave connecting, until the server holds all N. */
import { sleep } from "../common.js";
import { log } from "../log.js";
import type { Rig } from "../rig.js";
import type { RunResult } from "../types.js";

/** Waits until every generator is ready and the server counts N slaves; fails after 60 s + 10 ms per slave. */
export async function ramp(rig: Rig): Promise<Pick<RunResult, "connected" | "rampMs">> {
  const { server, generators, system, n } = rig;
  const rampStart = performance.now();
  const rampTimeout = 60_000 + n * 10;
  // Past a few seconds, log how far the ramp got, on the server and in each generator, so a stall can be placed.
  const rampLog = setInterval(() => void logRamp(rig), 5_000);
  let stats: Record<string, unknown>;
  try {
    await Promise.all(generators.map((g) => g.waitFor("ready", rampTimeout)));
    stats = await server.request({ cmd: "stats" });
    while ((stats.connected as number) < n) {
      if (performance.now() - rampStart > rampTimeout) throw new Error(`only ${String(stats.connected)} of ${n} slaves registered`);
      await sleep(200);
      stats = await server.request({ cmd: "stats" });
    }
  } finally {
    clearInterval(rampLog);
  }
  const measured = { connected: stats.connected as number, rampMs: Math.round(performance.now() - rampStart) };
  log(`${system} N=${n}: ${measured.connected} connected in ${measured.rampMs} ms`);
  return measured;
}

async function logRamp({ server, generators, system, n }: Rig): Promise<void> {
  const [s, ...statuses] = await Promise.all(
    [server, ...generators].map((c) =>
      c.request({ cmd: c === server ? "stats" : "status" }).catch((err: Error): Record<string, unknown> => ({ error: err.message })),
    ),
  );
  const brief = (r: Record<string, unknown>) => JSON.stringify(r).replace(/"(ev|re)":[^,]*,/g, "");
  log(`${system} N=${n}: ramping, ${String(s!.connected)} registered so far ${brief(s!)}`);
  log(`  generators: ${statuses.map((g, k) => `${k}:${brief(g)}`).join(" ")}`);
}
