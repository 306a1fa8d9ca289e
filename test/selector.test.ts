import { expect } from "chai";
import fc from "fast-check";
import { Code } from "../src/code.js";
import type { NetSyncError } from "../src/errors.js";
import { Selector } from "../src/selector.js";

const eu = { region: "eu", role: "db", tier: "gold" };
const us = { region: "us", role: "web" };
const bare = {};

function select(text: string): string[] {
  const selector = Selector.parse(text);
  return Object.entries({ eu, us, bare })
    .filter(([, labels]) => selector.matches(labels))
    .map(([name]) => name);
}

function parseError(text: string): NetSyncError {
  try {
    Selector.parse(text);
  } catch (err) {
    return err as NetSyncError;
  }
  throw new Error(`"${text}" parsed`);
}

describe("Selector", () => {
  it("the empty selector matches everything", () => {
    expect(select("")).to.deep.equal(["eu", "us", "bare"]);
    expect(select("   ")).to.deep.equal(["eu", "us", "bare"]);
    expect(Selector.from(undefined).empty).to.equal(true);
  });

  it("equality: =, == and != (true when the label is absent, as in Kubernetes)", () => {
    expect(select("region=eu")).to.deep.equal(["eu"]);
    expect(select("region==eu")).to.deep.equal(["eu"]);
    expect(select("region!=eu")).to.deep.equal(["us", "bare"]);
    expect(select("region=eu,role!=db")).to.deep.equal([]);
    expect(select("region=eu,role=db")).to.deep.equal(["eu"]);
    expect(select(" region = us , role != db ")).to.deep.equal(["us"]);
    expect(select("region=")).to.deep.equal([], "an empty value matches only an empty label");
    expect(Selector.parse("region=").matches({ region: "" })).to.equal(true);
  });

  it("sets: in and notin (notin is true when the label is absent)", () => {
    expect(select("region in (eu,us)")).to.deep.equal(["eu", "us"]);
    expect(select("region in (eu)")).to.deep.equal(["eu"]);
    expect(select("region notin (eu)")).to.deep.equal(["us", "bare"]);
    expect(select("tier in ( gold , silver ),region=eu")).to.deep.equal(["eu"]);
    expect(select("region in(us)")).to.deep.equal(["us"]);
  });

  it("existence: key and !key", () => {
    expect(select("tier")).to.deep.equal(["eu"]);
    expect(select("!tier")).to.deep.equal(["us", "bare"]);
    expect(select("region,!tier")).to.deep.equal(["us"]);
  });

  it("keys with a DNS prefix and the full character set", () => {
    const labels = { "example.com/team": "a-b_c.d", in: "x" };
    expect(Selector.parse("example.com/team=a-b_c.d").matches(labels)).to.equal(true);
    expect(Selector.parse("in=x").matches(labels), "a key may be named like an operator").to.equal(true);
  });

  it("malformed selectors are INVALID_ARGUMENT with what is wrong and where", () => {
    const cases: Array<[string, RegExp]> = [
      ["region=eu,", /expected a label key at position 11/],
      ["=eu", /expected a label key/],
      ["region=eu role=db", /expected ","/],
      ["region in (eu", /expected "\)"|expected ","/],
      ["region in eu", /expected "\("/],
      ["region=-eu", /value must be/],
      ["Region/x=1", /prefix must be a DNS subdomain/],
      [`${"k".repeat(64)}=1`, /name must be 1-63/],
      ["region=e!u", /expected ","/],
      ["region ~ eu", /expected "=", "==", "!="/],
    ];
    for (const [text, message] of cases) {
      const err = parseError(text);
      expect(err.code, text).to.equal(Code.INVALID_ARGUMENT);
      expect(err.message, text).to.match(message).and.contain(`selector "${text}"`);
    }
  });

  it("matches a model of Kubernetes semantics on random labels and requirements (fast-check)", () => {
    const key = fc.constantFrom("a", "b", "c");
    const value = fc.constantFrom("x", "y", "z");
    const labels = fc.dictionary(key, value, { maxKeys: 3 });
    const requirement = fc.oneof(
      fc.record({ key, op: fc.constantFrom("=", "!="), value }),
      fc.record({ key, op: fc.constantFrom("in", "notin"), values: fc.uniqueArray(value, { minLength: 1, maxLength: 3 }) }),
      fc.record({ key, op: fc.constantFrom("exists", "!exists") }),
    );
    type Req = { key: string; op: string; value?: string; values?: string[] };
    const text = (r: Req) =>
      r.op === "exists"
        ? r.key
        : r.op === "!exists"
          ? `!${r.key}`
          : r.values
            ? `${r.key} ${r.op} (${r.values.join(",")})`
            : `${r.key}${r.op}${r.value}`;
    const model = (l: Record<string, string>, r: Req) => {
      const has = r.key in l;
      switch (r.op) {
        case "=":
          return l[r.key] === r.value;
        case "!=":
          return l[r.key] !== r.value;
        case "in":
          return has && r.values!.includes(l[r.key]!);
        case "notin":
          return !has || !r.values!.includes(l[r.key]!);
        case "exists":
          return has;
        default:
          return !has;
      }
    };
    fc.assert(
      fc.property(labels, fc.array(requirement as fc.Arbitrary<Req>, { maxLength: 4 }), (l, reqs) => {
        const selector = Selector.parse(reqs.map(text).join(","));
        expect(selector.requirements).to.have.length(reqs.length);
        expect(selector.matches(l)).to.equal(reqs.every((r) => model(l, r)));
      }),
    );
  });
});
