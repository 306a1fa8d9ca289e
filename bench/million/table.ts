/** The million bench's stdout table: one column per pass, one row per figure. */
type R = Record<string, unknown>;

const get = (o: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((v, key) => (v && typeof v === "object" ? (v as R)[key] : undefined), o);

const num = (v: unknown, digits = 1, scale = 1): string =>
  typeof v === "number" && Number.isFinite(v)
    ? (v / scale).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "–";

const ROWS: [string, (p: R) => string][] = [
  ["slaves (masters)", (p) => `${num(p.n, 0)} (${p.k})`],
  ["spinner (% of a core got)", (p) => `${p.spinner} (${num(p.spinnerPct, 0)})`],
  ["cold start, s (fill)", (p) => `${num(get(p, "coldStart.totalMs"), 1, 1000)} (${num(get(p, "coldStart.fillMs"), 1, 1000)})`],
  ["routed request idle p50 / p99, ms", (p) => `${num(get(p, "routed.idle.ms.p50"), 2)} / ${num(get(p, "routed.idle.ms.p99"), 2)}`],
  [
    "routed request during listing p50 / p99",
    (p) => `${num(get(p, "routed.duringListing.ms.p50"), 2)} / ${num(get(p, "routed.duringListing.ms.p99"), 2)}`,
  ],
  ["page of 1,000 p50 / p99, ms", (p) => `${num(get(p, "listing.pageMs.p50"), 1)} / ${num(get(p, "listing.pageMs.p99"), 1)}`],
  [
    "full listing, s (slaves, out of order)",
    (p) => `${num(get(p, "listing.ms"), 1, 1000)} (${num(get(p, "listing.count"), 0)}, ${get(p, "listing.outOfOrder")})`,
  ],
  ["selector 1 %: first page ms / whole s", (p) => `${num(get(p, "selector.firstPageMs"), 1)} / ${num(get(p, "selector.ms"), 2, 1000)}`],
  [
    "fleet broadcast, ms (per master min–max)",
    (p) => `${num(get(p, "broadcast.ms"), 0)} (${get(p, "broadcast.perMasterMin")}–${get(p, "broadcast.perMasterMax")})`,
  ],
  ["NATS restart: routes back, s", (p) => num(get(p, "natsRestart.routesBackMs"), 2, 1000)],
  [
    "  msgs received per master max / median",
    (p) => `${num(get(p, "natsRestart.receivedPerMaster.msgsMax"), 0)} / ${num(get(p, "natsRestart.receivedPerMaster.msgsMedian"), 0)}`,
  ],
  [
    "  MB received per master max / median",
    (p) =>
      `${num(get(p, "natsRestart.receivedPerMaster.bytesMax"), 2, 1e6)} / ${num(get(p, "natsRestart.receivedPerMaster.bytesMedian"), 2, 1e6)}`,
  ],
  ["  bytes received ÷ own slaves, max", (p) => num(get(p, "natsRestart.receivedPerMaster.bytesPerOwnSlaveMax"), 0)],
  ["victim killed: unroutable after, s", (p) => num(get(p, "failover.unroutableMs"), 2, 1000)],
  [
    "  fails fast in, ms (codes)",
    (p) => `${num(get(p, "failover.failFastMs"), 1)} (${JSON.stringify(get(p, "failover.failCodes") ?? {})})`,
  ],
  ["  re-homed slaves registered in, s", (p) => num(get(p, "failover.registeredMs"), 2, 1000)],
  [
    "  routable again / views exact, s",
    (p) => `${num(get(p, "failover.routableAfterRehomeMs"), 2, 1000)} / ${num(get(p, "failover.viewsExactAfterRehomeMs"), 2, 1000)}`,
  ],
  ["nats-server RSS, MB (each)", (p) => ((get(p, "nats") as R[] | undefined) ?? []).map((s) => num(s.memBytes, 0, 1e6)).join(" / ")],
  ["nats-server CPU s (each)", (p) => ((get(p, "nats") as R[] | undefined) ?? []).map((s) => num(s.cpuMs, 1, 1000)).join(" / ")],
  [
    "master process RSS per slave, KB (max)",
    (p) => num(Math.max(...((get(p, "memory.perProcess") as R[] | undefined) ?? []).map((m) => Number(m.rssPerSlave))), 1, 1000),
  ],
  [
    "master process heap per slave, KB (max)",
    (p) => num(Math.max(...((get(p, "memory.perProcess") as R[] | undefined) ?? []).map((m) => Number(m.heapPerSlave))), 1, 1000),
  ],
  ["slow consumers", (p) => `${get(p, "slowConsumers.beforeRestart")} + ${get(p, "slowConsumers.atEnd")}`],
  ["failures", (p) => (p.error ? "stopped" : String(((p.failures as string[] | undefined) ?? []).length))],
];

export function printTable(passes: R[]): void {
  const cells = ROWS.map(([label, cell]) => [label, ...passes.map((p) => cell(p))]);
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((row) => row[c]!.length)));
  for (const row of cells) console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "));
}
