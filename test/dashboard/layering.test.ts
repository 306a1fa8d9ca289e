// The dashboard is an adapter of the master: it reaches the core only
// through its port (port.ts, in model.ts types), so it imports no part of
// the fleet, the gRPC server, the cluster or the CLI, nor src/master.ts
// (which loads it); and its own files import each other without a circle.

import { readdirSync, readFileSync } from "node:fs";
import { expect } from "chai";

const DIR = new URL("../../src/dashboard/", import.meta.url);
const files = readdirSync(DIR).filter((name) => name.endsWith(".ts"));

/** Every module specifier a file names: import, import type, export … from, import(). */
function specifiers(file: string): string[] {
  const text = readFileSync(new URL(file, DIR), "utf8");
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)"([^"]+)"/gm)].map((m) => m[1]!);
}

describe("dashboard layering", () => {
  it("imports neither src/master.ts nor the fleet, the server (but its auth), the cluster or the CLI", () => {
    expect(files).to.include("http-server.ts");
    const forbidden = /^\.\.\/(master\.js|fleet\/|cluster\/|cli\/|server\/(?!auth\.js$))/;
    const offending = files.flatMap((file) =>
      specifiers(file)
        .filter((s) => forbidden.test(s))
        .map((s) => `${file} -> ${s}`),
    );
    expect(offending).to.deep.equal([]);
  });

  it("has no import circle among its files", () => {
    const edges = new Map(
      files.map((file) => [
        file,
        specifiers(file)
          .filter((s) => s.startsWith("./"))
          .map((s) => s.slice(2).replace(/\.js$/, ".ts")),
      ]),
    );
    const state = new Map<string, "visiting" | "done">();
    const circles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        circles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    expect(circles).to.deep.equal([]);
  });
});
