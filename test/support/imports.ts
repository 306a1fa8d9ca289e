import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

/** One relative import of a module: what it names and whether it is erased at run time or loaded lazily. */
export interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
  dynamic: boolean;
}

const STATIC = /^(?:import|export)\s+(type\s+)?[^;]*?from\s+"(\.[^"]+)";/gms;
const DYNAMIC = /\bimport\(\s*"(\.[^"]+)"\s*\)/g;

/** Every .ts file under `dir` (recursively), as paths relative to `root`. */
export function tsFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const path = join(abs, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules" && entry.name !== "out" && entry.name !== "results") walk(path);
      } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(relative(root, path));
    }
  };
  walk(join(root, dir));
  return out.sort();
}

/** The relative imports of `files` (paths relative to `root`), resolved to the .ts files they name. */
export function importEdges(root: string, files: readonly string[]): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const from of files) {
    const text = readFileSync(join(root, from), "utf8");
    const target = (specifier: string) => relative(root, resolve(root, dirname(from), specifier.replace(/\.js$/, ".ts")));
    for (const [, typeOnly, specifier] of text.matchAll(STATIC)) {
      edges.push({ from, to: target(specifier!), typeOnly: Boolean(typeOnly), dynamic: false });
    }
    for (const [, specifier] of text.matchAll(DYNAMIC)) edges.push({ from, to: target(specifier!), typeOnly: false, dynamic: true });
  }
  return edges;
}

/** Every import circle among the edges (each reported once, as the files in order), type-only and lazy imports included. */
export function importCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, "open");
    stack.push(file);
    for (const to of next.get(file) ?? []) {
      if (state.get(to) === "open") {
        const cycle = stack.slice(stack.indexOf(to));
        const key = [...cycle].sort().join(" ");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...cycle, to]);
        }
      } else if (!state.has(to)) visit(to);
    }
    stack.pop();
    state.set(file, "done");
  };
  for (const file of [...next.keys()].sort()) if (!state.has(file)) visit(file);
  return cycles;
}
