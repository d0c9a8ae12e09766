import { describe, expect, it } from "vitest";
import { RerollError } from "../../src/core/errors.js";
import { bumpSyntactic, chooseTag, parseVersionTag, pickCandidate, type BumpLevel } from "../../src/core/tag-policy.js";

describe("syntactic bumps keep the tag's shape", () => {
  it.each<[string, BumpLevel, string]>([
    ["1.18", "minor", "1.19"],
    ["1.18", "major", "2.0"],
    ["1.19.9", "patch", "1.19.10"],
    ["20.10.0-alpine3.18", "patch", "20.10.1-alpine3.18"],
    ["20.10.0-alpine3.18", "minor", "20.11.0-alpine3.18"],
    ["20.10.0-alpine3.18", "major", "21.0.0-alpine3.18"],
    ["v2.3.4", "minor", "v2.4.0"],
    ["20-alpine", "major", "21-alpine"],
    ["3.11.4-slim-bookworm", "patch", "3.11.5-slim-bookworm"],
    ["1.2.3.4", "patch", "1.2.4.0"],
  ])("%s --%s → %s", (tag, level, expected) => {
    expect(bumpSyntactic(parseVersionTag(tag)!, level)).toBe(expected);
  });
});

describe("candidates: same prefix, suffix and component count, within the level", () => {
  const pool = [
    "1.19.0", "1.19.1", "1.19.10", "1.19.2", "1.20.0", "1.20.1", "2.0.0", "1.19.3-alpine", "1.19",
    "1.21.0rc1", "v1.19.11", "latest", "stable", "1.19.4-alpine", "1.19.11-rc1",
  ];
  it.each<[string, BumpLevel, string | undefined]>([
    ["1.19.1", "patch", "1.19.10"],
    ["1.19.1", "minor", "1.20.1"],
    ["1.19.1", "major", "2.0.0"],
    ["2.0.0", "major", undefined],
    ["1.19.3-alpine", "patch", "1.19.4-alpine"],
    ["1.19.3-alpine", "minor", "1.19.4-alpine"],
    ["1.19.4-alpine", "minor", undefined],
    ["v1.19.0", "patch", "v1.19.11"],
    ["1.19.10", "patch", undefined],
  ])("%s --%s picks %s", (current, level, expected) => {
    expect(pickCandidate(parseVersionTag(current)!, level, pool)).toBe(expected);
  });

  it("numbers are compared as numbers, not text", () => {
    expect(pickCandidate(parseVersionTag("1.9")!, "minor", ["1.10", "1.9", "1.2"])).toBe("1.10");
  });

  it("nothing newer leaves the tag as it is, with the reason", () => {
    expect(chooseTag("1.19.10", "patch", "nginx", ["1.19.1", "1.19.9"])).toEqual({
      tag: "1.19.10",
      reason: "no newer patch tag among 2 candidates",
    });
  });
});

describe("tags that cannot be bumped say why", () => {
  it.each<[string | undefined, BumpLevel, string]>([
    ["latest", "patch", "E_TAG_NOT_VERSION"],
    ["bookworm", "major", "E_TAG_NOT_VERSION"],
    ["3.13.0rc1", "patch", "E_TAG_PRERELEASE"],
    ["20-alpine", "minor", "E_TAG_MISSING_COMPONENT"],
    ["1.19", "patch", "E_TAG_MISSING_COMPONENT"],
    [undefined, "minor", "E_TAG_MISSING"],
  ])("%s --%s → %s", (tag, level, code) => {
    let thrown: unknown;
    try {
      chooseTag(tag, level, "img", undefined);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(RerollError);
    expect((thrown as RerollError).code).toBe(code);
    expect((thrown as RerollError).hint).toMatch(/--to TAG|--major/);
  });
});
