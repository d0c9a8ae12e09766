import { appendFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { build } from "../../src/build/build.js";
import { describeCause, RerollError } from "../../src/core/errors.js";
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

describe("build: a file that changes while the context is sent", () => {
  it("names the file and says to build again or exclude it, not to make it readable", async () => {
    const dir = await tempDir("reroll-build-changed-");
    await writeFile(join(dir, "compose.yaml"), "services:\n  app:\n    build: .\n");
    await writeFile(join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
    // a log some process is still writing: read in chunks, so the first chunk is sent before it ends
    await writeFile(join(dir, "app.log"), Buffer.alloc(4 * 1024 * 1024, 1));
    const spec = await loadSpec({ cwd: dir, project: "changed-context", env: {} });
    const engine = {
      inspectImage: async () => undefined,
      // eslint-disable-next-line require-yield
      async *build(request: BuildRequest) {
        let grown = false;
        for await (const chunk of request.context) {
          void chunk;
          if (!grown) await appendFile(join(dir, "app.log"), "one more line\n");
          grown = true;
        }
        throw new Error("the context ended without an error");
      },
    } as unknown as Engine;
    const failure = await build(spec, engine, {}).then(
      () => undefined,
      (error: unknown) => error as RerollError,
    );
    expect(failure).toBeInstanceOf(RerollError);
    expect(failure!.message).toBe(`${join(dir, "app.log")} changed while the build context was being sent.`);
    expect(failure!.hint).toMatch(/^Build again once nothing is writing to it, or exclude it in \.dockerignore/);
    expect(describeCause(failure!.cause)).toBe(`${join(dir, "app.log")} grew while it was being read`);
  });
});

describe("describeCause", () => {
  it("names a Node error's code once, also when its message already begins with it", () => {
    expect(describeCause(Object.assign(new Error("ENOENT: no such file or directory, open 'nope'"), { code: "ENOENT" }))).toBe("ENOENT: no such file or directory, open 'nope'");
    expect(describeCause(Object.assign(new Error("connect failed"), { code: "ECONNREFUSED" }))).toBe("ECONNREFUSED: connect failed");
  });
});
