import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build } from "../../src/build/build.js";
import type { BuildRequest, Engine } from "../../src/engine/port.js";
import { loadSpec } from "../../src/spec/load.js";
import { tempDir } from "../support/tmp.js";

/** How a build's request failing mid-context is reported, with a stand-in daemon that drops the connection. */
describe("build: a request that fails while the context is sent", () => {
  it("reports the daemon's failure, not the context file that was being read when the request ended", async () => {
    const dir = await tempDir("reroll-build-failure-");
    await writeFile(join(dir, "compose.yaml"), "services:\n  app:\n    build: .\n");
    await writeFile(join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
    // enough content that the context is still being sent when the connection drops
    for (let i = 0; i < 8; i += 1) await writeFile(join(dir, `part-${i}.bin`), Buffer.alloc(1024 * 1024, i));
    const spec = await loadSpec({ cwd: dir, project: "failure-report", env: {} });
    const engine = {
      inspectImage: async () => undefined,
      // eslint-disable-next-line require-yield
      async *build(request: BuildRequest) {
        // the daemon reads a little of the context, then the connection is lost
        for await (const chunk of request.context) {
          void chunk;
          break;
        }
        throw Object.assign(new Error("connect ECONNRESET /var/run/docker.sock"), { code: "ECONNRESET" });
      },
    } as unknown as Engine;
    await expect(build(spec, engine, {})).rejects.toThrow(/ECONNRESET/);
  });
});
