// Bundles the CLI (dist/cli/main.js, compiled by tsc) with its dependencies into one CommonJS
// file, dist/bundle/reroll.cjs, which bin/reroll.js compiles with a V8 code cache. Every
// reroll command pays Node's module loading at start: resolving and evaluating ~45 of reroll's
// modules, commander and yaml's ~60 one by one took ~45 ms of `reroll status` (bench/), and
// compiling the bundle's code another ~30 ms of `reroll up` (what the code cache saves; see
// bin/reroll.js). One file, not one chunk per command: Node 20 takes a code cache only for a
// script (vm.Script), not for an ES module, and esbuild splits only ES modules. Commands stay
// lazy all the same: the modules a command imports dynamically are evaluated when it runs.
// The library (dist/index.js) stays unbundled. dockerode stays outside: it is loaded only by
// commands that stream (build, logs, events), through the CommonJS loader that defers its
// optional parts (engine/docker-engine.ts).
// The bundle sits in dist/bundle/, the depth of the modules it replaces (dist/<dir>/), so the
// paths they resolve from import.meta.url (package.json, the package root) are the same.
// Its first line names the build (a hash of the rest), which keys the code cache.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const out = join(root, "dist", "bundle", "reroll.cjs");

// what an earlier layout (chunks) left behind would otherwise stay in the package
rmSync(join(root, "dist", "bundle"), { recursive: true, force: true });

/**
 * commander requires node:child_process when it loads, for subcommands that are programs of
 * their own, which reroll has none of: loading it (and the dgram and net parts it pulls in)
 * cost ~7 ms of every command. It gets child_process on first use instead.
 */
const lazyChildProcess = {
  name: "lazy-child-process-for-commander",
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: "child_process", namespace: "lazy-child-process" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "lazy-child-process" }, () => ({
      contents:
        'let real; const load = () => (real ??= require("node:child_process"));\n' +
        "module.exports = new Proxy({}, { get: (_, key) => load()[key], has: (_, key) => key in load() });\n",
      loader: "js",
    }));
  },
};

/**
 * The version is written into the bundle: reading package.json through require() at start was
 * ~2.7 ms of every command. (The unbundled library still reads it; the bundle is remade with
 * dist/ by every `npm run build`, so the two cannot disagree.)
 */
const inlineVersion = {
  name: "inline-version",
  setup(b) {
    const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    b.onLoad({ filter: /[\\/]dist[\\/]cli[\\/]version\.js$/ }, () => ({ contents: `export const VERSION = ${JSON.stringify(version)};\n`, loader: "js" }));
  },
};

await build({
  absWorkingDir: root,
  entryPoints: ["dist/cli/main.js"],
  outfile: out,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  // a script has no import(): the lazy imports of Node's own modules become require() calls
  supported: { "dynamic-import": false },
  external: ["dockerode"],
  // import.meta.url in the sources (package.json, the package root, createRequire) becomes
  // the bundle's own URL
  define: { "import.meta.url": "__rerollModuleUrl" },
  banner: { js: 'const __rerollModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  plugins: [lazyChildProcess, inlineVersion],
  logLevel: "warning",
});

const code = readFileSync(out, "utf8");
if (/\bimport\(/.test(code.replace(/\/\/.*$/gm, ""))) {
  // a dynamic import left in a script would need vm's importModuleDynamically
  throw new Error("dist/bundle/reroll.cjs still contains import(): bundle that module or require() it");
}
const id = createHash("sha256").update(code).digest("hex").slice(0, 20);
writeFileSync(out, `// reroll-bundle ${id}\n${code}`);
