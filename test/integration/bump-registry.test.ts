import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseImageRef } from "../../src/core/image-ref.js";
import { listRegistryTags } from "../../src/registry/tags.js";
import { runReroll } from "../support/cli.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { tempDir } from "../support/tmp.js";

const TAGS = ["1.18.0", "1.18.1", "1.18.2", "1.19.0", "1.19.5", "1.20.0-alpine", "1.21.0rc1", "2.0.0", "latest", "1.19.10", "1.18.10", "1.20.1"];

describe("--tags-from registry against a real registry on 127.0.0.1", async () => {
  const dir = await tempDir();
  let open: TestRegistry;
  let locked: TestRegistry;
  const auth = { username: "ci-bot", password: "s3cret-pass" };

  beforeAll(async () => {
    open = await startRegistry(join(dir, "open"));
    locked = await startRegistry(join(dir, "locked"), auth);
    for (const tag of TAGS) await open.push("team/app", tag);
    for (const tag of ["3.1.0", "3.2.0", "3.2.1"]) await locked.push("team/private", tag);
  });
  afterAll(async () => {
    await open?.stop();
    await locked?.stop();
  });

  it("follows Link pagination to the last page", async () => {
    const tags = await listRegistryTags(parseImageRef(`${open.host}/team/app`), { pageSize: 5 });
    expect([...tags].sort()).toEqual([...TAGS].sort());
  });

  it("bump --minor picks the highest tag within the major, from the registry", async () => {
    const work = join(dir, "minor");
    await mkdir(work);
    const dockerfile = join(work, "Dockerfile");
    await writeFile(dockerfile, `FROM ${open.host}/team/app:1.18.1 AS app\nCMD ["app"]\n`);
    const run = await runReroll(["bump", `${open.host}/team/app`, "--minor", "--tags-from", "registry", "--dockerfile", dockerfile]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(dockerfile, "utf8")).toBe(`FROM ${open.host}/team/app:1.20.1 AS app\nCMD ["app"]\n`);
    expect(run.stdout).toContain("1.18.1 → ");
  });

  it("a registry that wants a login and gets none: exit 2, file unchanged", async () => {
    const work = join(dir, "nologin");
    await mkdir(work);
    const dockerfile = join(work, "Dockerfile");
    const text = `FROM ${locked.host}/team/private:3.1.0\n`;
    await writeFile(dockerfile, text);
    const run = await runReroll(["bump", "--minor", "--tags-from", "registry", "--dockerfile", dockerfile], {
      env: { DOCKER_CONFIG: join(work, "no-such-config") },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/E_REGISTRY_AUTH/);
    expect(run.stderr).toMatch(/docker login/);
    expect(await readFile(dockerfile, "utf8")).toBe(text);
  });

  it("uses the docker CLI's stored login (config.json auths)", async () => {
    const work = join(dir, "login");
    const configDir = join(work, "docker-config");
    await mkdir(configDir, { recursive: true });
    await writeFile(
      join(configDir, "config.json"),
      JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString("base64") } } }),
    );
    const dockerfile = join(work, "Dockerfile");
    await writeFile(dockerfile, `FROM ${locked.host}/team/private:3.1.0\n`);
    const run = await runReroll(["bump", "--minor", "--tags-from", "registry", "--dockerfile", dockerfile, "--output", "json"], {
      env: { DOCKER_CONFIG: configDir },
    });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ changes: [{ line: 1, from: `${locked.host}/team/private:3.1.0`, to: `${locked.host}/team/private:3.2.1` }] });
    expect(run.stdout + run.stderr).not.toContain(auth.password);
  });

  it("a repository the registry does not have: exit 2 naming it", async () => {
    const work = join(dir, "missing");
    await mkdir(work);
    const dockerfile = join(work, "Dockerfile");
    await writeFile(dockerfile, `FROM ${open.host}/team/nope:1.0.0\n`);
    const run = await runReroll(["bump", "--patch", "--tags-from", "registry", "--dockerfile", dockerfile]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/E_REGISTRY_NOT_FOUND|E_REGISTRY_RESPONSE/);
    expect(run.stderr).toContain("team/nope");
  });
});
