/** Progress lines of bench/run.ts, on stderr so that stdout carries the report alone. */
export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
