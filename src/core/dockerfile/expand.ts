import { RerollError } from "../errors.js";
import type { Located } from "./parse.js";

/**
 * Where one character of an expanded word came from: a byte of the file (when it was
 * written literally somewhere) and the ARG whose default holds that byte, if any.
 * Characters with no source (built-in platform args) cannot be edited.
 */
export interface CharSource {
  readonly offset: number;
  readonly arg?: string;
}

export interface Sourced {
  readonly text: string;
  readonly sources: readonly (CharSource | undefined)[];
}

/** Variable values in scope. A name mapped to `undefined` is declared but unset. */
export type ArgScope = ReadonlyMap<string, Sourced | undefined>;

export interface Expanded extends Sourced {
  /** every variable the word referred to */
  readonly refs: ReadonlySet<string>;
}

class Builder {
  text = "";
  sources: (CharSource | undefined)[] = [];
  push(ch: string, source: CharSource | undefined): void {
    this.text += ch;
    this.sources.push(source);
  }
  append(value: Sourced): void {
    this.text += value.text;
    for (const s of value.sources) this.sources.push(s);
  }
}

/**
 * Expands one word the way BuildKit's shell lexer does for FROM and ARG: quotes removed,
 * the escape character honoured, `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:+w}`, `${V+w}`,
 * `${V:?msg}` and `${V?msg}` expanded. `arg` names the ARG whose default is being read, so
 * that its literal characters are attributed to it.
 */
export function expandWord(word: Located, scope: ArgScope, escape: string, line: number, arg?: string): Expanded {
  const refs = new Set<string>();
  const { text, offsets } = word;
  let pos = 0;

  const sourceAt = (i: number): CharSource | undefined => {
    const offset = offsets[i];
    if (offset === undefined) return undefined;
    return arg === undefined ? { offset } : { offset, arg };
  };
  const fail = (message: string): never => {
    throw new RerollError("E_DOCKERFILE_SYNTAX", `Dockerfile line ${line}: ${message}.`, {
      hint: "Fix the Dockerfile so that `docker build` accepts it, then run reroll again.",
    });
  };

  const readWord = (stop: string | undefined): Builder => {
    const out = new Builder();
    while (pos < text.length) {
      const ch = text[pos]!;
      if (stop !== undefined && ch === stop) return out;
      if (ch === escape) {
        pos += 1;
        if (pos < text.length) {
          out.push(text[pos]!, sourceAt(pos));
          pos += 1;
        }
      } else if (ch === "'") {
        pos += 1;
        const close = text.indexOf("'", pos);
        if (close === -1) fail("unexpected end of statement while looking for matching single-quote");
        for (; pos < close; pos += 1) out.push(text[pos]!, sourceAt(pos));
        pos += 1;
      } else if (ch === '"') {
        pos += 1;
        readDoubleQuoted(out);
      } else if (ch === "$") {
        readDollar(out);
      } else {
        out.push(ch, sourceAt(pos));
        pos += 1;
      }
    }
    if (stop !== undefined) fail(`missing '${stop}' in "${text}"`);
    return out;
  };

  const readDoubleQuoted = (out: Builder): void => {
    while (pos < text.length) {
      const ch = text[pos]!;
      if (ch === '"') {
        pos += 1;
        return;
      }
      if (ch === "$") {
        readDollar(out);
        continue;
      }
      if (ch === escape) {
        const next = text[pos + 1];
        if (next === '"' || next === "$" || next === escape) {
          out.push(next, sourceAt(pos + 1));
          pos += 2;
          continue;
        }
      }
      out.push(ch, sourceAt(pos));
      pos += 1;
    }
    fail("unexpected end of statement while looking for matching double-quote");
  };

  const readName = (): string => {
    const match = /^(?:[A-Za-z_][A-Za-z0-9_]*|[0-9])/.exec(text.slice(pos));
    const name = match?.[0] ?? "";
    pos += name.length;
    return name;
  };

  const readDollar = (out: Builder): void => {
    const dollarAt = pos;
    pos += 1;
    if (text[pos] === "{") {
      pos += 1;
      const name = readName();
      if (name.length === 0) fail(`bad substitution in "${text}"`);
      refs.add(name);
      const value = scope.get(name);
      const isSet = scope.has(name) && value !== undefined;
      const isNonEmpty = isSet && value.text.length > 0;
      const next = text[pos];
      if (next === "}") {
        pos += 1;
        if (isSet) out.append(value);
        return;
      }
      let colon = false;
      if (next === ":") {
        colon = true;
        pos += 1;
      }
      const op = text[pos];
      if (op !== "-" && op !== "+" && op !== "?") {
        fail(`unsupported modifier in \${${name}${colon ? ":" : ""}${op ?? ""}…} (reroll reads -, +, ? and their ':' forms)`);
      }
      pos += 1;
      const alternative = readWord("}");
      pos += 1; // the closing brace
      const present = colon ? isNonEmpty : isSet;
      if (op === "-") out.append(present ? value! : alternative);
      else if (op === "+") {
        if (present) out.append(alternative);
      } else {
        if (!present) fail(`variable ${name} is required: ${alternative.text || "not set"}`);
        out.append(value!);
      }
      return;
    }
    const name = readName();
    if (name.length === 0) {
      out.push("$", sourceAt(dollarAt));
      return;
    }
    refs.add(name);
    const value = scope.get(name);
    if (value !== undefined) out.append(value);
  };

  const result = readWord(undefined);
  return { text: result.text, sources: result.sources, refs };
}

/** Splits located text on whitespace, keeping offsets. FROM's words are split this way. */
export function splitWhitespace(located: Located): Located[] {
  const words: Located[] = [];
  const re = /[^ \t\v\f\r\n]+/g;
  for (let m = re.exec(located.text); m !== null; m = re.exec(located.text)) {
    words.push({ text: m[0], offsets: located.offsets.slice(m.index, m.index + m[0].length) });
  }
  return words;
}

/**
 * Splits located text into words the way BuildKit's parseWords does for ARG and ENV:
 * whitespace separates words except inside quotes or after the escape character.
 * Quotes and escapes are kept; expandWord removes them.
 */
export function splitShellWords(located: Located, escape: string): Located[] {
  const words: Located[] = [];
  const { text, offsets } = located;
  let start = -1;
  let quote = "";
  let escaped = false;
  const close = (end: number): void => {
    if (start !== -1) words.push({ text: text.slice(start, end), offsets: offsets.slice(start, end) });
    start = -1;
  };
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i]!;
    if (start === -1) {
      if (/\s/.test(ch)) continue;
      start = i;
    }
    if (escaped) {
      escaped = false;
    } else if (ch === escape && quote !== "'") {
      escaped = true;
    } else if (quote !== "") {
      if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (/\s/.test(ch)) {
      close(i);
    }
  }
  close(text.length);
  return words;
}
