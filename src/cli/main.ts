import { CommanderError } from "commander";
import { isRerollError, RerollError } from "../core/errors.js";
import { EXIT_CODE_BY_KIND, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK } from "./exit-codes.js";
import { readAll, type CliIo } from "./io.js";
import { createProgram, type CommandHandlers } from "./program.js";
import { renderError, resolveOutputMode, type OutputMode } from "./render/output-mode.js";

/** The real commands; each module is loaded only when its command runs, to keep start-up fast. */
function realHandlers(io: CliIo): CommandHandlers {
  return {
    async bump(options) {
      const { runBump } = await import("./commands/bump.js");
      await runBump(options, io);
    },
    async build(options) {
      const { runBuild } = await import("./commands/build.js");
      await runBuild(options, io);
    },
    async up(options) {
      const { runUp } = await import("./commands/rollout.js");
      return runUp(options, io);
    },
    async rollback(options) {
      const { runRollback } = await import("./commands/rollout.js");
      return runRollback(options, io);
    },
    async status(options) {
      const { runStatus } = await import("./commands/inspect.js");
      await runStatus(options, io);
    },
    async history(options) {
      const { runHistory } = await import("./commands/inspect.js");
      await runHistory(options, io);
    },
    async down(options) {
      const { runDown } = await import("./commands/inspect.js");
      await runDown(options, io);
    },
    async proxy(options) {
      const { runProxyCommand } = await import("./commands/proxy.js");
      return runProxyCommand(options, io);
    },
  };
}

/** --output as given on the command line, read before parsing so that parse errors honour it. */
function requestedOutput(argv: readonly string[]): OutputMode | undefined {
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const value = arg === "--output" ? argv[i + 1] : arg.startsWith("--output=") ? arg.slice(9) : undefined;
    if (value === "tty" || value === "plain" || value === "json") return value;
  }
  return undefined;
}

/** parse → run → exit code. The only place that decides exit codes. */
export async function main(io: CliIo, handlers: CommandHandlers = realHandlers(io)): Promise<number> {
  const mode = resolveOutputMode(requestedOutput(io.argv), io);
  let code = EXIT_OK;
  try {
    const program = createProgram(handlers, io, (result) => {
      if (typeof result === "number") code = result;
    });
    if (io.argv.length === 0) {
      program.outputHelp();
      return EXIT_OK;
    }
    await program.parseAsync([...io.argv], { from: "user" });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") {
        return EXIT_OK;
      }
      const message = error.message.replace(/^error:\s*/, "");
      renderError(
        new RerollError("E_USAGE", message.charAt(0).toUpperCase() + message.slice(1), {
          hint: "See reroll --help, or reroll COMMAND --help.",
        }),
        mode,
        io,
      );
      return EXIT_INPUT;
    }
    if (isRerollError(error)) {
      renderError(error, mode, io);
      return EXIT_CODE_BY_KIND[error.kind];
    }
    const internal = new RerollError("E_INTERNAL", `reroll hit an unexpected error: ${(error as Error)?.message ?? String(error)}`, {
      kind: "failed",
      hint: "This is a bug in reroll; please report it with the command you ran.",
      cause: error,
    });
    renderError(internal, mode, io);
    if (error instanceof Error && error.stack !== undefined && mode !== "json") io.stderr.write(`${error.stack}\n`);
    return EXIT_FAILED;
  }
}

/** Entry point of the `reroll` binary. */
export async function run(): Promise<void> {
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) {
      process.stderr.write(`\nreroll: ${signal} again: exiting now; run the command again to converge.\n`);
      process.exit(EXIT_INTERRUPTED);
    }
    process.stderr.write(`\nreroll: ${signal}: stopping; starting nothing new and bringing things back to a consistent state…\n`);
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const io: CliIo = {
    argv: process.argv.slice(2),
    cwd: process.cwd(),
    signal: interrupt.signal,
    env: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    readStdin: () => readAll(process.stdin),
  };
  process.exitCode = await main(io);
}
