import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { isRerollError, RerollError } from "../core/errors.js";
import { InterpolationError, interpolateTree, parseDotEnv } from "../core/spec/interpolate.js";
import type { Spec } from "../core/spec/types.js";
import { validateSpec } from "../core/spec/validate.js";

/** Compose's own search order when no file is named. */
export const COMPOSE_FILE_NAMES = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"] as const;

export interface LoadSpecOptions {
  /** -f/--file, relative to cwd */
  readonly file?: string;
  /** -p/--project */
  readonly project?: string;
  readonly cwd: string;
  /** the environment interpolation reads (the shell's variables win over `.env`) */
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function findComposeFile(cwd: string, file?: string): string {
  if (file !== undefined) {
    const path = resolve(cwd, file);
    if (!existsSync(path)) {
      throw new RerollError("E_SPEC_NOT_FOUND", `There is no Compose file at ${path}.`, {
        hint: "Check the path given to -f/--file.",
      });
    }
    return path;
  }
  for (const name of COMPOSE_FILE_NAMES) {
    const path = join(cwd, name);
    if (existsSync(path)) return path;
  }
  throw new RerollError("E_SPEC_NOT_FOUND", `No Compose file in ${cwd} (looked for ${COMPOSE_FILE_NAMES.join(", ")}).`, {
    hint: "Run reroll in the directory that has your compose.yaml, or name it with -f FILE.",
  });
}

/** Reads, interpolates and validates a Compose file into a Spec; every problem at once (exit 2). */
export async function loadSpec(options: LoadSpecOptions): Promise<Spec> {
  const file = findComposeFile(options.cwd, options.file);
  const dir = dirname(file);
  // loaded here, not at start: only commands that read a Compose file pay for it. yaml is
  // CommonJS: its exports are `default` (always, and only that in the CLI's bundle) or named.
  const yaml = (await import("yaml")) as typeof import("yaml") & { default?: typeof import("yaml") };
  const { parseDocument } = yaml.default ?? yaml;
  const text = readFileSync(file, "utf8");
  const document = parseDocument(text, { merge: true, prettyErrors: true });
  if (document.errors.length > 0) {
    throw new RerollError("E_SPEC_YAML", `${file} is not valid YAML.`, {
      problems: document.errors.map((e) => e.message.split("\n")[0] ?? e.message),
      hint: "Fix the YAML syntax at the line shown.",
    });
  }

  let dotEnv: Record<string, string> = {};
  const dotEnvPath = join(dir, ".env");
  if (existsSync(dotEnvPath)) {
    try {
      dotEnv = parseDotEnv(readFileSync(dotEnvPath, "utf8"), options.env, dotEnvPath);
    } catch (error) {
      if (error instanceof InterpolationError) {
        throw new RerollError("E_SPEC_ENV", error.message, { hint: "Fix the .env file: one KEY=VALUE per line." });
      }
      throw error;
    }
  }
  const vars = { ...dotEnv, ...definedOnly(options.env) };
  const problems: string[] = [];
  const interpolated = interpolateTree(document.toJS({ maxAliasCount: 1000 }), vars, problems);

  try {
    const project = options.project ?? nonEmpty(options.env["COMPOSE_PROJECT_NAME"]);
    const spec = validateSpec(interpolated, {
      file,
      dir,
      project,
      vars,
      home: options.env["HOME"],
      readEnvFile: (path) => {
        try {
          return parseDotEnv(readFileSync(path, "utf8"), vars, path);
        } catch (error) {
          return error instanceof InterpolationError ? error.message : `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? "error"})`;
        }
      },
    });
    if (problems.length > 0) throw invalid(file, problems);
    return spec;
  } catch (error) {
    if (isRerollError(error) && error.code === "E_SPEC_INVALID" && problems.length > 0 && error.problems !== problems) {
      throw invalid(file, [...problems, ...error.problems]);
    }
    throw error;
  }
}

function invalid(file: string, problems: readonly string[]): RerollError {
  return new RerollError(
    "E_SPEC_INVALID",
    `${file} has ${problems.length === 1 ? "a problem" : `${problems.length} problems`}; nothing was changed.`,
    { problems, hint: "Fix each key listed above; README lists the Compose keys reroll honours." },
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function definedOnly(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}
