import { RerollError } from "../errors.js";
import { familiarName, isValidTag, parseImageRef, repositoryKey } from "../image-ref.js";
import { chooseTag, type BumpLevel } from "../tag-policy.js";
import { analyzeBaseImages, type FromLine } from "./base-images.js";
import type { CharSource } from "./expand.js";
import { lineOfOffset, parseDockerfile, type ParsedDockerfile } from "./parse.js";

/**
 * Plans a base-image tag change as byte edits. The edit goes where the value lives: a
 * literal tag in the FROM, the default of the ARG that feeds it, or an inline `${V:-d}`.
 * Every plan is verified by applying it, parsing the result again and checking that the
 * targeted FROM lines now name the new tag and that every other FROM line is unchanged.
 */

export interface TextEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

export interface BumpTargets {
  /** the repository as the docker CLI shows it: `nginx`, `localhost:5000/app` */
  readonly image: string;
  /** fully qualified: `docker.io/library/nginx` */
  readonly repository: string;
  readonly froms: readonly FromLine[];
}

export type TagSpec = { readonly to: string } | { readonly level: BumpLevel; readonly candidates?: readonly string[] };

export interface BumpChange {
  /** 1-based line of the edited bytes */
  readonly line: number;
  /** the reference before and after, as the FROM line resolves it */
  readonly from: string;
  readonly to: string;
  /** the FROM lines whose image this edit changes */
  readonly fromLines: readonly number[];
  /** the ARG whose default holds the edited bytes, when the tag lives there */
  readonly arg?: string;
}

export interface BumpPlan {
  readonly image: string;
  readonly edits: readonly TextEdit[];
  readonly changes: readonly BumpChange[];
  /** why nothing changes, when `edits` is empty */
  readonly unchangedReason: string | undefined;
}

function describeStage(from: FromLine): string {
  return from.stageName === undefined ? `stage ${from.stageIndex}` : `stage "${from.stageName}"`;
}

function describeImages(froms: readonly FromLine[]): string {
  const seen = new Map<string, number[]>();
  for (const from of froms) {
    if (from.ref === undefined) continue;
    const name = familiarName(from.ref);
    seen.set(name, [...(seen.get(name) ?? []), from.instruction.line]);
  }
  return [...seen].map(([name, lines]) => `${name} (line ${lines.join(", ")})`).join(", ");
}

/** The FROM lines a bump acts on: those of `image` (or the file's only base image), within `stage`. */
export function findBumpTargets(parsed: ParsedDockerfile, image?: string, stage?: string): BumpTargets {
  const { froms } = analyzeBaseImages(parsed);
  const external = froms.filter((f) => f.kind === "image");
  let candidates = external;

  if (stage !== undefined) {
    const wanted = stage.toLowerCase();
    const from = froms.find((f) => f.stageName === wanted || String(f.stageIndex) === wanted);
    if (from === undefined) {
      const names = froms.map((f) => f.stageName ?? String(f.stageIndex)).join(", ");
      throw new RerollError("E_STAGE_NOT_FOUND", `The Dockerfile has no stage "${stage}".`, {
        hint: `Stages in this file: ${names || "none"}. Pass one of them to --stage.`,
      });
    }
    if (from.kind !== "image") {
      throw new RerollError(
        "E_STAGE_NOT_IMAGE",
        `${describeStage(from)} (line ${from.instruction.line}) builds on ${from.kind === "scratch" ? "scratch" : `the earlier stage "${from.expanded.text}"`}, not on an external image.`,
        { hint: "Choose the stage whose FROM names the image to bump." },
      );
    }
    candidates = [from];
  }

  let repository: string;
  if (image !== undefined) {
    const wanted = parseImageRef(image, "image");
    if (wanted.tag !== undefined || wanted.digest !== undefined) {
      throw new RerollError("E_USAGE", `Give the image without a tag or digest here ("${image}").`, {
        hint: "Use reroll bump IMAGE --to TAG, or the shorthand reroll bump IMAGE:TAG.",
      });
    }
    repository = repositoryKey(wanted);
    const matching = candidates.filter((f) => f.ref !== undefined && repositoryKey(f.ref) === repository);
    if (matching.length === 0) {
      const where = stage === undefined ? "No FROM line" : `The FROM line of stage "${stage}"`;
      throw new RerollError("E_IMAGE_NOT_FOUND", `${where} uses the image ${familiarName(wanted)}.`, {
        hint:
          external.length === 0
            ? "This Dockerfile has no external base image."
            : `Base images in this file: ${describeImages(stage === undefined ? external : candidates)}.`,
      });
    }
    return { image: familiarName(wanted), repository, froms: matching };
  }

  const repositories = new Set(candidates.map((f) => repositoryKey(f.ref!)));
  if (repositories.size === 0) {
    throw new RerollError("E_NO_BASE_IMAGE", "The Dockerfile has no external base image to bump.", {
      hint: "Every FROM line builds on scratch or on an earlier stage.",
    });
  }
  if (repositories.size > 1) {
    throw new RerollError(
      "E_IMAGE_AMBIGUOUS",
      `The Dockerfile has several base images: ${describeImages(candidates)}. Say which one to bump.`,
      { hint: `For example: reroll bump ${familiarName(candidates[0]!.ref!)} --to TAG.` },
    );
  }
  const first = candidates[0]!.ref!;
  return { image: familiarName(first), repository: repositoryKey(first), froms: candidates };
}

