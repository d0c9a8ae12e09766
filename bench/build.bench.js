// Benchmarks for `reroll build` against `docker build` (the same legacy builder the Engine
// API uses here), on the same context, in the same run.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fmt, limitRow, median, ratioRow } from "./lib.js";

// reroll runs as a user runs it: the bin as a program (its launcher included), under GNU
// time, which reports the process's peak resident memory
const BIN = fileURLToPath(new URL("../bin/reroll.js", import.meta.url));
const BASE = "reroll-local/busybox:latest";
const WALL_RATIO_TARGET = 1.1;
const LARGE_TIME_RATIO_TARGET = 1.2;
const LARGE_RSS_TARGET_MB = 150;

function run(command, args, options) {
  const start = process.hrtime.bigint();
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.status}: ${r.stderr?.slice(-2000)}`);
  return { ms, stderr: r.stderr };
}

function cleanup(project) {
  const ids = spawnSync("docker", ["images", "-q", "--filter", `label=dev.reroll.project=${project}`], { encoding: "utf8" }).stdout.trim();
  const tags = spawnSync("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", `label=dev.reroll.project=${project}`], { encoding: "utf8" }).stdout.trim();
  if (tags) spawnSync("docker", ["rmi", "-f", ...new Set(tags.split("\n"))], { stdio: "ignore" });
  if (ids) spawnSync("docker", ["rmi", "-f", ...new Set(ids.split("\n"))], { stdio: "ignore" });
  spawnSync("docker", ["rm", "-f", `${project}-app-revision-lock`], { stdio: "ignore" });
}

function writeFiles(dir, count, size, seed) {
  mkdirSync(dir, { recursive: true });
  const chunk = Buffer.alloc(size, seed);
  for (let i = 0; i < count; i += 1) {
    chunk.writeUInt32LE(i, 0);
    writeFileSync(join(dir, `f${i}.bin`), chunk);
  }
}

/** One comparison: reroll build vs docker build of `dir`, interleaved, uncached, medians. */
function compare(dir, project, rounds) {
  const reroll = [];
  const dockerBuild = [];
  const rss = [];
  // the context was just written: its dirty pages go to disk first, not under the first rounds
  spawnSync("sync");
  const ours = () => {
    const r = run("/usr/bin/time", ["-f", "REROLL_MAX_RSS_KB=%M", BIN, "build", "-p", project, "--no-cache", "--output", "plain"], { cwd: dir });
    reroll.push(r.ms);
    rss.push(Number(/REROLL_MAX_RSS_KB=(\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024);
  };
  const theirs = () =>
    dockerBuild.push(
      run("docker", ["build", "-q", "--no-cache", "--label", `dev.reroll.project=${project}`, "-t", `${project}-cli:bench`, "."], {
        cwd: dir,
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
      }).ms,
    );
  // each side goes first in every other round: what the one before left (the daemon
  // committing, the disk writing back) falls on both alike
  for (let i = 0; i < rounds; i += 1) {
    if (i % 2 === 0) {
      ours();
      theirs();
    } else {
      theirs();
      ours();
    }
  }
  return { reroll: median(reroll), docker: median(dockerBuild), rss: Math.max(...rss) };
}

export async function run_() {
  const root = mkdtempSync(join(tmpdir(), "reroll-bench-build-"));
  const stamp = Math.floor(Date.now() / 1000);
  const ordinaryProject = `reroll-bench-${stamp}-ordinary`;
  const largeProject = `reroll-bench-${stamp}-large`;
  try {
    // An ordinary service: 2,000 source files (~16 MB), COPY, and a RUN that reads them all.
    const ordinary = join(root, "ordinary");
    writeFiles(join(ordinary, "src"), 2000, 8192, 1);
    writeFileSync(join(ordinary, "compose.yaml"), "services:\n  app:\n    build: .\n");
    writeFileSync(join(ordinary, "Dockerfile"), `FROM ${BASE}\nCOPY src /app/src\nRUN find /app -type f | xargs cat | md5sum > /app/sum\nCMD ["cat", "/app/sum"]\n`);
    const small = compare(ordinary, ordinaryProject, 5);

    // 500 MB of context, 95% of it excluded by .dockerignore (node_modules, build output).
    const large = join(root, "large");
    writeFiles(join(large, "node_modules", "a"), 230, 1024 * 1024, 2);
    writeFiles(join(large, "node_modules", "b"), 245, 1024 * 1024, 3);
    writeFiles(join(large, "src"), 25, 1024 * 1024, 4);
    writeFileSync(join(large, ".dockerignore"), "node_modules\n*.log\n");
    writeFileSync(join(large, "compose.yaml"), "services:\n  app:\n    build: .\n");
    writeFileSync(join(large, "Dockerfile"), `FROM ${BASE}\nCOPY src /app/src\n`);
    const big = compare(large, largeProject, 5);

    return [
      ratioRow("build: 2,000-file context, uncached (median wall)", small.reroll, "docker build (same builder)", small.docker, WALL_RATIO_TARGET),
      ratioRow("build: 500 MB context, 95% in .dockerignore (median wall)", big.reroll, "docker build (same builder)", big.docker, LARGE_TIME_RATIO_TARGET),
      limitRow("build: 500 MB context, reroll's peak memory (max RSS)", big.rss, LARGE_RSS_TARGET_MB, fmt.mb),
    ];
  } finally {
    cleanup(ordinaryProject);
    cleanup(largeProject);
    rmSync(root, { recursive: true, force: true });
  }
}
export { run_ as run };
