import { RerollError } from "../errors.js";
import { tryParseImageRef, type ImageRef } from "../image-ref.js";
import { expandWord, splitShellWords, splitWhitespace, type ArgScope, type Expanded, type Sourced } from "./expand.js";
import type { Instruction, Located, ParsedDockerfile } from "./parse.js";

/**
 * What each FROM line of a Dockerfile builds on: an external image, an earlier stage,
 * or `scratch`, with the expanded reference and the origin of each of its characters.
 */

export type FromKind = "image" | "stage" | "scratch";

export interface FromLine {
  readonly instruction: Instruction;
  /** 0-based stage index */
  readonly stageIndex: number;
  /** stage name declared with `AS name`, lower-cased as BuildKit does */
  readonly stageName: string | undefined;
  readonly kind: FromKind;
  /** the image word as written */
  readonly word: Located;
  /** the image word after quote removal and ARG expansion */
  readonly expanded: Expanded;
  /** the parsed reference, for kind "image" */
  readonly ref: ImageRef | undefined;
}

export interface MetaArg {
  readonly name: string;
  readonly value: Sourced | undefined;
  readonly line: number;
}

export interface BaseImages {
  readonly froms: readonly FromLine[];
  /** ARGs declared before the first FROM: the only ones FROM lines can use */
  readonly metaArgs: readonly MetaArg[];
}

/** BuildKit's automatic platform ARGs. Their values depend on the build, so they are never editable. */
const PLATFORM_ARGS: ReadonlyMap<string, string> = new Map([
  ["BUILDPLATFORM", "linux/amd64"],
  ["BUILDOS", "linux"],
  ["BUILDARCH", "amd64"],
  ["BUILDVARIANT", ""],
  ["TARGETPLATFORM", "linux/amd64"],
  ["TARGETOS", "linux"],
  ["TARGETARCH", "amd64"],
  ["TARGETVARIANT", ""],
]);

function unsourced(text: string): Sourced {
  return { text, sources: Array.from(text, () => undefined) };
}

const analyses = new WeakMap<ParsedDockerfile, BaseImages>();

/**
 * The base images of a parsed Dockerfile (computed once per parse). `buildArgs` are the
 * values a build passes (`--build-arg`): they replace the defaults of the ARGs they name,
 * as BuildKit does, and are never editable.
 */
export function analyzeBaseImages(parsed: ParsedDockerfile, buildArgs?: Readonly<Record<string, string>>): BaseImages {
  if (buildArgs !== undefined && Object.keys(buildArgs).length > 0) return analyze(parsed, buildArgs);
  let analysis = analyses.get(parsed);
  if (analysis === undefined) {
    analysis = analyze(parsed, {});
    analyses.set(parsed, analysis);
  }
  return analysis;
}

function analyze(parsed: ParsedDockerfile, buildArgs: Readonly<Record<string, string>>): BaseImages {
  const scope = new Map<string, Sourced | undefined>();
  for (const [name, value] of PLATFORM_ARGS) scope.set(name, unsourced(value));
  const metaArgs: MetaArg[] = [];
  const froms: FromLine[] = [];
  const stageNames: string[] = [];

  for (const instruction of parsed.instructions) {
    if (instruction.keyword === "ARG" && froms.length === 0) {
      for (const word of splitShellWords(instruction.args, parsed.escape)) {
        const eq = word.text.indexOf("=");
        const name = eq === -1 ? word.text : word.text.slice(0, eq);
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
          throw syntaxError(instruction.line, `"${word.text}" is not a valid ARG declaration`);
        }
        let value: Sourced | undefined;
        const given = buildArgs[name];
        if (given !== undefined) {
          value = unsourced(given);
        } else if (eq !== -1) {
          const raw: Located = { text: word.text.slice(eq + 1), offsets: word.offsets.slice(eq + 1) };
          value = expandWord(raw, scope as ArgScope, parsed.escape, instruction.line, name);
        } else if (PLATFORM_ARGS.has(name)) {
          value = scope.get(name);
        }
        scope.set(name, value);
        metaArgs.push({ name, value, line: instruction.line });
      }
      continue;
    }
    if (instruction.keyword !== "FROM") continue;

    const words = splitWhitespace(instruction.args);
    let first = 0;
    while (first < words.length && words[first]!.text.startsWith("--")) first += 1;
    const rest = words.slice(first);
    const asWord = rest[1];
    const nameWord = rest[2];
    const valid =
      (rest.length === 1 || rest.length === 3) && (rest.length === 1 || asWord?.text.toLowerCase() === "as");
    if (!valid || rest[0] === undefined) {
      throw syntaxError(instruction.line, "FROM requires either one argument, or three: FROM <image> [AS <name>]");
    }
    const word = rest[0];
    const expanded = expandWord(word, scope, parsed.escape, instruction.line);
    const stageIndex = froms.length;
    const stageName = nameWord?.text.toLowerCase();
    const target = expanded.text;
    let kind: FromKind;
    let ref: ImageRef | undefined;
    if (target.toLowerCase() === "scratch") {
      kind = "scratch";
    } else if (stageNames.includes(target.toLowerCase()) || (/^\d+$/.test(target) && Number(target) < stageIndex)) {
      kind = "stage";
    } else {
      const parsedRef = tryParseImageRef(target);
      if (typeof parsedRef === "string") {
        throw syntaxError(instruction.line, `FROM ${target}: ${parsedRef}`);
      }
      kind = "image";
      ref = parsedRef;
    }
    if (stageName !== undefined) stageNames.push(stageName);
    froms.push({ instruction, stageIndex, stageName, kind, word, expanded, ref });
  }

  return { froms, metaArgs };
}

function syntaxError(line: number, message: string): RerollError {
  return new RerollError("E_DOCKERFILE_SYNTAX", `Dockerfile line ${line}: ${message}.`, {
    hint: "Fix the Dockerfile so that `docker build` accepts it, then run reroll again.",
  });
}
