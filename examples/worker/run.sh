#!/usr/bin/env bash
# A worker without ports, rolled by readiness alone: v1 up, then a new build (JOB_VERSION=v2)
# replaces both replicas one at a time behind the healthcheck.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reroll="node $here/../../bin/reroll.js"
project="${PROJECT:-reroll-example-worker}"
cd "$here"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
cleanup() {
  $reroll down -p "$project" >/dev/null 2>&1
  docker ps -aq --filter "label=dev.reroll.project=$project" | xargs -r docker rm -f >/dev/null 2>&1
  docker images -q --filter "label=dev.reroll.project=$project" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1
}
trap cleanup EXIT
cleanup

step "reroll up"
$reroll up -p "$project" --output plain 2>&1 | grep -v '^worker |  \|step'
first=${PIPESTATUS[0]}
step "JOB_VERSION=v2 reroll up      # a new build: revision r2"
JOB_VERSION=v2 $reroll up -p "$project" --output plain 2>&1 | grep -v '^worker |  \|step'
second=${PIPESTATUS[0]}
step "reroll status"
JOB_VERSION=v2 $reroll status -p "$project" --output plain
printf '\nworker rolled by readiness alone: %s\n' "$([ "$first" = 0 ] && [ "$second" = 0 ] && echo yes || echo NO)"
[ "$first" = 0 ] && [ "$second" = 0 ]
