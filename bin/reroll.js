#!/usr/bin/env node
// The published entry point. The TypeScript sources are compiled to dist/ and the CLI bundled
// into dist/cli/reroll.mjs by `npm run build` (run by `npm install` / `npm ci` through the
// "prepare" script; see scripts/bundle-cli.mjs).
import("../dist/bundle/reroll.mjs").then(
  (cli) => cli.run(),
  (error) => {
    if (error?.code === "ERR_MODULE_NOT_FOUND") {
      process.stderr.write("reroll is not built yet: run `npm run build` in the reroll checkout.\n");
      process.exitCode = 2;
    } else throw error;
  },
);
