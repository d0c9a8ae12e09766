import { RerollError } from "../errors.js";

/**
 * A Dockerfile read the way BuildKit's parser reads it (frontend/dockerfile/parser), keeping
 * for every character of every logical instruction the byte offset it came from, so that an
 * edit can change exactly the bytes of a tag and nothing else.
 *
 * The source is held as a "binary" (latin1) string: one character per byte, so string
 * indices are byte offsets and writing it back with the same encoding is byte-identical,
 * whatever the file's encoding, line endings or BOM.
 *
 * Cost matters on large files (bench/): an instruction's joined text and per-character
 * offsets are built only when asked for. Most instructions are only asked for their keyword.
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
  readonly lineStarts: ArrayLike<number>;
}

const UTF8_BOM = "\xEF\xBB\xBF";
const DIRECTIVE_RE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(["syntax", "escape", "check"]);
const HEREDOC_KEYWORDS = new Set(["RUN", "COPY", "ADD"]);
const HEREDOC_WORD_RE = /^(\d*)<<(-?)([^<]*)$/;
const HASH = 35;

/**
 * A logical instruction stored as the byte runs it is made of: entries [runFrom, runTo) of
 * the file-wide `runs` list, flat as [fileOffset, length, …]; the first run starts at the keyword.
 */
class LazyInstruction implements Instruction {
  // `declare`: no per-instance field initializer (thousands of instructions on large files)
  declare private cachedArgs: Located | undefined;

  constructor(
    private readonly source: string,
    private readonly allRuns: readonly number[],
    private readonly runFrom: number,
    private readonly runTo: number,
    readonly keyword: string,
    /** characters of the joined text before the arguments (keyword and blanks) */
    private readonly argsAt: number,
    readonly line: number,
    readonly start: number,
    readonly end: number,
  ) {}

  get args(): Located {
    if (this.cachedArgs === undefined) {
      const runs = this.allRuns.slice(this.runFrom, this.runTo);
      let text = "";
      for (let r = 0; r < runs.length; r += 2) text += this.source.slice(runs[r]!, runs[r]! + runs[r + 1]!);
      const argsAt = this.argsAt;
      let offsets: number[] | undefined;
      this.cachedArgs = {
        text: text.slice(argsAt),
        get offsets(): readonly number[] {
          if (offsets === undefined) {
            const all: number[] = [];
            for (let r = 0; r < runs.length; r += 2) {
              for (let k = 0; k < runs[r + 1]!; k += 1) all.push(runs[r]! + k);
            }
            offsets = all.slice(argsAt);
          }
          return offsets;
        },
      };
    }
    return this.cachedArgs;
  }

  /** whether the instruction's text contains `needle` (without building the text) */
  contains(needle: string): boolean {
    for (let r = this.runFrom; r < this.runTo; r += 2) {
      const at = this.source.indexOf(needle, this.allRuns[r]!);
      if (at !== -1 && at + needle.length <= this.allRuns[r]! + this.allRuns[r + 1]!) return true;
    }
    return false;
  }
}

/** Line bounds: where each line starts, and where its content starts and ends (no BOM, no "\r\n"). */
export interface Lines {
  readonly count: number;
  readonly lineStarts: Int32Array;
  readonly contentStarts: Int32Array;
  readonly contentEnds: Int32Array;
}

export function splitLines(source: string): Lines {
  let count = 0;
  for (let at = source.indexOf("\n"); at !== -1; at = source.indexOf("\n", at + 1)) count += 1;
  if (source.length > 0 && !source.endsWith("\n")) count += 1;
  const lineStarts = new Int32Array(count);
  const contentStarts = new Int32Array(count);
  const contentEnds = new Int32Array(count);
  let pos = 0;
  for (let i = 0; i < count; i += 1) {
    const nl = source.indexOf("\n", pos);
    let end = nl === -1 ? source.length : nl;
    if (end > pos && source.charCodeAt(end - 1) === 13) end -= 1;
    lineStarts[i] = pos;
    contentStarts[i] = pos === 0 && source.startsWith(UTF8_BOM) ? UTF8_BOM.length : pos;
    contentEnds[i] = end;
    pos = nl === -1 ? source.length : nl + 1;
  }
  return { count, lineStarts, contentStarts, contentEnds };
}

