import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReroll } from "../support/cli.js";
import { docker, removeRepositoryTags, removeStaleTestTags, testName } from "../support/docker.js";
import { tempDir } from "../support/tmp.js";

const BASE_IMAGE = "reroll-local/busybox:latest";

describe("--tags-from local: the daemon's own tags", async () => {
  const dir = await tempDir();
  const repository = testName("base");

  beforeAll(async () => {
    await removeStaleTestTags();
    for (const tag of ["1.18.0", "1.18.3", "1.19.0", "1.19.2", "1.20.0-alpine", "2.0.0", "1.21.0rc1"]) {
      await docker.getImage(BASE_IMAGE).tag({ repo: repository, tag });
    }
  });
  afterAll(() => removeRepositoryTags(repository));

  it.each([
    ["--patch", "1.18.3"],
    ["--minor", "1.19.2"],
    ["--major", "2.0.0"],
  ])("%s picks %s", async (level, expected) => {
    const dockerfile = join(dir, `Dockerfile${level}`);
    await writeFile(dockerfile, `# the app\nFROM ${repository}:1.18.0 AS app\nRUN echo ok\n`);
    const run = await runReroll(["bump", repository, level, "--tags-from", "local", "--dockerfile", dockerfile]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(dockerfile, "utf8")).toBe(`# the app\nFROM ${repository}:${expected} AS app\nRUN echo ok\n`);
  });

  it("no daemon at DOCKER_HOST: exit 2 saying what to run, file unchanged", async () => {
    const dockerfile = join(dir, "Dockerfile.nodaemon");
    const text = `FROM ${repository}:1.18.0\n`;
    await writeFile(dockerfile, text);
    const run = await runReroll(["bump", "--patch", "--tags-from", "local", "--dockerfile", dockerfile], {
      env: { DOCKER_HOST: `unix://${join(dir, "no-daemon.sock")}` },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/E_DOCKER_UNAVAILABLE/);
    expect(run.stderr).toMatch(/npm run setup/);
    expect(await readFile(dockerfile, "utf8")).toBe(text);
  });
});
