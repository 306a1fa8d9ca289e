import { Code } from "./code.js";
import { NetSyncError } from "./errors.js";

/*
 * Paging the fleet: every master keeps its ids in sorted order and answers
 * "the next n of my slaves after this id that match the selector"; the asking
 * master merges those answers in (id, master) order. A page token holds where
 * the listing is (the last slave listed) and, for a master whose answer went
 * further without finding anything (a selector that matches little), that
 * master's own cursor, so it does not scan the same ids again. A page costs
 * O(page), not O(fleet).
 */

/** The token's format; a token of another version is INVALID_ARGUMENT. */
const VERSION = 1;

/** Most ids one master examines for one answer: a selector that matches little costs a page at most this much per master. */
export const PAGE_SCAN_LIMIT = 10_000;

/** Most rounds of asking for one page; a page that is not full by then ends short, with a token to go on. */
export const PAGE_ROUNDS = 4;

/** Where one master's answer starts: after `id`, or at it when `inclusive`; from its first id when undefined. */
export interface PageCursor {
  id: string;
  inclusive: boolean;
}

/** A slave as paging orders it: by id, then by master (one id may be held by two masters for a moment). */
export interface Pageable {
  readonly id: string;
  readonly masterId: string;
}

/** One master's answer: its next matching slaves after its cursor, in id order, and how far it looked. */
export interface MasterPart<T extends Pageable> {
  masterId: string;
  slaves: T[];
  /** The last id it examined (≥ the last slave's id): it holds no other match in between. Undefined when it examined none. */
  last: string | undefined;
  /** It examined every id after its cursor: nothing more to fetch. */
  done: boolean;
}

/** A decoded page token. */
export interface PageToken {
  /** The selector the listing was started with (its text); "" for every slave. */
  selector: string;
  /**
   * The last position listed: every slave up to (id, masterId) was. A master
   * id of undefined means every master's slaves up to `id`.
   */
  at: { id: string; masterId: string | undefined } | undefined;
  /** Masters whose answer went past `at` without a match left unlisted: each starts after its own id. */
  skip: Record<string, string>;
}

const compare = (a: Pageable, b: Pageable): number =>
  a.id < b.id ? -1 : a.id > b.id ? 1 : a.masterId < b.masterId ? -1 : a.masterId > b.masterId ? 1 : 0;

export function encodePageToken(token: PageToken): string {
  const json: { v: number; s: string; p?: [string] | [string, string]; k?: Record<string, string> } = { v: VERSION, s: token.selector };
  if (token.at) json.p = token.at.masterId === undefined ? [token.at.id] : [token.at.id, token.at.masterId];
  if (Object.keys(token.skip).length > 0) json.k = token.skip;
  return Buffer.from(JSON.stringify(json), "utf8").toString("base64url");
}

/**
 * The token `text` as this listing gave it, for `selector`; "" is the first
 * page. INVALID_ARGUMENT for anything else: not a token, another version, or
 * a token of a listing with another selector (its positions would skip or
 * repeat slaves of this one).
 */
export function decodePageToken(text: string, selector: string): PageToken {
  if (text === "") return { selector, at: undefined, skip: {} };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    value = undefined;
  }
  const v = value as { v?: unknown; s?: unknown; p?: unknown; k?: unknown } | undefined;
  const position = v?.p;
  const skip = v?.k ?? {};
  const ok =
    typeof v === "object" &&
    v !== null &&
    v.v === VERSION &&
    typeof v.s === "string" &&
    (position === undefined ||
      (Array.isArray(position) &&
        (position.length === 1 || position.length === 2) &&
        position.every((x: unknown) => typeof x === "string"))) &&
    typeof skip === "object" &&
    skip !== null &&
    !Array.isArray(skip) &&
    Object.values(skip).every((x) => typeof x === "string");
  if (!ok) throw new NetSyncError("page_token is not one this listing gave", Code.INVALID_ARGUMENT);
  if (v.s !== selector) {
    throw new NetSyncError(
      `page_token belongs to a listing with selector ${JSON.stringify(v.s)}, not ${JSON.stringify(selector)}: start again without a token`,
      Code.INVALID_ARGUMENT,
    );
  }
  const p = position as string[] | undefined;
  return { selector, at: p ? { id: p[0]!, masterId: p[1] } : undefined, skip: skip as Record<string, string> };
}

/** Where master `masterId` starts for the page after `token`. */
export function cursorOf(token: PageToken, masterId: string): PageCursor | undefined {
  const own = token.skip[masterId];
  if (own !== undefined && (!token.at || own > token.at.id)) return { id: own, inclusive: false };
  if (!token.at) return undefined;
  // A slave with the position's id on a master ordered after the position's master was not listed yet.
  return { id: token.at.id, inclusive: token.at.masterId !== undefined && masterId > token.at.masterId };
}

/** What the asker wants of one master in the next round. */
export interface PartRequest {
  masterId: string;
  cursor: PageCursor | undefined;
  limit: number;
}

interface Source<T extends Pageable> {
  cursor: PageCursor | undefined;
  /** Answered slaves not yet placed on the page, and the next to place. */
  buffer: T[];
  next: number;
  /** Every match up to this id has been answered (undefined: nothing known yet). */
  bound: string | undefined;
  done: boolean;
  failed: boolean;
  asked: boolean;
}

/**
 * Builds one page from the masters' answers, in rounds: each round asks the
 * masters that have nothing buffered for about their share of what is still
 * needed (twice the even share, so ids spread over the masters fill the page
 * in one round), then places every answered slave that is known to come
 * before anything not yet answered: below the lowest `last` of the masters
 * that still have more. A master whose ids all come first is simply asked
 * again. Pure: the scope does the asking (locally, or over NATS).
 */
