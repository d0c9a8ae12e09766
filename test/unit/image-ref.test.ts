import { describe, expect, it } from "vitest";
import { familiarName, parseImageRef, repositoryKey, tryParseImageRef } from "../../src/core/image-ref.js";

describe("image references, normalised as Docker does", () => {
  it.each([
    ["nginx", "docker.io/library/nginx", "nginx"],
    ["library/nginx", "docker.io/library/nginx", "nginx"],
    ["docker.io/library/nginx", "docker.io/library/nginx", "nginx"],
    ["index.docker.io/library/nginx", "docker.io/library/nginx", "nginx"],
    ["docker.io/nginx", "docker.io/library/nginx", "nginx"],
    ["bitnami/nginx", "docker.io/bitnami/nginx", "bitnami/nginx"],
    ["localhost:5000/nginx", "localhost:5000/nginx", "localhost:5000/nginx"],
    ["localhost/nginx", "localhost/nginx", "localhost/nginx"],
    ["[::1]:5000/tools/x", "[::1]:5000/tools/x", "[::1]:5000/tools/x"],
    ["quay.io/org/app", "quay.io/org/app", "quay.io/org/app"],
    ["gcr.io/distroless/static-debian12", "gcr.io/distroless/static-debian12", "gcr.io/distroless/static-debian12"],
    ["Registry/app", "Registry/app", "Registry/app"],
  ])("%s → %s", (text, key, familiar) => {
    const ref = parseImageRef(text);
    expect(repositoryKey(ref)).toBe(key);
    expect(familiarName(ref)).toBe(familiar);
  });

  it.each([
    ["nginx:1.19", "1.19", undefined],
    ["localhost:5000/nginx:1.19-alpine", "1.19-alpine", undefined],
    ["localhost:5000/nginx", undefined, undefined],
    ["[::1]:5000/tools/x:2.0", "2.0", undefined],
    ["nginx:1.18@sha256:" + "a".repeat(64), "1.18", "sha256:" + "a".repeat(64)],
    ["nginx@sha256:" + "b".repeat(64), undefined, "sha256:" + "b".repeat(64)],
  ])("%s has tag %s and digest %s", (text, tag, digest) => {
    const ref = parseImageRef(text);
    expect(ref.tag).toBe(tag);
    expect(ref.digest).toBe(digest);
    if (tag !== undefined) expect(text.slice(...ref.tagRange!)).toBe(tag);
  });

  it.each([
    ["Nginx", /lowercase/],
    ["nginx:", /not a valid tag/],
    ["nginx:-x", /not a valid tag/],
    ["nginx@sha256:abc", /not a valid digest/],
    ["", /empty/],
    ["a//b", /not a valid repository name component/],
  ])("%s is refused", (text, reason) => {
    const ref = tryParseImageRef(text);
    expect(typeof ref).toBe("string");
    expect(ref).toMatch(reason);
  });
});
