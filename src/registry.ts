import type { SlaveConnection, SlaveInfo } from "./slave-connection.js";

/** Connected slaves by id. At most one connection per id. */
export class Registry {
  private readonly byId = new Map<string, SlaveConnection>();

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
}
