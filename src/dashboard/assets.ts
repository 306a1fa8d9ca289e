import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";

/*
 * The page's static files, read once when the server starts listening and
 * served from memory: four small files, and a dashboard that cannot find
 * them should fail at listen(), not on a viewer's first visit.
 */

/** A file of the page, ready to send. */
export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/** The page's files by URL path. */
const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/favicon.svg": { file: "favicon.svg", type: "image/svg+xml" },
};

/** The page's files: a top-level dashboard/ folder of the package, found from src/ (tsx) and dist/src/ alike. */
function assetDir(): string {
  for (const relative of ["../../dashboard/", "../../../dashboard/"]) {
    const dir = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${dir}index.html`)) return dir;
  }
  throw new NetSyncError("the dashboard's files (dashboard/index.html) are missing from the package", Code.INTERNAL);
}

/** Reads the page's files; INTERNAL when the package lacks them. */
export async function loadAssets(): Promise<ReadonlyMap<string, Asset>> {
  const dir = assetDir();
  const assets = new Map<string, Asset>();
  for (const [path, { file, type }] of Object.entries(FILES)) assets.set(path, { type, body: await readFile(`${dir}${file}`) });
  return assets;
}
