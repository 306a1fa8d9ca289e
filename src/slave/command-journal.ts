import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import type { Reply } from "../../gen/netsync/v1/netsync_pb.js";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";

/** A command's result as journaled: the oneof of its Reply (command-log.ts's CommandResult; not imported, so neither file needs the other). */
type CommandResult = Reply["result"];

/** One command as the journal remembers it: when it started (wall-clock ms) and, once it ended, its result. */
export interface JournalEntry {
  id: string;
  at: number;
  result?: CommandResult;
}

/**
 * The command log on disk, so a slave process that is killed and started
 * again still runs a redelivered command at most once. A command is
 * recorded as started before its handler runs and again with its result:
 * after a restart, a repeat of a finished command is answered with its
 * result, and a repeat of one that was running when the process died is
 * answered with an error saying so, never run a second time (it may have
 * done part or all of its work). An append-only file of JSON lines,
 * written with write(2) before the handler runs: it survives the process
 * (SIGKILL, a crash), not the machine losing power (no fsync, which would
 * cost a disk flush per command). Rewritten, keeping only live entries,
 * once it holds twice as many lines as entries.
 */
export class CommandJournal {
  private fd: number | undefined;
  private lines = 0;

  constructor(private readonly path: string) {}

  /** Reads what an earlier life of the process recorded (later lines win), and opens the file for appending. */
  open(): JournalEntry[] {
    const byId = new Map<string, JournalEntry>();
    if (existsSync(this.path)) {
      for (const line of readFileSync(this.path, "utf8").split("\n")) {
        if (line === "") continue;
        let entry: JournalEntry;
        try {
          entry = JSON.parse(line) as JournalEntry;
        } catch {
          continue; // a line cut short by the kill that ended the last life
        }
        if (typeof entry.id !== "string" || typeof entry.at !== "number") continue;
        byId.set(entry.id, entry);
        this.lines++;
      }
    }
    try {
      this.fd = openSync(this.path, "a");
    } catch (err) {
      throw new NetSyncError(`cannot open the command journal ${this.path}: ${(err as Error).message}`, Code.FAILED_PRECONDITION, {
        cause: err,
      });
    }
    return [...byId.values()];
  }

  get lineCount(): number {
    return this.lines;
  }

  started(id: string, at: number): void {
    this.append({ id, at });
  }

  finished(id: string, at: number, result: CommandResult): void {
    this.append({ id, at, result });
  }

  /** Rewrites the file with only `live` (oldest first), atomically (a new file renamed over the old one). */
  compact(live: JournalEntry[]): void {
    const temporary = `${this.path}.tmp`;
    const fd = openSync(temporary, "w");
    try {
      writeSync(fd, live.map((entry) => `${JSON.stringify(entry)}\n`).join(""));
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.path);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = openSync(this.path, "a");
    this.lines = live.length;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private append(entry: JournalEntry): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, `${JSON.stringify(entry)}\n`);
    this.lines++;
  }
}
