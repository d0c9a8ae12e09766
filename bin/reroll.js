#!/bin/sh
':' //; # A POSIX sh launcher and a CommonJS script in one file: sh runs the lines that begin ':' //;
':' //; # (JavaScript reads each as a string and a comment), then hands this same file to node.
':' //; #
':' //; # Node 20 reads and parses every certificate named by NODE_EXTRA_CA_CERTS when it starts,
':' //; # before any JavaScript runs: 80-150 ms of every command on a machine that sets it
':' //; # (nodejs/node#40524; bench/). reroll needs those certificates only to ask a registry for
':' //; # tags (bump, up --bump); the Docker daemon over TLS brings its own CA (DOCKER_CERT_PATH).
':' //; # So for other commands node starts without the variable, and the script below puts it
':' //; # back into the environment at once, for any process reroll starts.
':' //; registry=no; case " $* " in *" bump "* | *" --bump"*) registry=yes ;; esac
':' //; if [ -n "$NODE_EXTRA_CA_CERTS" ] && [ "$registry" = no ]; then
':' //;   REROLL_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export REROLL_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS
':' //; fi
':' //; exec node "$0" "$@"

// The published entry point. The TypeScript sources are compiled to dist/ and the CLI bundled
// into dist/bundle/reroll.cjs by `npm run build` (run by `npm install` / `npm ci` through the
// "prepare" script; see scripts/bundle-cli.mjs). `node bin/reroll.js` works as well: it skips
// the launcher above.
//
// The bundle is compiled with a V8 code cache: the bytecode of the functions an earlier run of
// the same command compiled, kept in the user's cache directory (REROLL_CODE_CACHE=0 turns it
// off). Compiling reroll's, commander's and yaml's code was ~25 ms of `reroll up` before its
// first request to the daemon (bench/). One cache per command, because reading a cache costs
// in proportion to its size (~2 ms per 100 kB) and `reroll --version` needs a fraction of
// what `reroll up` does. It is keyed by the bundle's build id (its first line) and Node's
// version and architecture; V8 itself rejects one made under other flags, which is then made
// again. V8 trusts the bytes of a cache it takes (one corrupt on disk crashed node in a test),
// so each file begins with a CRC-32 of the rest, checked first (~1 ms), and the Node binary's
// size and time are in the key as well as its version. A run that did not exit 0 (a typo in
// the Compose file, say) compiled less than a real one does: its cache is kept as partial
// and replaced by the next run that exits 0.
//
// CommonJS (bin/package.json), not an ES module: Node starts a script through its ESM loader
// ~8 ms slower (bench/).
"use strict";
const { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { homedir } = require("node:os");
const { dirname, join } = require("node:path");
const { Script } = require("node:vm");
const { crc32 } = require("node:zlib");

if (process.env.REROLL_DEFERRED_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.REROLL_DEFERRED_CA_CERTS;
  delete process.env.REROLL_DEFERRED_CA_CERTS;
}

/** cache files kept in all (~0.2-0.5 MB each): the current build's, then the newest of others */
const CACHE_FILES_KEPT = 32;
/** another build's cache file older than this goes when a cache is written */
const CACHE_STALE_MS = 7 * 24 * 3600 * 1000;

/** the commands whose runs compile distinct parts of the bundle */
const COMMANDS = new Set(["bump", "build", "up", "rollback", "status", "history", "down", "proxy", "run"]);

const bundle = join(__dirname, "..", "dist", "bundle", "reroll.cjs");
let source;
try {
  source = readFileSync(bundle, "utf8");
} catch (error) {
  if (error?.code !== "ENOENT") throw error;
  process.stderr.write("reroll is not built yet: run `npm run build` in the reroll checkout.\n");
  process.exit(2);
}

/** the bundle's build id, from its first line */
const build = /^\/\/ reroll-bundle ([0-9a-f]+)\n/.exec(source)?.[1];

/** where this build's code cache for this command and Node lives; undefined when it is off */
function cacheBase() {
  // zlib.crc32 is in Node 20.15 and later
  if (process.env.REROLL_CODE_CACHE === "0" || typeof crc32 !== "function" || build === undefined) return undefined;
  let base = process.env.XDG_CACHE_HOME;
  if (!base) {
    try {
      base = join(homedir(), ".cache");
    } catch {
      return undefined;
    }
  }
  let node;
  try {
    const { size, mtimeMs } = statSync(process.execPath);
    node = `${process.version}-${process.arch}-${size.toString(36)}${Math.trunc(mtimeMs).toString(36)}`;
  } catch {
    return undefined;
  }
  const dir = join(base, "reroll", "code-cache");
  // V8 runs what a cache holds: one in a directory another user can write to is not used
  try {
    const st = statSync(dir);
    if (!st.isDirectory() || (typeof process.getuid === "function" && st.uid !== process.getuid()) || (st.mode & 0o022) !== 0) return undefined;
  } catch {
    // not made yet: it is made private to this user
  }
  const command = process.argv.slice(2).filter((a) => COMMANDS.has(a)).slice(0, 2).join("-") || "other";
  return join(dir, `${build}-node${node}-${command}`);
}

/** Keeps the cache directory small: other builds' files beyond the newest, old ones, stray temporaries. */
function pruneCaches(dir) {
  const now = Date.now();
  const files = [];
  for (const name of readdirSync(dir)) {
    try {
      files.push({ name, mtime: statSync(join(dir, name)).mtimeMs });
    } catch {
      // removed meanwhile
    }
  }
  files.sort((a, b) => Number(b.name.startsWith(`${build}-`)) - Number(a.name.startsWith(`${build}-`)) || b.mtime - a.mtime);
  files.forEach(({ name, mtime }, i) => {
    const ours = name.startsWith(`${build}-`);
    const stale = name.endsWith(".tmp") ? now - mtime > 3600 * 1000 : !ours && now - mtime > CACHE_STALE_MS;
    if (stale || (!ours && i >= CACHE_FILES_KEPT)) rmSync(join(dir, name), { force: true });
  });
}

/**
 * This command's cache: the full one, else a partial one. `data` is undefined for a file that
 * fails its CRC-32, which counts as a cache V8 rejected: a good one is written in its place.
 */
function readCache(base) {
  for (const [file, full] of [[`${base}.v8`, true], [`${base}.partial.v8`, false]]) {
    let bytes;
    try {
      bytes = readFileSync(file);
    } catch {
      continue; // none yet, or unreadable: compiled as if there were none
    }
    const intact = bytes.length > 4 && bytes.readUInt32LE(0) === crc32(bytes.subarray(4));
    return { data: intact ? bytes.subarray(4) : undefined, full };
  }
  return undefined;
}

const base = cacheBase();
const cached = base === undefined ? undefined : readCache(base);
// Node's own CommonJS wrapper, on the first line, so that line numbers stay the bundle's
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  ...(cached?.data === undefined ? {} : { cachedData: cached.data }),
});
const used = cached?.data !== undefined && !script.cachedDataRejected;
const cachedFull = used && cached.full;
if (process.env.REROLL_CODE_CACHE_DEBUG === "1") {
  process.stderr.write(`reroll code cache: ${cached === undefined ? "none" : used ? (cached.full ? "used" : "used partial") : "rejected"} (${base ?? "off"})\n`);
}
if (base !== undefined && !cachedFull) {
  process.on("exit", (code) => {
    if (used && code !== 0) return; // a partial cache is replaced only by a run that exits 0
    try {
      const file = code === 0 ? `${base}.v8` : `${base}.partial.v8`;
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const data = script.createCachedData();
      const check = Buffer.alloc(4);
      check.writeUInt32LE(crc32(data), 0);
      const temporary = `${file}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, Buffer.concat([check, data]), { mode: 0o600 });
        renameSync(temporary, file);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw error;
      }
      pruneCaches(dirname(file));
    } catch {
      // a cache that cannot be written is only a slower start next time
    }
  });
}
const cli = { exports: {} };
script.runInThisContext()(cli.exports, createRequire(bundle), cli, bundle, dirname(bundle));
cli.exports.run();
