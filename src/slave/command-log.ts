import type { Reply } from "../../gen/netsync/v1/netsync_pb.js";
import type { CommandJournal, JournalEntry } from "./command-journal.js";

/** What a command's handler produced (the oneof of its Reply), once it has run. */
export type CommandResult = Reply["result"];

/** What a repeat of a command gets when the process that was running it died before it ended. */
export const INTERRUPTED: CommandResult = {
  case: "error",
  value: "interrupted: the slave process stopped (killed or crashed) while running this command; not run again",
};

interface Entry {
  /** `now()` when it started. */
  at: number;
  /** Date.now() when it started, for the journal. */
  wallAt: number;
  result: Promise<CommandResult>;
  /** Its result once it ended (what a compacted journal keeps). */
  settled?: CommandResult;
}

/**
 * The commands this slave ran recently, by command_id, each with its
 * result: a command that reaches the slave again (a master re-sent it to the
 * slave's new master after a failover, or a job delivered it again after the
 * stream broke) is answered from here and not run twice. Bounded in count
 * and age, oldest dropped first; no timer, entries age out as new ones
 * arrive. With a journal (a file), it also survives the process: see
 * CommandJournal.
 */
export class CommandLog {
  private readonly byId = new Map<string, Entry>();

  constructor(
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly journal?: CommandJournal,
  ) {
    if (!journal) return;
    const wallNow = Date.now();
    const started = this.now();
    for (const entry of journal.open()) {
      const age = wallNow - entry.at;
      if (age > maxAgeMs) continue;
      const settled = entry.result ?? INTERRUPTED;
      this.byId.set(entry.id, { at: started - age, wallAt: entry.at, result: Promise.resolve(settled), settled });
    }
    this.trim(started);
  }

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

  /** Records a command's first run; with a journal, on disk before the caller runs it. */
  add(commandId: string, result: Promise<CommandResult>): void {
    const now = this.now();
    const entry: Entry = { at: now, wallAt: Date.now(), result };
    this.byId.set(commandId, entry);
    const journal = this.journal;
    if (journal) {
      journal.started(commandId, entry.wallAt);
      void result.then((settled) => {
        entry.settled = settled;
        if (this.byId.get(commandId) === entry) journal.finished(commandId, entry.wallAt, settled);
      });
    }
    this.trim(now);
    if (journal && journal.lineCount > 2 * Math.max(this.byId.size, 1_000)) this.compact(journal);
  }

  /** Closes the journal, if any. */
  close(): void {
    this.journal?.close();
  }

  private trim(now: number): void {
    // Insertion order is age order: drop from the front while too many or too old.
    for (const [id, entry] of this.byId) {
      if (this.byId.size <= this.maxEntries && now - entry.at <= this.maxAgeMs) break;
      this.byId.delete(id);
    }
  }

  private compact(journal: CommandJournal): void {
    const live: JournalEntry[] = [];
    for (const [id, entry] of this.byId)
      live.push(entry.settled ? { id, at: entry.wallAt, result: entry.settled } : { id, at: entry.wallAt });
    journal.compact(live);
  }
}
