/** What the admin commands print: aligned tables for people, one JSON object per line for scripts. */

export function printJsonLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** "1 slave", "2 slaves". */
export function slaves(n: number): string {
  return `${n} slave${n === 1 ? "" : "s"}`;
}

/** One warning line on stderr naming the masters whose part of a cluster-wide answer is missing. */
export function warnUnanswered(ids: string[], consequence: string): void {
  if (ids.length === 0) return;
  process.stderr.write(`warning: no answer from master${ids.length > 1 ? "s" : ""} ${ids.join(", ")}: ${consequence}\n`);
}
