import { RerollError } from "../errors.js";

/**
 * A Dockerfile read the way BuildKit's parser reads it (frontend/dockerfile/parser), keeping
 * for every character of every logical instruction the byte offset it came from, so that an
 * edit can change exactly the bytes of a tag and nothing else.
 *
 * The source is held as a "binary" (latin1) string: one character per byte, so string
 * indices are byte offsets and writing it back with the same encoding is byte-identical,
 * whatever the file's encoding, line endings or BOM.
 */

/** Text assembled from the file, with the byte offset of each character. */
export interface Located {
  readonly text: string;
  readonly offsets: readonly number[];
}

export interface Directive {
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

export interface Instruction {
  /** upper-cased keyword: FROM, ARG, RUN … */
  readonly keyword: string;
  /** everything after the keyword and the whitespace that follows it, continuations joined */
  readonly args: Located;
  /** 1-based line of the keyword */
  readonly line: number;
  /** byte range of the logical instruction in the file (heredoc bodies excluded) */
  readonly start: number;
  readonly end: number;
}

export interface ParsedDockerfile {
  readonly source: string;
  readonly escape: "\\" | "`";
  readonly directives: readonly Directive[];
  readonly instructions: readonly Instruction[];
  /** byte offset where each line starts; index 0 is line 1 */
  readonly lineStarts: readonly number[];
}

const UTF8_BOM = "\xEF\xBB\xBF";
const DIRECTIVE_RE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(["syntax", "escape", "check"]);
const HEREDOC_KEYWORDS = new Set(["RUN", "COPY", "ADD"]);
const HEREDOC_WORD_RE = /^(\d*)<<(-?)([^<]*)$/;
const LEADING_SPACE_RE = /^[ \t\v\f\r]*/;

interface RawLine {
  /** offset of the first content byte (after a BOM on line 1) */
  readonly start: number;
  /** offset just past the content (before "\r\n" or "\n") */
  readonly end: number;
}

export function splitLines(source: string): { lines: RawLine[]; lineStarts: number[] } {
  const lines: RawLine[] = [];
  const lineStarts: number[] = [];
  let pos = 0;
  while (pos < source.length) {
    const nl = source.indexOf("\n", pos);
    const next = nl === -1 ? source.length : nl + 1;
    let end = nl === -1 ? source.length : nl;
    if (end > pos && source.charCodeAt(end - 1) === 13) end -= 1;
    const start = pos === 0 && source.startsWith(UTF8_BOM) ? UTF8_BOM.length : pos;
    lineStarts.push(pos);
    lines.push({ start, end });
    pos = next;
  }
  return { lines, lineStarts };
}

/** 1-based line number of a byte offset. */
export function lineOfOffset(lineStarts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((lineStarts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

function isCommentLine(content: string): boolean {
  return content.replace(LEADING_SPACE_RE, "").startsWith("#");
}

class DirectiveReader {
  done = false;
  escape: "\\" | "`" = "\\";
  readonly directives: Directive[] = [];
  private readonly seen = new Set<string>();

  read(content: string, line: number): void {
    if (this.done) return;
    const match = DIRECTIVE_RE.exec(content.replace(LEADING_SPACE_RE, ""));
    const name = match?.[1]?.toLowerCase();
    if (match === null || name === undefined || !KNOWN_DIRECTIVES.has(name)) {
      this.done = true;
      return;
    }
    if (this.seen.has(name)) {
      throw syntaxError(`only one "${name}" parser directive can be used`, line);
    }
    this.seen.add(name);
    const value = match[2] ?? "";
    if (name === "escape") {
      if (value !== "\\" && value !== "`") {
        throw syntaxError(`invalid escape token "${value}": it must be \\ or \``, line);
      }
      this.escape = value;
    }
    this.directives.push({ name, value, line });
  }
}

function syntaxError(message: string, line: number): RerollError {
  return new RerollError("E_DOCKERFILE_SYNTAX", `Dockerfile line ${line}: ${message}.`, {
    hint: "Fix the Dockerfile so that `docker build` accepts it, then run reroll again.",
  });
}

export function parseDockerfile(source: string): ParsedDockerfile {
  const { lines, lineStarts } = splitLines(source);
  const directives = new DirectiveReader();
  const instructions: Instruction[] = [];
  let continuationRe = continuationRegex(directives.escape);

  let i = 0;
  while (i < lines.length) {
    const first = lines[i]!;
    const firstLineNo = i + 1;
    let content = source.slice(first.start, first.end);
    directives.read(content, firstLineNo);
    continuationRe = continuationRegex(directives.escape);
    i += 1;
    if (isCommentLine(content)) continue;
    const lead = LEADING_SPACE_RE.exec(content)?.[0].length ?? 0;
    content = content.slice(lead);
    if (content.length === 0) continue;

    let text = "";
    const offsets: number[] = [];
    let ended = appendLine(content, first.start + lead);
    while (!ended && i < lines.length) {
      const line = lines[i]!;
      const raw = source.slice(line.start, line.end);
      directives.read(raw, i + 1);
      i += 1;
      if (isCommentLine(raw)) continue;
      if (raw.replace(LEADING_SPACE_RE, "").length === 0) continue;
      ended = appendLine(raw, line.start);
    }

    const keywordMatch = /^(\S+)[ \t\v\f\r]*/.exec(text);
    const keyword = keywordMatch?.[1] ?? "";
    const argsStart = keywordMatch?.[0].length ?? 0;
    const instruction: Instruction = {
      keyword: keyword.toUpperCase(),
      args: { text: text.slice(argsStart), offsets: offsets.slice(argsStart) },
      line: firstLineNo,
      start: first.start + lead,
      end: lines[i - 1]!.end,
    };
    instructions.push(instruction);

    if (HEREDOC_KEYWORDS.has(instruction.keyword) && text.includes("<<")) {
      for (const heredoc of heredocsOf(instruction.args.text)) {
        let terminated = false;
        while (i < lines.length) {
          const line = lines[i]!;
          i += 1;
          let candidate = source.slice(line.start, line.end);
          if (heredoc.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === heredoc.name) {
            terminated = true;
            break;
          }
        }
        if (!terminated) {
          throw syntaxError(`heredoc <<${heredoc.name} opened here is never terminated`, firstLineNo);
        }
      }
    }

    // Appends one physical line; returns true when the logical instruction ends with it.
    function appendLine(lineText: string, at: number): boolean {
      const match = continuationRe.exec(lineText);
      const keep = match === null ? lineText.length : match.index + 1;
      text += lineText.slice(0, keep);
      for (let k = 0; k < keep; k += 1) offsets.push(at + k);
      return match === null;
    }
  }

  return {
    source,
    escape: directives.escape,
    directives: directives.directives,
    instructions,
    lineStarts,
  };
}

function continuationRegex(escape: string): RegExp {
  const e = escape === "\\" ? "\\\\" : escape;
  // BuildKit: `([^\\])\\[ \t]*$` — the escape character ends a line unless it is itself escaped.
  return new RegExp(`([^${e}])${e}[ \\t]*$`);
}

interface Heredoc {
  readonly name: string;
  readonly chomp: boolean;
}

/** The heredocs an instruction opens, in order (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`). */
function heredocsOf(args: string): Heredoc[] {
  const docs: Heredoc[] = [];
  for (const word of rawWords(args)) {
    const match = HEREDOC_WORD_RE.exec(word);
    if (match === null) continue;
    const name = unquote(match[3] ?? "");
    if (name.length === 0) continue;
    docs.push({ name, chomp: match[2] === "-" });
  }
  return docs;
}

/** Whitespace-separated words, quotes kept but honoured (a quoted space does not split). */
function rawWords(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let quote = "";
  for (const ch of text) {
    if (quote !== "") {
      word += ch;
      if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") {
      word += ch;
      quote = ch;
    } else if (/\s/.test(ch)) {
      if (word.length > 0) words.push(word);
      word = "";
    } else {
      word += ch;
    }
  }
  if (word.length > 0) words.push(word);
  return words;
}

function unquote(text: string): string {
  return text.replace(/^(["'])(.*)\1$/, "$2");
}
