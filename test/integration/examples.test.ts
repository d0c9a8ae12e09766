import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { cp, readFile } from "node:fs/promises";
import { join } from "node:path";
import { deploy } from "../../examples/library-usage.js";
import { docker, removeProject, testName } from "../support/docker.js";
import { tempDir } from "../support/tmp.js";
import { freePort } from "../support/net.js";

/** The bundled examples, run as a new user runs them (`npm run example` runs examples/web). */

function runScript(path: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString()));
    child.stderr.on("data", (c: Buffer) => (output += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, output }));
  });
}

describe("examples", () => {
  it("examples/web: up on 1.18, a zero-downtime bump to 1.19, a broken 1.20 rolled back, the Dockerfile back at 1.19", async () => {
    const port = await freePort();
    const run = await runScript(fileURLToPath(new URL("../../examples/web/run.sh", import.meta.url)), { WEB_PORT: String(port) });
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/verify http:\/\/127\.0\.0\.1:\d+\/: \d+ requests in [\d.]+s, 0 failed; .*answered by r1 \d+, r2 \d+/);
    expect(run.output).toMatch(/verify .* 0 failed; .*answered by r2 \d+\n/);
    expect(run.output).toContain("exit 1; Dockerfile: FROM reroll-local/httpd:1.19");
    expect(run.output).toMatch(/bump to 1\.20 failed and rolled back by itself: +yes/);
    // it cleans up after itself
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: ["dev.reroll.project=reroll-example-web"] }) });
    expect(left).toEqual([]);
  });

  it("examples/library-usage.ts: deploy() rolls examples/web through the library, with --verify's report", async () => {
    const dir = join(await tempDir("reroll-lib-"), "web");
    await cp(fileURLToPath(new URL("../../examples/web", import.meta.url)), dir, { recursive: true });
    const project = testName("lib");
    const env = { ...process.env, WEB_PORT: String(await freePort()) };
    try {
      const first = await deploy(dir, { project, env });
      expect(first.ok, first.error).toBe(true);
      expect(first.running).toEqual({ web: 1 });
      const second = await deploy(dir, { project, env, bump: "reroll-local/httpd:1.19" });
      expect(second.ok, second.error).toBe(true);
      expect(second.running).toEqual({ web: 2 });
      expect(second.verify[0]!.failed).toBe(0);
      expect(second.verify[0]!.sent).toBeGreaterThan(20);
      expect(await readFile(join(dir, "app", "Dockerfile"), "utf8")).toContain("FROM reroll-local/httpd:1.19\n");
    } finally {
      await removeProject(project);
    }
  });

  it("examples/worker: a worker without ports is rolled by readiness alone", async () => {
    const project = testName("worker");
    try {
      const run = await runScript(fileURLToPath(new URL("../../examples/worker/run.sh", import.meta.url)), { PROJECT: project });
      expect(run.code, run.output).toBe(0);
      expect(run.output).toMatch(/worker r1 completed/);
      // the configuration change replaced both replicas, one at a time, behind the healthcheck
      expect(run.output).toMatch(/worker \| .*-r2-1: starting r2 \(replaces .*-r1-1\)/);
      expect(run.output).toMatch(/worker \| .*-r2-1: healthy/);
      expect(run.output).toMatch(/worker {2}2\/2 ready {2}running r2/);
      expect(run.output).not.toMatch(/proxy/);
      expect(await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${project}`] }) })).toEqual([]);
    } finally {
      await removeProject(project);
    }
  });

  it("examples/build: two services built in parallel; a rebuild keeps the revisions, a new build arg makes one", async () => {
    const project = testName("build2");
    try {
      const run = await runScript(fileURLToPath(new URL("../../examples/build/run.sh", import.meta.url)), { PROJECT: project });
      expect(run.code, run.output).toBe(0);
      expect(run.output).toMatch(/web \| built r1/);
      expect(run.output).toMatch(/worker \| built r1/);
      // both builds ran at once: each started before the other finished
      const started = (s: string) => run.output.indexOf(`${s} | step 1/`);
      const built = (s: string) => run.output.indexOf(`${s} | built r1`);
      expect(started("web")).toBeLessThan(built("worker"));
      expect(started("worker")).toBeLessThan(built("web"));
      expect(run.output).toMatch(/\nweb r1 sha256:\w+ .*\nworker r1 sha256:\w+ [^\n]*\n\n[^\n]*GREETING=bonjour/);
      expect(run.output).toMatch(/\nworker r2 sha256:/);
    } finally {
      await removeProject(project);
    }
  });

  it("examples/ci: the GitHub Actions and GitLab CI jobs bump, build, roll with --verify and keep the JSON report", async () => {
    const { parse } = await import("yaml");
    const gh = parse(await readFile(fileURLToPath(new URL("../../examples/ci/github-actions.yml", import.meta.url)), "utf8")) as {
      on: Record<string, unknown>;
      jobs: Record<string, { "runs-on": unknown; steps: { run?: string; uses?: string; with?: Record<string, unknown> }[] }>;
    };
    expect(Object.keys(gh.on)).toEqual(["push", "workflow_dispatch"]);
    const steps = gh.jobs["deploy"]!.steps;
    expect(steps.every((s) => (s.run === undefined) !== (s.uses === undefined))).toBe(true);
    const roll = steps.find((s) => s.run?.includes("reroll") && s.run.includes("--verify"))!;
    expect(roll.run).toMatch(/--output json/);
    expect(roll.run).toMatch(/pipefail/);
    expect(steps.find((s) => s.uses?.startsWith("actions/upload-artifact@"))?.with?.["path"]).toBe("reroll-report.ndjson");

    const gl = parse(await readFile(fileURLToPath(new URL("../../examples/ci/gitlab-ci.yml", import.meta.url)), "utf8")) as Record<string, { script?: string[]; artifacts?: { when: string; paths: string[] }; stage?: string }> & { stages: string[] };
    expect(gl.stages).toEqual(["deploy"]);
    const job = gl["deploy"]!;
    expect(gl.stages).toContain(job.stage);
    expect(job.script!.some((line) => /reroll up --verify .*--output json/.test(line))).toBe(true);
    expect(job.artifacts).toEqual({ when: "always", paths: ["reroll-report.ndjson"], expire_in: "90 days" });
  });
});
