/**
 * Registering synthetic slaves with a process's masters: the initial fill
 * (paced, in chunks, yielding to the event loop between them, so the claims
 * each accept publishes reach NATS at a bounded rate) and the re-homing of a
 * dead master's slaves (each at a random moment of a window, as the slaves'
 * reconnect backoff spreads them). A stream the master's admission refuses
 * (RESOURCE_EXHAUSTED with a retry hint) tries again after the hint plus
 * jitter, as the Node slave does.
 */
import { DEFAULTS } from "../../src/defaults.js";
import type { Master } from "../../src/index.js";
import { sleep } from "../lib/common.js";
import { masterInternals } from "./internals.js";
import { SyntheticSlave, slaveId, slaveLabels, slavePeer } from "./synthetic-slave.js";

export interface FillPlan {
  /** Masters in the cluster; slave i belongs to master i mod k. */
  k: number;
  /** Slaves in the whole fleet. */
  n: number;
  /** The global index of each local master, in the order the process holds them. */
  indexes: number[];
  /** Slaves registered per second on each master. */
  ratePerMaster: number;
}

const TICK_MS = 50;

/** Registers slave `i` with `master`; resolves once it is registered, trying again after each admission refusal. */
async function connect(master: Master, i: number): Promise<number> {
  let refusals = 0;
  for (;;) {
    const slave = new SyntheticSlave(slaveId(i), slaveLabels(i), slavePeer(i));
    masterInternals(master).accept(slave);
    if (slave.registered) return refusals;
    refusals++;
    const hint = slave.status?.retryAfterMs ?? 100;
    await sleep(hint * (1 + DEFAULTS.retryJitter * Math.random()));
  }
}

export async function fill(masters: Master[], plan: FillPlan): Promise<Record<string, unknown>> {
  const started = performance.now();
  const perTick = Math.max(1, Math.round((plan.ratePerMaster * TICK_MS) / 1000));
  const next = plan.indexes.slice();
  let registered = 0;
  let refusals = 0;
  const retries: Promise<number>[] = [];
  let active = true;
  while (active) {
    const tickStart = performance.now();
    active = false;
    for (let m = 0; m < masters.length; m++) {
      for (let c = 0; c < perTick && next[m]! < plan.n; c++) {
        const i = next[m]!;
        next[m] = i + plan.k;
        const slave = new SyntheticSlave(slaveId(i), slaveLabels(i), slavePeer(i));
        masterInternals(masters[m]!).accept(slave);
        if (slave.registered) registered++;
        else {
          refusals++;
          retries.push(sleep(slave.status?.retryAfterMs ?? 100).then(() => connect(masters[m]!, i)));
        }
      }
      if (next[m]! < plan.n) active = true;
    }
    // Yield to the event loop (NATS traffic, claims from other masters) before the next chunk.
    await sleep(Math.max(0, TICK_MS - (performance.now() - tickStart)));
  }
  for (const r of await Promise.all(retries)) {
    refusals += r;
    registered++;
  }
  return { registered, refusals, ms: performance.now() - started, held: masters.map((m) => m.size) };
}

export async function rehome(masters: Master[], ids: number[], windowMs: number): Promise<Record<string, unknown>> {
  const started = performance.now();
  const results = await Promise.all(
    ids.map(async (i) => {
      await sleep(Math.random() * windowMs);
      return connect(masters[Math.floor(Math.random() * masters.length)]!, i);
    }),
  );
  return { registered: ids.length, refusals: results.reduce((a, b) => a + b, 0), ms: performance.now() - started };
}
