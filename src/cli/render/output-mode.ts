import { describeCause, type RerollError } from "../../core/errors.js";
import { EVENT_SCHEMA_VERSION } from "../../core/events.js";
import type { CliIo } from "../io.js";

export type OutputMode = "tty" | "plain" | "json";
export const OUTPUT_MODES: readonly OutputMode[] = ["tty", "plain", "json"];

/** tty when a person watches a terminal, plain for logs; json only when asked for. */
export function resolveOutputMode(requested: OutputMode | undefined, io: CliIo): OutputMode {
  if (requested !== undefined) return requested;
  return io.stderr.isTTY === true && io.env["NO_COLOR"] === undefined && io.env["CI"] === undefined ? "tty" : "plain";
}

export function paint(mode: OutputMode, code: string, text: string): string {
  return mode === "tty" ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/** One NDJSON line of `--output json`: every line, event or error, carries the schema and the time. */
export function jsonLine(fields: { readonly type: string } & Readonly<Record<string, unknown>>, nowMs: number = Date.now()): string {
  return `${JSON.stringify({ schema: EVENT_SCHEMA_VERSION, time: new Date(nowMs).toISOString(), ...fields })}\n`;
}

export function renderError(error: RerollError, mode: OutputMode, io: CliIo): void {
  if (mode === "json") {
    // a line of the same stream as the events: a consumer reading `type` sees it too
    io.stdout.write(jsonLine({ type: "error", error: error.toJSON() }));
    return;
  }
  const lines = [`${paint(mode, "31;1", "error")} ${error.message} ${paint(mode, "2", `[${error.code}]`)}`];
  for (const problem of error.problems) lines.push(`  - ${problem}`);
  if (error.hint !== undefined) lines.push(`  ${paint(mode, "36", "hint:")} ${error.hint}`);
  if (error.cause !== undefined) lines.push(`  ${paint(mode, "2", `cause: ${describeCause(error.cause)}`)}`);
  io.stderr.write(`${lines.join("\n")}\n`);
}
