import { Command, Option } from "commander";
import { RerollError } from "../core/errors.js";
import type { BumpLevel } from "../core/tag-policy.js";
import { parseDuration } from "../core/spec/units.js";
import type { CliIo } from "./io.js";
import { OUTPUT_MODES, type OutputMode } from "./render/output-mode.js";
import { VERSION } from "./version.js";

/** Options every command accepts, before or after the command name. */
export interface GlobalOptions {
  readonly output?: OutputMode;
  readonly file?: string;
  readonly project?: string;
  readonly timeout?: string;
}

export type TagsFromOption = { readonly kind: "local" } | { readonly kind: "registry" } | { readonly kind: "list"; readonly path: string };

export interface BumpCommandOptions {
  readonly global: GlobalOptions;
  readonly image?: string;
  readonly to?: string;
  readonly level?: BumpLevel;
  readonly dockerfile: string;
  readonly stage?: string;
  readonly tagsFrom?: TagsFromOption;
  readonly dryRun: boolean;
}

export interface BuildCommandOptions {
  readonly global: GlobalOptions;
  readonly services: readonly string[];
  readonly parallel?: number;
  readonly noCache: boolean;
  readonly pull: boolean;
}

export interface UpCommandOptions {
  readonly global: GlobalOptions;
  readonly services: readonly string[];
  readonly bump?: string;
  readonly noBuild: boolean;
  readonly dryRun: boolean;
  readonly lockWaitMs: number;
  readonly timeoutMs?: number;
  /** --verify [PATH]: the path to request through each proxied service's public port */
  readonly verify?: string;
  readonly removeOrphans: boolean;
}

export interface RollbackCommandOptions {
  readonly global: GlobalOptions;
  readonly services: readonly string[];
  readonly to?: number;
  readonly dryRun: boolean;
  readonly lockWaitMs: number;
  readonly timeoutMs?: number;
}

export interface StatusCommandOptions {
  readonly global: GlobalOptions;
  readonly services: readonly string[];
}

export interface HistoryCommandOptions {
  readonly global: GlobalOptions;
  readonly service: string;
}

export interface ProxyCommandOptions {
  readonly global: GlobalOptions;
  readonly action: "up" | "down" | "status" | "pause" | "resume";
  /** pause: the longest requests are held */
  readonly holdMs?: number;
  readonly services: readonly string[];
  /** up and down: how long to wait for another command's project lock */
  readonly lockWaitMs?: number;
}

export interface DownCommandOptions {
  readonly global: GlobalOptions;
  readonly services: readonly string[];
  readonly volumes: boolean;
  readonly lockWaitMs: number;
}

/** What each command does once its flags are typed options; main() wires the real ones, tests fakes. */
export interface CommandHandlers {
  bump(options: BumpCommandOptions): Promise<number | void>;
  build(options: BuildCommandOptions): Promise<number | void>;
  up?(options: UpCommandOptions): Promise<number | void>;
  rollback?(options: RollbackCommandOptions): Promise<number | void>;
  status?(options: StatusCommandOptions): Promise<number | void>;
  history?(options: HistoryCommandOptions): Promise<number | void>;
  down?(options: DownCommandOptions): Promise<number | void>;
  proxy?(options: ProxyCommandOptions): Promise<number | void>;
}

function duration(flag: string): (value: string) => number {
  return (value) => {
    const ms = parseDuration(value);
    if (ms === undefined) throw usage(`${flag} takes a duration such as 30s, 5m or 1h30m, got "${value}".`, `For example: ${flag} 2m.`);
    return ms;
  };
}

function handler<K extends keyof CommandHandlers>(handlers: CommandHandlers, name: K): NonNullable<CommandHandlers[K]> {
  const h = handlers[name];
  if (h === undefined) throw new Error(`no handler for ${String(name)}`);
  return h as NonNullable<CommandHandlers[K]>;
}

