import { Code } from "./code.js";
import { NetSyncError } from "./errors.js";
import { type Labels, labelKeyProblem, labelValueProblem } from "./labels.js";

/** One requirement of a selector, as Kubernetes defines them. */
export type Requirement =
  | { readonly key: string; readonly op: "=" | "!="; readonly value: string }
  | { readonly key: string; readonly op: "in" | "notin"; readonly values: readonly string[] }
  | { readonly key: string; readonly op: "exists" | "!exists" };

/**
 * A label selector in Kubernetes syntax: requirements joined by commas, all
 * of which must hold. `key=value` (or `==`), `key!=value` (true when the
 * label is absent too), `key in (a,b)`, `key notin (a,b)` (true when absent),
 * `key` (has the label), `!key` (lacks it). The empty selector matches every
 * slave.
 */
export class Selector {
  private constructor(
    readonly requirements: readonly Requirement[],
    private readonly text: string,
  ) {}

  /** Parses `text`; throws NetSyncError INVALID_ARGUMENT saying what is wrong and where. */
  static parse(text: string): Selector {
    return new Selector(new Parser(text).requirements(), text.trim());
  }

  /** The selector itself, or `text` parsed (undefined and "" select everything). */
  static from(selector: Selector | string | undefined): Selector {
    if (selector instanceof Selector) return selector;
    return Selector.parse(selector ?? "");
  }

  /** Whether it selects everything. */
  get empty(): boolean {
    return this.requirements.length === 0;
  }

  matches(labels: Labels): boolean {
    for (const r of this.requirements) {
      const has = Object.hasOwn(labels, r.key);
      const value = labels[r.key];
      switch (r.op) {
        case "=":
          if (value !== r.value || !has) return false;
          break;
        case "!=":
          if (has && value === r.value) return false;
          break;
        case "in":
          if (!has || !r.values.includes(value!)) return false;
          break;
        case "notin":
          if (has && r.values.includes(value!)) return false;
          break;
        case "exists":
          if (!has) return false;
          break;
        case "!exists":
          if (has) return false;
          break;
      }
    }
    return true;
  }

  toString(): string {
    return this.text;
  }
}

/** A small recursive-descent parser over the selector text; `pos` is where it reads next. */
class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  requirements(): Requirement[] {
    const out: Requirement[] = [];
    this.skipSpaces();
    if (this.pos === this.text.length) return out;
    for (;;) {
      out.push(this.requirement());
      this.skipSpaces();
      if (this.pos === this.text.length) return out;
      this.expect(",");
    }
  }

  private requirement(): Requirement {
    this.skipSpaces();
    if (this.peek("!")) {
      this.pos++;
      return { key: this.key(), op: "!exists" };
    }
    const key = this.key();
    this.skipSpaces();
    if (this.peek("!=")) {
      this.pos += 2;
      return { key, op: "!=", value: this.value(key) };
    }
    if (this.peek("==")) {
      this.pos += 2;
      return { key, op: "=", value: this.value(key) };
    }
    if (this.peek("=")) {
      this.pos++;
      return { key, op: "=", value: this.value(key) };
    }
    const word = /^(notin|in)(?=[\s(])/.exec(this.text.slice(this.pos));
    if (word) {
      this.pos += word[1]!.length;
      return { key, op: word[1] as "in" | "notin", values: this.set(key) };
    }
    if (this.pos === this.text.length || this.peek(",")) return { key, op: "exists" };
    throw this.error(`expected "=", "==", "!=", "in", "notin", "," or the end after key "${key}"`);
  }

  private set(key: string): string[] {
    this.skipSpaces();
    this.expect("(");
    const values: string[] = [];
    for (;;) {
      values.push(this.value(key));
      this.skipSpaces();
      if (this.peek(")")) {
        this.pos++;
        return values;
      }
      this.expect(",");
    }
  }

  private key(): string {
    this.skipSpaces();
    const key = this.word();
    if (key === "") throw this.error("expected a label key");
    const problem = labelKeyProblem(key);
    if (problem) throw this.error(problem);
    return key;
  }

  private value(key: string): string {
    this.skipSpaces();
    const value = this.word();
    const problem = labelValueProblem(key, value);
    if (problem) throw this.error(problem);
    return value;
  }

  /** Characters up to the next space or operator character. */
  private word(): string {
    const match = /^[^\s,=!()]*/.exec(this.text.slice(this.pos))!;
    this.pos += match[0].length;
    return match[0];
  }

  private skipSpaces(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private peek(token: string): boolean {
    return this.text.startsWith(token, this.pos);
  }

  private expect(token: string): void {
    if (!this.peek(token)) throw this.error(`expected "${token}"`);
    this.pos += token.length;
  }

  private error(message: string): NetSyncError {
    return new NetSyncError(`selector "${this.text}": ${message} at position ${this.pos + 1}`, Code.INVALID_ARGUMENT);
  }
}
