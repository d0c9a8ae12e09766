import { copyFile, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCliInProcess } from "../support/cli.js";
import { tempDir } from "../support/tmp.js";

/**
 * The fixture corpus: each folder holds a Dockerfile, the `reroll bump` arguments, and either
 * the exact bytes expected after the edit or the error code (with the file byte-identical).
 */
const CORPUS = fileURLToPath(new URL("../fixtures/bump/", import.meta.url));

interface Case {
  readonly note: string;
  readonly args: string[];
  readonly error?: string;
  readonly tagsFile?: string;
}

const names = (await readdir(CORPUS)).sort();

describe("reroll bump fixture corpus", async () => {
  const work = await tempDir();

  it.each(names)("%s", async (name) => {
    const dir = join(CORPUS, name);
    const spec = JSON.parse(await readFile(join(dir, "case.json"), "utf8")) as Case;
    const caseDir = join(work, name);
    await import("node:fs/promises").then((fs) => fs.mkdir(caseDir));
    const dockerfile = join(caseDir, "Dockerfile");
    await copyFile(join(dir, "Dockerfile"), dockerfile);
    const before = await readFile(dockerfile);
    const beforeStat = await stat(dockerfile);
    const args = spec.args.map((a) => (a === spec.tagsFile ? join(dir, a) : a));

    const run = await runCliInProcess(["bump", ...args, "--dockerfile", dockerfile, "--output", "json"]);
    const after = await readFile(dockerfile);
    const leftovers = (await readdir(caseDir)).filter((f) => f !== "Dockerfile");
    expect(leftovers, "no temporary file is left beside the Dockerfile").toEqual([]);

    if (spec.error !== undefined) {
      expect(run.code, run.stdout + run.stderr).toBe(2);
      const out = JSON.parse(run.stdout) as { error: { code: string; message: string; hint?: string } };
      expect(out.error.code).toBe(spec.error);
      expect(out.error.hint, "every error says what to do").toBeTruthy();
      expect(after.equals(before), "the file is byte-identical after an error").toBe(true);
      return;
    }
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const expected = await readFile(join(dir, "expected.Dockerfile"));
    expect(after.toString("latin1")).toBe(expected.toString("latin1"));
    expect(after.equals(expected)).toBe(true);
    const result = JSON.parse(run.stdout) as { unchanged: boolean; changes: unknown[] };
    if (expected.equals(before)) {
      expect(result.unchanged).toBe(true);
      const afterStat = await stat(dockerfile);
      expect(afterStat.ino, "an unchanged file is not even rewritten").toBe(beforeStat.ino);
      expect(afterStat.mtimeMs).toBe(beforeStat.mtimeMs);
    } else {
      expect(result.unchanged).toBe(false);
      expect(result.changes.length).toBeGreaterThan(0);
    }
  });
});
