#!/usr/bin/env node
// The published entry point. The TypeScript sources are compiled to dist/ by `npm run build`
// (run automatically by `npm install` / `npm ci` through the "prepare" script).
import("../dist/cli/main.js").then(
  (cli) => cli.run(),
  (error) => {
    if (error?.code === "ERR_MODULE_NOT_FOUND") {
      process.stderr.write("reroll is not built yet: run `npm run build` in the reroll checkout.\n");
      process.exitCode = 2;
    } else throw error;
  },
);
