import { readFileSync } from "node:fs";
import { join } from "node:path";
import { RerollError } from "../core/errors.js";
import type { DockerConnection } from "./port.js";

export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

/**
 * Finds the daemon the way the docker CLI does: DOCKER_HOST (unix://, tcp://, with
 * DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else the default socket. The environment is
 * passed in: core code never reads process.env.
 */
export function dockerConnectionFromEnv(env: Readonly<Record<string, string | undefined>>): DockerConnection {
  const dockerHost = env["DOCKER_HOST"];
  if (dockerHost === undefined || dockerHost === "") {
    return { socketPath: DEFAULT_DOCKER_SOCKET, describe: `unix://${DEFAULT_DOCKER_SOCKET}` };
  }
  if (dockerHost.startsWith("unix://")) {
    return { socketPath: dockerHost.slice("unix://".length), describe: dockerHost };
  }
  if (dockerHost.startsWith("tcp://")) {
    const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
    const tls = env["DOCKER_TLS_VERIFY"] !== undefined && env["DOCKER_TLS_VERIFY"] !== "";
    const certPath = env["DOCKER_CERT_PATH"];
    const port = url.port === "" ? (tls ? 2376 : 2375) : Number(url.port);
    if (!tls) return { protocol: "http", host: url.hostname, port, describe: dockerHost };
    const dir = certPath ?? join(env["HOME"] ?? "", ".docker");
    return {
      protocol: "https",
      host: url.hostname,
      port,
      ca: readFileSync(join(dir, "ca.pem")),
      cert: readFileSync(join(dir, "cert.pem")),
      key: readFileSync(join(dir, "key.pem")),
      describe: dockerHost,
    };
  }
  throw new RerollError("E_DOCKER_HOST", `DOCKER_HOST="${dockerHost}" is not a unix:// or tcp:// address.`, {
    hint: "Set DOCKER_HOST to unix:///var/run/docker.sock or tcp://HOST:PORT, or unset it.",
  });
}