export class PageAssembler<T extends Pageable> {
  readonly page: T[] = [];
  private readonly sources = new Map<string, Source<T>>();
  private bytes = 0;
  private full = false;

  /**
   * @param masters the masters to ask, the answering one first
   * @param maxBytes bytes the page may take in all as `sizeOf` weighs each slave (the first always fits)
   */
  constructor(
    private readonly token: PageToken,
    masters: readonly string[],
    private readonly pageSize: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
    private readonly sizeOf: (slave: T) => number = () => 0,
  ) {
    for (const id of masters) {
      this.sources.set(id, {
        cursor: cursorOf(token, id),
        buffer: [],
        next: 0,
        bound: undefined,
        done: false,
        failed: false,
        asked: false,
      });
    }
  }

  /** Whether the page is complete: full (by count or bytes), or every master answered all it has (or failed). */
  get complete(): boolean {
    if (this.full) return true;
    for (const source of this.sources.values()) if (!source.done && !source.failed) return false;
    return this.remaining() === 0;
  }

  /** The masters to ask in the next round, and how many each (empty when complete). */
  requests(): PartRequest[] {
    if (this.complete) return [];
    const need = this.pageSize - this.page.length;
    const due = [...this.sources].filter(([, s]) => !s.done && !s.failed && s.next >= s.buffer.length);
    const limit = Math.max(1, Math.min(need, Math.ceil((2 * need) / Math.max(1, due.length)) + 16));
    return due.map(([masterId, s]) => ({ masterId, cursor: s.cursor, limit }));
  }

  /** A master's answer to the last round; then place() what it allows. False when it is refused (the master then counts as failed). */
  answer(part: MasterPart<T>): boolean {
    const source = this.sources.get(part.masterId);
    if (!source || source.failed) return false;
    // "More to come" without saying how far it looked cannot be merged: as good as no answer.
    if (!part.done && part.last === undefined) {
      source.failed = true;
      return false;
    }
    source.asked = true;
    source.buffer = part.slaves;
    source.next = 0;
    source.done = part.done;
    if (part.last !== undefined) {
      source.bound = part.last;
      source.cursor = { id: part.last, inclusive: false };
    }
    return true;
  }

  /** A master that did not answer: left out of this page (its slaves are missing from it; the caller names it). */
  fail(masterId: string): void {
    const source = this.sources.get(masterId);
    if (source) source.failed = true;
  }

  /** Places the answered slaves that come before anything unanswered, in order, until the page is full. */
  place(): void {
    let bound: string | undefined;
    let unbounded = true;
    for (const s of this.sources.values()) {
      if (s.done || s.failed) continue;
      if (!s.asked) return; // nothing is known of this master yet: nothing can be placed
      if (unbounded || s.bound! < bound!) bound = s.bound;
      unbounded = false;
    }
    const heads = [...this.sources.values()].filter((s) => !s.failed);
    while (this.page.length < this.pageSize) {
      let best: Source<T> | undefined;
      for (const s of heads) {
        const slave = s.buffer[s.next];
        if (slave === undefined || (!unbounded && slave.id > bound!)) continue;
        if (!best || compare(slave, best.buffer[best.next]!) < 0) best = s;
      }
      if (!best) return;
      const slave = best.buffer[best.next]!;
      const size = this.sizeOf(slave);
      if (this.page.length > 0 && this.bytes + size > this.maxBytes) {
        this.full = true;
        return;
      }
      this.bytes += size;
      this.page.push(slave);
      best.next++;
    }
    this.full = true;
  }

  /**
   * The token of the page after this one, "" when the listing is complete.
   * Call after the last place(); if the page is not full (rounds ran out), it
   * ends below the lowest bound answered, and the next page starts there.
   */
  nextToken(): string {
    const last = this.page.at(-1);
    // Every master answered all it has and all of it is placed: the listing is complete (even on a full page).
    if (this.remaining() === 0 && [...this.sources.values()].every((s) => s.done || s.failed)) return "";
    let at: PageToken["at"] = last ? { id: last.id, masterId: last.masterId } : this.token.at;
    if (!this.full) {
      // Every answered slave up to the lowest open bound is on the page: the listing is there, for every master.
      let bound: string | undefined;
      for (const s of this.sources.values()) {
        if (s.done || s.failed || s.bound === undefined) continue;
        if (bound === undefined || s.bound < bound) bound = s.bound;
      }
      if (bound !== undefined && (!at || bound > at.id)) at = { id: bound, masterId: undefined };
    }
    const skip: Record<string, string> = {};
    for (const [masterId, s] of this.sources) {
      // A master whose answer is all placed and that looked further than the position starts after what it looked at.
      if (s.failed || s.done || s.bound === undefined || s.next < s.buffer.length) continue;
      if (!at || s.bound > at.id) skip[masterId] = s.bound;
    }
    return encodePageToken({ selector: this.token.selector, at, skip });
  }

  private remaining(): number {
    let n = 0;
    for (const s of this.sources.values()) if (!s.failed) n += s.buffer.length - s.next;
    return n;
  }
}

/** The page size asked for, checked: 0 means `defaultSize`, more than `maxSize` is `maxSize`; negative is INVALID_ARGUMENT. */
export function pageSizeOf(pageSize: number | undefined, defaultSize: number, maxSize: number): number {
  const size = pageSize ?? 0;
  if (!Number.isInteger(size) || size < 0) throw new NetSyncError(`page_size must be ≥ 0, got ${size}`, Code.INVALID_ARGUMENT);
  return size === 0 ? defaultSize : Math.min(size, maxSize);
}
