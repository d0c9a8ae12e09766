import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { unifiedDiff } from "../core/diff.js";
import { applyEdits, findBumpTargets, planBump, type BumpChange, type TagSpec } from "../core/dockerfile/plan-bump.js";
import { parseDockerfile } from "../core/dockerfile/parse.js";
import { RerollError } from "../core/errors.js";
import { parseImageRef } from "../core/image-ref.js";
import type { BumpLevel } from "../core/tag-policy.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import type { TagSource } from "./tag-sources.js";

export const DEFAULT_DOCKERFILE = "Dockerfile";

export interface BumpOptions {
  /** path of the Dockerfile to edit */
  readonly dockerfile: string;
  /** repository to bump; the file's only external base image when omitted */
  readonly image?: string;
  /** only the FROM line declaring this stage (name or index) */
  readonly stage?: string;
  /** exactly one of `to` and `level` */
  readonly to?: string;
  readonly level?: BumpLevel;
  /** candidate tags for a level bump; without it the bump is syntactic */
  readonly tags?: TagSource;
  /** compute and return the diff, write nothing */
  readonly dryRun?: boolean;
}

export interface BumpResult {
  readonly file: string;
  readonly image: string;
  readonly changes: readonly BumpChange[];
  readonly unchanged: boolean;
  /** why nothing changed, when unchanged */
  readonly reason?: string;
  /** unified diff of the change, for a dry run ("" when unchanged) */
  readonly diff?: string;
  /** whether the file was written */
  readonly written: boolean;
}

/**
 * Changes the tag of a base image in a Dockerfile. (The Dockerfile is read and written with
 * synchronous calls: it is small, and the promise-based file API's first use costs more
 * CPU than the whole edit.) Only the tag's bytes change; the write is
 * atomic and keeps the file's mode; any error leaves the file byte-identical.
 */
export async function bump(options: BumpOptions): Promise<BumpResult> {
  let image = options.image;
  let to = options.to;
  if (image !== undefined) {
    const ref = parseImageRef(image, "image");
    if (ref.digest !== undefined) {
      throw new RerollError("E_USAGE", `reroll bump takes a tag, not a digest ("${image}").`, {
        hint: "Use reroll bump IMAGE --to TAG.",
      });
    }
    if (ref.tag !== undefined) {
      if (to !== undefined || options.level !== undefined) {
        throw new RerollError("E_USAGE", `"${image}" already names a tag; do not also pass --to or a level.`, {
          hint: `Use reroll bump ${ref.name}:${ref.tag}, or reroll bump ${ref.name} --patch.`,
        });
      }
      image = ref.name;
      to = ref.tag;
    }
  }
  if ((to === undefined) === (options.level === undefined)) {
    throw new RerollError("E_USAGE", "Say which tag to move to: exactly one of --to TAG, --patch, --minor, --major.", {
      hint: "For example: reroll bump nginx --to 1.19, or reroll bump nginx:1.19, or reroll bump nginx --minor.",
    });
  }

  let bytes: Buffer;
  try {
    bytes = readFileSync(options.dockerfile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RerollError(
      "E_DOCKERFILE_NOT_FOUND",
      code === "ENOENT" ? `There is no Dockerfile at ${options.dockerfile}.` : `Cannot read ${options.dockerfile}.`,
      { hint: "Point at it with --dockerfile PATH.", cause: error },
    );
  }
  const source = bytes.toString("latin1");
  const parsed = parseDockerfile(source);
  const targets = findBumpTargets(parsed, image, options.stage);

  let spec: TagSpec;
  if (to !== undefined) spec = { to };
  else {
    const level = options.level!;
    const ref = targets.froms[0]!.ref!;
    const candidates = options.tags === undefined ? undefined : await options.tags(ref);
    spec = candidates === undefined ? { level } : { level, candidates };
  }
  const plan = planBump(parsed, targets, spec);
  const file = relative(process.cwd(), options.dockerfile) || options.dockerfile;

  if (plan.edits.length === 0) {
    return {
      file,
      image: plan.image,
      changes: [],
      unchanged: true,
      ...(plan.unchangedReason === undefined ? {} : { reason: plan.unchangedReason }),
      ...(options.dryRun === true ? { diff: "" } : {}),
      written: false,
    };
  }
  const edited = applyEdits(source, plan.edits);
  if (options.dryRun === true) {
    const diff = unifiedDiff(file, source, edited);
    return { file, image: plan.image, changes: plan.changes, unchanged: false, diff, written: false };
  }
  await writeFileAtomic(options.dockerfile, Buffer.from(edited, "latin1"));
  return { file, image: plan.image, changes: plan.changes, unchanged: false, written: true };
}
