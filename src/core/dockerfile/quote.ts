/** A string as a double-quoted Dockerfile word: no escape, variable or line break is read into it. */
export function dockerfileQuote(text: string): string {
  return `"${text.replace(/[\\"$]/g, "\\$&").replace(/\r?\n/g, " ")}"`;
}

/** One LABEL instruction setting every label: the classic builder runs it as one step. */
export function labelInstruction(labels: Readonly<Record<string, string>>): string {
  return `LABEL ${Object.entries(labels)
    .map(([k, v]) => `${dockerfileQuote(k)}=${dockerfileQuote(v)}`)
    .join(" ")}`;
}
