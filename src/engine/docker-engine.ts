import type Dockerode from "dockerode";
import { RerollError } from "../core/errors.js";
import type { DockerConnection, Engine, ImageSummary } from "./port.js";

const UNREACHABLE_CODES = new Set(["ENOENT", "ECONNREFUSED", "EACCES", "ECONNRESET", "EHOSTUNREACH", "ETIMEDOUT"]);

export function dockerUnavailable(connection: DockerConnection, cause: unknown): RerollError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const what = code === "EACCES" ? "permission was denied on" : "no Docker daemon answers at";
  return new RerollError("E_DOCKER_UNAVAILABLE", `${what} ${connection.describe}.`, {
    kind: "input",
    hint:
      code === "EACCES"
        ? "Run as a user in the docker group, or as root."
        : "Start Docker: `npm run setup` (installs and starts dockerd when missing), or set DOCKER_HOST.",
    cause,
  });
}

/** The dockerode adapter of the Engine port. dockerode is imported only when a command needs Docker. */
export async function createDockerEngine(connection: DockerConnection): Promise<Engine> {
  const { default: Docker } = await import("dockerode");
  const { describe: _describe, ...options } = connection;
  const docker: Dockerode = new Docker(options);

  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined && UNREACHABLE_CODES.has(code)) throw dockerUnavailable(connection, error);
      throw error;
    }
  };

  return {
    async ping() {
      await call(() => docker.ping());
    },
    async listImages() {
      const images = await call(() => docker.listImages());
      return images.map(
        (image): ImageSummary => ({
          id: image.Id,
          repoTags: (image.RepoTags ?? []).filter((t) => t !== "<none>:<none>"),
          labels: image.Labels ?? {},
          created: image.Created,
        }),
      );
    },
  };
}
