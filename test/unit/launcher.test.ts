import { execFile } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REROLL_BIN } from "../support/cli.js";
import { tempDir } from "../support/tmp.js";

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
