import Docker from "dockerode";

/** Tests talk to the daemon directly for setup and checks; reroll's own code goes through its port. */
export const docker = new Docker();

/**
 * Test resources are named `reroll-test-<epoch seconds>-<random>`, so a later run can tell an
 * abandoned one (from a crashed run) by its age and remove it, without touching a run in progress.
 */
export function testName(label: string): string {
  return `reroll-test-${Math.floor(Date.now() / 1000)}-${Math.random().toString(36).slice(2, 8)}-${label}`;
}

const STALE_AFTER_SECONDS = 3600;

/** Removes image tags left by test runs that ended more than an hour ago (crash-safe cleanup). */
export async function removeStaleTestTags(): Promise<void> {
  const now = Date.now() / 1000;
  for (const image of await docker.listImages()) {
    for (const tag of image.RepoTags ?? []) {
      const started = /^reroll-test-(\d+)-/.exec(tag)?.[1];
      if (started !== undefined && now - Number(started) > STALE_AFTER_SECONDS) {
        await docker.getImage(tag).remove({ noprune: true }).catch(() => undefined);
      }
    }
  }
}

/** Removes every tag of `repository` (what one test created). */
export async function removeRepositoryTags(repository: string): Promise<void> {
  for (const image of await docker.listImages()) {
    for (const tag of image.RepoTags ?? []) {
      if (tag.startsWith(`${repository}:`)) await docker.getImage(tag).remove({ noprune: true }).catch(() => undefined);
    }
  }
}
