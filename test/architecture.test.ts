/**
 * The import rules of docs/architecture.md, read from the code: the fleet core
 * knows no adapter, no adapter names the composition root, the library never
 * reaches the CLI, and no import circle exists in src/ or bench/. Type-only
 * and lazy (import()) imports count: a rule that only binds at run time would
 * let the knot grow back through types.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { type ImportEdge, importCycles, importEdges, tsFiles } from "./support/imports.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const src = importEdges(ROOT, tsFiles(ROOT, "src"));
const inside = (dir: string) => (path: string) => path.startsWith(`src/${dir}/`);
const show = (edges: ImportEdge[]) => edges.map((e) => `${e.from} -> ${e.to}${e.typeOnly ? " (type)" : ""}${e.dynamic ? " (lazy)" : ""}`);

describe("architecture: the import rules", () => {
  it("finds the imports it checks (the walk is not empty)", () => {
    expect(src.length).to.be.greaterThan(150);
    expect(src.some((e) => e.from === "src/master.ts" && e.to === "src/fleet/fleet.ts")).to.equal(true);
    expect(src.some((e) => e.from === "src/master.ts" && e.to === "src/cluster/cluster-scope.ts" && e.dynamic)).to.equal(true);
  });

  it("nothing under src/fleet/ imports server/, cluster/, dashboard/, cli/ or master.ts", () => {
    const adapter = (to: string) => ["server", "cluster", "dashboard", "cli"].some((dir) => inside(dir)(to)) || to === "src/master.ts";
    expect(show(src.filter((e) => inside("fleet")(e.from) && adapter(e.to)))).to.deep.equal([]);
  });

  it("nothing under src/jobs/ imports server/, cluster/, dashboard/, cli/ or master.ts: jobs run over a narrow host", () => {
    const adapter = (to: string) => ["server", "cluster", "dashboard", "cli"].some((dir) => inside(dir)(to)) || to === "src/master.ts";
    expect(src.some((e) => inside("jobs")(e.from))).to.equal(true);
    expect(show(src.filter((e) => inside("jobs")(e.from) && adapter(e.to)))).to.deep.equal([]);
  });

  it("no adapter (server/, cluster/, dashboard/) imports master.ts", () => {
    const adapter = (from: string) => ["server", "cluster", "dashboard"].some((dir) => inside(dir)(from));
    expect(show(src.filter((e) => adapter(e.from) && e.to === "src/master.ts"))).to.deep.equal([]);
  });

  it("the dashboard reaches the master only through its port: nothing of fleet/, cluster/, or server/ but auth.ts", () => {
    const forbidden = (to: string) => inside("fleet")(to) || inside("cluster")(to) || (inside("server")(to) && to !== "src/server/auth.ts");
    expect(show(src.filter((e) => inside("dashboard")(e.from) && forbidden(e.to)))).to.deep.equal([]);
  });

  it("the library never imports cli/", () => {
    expect(show(src.filter((e) => !inside("cli")(e.from) && inside("cli")(e.to)))).to.deep.equal([]);
  });

  it("no import circle anywhere in src/", () => {
    expect(importCycles(src).map((c) => c.join(" -> "))).to.deep.equal([]);
  });

  it("no import circle anywhere in bench/", () => {
    const bench = importEdges(ROOT, tsFiles(ROOT, "bench"));
    expect(bench.length).to.be.greaterThan(20);
    expect(importCycles(bench).map((c) => c.join(" -> "))).to.deep.equal([]);
  });

  it("no test file hooks the whole suite: a top-level before/after(Each) is a root hook, run around every test of every file", () => {
    const rooted = tsFiles(ROOT, "test")
      .filter((file) => /^(before|after)(Each)?\(/m.test(readFileSync(`${ROOT}/${file}`, "utf8")))
      .sort();
    expect(rooted).to.deep.equal([]);
  });

  it("the circle finder finds a circle, type-only or not", () => {
    const edge = (from: string, to: string, typeOnly = false): ImportEdge => ({ from, to, typeOnly, dynamic: false });
    expect(importCycles([edge("a", "b"), edge("b", "c", true), edge("c", "a"), edge("c", "d")])).to.deep.equal([["a", "b", "c", "a"]]);
    expect(importCycles([edge("a", "b"), edge("a", "c"), edge("b", "c")])).to.deep.equal([]);
  });
});
