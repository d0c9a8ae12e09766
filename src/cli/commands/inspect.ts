import { down, history, status } from "../../rollout/inspect.js";
import { connectEngine } from "../engine.js";
import type { CliIo } from "../io.js";
import type { DownCommandOptions, HistoryCommandOptions, StatusCommandOptions } from "../program.js";
import { paint, resolveOutputMode } from "../render/output-mode.js";
import { specFor } from "../spec.js";
import { isRerollError, RerollError } from "../../core/errors.js";
import { projectNameProblem } from "../../core/spec/validate.js";
import type { Spec } from "../../core/spec/types.js";

// Read-only and teardown commands: kept apart from up/rollback so they load none of the
// build and rollout code (status must answer fast, bench/).

/** What a door under a hold says in `status` and `proxy status`. */
export function holdLine(holdMs: number): string {
  return `holding new requests (at most ${Math.round(holdMs / 1000)} s from when the hold began; reroll proxy resume lets them go)`;
}

export async function runStatus(options: StatusCommandOptions, io: CliIo): Promise<void> {
  const mode = resolveOutputMode(options.global.output, io);
  const spec = await specFor(options.global, io);
  const result = await status(spec, await connectEngine(io), options.services);
  if (mode === "json") {
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const lines: string[] = [];
  if (result.lock !== undefined) lines.push(`${paint(mode, "33", "rollout in progress:")} ${result.lock}`);
  if (result.staleLock !== undefined) lines.push(`${paint(mode, "33", "interrupted rollout:")} ${result.staleLock} is gone; the next reroll up or rollback takes its lock over`);
  for (const s of result.services) {
    const revisions = [...new Set(s.replicas.filter((r) => r.state === "running").map((r) => `r${r.revision}`))].join(", ") || "none";
    lines.push(
      `${paint(mode, "1", s.service)}  ${s.ready}/${s.desiredReplicas} ready  running ${revisions}` +
        `  last completed ${s.current === undefined ? "—" : `r${s.current}`}  newest build ${s.newest === undefined ? "—" : `r${s.newest}`}  ${s.rollout === "converged" ? paint(mode, "32", s.rollout) : paint(mode, "33", s.rollout)}`,
    );
    if (s.fileDiffers) lines.push(`  ${paint(mode, "33", "the Compose file configures it otherwise than it runs")} (a rollback, or an edit since the last up): reroll up applies the file`);
    for (const p of s.proxies) {
      lines.push(`  proxy ${p.name}  ${p.published.join(", ") || "no published port"}${p.error === undefined ? "" : paint(mode, "33", `  ${p.error}`)}`);
      if (p.holdMs !== undefined) lines.push(`    ${paint(mode, "33", holdLine(p.holdMs))}`);
      for (const t of p.targets) lines.push(`    → ${t.name ?? t.id}  ${t.state === "ready" ? t.state : paint(mode, "33", t.state)}  ${t.outstanding} in flight`);
    }
    for (const r of s.replicas) {
      lines.push(`  ${r.name}  r${r.revision}  slot ${r.slot}  ${r.state}${r.health === undefined ? "" : ` (${r.health})`}${r.ready ? "" : paint(mode, "33", "  not ready")}`);
    }
  }
  if (result.orphans.length > 0) {
    const services = [...new Set(result.orphans.map((o) => o.service))];
    lines.push(`${paint(mode, "33", "orphans")} (services the Compose file no longer has; reroll up --remove-orphans or reroll down ${services.join(" ")} removes them):`);
    for (const o of result.orphans) lines.push(`  ${o.name}  ${o.service}  ${o.state}`);
  }
  io.stdout.write(`${lines.join("\n")}\n`);
}

export async function runHistory(options: HistoryCommandOptions, io: CliIo): Promise<void> {
  const mode = resolveOutputMode(options.global.output, io);
  const spec = await specFor(options.global, io);
  const entries = await history(spec, await connectEngine(io), options.service);
  if (mode === "json") {
    io.stdout.write(`${JSON.stringify({ service: options.service, revisions: entries })}\n`);
    return;
  }
  // one row per revision: when its image was built, and the last rollout outcome with its time
  const stamp = (ms: number | undefined) => (ms === undefined ? "—" : new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z"));
  const rows = entries.map((e) => {
    const outcome = e.outcomes.at(-1);
    return [
      e.current ? "*" : " ",
      `r${e.revision}`,
      e.imageId?.replace(/^sha256:/, "").slice(0, 12) ?? "—",
      stamp(e.created === undefined ? undefined : e.created * 1000),
      outcome?.outcome ?? "built",
      stamp(outcome?.at),
      [e.baseImages.join(", ") || "—", e.kept ? "" : "(image removed)", outcome?.detail === undefined ? "" : `— ${outcome.detail}`].filter((x) => x !== "").join("  "),
    ];
  });
  const header = [" ", "REV", "IMAGE", "BUILT", "OUTCOME", "AT", "BASE IMAGES"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  const lines = rows.length === 0 ? [] : [paint(mode, "2", line(header)), ...rows.map((r, k) => (entries[k]!.current ? paint(mode, "32", line(r)) : line(r)))];
  io.stdout.write(`${lines.length === 0 ? `${options.service} has no revisions yet` : lines.join("\n")}\n`);
}

export async function runDown(options: DownCommandOptions, io: CliIo): Promise<void> {
  const mode = resolveOutputMode(options.global.output, io);
  const spec = await downSpec(options, io);
  const result = await down(spec, await connectEngine(io), {
    services: options.services,
    volumes: options.volumes,
    lockWaitMs: options.lockWaitMs,
    signal: io.signal,
    // down prints only its result; a wait for the lock is said on stderr, where progress goes
    onEvent: (event) => {
      if (event.type === "lock-wait") io.stderr.write(`waiting for ${event.name}, held by ${event.holder}\n`);
    },
  });
  if (mode === "json") io.stdout.write(`${JSON.stringify(result)}\n`);
  else io.stdout.write(`${result.removed.length === 0 ? "nothing to remove" : result.removed.map((n) => `removed ${n}`).join("\n")}\n`);
}

/**
 * The project `down` tears down. It finds everything by label, so a project named with -p
 * (or COMPOSE_PROJECT_NAME) needs no Compose file: the one deployed may be gone, or
 * elsewhere, when the project has to come down. A Compose file that is there is still read
 * (its `name:` may be the project's) and must be valid.
 */
async function downSpec(options: DownCommandOptions, io: CliIo): Promise<Pick<Spec, "project"> & Partial<Pick<Spec, "services" | "file">>> {
  try {
    return await specFor(options.global, io);
  } catch (error) {
    const project = options.global.project ?? (io.env["COMPOSE_PROJECT_NAME"] || undefined);
    if (!isRerollError(error) || error.code !== "E_SPEC_NOT_FOUND" || options.global.file !== undefined) throw error;
    if (project === undefined) {
      throw new RerollError(error.code, error.message, { hint: "Run reroll down in the directory that has your compose.yaml, or name the project: reroll down -p NAME." });
    }
    const nameProblem = projectNameProblem(project);
    if (nameProblem !== undefined) {
      throw new RerollError("E_USAGE", `${nameProblem}.`, {
        hint: "Give the project name reroll up used: the Compose file's name:, or else its directory's name.",
      });
    }
    return { project };
  }
}
