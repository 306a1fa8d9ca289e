import type { WatchEvent, WatchListener } from "../model.js";

/**
 * The local fleet's events as a watch sees them, fanned out to whoever
 * listens (a scope, which adds other masters' events in a cluster). Costs
 * nothing with no listener: the composition root checks `size` before it
 * builds an event.
 */
export class WatchHub {
  private readonly listeners = new Set<WatchListener>();

  get size(): number {
    return this.listeners.size;
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: WatchListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: WatchEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
