#!/usr/bin/env node
// Node 20 cannot run TypeScript by itself; tsx compiles src/ on the fly.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv);
