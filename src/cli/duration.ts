const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses "250ms", "5s", "1.5m", "1h" into milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const match = PATTERN.exec(text.trim());
  if (!match) throw new RangeError(`"${text}" is not a duration (expected e.g. 250ms, 5s, 1m)`);
  const ms = Number(match[1]) * UNITS[match[2]!]!;
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`"${text}" must be greater than zero`);
  return Math.round(ms);
}

/** Formats milliseconds the way parseDuration reads them back, for help and logs. */
export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
