import { rollback, up, type RolloutOptions, type RolloutResult } from "../../rollout/up.js";
import { connectEngine } from "../engine.js";
import { specFor } from "../spec.js";
import type { CliIo } from "../io.js";
import type { RollbackCommandOptions, UpCommandOptions } from "../program.js";
import { createEventRenderer } from "../render/events.js";
import { resolveOutputMode, type OutputMode } from "../render/output-mode.js";

function printResult(result: RolloutResult, dryRun: boolean, mode: OutputMode, io: CliIo): void {
  if (mode === "json") {
    io.stdout.write(`${JSON.stringify({ type: "result", project: result.project, dryRun, services: result.services, ...(result.verify === undefined ? {} : { verify: result.verify }) })}\n`);
    return;
  }
  for (const s of result.services) {
    if (dryRun) io.stdout.write(`${s.plan}\n`);
    else io.stdout.write(`${s.service} r${s.revision} ${s.outcome}\n`);
  }
}

/** up and rollback share everything but the library call: events while rolling, then the result. */
async function runRolling(
  options: UpCommandOptions | RollbackCommandOptions,
  io: CliIo,
  roll: (spec: Awaited<ReturnType<typeof specFor>>, engine: Awaited<ReturnType<typeof connectEngine>>, common: RolloutOptions) => Promise<RolloutResult>,
): Promise<number> {
  const mode = resolveOutputMode(options.global.output, io);
  const spec = await specFor(options.global, io);
  const engine = await connectEngine(io);
  const renderer = createEventRenderer(mode, io);
  try {
    const result = await roll(spec, engine, {
      services: options.services,
      dryRun: options.dryRun,
      lockWaitMs: options.lockWaitMs,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      signal: io.signal,
      // --dry-run prints the plan; of the events only the warnings (orphans, a rolled-back build rolled again)
      onEvent: options.dryRun && mode !== "json" ? (e) => void (e.type === "warning" && io.stderr.write(`warning: ${e.service === undefined ? "" : `${e.service}: `}${e.message}\n`)) : renderer.sink,
    });
    renderer.close();
    printResult(result, options.dryRun, mode, io);
    // --verify: a rollout that completed but failed requests is not a success
    return (result.verify ?? []).some((r) => r.failed > 0) ? 1 : 0;
  } finally {
    renderer.close();
  }
}

export function runUp(options: UpCommandOptions, io: CliIo): Promise<number> {
  return runRolling(options, io, (spec, engine, common) =>
    up(spec, engine, {
      ...common,
      noBuild: options.noBuild,
      removeOrphans: options.removeOrphans,
      ...(options.bump === undefined ? {} : { bump: options.bump }),
      ...(options.verify === undefined ? {} : { verify: { path: options.verify } }),
    }),
  );
}

export function runRollback(options: RollbackCommandOptions, io: CliIo): Promise<number> {
  return runRolling(options, io, (spec, engine, common) => rollback(spec, engine, { ...common, ...(options.to === undefined ? {} : { to: options.to }) }));
}

