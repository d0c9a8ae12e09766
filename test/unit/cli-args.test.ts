import { describe, expect, it } from "vitest";
import type { BuildCommandOptions, BumpCommandOptions, CommandHandlers } from "../../src/cli/program.js";
import { runCliInProcess } from "../support/cli.js";

/** argv → typed options, without running anything. */
async function bumpOptions(argv: string[]): Promise<{ code: number; options?: BumpCommandOptions; stdout: string; stderr: string }> {
  let options: BumpCommandOptions | undefined;
  const handlers: CommandHandlers = {
    async bump(o) {
      options = o;
    },
    async build() {
      throw new Error("not expected");
    },
  };
  const run = await runCliInProcess(argv, { handlers });
  return { ...run, ...(options === undefined ? {} : { options }) };
}

describe("reroll bump: argv → options", () => {
  it.each<[string[], Partial<BumpCommandOptions>]>([
    [["bump", "nginx", "--to", "1.19"], { image: "nginx", to: "1.19", dockerfile: "Dockerfile", dryRun: false }],
    [["bump", "nginx:1.19"], { image: "nginx:1.19", dockerfile: "Dockerfile" }],
    [["bump", "--patch"], { level: "patch" }],
    [["bump", "nginx", "--minor", "--tags-from", "local"], { level: "minor", tagsFrom: { kind: "local" } }],
    [["bump", "nginx", "--major", "--tags-from", "registry"], { level: "major", tagsFrom: { kind: "registry" } }],
    [["bump", "nginx", "--major", "--tags-from", "tags.txt"], { tagsFrom: { kind: "list", path: "tags.txt" } }],
    [["bump", "nginx", "--major", "--tags-from", "-"], { tagsFrom: { kind: "list", path: "-" } }],
    [["bump", "x", "--to", "2", "--dockerfile", "sub/Dockerfile.prod", "--stage", "build", "--dry-run"], { dockerfile: "sub/Dockerfile.prod", stage: "build", dryRun: true }],
    [["--output", "json", "bump", "x", "--to", "2"], { global: { output: "json" } }],
    [["bump", "x", "--to", "2", "--output", "plain", "-f", "c.yaml", "-p", "demo"], { global: { output: "plain", file: "c.yaml", project: "demo" } }],
  ])("%j", async (argv, expected) => {
    const run = await bumpOptions(argv);
    expect(run.code, run.stderr).toBe(0);
    expect(run.options).toMatchObject(expected);
  });

  it.each<[string[], RegExp]>([
    [["bump", "x", "--patch", "--minor"], /one of --patch, --minor and --major/],
    [["bump", "x", "--to", "1", "--patch"], /--to and --patch/],
    [["bump", "x", "--to", "1", "--tags-from", "local"], /--tags-from only applies/],
    [["bump", "x", "--bogus"], /Unknown option '--bogus'/],
    [["bump", "x", "--output", "yaml"], /yaml/],
    [["bump", "a", "b"], /too many arguments/i],
    [["frobnicate"], /unknown command/i],
    [["up", "--timeout", "0"], /--timeout must be longer than 0, got "0"/],
    [["rollback", "--timeout", "0s"], /--timeout must be longer than 0, got "0s"/],
  ])("%j is a usage error (exit 2)", async (argv, message) => {
    const run = await bumpOptions(argv);
    expect(run.code).toBe(2);
    expect(run.options).toBeUndefined();
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/E_USAGE/);
  });

  it("usage errors are JSON when --output json is asked for", async () => {
    const run = await bumpOptions(["bump", "x", "--patch", "--major", "--output", "json"]);
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toMatchObject({ schema: 1, type: "error", error: { code: "E_USAGE", kind: "input" } });
  });

  it("--version and --help exit 0", async () => {
    const version = await bumpOptions(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const help = await bumpOptions(["bump", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--tags-from <source>/);
  });
});

async function buildOptions(argv: string[]): Promise<{ code: number; options?: BuildCommandOptions; stderr: string }> {
  let options: BuildCommandOptions | undefined;
  const handlers: CommandHandlers = {
    async bump() {
      throw new Error("not expected");
    },
    async build(o) {
      options = o;
    },
  };
  const run = await runCliInProcess(argv, { handlers });
  return { code: run.code, stderr: run.stderr, ...(options === undefined ? {} : { options }) };
}

describe("reroll build: argv → options", () => {
  it.each<[string[], Partial<BuildCommandOptions>]>([
    [["build"], { services: [], noCache: false, pull: false, global: {} }],
    [["build", "web", "api", "--parallel", "4"], { services: ["web", "api"], parallel: 4 }],
    [["build", "--no-cache", "--pull"], { noCache: true, pull: true }],
    [["-f", "deploy/compose.yaml", "-p", "shop", "build", "web"], { services: ["web"], global: { file: "deploy/compose.yaml", project: "shop" } }],
    [["build", "web", "-f", "deploy/compose.yaml", "--project", "shop", "--output", "json"], { global: { file: "deploy/compose.yaml", project: "shop", output: "json" } }],
  ])("%j", async (argv, expected) => {
    const run = await buildOptions(argv);
    expect(run.code, run.stderr).toBe(0);
    expect(run.options).toMatchObject(expected);
  });

  it.each([[["build", "--parallel", "0"]], [["build", "--parallel", "two"]]])("%j is a usage error", async (argv) => {
    const run = await buildOptions(argv);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--parallel takes a whole number/);
  });
});
