#!/usr/bin/env bash
# Makes a Docker daemon available to reroll, its tests, examples and benchmarks, and
# prepares the locally made base images they build on (nothing can be pulled here).
#
#   - installs Debian's docker.io when dockerd is missing (and busybox-static, for the
#     local base images);
#   - starts dockerd in the background when no daemon answers, and waits until it does;
#   - imports the local stand-in base images when they are missing or out of date;
#   - installs Debian's docker-registry, which the registry tests start on 127.0.0.1.
#
# Safe to run any number of times: each step only acts when something is missing.
# Honours DOCKER_HOST: when it points elsewhere, this script only waits for that daemon.
set -euo pipefail

DAEMON_WAIT_SECONDS="${REROLL_DAEMON_WAIT_SECONDS:-90}"
DOCKERD_LOG="${REROLL_DOCKERD_LOG:-/var/log/reroll-dockerd.log}"
LOCAL_LABEL="dev.reroll.local-stand-in"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "'$*' needs root; run this script as root or install sudo"; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

daemon_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

ensure_daemon() {
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if daemon_answers; then return; fi

  local local_socket=1
  case "${DOCKER_HOST:-}" in
    ""|unix:///var/run/docker.sock) ;;
    *) local_socket="" ;;
  esac
  local starts=0
  start_dockerd() {
    log "starting dockerd (log: $DOCKERD_LOG)"
    as_root mkdir -p "$(dirname "$DOCKERD_LOG")"
    # setsid: the daemon outlives this shell, the test run and the session that started it.
    as_root setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    starts=$((starts + 1))
  }
  if [ -n "$local_socket" ] && ! pgrep -x dockerd >/dev/null 2>&1; then start_dockerd; fi

  local waited=0
  until daemon_answers; do
    # A dockerd that was shutting down (stopping its containers) when we looked may have
    # gone since: then start one, once; a second exit is for its log to explain.
    if [ -n "$local_socket" ] && [ "$starts" = 0 ] && ! pgrep -x dockerd >/dev/null 2>&1; then
      log "the dockerd that was running has exited (it was shutting down)"
      start_dockerd
    fi
    if [ "$waited" -ge "$DAEMON_WAIT_SECONDS" ]; then
      [ -f "$DOCKERD_LOG" ] && tail -n 20 "$DOCKERD_LOG" >&2
      die "no Docker daemon answered at ${DOCKER_HOST:-unix:///var/run/docker.sock} after ${DAEMON_WAIT_SECONDS}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  log "Docker daemon $(docker version --format '{{.Server.Version}}') answers"
}

# An image made with `docker import` from a root filesystem assembled here. Rebuilt only when
# the recorded content hash differs, so repeated runs cost one `docker image inspect`.
import_rootfs_image() {
  local ref="$1" hash="$2" rootfs="$3"; shift 3
  local have
  have=$(docker image inspect --format "{{ index .Config.Labels \"$LOCAL_LABEL\" }}" "$ref" 2>/dev/null || true)
  if [ "$have" = "$hash" ]; then return; fi
  log "importing $ref (local stand-in)"
  tar -C "$rootfs" -c . | docker import "$@" --change "LABEL $LOCAL_LABEL=$hash" - "$ref" >/dev/null
}

