/**
 * The freeze phase: SIGSTOP of the generator holding 1% of the slaves (ids
 * "f-…"), then eviction latency, and the run's end-of-run tallies from the
 * server's events: evictions of live slaves, streams lost, stalls.
 */
import type { ServerEvents } from "../../servers/types.js";
import { hrNow, sleep, sum, summarize } from "../common.js";
import type { Rig } from "../rig.js";
import { isFloor } from "../systems.js";
import type { RunResult } from "../types.js";
import type { PhaseRecorder } from "./recorder.js";

const isFrozen = (e: { id: string }) => e.id.startsWith("f-");

/** Freezes the 1% and waits until the server evicted them all, or past the timeout (the floor never evicts). Resolves with the stop time, hrNow clock. */
export async function freeze({ server, frozen, frozenCount, system, config }: Rig): Promise<number> {
  const stopAt = hrNow();
  frozen.kill("SIGSTOP");
  const deadline = isFloor(system) ? 0 : performance.now() + config.timeout + Math.max(config.quick ? 1000 : 3000, config.interval * 2);
  for (;;) {
    await sleep(100);
    const sofar = (await server.request({ cmd: "events" })) as unknown as ServerEvents;
    if (sofar.evicted.filter(isFrozen).length >= frozenCount || performance.now() > deadline) break;
  }
  // Evictions just made are still being reported.
  await sleep(300);
  return stopAt;
}

/** The events NetSync's server adds: its pause detector's stalls (ms), and when each was noticed. */
type NetSyncEvents = ServerEvents & { pauses?: number[]; pauseLog?: { at: number; ms: number }[] };

/** RunResult's fields from the eviction on, in results.json's order. */
export async function endOfRun(rig: Rig, stopAt: number, phases: PhaseRecorder): Promise<Partial<RunResult>> {
  const { server, generators, frozen, frozenCount, system } = rig;
  const events = (await server.request({ cmd: "events" })) as unknown as NetSyncEvents;
  const frozenEvictions = events.evicted.filter(isFrozen);
  const measured: Partial<RunResult> = {
    evict: {
      frozen: frozenCount,
      evicted: frozenEvictions.length,
      // The floor has no eviction at all: none is missed.
      missed: isFloor(system) ? 0 : frozenCount - frozenEvictions.length,
      silence: summarize(frozenEvictions.map((e) => e.silentMs)),
      sinceStop: summarize(frozenEvictions.map((e) => e.at - stopAt)),
    },
  };
  if (Array.isArray(events.pauses)) {
    measured.pauses = events.pauses.length;
    measured.pauseMaxMs = events.pauses.length ? Math.max(...events.pauses) : 0;
    // Which phase each stall fell in (the log has the time each was noticed).
    measured.pauseLog = (events.pauseLog ?? []).map((p) => ({ ...p, phase: phases.phaseAt(p.at) }));
  }
  measured.falseEvictions = events.evicted.filter((e) => !isFrozen(e)).length;
  const bulk = await Promise.all(generators.filter((g) => g !== frozen).map((g) => g.request({ cmd: "collect" })));
  const lost = events.lost.filter((e) => !isFrozen(e));
  measured.unexpectedEnds = sum(bulk.map((c) => c.ended as number)) + lost.length;
  const reasons: Record<string, number> = {};
  for (const c of bulk) for (const [k, v] of Object.entries(c.endReasons as Record<string, number>)) reasons[k] = (reasons[k] ?? 0) + v;
  for (const e of lost) reasons[`server: ${e.reason}`] = (reasons[`server: ${e.reason}`] ?? 0) + 1;
  if (Object.keys(reasons).length) measured.endReasons = reasons;
  return measured;
}
