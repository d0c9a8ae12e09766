// Benchmarks for the door (HAProxy driven by reroll), all in one run against the same app:
//  - failed requests during a rollout under 16 clients: reroll against a naive recreate
//    (`docker stop` + `docker run` on the same port);
//  - failed requests and the longest pause across a seamless reload of the door, and across
//    a `docker restart` of it (for the docs);
//  - a 3-replica rollout of an image whose HEALTHCHECK keeps Docker's default 30 s interval:
//    reroll (the door probes the health path) against `docker service update`;
//  - throughput (wrk), the proxy's CPU per request, and p99 latency at a moderate fixed rate:
//    straight to a replica, through the door as a rollout left it, through HAProxy run by hand
//    with the door's own configuration, and through nginx (Debian's package) as the proxy, the
//    two by hand in containers beside the door.
// Cleans up every container, service, image and process it made.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { continuousLoad, fixedRateTogether, quantile } from "./load.js";
import { cpuSecondsOfTree, fmt, median, removeBenchProject, sh, shAsync } from "./lib.js";
import { DEFAULT_DOOR_THREADS } from "../dist/core/spec/validate.js";
import { HOLD_SCRIPT, renderDoorConfig } from "../dist/proxy/haproxy-config.js";

const BIN = fileURLToPath(new URL("../bin/reroll.js", import.meta.url));
const APP = fileURLToPath(new URL("../test/fixtures/proxy-app", import.meta.url));
const reroll = (dir, name, args) => sh(BIN, [...args, "-p", name, "--output", "plain"], { cwd: dir });
// while the load generator in this process measures: a blocking run would freeze it, and the
// requests of the whole run would be sent only before and after it
const rerollUnderLoad = (dir, name, args) => shAsync(BIN, [...args, "-p", name, "--output", "plain"], { cwd: dir });

function freePort() {
  return Number(sh(process.execPath, ["-e", "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"]).stdout.trim());
}

function compose(dir, { version, port, healthcheck = "fast" }) {
  writeFileSync(
    join(dir, "compose.yaml"),
    [
      "services:",
      "  web:",
      "    build:",
      "      context: ./app",
      ...(healthcheck === "default" ? ["      dockerfile: Dockerfile.default-interval"] : []),
      `      args: { VERSION: ${version}, START_DELAY_MS: "${healthcheck === "default" ? 500 : 0}" }`,
      `    ports: ["127.0.0.1:${port}:8080"]`,
      // the proxy's probe gates readiness; Docker's own check only needs to veto, and a
      // 1 s check would start 3 node processes a second beside the throughput measurements
      ...(healthcheck === "default" ? [] : ["    healthcheck: { interval: 30s }"]),
      "    stop_grace_period: 2s",
      "    deploy:",
      "      replicas: 3",
      "      update_config: { parallelism: 1, monitor: 1s, order: start-first }",
      "    x-reroll:",
      "      proxy: { healthcheck: { path: /health }, drain_timeout: 10s }",
      "",
    ].join("\n"),
  );
}

function setupApp(root, name) {
  const dir = join(root, name);
  cpSync(APP, join(dir, "app"), { recursive: true });
  // the same app with Docker's default HEALTHCHECK timing (30 s interval) and a 0.5 s start
  writeFileSync(
    join(dir, "app", "Dockerfile.default-interval"),
    [
      "FROM node:20-slim",
      "ARG VERSION=v1",
      "ARG START_DELAY_MS=500",
      "ENV VERSION=$VERSION START_DELAY_MS=$START_DELAY_MS",
      "COPY server.cjs /app/server.cjs",
      `HEALTHCHECK CMD ["node", "-e", "require('http').get('http://127.0.0.1:8080/health', r => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]`,
      'CMD ["node", "/app/server.cjs"]',
      "",
    ].join("\n"),
  );
  return dir;
}

const ipOf = (container, network) => sh("docker", ["inspect", "--format", `{{ (index .NetworkSettings.Networks "${network}").IPAddress }}`, container]).stdout.trim();

/** recorded rounds of the throughput and latency measurements (after one unrecorded) */
const ROUNDS = 6;

