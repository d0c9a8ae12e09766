#!/usr/bin/env bash
# Builds both services twice: the second build is a cache hit and keeps the revision.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reroll="node $here/../../bin/reroll.js -p ${PROJECT:-reroll-example-build}"
cd "$here"
# the images it built are removed at the end (KEEP=1 keeps them)
cleanup() {
  [ -n "${KEEP:-}" ] || docker images -q --filter "label=dev.reroll.project=${PROJECT:-reroll-example-build}" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1
}
trap cleanup EXIT
printf '\n\033[1m$ reroll build\033[0m\n'
$reroll build --output plain
printf '\n\033[1m$ reroll build   # nothing changed: same images, same revisions\033[0m\n'
$reroll build --output plain 2>/dev/null
printf '\n\033[1m$ GREETING=bonjour reroll build worker   # a new build arg: a new revision\033[0m\n'
GREETING=bonjour $reroll build worker --output plain 2>/dev/null
