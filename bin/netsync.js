#!/usr/bin/env node
// The CLI, compiled to dist/ by `npm run build` (run by `npm install`, `npm ci`,
// `npm pack` and `npm test` through the prepare and pretest scripts).
import { existsSync } from "node:fs";

const entry = new URL("../dist/src/cli/main.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write("netsync: the CLI is not built (dist/ is missing); run `npm run build` first\n");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
