/**
 * Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a literal `$`.
 * Defaults and alternatives may themselves contain interpolation. Applied to every string
 * value of the file (never to keys); problems are collected with their paths.
 */

export type Variables = Readonly<Record<string, string | undefined>>;

const NAME_RE = /^[_a-zA-Z][_a-zA-Z0-9]*/;

export class InterpolationError extends Error {}

/** Interpolates one string; throws InterpolationError with a readable reason. */
export function interpolateString(text: string, vars: Variables): string {
  let pos = 0;
  const read = (stopAtBrace: boolean): string => {
    let out = "";
    while (pos < text.length) {
      const ch = text[pos]!;
      if (stopAtBrace && ch === "}") return out;
      if (ch !== "$") {
        out += ch;
        pos += 1;
        continue;
      }
      const next = text[pos + 1];
      if (next === "$") {
        out += "$";
        pos += 2;
      } else if (next === "{") {
        pos += 2;
        out += braced();
      } else {
        const name = NAME_RE.exec(text.slice(pos + 1))?.[0];
        if (name === undefined) {
          out += "$";
          pos += 1;
        } else {
          out += vars[name] ?? "";
          pos += 1 + name.length;
        }
      }
    }
    if (stopAtBrace) throw new InterpolationError(`missing "}" in "${text}"`);
    return out;
  };
  const braced = (): string => {
    const name = NAME_RE.exec(text.slice(pos))?.[0];
    if (name === undefined) throw new InterpolationError(`invalid interpolation format in "${text}"`);
    pos += name.length;
    const value = vars[name];
    if (pos >= text.length) throw new InterpolationError(`missing "}" in "${text}"`);
    if (text[pos] === "}") {
      pos += 1;
      return value ?? "";
    }
    const colon = text[pos] === ":";
    if (colon) pos += 1;
    const op = text[pos];
    if (op !== "-" && op !== "?" && op !== "+") throw new InterpolationError(`invalid interpolation format in "${text}"`);
    pos += 1;
    const word = read(true);
    pos += 1;
    const present = colon ? value !== undefined && value !== "" : value !== undefined;
    if (op === "-") return present ? value! : word;
    if (op === "+") return present ? word : "";
    if (!present) throw new InterpolationError(`required variable ${name} is missing a value${word ? `: ${word}` : ""}`);
    return value!;
  };
  return read(false);
}

/** Interpolates every string value of a parsed YAML tree, collecting `path: reason` problems. */
export function interpolateTree(value: unknown, vars: Variables, problems: string[], path = ""): unknown {
  if (typeof value === "string") {
    try {
      return interpolateString(value, vars);
    } catch (error) {
      if (error instanceof InterpolationError) {
        problems.push(`${path || "(top level)"}: ${error.message}`);
        return value;
      }
      throw error;
    }
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, vars, problems, `${path}[${i}]`));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = interpolateTree(v, vars, problems, path ? `${path}.${key}` : key);
    return out;
  }
  return value;
}

/**
 * Parses a `.env` file: `KEY=VALUE` lines, optional `export `, `#` comments, single quotes
 * (literal), double quotes (\n \t \" \\ escapes and interpolation), unquoted values with
 * interpolation and a ` #` comment stripped. Earlier keys are visible to later values.
 */
export function parseDotEnv(text: string, vars: Variables, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*(.*))?$/.exec(line);
    if (match === null) throw new InterpolationError(`${file}, line ${index + 1}: expected KEY=VALUE, got "${line}"`);
    const key = match[1]!;
    let value = match[2] ?? "";
    const scope = { ...vars, ...out };
    if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      if (end === -1) throw new InterpolationError(`${file}, line ${index + 1}: unterminated single quote`);
      value = value.slice(1, end);
    } else if (value.startsWith('"')) {
      const end = findClosingQuote(value);
      if (end === -1) throw new InterpolationError(`${file}, line ${index + 1}: unterminated double quote`);
      value = interpolateString(
        value.slice(1, end).replace(/\\([nrt"\\$])/g, (_, c: string) => ({ n: "\n", r: "\r", t: "\t" })[c] ?? (c === "$" ? "$$" : c)),
        scope,
      );
    } else {
      value = interpolateString(value.replace(/\s+#.*$/, "").trim(), scope);
    }
    out[key] = value;
  });
  return out;
}

function findClosingQuote(value: string): number {
  for (let i = 1; i < value.length; i += 1) {
    if (value[i] === "\\") i += 1;
    else if (value[i] === '"') return i;
  }
  return -1;
}