function positiveInteger(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1) throw usage(`${flag} takes a whole number ≥ 1, got "${value}".`, `For example: ${flag} 4.`);
    return n;
  };
}

function usage(message: string, hint: string): RerollError {
  return new RerollError("E_USAGE", message, { hint });
}

export function parseTagsFrom(value: string | undefined): TagsFromOption | undefined {
  if (value === undefined) return undefined;
  if (value === "local" || value === "registry") return { kind: value };
  if (value === "") throw usage("--tags-from needs a value.", "Use local, registry, a file path, or - for standard input.");
  return { kind: "list", path: value };
}

function bumpLevel(flags: { patch?: boolean; minor?: boolean; major?: boolean }): BumpLevel | undefined {
  const levels = (["patch", "minor", "major"] as const).filter((l) => flags[l] === true);
  if (levels.length > 1) {
    throw usage(`Choose one of --patch, --minor and --major (got ${levels.map((l) => `--${l}`).join(" ")}).`, "Pass a single level.");
  }
  return levels[0];
}

/** Builds the command tree. Each action turns flags into typed options and calls its handler. */
export function createProgram(handlers: CommandHandlers, io: CliIo, onResult: (code: number | void) => void): Command {
  const program = new Command()
    .name("reroll")
    .description("Immutable container deploys: bump a base image, build, roll replicas behind health checks, roll back on failure.")
    .version(VERSION, "-V, --version", "print reroll's version")
    .addOption(new Option("--output <mode>", "how to print: tty, plain (logs) or json (NDJSON)").choices(OUTPUT_MODES))
    .option("-f, --file <compose>", "Compose file (default: compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml)")
    .option("-p, --project <name>", "project name (default: the Compose file's directory name)")
    .option("--timeout <duration>", "give up after this long (e.g. 90s, 5m)")
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: () => undefined,
    });

  program
    .command("bump")
    .summary("change the tag of a base image in a Dockerfile")
    .description(
      "Change the tag of a base image in FROM lines (and the ARG defaults that feed them).\n" +
        "Only the tag's bytes change; the write is atomic; on any error the file is untouched.",
    )
    .argument("[image]", "repository to bump (nginx, localhost:5000/app); IMAGE:TAG is short for IMAGE --to TAG")
    .option("--to <tag>", "move to this tag")
    .option("--patch", "next patch version (1.19.2 → 1.19.3)")
    .option("--minor", "next minor version (1.19 → 1.20)")
    .option("--major", "next major version (20-alpine → 21-alpine)")
    .option("--dockerfile <path>", "the Dockerfile to edit", "Dockerfile")
    .option("--stage <name>", "only the FROM line that declares this stage")
    .option("--tags-from <source>", "candidate tags for --patch/--minor/--major: local, registry, FILE, or - (stdin)")
    .option("--dry-run", "print the diff, write nothing")
    .action(async (image: string | undefined, flags: Record<string, unknown>, command: Command) => {
      const level = bumpLevel(flags as { patch?: boolean; minor?: boolean; major?: boolean });
      const to = flags["to"] as string | undefined;
      const tagsFrom = parseTagsFrom(flags["tagsFrom"] as string | undefined);
      if (to !== undefined && level !== undefined) {
        throw usage(`--to and --${level} both choose the tag; pass one.`, "Use --to TAG for an exact tag, a level to count up.");
      }
      if (tagsFrom !== undefined && level === undefined) {
        throw usage("--tags-from only applies to --patch, --minor or --major.", "Drop --tags-from, or pass a level.");
      }
      const options: BumpCommandOptions = {
        global: globalOptions(command),
        dockerfile: flags["dockerfile"] as string,
        dryRun: flags["dryRun"] === true,
        ...(image === undefined ? {} : { image }),
        ...(to === undefined ? {} : { to }),
        ...(level === undefined ? {} : { level }),
        ...(flags["stage"] === undefined ? {} : { stage: flags["stage"] as string }),
        ...(tagsFrom === undefined ? {} : { tagsFrom }),
      };
      onResult(await handlers.bump(options));
    });

  program
    .command("build")
    .summary("build the services' images through the Docker daemon")
    .description(
      "Build the images of the named services (default: every service with build:), in parallel where\n" +
        "independent. Each new image gets the service's next revision; old revisions beyond x-reroll.history\n" +
        "are removed unless a container uses them.",
    )
    .argument("[service...]", "services to build")
    .option("--parallel <n>", "builds at once (default 2)", positiveInteger("--parallel"))
    .option("--no-cache", "do not use the build cache")
    .option("--pull", "always try to pull newer base images")
    .action(async (services: string[], flags: Record<string, unknown>, command: Command) => {
      const options: BuildCommandOptions = {
        global: globalOptions(command),
        services,
        ...(flags["parallel"] === undefined ? {} : { parallel: flags["parallel"] as number }),
        noCache: flags["cache"] === false,
        pull: flags["pull"] === true,
      };
      onResult(await handlers.build(options));
    });

  const timeoutOf = (command: Command): number | undefined => {
    const raw = command.optsWithGlobals<{ timeout?: string }>().timeout;
    if (raw === undefined) return undefined;
    const ms = duration("--timeout")(raw);
    // nothing can be ready in no time: a rollout given 0 would only fail
    if (ms <= 0) throw usage(`--timeout must be longer than 0, got "${raw}".`, "Give the time a replica may take to be ready, for example --timeout 2m, or leave it out to use each healthcheck's own.");
    return ms;
  };

  program
    .command("up")
    .summary("build if needed, then roll every replica to the new revision behind readiness gates")
    .description(
      "Make the running containers of each service match the Compose file and the newest build. Replicas are\n" +
        "replaced batch by batch; a new replica must be ready before an old one goes; any failure puts the\n" +
        "previous revision back (exit 1).",
    )
    .argument("[service...]", "services to roll (default: all)")
    .option("--bump <image:tag>", "bump the base image in the Dockerfiles, build and roll as one transaction")
    .option("--no-build", "roll the newest built revision without building")
    .option("--dry-run", "print the plan, change nothing")
    .option("--lock-wait <duration>", "wait this long for another rollout's lock (default: exit 4 at once)", duration("--lock-wait"))
    .option("--verify [path]", "send requests through each proxied service's public port while rolling (default path /); report; exit 1 if any failed")
    .option("--remove-orphans", "remove the replicas and proxies of services the Compose file no longer has")
    .action(async (services: string[], flags: Record<string, unknown>, command: Command) => {
      const timeoutMs = timeoutOf(command);
      const verify = flags["verify"];
      if (typeof verify === "string" && !verify.startsWith("/")) throw usage(`--verify takes a path starting with "/", got "${verify}".`, "For example: --verify /healthz.");
      const options: UpCommandOptions = {
        ...(verify === undefined ? {} : { verify: verify === true ? "/" : (verify as string) }),
        global: globalOptions(command),
        services,
        ...(flags["bump"] === undefined ? {} : { bump: flags["bump"] as string }),
        noBuild: flags["build"] === false,
        dryRun: flags["dryRun"] === true,
        lockWaitMs: (flags["lockWait"] as number | undefined) ?? 0,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        removeOrphans: flags["removeOrphans"] === true,
      };
      onResult(await handler(handlers, "up")(options));
    });

  program
    .command("rollback")
    .summary("go back to the last good revision (or --to REVISION), with the same rolling safety")
    .argument("[service...]", "services to roll back (default: all)")
    .option("--to <revision>", "the revision to go back to", (v: string) => {
      const n = Number(v.replace(/^r/, ""));
      if (!Number.isInteger(n) || n < 1) throw usage(`--to takes a revision number such as 3 or r3, got "${v}".`, "See reroll history SERVICE.");
      return n;
    })
    .option("--dry-run", "print the plan, change nothing")
    .option("--lock-wait <duration>", "wait this long for another rollout's lock", duration("--lock-wait"))
    .action(async (services: string[], flags: Record<string, unknown>, command: Command) => {
      const timeoutMs = timeoutOf(command);
      onResult(
        await handler(handlers, "rollback")({
          global: globalOptions(command),
          services,
          ...(flags["to"] === undefined ? {} : { to: flags["to"] as number }),
          dryRun: flags["dryRun"] === true,
          lockWaitMs: (flags["lockWait"] as number | undefined) ?? 0,
          ...(timeoutMs === undefined ? {} : { timeoutMs }),
        }),
      );
    });

  program
    .command("status")
    .summary("what runs, per service and replica, and whether a rollout is in progress or was interrupted")
    .argument("[service...]", "services to show (default: all)")
    .action(async (services: string[], _flags: unknown, command: Command) => {
      onResult(await handler(handlers, "status")({ global: globalOptions(command), services }));
    });

  program
    .command("history")
    .summary("the revisions kept for a service, with their base images and rollout outcomes")
    .argument("<service>", "the service")
    .action(async (service: string, _flags: unknown, command: Command) => {
      onResult(await handler(handlers, "history")({ global: globalOptions(command), service }));
    });

  program
    .command("down")
    .summary("remove the project's containers and network (named volumes only with --volumes)")
    .argument("[service...]", "services to remove (default: all, and the network)")
    .option("--volumes", "also remove the project's named volumes")
    .option("--lock-wait <duration>", "wait this long for another rollout's lock (default: exit 4 at once)", duration("--lock-wait"))
    .action(async (services: string[], flags: Record<string, unknown>, command: Command) => {
      onResult(
        await handler(handlers, "down")({
          global: globalOptions(command),
          services,
          volumes: flags["volumes"] === true,
          lockWaitMs: (flags["lockWait"] as number | undefined) ?? 0,
        }),
      );
    });

  const proxy = program
    .command("proxy")
    .summary("the doors (HAProxy containers, one per published port) that route to services' ready replicas");
  for (const [action, summary] of [
    ["up", "create, start or update the door of every published port, routing to its ready replicas"],
    ["down", "remove the doors (the services' ports stop answering)"],
    ["status", "each door's address, image and replicas as HAProxy sees them (ready, down, draining, probing)"],
    ["pause", "hold new requests at the doors (they wait, then go on), for maintenance; --for bounds it"],
    ["resume", "let held requests go on"],
  ] as const) {
    const sub = proxy.command(action).summary(summary).argument("[service...]", "services (default: all with ports)");
    // status reads only; the others take the project's lock
    if (action !== "status") sub.option("--lock-wait <duration>", "wait this long for another rollout's lock (default: exit 4 at once)", duration("--lock-wait"));
    if (action === "pause") sub.option("--for <duration>", "hold for at most this long; then requests go on as usual (default 30s)", duration("--for"));
    sub.action(async (services: string[], flags: Record<string, unknown>, command: Command) => {
      const lockWaitMs = flags["lockWait"] as number | undefined;
      const holdMs = flags["for"] as number | undefined;
      onResult(await handler(handlers, "proxy")({ global: globalOptions(command), action, services, ...(lockWaitMs === undefined ? {} : { lockWaitMs }), ...(holdMs === undefined ? {} : { holdMs }) }));
    });
  }

  return program;
}

function globalOptions(command: Command): GlobalOptions {
  const all = command.optsWithGlobals<GlobalOptions>();
  return {
    ...(all.output === undefined ? {} : { output: all.output }),
    ...(all.file === undefined ? {} : { file: all.file }),
    ...(all.project === undefined ? {} : { project: all.project }),
    ...(all.timeout === undefined ? {} : { timeout: all.timeout }),
  };
}
