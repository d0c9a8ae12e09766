import { describe, expect, it } from "vitest";
import { bumpComposeImages } from "../../src/bump/compose-image.js";
import { parseImageRef } from "../../src/core/image-ref.js";

/** `up --bump` on services that run an image as is: the tag in their image: value, and nothing else. */
describe("bumpComposeImages", () => {
  const to = parseImageRef("nginx:1.19");
  const run = (source: string, services: string[], ref = to) => bumpComposeImages(source, "compose.yaml", services, ref);

  it("changes only the tag's bytes: quotes, comments, other services and spacing stay", async () => {
    const source = [
      "# the front",
      "services:",
      "  web:",
      '    image: "nginx:1.18"   # pinned on purpose',
      "    ports: ['8080:80']",
      "  edge:",
      "    image: 'docker.io/library/nginx:1.18-alpine'",
      "  cache:",
      "    image: redis:7",
      "  bare:",
      "    image: nginx",
      "",
    ].join("\n");
    const { text, edits } = await run(source, ["web", "edge", "bare"]);
    expect(text).toBe(source.replace('"nginx:1.18"', '"nginx:1.19"').replace("nginx:1.18-alpine", "nginx:1.19").replace("image: nginx\n", "image: nginx:1.19\n"));
    expect(edits).toEqual([
      { service: "web", from: "nginx:1.18", to: "nginx:1.19" },
      { service: "edge", from: "docker.io/library/nginx:1.18-alpine", to: "docker.io/library/nginx:1.19" },
      { service: "bare", from: "nginx", to: "nginx:1.19" },
    ]);
  });

  it("a service already on the tag is no edit", async () => {
    const source = "services:\n  web:\n    image: nginx:1.19\n";
    expect(await run(source, ["web"])).toEqual({ text: source, edits: [] });
  });

  it.each([
    ["a variable", "services:\n  web:\n    image: nginx:${TAG}\n", /comes from variables/],
    ["a digest", "services:\n  web:\n    image: nginx:1.18@sha256:" + "a".repeat(64) + "\n", /pinned by digest/],
    ["an alias", "x-img: &img nginx:1.18\nservices:\n  web:\n    image: *img\n", /not written in the service/],
    ["a merge key", "x-base: &base\n  image: nginx:1.18\nservices:\n  web:\n    <<: *base\n", /not written in the service/],
    ["an escape", 'services:\n  web:\n    image: "nginx:1.\\x318"\n', /not plain text/],
  ])("refuses %s, naming the key and what to do", async (_what, source, why) => {
    const failure = run(source, ["web"]);
    await expect(failure).rejects.toMatchObject({ code: "E_BUMP_UNSUPPORTED", message: expect.stringMatching(why) });
    await expect(failure).rejects.toThrow(/--bump cannot edit services\.web\.image in compose\.yaml/);
  });
});
