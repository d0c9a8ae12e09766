import { splitLines } from "./dockerfile/parse.js";

const CONTEXT_LINES = 3;

/**
 * A unified diff between two versions of a file whose edits never add or remove a line
 * (tag edits contain no newline), so lines correspond one to one. Both texts are binary
 * strings (one character per byte); lines are shown decoded as UTF-8, without line endings.
 */
export function unifiedDiff(path: string, before: string, after: string): string {
  const a = linesOf(before);
  const b = linesOf(after);
  if (a.length !== b.length) throw new Error("unifiedDiff: edits must not add or remove lines");
  const changed: number[] = [];
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) changed.push(i);
  if (changed.length === 0) return "";

  const out = [`--- a/${path}`, `+++ b/${path}`];
  let h = 0;
  while (h < changed.length) {
    const first = changed[h]!;
    let last = first;
    while (h + 1 < changed.length && changed[h + 1]! - last <= 2 * CONTEXT_LINES) {
      h += 1;
      last = changed[h]!;
    }
    h += 1;
    const start = Math.max(0, first - CONTEXT_LINES);
    const end = Math.min(a.length, last + CONTEXT_LINES + 1);
    const count = end - start;
    out.push(`@@ -${start + 1},${count} +${start + 1},${count} @@`);
    for (let i = start; i < end; i += 1) {
      if (a[i] === b[i]) out.push(` ${show(a[i]!)}`);
      else out.push(`-${show(a[i]!)}`, `+${show(b[i]!)}`);
    }
  }
  return `${out.join("\n")}\n`;
}

function linesOf(text: string): string[] {
  const lines = splitLines(text);
  return Array.from({ length: lines.count }, (_, i) => text.slice(lines.contentStarts[i], lines.contentEnds[i]));
}

function show(binary: string): string {
  return Buffer.from(binary, "latin1").toString("utf8");
}
