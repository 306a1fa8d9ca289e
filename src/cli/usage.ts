/** Exit code for bad flags or values, as most Unix tools use. */
export const EXIT_USAGE = 2;

/** A bad flag or value: main() prints its message as one line and exits with EXIT_USAGE. */
export class UsageError extends Error {}

/**
 * An outcome the exit code reports, not a failure of the CLI: the command
 * already printed what happened (e.g. `run`'s summary line), so main()
 * exits with `code` and prints nothing more.
 */
export class ExitStatus extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
