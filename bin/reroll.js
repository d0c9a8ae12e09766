#!/bin/sh
':' //; # A POSIX sh launcher and an ES module in one file: sh runs the lines that begin ':' //;
':' //; # (JavaScript reads each as a string and a comment), then hands this same file to node.
':' //; #
':' //; # Node 20 reads and parses every certificate named by NODE_EXTRA_CA_CERTS when it starts,
':' //; # before any JavaScript runs: 80-150 ms of every command on a machine that sets it
':' //; # (nodejs/node#40524; bench/). reroll needs those certificates only to ask a registry for
':' //; # tags (bump, up --bump); the Docker daemon over TLS brings its own CA (DOCKER_CERT_PATH).
':' //; # So for other commands node starts without the variable, and the module below puts it
':' //; # back into the environment at once, for any process reroll starts.
':' //; registry=no; case " $* " in *" bump "* | *" --bump"*) registry=yes ;; esac
':' //; if [ -n "$NODE_EXTRA_CA_CERTS" ] && [ "$registry" = no ]; then
':' //;   REROLL_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export REROLL_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS
':' //; fi
':' //; exec node "$0" "$@"

// The published entry point. The TypeScript sources are compiled to dist/ and the CLI bundled
// into dist/bundle/reroll.mjs by `npm run build` (run by `npm install` / `npm ci` through the
// "prepare" script; see scripts/bundle-cli.mjs). `node bin/reroll.js` works as well: it skips
// the launcher above.
if (process.env.REROLL_DEFERRED_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.REROLL_DEFERRED_CA_CERTS;
  delete process.env.REROLL_DEFERRED_CA_CERTS;
}
import("../dist/bundle/reroll.mjs").then(
  (cli) => cli.run(),
  (error) => {
    if (error?.code === "ERR_MODULE_NOT_FOUND") {
      process.stderr.write("reroll is not built yet: run `npm run build` in the reroll checkout.\n");
      process.exitCode = 2;
    } else throw error;
  },
);
