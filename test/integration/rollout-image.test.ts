import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runReroll } from "../support/cli.js";
import { docker, removeProject, testName } from "../support/docker.js";
import { tempDir } from "../support/tmp.js";

/**
 * A service with `image:` and no `build:` runs an image as given (pulled or built elsewhere).
 * reroll pins the image id it found, numbers revisions in its ledger by image id, and rolls
 * and rolls back exactly as for built services.
 */
describe("reroll up with an image-only service", async () => {
  const root = await tempDir();
  const project = testName("image-only");
  const repository = `${project}-app`;
  afterAll(async () => {
    await removeProject(project);
  });

  /** An image that serves `text` with busybox httpd, made without a registry or a build. */
  const makeImage = async (tag: string, text: string): Promise<string> => {
    const container = await docker.createContainer({
      Image: "reroll-local/busybox:latest",
      Cmd: ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && echo ok > /www/health`],
      Labels: { "dev.reroll.project": project },
    });
    await container.start();
    await container.wait();
    const committed = (await container.commit({ repo: repository, tag, changes: ['CMD ["httpd", "-f", "-p", "80", "-h", "/www"]'] })) as { Id: string };
    await container.remove();
    return committed.Id;
  };

  const dir = join(root, project);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "compose.yaml"),
    [
      "services:",
      "  app:",
      `    image: ${repository}:current`,
      "    stop_grace_period: 1s",
      "    healthcheck:",
      '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/health"]',
      "      interval: 500ms",
      "      retries: 3",
      "    deploy:",
      "      replicas: 2",
      "      update_config: { monitor: 500ms }",
      "      rollback_config: { monitor: 500ms }",
      "",
    ].join("\n"),
  );
  const reroll = (args: readonly string[]) => runReroll([...args, "-p", project], { cwd: dir });
  const running = async () =>
    (await docker.listContainers({ filters: JSON.stringify({ label: [`dev.reroll.project=${project}`, "dev.reroll.slot"] }) })).map((c) => ({
      revision: Number(c.Labels["dev.reroll.revision"]),
      imageId: c.ImageID,
    }));

  it("a missing image is refused with exit 2, naming it, and nothing starts", async () => {
    const run = await reroll(["up", "--output", "plain"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`The image ${repository}:current of service app is not on the Docker daemon`));
    expect(await running()).toEqual([]);
  });

  it("rolls by image id: a moved tag is a new revision, the same id is not, rollback returns to the first", async () => {
    const first = await makeImage("a", "first");
    const second = await makeImage("b", "second");
    await docker.getImage(first).tag({ repo: repository, tag: "current" });
    expect((await reroll(["up"])).code).toBe(0);
    expect(await running()).toEqual([
      { revision: 1, imageId: first },
      { revision: 1, imageId: first },
    ]);

    // the tag moves: reroll pins the new image id, not the tag
    await docker.getImage(second).tag({ repo: repository, tag: "current" });
    const up = await reroll(["up", "--output", "plain"]);
    expect(up.code, up.stderr).toBe(0);
    expect(await running()).toEqual([
      { revision: 2, imageId: second },
      { revision: 2, imageId: second },
    ]);

    // the same id again changes nothing
    const again = await reroll(["up", "--dry-run"]);
    expect(again.stdout).toMatch(/nothing to do/);

    // a revision that never existed: exit 2 naming the ones that do, and nothing changes
    const typo = await reroll(["rollback", "--to", "9", "--output", "plain"]);
    expect(typo.code, typo.stderr).toBe(2);
    expect(typo.stderr).toMatch(/app has no revision r9; its revisions are r1, r2\./);
    expect(await running()).toEqual([
      { revision: 2, imageId: second },
      { revision: 2, imageId: second },
    ]);

    const back = await reroll(["rollback", "--output", "plain"]);
    expect(back.code, back.stderr).toBe(0);
    expect(await running()).toEqual([
      { revision: 1, imageId: first },
      { revision: 1, imageId: first },
    ]);
    const history = JSON.parse((await reroll(["history", "app", "--output", "json"])).stdout) as { revisions: { revision: number; current: boolean; kept: boolean; imageId: string; baseImages: string[] }[] };
    expect(history.revisions.map((r) => [r.revision, r.current])).toEqual(
      expect.arrayContaining([
        [1, true],
        [2, false],
      ]),
    );
    // images reroll did not build are still on the daemon, named by their tags
    expect(history.revisions.find((r) => r.revision === 1)).toMatchObject({ kept: true, imageId: first, baseImages: [`${repository}:a`] });
    expect(history.revisions.find((r) => r.revision === 2)).toMatchObject({ kept: true, imageId: second });
    expect(history.revisions.find((r) => r.revision === 2)!.baseImages.sort()).toEqual([`${repository}:b`, `${repository}:current`]);
  });

  it("up --bump edits the tag of image: (those bytes only) and rolls it; an image the daemon lacks leaves the file byte-identical", async () => {
    const file = join(dir, "compose.yaml");
    const before = await readFile(file);
    const third = await makeImage("c", "third");
    const dry = await reroll(["up", "--bump", `${repository}:c`, "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`services.app.image ${repository}:current → ${repository}:c (a dry run writes nothing)`);
    expect((await readFile(file)).equals(before)).toBe(true);

    const bumped = await reroll(["up", "--bump", `${repository}:c`, "--output", "plain"]);
    expect(bumped.code, bumped.stderr).toBe(0);
    expect(await readFile(file, "utf8")).toBe(before.toString("utf8").replace(`${repository}:current`, `${repository}:c`));
    expect((await running()).map((r) => r.imageId)).toEqual([third, third]);

    const edited = await readFile(file);
    const missing = await reroll(["up", "--bump", `${repository}:absent`, "--output", "plain"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/is not on the Docker daemon\. The --bump edit of \S*compose\.yaml was reverted/);
    expect((await readFile(file)).equals(edited)).toBe(true);
    expect((await running()).map((r) => r.imageId)).toEqual([third, third]);
  });
});
