/*
 * RTTs as a histogram of log-spaced buckets, so that masters can send each
 * other a summary of their slaves' RTTs (counts, not slaves) and the asker
 * can still tell the fleet's median and 99th percentile. A bucket spans a
 * factor of 2^(1/16) (≈ 4.4 %); a percentile is read as the bucket's
 * geometric middle, within ±2.2 % of the true value.
 */

/** Buckets per doubling of the RTT. */
const PER_DOUBLING = 16;
/** Lowest and highest bucket: 2^-25 ms (an RTT of 0) to 2^25 ms (≈ 9 hours). */
const MIN_BUCKET = -25 * PER_DOUBLING;
const MAX_BUCKET = 25 * PER_DOUBLING;

/** Bucket index → count. */
export type RttHistogram = Map<number, number>;

function bucketOf(rttMs: number): number {
  if (!(rttMs > 0)) return MIN_BUCKET;
  return Math.min(MAX_BUCKET, Math.max(MIN_BUCKET, Math.ceil(Math.log2(rttMs) * PER_DOUBLING)));
}

/** Adds one RTT to `histogram`. */
export function addRtt(histogram: RttHistogram, rttMs: number): void {
  const bucket = bucketOf(rttMs);
  histogram.set(bucket, (histogram.get(bucket) ?? 0) + 1);
}

/** As it travels: [bucket, count, bucket, count, …]. */
export function histogramToWire(histogram: RttHistogram): number[] {
  const out: number[] = [];
  for (const [bucket, count] of histogram) out.push(bucket, count);
  return out;
}

/** Adds a histogram received from another master into `into`; entries that are not whole numbers in range are ignored. */
export function mergeWireHistogram(into: RttHistogram, wire: readonly unknown[]): void {
  for (let i = 0; i + 1 < wire.length; i += 2) {
    const bucket = wire[i];
    const count = wire[i + 1];
    if (!Number.isInteger(bucket) || !Number.isInteger(count)) continue;
    if ((bucket as number) < MIN_BUCKET || (bucket as number) > MAX_BUCKET || (count as number) <= 0) continue;
    into.set(bucket as number, (into.get(bucket as number) ?? 0) + (count as number));
  }
}

/** The nearest-rank `p`th percentile, as its bucket's geometric middle rounded to 0.001 ms; null for an empty histogram. */
export function histogramPercentile(histogram: RttHistogram, p: number): number | null {
  let total = 0;
  for (const count of histogram.values()) total += count;
  if (total === 0) return null;
  const rank = Math.min(total, Math.max(1, Math.ceil((p / 100) * total)));
  let seen = 0;
  for (const bucket of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bucket)!;
    if (seen >= rank) return bucket === MIN_BUCKET ? 0 : Math.round(2 ** ((bucket - 0.5) / PER_DOUBLING) * 1000) / 1000;
  }
  return null;
}

/** The nearest-rank `p`th percentile of ascending-sorted values; null when there are none. */
export function sortedPercentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}
