import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    // removes each file's temporary directories once its tests are done
    setupFiles: ["test/support/cleanup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One file at a time: the real-daemon tests share two cores with the daemon, and
    // readiness gates with second-scale healthchecks must not fail for contention.
    fileParallelism: false,
  },
});
