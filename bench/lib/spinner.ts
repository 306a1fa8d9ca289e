/**
 * Calibrated background CPU load (`npm run bench -- --spinner F`): busy-loops
 * in short slices so that its busy wall-clock time tracks F × elapsed time,
 * i.e. it asks for fraction F of one core, spread evenly (never more than
 * one slice of SLICE_MS at a time), the way a neighbour's work would take
 * it. It makes a fast machine behave like a slower, shared one. What it
 * really got (its CPU time / wall time) is read from /proc by the
 * orchestrator and reported.
 *
 * Usage: node bench/lib/spinner.ts '{"fraction":0.5}'. Stops on SIGTERM or
 * when stdin closes.
 */
const { fraction } = JSON.parse(process.argv[2] ?? "{}") as { fraction?: number };
const share = Math.min(1, Math.max(0, Number(fraction ?? 0.5)));
/** Longest busy stretch: short, so the others are delayed by at most this much at a time. */
const SLICE_MS = 5;

const start = performance.now();
let busy = 0;
let sink = 0;

function spin(): void {
  const now = performance.now();
  // Owed busy time against the wall-clock duty cycle, at most one slice.
  const owed = Math.min(SLICE_MS, share * (now - start) - busy);
  if (owed > 0) {
    const from = performance.now();
    const until = from + owed;
    let t = from;
    while (t < until) {
      for (let i = 0; i < 1000; i++) sink += Math.sqrt(i + sink) % 7;
      t = performance.now();
    }
    busy += t - from;
  }
  // Sleep until the next slice is owed: (1 - share) of a slice's worth, at least 1 ms.
  const idle = share >= 1 ? 0 : Math.max(1, (SLICE_MS * (1 - share)) / Math.max(share, 0.01));
  setTimeout(spin, owed > 0 ? idle : Math.max(1, (busy - share * (performance.now() - start)) / Math.max(share, 0.01)));
}

process.stdin.resume();
process.stdin.on("close", () => process.exit(0));
process.on("SIGTERM", () => process.exit(sink === Number.POSITIVE_INFINITY ? 1 : 0));
spin();
