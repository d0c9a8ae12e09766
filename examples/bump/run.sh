#!/usr/bin/env bash
# The bump walkthrough: works on a copy, so the example stays as it is.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reroll="node $here/../../bin/reroll.js"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/Dockerfile" "$here/tags.txt" "$work/"
cd "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "reroll bump golang --patch --dry-run          # what would change, nothing written"
$reroll bump golang --patch --dry-run

step "reroll bump golang --minor --tags-from tags.txt   # highest 1.x with the same -alpine3.18 variant"
$reroll bump golang --minor --tags-from tags.txt

step "reroll bump alpine:3.19 --output json          # shorthand for --to, machine-readable"
$reroll bump alpine:3.19 --output json

step "reroll bump golang --to 1.22.4                 # cannot be written through \${GO_VERSION}-alpine3.18"
before=$(sha256sum Dockerfile)
set +e; $reroll bump golang --to 1.22.4; code=$?; set -e
echo "exit code $code; file unchanged: $([ "$before" = "$(sha256sum Dockerfile)" ] && echo yes || echo NO)"

step "diff -u original edited"
diff -u "$here/Dockerfile" Dockerfile || true
