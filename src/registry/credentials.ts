import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

/** Looks up credentials for a registry host ("docker.io", "127.0.0.1:5000"). */
export type CredentialLookup = (host: string) => Promise<RegistryCredentials | undefined>;

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

const DOCKER_HUB_KEYS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
const DOCKER_HUB_SERVER_URL = "https://index.docker.io/v1/";

/** "https://index.docker.io/v1/" → "index.docker.io", as the docker CLI's ConvertToHostname does. */
function hostnameOf(key: string): string {
  return key.replace(/^[a-z]+:\/\//, "").split("/")[0] ?? key;
}

function sameRegistry(key: string, host: string): boolean {
  const a = hostnameOf(key);
  return a === host || (DOCKER_HUB_KEYS.has(a) && DOCKER_HUB_KEYS.has(host));
}

/**
 * Reads credentials the way the docker CLI stores them: `config.json` in the docker config
 * directory (`auths`, `credHelpers`, `credsStore`). A credential helper is run as
 * `docker-credential-NAME get`.
 */
export function dockerConfigCredentials(configDir: string): CredentialLookup {
  let config: Promise<DockerConfigFile> | undefined;
  const load = (): Promise<DockerConfigFile> =>
    (config ??= readFile(join(configDir, "config.json"), "utf8")
      .then((text) => JSON.parse(text) as DockerConfigFile)
      .catch(() => ({})));

  return async (host) => {
    const file = await load();
    const serverUrl = DOCKER_HUB_KEYS.has(host) ? DOCKER_HUB_SERVER_URL : host;
    const helper =
      Object.entries(file.credHelpers ?? {}).find(([key]) => sameRegistry(key, host))?.[1] ?? file.credsStore;
    if (helper !== undefined && helper !== "") {
      const fromHelper = await runCredentialHelper(helper, serverUrl);
      if (fromHelper !== undefined) return fromHelper;
    }
    const entry = Object.entries(file.auths ?? {}).find(([key]) => sameRegistry(key, host))?.[1];
    if (entry === undefined) return undefined;
    if (entry.auth !== undefined && entry.auth !== "") {
      const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username !== undefined && entry.password !== undefined) {
      return { username: entry.username, password: entry.password };
    }
    return undefined;
  };
}

function runCredentialHelper(helper: string, serverUrl: string): Promise<RegistryCredentials | undefined> {
  return new Promise((resolve) => {
    const child = spawn(`docker-credential-${helper}`, ["get"], { stdio: ["pipe", "pipe", "ignore"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.on("error", () => resolve(undefined));
    child.on("close", (code) => {
      if (code !== 0) return resolve(undefined);
      try {
        const parsed = JSON.parse(out) as { Username?: string; Secret?: string };
        // "<token>" marks an identity token, which the tag list endpoint does not take as a password.
        if (parsed.Username && parsed.Secret && parsed.Username !== "<token>") {
          resolve({ username: parsed.Username, password: parsed.Secret });
        } else resolve(undefined);
      } catch {
        resolve(undefined);
      }
    });
    child.stdin.end(serverUrl);
  });
}
