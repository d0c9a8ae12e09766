import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** the directory global-setup.ts makes for the run and removes when it ends; tempDir's go inside it */
export const TEMP_ROOT_ENV = "REROLL_TEST_TMP";

/** the directories tempDir made in this test file */
const made = new Set<string>();

/**
 * A fresh temporary directory, removed after the file's tests (by the afterAll of
 * test/support/cleanup.ts, which every file runs). Safe to call anywhere: inside a test or
 * a beforeAll, where registering a hook of its own is too late and the directory was left
 * behind (8 MB a run for build-failures.test.ts).
 */
export async function tempDir(prefix = "reroll-test-"): Promise<string> {
  const dir = await mkdtemp(join(process.env[TEMP_ROOT_ENV] ?? tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes every directory tempDir made in this file. */
export async function removeTempDirs(): Promise<void> {
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}
