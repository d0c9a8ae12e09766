import semver from "semver";
import { RerollError } from "./errors.js";

/**
 * Tags are compared the way Docker tags are used: `[v]N(.N)*[-suffix]`, where the suffix is
 * a variant label (`alpine3.19`, `slim-bookworm`) that must match exactly. `1.19-alpine`
 * only competes with other `x.y-alpine` tags. Letters glued to the numbers (`3.13.0rc1`)
 * mark a pre-release.
 */

export type BumpLevel = "major" | "minor" | "patch";

export const LEVEL_INDEX: Readonly<Record<BumpLevel, number>> = { major: 0, minor: 1, patch: 2 };

export interface VersionTag {
  readonly raw: string;
  /** "v" or "" */
  readonly prefix: string;
  readonly numbers: readonly number[];
  /** letters glued to the last number (`rc1` in `3.13.0rc1`); "" for a release */
  readonly prerelease: string;
  /** the variant after the first '-' (`alpine3.19`); "" when none */
  readonly suffix: string;
}

const VERSION_TAG_RE = /^(v?)(\d+(?:\.\d+)*)([A-Za-z][A-Za-z0-9]*)?(?:-([A-Za-z0-9][A-Za-z0-9._-]*))?$/;

export function parseVersionTag(tag: string): VersionTag | undefined {
  const match = VERSION_TAG_RE.exec(tag);
  if (match === null) return undefined;
  return {
    raw: tag,
    prefix: match[1] ?? "",
    numbers: (match[2] ?? "").split(".").map(Number),
    prerelease: match[3] ?? "",
    suffix: match[4] ?? "",
  };
}

/** Orders two numeric versions with semver, on the numeric part only (semver reads `-alpine` as a pre-release). */
export function compareNumbers(a: readonly number[], b: readonly number[]): number {
  const head = (n: readonly number[]): string => [n[0] ?? 0, n[1] ?? 0, n[2] ?? 0].join(".");
  const byHead = semver.compare(head(a), head(b));
  if (byHead !== 0) return byHead;
  for (let i = 3; i < Math.max(a.length, b.length); i += 1) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function tagError(code: string, message: string, hint: string): RerollError {
  return new RerollError(code, message, { hint });
}

/** The current tag as a version that can be bumped at `level`, or an error saying why not. */
export function bumpableVersion(tag: string | undefined, level: BumpLevel, image: string): VersionTag {
  if (tag === undefined) {
    throw tagError(
      "E_TAG_MISSING",
      `${image} has no tag, so there is no version to bump.`,
      `Choose the tag explicitly: reroll bump ${image} --to TAG.`,
    );
  }
  const version = parseVersionTag(tag);
  if (version === undefined) {
    throw tagError(
      "E_TAG_NOT_VERSION",
      `${image}:${tag} is not a version tag (like 1.19 or 20.10.0-alpine), so --${level} has nothing to count from.`,
      `Choose the tag explicitly: reroll bump ${image} --to TAG.`,
    );
  }
  if (version.prerelease !== "") {
    throw tagError(
      "E_TAG_PRERELEASE",
      `${image}:${tag} is a pre-release; --${level} only moves between releases.`,
      `Choose the tag explicitly: reroll bump ${image} --to TAG.`,
    );
  }
  if (version.numbers.length <= LEVEL_INDEX[level]) {
    throw tagError(
      "E_TAG_MISSING_COMPONENT",
      `${image}:${tag} has no ${level} component to bump (it has ${version.numbers.length}).`,
      `Bump a level the tag has (${(Object.keys(LEVEL_INDEX) as BumpLevel[])
        .filter((l) => LEVEL_INDEX[l] < version.numbers.length)
        .map((l) => `--${l}`)
        .join(", ")}) or use --to TAG.`,
    );
  }
  return version;
}

/** Increments the component at `level`, zeroes those below, keeps the count, the `v` and the suffix. */
export function bumpSyntactic(version: VersionTag, level: BumpLevel): string {
  const at = LEVEL_INDEX[level];
  const numbers = version.numbers.map((n, i) => (i < at ? n : i === at ? n + 1 : 0));
  return formatVersion(version, numbers);
}

function formatVersion(like: VersionTag, numbers: readonly number[]): string {
  return `${like.prefix}${numbers.join(".")}${like.suffix === "" ? "" : `-${like.suffix}`}`;
}

/**
 * The highest candidate above `current` within `level`: same prefix, suffix and number of
 * components, digits and dots only; patch keeps major.minor, minor keeps major.
 * Returns undefined when nothing newer qualifies.
 */
export function pickCandidate(current: VersionTag, level: BumpLevel, candidates: Iterable<string>): string | undefined {
  const keep = LEVEL_INDEX[level];
  let best: VersionTag | undefined;
  for (const candidate of candidates) {
    const version = parseVersionTag(candidate.trim());
    if (version === undefined || version.prerelease !== "") continue;
    if (version.prefix !== current.prefix || version.suffix !== current.suffix) continue;
    if (version.numbers.length !== current.numbers.length) continue;
    if (version.numbers.slice(0, keep).some((n, i) => n !== current.numbers[i])) continue;
    if (compareNumbers(version.numbers, current.numbers) <= 0) continue;
    if (best === undefined || compareNumbers(version.numbers, best.numbers) > 0) best = version;
  }
  return best?.raw;
}

export interface TagChoice {
  /** the tag to move to; equal to the current tag when nothing newer qualifies */
  readonly tag: string;
  readonly reason: string;
}

/** Chooses the new tag for a level bump: from candidates when given, else syntactically. */
export function chooseTag(
  current: string | undefined,
  level: BumpLevel,
  image: string,
  candidates: readonly string[] | undefined,
): TagChoice {
  const version = bumpableVersion(current, level, image);
  if (candidates === undefined) {
    return { tag: bumpSyntactic(version, level), reason: `next ${level} version` };
  }
  const picked = pickCandidate(version, level, candidates);
  return picked === undefined
    ? { tag: version.raw, reason: `no newer ${level} tag among ${candidates.length} candidates` }
    : { tag: picked, reason: `highest ${level} tag among ${candidates.length} candidates` };
}
