import { createConsola, LogLevels, type ConsolaInstance } from "consola";
import { NetSyncError } from "./errors.js";

export type { ConsolaInstance as Logger } from "consola";

export const LOG_LEVEL_NAMES = ["silent", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

export const DEFAULT_LOG_LEVEL: LogLevelName = "info";
export const LOG_LEVEL_ENV = "NETSYNC_LOG_LEVEL";

const NUMERIC: Record<LogLevelName, number> = {
  silent: LogLevels.silent,
  error: LogLevels.error,
  warn: LogLevels.warn,
  info: LogLevels.info,
  debug: LogLevels.debug,
  trace: LogLevels.trace,
};

export function isLogLevelName(value: string): value is LogLevelName {
  return (LOG_LEVEL_NAMES as readonly string[]).includes(value);
}

/**
 * The level in force: the flag, else NETSYNC_LOG_LEVEL, else info. consola
 * would otherwise lower itself to warn under NODE_ENV=test or CI, which hides
 * the connects and evictions an operator runs NetSync to see.
 */
export function resolveLogLevel(flag?: string, env: NodeJS.ProcessEnv = process.env): LogLevelName {
  for (const [source, value] of [["--log-level", flag], [LOG_LEVEL_ENV, env[LOG_LEVEL_ENV]]] as const) {
    if (value === undefined || value === "") continue;
    const name = value.toLowerCase();
    if (!isLogLevelName(name)) {
      throw new NetSyncError(`${source}: "${value}" is not a log level (${LOG_LEVEL_NAMES.join(", ")})`);
    }
    return name;
  }
  return DEFAULT_LOG_LEVEL;
}

/** The process-wide logger; components take tagged children of it. */
export const rootLogger: ConsolaInstance = createConsola({ level: NUMERIC[resolveSafely()] });

function resolveSafely(): LogLevelName {
  try {
    return resolveLogLevel();
  } catch {
    return DEFAULT_LOG_LEVEL;
  }
}

export function setLogLevel(level: LogLevelName): void {
  rootLogger.level = NUMERIC[level];
}

/** A logger tagged with a component name, at the root logger's current level. */
export function getLogger(tag: string): ConsolaInstance {
  return rootLogger.withTag(tag);
}

/** A logger that prints nothing, for tests and embedding. */
export function silentLogger(): ConsolaInstance {
  return createConsola({ level: LogLevels.silent });
}
