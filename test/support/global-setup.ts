import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Every test run goes through the project's one setup script: it installs and starts a
 * Docker daemon when none answers and prepares the local base images. If it fails, the run
 * fails loudly here: tests that need Docker are never skipped.
 */
export default async function setup(): Promise<void> {
  const script = fileURLToPath(new URL("../../scripts/setup-docker.sh", import.meta.url));
  try {
    execFileSync("bash", [script], { stdio: ["ignore", "inherit", "inherit"], timeout: 600_000 });
  } catch (error) {
    throw new Error(`scripts/setup-docker.sh failed, so the real-daemon tests cannot run: ${(error as Error).message}`);
  }
  const { removeStaleTestProjects, removeStaleTestTags } = await import("./docker.js");
  await removeStaleTestProjects();
  await removeStaleTestTags();
}
