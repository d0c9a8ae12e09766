import Module, { createRequire } from "node:module";
import type Dockerode from "dockerode";
import { RerollError } from "../core/errors.js";
import type { BuildStreamMessage, ContainerSummary, DockerConnection, Engine, ImageDetails, ImageSummary } from "./port.js";

const UNREACHABLE_CODES = new Set(["ENOENT", "ECONNREFUSED", "EACCES", "ECONNRESET", "EHOSTUNREACH", "ETIMEDOUT"]);

export function dockerUnavailable(connection: DockerConnection, cause: unknown): RerollError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const what = code === "EACCES" ? "Permission was denied on" : "No Docker daemon answers at";
  return new RerollError("E_DOCKER_UNAVAILABLE", `${what} ${connection.describe}.`, {
    kind: "input",
    hint:
      code === "EACCES"
        ? "Run as a user in the docker group, or as root."
        : "Start Docker: `npm run setup` (installs and starts dockerd when missing), or set DOCKER_HOST.",
    cause,
  });
}

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

/** Splits a byte stream of concatenated JSON objects (the Engine's build stream) into messages. */
export async function* jsonMessages(stream: AsyncIterable<Buffer | string>): AsyncIterable<BuildStreamMessage> {
  let buffer = "";
  for await (const chunk of stream) {
    buffer += typeof chunk === "string" ? chunk : chunk.toString("utf8");
    let newline = buffer.indexOf("\n");
    while (newline !== -1) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line !== "") yield parseMessage(line);
      newline = buffer.indexOf("\n");
    }
  }
  if (buffer.trim() !== "") yield parseMessage(buffer.trim());
}

function parseMessage(line: string): BuildStreamMessage {
  try {
    return JSON.parse(line) as BuildStreamMessage;
  } catch {
    return { stream: `${line}\n` };
  }
}

type Loader = () => Record<string, unknown>;

/**
 * dockerode requires ssh2 (for ssh:// daemons) and gRPC (for BuildKit sessions) as soon as it
 * is loaded: 200 of its 250 ms of start-up, paid by every command even though reroll uses
 * neither yet. Each is registered in the CommonJS cache as a stand-in that loads the real
 * module on first use, so a user who does need them still gets them (bench/).
 */
function deferOptionalDockerodeModules(): void {
  const require = createRequire(import.meta.url);
  const fromDockerode = createRequire(require.resolve("dockerode"));
  const fromModem = createRequire(fromDockerode.resolve("docker-modem"));
  const defer = (from: NodeJS.Require, id: string, make: (load: Loader) => object): void => {
    let resolved: string;
    try {
      resolved = from.resolve(id);
    } catch {
      return;
    }
    if (from.cache[resolved] !== undefined) return;
    let real: Record<string, unknown> | undefined;
    const load: Loader = () => {
      if (real === undefined) {
        delete from.cache[resolved];
        real = from(id) as Record<string, unknown>;
      }
      return real;
    };
    const stub = new Module(resolved);
    stub.filename = resolved;
    stub.loaded = true;
    stub.exports = make(load);
    from.cache[resolved] = stub;
  };
  const forward = (load: Loader, own: Record<string, unknown> = {}): object =>
    new Proxy(own, { get: (target, key) => (key in target ? target[key as string] : load()[key as string]) });
  defer(fromModem, "ssh2", (load) =>
    forward(load, {
      // docker-modem reads `.Client` when it loads; the real class is needed only for `new Client()`.
      Client: function Client(...args: unknown[]) {
        const Real = load()["Client"] as new (...a: unknown[]) => object;
        return new Real(...args);
      },
    }),
  );
  defer(fromDockerode, "@grpc/grpc-js", (load) => forward(load));
  defer(fromDockerode, "@grpc/proto-loader", (load) => forward(load));
}

/** The dockerode adapter of the Engine port. dockerode is imported only when a command needs Docker. */
export async function createDockerEngine(connection: DockerConnection): Promise<Engine> {
  deferOptionalDockerodeModules();
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
  const labelFilter = (labels?: readonly string[]) =>
    labels === undefined || labels.length === 0 ? {} : { filters: JSON.stringify({ label: labels }) };

  return {
    async ping() {
      await call(() => docker.ping());
    },
    async listImages(labels) {
      const images = await call(() => docker.listImages(labelFilter(labels) as Dockerode.ListImagesOptions));
      return images.map(
        (image): ImageSummary => ({
          id: image.Id,
          repoTags: (image.RepoTags ?? []).filter((t) => t !== "<none>:<none>"),
          labels: image.Labels ?? {},
          created: image.Created,
        }),
      );
    },
    async inspectImage(ref) {
      try {
        const info = await call(() => docker.getImage(ref).inspect());
        return {
          id: info.Id,
          repoTags: info.RepoTags ?? [],
          labels: info.Config?.Labels ?? {},
          created: Math.floor(Date.parse(info.Created) / 1000),
          parent: info.Parent ?? "",
        } satisfies ImageDetails;
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    },
    async tagImage(id, repository, tag) {
      await call(() => docker.getImage(id).tag({ repo: repository, tag }));
    },
    async removeImage(ref) {
      await call(() => docker.getImage(ref).remove({ force: false, noprune: false }));
    },
    async listContainers(labels) {
      const containers = await call(() => docker.listContainers({ all: true, ...labelFilter(labels) }));
      return containers.map(
        (c): ContainerSummary => ({
          id: c.Id,
          names: (c.Names ?? []).map((n) => n.replace(/^\//, "")),
          imageId: c.ImageID,
          labels: c.Labels ?? {},
          state: c.State,
        }),
      );
    },
    async createContainer(request) {
      try {
        const container = await call(() =>
          docker.createContainer({
            name: request.name,
            Image: request.image,
            ...(request.cmd === undefined ? {} : { Cmd: [...request.cmd] }),
            Labels: { ...request.labels },
          }),
        );
        return { id: container.id };
      } catch (error) {
        if (statusCode(error) === 409) return { conflict: true };
        throw error;
      }
    },
    async removeContainer(ref, options = {}) {
      try {
        await call(() => docker.getContainer(ref).remove({ force: options.force ?? false, v: options.volumes ?? false }));
      } catch (error) {
        if (statusCode(error) === 404) return;
        throw error;
      }
    },
    async inspectContainer(ref) {
      try {
        const info = await call(() => docker.getContainer(ref).inspect());
        return {
          id: info.Id,
          names: [info.Name.replace(/^\//, "")],
          imageId: info.Image,
          labels: info.Config?.Labels ?? {},
          state: info.State?.Status ?? "unknown",
        } satisfies ContainerSummary;
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    },
    async *build(request) {
      const stream = (await call(() =>
        docker.buildImage(request.context as unknown as NodeJS.ReadableStream, {
          dockerfile: request.dockerfile,
          t: [...request.tags],
          buildargs: { ...request.buildArgs },
          labels: { ...request.labels },
          ...(request.target === undefined ? {} : { target: request.target }),
          nocache: request.noCache,
          pull: request.pull,
          rm: true,
          forcerm: true,
          ...(request.signal === undefined ? {} : { abortSignal: request.signal }),
          // dockerode sends an array as repeated `t=` parameters: one tag each
        } as unknown as Dockerode.ImageBuildOptions),
      )) as NodeJS.ReadableStream & AsyncIterable<Buffer>;
      yield* jsonMessages(stream);
    },
  };
}
