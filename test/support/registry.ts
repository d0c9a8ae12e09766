import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { eventually, freePort } from "./net.js";

/** A real registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, for one test file. */
export interface TestRegistry {
  /** host:port, as an image reference names it */
  readonly host: string;
  push(repository: string, tag: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startRegistry(dir: string, auth?: { username: string; password: string }): Promise<TestRegistry> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  await mkdir(join(dir, "storage"), { recursive: true });
  let authBlock = "";
  if (auth !== undefined) {
    await writeFile(join(dir, "htpasswd"), `${auth.username}:${bcrypt.hashSync(auth.password, 5)}\n`);
    authBlock = `auth:\n  htpasswd:\n    realm: reroll-test\n    path: ${join(dir, "htpasswd")}\n`;
  }
  const config = join(dir, "config.yml");
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, "storage")}\nhttp:\n  addr: ${host}\n${authBlock}`,
  );
  const child: ChildProcess = spawn("docker-registry", ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
      const res = await fetch(`http://${host}/v2/`);
      return res.status === 200 || res.status === 401;
    },
    `docker-registry on ${host}`,
  );

  const authorization =
    auth === undefined ? undefined : `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
  const headers = (extra: Record<string, string> = {}): Record<string, string> => ({
    ...extra,
    ...(authorization === undefined ? {} : { Authorization: authorization }),
  });

  async function putBlob(repository: string, body: Buffer): Promise<string> {
    const digest = `sha256:${createHash("sha256").update(body).digest("hex")}`;
    const start = await fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: "POST", headers: headers() });
    if (start.status !== 202) throw new Error(`blob upload start: HTTP ${start.status}`);
    const location = new URL(start.headers.get("location")!, `http://${host}`);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: headers({ "Content-Type": "application/octet-stream" }),
      body,
    });
    if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
    return digest;
  }

  return {
    host,
    async push(repository, tag) {
      const configBody = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
      const digest = await putBlob(repository, configBody);
      const manifest = {
        schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        config: { mediaType: "application/vnd.docker.container.image.v1+json", size: configBody.length, digest },
        layers: [],
      };
      const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
        method: "PUT",
        headers: headers({ "Content-Type": manifest.mediaType }),
        body: JSON.stringify(manifest),
      });
      if (res.status !== 201) throw new Error(`manifest put ${repository}:${tag}: HTTP ${res.status} ${await res.text()}`);
    },
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
