import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TEMP_ROOT_ENV } from "./tmp.js";

/**
 * Every test run goes through the project's one setup script: it installs and starts a
 * Docker daemon when none answers and prepares the local base images. If it fails, the run
 * fails loudly here: tests that need Docker are never skipped.
 */
export default async function setup(): Promise<() => void> {
  const script = fileURLToPath(new URL("../../scripts/setup-docker.sh", import.meta.url));
  try {
    execFileSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"], timeout: 600_000 });
  } catch (error) {
    throw new Error(`scripts/setup-docker.sh failed, so the real-daemon tests cannot run: ${(error as Error).message}`);
  }
  const { removeStaleTestProjects, removeStaleTestTags } = await import("./docker.js");
  await removeStaleTestProjects();
  await removeStaleTestTags();
  // Every test's temporary directory is made in this one, which goes when the run ends: a
  // file whose tests a -t filter skips runs no afterAll, and what it made while collected
  // would stay. The workers (forks) inherit the variable.
  const root = mkdtempSync(join(tmpdir(), "reroll-test-run-"));
  process.env[TEMP_ROOT_ENV] = root;
  return () => rmSync(root, { recursive: true, force: true });
}