/** Turns targets and a tag choice into verified byte edits. */
export function planBump(parsed: ParsedDockerfile, targets: BumpTargets, spec: TagSpec): BumpPlan {
  for (const from of targets.froms) {
    if (from.ref?.digest !== undefined) {
      throw new RerollError(
        "E_DIGEST_PINNED",
        `Line ${from.instruction.line}: ${from.expanded.text} is pinned by digest; Docker would ignore a new tag.`,
        { hint: "Remove the @sha256:… digest from the reference (or from the ARG that holds it), then bump again." },
      );
    }
  }

  if ("to" in spec) {
    if (!isValidTag(spec.to)) {
      throw new RerollError("E_BAD_TAG", `"${spec.to}" is not a valid Docker tag.`, {
        hint: "A tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'.",
      });
    }
    const tags = new Set(targets.froms.map((f) => f.ref!.tag));
    if (tags.size > 1) {
      const list = targets.froms.map((f) => `line ${f.instruction.line} ${describeStage(f)}: ${f.expanded.text}`);
      throw new RerollError(
        "E_TAG_AMBIGUOUS",
        `${targets.image} is used with different tags (${list.join("; ")}); --to would make them one.`,
        { hint: "Choose the stage to edit with --stage NAME (name the stage with AS NAME if it has none)." },
      );
    }
  }

  const editsByKey = new Map<string, { edit: TextEdit; froms: FromLine[]; newTag: string; arg: string | undefined }>();
  const wanted = new Map<FromLine, string>();
  let unchangedReason: string | undefined;

  for (const from of targets.froms) {
    const ref = from.ref!;
    const current = ref.tag;
    let newTag: string;
    if ("to" in spec) {
      newTag = spec.to;
      if (current === newTag) unchangedReason = `already at ${targets.image}:${newTag}`;
    } else {
      const choice = chooseTag(current, spec.level, targets.image, spec.candidates);
      newTag = choice.tag;
      if (current === newTag) unchangedReason = `${targets.image}:${current}: ${choice.reason}`;
    }
    if (current === newTag) continue;
    wanted.set(from, newTag);
    const { edit, arg } = locateEdit(parsed, from, newTag);
    const key = `${edit.start}:${edit.end}`;
    const existing = editsByKey.get(key);
    if (existing === undefined) {
      editsByKey.set(key, { edit, froms: [from], newTag, arg });
    } else if (existing.edit.text !== edit.text) {
      throw new RerollError(
        "E_ARG_SHARED",
        `Lines ${existing.froms[0]!.instruction.line} and ${from.instruction.line} take their tags from the same bytes (line ${lineOfOffset(parsed.lineStarts, edit.start)}) but would need different values.`,
        { hint: "Bump one stage at a time with --stage NAME, or give each FROM its own ARG." },
      );
    } else {
      existing.froms.push(from);
    }
  }

  const entries = [...editsByKey.values()].sort((a, b) => a.edit.start - b.edit.start);
  for (let i = 1; i < entries.length; i += 1) {
    if (entries[i]!.edit.start < entries[i - 1]!.edit.end) {
      throw new RerollError("E_EDIT_CONFLICT", "Two edits of this bump overlap; the Dockerfile is left as it was.", {
        hint: "Bump one stage at a time with --stage NAME.",
      });
    }
  }
  const edits = entries.map((e) => e.edit);
  if (edits.length > 0) verifyEdits(parsed, edits, wanted);

  const changes = entries.map((e): BumpChange => {
    const first = e.froms[0]!;
    return {
      line: lineOfOffset(parsed.lineStarts, e.edit.start),
      from: first.expanded.text,
      to: `${first.ref!.name}:${e.newTag}`,
      fromLines: e.froms.map((f) => f.instruction.line),
      ...(e.arg === undefined ? {} : { arg: e.arg }),
    };
  });
  return { image: targets.image, edits, changes, unchangedReason: edits.length === 0 ? unchangedReason : undefined };
}

