import { Code } from "./code.js";
import { NetSyncError } from "./errors.js";
import { LABELS_METADATA_KEY, MAX_LABELS } from "./wire.js";

/** A slave's labels: string keys to string values, as Kubernetes has them. */
export type Labels = Readonly<Record<string, string>>;

/** Kubernetes' "name" part of a key, and a value: 63 characters at most, alphanumeric at both ends. */
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
/** A key's optional prefix: a DNS subdomain (lowercase), 253 characters at most. */
const PREFIX = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a valid label key, or undefined if it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length === 0 || prefix.length > 253 || !PREFIX.test(prefix))) {
    return `key "${key}": the prefix must be a DNS subdomain (lowercase letters, digits, "-" and ".", at most 253 characters)`;
  }
  if (!NAME.test(name)) {
    return `key "${key}": the name must be 1-63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined if it is (an empty value is valid). */
export function labelValueProblem(key: string, value: string): string | undefined {
  if (value === "" || NAME.test(value)) return undefined;
  return `label "${key}=${value}": the value must be empty or 1-63 characters of letters, digits, "-", "_" and ".", starting and ending with a letter or digit`;
}

/** Checks a labels object (the library option); returns a frozen copy or throws INVALID_ARGUMENT naming the bad label. */
export function checkLabels(labels: Record<string, string>): Labels {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw invalid(`${entries.length} labels; at most ${MAX_LABELS} are allowed`);
  for (const [key, value] of entries) {
    if (typeof value !== "string") throw invalid(`label "${key}": the value must be a string`);
    const problem = labelKeyProblem(key) ?? labelValueProblem(key, value);
    if (problem) throw invalid(problem);
  }
  return Object.freeze(Object.fromEntries(entries));
}

/**
 * Parses the metadata form, "key=value,key=value" (spaces around items are
 * ignored), into checked, frozen labels; throws INVALID_ARGUMENT naming the
 * bad label. An empty string is no labels.
 */
export function parseLabels(text: string): Labels {
  const labels: Record<string, string> = {};
  const items = text.trim() === "" ? [] : text.split(",");
  if (items.length > MAX_LABELS) throw invalid(`${items.length} labels; at most ${MAX_LABELS} are allowed`);
  for (const raw of items) {
    const item = raw.trim();
    const eq = item.indexOf("=");
    if (eq === -1) throw invalid(`"${item}" is not key=value`);
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (Object.hasOwn(labels, key)) throw invalid(`key "${key}" appears twice`);
    const problem = labelKeyProblem(key) ?? labelValueProblem(key, value);
    if (problem) throw invalid(problem);
    labels[key] = value;
  }
  return Object.freeze(labels);
}

/** The metadata form of `labels`: "key=value,key=value", keys in their order. */
export function formatLabels(labels: Labels): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
}

function invalid(message: string): NetSyncError {
  return new NetSyncError(`${LABELS_METADATA_KEY}: ${message}`, Code.INVALID_ARGUMENT);
}
