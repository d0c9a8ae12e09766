// Benchmarks for `reroll up` (rollouts of 3 and 30 replicas) against `docker service update`
// on a single-node swarm with the same images and settings, and `reroll status` with 100
// containers. Cleans up every container, service and image it made; leaves swarm mode only
// if it entered it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { floorRollout } from "./floor.js";
import { fmt, limitRow, median, ratioRow, removeBenchProject, sh } from "./lib.js";

const BIN = fileURLToPath(new URL("../bin/reroll.js", import.meta.url));
const STATUS_TARGET_MS = 300;
const SWARM_RATIO_TARGET = 1.0;
const FLOOR_RATIO_TARGET = 1.1;
/** 30 replicas roll 5 at a time on both sides, so the suite stays within its time budget */
const THIRTY_PARALLELISM = 5;
/**
 * The 30 replicas' healthcheck interval. Every check is an exec, which costs the daemon,
 * containerd and runc ~0.1 s of CPU here: 30-35 containers checking every 2 s saturated both
 * cores (load average ~40), and Swarm then paused its own update in every try of sessions 10
 * and 11 (its checks timed out three times in a row and it killed the tasks as unhealthy).
 * At 5 s Swarm finished every one of its runs (67-80 s; reroll 67-79 s).
 */
const THIRTY_INTERVAL_S = 5;
const THIRTY_INTERVAL = `${THIRTY_INTERVAL_S}s`;
/** rounds of the 3-replica rollout, reroll and floor alternating: the ratio to the floor is the target closest to its bound */
const THREE_ROUNDS = 5;
/** rounds of the 3-replica rollout of the fixture that ignores SIGTERM (a figure for the docs, no target) */
const IGNORING_ROUNDS = 3;
/**
 * Rounds of the 30-replica rollout on each side, whose medians are compared. Single runs of
 * the same rollout swung by ±10 s on this machine (reroll 67.3-79.4 s, Swarm 67.4-79.7 s in
 * three runs each), so one run decides nothing. Each round replaces 30 healthchecked replicas
 * three times (reroll, the floor, Swarm), ~4 minutes here; REROLL_BENCH_THIRTY_ROUNDS=1
 * gives a quick, rough figure, and 0 leaves the 30-replica rows out (a check of the
 * 3-replica rows alone, in ~3 minutes).
 */
const THIRTY_ROUNDS = Math.max(0, Math.trunc(Number(process.env.REROLL_BENCH_THIRTY_ROUNDS ?? 3)) || 0);

/**
 * The fixture: busybox httpd behind a healthcheck. It runs under `init: true` (docker-init
 * as PID 1 forwards SIGTERM), so an old replica stops on SIGTERM in ~0.25 s here, as nginx
 * or any server with a SIGTERM handler does. httpd as PID 1 itself ignores SIGTERM (the
 * kernel drops signals PID 1 has no handler for): each stop then takes the whole 1 s grace
 * period and a kill, ~1.25 s. Until session 21 every rollout row ran that fixture; the
 * floor never waits for a stop, so the rollout's last stop was the app's time, not the
 * tool's. `sigtermIgnored` gives it back, for the row that still measures it.
 */
function project(root, name, replicas, parallelism = 1, interval = "1s", { sigtermIgnored = false } = {}) {
  const dir = join(root, name);
  mkdirSync(join(dir, "web", "www"), { recursive: true });
  writeFileSync(
    join(dir, "compose.yaml"),
    [
      "services:",
      "  web:",
      "    build: ./web",
      ...(sigtermIgnored ? [] : ["    init: true"]),
      "    stop_grace_period: 1s",
      "    healthcheck:",
      '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]',
      `      interval: ${interval}`,
      "      timeout: 3s",
      "      retries: 3",
      "    deploy:",
      `      replicas: ${replicas}`,
      `      update_config: { parallelism: ${parallelism}, monitor: 1s, order: start-first }`,
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "web", "Dockerfile"), 'FROM reroll-local/busybox:latest\nCOPY www /www\nCMD ["httpd", "-f", "-p", "80", "-h", "/www"]\n');
  return dir;
}