interface Piece {
  readonly start: number;
  readonly end: number;
  readonly editable: boolean;
}

/** Groups expanded characters [start, end) into runs that are contiguous bytes of one origin. */
function piecesOf(sources: readonly (CharSource | undefined)[], start: number, end: number): Piece[] {
  const pieces: Piece[] = [];
  let pieceStart = start;
  for (let i = start + 1; i <= end; i += 1) {
    const prev = sources[i - 1];
    const cur = sources[i];
    const joined =
      i < end &&
      ((prev === undefined && cur === undefined) ||
        (prev !== undefined && cur !== undefined && cur.offset === prev.offset + 1 && cur.arg === prev.arg));
    if (!joined) {
      pieces.push({ start: pieceStart, end: i, editable: sources[pieceStart] !== undefined });
      pieceStart = i;
    }
  }
  return pieces;
}

function locateEdit(parsed: ParsedDockerfile, from: FromLine, newTag: string): { edit: TextEdit; arg: string | undefined } {
  const ref = from.ref!;
  const { sources } = from.expanded;
  const line = from.instruction.line;

  if (ref.tagRange === undefined) {
    const last = sources[ref.nameRange[1] - 1];
    if (last === undefined) {
      throw notExpressible(from, newTag, "its name comes from a build-time platform variable");
    }
    return { edit: { start: last.offset + 1, end: last.offset + 1, text: `:${newTag}` }, arg: last.arg };
  }

  const [tagStart, tagEnd] = ref.tagRange;
  const oldTag = from.expanded.text.slice(tagStart, tagEnd);
  const viable: { edit: TextEdit; arg: string | undefined }[] = [];
  for (const piece of piecesOf(sources, tagStart, tagEnd)) {
    if (!piece.editable) continue;
    const prefix = oldTag.slice(0, piece.start - tagStart);
    const suffix = oldTag.slice(piece.end - tagStart);
    if (newTag.length < prefix.length + suffix.length) continue;
    if (!newTag.startsWith(prefix) || !newTag.endsWith(suffix)) continue;
    const replacement = newTag.slice(prefix.length, newTag.length - suffix.length);
    if (replacement.length === 0) continue;
    const first = sources[piece.start]!;
    const last = sources[piece.end - 1]!;
    viable.push({ edit: { start: first.offset, end: last.offset + 1, text: replacement }, arg: first.arg });
  }
  if (viable.length === 0) {
    throw notExpressible(from, newTag, `its tag is assembled as "${from.word.text}"`);
  }
  if (viable.length > 1) {
    throw new RerollError(
      "E_TAG_AMBIGUOUS_SOURCE",
      `Line ${line}: ${newTag} can be written into "${from.word.text}" in more than one place.`,
      { hint: "Edit this line by hand, or simplify the tag's template." },
    );
  }
  return viable[0]!;
}

