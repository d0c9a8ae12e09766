import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { docker } from "../support/docker.js";
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
});
