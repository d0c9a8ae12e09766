#!/usr/bin/env bash
# Builds both services twice: the second build is a cache hit and keeps the revision.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reroll="node $here/../../bin/reroll.js"
cd "$here"
printf '\n\033[1m$ reroll build\033[0m\n'
$reroll build --output plain
printf '\n\033[1m$ reroll build   # nothing changed: same images, same revisions\033[0m\n'
$reroll build --output plain 2>/dev/null
printf '\n\033[1m$ GREETING=bonjour reroll build worker   # a new build arg: a new revision\033[0m\n'
GREETING=bonjour $reroll build worker --output plain 2>/dev/null
