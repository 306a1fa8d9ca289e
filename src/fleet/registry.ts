import { DEFAULTS } from "../defaults.js";
import type { ClosedSlaveInfo, SlaveInfo } from "../model.js";
import type { SlaveConnection } from "./slave-connection.js";
import { SortedIds } from "./sorted-ids.js";

/**
 * Connected slaves by id (at most one connection per id), their ids in
 * sorted order (for listing page by page), and a bounded history of closed ones.
 */
export class Registry {
  private readonly byId = new Map<string, SlaveConnection>();
  private readonly sorted = new SortedIds();
  /** Ring buffer of closed slaves; `historyNext` is where the next one goes. */
  private readonly history: ClosedSlaveInfo[] = [];
  private historyNext = 0;

  constructor(private readonly historySize: number = DEFAULTS.historySize) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): SlaveConnection | undefined {
    return this.byId.get(id);
  }

  /** Adds `connection` and returns the one it replaced under the same id, if any. */
  add(connection: SlaveConnection): SlaveConnection | undefined {
    const previous = this.byId.get(connection.id);
    this.byId.set(connection.id, connection);
    if (previous === undefined) this.sorted.add(connection.id);
    return previous === connection ? undefined : previous;
  }

  /** Removes `connection` if it is still the one registered under its id. */
  remove(connection: SlaveConnection): boolean {
    if (this.byId.get(connection.id) !== connection) return false;
    this.sorted.delete(connection.id);
    return this.byId.delete(connection.id);
  }

  /** The connections in id order after `after` (from `after` itself when `inclusive`), from the first without it. */
  *inOrder(after?: string, inclusive = false): Generator<SlaveConnection, void, undefined> {
    for (const id of this.sorted.from(after, inclusive)) {
      const connection = this.byId.get(id);
      if (connection) yield connection;
    }
  }

  /** Every id registered, in order. */
  ids(): string[] {
    return this.sorted.all();
  }

  values(): IterableIterator<SlaveConnection> {
    return this.byId.values();
  }

  snapshot(): SlaveInfo[] {
    return Array.from(this.byId.values(), (c) => c.info());
  }

  /** Remembers a slave that left, forgetting the oldest past historySize. */
  recordClosed(closed: ClosedSlaveInfo): void {
    if (this.historySize <= 0) return;
    this.history[this.historyNext] = closed;
    this.historyNext = (this.historyNext + 1) % this.historySize;
  }

  /** Closed slaves, newest first. */
  recentlyClosed(): ClosedSlaveInfo[] {
    const n = this.history.length;
    const out: ClosedSlaveInfo[] = [];
    for (let i = 1; i <= n; i++) out.push(this.history[(this.historyNext - i + n) % n]!);
    return out;
  }
}