function notExpressible(from: FromLine, newTag: string, why: string): RerollError {
  return new RerollError(
    "E_TAG_NOT_EXPRESSIBLE",
    `Line ${from.instruction.line}: ${from.ref!.name}:${newTag} cannot be written through this FROM line: ${why}.`,
    { hint: "Change the ARG or the FROM line by hand, or choose a tag of the same shape." },
  );
}

export function applyEdits(source: string, edits: readonly TextEdit[]): string {
  let out = "";
  let pos = 0;
  for (const edit of [...edits].sort((a, b) => a.start - b.start)) {
    out += source.slice(pos, edit.start) + edit.text;
    pos = edit.end;
  }
  return out + source.slice(pos);
}

/**
 * The edited file reduced to what decides its base images: the escape directive, the ARGs
 * before the first FROM, and the FROM lines, each as its own bytes after the edits. A tag
 * edit writes only tag characters ([A-Za-z0-9_.:-]) inside FROM or ARG arguments, so it
 * cannot move an instruction's bounds; parsing this projection resolves every FROM exactly
 * as parsing the whole edited file would, at a fraction of the cost on a large file.
 */
function projectBaseImageInstructions(parsed: ParsedDockerfile, edits: readonly TextEdit[]): string {
  const parts: string[] = parsed.escape === "`" ? ["# escape=`\n"] : [];
  let seenFrom = false;
  for (const instruction of parsed.instructions) {
    const isFrom = instruction.keyword === "FROM";
    if (!isFrom && (instruction.keyword !== "ARG" || seenFrom)) continue;
    seenFrom ||= isFrom;
    const inside = edits.filter((e) => e.start >= instruction.start && e.end <= instruction.end);
    const shifted = inside.map((e) => ({ ...e, start: e.start - instruction.start, end: e.end - instruction.start }));
    parts.push(`${applyEdits(parsed.source.slice(instruction.start, instruction.end), shifted)}\n`);
  }
  return parts.join("");
}

/** Replace, verify, then swap: the edited text must resolve exactly as intended, and nothing else may move. */
function verifyEdits(parsed: ParsedDockerfile, edits: readonly TextEdit[], wanted: ReadonlyMap<FromLine, string>): void {
  const before = analyzeBaseImages(parsed).froms;
  const after = analyzeBaseImages(parseDockerfile(projectBaseImageInstructions(parsed, edits))).froms;
  const wantedByIndex = new Map([...wanted].map(([from, tag]) => [from.stageIndex, `${from.ref!.name}:${tag}`]));
  for (let i = 0; i < before.length; i += 1) {
    const old = before[i]!;
    const now = after[i];
    const expected = wantedByIndex.get(i) ?? old.expanded.text;
    if (now !== undefined && now.expanded.text === expected && now.kind === old.kind) continue;
    const touched = edits.find((e) =>
      old.expanded.sources.some((s) => s !== undefined && s.offset >= e.start && s.offset < Math.max(e.end, e.start + 1)),
    );
    const arg = touched === undefined ? undefined : old.expanded.sources.find((s) => s?.offset === touched.start)?.arg;
    if (!wantedByIndex.has(i) && arg !== undefined) {
      throw new RerollError(
        "E_ARG_SHARED",
        `ARG ${arg} also feeds the FROM on line ${old.instruction.line} (${old.expanded.text}); changing it would change that image too.`,
        { hint: `Give line ${old.instruction.line} its own ARG, or edit the file by hand.` },
      );
    }
    throw new RerollError(
      "E_TAG_NOT_EXPRESSIBLE",
      `Line ${old.instruction.line}: the edit would make it "${now?.expanded.text ?? "(gone)"}" instead of "${expected}".`,
      { hint: "Edit this FROM line by hand; the Dockerfile is left as it was." },
    );
  }
}
