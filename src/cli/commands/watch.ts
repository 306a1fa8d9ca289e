import { timestampDate } from "@bufbuild/protobuf/wkt";
import { CloseReason, WatchEventKind, type WatchResponse } from "../../../gen/netsync/v1/admin_pb.js";
import { AdminClient } from "../../admin-client.js";
import { type ClientSecurityFlags, clientSecurity } from "../security.js";
import { UsageError } from "../usage.js";

export type WatchFlags = { master: string; selector?: string; kinds?: string; snapshot?: boolean; json?: boolean } & ClientSecurityFlags;

/** The names `--kinds` takes, as the events are printed. */
export const WATCH_KIND_NAMES = ["connected", "disconnected", "evicted", "replaced", "master_joined", "master_left", "snapshot"] as const;

const nameOf = (kind: WatchEventKind) => (WatchEventKind[kind] ?? String(kind)).toLowerCase();

/** `--kinds connected,evicted` as enum values; a usage error names an unknown one. */
export function parseKinds(text: string | undefined): WatchEventKind[] {
  if (text === undefined) return [];
  return text.split(",").map((raw) => {
    const name = raw.trim().toLowerCase();
    if (!(WATCH_KIND_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`--kinds: unknown kind "${raw.trim()}"; use ${WATCH_KIND_NAMES.join(", ")}`);
    }
    return WatchEventKind[name.toUpperCase() as keyof typeof WatchEventKind];
  });
}

const ms = (t: WatchResponse["time"]) => (t ? timestampDate(t).getTime() : null);

/** One event as a JSON line: times in epoch ms, counters as numbers, no int64 strings. */
export function eventJson(event: WatchResponse) {
  const s = event.slave;
  return {
    time: ms(event.time),
    kind: nameOf(event.kind),
    masterId: event.masterId,
    slave: s
      ? {
          id: s.id,
          masterId: s.masterId,
          labels: s.labels,
          peer: s.peer,
          connectedAt: ms(s.connectedAt),
          lastSeen: ms(s.lastSeen),
          rttMs: s.rtt ? Number(s.rtt.seconds) * 1000 + s.rtt.nanos / 1e6 : null,
          pingsSent: Number(s.pingsSent),
          pongsReceived: Number(s.pongsReceived),
          commandsSent: Number(s.commandsSent),
        }
      : null,
    reason: event.reason === CloseReason.UNSPECIFIED ? null : CloseReason[event.reason]!.toLowerCase(),
    details: event.details,
  };
}

/** One event as a line a person reads: time, kind, slave, master, labels, details. */
export function eventLine(event: WatchResponse): string {
  const time = event.time ? timestampDate(event.time).toISOString() : "-";
  const s = event.slave;
  const labels = s
    ? Object.entries(s.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")
    : "";
  const subject = s ? `${s.id} on ${event.masterId}` : event.kind === WatchEventKind.SYNCED ? `via ${event.masterId}` : event.masterId;
  return [time, nameOf(event.kind).padEnd(13), subject, labels && `[${labels}]`, event.details].filter((part) => part !== "").join("  ");
}

/** `netsync watch`: AdminService.Watch, one line (or JSON object) per event until Ctrl-C. */
export async function watch(opts: WatchFlags): Promise<void> {
  const kinds = parseKinds(opts.kinds);
  const admin = new AdminClient(opts.master, clientSecurity(opts));
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    for await (const event of admin.watch({ selector: opts.selector, kinds, snapshot: opts.snapshot ?? false, signal: abort.signal })) {
      process.stdout.write(`${opts.json ? JSON.stringify(eventJson(event)) : eventLine(event)}\n`);
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    admin.close();
  }
}
