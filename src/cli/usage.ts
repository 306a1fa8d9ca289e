/** Exit code for bad flags or values, as most Unix tools use. */
export const EXIT_USAGE = 2;

/** A bad flag or value: main() prints its message as one line and exits with EXIT_USAGE. */
export class UsageError extends Error {}
