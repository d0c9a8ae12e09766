import { chmod, lstat, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runReroll } from "../support/cli.js";
import { tempDir } from "../support/tmp.js";

/** The built binary, as scripts call it. */
describe("reroll bump, the binary", async () => {
  const dir = await tempDir();
  let n = 0;
  const fresh = async (text: string, mode = 0o644): Promise<string> => {
    const file = join(dir, `Dockerfile.${(n += 1)}`);
    await writeFile(file, text);
    await chmod(file, mode);
    return file;
  };

  it("edits in place atomically, keeping the file's mode, and says what changed", async () => {
    const file = await fresh("FROM nginx:1.18\nEXPOSE 80\n", 0o640);
    const before = await stat(file);
    const name = file.slice(dir.length + 1);
    const run = await runReroll(["bump", "nginx:1.19", "--dockerfile", name, "--output", "plain"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`${name}:1 changed nginx:1.18 → nginx:1.19\n`);
    expect(await readFile(file, "utf8")).toBe("FROM nginx:1.19\nEXPOSE 80\n");
    const after = await stat(file);
    expect(after.mode & 0o7777).toBe(0o640);
    expect(after.ino, "replaced by rename, not rewritten in place").not.toBe(before.ino);
    expect((await readdir(dir)).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  it("--dry-run prints a unified diff and writes nothing", async () => {
    const text = "FROM golang:1.21.5 AS build\nRUN go build\nFROM alpine:3.18\n";
    const file = await fresh(text);
    const before = await stat(file);
    const run = await runReroll(["bump", "golang", "--patch", "--dry-run", "--dockerfile", file]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("-FROM golang:1.21.5 AS build\n+FROM golang:1.21.6 AS build\n");
    expect(run.stdout).toMatch(/^--- a\/.*\n\+\+\+ b\/.*\n@@ -1,3 \+1,3 @@\n/);
    expect(await readFile(file, "utf8")).toBe(text);
    expect((await stat(file)).mtimeMs).toBe(before.mtimeMs);
  });

  it("--output json prints {file, image, changes, unchanged}", async () => {
    const file = await fresh("ARG V=1.18\nFROM nginx:$V\n");
    const run = await runReroll(["bump", "nginx", "--to", "1.19", "--dockerfile", file, "--output", "json"]);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ image: "nginx", unchanged: false, changes: [{ line: 1, from: "nginx:1.18", to: "nginx:1.19", arg: "V" }] });
    expect(typeof out["file"]).toBe("string");
  });

  it("--tags-from - reads candidates from standard input", async () => {
    const file = await fresh("FROM node:20.10.0-alpine3.18\n");
    const run = await runReroll(["bump", "--minor", "--tags-from", "-", "--dockerfile", file], {
      stdin: "20.10.0-alpine3.18\n20.11.1-alpine3.18\n# comment\n20.12.0-alpine3.19\n21.0.0-alpine3.18\n",
    });
    expect(run.code, run.stderr).toBe(0);
    expect(await readFile(file, "utf8")).toBe("FROM node:20.11.1-alpine3.18\n");
  });

  it("writes through a symlinked Dockerfile, keeping the link", async () => {
    const target = await fresh("FROM nginx:1.18\n");
    const link = join(dir, "Dockerfile.link");
    await symlink(target, link);
    const run = await runReroll(["bump", "nginx:1.19", "--dockerfile", link]);
    expect(run.code, run.stderr).toBe(0);
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readFile(target, "utf8")).toBe("FROM nginx:1.19\n");
  });

  it("no Dockerfile: exit 2 naming the path and the flag to use", async () => {
    const run = await runReroll(["bump", "nginx:1.19", "--dockerfile", join(dir, "missing")]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(join(dir, "missing"));
    expect(run.stderr).toMatch(/--dockerfile PATH/);
  });

  it("an error names the line and leaves the file byte-identical", async () => {
    const text = "ARG V=1.18\r\nFROM nginx:${V}-alpine\r\n";
    const file = await fresh(text);
    const run = await runReroll(["bump", "nginx", "--to", "1.19", "--dockerfile", file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/Line 2/);
    expect(run.stderr).toMatch(/E_TAG_NOT_EXPRESSIBLE/);
    expect(await readFile(file, "latin1")).toBe(text);
  });
});