/** 1-based line number of a byte offset. */
export function lineOfOffset(lineStarts: ArrayLike<number>, offset: number): number {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((lineStarts[mid] ?? 0) <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

function isSpace(code: number): boolean {
  // ' ', \t, \v, \f, \r
  return code === 32 || (code >= 9 && code <= 13 && code !== 10);
}

/** Index of the first non-space character of source[start, end), or end. */
function skipSpace(source: string, start: number, end: number): number {
  let i = start;
  while (i < end && isSpace(source.charCodeAt(i))) i += 1;
  return i;
}

/**
 * Where a line's text ends when it continues on the next line (BuildKit's `([^\\])\\[ \t]*$`:
 * the escape character, then only blanks, preceded by a character that is not the escape
 * character), or -1 when it does not continue.
 */
function continuationCut(source: string, start: number, end: number, escape: number): number {
  let i = end - 1;
  while (i >= start && (source.charCodeAt(i) === 32 || source.charCodeAt(i) === 9)) i -= 1;
  if (i - 1 < start || source.charCodeAt(i) !== escape || source.charCodeAt(i - 1) === escape) return -1;
  return i;
}

class DirectiveReader {
  done = false;
  escape: "\\" | "`" = "\\";
  readonly directives: Directive[] = [];
  private readonly seen = new Set<string>();

  read(content: string, line: number): void {
    if (this.done) return;
    const match = DIRECTIVE_RE.exec(content.replace(/^[ \t\v\f\r]*/, ""));
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
  const { count, lineStarts, contentStarts: starts, contentEnds: ends } = splitLines(source);
  const directives = new DirectiveReader();
  const instructions: Instruction[] = [];
  const runs: number[] = [];

  let i = 0;
  while (i < count) {
    const firstLineNo = i + 1;
    if (!directives.done) directives.read(source.slice(starts[i]!, ends[i]!), firstLineNo);
    const escape = directives.escape.charCodeAt(0);
    const contentStart = skipSpace(source, starts[i]!, ends[i]!);
    const firstEnd = ends[i]!;
    i += 1;
    if (contentStart === firstEnd || source.charCodeAt(contentStart) === HASH) continue;

    const runFrom = runs.length;
    let cut = continuationCut(source, contentStart, firstEnd, escape);
    runs.push(contentStart, (cut === -1 ? firstEnd : cut) - contentStart);
    while (cut !== -1 && i < count) {
      const lineStart = starts[i]!;
      const lineEnd = ends[i]!;
      if (!directives.done) directives.read(source.slice(lineStart, lineEnd), i + 1);
      i += 1;
      const nonSpace = skipSpace(source, lineStart, lineEnd);
      if (nonSpace === lineEnd || source.charCodeAt(nonSpace) === HASH) continue;
      cut = continuationCut(source, lineStart, lineEnd, escape);
      runs.push(lineStart, (cut === -1 ? lineEnd : cut) - lineStart);
    }

    // The keyword and the blanks after it lie in the first run unless a line break splits them.
    let keyword: string;
    let argsAt: number;
    const firstRunEnd = runs[runFrom]! + runs[runFrom + 1]!;
    let k = contentStart;
    while (k < firstRunEnd && !isSpace(source.charCodeAt(k))) k += 1;
    let a = k;
    while (a < firstRunEnd && isSpace(source.charCodeAt(a))) a += 1;
    if (a < firstRunEnd || runs.length === runFrom + 2) {
      keyword = source.slice(contentStart, k).toUpperCase();
      argsAt = a - contentStart;
    } else {
      let joined = "";
      for (let r = runFrom; r < runs.length; r += 2) joined += source.slice(runs[r]!, runs[r]! + runs[r + 1]!);
      const match = /^(\S*)[ \t\v\f\r]*/.exec(joined)!;
      keyword = match[1]!.toUpperCase();
      argsAt = match[0].length;
    }
    const instruction = new LazyInstruction(source, runs, runFrom, runs.length, keyword, argsAt, firstLineNo, contentStart, ends[i - 1]!);
    instructions.push(instruction);

    if (HEREDOC_KEYWORDS.has(keyword) && instruction.contains("<<")) {
      for (const heredoc of heredocsOf(instruction.args.text)) {
        let terminated = false;
        while (i < count) {
          let candidate = source.slice(starts[i]!, ends[i]!);
          i += 1;
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
  }

  return { source, escape: directives.escape, directives: directives.directives, instructions, lineStarts };
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
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i]!;
    if (quote !== "") {
      word += ch;
      if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") {
      word += ch;
      quote = ch;
    } else if (isSpace(text.charCodeAt(i)) || ch === "\n") {
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
