/**
 * Reports import circles in src/ and bench/: `node --import tsx bench/check-import-cycles.ts`.
 * Exit 1 if there is one. The same walk as test/architecture.test.ts (test/support/imports.ts):
 * static, type-only and lazy (import()) relative imports all count.
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { importCycles, importEdges, tsFiles } from "../test/support/imports.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
let found = 0;
for (const dir of ["src", "bench"]) {
  const cycles = importCycles(importEdges(ROOT, tsFiles(ROOT, dir)));
  for (const cycle of cycles) console.log(`${dir}: ${cycle.join(" -> ")}`);
  found += cycles.length;
}
console.log(found === 0 ? "no import circle in src/ or bench/" : `${found} import circle(s)`);
process.exitCode = found === 0 ? 0 : 1;
