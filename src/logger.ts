import { format } from "node:util";
import { type ConsolaInstance, type ConsolaReporter, createConsola, LogLevels, type LogObject } from "consola";
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
  for (const [source, value] of [
    ["--log-level", flag],
    [LOG_LEVEL_ENV, env[LOG_LEVEL_ENV]],
  ] as const) {
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

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_FORMAT_ENV = "NETSYNC_LOG_FORMAT";

/** The format in force: the flag, else NETSYNC_LOG_FORMAT, else text. */
export function resolveLogFormat(flag?: string, env: NodeJS.ProcessEnv = process.env): LogFormat {
  for (const [source, value] of [
    ["--log-format", flag],
    [LOG_FORMAT_ENV, env[LOG_FORMAT_ENV]],
  ] as const) {
    if (value === undefined || value === "") continue;
    if (!(LOG_FORMATS as readonly string[]).includes(value)) {
      throw new NetSyncError(`${source}: "${value}" is not a log format (${LOG_FORMATS.join(", ")})`);
    }
    return value as LogFormat;
  }
  return "text";
}

/** Fields a log call may carry besides its message, kept as is in JSON lines. */
const STRUCTURED_FIELDS = ["slaveId", "peer"] as const;

/**
 * One JSON object per line with stable fields: time, level, tag, message,
 * and slaveId/peer where the line is about a slave.
 */
export const jsonReporter: ConsolaReporter = {
  log(logObj: LogObject) {
    const line: Record<string, unknown> = {
      time: logObj.date.toISOString(),
      level: logObj.type === "log" ? "info" : logObj.type,
      tag: logObj.tag || undefined,
      message: format(...logObj.args),
    };
    const fields = logObj as unknown as Record<string, unknown>;
    for (const key of STRUCTURED_FIELDS) if (fields[key] !== undefined) line[key] = fields[key];
    const stream = logObj.level < LogLevels.info ? process.stderr : process.stdout;
    stream.write(`${JSON.stringify(line)}\n`);
  },
};

/** Switches the root logger's output; call before components take their loggers. */
export function setLogFormat(logFormat: LogFormat): void {
  if (logFormat === "json") rootLogger.setReporters([jsonReporter]);
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