const reroll = (dir, name, args) => sh(BIN, [...args, "-p", name, "--output", "plain"], { cwd: dir });

/** r1 up, r2 built; returns the wall time of `reroll up --no-build` from r1 to r2. */
function rerollRollout(root, name, replicas, parallelism = 1, interval = "1s", options = {}) {
  // r1 goes up all at once (parallelism 0), as the floor's and Swarm's first replicas do: only the update is measured
  const dir = project(root, name, replicas, 0, interval, options);
  writeFileSync(join(dir, "web", "www", "index.html"), "r1\n");
  reroll(dir, name, ["up"]);
  project(root, name, replicas, parallelism, interval, options);
  writeFileSync(join(dir, "web", "www", "index.html"), "r2\n");
  reroll(dir, name, ["build"]);
  const { ms } = reroll(dir, name, ["up", "--no-build"]);
  removeContainers(name);
  return ms;
}

/**
 * Swarm's own update pauses when a task fails within its monitor window (seen with 30
 * replicas on a loaded machine: healthchecks timing out, tasks killed as unhealthy). Such a
 * run is no measurement of Swarm's speed: it is removed, reported, and measured again once
 * with a new service. A run that pauses twice is left out of the median.
 */
function swarmRolloutRetried(name, ...args) {
  for (const attempt of [name, `${name}-again`]) {
    try {
      return { ms: swarmRollout(attempt, ...args), retried: attempt !== name, failed: false };
    } catch (error) {
      removeBenchProject(attempt);
      const why = String(error.message).trim().split("\n").at(-1);
      process.stderr.write(`[bench] docker service update of ${attempt} failed (${why})${attempt === name ? "; measuring again with a new service" : "; left out"}\n`);
    }
  }
  return { ms: NaN, retried: true, failed: true };
}

/** The median of Swarm's runs that finished, and what the row says about those that did not. */
function swarmFigure(runs) {
  const finished = runs.filter((r) => !r.failed).map((r) => r.ms);
  const retried = runs.filter((r) => r.retried).length;
  const failed = runs.length - finished.length;
  const note =
    retried === 0
      ? ""
      : ` (Swarm paused its own update in ${retried} of ${runs.length} runs${failed === 0 ? ", each measured again" : `; ${failed} paused twice, left out`})`;
  return { ms: finished.length === 0 ? NaN : median(finished), note };
}

function swarmRollout(name, replicas, imageFrom, imageTo, parallelism = 1, interval = "1s") {
  const common = [
    "--health-cmd", "wget -q -O /dev/null http://127.0.0.1/",
    "--health-interval", interval, "--health-timeout", "3s", "--health-retries", "3",
    "--update-parallelism", String(parallelism), "--update-monitor", "1s", "--update-order", "start-first",
    "--stop-grace-period", "1s", "--init",
  ];
  // on an overlay network, as `docker stack deploy` puts every service (and as reroll puts
  // replicas on the project network): tasks on the default bridge would start cheaper
  sh("docker", ["network", "create", "--driver", "overlay", "--label", `dev.reroll.project=${name}`, `${name}-net`]);
  sh("docker", ["service", "create", "--quiet", "--detach=false", "--name", name, "--network", `${name}-net`, "--label", `dev.reroll.project=${name}`, "--replicas", String(replicas), ...common, imageFrom]);
  const ms = sh("docker", ["service", "update", "--quiet", "--detach=false", "--image", imageTo, name]).ms;
  removeBenchProject(name);
  return ms;
}

/** Removes a project's containers, so that their healthchecks do not load later measurements. */
function removeContainers(name) {
  const ids = sh("docker", ["ps", "-aq", "--filter", `label=dev.reroll.project=${name}`], { allowFail: true }).stdout.trim();
  if (ids) sh("docker", ["rm", "-f", "-v", ...ids.split("\n")], { allowFail: true });
}

