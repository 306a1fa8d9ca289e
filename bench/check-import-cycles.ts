/**
 * Reports import circles among bench/**\/*.ts: `node --import tsx bench/check-import-cycles.ts`.
 * Exit 1 if there is one.
 *
 * Follows every relative specifier (static imports, `export … from`,
 * `import type`, dynamic `import("./…")`), also out of bench/ (test/support,
 * src), so a circle through a file outside bench/ is found too. A circle is a
 * strongly connected component of more than one file, or a file importing itself.
 * The scan is textual (a regex over the source): enough for this code, which
 * has no imports built from strings at run time.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" || entry.name === "out" ? [] : tsFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The .ts file a relative ".js" specifier names (NodeNext style), or undefined for anything else. */
function target(from: string, specifier: string): string | undefined {
  const path = resolve(dirname(from), specifier);
  for (const candidate of [path.replace(/\.js$/, ".ts"), path, `${path}.ts`, join(path, "index.ts")]) {
    if (candidate.endsWith(".ts") && existsSync(candidate)) return candidate;
  }
  return undefined;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(SPECIFIER)].flatMap((m) => target(file, m[1]!) ?? []);
}

/** The import graph reachable from `roots`. */
function graph(roots: string[]): Map<string, string[]> {
  const edges = new Map<string, string[]>();
  const todo = [...roots];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (edges.has(file)) continue;
    const next = importsOf(file);
    edges.set(file, next);
    todo.push(...next);
  }
  return edges;
}

/** Tarjan's strongly connected components; only those that are circles. */
function cycles(edges: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      component.push(w);
      if (w === v) break;
    }
    if (component.length > 1 || edges.get(v)!.includes(v)) found.push(component.sort());
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

const roots = tsFiles(join(ROOT, "bench"));
const edges = graph(roots);
const name = (file: string) => relative(ROOT, file);
// Circles wholly outside bench/ (in src/, say) are reported but are not bench's to fix.
const [ours, theirs] = [true, false].map((inBench) =>
  cycles(edges).filter((circle) => circle.some((f) => roots.includes(f)) === inBench),
) as [string[][], string[][]];
for (const circle of ours) console.log(`import circle: ${circle.map(name).join(" <-> ")}`);
for (const circle of theirs) console.log(`(outside bench/, not counted) import circle: ${circle.map(name).join(" <-> ")}`);
console.log(`${edges.size} files followed from the ${roots.length} under bench/: ${ours.length} import circle(s) through bench/`);
if (ours.length > 0) process.exitCode = 1;
