import type { Epoch } from "../model.js";

export type { Epoch };

/** Negative if `a` is older than `b`, 0 if equal, positive if newer. */
export function compareEpochs(a: Epoch, b: Epoch): number {
  if (a.at !== b.at) return a.at - b.at;
  if (a.master !== b.master) return a.master < b.master ? -1 : 1;
  return a.seq - b.seq;
}

export function sameEpoch(a: Epoch, b: Epoch): boolean {
  return compareEpochs(a, b) === 0;
}

export function isEpoch(value: unknown): value is Epoch {
  if (typeof value !== "object" || value === null) return false;
  const e = value as Record<string, unknown>;
  return Number.isFinite(e.at) && typeof e.master === "string" && Number.isInteger(e.seq);
}

/** Hands out the epochs of one master: a later call never returns an older epoch, even if the clock steps back. */
export class EpochClock {
  private lastAt = 0;
  private seq = 0;

  constructor(
    private readonly master: string,
    private readonly now: () => number = Date.now,
  ) {}

  next(): Epoch {
    this.lastAt = Math.max(this.lastAt, this.now());
    return { at: this.lastAt, master: this.master, seq: ++this.seq };
  }
}
