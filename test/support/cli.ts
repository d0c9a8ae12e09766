import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { main } from "../../src/cli/main.js";
import type { CliIo } from "../../src/cli/io.js";
import type { CommandHandlers } from "../../src/cli/program.js";

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in this process (fast), with captured streams and no TTY. */
export async function runCliInProcess(
  argv: readonly string[],
  options: {
    stdin?: string;
    env?: Record<string, string | undefined>;
    handlers?: CommandHandlers;
    cwd?: string;
    signal?: AbortSignal;
  } = {},
): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    argv,
    cwd: options.cwd ?? process.cwd(),
    signal: options.signal ?? new AbortController().signal,
    env: options.env ?? { PATH: process.env["PATH"], HOME: process.env["HOME"] },
    stdout: { write: (t: string) => (stdout += t), isTTY: false },
    stderr: { write: (t: string) => (stderr += t), isTTY: false },
    readStdin: async () => options.stdin ?? "",
  };
  const code = options.handlers === undefined ? await main(io) : await main(io, options.handlers);
  return { code, stdout, stderr };
}

export const REROLL_BIN = fileURLToPath(new URL("../../bin/reroll.js", import.meta.url));

/** Runs the built `reroll` binary as a user would (requires `npm run build`). */
export function runReroll(
  argv: readonly string[],
  options: { cwd?: string; stdin?: string; env?: Record<string, string | undefined> } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REROLL_BIN, ...argv], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.stdin ?? "");
  });
}

export interface TimedEvent {
  /** when the line arrived, epoch ms */
  readonly at: number;
  readonly event: Record<string, unknown>;
}

/**
 * Runs the built `reroll` with --output json, reading its events as they arrive; `onEvent`
 * may kill it (the returned `kill`). Resolves when it has exited.
 */
export function spawnRerollEvents(
  argv: readonly string[],
  options: { cwd: string; onEvent?: (event: Record<string, unknown>, kill: () => void) => void },
): Promise<{ code: number; events: TimedEvent[]; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REROLL_BIN, ...argv, "--output", "json"], { cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const events: TimedEvent[] = [];
    let output = "";
    const kill = () => child.kill("SIGKILL");
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line: string) => {
      output += `${line}\n`;
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        events.push({ at: Date.now(), event });
        options.onEvent?.(event, kill);
      } catch {
        // not an event line
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, events, output }));
  });
}
