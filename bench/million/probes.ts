/**
 * What a process measures from one of its masters: routed requests to slaves
 * other masters hold (latency, or how and how fast they fail), and the fleet
 * listed page by page (each page's time, every slave exactly once).
 */
import type { Master } from "../../src/index.js";
import { summarize } from "../lib/common.js";
import { slaveId } from "./synthetic-slave.js";

/** `master.request()` to each id in turn: latencies of the ones answered "ok", codes and times of the failures. */
export async function requestMany(master: Master, ids: number[], timeout: number): Promise<Record<string, unknown>> {
  const okMs: number[] = [];
  const failMs: number[] = [];
  const codes: Record<string, number> = {};
  const started = performance.now();
  for (const i of ids) {
    const t0 = performance.now();
    try {
      const data = await master.request(slaveId(i), { data: "probe" }, { timeout });
      if (data === "ok") okMs.push(performance.now() - t0);
      else codes.bad_reply = (codes.bad_reply ?? 0) + 1;
    } catch (err) {
      failMs.push(performance.now() - t0);
      const code = String((err as { code?: unknown }).code ?? "thrown");
      codes[code] = (codes[code] ?? 0) + 1;
    }
  }
  return {
    ok: okMs.length,
    failed: failMs.length,
    codes,
    okMs: summarize(okMs),
    failMs: summarize(failMs),
    ms: performance.now() - started,
  };
}

/** Every page of the listing from `master`: counts, page times, and whether ids came strictly ascending (so each exactly once). */
export async function listAll(master: Master, selector: string | undefined, pageSize: number): Promise<Record<string, unknown>> {
  const pageMs: number[] = [];
  let token = "";
  let count = 0;
  let last = "";
  let outOfOrder = 0;
  let unanswered = 0;
  const started = performance.now();
  do {
    const t0 = performance.now();
    const page = await master.fleetPage({ selector, pageSize, pageToken: token, timeout: 10_000 });
    pageMs.push(performance.now() - t0);
    for (const slave of page.slaves) {
      if (slave.id <= last) outOfOrder++;
      last = slave.id;
    }
    count += page.slaves.length;
    unanswered += page.unanswered.length;
    token = page.nextPageToken;
  } while (token !== "");
  return {
    ms: performance.now() - started,
    pages: pageMs.length,
    count,
    outOfOrder,
    unanswered,
    firstPageMs: pageMs[0],
    pageMs: summarize(pageMs),
  };
}