# reroll-local/busybox: FROM scratch plus Debian's static busybox (a shell, httpd, nc, wget).
ensure_busybox_image() {
  local busybox
  busybox=$(command -v busybox || true)
  # It must be the static build: the image has no libc. (ldd fails on a static executable.)
  if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    apt_install busybox-static
    busybox=$(command -v busybox)
  fi
  local hash
  hash=$(sha256sum "$busybox" | cut -c1-16)
  local ref="reroll-local/busybox:latest"
  if [ "$(docker image inspect --format "{{ index .Config.Labels \"$LOCAL_LABEL\" }}" "$ref" 2>/dev/null || true)" = "$hash" ]; then
    return
  fi
  local rootfs
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/www"
  chmod 1777 "$rootfs/tmp"
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  import_rootfs_image "$ref" "$hash" "$rootfs" \
    --change 'ENV PATH=/bin' --change 'CMD ["sh"]'
}

# node:<major>-slim, made locally when the daemon has no such image: the machine's own node
# binary, the libraries ldd lists, npm, and busybox for /bin/sh and /usr/bin/env, with the
# `node` user (uid 1000) and paths of the official image. reroll's own image (top-level
# Dockerfile) builds FROM it unchanged; where a registry exists the real image is used. A real
# image of that name (one without the stand-in label) is never replaced.
ensure_node_image() {
  local node_bin npm_dir busybox major ref
  node_bin=$(readlink -f "$(command -v node)")
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  busybox=$(command -v busybox)
  major=$(node -p 'process.versions.node.split(".")[0]')
  ref="node:${major}-slim"
  local have
  have=$(docker image inspect --format "{{ index .Config.Labels \"$LOCAL_LABEL\" }}" "$ref" 2>/dev/null || echo missing)
  if [ "$have" != missing ] && [ -z "$have" ]; then return; fi # a real image
  local hash
  hash=$( { sha256sum "$node_bin" "$busybox" "$npm_dir/package.json"; echo v2; } | sha256sum | cut -c1-16)
  if [ "$have" = "$hash" ]; then return; fi
  local rootfs
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules" "$rootfs/bin" "$rootfs/usr/bin" \
    "$rootfs/etc" "$rootfs/tmp" "$rootfs/home/node" "$rootfs/root"
  chmod 1777 "$rootfs/tmp"
  chown 1000:1000 "$rootfs/home/node"
  cp "$node_bin" "$rootfs/usr/local/bin/node"
  cp -r "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  local lib
  for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in sh ls cat mkdir rm cp mv chown chmod ln id env wget; do ln -s busybox "$rootfs/bin/$applet"; done
  ln -s /bin/busybox "$rootfs/usr/bin/env"
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  log "importing $ref (local stand-in for the official image: node $(node --version), npm)"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$(node -p 'process.versions.node')" \
    --change 'CMD ["node"]' \
    --change "LABEL $LOCAL_LABEL=$hash" - "$ref" >/dev/null
}

# haproxy:lts, made locally when the daemon has no such image: Debian's haproxy (2.6, an LTS
# branch) with the libraries ldd lists, perl-base (reroll's control bridge to the runtime API
# socket, as in the official Debian-based image) and busybox for /bin/sh, laid out as the
# official image is: /usr/local/sbin/haproxy, /usr/local/etc/haproxy, the haproxy user
# (uid 99) in /var/lib/haproxy, an entrypoint that runs `haproxy -W -db` (master-worker,
# foreground). A real image of that name (one without the stand-in label) is never replaced.
ensure_haproxy_image() {
  command -v haproxy >/dev/null 2>&1 || apt_install haproxy
  local ref="haproxy:lts" haproxy_bin perl_bin busybox have hash
  haproxy_bin=$(readlink -f "$(command -v haproxy)")
  perl_bin=$(readlink -f "$(command -v perl)")
  busybox=$(command -v busybox)
  have=$(docker image inspect --format "{{ index .Config.Labels \"$LOCAL_LABEL\" }}" "$ref" 2>/dev/null || echo missing)
  if [ "$have" != missing ] && [ -z "$have" ]; then return; fi # a real image
  hash=$( { sha256sum "$haproxy_bin" "$perl_bin" "$busybox"; echo v1; } | sha256sum | cut -c1-16)
  if [ "$have" = "$hash" ]; then return; fi
  local rootfs lib
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  mkdir -p "$rootfs/usr/local/sbin" "$rootfs/usr/local/bin" "$rootfs/usr/local/etc/haproxy" "$rootfs/usr/bin" \
    "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/var/lib/haproxy" "$rootfs/usr/lib/x86_64-linux-gnu"
  chmod 1777 "$rootfs/tmp"
  chown 99:99 "$rootfs/var/lib/haproxy"
  cp "$haproxy_bin" "$rootfs/usr/local/sbin/haproxy"
  cp "$perl_bin" "$rootfs/usr/bin/perl"
  cp -r /usr/lib/x86_64-linux-gnu/perl-base "$rootfs/usr/lib/x86_64-linux-gnu/perl-base"
  for lib in $( { ldd "$haproxy_bin"; ldd "$perl_bin"; } | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in sh ls cat mkdir rm cp mv kill ps sleep id env; do ln -s busybox "$rootfs/bin/$applet"; done
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
set -e
# as the official image's entrypoint: options alone mean haproxy; haproxy runs master-worker in the foreground
if [ "${1#-}" != "$1" ]; then set -- haproxy "$@"; fi
if [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi
exec "$@"
ENTRYPOINT
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  printf 'root:x:0:0:root:/root:/bin/sh\nhaproxy:x:99:99::/var/lib/haproxy:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nhaproxy:x:99:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  log "importing $ref (local stand-in for the official image: $("$haproxy_bin" -v | head -1 | cut -d' ' -f1-3))"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
    --change 'USER haproxy' \
    --change 'WORKDIR /var/lib/haproxy' \
    --change "LABEL $LOCAL_LABEL=$hash" - "$ref" >/dev/null
}

# reroll-local/httpd:1.18, 1.19 and 1.20: the base images of the bundled example
# (examples/web), local stand-ins for a web server image with version tags. 1.18 and 1.19
# serve /health; 1.20 is deliberately broken (its /health is gone), so that the example can
# show an automatic rollback. Built FROM reroll-local/busybox. Like nginx, they exit on
# SIGTERM (httpd as PID 1 would ignore it, and every stop would wait for the kill).
ensure_example_bases() {
  local version
  for version in 1.18 1.19 1.20; do
    local ref="reroll-local/httpd:$version" start
    if [ "$version" = 1.20 ]; then
      start='rm -f /www/health; echo "httpd 1.20: started without /health (a deliberately broken stand-in)" >&2; trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
    else
      start='trap "exit 0" TERM; httpd -f -p 80 -h /www & wait'
    fi
    local hash
    hash=$(printf '%s|%s|%s' "$version" "$start" "$(docker image inspect --format '{{.Id}}' reroll-local/busybox:latest)" | sha256sum | cut -c1-16)
    if [ "$(docker image inspect --format "{{ index .Config.Labels \"$LOCAL_LABEL\" }}" "$ref" 2>/dev/null || true)" = "$hash" ]; then
      continue
    fi
    log "building $ref (local stand-in for the example's base image)"
    local dir
    dir=$(mktemp -d)
    printf 'ok\n' >"$dir/health"
    printf '%s\n' "$start" >"$dir/start.sh"
    cat >"$dir/Dockerfile" <<DOCKERFILE
FROM reroll-local/busybox:latest
ENV HTTPD_VERSION=$version
COPY health /www/health
COPY start.sh /start.sh
EXPOSE 80
CMD ["sh", "/start.sh"]
LABEL $LOCAL_LABEL=$hash
DOCKERFILE
    DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$dir" >/dev/null 2>&1 || { rm -rf "$dir"; die "building $ref failed"; }
    rm -rf "$dir"
  done
}

# Debian's docker-registry: the real Registry HTTP API v2 the tests run on 127.0.0.1
# (`reroll bump --tags-from registry`). Installed only; each test starts its own.
ensure_registry_binary() {
  command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry
}

# wrk (load), nginx (the proxy reroll-proxy is compared with) and GNU time (reroll's peak
# memory), for `npm run bench` only
ensure_bench_tools() {
  local missing=()
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  [ -x /usr/bin/time ] || missing+=(time)
  command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# reroll-local/nginx-bench: Debian's nginx with the libraries ldd lists, so that the bench
# runs nginx in a container beside the door, as the door runs: the same network path and the
# same share of the CPU (a process on the host is scheduled apart from every container).
ensure_nginx_bench_image() {
  local nginx_bin hash rootfs lib
  nginx_bin=$(readlink -f "$(command -v nginx)")
  hash=$( { sha256sum "$nginx_bin"; echo v1; } | sha256sum | cut -c1-16)
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' RETURN
  mkdir -p "$rootfs/usr/sbin" "$rootfs/etc/nginx" "$rootfs/tmp" "$rootfs/var/log/nginx" "$rootfs/var/lib/nginx"
  chmod 1777 "$rootfs/tmp"
  cp "$nginx_bin" "$rootfs/usr/sbin/nginx"
  for lib in $(ldd "$nginx_bin" | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
  printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  import_rootfs_image reroll-local/nginx-bench:latest "$hash" "$rootfs" \
    --change 'ENTRYPOINT ["/usr/sbin/nginx", "-g", "daemon off;"]'
}

ensure_daemon
ensure_busybox_image
ensure_node_image
ensure_example_bases
ensure_haproxy_image
ensure_registry_binary
if [ "${1:-}" = "--bench" ]; then
  ensure_bench_tools
  ensure_nginx_bench_image
fi
log "ready"
