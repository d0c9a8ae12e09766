// Shared helpers for the benchmarks: timing child processes, medians, the result table.
import { spawnSync } from "node:child_process";

/** Runs a command to its end: its wall time and stdout; throws on a non-zero exit unless allowFail. */
export function sh(command, args, options = {}) {
  const start = process.hrtime.bigint();
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...options });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0 && options.allowFail !== true) throw new Error(`${command} ${args.join(" ")} exited ${r.status}: ${(r.stderr ?? "").slice(-1500)}`);
  return { ms, stdout: r.stdout ?? "", status: r.status };
}

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
export function printTable(rows) {
  const header = ["benchmark", "reroll", "compared with", "baseline", "ratio", "target", "met"];
  const lines = rows.map((r) => [r.benchmark, r.value, r.baselineName ?? "—", r.baseline ?? "—", r.ratio ?? "—", r.target, r.ok ? "yes" : "NO"]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const row = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(" | ")} |`;
  console.log(row(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const l of lines) console.log(row(l));
}

/** A row comparing reroll with a baseline measured in the same run; met when the ratio is within `maxRatio`. */
export function ratioRow(benchmark, value, baselineName, baseline, maxRatio, format = fmt.ms) {
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
