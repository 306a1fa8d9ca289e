/**
 * Paced fan-out: runs `each` over `items` in turns that cost the event loop
 * at most about `budgetMs` each, yielding with setImmediate between turns, so
 * timers (the heartbeat's ping slices and expiries) and I/O run between two
 * chunks of a fan-out to 10,000 streams instead of after all of it.
 *
 * A turn's cost is not only its own time. A write to a gRPC stream costs
 * some 7 µs of JavaScript, but Node's HTTP/2 flushes each session only after
 * the turn (a native immediate per session, run before the next turn of
 * ours), and with one connection per slave that flush costs 2–10× the write:
 * 10 ms of writes left 18–37 ms of flushing behind them (4,000 streams, 2
 * cores), and a broadcast's single loop at 10,000 wrote in 40–100 ms and
 * held the loop 0.7–1.1 s in all. So a turn's cost is the CPU time the
 * process used from its start to the moment the loop comes back to the
 * fan-out, and the next turn takes as many items as the cheapest (per item)
 * of the last few turns says fit in the budget: never fewer than
 * `checkEvery`, at most twice the last turn's, `firstTurn` before any was
 * measured. CPU time, not wall time: on a shared machine a process is not
 * always run, and time it waited says nothing of what its items cost.
 * Other work the loop did in between (pongs, a ping slice) counts too, but
 * only a loop busy turn after turn makes the turns smaller: one burst does
 * not.
 *
 * The clock is read once per `checkEvery` items, not per item: reading it
 * costs about as much as a cheap `each`.
 */
export interface PaceOptions {
  /** Longest a turn may run, and about what it may cost the loop in CPU time, the work it leaves behind included (ms). */
  budgetMs?: number;
  /** Items between two reads of the clock, and the fewest a turn takes. */
  checkEvery?: number;
  /** Items in the first turn, before any has been measured. */
  firstTurn?: number;
  /** Stops early (the items not reached are skipped) once it returns true. */
  stopped?: () => boolean;
}

export const PACE_DEFAULTS = { budgetMs: 10, checkEvery: 16, firstTurn: 64 } as const;

/** Turns whose cost per item the next turn's size is taken from (the cheapest of them). */
const RECENT_TURNS = 4;

/** Resolves once `each` ran on every item (or `stopped()` said stop); `each` must not throw. */
export async function pace<T>(items: Iterable<T>, each: (item: T) => void, options: PaceOptions = {}): Promise<void> {
  const budgetMs = options.budgetMs ?? PACE_DEFAULTS.budgetMs;
  const checkEvery = options.checkEvery ?? PACE_DEFAULTS.checkEvery;
  const stopped = options.stopped;
  /** Cost per item (ms) of the last turns, oldest first. */
  const recent: number[] = [];
  let limit = Math.max(checkEvery, options.firstTurn ?? PACE_DEFAULTS.firstTurn);
  let turnStart = performance.now();
  let turnCpu = cpuTime();
  let done = 0;
  let sinceCheck = 0;
  for (const item of items) {
    if (stopped?.()) return;
    each(item);
    done++;
    if (done < limit) {
      if (++sinceCheck < checkEvery) continue;
      sinceCheck = 0;
      if (performance.now() - turnStart < budgetMs) continue;
    }
    await yieldTurn();
    const resumedCpu = cpuTime();
    if (recent.push((resumedCpu - turnCpu) / done) > RECENT_TURNS) recent.shift();
    const perItem = Math.min(...recent);
    limit = Math.max(checkEvery, Math.min(2 * done, perItem > 0 ? Math.floor(budgetMs / perItem) : 2 * done));
    turnStart = performance.now();
    turnCpu = resumedCpu;
    done = 0;
    sinceCheck = 0;
  }
}

/** CPU time this process used, ms (user and system, all threads: the main thread's, nearly all of it, here). */
function cpuTime(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** One turn of the event loop: timers and I/O due now run before the caller goes on. */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