export async function run() {
  const root = mkdtempSync(join(tmpdir(), "reroll-bench-rollout-"));
  const stamp = Math.floor(Date.now() / 1000);
  const names = [];
  const state = sh("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.trim();
  const joinedSwarm = state !== "active";
  try {
    // reroll and the floor: 3 replicas r1 → r2, in alternating rounds, so that the machine's
    // drift falls on both alike; then 30 replicas, alternating the same way. All before
    // Swarm mode is entered: a swarm manager's own work would load only the rounds after it.
    const three = `reroll-bench-${stamp}-three`;
    const thirty = `reroll-bench-${stamp}-thirty`;
    // the floor and Swarm run reroll's own r1 and r2 images of the first project
    const from = `${three}0-web:r1`;
    const to = `${three}0-web:r2`;
    const rerollRuns = [];
    const floorRuns = [];
    for (let i = 0; i < THREE_ROUNDS; i += 1) {
      names.push(`${three}${i}`);
      rerollRuns.push(rerollRollout(root, `${three}${i}`, 3));
      const label = `reroll-bench-${stamp}-floor${i}`;
      names.push(label);
      floorRuns.push(await floorRollout({ label, replicas: 3, parallelism: 1, imageFrom: from, imageTo: to, intervalMs: 1000, monitorMs: 1000 }));
    }
    const reroll3 = median(rerollRuns);
    const floor3 = median(floorRuns);
    // the same rollout of an app that ignores SIGTERM, on both sides: what its last stop costs
    const ignoring = `reroll-bench-${stamp}-nosigterm`;
    const rerollIgnoringRuns = [];
    const floorIgnoringRuns = [];
    for (let i = 0; i < IGNORING_ROUNDS; i += 1) {
      names.push(`${ignoring}${i}`, `${ignoring}-floor${i}`);
      rerollIgnoringRuns.push(rerollRollout(root, `${ignoring}${i}`, 3, 1, "1s", { sigtermIgnored: true }));
      floorIgnoringRuns.push(await floorRollout({ label: `${ignoring}-floor${i}`, replicas: 3, parallelism: 1, imageFrom: from, imageTo: to, intervalMs: 1000, monitorMs: 1000, init: false }));
    }
    const reroll30Runs = [];
    const floor30Runs = [];
    for (let i = 0; i < THIRTY_ROUNDS; i += 1) {
      names.push(`${thirty}${i}`, `reroll-bench-${stamp}-floor30-${i}`);
      reroll30Runs.push(rerollRollout(root, `${thirty}${i}`, 30, THIRTY_PARALLELISM, THIRTY_INTERVAL));
      floor30Runs.push(
        await floorRollout({ label: `reroll-bench-${stamp}-floor30-${i}`, replicas: 30, parallelism: THIRTY_PARALLELISM, imageFrom: from, imageTo: to, intervalMs: THIRTY_INTERVAL_S * 1000, monitorMs: 1000 }),
      );
    }
    const reroll30 = median(reroll30Runs);
    const floor30 = median(floor30Runs);

    // Swarm with the same images and settings
    if (joinedSwarm) sh("docker", ["swarm", "init", "--advertise-addr", "127.0.0.1"]);
    const swarmName = (i) => `reroll-bench-${stamp}-swarm${i}`;
    for (const i of [0, 1, 2, ...Array.from({ length: THIRTY_ROUNDS }, (_, r) => `30-${r}`)]) names.push(swarmName(i), `${swarmName(i)}-again`);
    const swarm3Runs = [0, 1, 2].map((i) => swarmRolloutRetried(swarmName(i), 3, from, to));
    const swarm30Runs = Array.from({ length: THIRTY_ROUNDS }, (_, r) => swarmRolloutRetried(swarmName(`30-${r}`), 30, from, to, THIRTY_PARALLELISM, THIRTY_INTERVAL));
    const swarm3 = swarmFigure(swarm3Runs);
    const swarm30 = swarmFigure(swarm30Runs);

    // status with 100 containers (created, never started: status reads labels, not processes)
    const statusProject = `reroll-bench-${stamp}-status`;
    names.push(statusProject);
    const statusDir = project(root, statusProject, 100);
    for (let i = 1; i <= 100; i += 1) {
      sh("docker", ["create", "--name", `${statusProject}-web-r1-${i}`, "--label", `dev.reroll.project=${statusProject}`, "--label", "dev.reroll.service=web",
        "--label", "dev.reroll.revision=1", "--label", `dev.reroll.slot=${i}`, "reroll-local/busybox:latest", "true"]);
    }
    const statusTimes = [];
    for (let i = 0; i < 7; i += 1) statusTimes.push(reroll(statusDir, statusProject, ["status"]).ms);
    // the node start `reroll status` gets (its launcher leaves NODE_EXTRA_CA_CERTS out), and the environment's
    const bareEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "NODE_EXTRA_CA_CERTS"));
    const nodeTimes = [];
    const bareTimes = [];
    for (let i = 0; i < 7; i += 1) {
      nodeTimes.push(sh(process.execPath, ["-e", "0"]).ms);
      bareTimes.push(sh(process.execPath, ["-e", "0"], { env: bareEnv }).ms);
    }

    return [
      ratioRow(`up: 3 replicas r1 → r2, 1s healthcheck, 1s monitor (median wall of ${THREE_ROUNDS})`, reroll3, `docker service update (median of 3)${swarm3.note}`, swarm3.ms, SWARM_RATIO_TARGET),
      ratioRow("up: the same 3 replicas", reroll3, `floor (daemon create/start + first healthy, per slot; ${THREE_ROUNDS} rounds alternating)`, floor3, FLOOR_RATIO_TARGET),
      {
        benchmark: `up: the same 3 replicas, app ignoring SIGTERM (no init; each stop waits its 1s grace and a kill; median of ${IGNORING_ROUNDS})`,
        value: fmt.ms(median(rerollIgnoringRuns)),
        baselineName: `floor, same fixture (${IGNORING_ROUNDS} rounds alternating; it never waits for a stop)`,
        baseline: fmt.ms(median(floorIgnoringRuns)),
        ratio: fmt.ratio(median(rerollIgnoringRuns) / median(floorIgnoringRuns)),
        target: "measured (docs)",
        ok: true,
      },
      ...(THIRTY_ROUNDS === 0
        ? []
        : [
            ratioRow(
              `up: 30 replicas r1 → r2, parallelism ${THIRTY_PARALLELISM}, ${THIRTY_INTERVAL} healthcheck (${THIRTY_ROUNDS === 1 ? "wall, one run" : `median wall of ${THIRTY_ROUNDS}`})`,
              reroll30,
              `docker service update${THIRTY_ROUNDS === 1 ? "" : ` (median of ${THIRTY_ROUNDS})`}${swarm30.note}`,
              swarm30.ms,
              SWARM_RATIO_TARGET,
            ),
            ratioRow("up: the same 30 replicas", reroll30, `floor (per slot, in ${THIRTY_PARALLELISM} lanes${THIRTY_ROUNDS === 1 ? "" : `; ${THIRTY_ROUNDS} rounds alternating`})`, floor30, FLOOR_RATIO_TARGET),
          ]),
      {
        ...limitRow("status: 100 containers (median wall, whole command)", median(statusTimes), STATUS_TARGET_MS),
        ...(process.env.NODE_EXTRA_CA_CERTS === undefined
          ? { baselineName: "node -e 0", baseline: fmt.ms(median(nodeTimes)) }
          : { baselineName: "node -e 0 as reroll starts it / with NODE_EXTRA_CA_CERTS", baseline: `${fmt.ms(median(bareTimes))} / ${fmt.ms(median(nodeTimes))}` }),
      },
    ];
  } finally {
    for (const name of names) removeBenchProject(name);
    if (joinedSwarm) sh("docker", ["swarm", "leave", "--force"], { allowFail: true });
    rmSync(root, { recursive: true, force: true });
  }
}
