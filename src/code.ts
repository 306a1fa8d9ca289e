/**
 * Status codes of NetSync errors: gRPC's, with the same names and numbers,
 * so a caller reads `err.code === Code.NOT_FOUND` without importing
 * grpc-js, and a code travels to a peer as a stream status unchanged.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type Code = (typeof Code)[keyof typeof Code];

const NAMES = new Map<number, keyof typeof Code>(Object.entries(Code).map(([name, value]) => [value, name as keyof typeof Code]));

/** The name of a code ("NOT_FOUND"), or its number as text if it is not one. */
export function codeName(code: number): string {
  return NAMES.get(code) ?? String(code);
}

/** Whether `value` is one of the codes. */
export function isCode(value: unknown): value is Code {
  return typeof value === "number" && NAMES.has(value);
}
