import { timestampMs } from "@bufbuild/protobuf/wkt";
import { AdminClient } from "../../admin-client.js";
import { Code } from "../../code.js";
import { NetSyncError } from "../../errors.js";
import { explainAdminError } from "../admin-errors.js";
import { formatDuration } from "../duration.js";
import { printJsonLine, slaves, table, warnUnanswered } from "../output.js";
import { type ClientSecurityFlags, clientSecurity } from "../security.js";
import { closedSlaveJson, closeReasonName, slaveMessageJson } from "../slave-message.js";

export type MastersFlags = { master: string; json?: boolean } & ClientSecurityFlags;
export type SlavesFlags = { master: string; json?: boolean; closed?: boolean; selector?: string } & ClientSecurityFlags;
export type SendFlags = {
  master: string;
  to?: string;
  all?: boolean;
  selector?: string;
  wait?: boolean;
  timeout: number;
  json?: boolean;
} & ClientSecurityFlags;

/** What `send` prints for every target (--to, --selector, --all), as JSON and as a line. */
export interface SendResult {
  written: number;
  /** How many on each master that answered, by master id. */
  byMaster: Record<string, number>;
  /** Masters of the cluster that did not answer: their slaves did not get it. */
  unanswered: string[];
  /** The slave's reply, with --wait. */
  reply?: string;
}

/** `netsync slaves`: AdminService.ListSlaves (every page) as a table, or one JSON object per slave. */
export async function listSlaves(opts: SlavesFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    const response = await admin.listAllSlaves({ includeClosed: opts.closed ?? false, selector: opts.selector });
    if (opts.json) {
      for (const s of response.slaves) printJsonLine(slaveMessageJson(s));
      if (opts.closed) for (const c of response.closed) printJsonLine(closedSlaveJson(c));
    } else {
      process.stdout.write(`${slavesTable(response.slaves.map(slaveMessageJson))}\n`);
      if (opts.closed) {
        const rows = response.closed.map((c) => {
          const json = closedSlaveJson(c);
          return [json.id, closeReasonName(c.reason), new Date(json.closedAt).toISOString(), json.details];
        });
        process.stdout.write(`\n${table(["CLOSED", "REASON", "AT", "DETAILS"], rows)}\n`);
      }
    }
    warnUnanswered(response.unansweredMasters, "their slaves are missing from this list");
  });
}

/** `netsync send`: AdminService.Send (--to) or Broadcast (--selector, --all), one result shape for both; flags already checked. */
export async function send(data: string, opts: SendFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    let result: SendResult;
    if (opts.to === undefined) {
      const response = await admin.broadcastDetails(data, { selector: opts.selector });
      result = { written: response.written, byMaster: { ...response.writtenByMaster }, unanswered: response.unansweredMasters };
    } else {
      const response = await admin.send(opts.to, data, opts.wait ? { timeout: opts.timeout } : undefined);
      const written = response.written ? 1 : 0;
      result = { written, byMaster: response.masterId ? { [response.masterId]: written } : {}, unanswered: [] };
      const reply = response.reply?.result;
      if (reply?.case === "error")
        throw new NetSyncError(
          `slave ${opts.to} (on master ${response.masterId}) failed to handle the command: ${reply.value}`,
          Code.UNKNOWN,
        );
      if (reply?.case === "data") result.reply = reply.value;
    }
    if (opts.json) printJsonLine(result);
    // With --wait, stdout is the reply alone, for scripts to use as it is.
    else if (result.reply !== undefined) process.stdout.write(`${result.reply}\n`);
    else process.stdout.write(`${sendLine(result)}\n`);
    warnUnanswered(result.unanswered, "their slaves did not get it");
  });
}

/** "written to 2 slaves (m1: 1, m2: 1)": the total, then the count on each master. */
export function sendLine(result: SendResult): string {
  const byMaster = Object.entries(result.byMaster);
  const split = byMaster.length > 0 ? ` (${byMaster.map(([id, n]) => `${id}: ${n}`).join(", ")})` : "";
  return `written to ${slaves(result.written)}${split}`;
}

/** `netsync masters`: AdminService.ListMasters as a table, or one JSON object per master. */
export async function listMasters(opts: MastersFlags): Promise<void> {
  await withAdmin(opts, async (admin) => {
    const response = await admin.listMasters();
    if (opts.json) {
      for (const m of response.masters)
        printJsonLine({ id: m.id, address: m.address, slavesHeld: m.slavesHeld, lastHeard: m.lastHeard ? timestampMs(m.lastHeard) : null });
      return;
    }
    const now = Date.now();
    const rows = response.masters.map((m) => [
      m.id,
      m.address,
      String(m.slavesHeld),
      m.lastHeard ? `${formatDuration(Math.max(0, now - timestampMs(m.lastHeard)))} ago` : "",
    ]);
    process.stdout.write(`${table(["ID", "ADDRESS", "SLAVES", "LAST HEARD"], rows)}\n`);
    // On stderr even for a lone master: the response cannot tell "no cluster configured" from "NATS unreachable".
    if (!response.clusterConnected)
      process.stderr.write("warning: this master is not connected to a cluster (none configured, or NATS unreachable)\n");
    process.stdout.write("\nnot in a cluster (none configured, or NATS unreachable): only this master is listed\n");
  });
}

/** Runs `fn` with an AdminClient of `opts.master`, closed after; its failure explained as one sentence (admin-errors.ts). */
export async function withAdmin(opts: { master: string } & ClientSecurityFlags, fn: (admin: AdminClient) => Promise<void>): Promise<void> {
  const admin = new AdminClient(opts.master, clientSecurity(opts));
  try {
    await fn(admin);
  } catch (e) {
    throw explainAdminError(e, opts.master);
  } finally {
    admin.close();
  }
}

function slavesTable(list: ReturnType<typeof slaveMessageJson>[]): string {
  if (list.length === 0) return "no slaves";
  const now = Date.now();
  const rows = list.map((s) => [
    s.id,
    s.masterId || "-",
    s.peer,
    s.connectedAt ? new Date(s.connectedAt).toISOString() : "",
    s.lastSeen ? `${formatDuration(Math.max(0, now - s.lastSeen))} ago` : "",
    s.rttMs === null ? "-" : `${s.rttMs.toFixed(2)} ms`,
    String(s.pingsSent),
    String(s.pongsReceived),
    Object.entries(s.labels)
      .map(([key, value]) => `${key}=${value}`)
      .join(",") || "-",
  ]);
  return table(["ID", "MASTER", "PEER", "CONNECTED", "LAST SEEN", "RTT", "PINGS", "PONGS", "LABELS"], rows);
}
