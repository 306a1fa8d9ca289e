import { DEFAULTS } from "../defaults.js";
import type { ClosedSlaveInfo, SlaveInfo } from "../model.js";
import type { SlaveConnection } from "./slave-connection.js";

/** Connected slaves by id (at most one connection per id), and a bounded history of closed ones. */
export class Registry {
  private readonly byId = new Map<string, SlaveConnection>();
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
    return previous === connection ? undefined : previous;
  }

  /** Removes `connection` if it is still the one registered under its id. */
  remove(connection: SlaveConnection): boolean {
    if (this.byId.get(connection.id) !== connection) return false;
    return this.byId.delete(connection.id);
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
