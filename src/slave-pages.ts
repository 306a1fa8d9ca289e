import { Code } from "./code.js";
import { NetSyncError } from "./errors.js";

/** Where a page of ListSlaves ends: the last slave it held, in (id, master) order. */
interface Cursor {
  id: string;
  masterId: string;
}

/** The options of one page. */
export interface PageRequest<T> {
  /** Most items; 0 lets the server choose (`defaultSize`). */
  pageSize: number;
  /** The token that ended the previous page; "" for the first. */
  pageToken: string;
  defaultSize: number;
  /** Bytes the page may take at most (the rest of the message needs room too); the first item always fits. */
  maxBytes: number;
  /** Encoded size of one item. */
  sizeOf(item: T): number;
}

const compare = (a: Cursor, b: Cursor): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : a.masterId < b.masterId ? -1 : a.masterId > b.masterId ? 1 : 0;

/**
 * One page of `items` in (id, master) order, after the cursor in
 * `pageToken`, bounded by count and by encoded size: a fleet of any size
 * is listed without any one message crossing the gRPC size limit. The token
 * is a position, not a snapshot, so a slave that connects or leaves between
 * two pages is listed or not as it was at the time of each page, never twice.
 */
export function pageOf<T extends Cursor>(items: readonly T[], request: PageRequest<T>): { page: T[]; nextPageToken: string } {
  if (!Number.isInteger(request.pageSize) || request.pageSize < 0) {
    throw new NetSyncError(`page_size must be ≥ 0, got ${request.pageSize}`, Code.INVALID_ARGUMENT);
  }
  const after = request.pageToken === "" ? undefined : decodeToken(request.pageToken);
  const size = request.pageSize === 0 ? request.defaultSize : request.pageSize;
  const sorted = (after ? items.filter((item) => compare(item, after) > 0) : [...items]).sort(compare);
  const page: T[] = [];
  let bytes = 0;
  for (const item of sorted) {
    if (page.length === size) break;
    const itemBytes = request.sizeOf(item);
    if (page.length > 0 && bytes + itemBytes > request.maxBytes) break;
    bytes += itemBytes;
    page.push(item);
  }
  const last = page.at(-1);
  return { page, nextPageToken: last && page.length < sorted.length ? encodeToken(last) : "" };
}

function encodeToken(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.id, cursor.masterId]), "utf8").toString("base64url");
}

function decodeToken(token: string): Cursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && typeof value[1] === "string") {
      return { id: value[0], masterId: value[1] };
    }
  } catch {
    // reported below
  }
  throw new NetSyncError("page_token is not one this master gave", Code.INVALID_ARGUMENT);
}
