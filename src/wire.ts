/**
 * Constants of the contract that are not in the .proto: the gRPC metadata
 * keys a slave names and describes itself with, and their limits. Clients in
 * other languages must use the same values (see proto/netsync/v1/netsync.proto).
 */

/** Request metadata key a slave names itself with; the master echoes the id it registered in the response headers. */
export const SLAVE_ID_METADATA_KEY = "netsync-slave-id";
/** Longest slave id a master accepts. */
export const MAX_SLAVE_ID_LENGTH = 128;
/** Request metadata key a slave declares its labels with: "region=eu,role=db". */
export const LABELS_METADATA_KEY = "netsync-slave-labels";
/**
 * Trailing metadata key of a refused Sync stream (RESOURCE_EXHAUSTED: the master admits no more new
 * streams for now; ALREADY_EXISTS: the id is cooling down after too many replacements): how many ms
 * to wait before trying again, as decimal text. A slave waits at least that long, plus some jitter.
 */
export const RETRY_AFTER_METADATA_KEY = "netsync-retry-after-ms";
/** Most labels one slave may declare. */
export const MAX_LABELS = 16;

/** Why `id` cannot be a slave id, or undefined if it can; slaves check their own, masters every one they are sent. */
export function validateSlaveId(id: string): string | undefined {
  if (id.length === 0) return "slave id is empty";
  if (id.length > MAX_SLAVE_ID_LENGTH) return `slave id is longer than ${MAX_SLAVE_ID_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (/[\x00-\x1f\x7f]/.test(id)) return "slave id contains control characters";
  return undefined;
}
