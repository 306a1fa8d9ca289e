import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  CloseReason,
  ListMastersResponseSchema,
  ListSlavesResponseSchema,
  type Slave as SlaveMessage,
} from "../../../gen/netsync/v1/admin_pb.js";
import { AdminClient } from "../../admin-client.js";
import { NetSyncError } from "../../errors.js";
import { formatDuration } from "../duration.js";
import { type ClientSecurityFlags, clientSecurity } from "../security.js";

export type MastersFlags = { master: string; json?: boolean } & ClientSecurityFlags;
export type SlavesFlags = { master: string; json?: boolean; closed?: boolean; selector?: string } & ClientSecurityFlags;
export type SendFlags = {
  master: string;
  to?: string;
  all?: boolean;
  selector?: string;
  wait?: boolean;
  timeout: number;
} & ClientSecurityFlags;

/** `netsync slaves`: AdminService.ListSlaves as a table or JSON. */
export async function listSlaves(opts: SlavesFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    const response = await admin.listAllSlaves({ includeClosed: opts.closed ?? false, selector: opts.selector });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(toJson(ListSlavesResponseSchema, response), null, 2)}\n`);
      return;
    }
    process.stdout.write(`${slavesTable(response.slaves)}\n`);
    warnUnanswered(response.unansweredMasters, "their slaves are missing from this list");
    if (opts.closed) {
      const rows = response.closed.map((c) => [
        c.slave?.id ?? "",
        CloseReason[c.reason]?.toLowerCase() ?? String(c.reason),
        c.closedAt ? timestampDate(c.closedAt).toISOString() : "",
        c.details,
      ]);
      process.stdout.write(`\n${table(["CLOSED", "REASON", "AT", "DETAILS"], rows)}\n`);
    }
  });
}

/** `netsync send`: AdminService.Broadcast (--all) or Send (--to), the flags already checked. */
export async function send(data: string, opts: SendFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    if (opts.all || opts.selector !== undefined) {
      const response = await admin.broadcastDetails(data, { selector: opts.selector });
      const byMaster = Object.entries(response.writtenByMaster);
      // One master (no cluster, or alone in it): the line stays as it always was.
      const split = byMaster.length > 1 ? ` (${byMaster.map(([id, n]) => `${id}: ${n}`).join(", ")})` : "";
      process.stdout.write(`written to ${response.written} slaves${split}\n`);
      warnUnanswered(response.unansweredMasters, "their slaves did not get it");
      return;
    }
    const response = await admin.send(opts.to!, data, opts.wait ? { timeout: opts.timeout } : undefined);
    const result = response.reply?.result;
    if (result?.case === "error") throw new NetSyncError(`slave ${opts.to} (on master ${response.masterId}) failed: ${result.value}`);
    process.stdout.write(result?.case === "data" ? `${result.value}\n` : `written: ${response.written}\n`);
    // stdout stays the reply alone, for scripts; where it came from goes to stderr.
    if (response.masterId) process.stderr.write(`slave ${opts.to} is held by master ${response.masterId}\n`);
  });
}

/** `netsync masters`: AdminService.ListMasters as a table or JSON. */
export async function listMasters(opts: MastersFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    const response = await admin.listMasters();
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(toJson(ListMastersResponseSchema, response), null, 2)}\n`);
      return;
    }
    const now = Date.now();
    const rows = response.masters.map((m) => [
      m.id,
      m.address,
      String(m.slavesHeld),
      m.lastHeard ? `${formatDuration(Math.max(0, now - timestampDate(m.lastHeard).getTime()))} ago` : "",
    ]);
    process.stdout.write(`${table(["ID", "ADDRESS", "SLAVES", "LAST HEARD"], rows)}\n`);
    if (!response.clusterConnected)
      process.stderr.write("warning: this master is not connected to a cluster (none configured, or NATS unreachable)\n");
  });
}

/** One warning line on stderr naming the masters whose part of a cluster-wide answer is missing. */
function warnUnanswered(ids: string[], consequence: string): void {
  if (ids.length === 0) return;
  process.stderr.write(`warning: no answer from master${ids.length > 1 ? "s" : ""} ${ids.join(", ")}: ${consequence}\n`);
}

async function withAdmin(opts: { master: string } & ClientSecurityFlags, fn: (admin: AdminClient) => Promise<void>): Promise<void> {
  const admin = new AdminClient(opts.master, clientSecurity(opts));
  try {
    await fn(admin);
  } finally {
    admin.close();
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function slavesTable(slaves: SlaveMessage[]): string {
  if (slaves.length === 0) return "no slaves";
  const now = Date.now();
  const ago = (t: SlaveMessage["lastSeen"]) => (t ? `${formatDuration(Math.max(0, now - timestampDate(t).getTime()))} ago` : "");
  const rows = slaves.map((s) => [
    s.id,
    s.masterId || "-",
    s.peer,
    s.connectedAt ? timestampDate(s.connectedAt).toISOString() : "",
    ago(s.lastSeen),
    s.rtt ? `${(Number(s.rtt.seconds) * 1000 + s.rtt.nanos / 1e6).toFixed(2)} ms` : "-",
    String(s.pingsSent),
    String(s.pongsReceived),
    Object.entries(s.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(",") || "-",
  ]);
  return table(["ID", "MASTER", "PEER", "CONNECTED", "LAST SEEN", "RTT", "PINGS", "PONGS", "LABELS"], rows);
}
