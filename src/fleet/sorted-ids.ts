/** Most ids in one block before it is split in two. */
const MAX_BLOCK = 512;

/**
 * A set of ids kept in sorted order (JavaScript string order, UTF-16 code
 * units), for listing a fleet page by page: ids live in sorted blocks of at
 * most MAX_BLOCK, so an add or a remove moves at most one block's entries
 * (not the whole fleet's, as one sorted array would) and reading the ids
 * after a given one costs O(log n + what is read), whatever the fleet's size.
 */
export class SortedIds {
  private blocks: string[][] = [];
  private count = 0;

  /** `maxBlock` is for tests (small blocks split often). */
  constructor(private readonly maxBlock = MAX_BLOCK) {}

  get size(): number {
    return this.count;
  }

  /** Adds `id`; false if it was there already. */
  add(id: string): boolean {
    if (this.blocks.length === 0) {
      this.blocks.push([id]);
      this.count = 1;
      return true;
    }
    // The first block whose last id is ≥ id, or the last block.
    const b = Math.min(this.blockAtOrAfter(id), this.blocks.length - 1);
    const block = this.blocks[b]!;
    const i = lowerBound(block, id);
    if (block[i] === id) return false;
    block.splice(i, 0, id);
    this.count++;
    if (block.length > this.maxBlock) this.blocks.splice(b, 1, block.slice(0, block.length >> 1), block.slice(block.length >> 1));
    return true;
  }

  /** Removes `id`; false if it was not there. */
  delete(id: string): boolean {
    const b = this.blockAtOrAfter(id);
    const block = this.blocks[b];
    if (!block) return false;
    const i = lowerBound(block, id);
    if (block[i] !== id) return false;
    block.splice(i, 1);
    this.count--;
    if (block.length === 0) this.blocks.splice(b, 1);
    return true;
  }

  /** Every id, in order, as a new array (a copy of the blocks: no generator step per id). */
  all(): string[] {
    return this.blocks.flat();
  }

  /** The ids after `after` in order (from `after` itself when `inclusive`); from the first with no `after`. */
  *from(after: string | undefined, inclusive = false): Generator<string, void, undefined> {
    let b = 0;
    let i = 0;
    if (after !== undefined) {
      b = this.blockAtOrAfter(after);
      const block = this.blocks[b];
      if (!block) return;
      i = lowerBound(block, after);
      if (!inclusive && block[i] === after) i++;
    }
    for (; b < this.blocks.length; b++, i = 0) {
      const block = this.blocks[b]!;
      for (; i < block.length; i++) yield block[i]!;
    }
  }

  /** Index of the first block whose last id is ≥ `id` (blocks.length when none is). */
  private blockAtOrAfter(id: string): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const block = this.blocks[mid]!;
      if (block[block.length - 1]! < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Index of the first entry of sorted `ids` that is ≥ `id`. */
function lowerBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Sorted lists (a cluster's masters' ids, each in id order) merged into one
 * sorted list without repeats (an id moving between masters may be on two),
 * one list after another: O(n·k) for k lists (a cluster's few masters),
 * against a Set and an O(n log n) sort of all of them.
 */
export function mergeSortedUnique(lists: readonly (readonly string[])[]): string[] {
  let merged: string[] = [];
  for (const list of lists) merged = mergeTwo(merged, list);
  return merged;
}

function mergeTwo(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  let i = 0;
  let j = 0;
  const push = (id: string) => {
    if (out.length === 0 || (out[out.length - 1] as string) !== id) out.push(id);
  };
  while (i < a.length && j < b.length) {
    const x = a[i] as string;
    const y = b[j] as string;
    if (x <= y) {
      push(x);
      i++;
      if (x === y) j++;
    } else {
      push(y);
      j++;
    }
  }
  while (i < a.length) push(a[i++] as string);
  while (j < b.length) push(b[j++] as string);
  return out;
}
