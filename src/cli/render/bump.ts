import type { BumpResult } from "../../bump/bump.js";
import type { CliIo } from "../io.js";
import { paint, type OutputMode } from "./output-mode.js";

/** The result on stdout: one line per edit, the diff for --dry-run, or one JSON object. */
export function renderBump(result: BumpResult, mode: OutputMode, dryRun: boolean, io: CliIo): void {
  if (mode === "json") {
    const changes = result.changes.map((c) => ({ line: c.line, from: c.from, to: c.to, fromLines: c.fromLines, ...(c.arg === undefined ? {} : { arg: c.arg }) }));
    const json = {
      file: result.file,
      image: result.image,
      changes,
      unchanged: result.unchanged,
      ...(result.reason === undefined ? {} : { reason: result.reason }),
      dryRun,
      ...(dryRun ? { diff: result.diff } : {}),
    };
    io.stdout.write(`${JSON.stringify(json)}\n`);
    return;
  }
  if (result.unchanged) {
    io.stdout.write(`${result.file}: ${result.image} unchanged${result.reason === undefined ? "" : ` (${result.reason})`}\n`);
    return;
  }
  if (dryRun) io.stdout.write(result.diff ?? "");
  for (const change of result.changes) {
    const via = change.arg === undefined ? "" : paint(mode, "2", ` (ARG ${change.arg})`);
    const verb = dryRun ? "would change" : "changed";
    const line = `${result.file}:${change.line} ${verb} ${change.from} ${paint(mode, "1", "→")} ${paint(mode, "32", change.to)}${via}`;
    (dryRun ? io.stderr : io.stdout).write(`${line}\n`);
  }
}
