// Bundles the CLI (dist/cli/main.js, compiled by tsc) with its dependencies into
// dist/bundle/reroll.mjs and one chunk per command, which bin/reroll.js loads. Every reroll
// command pays Node's module loading at start: resolving and evaluating ~45 of reroll's
// modules, commander and yaml's ~60 one by one took ~45 ms of `reroll status` (bench/).
// The library (dist/index.js) stays unbundled. dockerode stays outside: it is loaded only by
// commands that stream (build, logs, events), through the CommonJS loader that defers its
// optional parts (engine/docker-engine.ts).
// The bundle sits in dist/bundle/, the depth of the modules it replaces (dist/<dir>/), so the
// paths they resolve from import.meta.url (package.json, the package root) are the same.
import { build } from "esbuild";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));

// chunk names carry a content hash: the previous build's chunks would otherwise stay behind
rmSync(join(root, "dist", "bundle"), { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: ["dist/cli/main.js"],
  outdir: "dist/bundle",
  entryNames: "reroll",
  chunkNames: "[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  // a chunk per command (they are imported when run), so `reroll --version` does not parse `reroll up`
  splitting: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["dockerode"],
  // bundled CommonJS modules (commander, yaml) call require() for Node's own modules
  banner: { js: 'import { createRequire as __rerollCreateRequire } from "node:module"; const require = __rerollCreateRequire(import.meta.url);' },
  logLevel: "warning",
});
