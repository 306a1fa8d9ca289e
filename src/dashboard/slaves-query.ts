import { DASHBOARD_DEFAULTS } from "../defaults.js";
import { formatLabels } from "../labels.js";
import type { SlaveInfo } from "../model.js";
import { HttpError } from "./http.js";

/*
 * /api/slaves as a pure function: its parameters parsed and checked, then a
 * list of slaves filtered by text, sorted and cut to one page. No I/O: the
 * routes pick the slaves (a selector goes to the master, which owns
 * selector matching) and hand them in.
 */

/** Longest selector taken from the page, here and by POST /api/send. */
export const MAX_SELECTOR_LENGTH = 1024;

export const SORT_KEYS = [
  "id",
  "labels",
  "peer",
  "connectedAt",
  "lastSeen",
  "rttMs",
  "pingsSent",
  "pongsReceived",
  "commandsSent",
  "masterId",
] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** One /api/slaves request, checked. */
export interface SlavesQuery {
  /** A label selector, or "" for every slave. */
  selector: string;
  /** Text the id, the peer or one "key=value" label must contain, any case; "" for no filter. */
  text: string;
  sort: SortKey;
  descending: boolean;
  offset: number;
  limit: number;
  /**
   * Where the page starts in a cluster's listing by id: the previous page's
   * nextPageToken ("" for the first). Only for sort=id ascending without
   * text: then each master answers only its next slice, and `offset` is only
   * echoed back (the page shows its position).
   */
  after: string;
}

/** Longest page token taken back (a token holds ids of at most 128 characters, a few per master that looked further). */
export const MAX_TOKEN_LENGTH = 64 * 1024;

/** The query of /api/slaves?selector=&q=&sort=&order=asc|desc&offset=&limit=&after=; a 400 for a bad parameter. */
export function parseSlavesQuery(params: URLSearchParams): SlavesQuery {
  const selector = params.get("selector")?.trim() ?? "";
  if (selector.length > MAX_SELECTOR_LENGTH) throw new HttpError(400, `selector longer than ${MAX_SELECTOR_LENGTH} characters`);
  const sort = (params.get("sort") ?? "id") as SortKey;
  if (!SORT_KEYS.includes(sort)) throw new HttpError(400, `sort must be one of ${SORT_KEYS.join(", ")}`);
  return {
    selector,
    text: (params.get("q") ?? "").trim(),
    sort,
    descending: params.get("order") === "desc",
    offset: integerParam(params, "offset", 0, 0, Number.MAX_SAFE_INTEGER),
    limit: integerParam(params, "limit", DASHBOARD_DEFAULTS.pageSize, 1, DASHBOARD_DEFAULTS.maxPageSize),
    after: afterParam(params),
  };
}

/** A slave as the dashboard lists it: with its master in a cluster. */
export type ListedSlave = SlaveInfo & { readonly masterId?: string };

/** One page of a query's answer, and how many slaves matched in all. */
export interface SlavesPage {
  matched: number;
  slaves: ListedSlave[];
}

/**
 * Filters `slaves` by the query's text, sorts them and returns the page
 * [offset, offset + limit). `slaves` is not changed (it may be the feed's
 * shared snapshot). A slave without rttMs (no pong yet) sorts as
 * infinitely slow: last ascending, first descending. Ties go by id,
 * ascending either way, so a page boundary is stable.
 */
export function querySlaves(slaves: readonly ListedSlave[], query: Omit<SlavesQuery, "selector" | "after">): SlavesPage {
  const text = query.text.toLowerCase();
  const matched = text ? slaves.filter((slave) => matchesText(slave, text)) : slaves.slice();
  const direction = query.descending ? -1 : 1;
  const { sort } = query;
  if (sort === "id") matched.sort((a, b) => (a.id < b.id ? -direction : a.id > b.id ? direction : 0));
  else {
    // Each key computed once, not once per comparison ("labels" formats a string).
    const keyed = matched.map((slave) => ({ slave, key: sortKey(slave, sort) }));
    keyed.sort((a, b) => (a.key < b.key ? -direction : a.key > b.key ? direction : a.slave.id < b.slave.id ? -1 : 1));
    for (let i = 0; i < keyed.length; i++) matched[i] = keyed[i]!.slave;
  }
  return { matched: matched.length, slaves: matched.slice(query.offset, query.offset + query.limit) };
}

/** /api/slaves answers in the shape every NetSync output shares (slave-json.ts). */
export { type SlaveJson, slaveJson } from "../slave-json.js";

function sortKey(slave: ListedSlave, key: Exclude<SortKey, "id">): string | number {
  switch (key) {
    case "labels":
      return formatLabels(slave.labels);
    case "peer":
      return slave.peer;
    case "connectedAt":
      return slave.connectedAt.getTime();
    case "lastSeen":
      return slave.lastSeen.getTime();
    case "rttMs":
      return slave.rttMs ?? Number.POSITIVE_INFINITY;
    case "masterId":
      return slave.masterId ?? "";
    default:
      return slave[key];
  }
}

/** `text` is lowercase: the id, the peer or one "key=value" label contains it, any case. */
function matchesText(slave: ListedSlave, text: string): boolean {
  if (slave.id.toLowerCase().includes(text) || slave.peer.toLowerCase().includes(text)) return true;
  for (const [key, value] of Object.entries(slave.labels)) if (`${key}=${value}`.toLowerCase().includes(text)) return true;
  return false;
}

function afterParam(params: URLSearchParams): string {
  const after = params.get("after") ?? "";
  if (after.length > MAX_TOKEN_LENGTH) throw new HttpError(400, `after longer than ${MAX_TOKEN_LENGTH} characters`);
  return after;
}

/** Whether a cluster answers this query page by page (by id ascending, no text, from the first page or a token) rather than from every slave. */
export function pagedQuery(query: SlavesQuery): boolean {
  return query.sort === "id" && !query.descending && query.text === "" && (query.after !== "" || query.offset === 0);
}

function integerParam(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = params.get(name);
  if (raw === null || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new HttpError(400, `${name} must be an integer from ${min} to ${max}`);
  return value;
}
