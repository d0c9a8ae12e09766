#!/usr/bin/env bash
# The main example: v1.18 up, a zero-downtime bump to 1.19 with --verify, a broken 1.20
# that rolls itself back (the Dockerfile returns to 1.19), and the history of it all.
# Runs in a temporary copy, so the checkout is left as it was. KEEP=1 leaves it running.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
reroll="$here/../../bin/reroll.js"
work=$(mktemp -d)
cp -r "$here/." "$work/"
cd "$work"
project="reroll-example-web"

if [ -z "${WEB_PORT:-}" ]; then
  WEB_PORT=8080
  if ! node -e 'const s=require("net").createServer().once("error",()=>process.exit(1)).listen(8080,"127.0.0.1",()=>s.close())' 2>/dev/null; then
    WEB_PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    echo "(127.0.0.1:8080 is taken here: using 127.0.0.1:$WEB_PORT)"
  fi
fi
export WEB_PORT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
from_line() { grep -m1 '^FROM' app/Dockerfile; }
serve() { node -e 'require("http").get("http://127.0.0.1:'"$WEB_PORT"'/index.html",r=>{process.stdout.write(`HTTP ${r.statusCode} from 127.0.0.1:'"$WEB_PORT"'\n`)}).on("error",e=>console.log(e.code))'; }
cleanup() {
  if [ -z "${KEEP:-}" ]; then
    $reroll down -p "$project" >/dev/null 2>&1
    # the example's history too (the ledger a real project keeps): a rerun starts afresh
    docker ps -aq --filter "label=dev.reroll.project=$project" | xargs -r docker rm -f >/dev/null 2>&1
    docker images -q --filter "label=dev.reroll.project=$project" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1
    rm -rf "$work"
  else
    echo "left running: cd $work && reroll status"
  fi
}
trap cleanup EXIT

# a previous run's leftovers (KEEP=1) are taken down first
$reroll down -p "$project" >/dev/null 2>&1
docker ps -aq --filter "label=dev.reroll.project=$project" | xargs -r docker rm -f >/dev/null 2>&1

step "reroll up                                   # $(from_line)"
$reroll up -p "$project" --output plain 2>&1 | grep -v '^web |  \|step\|^web | building'
up1=${PIPESTATUS[0]}
serve

step "reroll up --bump reroll-local/httpd:1.19 --verify"
$reroll up -p "$project" --bump reroll-local/httpd:1.19 --verify --output plain 2>&1 | grep -v '^web |  \|step\|^web | building'
up2=${PIPESTATUS[0]}
echo "exit $up2; Dockerfile: $(from_line)"

step "reroll up --bump reroll-local/httpd:1.20 --verify     # 1.20 is broken on purpose"
$reroll up -p "$project" --bump reroll-local/httpd:1.20 --verify --timeout 20s --output plain 2>&1 | grep -v '^web |  \|step\|^web | building'
up3=${PIPESTATUS[0]}
echo "exit $up3; Dockerfile: $(from_line)"
serve

step "reroll history web"
$reroll history web -p "$project" --output plain

step "reroll status"
$reroll status -p "$project" --output plain

ok() { [ "$1" = "$2" ] && echo "yes" || echo "NO (exit $1)"; }
printf '\n\033[1mSummary\033[0m\n'
printf '  %-52s %s\n' "up on httpd 1.18, 3 replicas behind the HAProxy door:" "$(ok "$up1" 0)"
printf '  %-52s %s\n' "bump to 1.19, zero failed requests (--verify):" "$(ok "$up2" 0)"
printf '  %-52s %s\n' "bump to 1.20 failed and rolled back by itself:" "$(ok "$up3" 1)"
printf '  %-52s %s\n' "Dockerfile back at 1.19:" "$(from_line | grep -q ':1.19$' && echo yes || echo NO)"
[ "$up1" = 0 ] && [ "$up2" = 0 ] && [ "$up3" = 1 ] && from_line | grep -q ':1.19$'
