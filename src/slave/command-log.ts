import type { Reply } from "../../gen/netsync/v1/netsync_pb.js";

/** What a command's handler produced (the oneof of its Reply), once it has run. */
export type CommandResult = Reply["result"];

/**
 * The commands this slave ran recently, by command_id, each with its
 * result: a command that reaches the slave again (a master re-sent it to the
 * slave's new master after a failover) is answered from here and not run
 * twice. Bounded in count and age, oldest dropped first; no timer, entries
 * age out as new ones arrive.
 */
export class CommandLog {
  private readonly byId = new Map<string, { at: number; result: Promise<CommandResult> }>();

  constructor(
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** The result of the command's first run (maybe still running), if it ran within the bounds. */
  get(commandId: string): Promise<CommandResult> | undefined {
    const entry = this.byId.get(commandId);
    if (!entry) return undefined;
    if (this.now() - entry.at > this.maxAgeMs) {
      this.byId.delete(commandId);
      return undefined;
    }
    return entry.result;
  }

  /** Records a command's first run. */
  add(commandId: string, result: Promise<CommandResult>): void {
    const now = this.now();
    this.byId.set(commandId, { at: now, result });
    // Insertion order is age order: drop from the front while too many or too old.
    for (const [id, entry] of this.byId) {
      if (this.byId.size <= this.maxEntries && now - entry.at <= this.maxAgeMs) break;
      this.byId.delete(id);
    }
  }
}
