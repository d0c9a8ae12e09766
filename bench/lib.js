// Shared helpers for the benchmarks: timing child processes, medians, the result table.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Runs a command to its end: its wall time and stdout; throws on a non-zero exit unless allowFail. */
export function sh(command, args, options = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0 && options.allowFail !== true) throw new Error(`${command} ${args.join(" ")} exited ${r.status}: ${(r.stderr ?? "").slice(-1500)}`);
  return { ms, stdout: r.stdout ?? "", status: r.status };
}

/**
 * `sh` without blocking this process: what runs here meanwhile (a load generator measuring
 * the command's effect) keeps running. A benchmark whose load shares the process must use it.
 */
export function shAsync(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...options });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (status) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (status !== 0 && options.allowFail !== true) reject(new Error(`${command} ${args.join(" ")} exited ${status}: ${stderr.slice(-1500)}`));
      else resolve({ ms, stdout, status });
    });
  });
}

/**
 * The CPU time (user + system, in seconds) a process and every process under it have spent
 * so far, from /proc: a proxy's master and its workers, a container's first process and its children.
 */
export function cpuSecondsOfTree(rootPid) {
  const processes = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // fields after the command name, which may hold spaces: state ppid … utime(14) stime(15)
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    processes.push({ pid: Number(entry), ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  const tree = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of processes) {
      if (!tree.has(p.pid) && tree.has(p.ppid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return processes.filter((p) => tree.has(p.pid)).reduce((sum, p) => sum + p.ticks, 0) / CLOCK_TICKS_PER_SECOND;
}

/** Linux's USER_HZ, what /proc/PID/stat counts CPU time in */
const CLOCK_TICKS_PER_SECOND = 100;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Wall time of one run of a command, in milliseconds; throws when it fails. */
export function timeCommand(command, args, options = {}) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"], ...options });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.status}: ${result.stderr?.toString() ?? ""}`);
  }
  return ms;
}

/**
 * Runs each measurement `rounds` times, interleaved (a, b, a, b …) so that machine noise
 * falls on both sides alike, after `warmup` unrecorded rounds. Returns medians.
 */
export function interleaved(measurements, { rounds = 21, warmup = 3 } = {}) {
  const samples = measurements.map(() => []);
  for (let round = 0; round < warmup + rounds; round += 1) {
    measurements.forEach((measure, i) => {
      const value = measure();
      if (round >= warmup) samples[i].push(value);
    });
  }
  return samples.map(median);
}

export const fmt = {
  ms: (v) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`,
  mb: (v) => `${v.toFixed(1)} MB`,
  count: (v) => String(v),
  ratio: (v) => `${v.toFixed(2)}×`,
};

/** Prints rows of {benchmark, value, baselineName, baseline, ratio, target, ok} as a table. */
/** The table as markdown lines (what README's Performance section shows). */
export function tableLines(rows) {
  const header = ["benchmark", "reroll", "compared with", "baseline", "ratio", "target", "met"];
  const lines = rows.map((r) => [r.benchmark, r.value, r.baselineName ?? "—", r.baseline ?? "—", r.ratio ?? "—", r.target, r.ok ? "yes" : "NO"]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const row = (cells) => `| ${cells.map((c, i) => String(c).replaceAll("|", "\\|").padEnd(widths[i])).join(" | ")} |`;
  return [row(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...lines.map(row)];
}

export function printTable(rows) {
  for (const line of tableLines(rows)) console.log(line);
}

/**
 * A row comparing reroll with a baseline measured in the same run; met when the ratio is within
 * `maxRatio`. A baseline that could not be measured (NaN) leaves the row unmet, with no ratio.
 */
export function ratioRow(benchmark, value, baselineName, baseline, maxRatio, format = fmt.ms) {
  if (!Number.isFinite(baseline)) return { benchmark, value: format(value), baselineName, baseline: "not measured", ratio: "—", target: `≤ ${maxRatio}×`, ok: false };
  return {
    benchmark,
    value: format(value),
    baselineName,
    baseline: format(baseline),
    ratio: fmt.ratio(value / baseline),
    target: `≤ ${maxRatio}×`,
    ok: value / baseline <= maxRatio,
  };
}

/** A row with an absolute target: met when the value is below `max`. */
export function limitRow(benchmark, value, max, format = fmt.ms) {
  return { benchmark, value: format(value), target: `< ${format(max)}`, ok: value < max };
}

function lines(text) {
  return text.trim() === "" ? [] : [...new Set(text.trim().split("\n"))];
}

/**
 * Removes everything a benchmark made under one project label: its Swarm service (waiting for
 * the service's task containers to go), containers with their anonymous volumes, image tags and
 * networks. Every step tolerates what is already gone.
 */
export function removeBenchProject(name) {
  const label = `label=dev.reroll.project=${name}`;
  const services = lines(sh("docker", ["service", "ls", "-q", "--filter", label], { allowFail: true }).stdout);
  if (services.length > 0) {
    sh("docker", ["service", "rm", ...services], { allowFail: true });
    for (let i = 0; i < 50 && lines(sh("docker", ["ps", "-aq", "--filter", `label=com.docker.swarm.service.name=${name}`], { allowFail: true }).stdout).length > 0; i += 1) {
      spawnSync("sleep", ["0.2"]);
    }
  }
  const containers = lines(sh("docker", ["ps", "-aq", "--filter", label], { allowFail: true }).stdout);
  if (containers.length > 0) sh("docker", ["rm", "-f", "-v", ...containers], { allowFail: true });
  const tags = lines(sh("docker", ["images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", label], { allowFail: true }).stdout)
    .filter((tag) => !tag.endsWith(":<none>"));
  if (tags.length > 0) sh("docker", ["rmi", "-f", ...tags], { allowFail: true });
  const networks = lines(sh("docker", ["network", "ls", "-q", "--filter", label], { allowFail: true }).stdout);
  if (networks.length > 0) sh("docker", ["network", "rm", ...networks], { allowFail: true });
}

/**
 * A benchmark killed mid-run (Ctrl-C, a crash, a machine restart) leaves its projects behind,
 * and a Swarm service among them keeps recreating 30 healthchecked tasks that would load every
 * later measurement. Bench projects are named `reroll-bench-<unix seconds>-…`; this removes
 * those started more than `maxAgeSeconds` ago (a whole `npm run bench` takes about 10 minutes).
 */
export function removeStaleBenchProjects(maxAgeSeconds = 1800) {
  const now = Date.now() / 1000;
  const found = new Set();
  const filter = ["--filter", "label=dev.reroll.project"];
  const label = '{{.Label "dev.reroll.project"}}';
  const names = [
    sh("docker", ["ps", "-a", ...filter, "--format", label], { allowFail: true }).stdout,
    sh("docker", ["network", "ls", ...filter, "--format", label], { allowFail: true }).stdout,
    sh("docker", ["service", "ls", ...filter, "--format", "{{.Name}}"], { allowFail: true }).stdout,
  ];
  const images = lines(sh("docker", ["images", "-q", ...filter], { allowFail: true }).stdout);
  if (images.length > 0) {
    names.push(sh("docker", ["image", "inspect", "--format", '{{index .Config.Labels "dev.reroll.project"}}', ...images], { allowFail: true }).stdout);
  }
  for (const text of names) for (const name of lines(text)) found.add(name);
  const stale = [...found].filter((name) => {
    const started = /^reroll-bench-(\d+)-/.exec(name)?.[1];
    return started !== undefined && now - Number(started) > maxAgeSeconds;
  });
  for (const name of stale) removeBenchProject(name);
  if (stale.length > 0) process.stderr.write(`[bench] removed ${stale.length} projects left by an earlier, interrupted run\n`);
  return stale;
}
