import { execFile } from "node:child_process";
import { chmod, mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../src/cli/version.js";
import { REROLL_BIN } from "../support/cli.js";
import { tempDir } from "../support/tmp.js";

const BUNDLE = fileURLToPath(new URL("../../dist/bundle/reroll.cjs", import.meta.url));

/**
 * bin/reroll.js run as a program, as `reroll` is: its sh part decides whether node starts
 * with NODE_EXTRA_CA_CERTS. A stand-in `node` first on PATH reports what it was given.
 */
describe("the reroll launcher (bin/reroll.js as a program)", async () => {
  const dir = await tempDir();
  await writeFile(
    join(dir, "node"),
    [
      "#!/bin/sh",
      'printf "extra=%s\\n" "${NODE_EXTRA_CA_CERTS-<unset>}"',
      'printf "deferred=%s\\n" "${REROLL_DEFERRED_CA_CERTS-<unset>}"',
      'for a in "$@"; do printf "arg=%s\\n" "$a"; done',
      "",
    ].join("\n"),
  );
  await chmod(join(dir, "node"), 0o755);

  const launch = async (args: string[], env: Record<string, string>): Promise<{ extra: string; deferred: string; args: string[] }> => {
    const { stdout } = await promisify(execFile)(REROLL_BIN, args, { env: { PATH: `${dir}:${process.env["PATH"]}`, ...env } });
    const lines = stdout.trim().split("\n");
    const value = (key: string) => lines.find((l) => l.startsWith(`${key}=`))!.slice(key.length + 1);
    return { extra: value("extra"), deferred: value("deferred"), args: lines.filter((l) => l.startsWith("arg=")).map((l) => l.slice(4)) };
  };
  const bundle = "/etc/ssl/certs/corporate-ca.pem";

  it("a command that talks only to Docker: node starts without NODE_EXTRA_CA_CERTS, which is handed on aside", async () => {
    const got = await launch(["status", "-p", "shop", "web worker"], { NODE_EXTRA_CA_CERTS: bundle });
    expect(got).toEqual({ extra: "<unset>", deferred: bundle, args: [REROLL_BIN, "status", "-p", "shop", "web worker"] });
  });

  it("bump and up --bump, which may ask a registry over HTTPS: node starts with the certificates", async () => {
    expect(await launch(["bump", "nginx", "--minor", "--tags-from", "registry"], { NODE_EXTRA_CA_CERTS: bundle })).toMatchObject({ extra: bundle, deferred: "<unset>" });
    expect(await launch(["up", "--bump", "nginx:1.19"], { NODE_EXTRA_CA_CERTS: bundle })).toMatchObject({ extra: bundle, deferred: "<unset>" });
    expect(await launch(["up", "--bump=nginx:1.19"], { NODE_EXTRA_CA_CERTS: bundle })).toMatchObject({ extra: bundle, deferred: "<unset>" });
  });

  it("without NODE_EXTRA_CA_CERTS nothing is set either way", async () => {
    expect(await launch(["up"], {})).toEqual({ extra: "<unset>", deferred: "<unset>", args: [REROLL_BIN, "up"] });
  });
});

/**
 * bin/reroll.js compiles the bundle with a V8 code cache per command in the user's cache
 * directory (XDG_CACHE_HOME here, a fresh one per test). REROLL_CODE_CACHE_DEBUG=1 makes it
 * say on stderr whether the cache was none, used, used partial or rejected.
 */
describe("the reroll launcher's code cache", () => {
  const buildId = async (): Promise<string> => /^\/\/ reroll-bundle ([0-9a-f]+)\n/.exec(await readFile(BUNDLE, "utf8"))![1]!;
  const run = async (args: string[], cache: string, cwd?: string, env: Record<string, string> = {}) => {
    const { code, stdout, stderr } = await promisify(execFile)(REROLL_BIN, args, {
      cwd,
      env: { PATH: process.env["PATH"], HOME: process.env["HOME"], XDG_CACHE_HOME: cache, REROLL_CODE_CACHE_DEBUG: "1", ...env },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    return { code, stdout, stderr, cache: /reroll code cache: ([a-z ]+) \(/.exec(stderr)?.[1] };
  };
  const files = async (cache: string): Promise<string[]> => (await readdir(join(cache, "reroll", "code-cache")).catch(() => [] as string[])).sort();

  it("the first run of a command makes its cache, keyed by the bundle's build and Node; the next run uses it", async () => {
    const cache = await tempDir();
    const first = await run(["--version"], cache);
    expect(first).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "none" });
    const [name, ...others] = await files(cache);
    expect(others).toEqual([]);
    expect(name!.startsWith(`${await buildId()}-node${process.version}-${process.arch}-`)).toBe(true);
    expect(name!.endsWith("-other.v8")).toBe(true);
    const second = await run(["--version"], cache);
    expect(second).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "used" });
  });

  it("each command has its own cache", async () => {
    const cache = await tempDir();
    const dir = await tempDir();
    await writeFile(join(dir, "Dockerfile"), "FROM nginx:1.18\n");
    await run(["--version"], cache);
    expect(await run(["bump", "nginx", "--to", "1.19"], cache, dir)).toMatchObject({ code: 0, cache: "none" });
    expect(await readFile(join(dir, "Dockerfile"), "utf8")).toBe("FROM nginx:1.19\n");
    expect((await files(cache)).map((f) => f.replace(/^.*-/, ""))).toEqual(["bump.v8", "other.v8"]);
    expect(await run(["bump", "nginx", "--to", "1.20"], cache, dir)).toMatchObject({ code: 0, cache: "used" });
  });

  it("a failed run keeps a partial cache, which the next run that exits 0 replaces", async () => {
    const cache = await tempDir();
    const dir = await tempDir();
    const failed = await run(["bump", "nginx", "--to", "1.19"], cache, dir);
    expect(failed).toMatchObject({ code: 2, cache: "none" });
    expect(failed.stderr).toContain("There is no Dockerfile");
    expect((await files(cache)).map((f) => f.replace(/^.*-/, ""))).toEqual(["bump.partial.v8"]);
    await writeFile(join(dir, "Dockerfile"), "FROM nginx:1.18\n");
    expect(await run(["bump", "nginx", "--to", "1.19"], cache, dir)).toMatchObject({ code: 0, cache: "used partial" });
    expect((await files(cache)).map((f) => f.replace(/^.*-/, ""))).toEqual(["bump.partial.v8", "bump.v8"]);
    expect(await run(["bump", "nginx", "--to", "1.20"], cache, dir)).toMatchObject({ code: 0, cache: "used" });
    expect(await readFile(join(dir, "Dockerfile"), "utf8")).toBe("FROM nginx:1.20\n");
  });

  it("a corrupt cache is rejected by V8, the command runs as usual, and a good cache replaces it", async () => {
    const cache = await tempDir();
    await run(["--version"], cache);
    const [name] = await files(cache);
    const path = join(cache, "reroll", "code-cache", name!);
    const good = await readFile(path);
    const corrupt = Buffer.from(good);
    corrupt.fill(0x5a, 64);
    await writeFile(path, corrupt);
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "rejected" });
    expect((await readFile(path)).equals(corrupt)).toBe(false);
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, cache: "used" });
    // one whose check passes but that V8 itself refuses (not a code cache of this bundle)
    const foreign = Buffer.from("not a code cache of this bundle");
    const check = Buffer.alloc(4);
    check.writeUInt32LE(crc32(foreign), 0);
    await writeFile(path, Buffer.concat([check, foreign]));
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "rejected" });
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, cache: "used" });
  });

  it("a cache directory that another user can write to is not used", async () => {
    const cache = await tempDir();
    const dir = join(cache, "reroll", "code-cache");
    await mkdir(dir, { recursive: true });
    await chmod(dir, 0o777);
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "none" });
    expect(await readdir(dir)).toEqual([]);
    await chmod(dir, 0o755);
    await run(["--version"], cache);
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, cache: "used" });
  });

  it("writing a cache prunes other builds' old files, keeps at most 32 files, and clears stray temporaries", async () => {
    const cache = await tempDir();
    const dir = join(cache, "reroll", "code-cache");
    await mkdir(dir, { recursive: true });
    const at = async (name: string, ageMs: number) => {
      await writeFile(join(dir, name), "x");
      const when = new Date(Date.now() - ageMs);
      await utimes(join(dir, name), when, when);
    };
    const day = 24 * 3600 * 1000;
    for (let i = 0; i < 40; i += 1) await at(`00000000000000000000-nodeother-up${i}.v8`, (i + 1) * 60_000); // up0 newest
    await at("11111111111111111111-nodeother-up.v8", 8 * day);
    await at("11111111111111111111-nodeother-up.v8.123.tmp", 2 * 3600 * 1000);
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, cache: "none" });
    const left = await files(cache);
    expect(left).toHaveLength(32);
    const id = await buildId();
    expect(left.filter((f) => f.startsWith(`${id}-`))).toHaveLength(1);
    // the 31 newest of the other build stay; the older ones, the stale build and the temporary go
    expect(left.filter((f) => f.startsWith("0000")).sort()).toEqual(Array.from({ length: 31 }, (_, i) => `00000000000000000000-nodeother-up${i}.v8`).sort());
    expect(await run(["--version"], cache)).toMatchObject({ code: 0, cache: "used" });
  });

  it("a cache directory that cannot be written costs only speed; REROLL_CODE_CACHE=0 writes none", async () => {
    const cache = await tempDir();
    const notADirectory = join(cache, "file");
    await writeFile(notADirectory, "");
    expect(await run(["--version"], notADirectory)).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "none" });
    expect(await run(["--version"], cache, undefined, { REROLL_CODE_CACHE: "0" })).toMatchObject({ code: 0, stdout: `${VERSION}\n`, cache: "none" });
    expect(await readdir(cache)).toEqual(["file"]);
  });
});