/** wrk's throughput at `url`, and the CPU the processes under `pid` (when given) spent per request meanwhile. */
function wrkWithCpu(url, pid) {
  const before = pid === undefined ? 0 : cpuSecondsOfTree(pid);
  const out = sh("wrk", ["-t", "2", "-c", "32", "-d", "3s", url]).stdout;
  const spent = pid === undefined ? 0 : cpuSecondsOfTree(pid) - before;
  // a fast error page is not throughput
  if (/Non-2xx or 3xx responses|Socket errors/.test(out)) throw new Error(`wrk ${url} saw errors:\n${out}`);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0), cpuUsPerRequest: requests > 0 ? (spent * 1e6) / requests : 0 };
}

async function naiveRecreate(name, imageFrom, imageTo) {
  const port = freePort();
  const run = (image) => shAsync("docker", ["run", "-d", "--name", name, "--label", `dev.reroll.project=${name}`, "-p", `127.0.0.1:${port}:8080`, image]);
  await run(imageFrom);
  for (let i = 0; i < 100 && spawnSync("curl", ["-sf", `http://127.0.0.1:${port}/health`]).status !== 0; i += 1) await sleep(50);
  const load = continuousLoad("127.0.0.1", port, 16);
  await sleep(1000);
  await shAsync("docker", ["stop", "-t", "2", name]);
  await shAsync("docker", ["rm", name]);
  await run(imageTo);
  await sleep(3000);
  const result = await load.stop();
  sh("docker", ["rm", "-f", name], { allowFail: true });
  return result;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function run() {
  const root = mkdtempSync(join(tmpdir(), "reroll-bench-proxy-"));
  const stamp = Math.floor(Date.now() / 1000);
  const project = `reroll-bench-${stamp}-proxy`;
  const slow = `reroll-bench-${stamp}-interval`;
  const naive = `reroll-bench-${stamp}-naive`;
  const swarmName = `reroll-bench-${stamp}-swarmhc`;
  const state = sh("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.trim();
  const joinedSwarm = state !== "active";
  const rows = [];
  try {
    // 1. failed requests during a rollout under 16 clients
    const dir = setupApp(root, project);
    const port = freePort();
    compose(dir, { version: "v1", port });
    reroll(dir, project, ["up"]);
    compose(dir, { version: "v2", port });
    reroll(dir, project, ["build"]);
    const load = continuousLoad("127.0.0.1", port, 16);
    await sleep(1000);
    await rerollUnderLoad(dir, project, ["up", "--no-build"]);
    await sleep(1000);
    const rolled = await load.stop();
    const door = `${project}-web-proxy-127.0.0.1-${port}`;
    const naiveResult = await naiveRecreate(naive, `${project}-web:r1`, `${project}-web:r2`);
    const why = (r) => Object.entries(r.reasons ?? {}).map(([reason, n]) => `${n} ${reason}`).join(", ");
    const pct = (r) => `${r.failed} of ${r.sent} (${((100 * r.failed) / Math.max(1, r.sent)).toFixed(2)}%${r.failed > 0 ? `: ${why(r)}` : ""})`;
    rows.push({
      benchmark: "failed requests, 3-replica rollout under 16 clients",
      value: pct(rolled),
      baselineName: "naive recreate (docker stop + run, same port)",
      baseline: `${pct(naiveResult)}, ${(naiveResult.longestGapMs / 1000).toFixed(1)} s without an answer`,
      ratio: "—",
      target: "0 failed",
      ok: rolled.failed === 0,
    });

    // 2. throughput and p99 at a moderate rate: straight to a replica, the door, HAProxy by
    //    hand with the door's own configuration, nginx. The two by hand run as containers on
    //    the door's network, as the door does: a process on the host would be spared the
    //    bridge every client of the door crosses, and be scheduled apart from every container.
    const network = `${project}_default`;
    const besideTheDoor = (name, image, mounts) => {
      const container = `${project}-${name}`;
      sh("docker", ["run", "-d", "--name", container, "--label", `dev.reroll.project=${project}`, "--network", network, ...mounts.flatMap((m) => ["-v", m]), image]);
      const pid = Number(sh("docker", ["inspect", "--format", "{{.State.Pid}}", container]).stdout.trim());
      return { host: ipOf(container, network), pid };
    };
    const replica = sh("docker", ["ps", "--format", "{{.Names}}", "--filter", `label=dev.reroll.project=${project}`, "--filter", "label=dev.reroll.slot"]).stdout.trim().split("\n");
    const replicaIps = replica.map((r) => ipOf(r, network));
    const doorIp = ipOf(door, network);
    const handDir = join(root, "haproxy");
    sh("mkdir", ["-p", handDir]);
    writeFileSync(join(handDir, "verify.acl"), "");
    writeFileSync(join(handDir, "hold.map"), "");
    writeFileSync(join(handDir, "hold.lua"), HOLD_SCRIPT);
    const handConfig = renderDoorConfig(
      { project, service: "web", mode: "http", targetPort: 8080, healthPath: "/health", probeIntervalMs: 100, probeTimeoutMs: 1000, drainTimeoutMs: 10_000, trustedProxies: [], threads: DEFAULT_DOOR_THREADS },
      replicaIps.map((ip, i) => ({ name: `r${i + 1}`, host: ip, state: "routed" })),
    );
    writeFileSync(join(handDir, "haproxy.cfg"), handConfig);
    sh("chmod", ["-R", "a+rX", handDir]); // HAProxy's user in its image reads it
    const hand = besideTheDoor("haproxy-by-hand", "haproxy:lts", [`${handDir}:/usr/local/etc/haproxy:ro`]);
    const nginxDir = join(root, "nginx");
    sh("mkdir", ["-p", nginxDir]);
    writeFileSync(
      join(nginxDir, "nginx.conf"),
      [
        "worker_processes auto;", // as nginx is run: a worker per core
        "pid /tmp/nginx.pid;",
        "error_log stderr;",
        "events { worker_connections 1024; }",
        "http {",
        "  access_log off; client_body_temp_path /tmp; proxy_temp_path /tmp;",
        `  upstream app { least_conn; ${replicaIps.map((ip) => `server ${ip}:8080;`).join(" ")} keepalive 64; }`,
        `  server { listen 10000; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $remote_addr; } }`,
        "}",
        "",
      ].join("\n"),
    );
    const nginx = besideTheDoor("nginx", "reroll-local/nginx-bench", [`${join(nginxDir, "nginx.conf")}:/etc/nginx/nginx.conf:ro`]);
    // both answer before they are measured; one that does not fails the bench here, saying which
    for (const [what, side] of [["HAProxy by hand", hand], ["nginx", nginx]]) {
      let up = false;
      for (let i = 0; i < 50 && !up; i += 1) {
        up = spawnSync("curl", ["-sf", "-o", "/dev/null", `http://${side.host}:10000/`]).status === 0;
        if (!up) await sleep(100);
      }
      if (!up) throw new Error(`${what} on ${side.host}:10000 did not answer`);
    }
    // Rounds: wrk on each side in turn (throughput), then the fixed-rate client on every side
    // at once, their requests interleaved, so that a moment of noise falls on every side
    // alike. Throughput is the median of the rounds; latencies are pooled over them. A first
    // round on every side is not recorded. The door is measured as the rollout above left it.
    // The CPU each proxy's processes spent per request under wrk is steadier than throughput
    // on a shared machine: it says what the door costs its host.
    const sides = { direct: [replicaIps[0], 8080], proxy: [doorIp, 10000], haproxy: [hand.host, 10_000], nginx: [nginx.host, 10_000] };
    const processOf = { proxy: Number(sh("docker", ["inspect", "--format", "{{.State.Pid}}", door]).stdout.trim()), haproxy: hand.pid, nginx: nginx.pid };
    const samples = Object.fromEntries(Object.keys(sides).map((side) => [side, { rps: [], ms: [], cpuUs: [] }]));
    for (let round = 0; round < ROUNDS + 1; round += 1) {
      const loaded = Object.fromEntries(Object.entries(sides).map(([side, [host, p]]) => [side, wrkWithCpu(`http://${host}:${p}/`, processOf[side])]));
      const measured = await fixedRateTogether(Object.values(sides), { rate: 200, seconds: 5 });
      Object.keys(sides).forEach((side, k) => {
        if (round === 0) return;
        samples[side].rps.push(loaded[side].rps);
        samples[side].cpuUs.push(loaded[side].cpuUsPerRequest);
        samples[side].ms.push(...measured[k].latencies);
      });
    }
    const med = (side) => ({ rps: median(samples[side].rps), cpuUs: median(samples[side].cpuUs), lat: { p99: quantile(samples[side].ms, 0.99) } });
    const direct = med("direct");
    const viaProxy = med("proxy");
    const viaNginx = med("nginx");
    const viaHand = med("haproxy");
    rows.push({
      benchmark: `door throughput (wrk, 32 connections, median of ${ROUNDS} × 3 s after an unrecorded one)`,
      value: `${viaProxy.rps.toFixed(0)} req/s`,
      baselineName: `HAProxy by hand, same configuration, beside the door (nginx: ${viaNginx.rps.toFixed(0)} req/s; direct to one replica: ${direct.rps.toFixed(0)} req/s)`,
      baseline: `${viaHand.rps.toFixed(0)} req/s`,
      ratio: fmt.ratio(viaProxy.rps / viaHand.rps),
      target: "≥ 0.9× HAProxy by hand and ≥ nginx",
      ok: viaProxy.rps / viaHand.rps >= 0.9 && viaProxy.rps >= viaNginx.rps,
    });
    rows.push({
      benchmark: "CPU per request under that wrk load, all of the proxy's processes (median of the rounds)",
      value: `${viaProxy.cpuUs.toFixed(1)} µs`,
      baselineName: `nginx (HAProxy by hand: ${viaHand.cpuUs.toFixed(1)} µs)`,
      baseline: `${viaNginx.cpuUs.toFixed(1)} µs`,
      ratio: fmt.ratio(viaProxy.cpuUs / viaNginx.cpuUs),
      target: "measured (docs)",
      ok: true,
    });
    const added = viaProxy.lat.p99 - direct.lat.p99;
    const nginxAdded = viaNginx.lat.p99 - direct.lat.p99;
    rows.push({
      benchmark: `added p99 latency at 200 req/s a side, sides measured at once (4 keep-alive connections each, ${ROUNDS} × 5 s pooled, after an unrecorded round)`,
      value: `${fmt.ms(added)} (p99 ${fmt.ms(viaProxy.lat.p99)})`,
      baselineName: "nginx added (direct p99; HAProxy by hand added)",
      baseline: `${fmt.ms(nginxAdded)} (${fmt.ms(direct.lat.p99)}; ${fmt.ms(viaHand.lat.p99 - direct.lat.p99)})`,
      ratio: "—",
      target: "≤ nginx's added p99",
      ok: added <= nginxAdded,
    });
    // What a client on this host gets at the public port: Docker publishes a loopback address
    // through its userland proxy (docker-proxy), one more process on the way in front of
    // the door; a client from another host is DNATed by the kernel to the proxy's address,
    // the path measured above. Measured beside the direct side, after the rounds above.
    const loopback = { direct: [], public: [] };
    for (let round = 0; round < 4; round += 1) {
      const [d, pub] = await fixedRateTogether([sides.direct, ["127.0.0.1", port]], { rate: 200, seconds: 5 });
      if (round === 0) continue;
      loopback.direct.push(...d.latencies);
      loopback.public.push(...pub.latencies);
    }
    const viaPublic = quantile(loopback.public, 0.99);
    const directThen = quantile(loopback.direct, 0.99);
    rows.push({
      benchmark: "the same at the public loopback port (127.0.0.1, Docker's userland proxy in front of the door), beside the direct side only",
      value: `${fmt.ms(viaPublic - directThen)} (p99 ${fmt.ms(viaPublic)}, p50 ${fmt.ms(quantile(loopback.public, 0.5))})`,
      baselineName: "direct p99 (p50) in these rounds",
      baseline: `${fmt.ms(directThen)} (${fmt.ms(quantile(loopback.direct, 0.5))})`,
      ratio: "—",
      target: "measured (docs)",
      ok: true,
    });
    // 3. after the measurements (which see the door as the rollout left it, its servers added
    //    at run time): what a change of the door's configuration costs (a seamless reload:
    //    HAProxy's master hands the listening socket to a new worker), and a restart of it
    // what a change of the door's configuration costs (a seamless reload: HAProxy's master
    // hands the listening socket to a new worker), and a restart of the door itself
    const pause = async (action) => {
      const l = continuousLoad("127.0.0.1", port, 16);
      await sleep(500);
      await action();
      await sleep(1500);
      return l.stop();
    };
    const reloaded = await pause(() => shAsync("docker", ["kill", "--signal", "USR2", door]));
    const restarted = await pause(() => shAsync("docker", ["restart", "-t", "10", door]));
    const pauseRow = (what, r, target) => ({
      benchmark: what,
      value: `${(r.longestGapMs / 1000).toFixed(2)} s without an answer, ${r.failed} of ${r.sent} failed`,
      baselineName: "—",
      baseline: "—",
      ratio: "—",
      target: target ? "0 failed" : "measured (docs)",
      ok: target ? r.failed === 0 : true,
    });
    rows.push(
      pauseRow("configuration reload of the door (SIGUSR2) under 16 clients", reloaded, true),
      pauseRow("traffic pause: docker restart of the door under 16 clients", restarted, false),
    );
    sh("docker", ["rm", "-f", `${project}-nginx`, `${project}-haproxy-by-hand`]);
    reroll(dir, project, ["down"]);

    // 4. Docker's default 30 s HEALTHCHECK interval: reroll's probe against Swarm waiting for Docker
    const slowDir = setupApp(root, slow);
    const slowPort = freePort();
    compose(slowDir, { version: "v1", port: slowPort, healthcheck: "default" });
    reroll(slowDir, slow, ["up"]);
    compose(slowDir, { version: "v2", port: slowPort, healthcheck: "default" });
    reroll(slowDir, slow, ["build"]);
    const rerollMs = reroll(slowDir, slow, ["up", "--no-build"]).ms;
    reroll(slowDir, slow, ["down"]);

    if (joinedSwarm) sh("docker", ["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    sh("docker", ["network", "create", "--driver", "overlay", "--label", `dev.reroll.project=${swarmName}`, `${swarmName}-net`]);
    // v1 starts without its healthcheck (only the update is measured), v2 with the image's own: 30 s interval
    sh("docker", ["service", "create", "--quiet", "--detach=false", "--name", swarmName, "--network", `${swarmName}-net`, "--label", `dev.reroll.project=${swarmName}`,
      "--replicas", "3", "--no-healthcheck", "--update-parallelism", "1", "--update-monitor", "1s", "--update-order", "start-first", "--stop-grace-period", "2s", `${slow}-web:r1`]);
    const swarmMs = sh("docker", ["service", "update", "--quiet", "--detach=false", "--image", `${slow}-web:r2`,
      "--health-cmd", "node -e \"require('http').get('http://127.0.0.1:8080/health', r => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))\"",
      "--health-interval", "30s", swarmName]).ms;
    rows.push({
      benchmark: "3-replica rollout, image HEALTHCHECK at Docker's default 30 s interval",
      value: `${(rerollMs / 1000).toFixed(1)} s`,
      baselineName: "docker service update (waits for Docker's first health check)",
      baseline: `${(swarmMs / 1000).toFixed(1)} s`,
      ratio: fmt.ratio(rerollMs / swarmMs),
      target: "≤ 1×",
      ok: rerollMs <= swarmMs,
    });
    return rows;
  } finally {
    for (const name of [project, slow, naive, swarmName]) removeBenchProject(name);
    if (joinedSwarm) sh("docker", ["swarm", "leave", "--force"], { allowFail: true });
    rmSync(root, { recursive: true, force: true });
  }
}
