import Module, { createRequire } from "node:module";
import type Dockerode from "dockerode";
import { labelInstruction } from "../core/dockerfile/quote.js";
import { RerollError } from "../core/errors.js";
import { engineApi } from "./http-api.js";
import type {
  BuildStreamMessage,
  ContainerCreateRequest,
  ContainerDetails,
  ContainerSummary,
  DockerConnection,
  Engine,
  EngineEvent,
  ImageDetails,
  ImageSummary,
  MountRequest,
} from "./port.js";

const NS_PER_MS = 1_000_000;

/** reroll's container request in the Engine API's shape. */
function toEngineCreate(request: ContainerCreateRequest): Dockerode.ContainerCreateOptions {
  const h = request.healthcheck;
  const isBind = (m: MountRequest): boolean => m.type === "bind" && m.source !== undefined && m.createHostPath !== false;
  const binds = (request.mounts ?? []).filter(isBind);
  const mounts = (request.mounts ?? []).filter((m) => !isBind(m));
  return {
    name: request.name,
    Image: request.image,
    ...(request.cmd === undefined ? {} : { Cmd: [...request.cmd] }),
    ...(request.entrypoint === undefined ? {} : { Entrypoint: [...request.entrypoint] }),
    Env: Object.entries(request.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { ...request.labels },
    ...(request.user === undefined ? {} : { User: request.user }),
    ...(request.workingDir === undefined ? {} : { WorkingDir: request.workingDir }),
    ...(request.stopSignal === undefined ? {} : { StopSignal: request.stopSignal }),
    ...(request.stopTimeoutSeconds === undefined ? {} : { StopTimeout: request.stopTimeoutSeconds }),
    ...(h === undefined
      ? {}
      : {
          Healthcheck: {
            Test: [...h.test],
            ...(h.intervalMs === undefined ? {} : { Interval: h.intervalMs * NS_PER_MS }),
            ...(h.timeoutMs === undefined ? {} : { Timeout: h.timeoutMs * NS_PER_MS }),
            ...(h.retries === undefined ? {} : { Retries: h.retries }),
            ...(h.startPeriodMs === undefined ? {} : { StartPeriod: h.startPeriodMs * NS_PER_MS }),
          },
        }),
    ...(request.exposedPorts === undefined ? {} : { ExposedPorts: Object.fromEntries(request.exposedPorts.map((p) => [p, {}])) }),
    HostConfig: {
      // A bind mount whose source may be created goes as a bind (`-v`), which makes a missing
      // directory; a mount (`--mount`) never does. That is how Compose sends create_host_path.
      ...(binds.length === 0 ? {} : { Binds: binds.map((m) => `${m.source}:${m.target}:${m.readOnly ? "ro" : "rw"}`) }),
      Mounts: mounts.map((m) => ({
        Type: m.type,
        Target: m.target,
        ReadOnly: m.readOnly,
        ...(m.source === undefined ? {} : { Source: m.source }),
        ...(m.type === "volume" && m.noCopy === true ? { VolumeOptions: { NoCopy: true } } : {}),
      })),
      ...(request.tmpfs === undefined ? {} : { Tmpfs: { ...request.tmpfs } }),
      ReadonlyRootfs: request.readOnly ?? false,
      ...(request.restart === undefined
        ? {}
        : { RestartPolicy: { Name: request.restart.name, MaximumRetryCount: request.restart.maximumRetryCount ?? 0 } }),
      ...(request.network === undefined ? {} : { NetworkMode: request.network.name }),
      ...(request.portBindings === undefined
        ? {}
        : {
            PortBindings: request.portBindings.reduce<Record<string, { HostIp: string; HostPort: string }[]>>((all, b) => {
              (all[b.containerPort] ??= []).push({ HostIp: b.hostIp, HostPort: b.hostPort });
              return all;
            }, {}),
          }),
      ...(request.nanoCpus === undefined ? {} : { NanoCpus: request.nanoCpus }),
      ...(request.memoryBytes === undefined ? {} : { Memory: request.memoryBytes }),
      // without a driver, the daemon's default driver with these options (as Compose sends it)
      ...(request.logging === undefined ? {} : { LogConfig: { Type: request.logging.driver ?? "", Config: { ...request.logging.options } } }),
      ...(request.extraHosts === undefined ? {} : { ExtraHosts: [...request.extraHosts] }),
      ...(request.init === undefined ? {} : { Init: request.init }),
      ...(request.capAdd === undefined ? {} : { CapAdd: [...request.capAdd] }),
      ...(request.capDrop === undefined ? {} : { CapDrop: [...request.capDrop] }),
    },
    ...(request.network === undefined
      ? {}
      : { NetworkingConfig: { EndpointsConfig: { [request.network.name]: { Aliases: [...request.network.aliases] } } } }),
  } as Dockerode.ContainerCreateOptions;
}

/** Docker's multiplexed log stream (8-byte frame headers) as text; plain text passes through. */
export function demuxLogs(buffer: Buffer): string {
  if (buffer.length < 8 || buffer[1] !== 0 || buffer[2] !== 0 || buffer[3] !== 0 || buffer[0]! > 2) return buffer.toString("utf8");
  let out = "";
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString("utf8");
    offset += 8 + size;
  }
  return out;
}

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

/** the daemon's own words, without the status prefix dockerode and http-api.ts put before them */
function dockerMessage(error: unknown): string {
  return String((error as Error | undefined)?.message ?? error)
    .replace(/^\(HTTP code \d+\)\s*(?:[a-z /]+ - )?/, "")
    .trim();
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
 * dockerode requires ssh2 (for ssh:// daemons), gRPC (for BuildKit sessions) and tar-fs (for
 * directory build contexts) as soon as it is loaded: over 200 of its 250 ms of start-up,
 * paid by every command even though reroll uses none of them yet. Each is registered in the CommonJS cache as a stand-in that loads the real
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
  // tar-fs packs a directory given as a build context; reroll always sends its own stream.
  defer(fromDockerode, "tar-fs", (load) => forward(load));
}

/**
 * The Engine port over the Docker Engine API: plain calls through engineApi (node:http),
 * streams (build, import, events, logs) through dockerode, loaded on the first of those.
 */
export async function createDockerEngine(connection: DockerConnection): Promise<Engine> {
  const api = engineApi(connection);
  let instance: Dockerode | undefined;
  const docker = (): Dockerode => {
    if (instance === undefined) {
      deferOptionalDockerodeModules();
      // require, not import(): dockerode is CommonJS, and the ESM wrapper costs start-up time.
      const Docker = createRequire(import.meta.url)("dockerode") as typeof Dockerode;
      const { describe: _describe, ...options } = connection;
      instance = new Docker(options);
    }
    return instance;
  };
  const filters = (value: object): string => JSON.stringify(value);

  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined && UNREACHABLE_CODES.has(code)) throw dockerUnavailable(connection, error);
      throw error;
    }
  };
  const labelFilter = (labels?: readonly string[]) => (labels === undefined || labels.length === 0 ? undefined : filters({ label: labels }));

  return {
    async ping() {
      await call(() => api("GET", "/_ping"));
    },
    async listImages(labels) {
      const images = await call(() => api<Dockerode.ImageInfo[]>("GET", "/images/json", { query: { filters: labelFilter(labels) } }));
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
      // an empty reference names no image (the daemon would answer /images//json with a redirect)
      if (ref.trim() === "") return undefined;
      try {
        // an image reference may hold slashes; the daemon's route takes the rest of the path
        const info = await call(() => api<Dockerode.ImageInspectInfo>("GET", `/images/${ref}/json`));
        const h = info.Config?.Healthcheck as { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number } | undefined;
        return {
          id: info.Id,
          repoTags: info.RepoTags ?? [],
          labels: info.Config?.Labels ?? {},
          created: Math.floor(Date.parse(info.Created) / 1000),
          parent: info.Parent ?? "",
          volumes: Object.keys(info.Config?.Volumes ?? {}),
          healthcheck:
            h?.Test === undefined || h.Test[0] === "NONE"
              ? undefined
              : {
                  test: h.Test,
                  ...(h.Interval ? { intervalMs: h.Interval / NS_PER_MS } : {}),
                  ...(h.Timeout ? { timeoutMs: h.Timeout / NS_PER_MS } : {}),
                  ...(h.Retries ? { retries: h.Retries } : {}),
                  ...(h.StartPeriod ? { startPeriodMs: h.StartPeriod / NS_PER_MS } : {}),
                },
        } satisfies ImageDetails;
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    },
    async tagImage(id, repository, tag) {
      await call(() => api("POST", `/images/${id}/tag`, { query: { repo: repository, tag } }));
    },
    async createLabeller(image, workName) {
      const remove = () => api("DELETE", `/containers/${encodeURIComponent(workName)}`, { query: { force: true } }).then(() => undefined, () => undefined);
      let created: { Id: string };
      try {
        created = await call(() => api<{ Id: string }>("POST", "/containers/create", { query: { name: workName }, body: { Image: image } }));
      } catch (error) {
        if (statusCode(error) === 400 && /no command specified/i.test((error as Error).message)) return undefined;
        throw error;
      }
      return {
        async commit(labels) {
          const committed = await call(() => api<{ Id: string }>("POST", "/commit", { query: { container: created.Id, changes: labelInstruction(labels), pause: false } }));
          return committed.Id;
        },
        remove,
      };
    },
    async importImage(rootfs, repository, tag, labels) {
      const options: object = { repo: repository, tag, changes: labelInstruction(labels) };
      const stream = (await call(() => docker().importImage(rootfs as unknown as NodeJS.ReadableStream, options))) as NodeJS.ReadableStream &
        AsyncIterable<Buffer>;
      for await (const message of jsonMessages(stream)) {
        if (message.error !== undefined || message.errorDetail !== undefined) {
          throw new RerollError("E_DOCKER", `Importing ${repository}:${tag} failed: ${message.errorDetail?.message ?? message.error}`, { kind: "failed" });
        }
      }
    },
    async removeImage(ref) {
      await call(() => api("DELETE", `/images/${ref}`, { query: { force: false, noprune: false } }));
    },
    async listContainers(labels) {
      const containers = await call(() => api<Dockerode.ContainerInfo[]>("GET", "/containers/json", { query: { all: true, filters: labelFilter(labels) } }));
      return containers.map(
        (c): ContainerSummary => ({
          id: c.Id,
          names: (c.Names ?? []).map((n) => n.replace(/^\//, "")),
          imageId: c.ImageID,
          labels: c.Labels ?? {},
          state: c.State,
          createdMs: c.Created * 1000,
          health: /\((healthy|unhealthy)\)/.exec(c.Status ?? "")?.[1] ?? (/\(health: starting\)/.test(c.Status ?? "") ? "starting" : undefined),
          published: (c.Ports ?? []).filter((p) => p.PublicPort !== undefined).map((p) => ({ hostIp: p.IP ?? "", hostPort: p.PublicPort })),
          addresses: Object.fromEntries(Object.entries(c.NetworkSettings?.Networks ?? {}).flatMap(([network, n]) => (n.IPAddress ? [[network, n.IPAddress]] : []))),
        }),
      );
    },
    async createContainer(request) {
      try {
        const { name, ...body } = toEngineCreate(request);
        const created = await call(() => api<{ Id: string }>("POST", "/containers/create", { query: { name }, body }));
        return { id: created.Id };
      } catch (error) {
        if (statusCode(error) === 409) return { conflict: true };
        // the daemon's no to this configuration (a mount source that does not exist, an option
        // it does not know), in its own words; E_NO_SUCH_IMAGE when it lacks the image, which a
        // caller may mend and try again
        if (statusCode(error) !== undefined) {
          throw new RerollError(statusCode(error) === 404 ? "E_NO_SUCH_IMAGE" : "E_CREATE_REFUSED", `Docker refused to create ${request.name}: ${dockerMessage(error)}`, { kind: "failed", cause: error });
        }
        throw error;
      }
    },
    async removeContainer(ref, options = {}) {
      try {
        await call(() => api("DELETE", `/containers/${encodeURIComponent(ref)}`, { query: { force: options.force ?? false, v: options.volumes ?? false } }));
      } catch (error) {
        if (statusCode(error) === 404) return;
        throw error;
      }
    },
    async inspectContainer(ref) {
      try {
        const info = await call(() => api<Dockerode.ContainerInspectInfo>("GET", `/containers/${encodeURIComponent(ref)}/json`));
        return {
          id: info.Id,
          names: [info.Name.replace(/^\//, "")],
          imageId: info.Image,
          labels: info.Config?.Labels ?? {},
          state: info.State?.Status ?? "unknown",
          running: info.State?.Running === true,
          exitCode: info.State?.ExitCode ?? 0,
          health: info.State?.Health?.Status,
          startedAt: info.State?.StartedAt ?? "",
          restartCount: info.RestartCount ?? 0,
          hasHealthcheck: info.Config?.Healthcheck?.Test !== undefined && info.Config.Healthcheck.Test[0] !== "NONE",
          networks: Object.fromEntries(Object.entries(info.NetworkSettings?.Networks ?? {}).map(([name, n]) => [name, n.IPAddress ?? ""])),
          ports: Object.entries(info.NetworkSettings?.Ports ?? {}).flatMap(([containerPort, bindings]) =>
            (bindings ?? []).map((b) => ({ containerPort, hostIp: b.HostIp ?? "", hostPort: b.HostPort ?? "" })),
          ),
          pid: info.State?.Pid ?? 0,
        } satisfies ContainerDetails;
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        throw error;
      }
    },
    async startContainer(ref) {
      try {
        await call(() => api("POST", `/containers/${encodeURIComponent(ref)}/start`));
      } catch (error) {
        if (statusCode(error) === 304) return; // already running
        // the daemon could not start it (its command not found, a user that does not exist)
        if (statusCode(error) === 400 || statusCode(error) === 500) throw new RerollError("E_START_REFUSED", `Docker could not start ${ref}: ${dockerMessage(error)}`, { kind: "failed", cause: error });
        throw error;
      }
    },
    async stopContainer(ref, timeoutSeconds) {
      try {
        await call(() => api("POST", `/containers/${encodeURIComponent(ref)}/stop`, { query: timeoutSeconds === undefined ? {} : { t: timeoutSeconds } }));
      } catch (error) {
        if (statusCode(error) === 304 || statusCode(error) === 404) return; // already stopped, or gone
        throw error;
      }
    },
    async signalContainer(ref, signal) {
      try {
        await call(() => api("POST", `/containers/${encodeURIComponent(ref)}/kill`, { query: { signal } }));
      } catch (error) {
        if (statusCode(error) === 409) throw new RerollError("E_NOT_RUNNING", `${ref} is not running: ${dockerMessage(error)}`, { kind: "failed", cause: error });
        throw error;
      }
    },
    async putArchive(ref, dir, archive) {
      const response = await call(() => api.stream("PUT", `/containers/${encodeURIComponent(ref)}/archive`, { query: { path: dir }, body: archive, contentType: "application/x-tar" }));
      response.resume();
      await new Promise<void>((resolve, reject) => response.on("end", resolve).on("error", reject));
    },
    async renameContainer(ref, name) {
      await call(() => api("POST", `/containers/${encodeURIComponent(ref)}/rename`, { query: { name } }));
    },
    async containerLogs(ref, lines) {
      try {
        const logs = (await call(() => docker().getContainer(ref).logs({ stdout: true, stderr: true, tail: lines, follow: false }))) as unknown as Buffer;
        return demuxLogs(Buffer.isBuffer(logs) ? logs : Buffer.from(String(logs)))
          .split("\n")
          .map((line) => line.trimEnd())
          .filter((line) => line !== "");
      } catch (error) {
        if (statusCode(error) === 404) return [];
        throw error;
      }
    },
    async exec(ref, cmd) {
      const { PassThrough } = await import("node:stream");
      let stream: NodeJS.ReadWriteStream & { destroy(): void; end(): void };
      try {
        const exec = await call(() =>
          docker()
            .getContainer(ref)
            .exec({ Cmd: [...cmd], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false }),
        );
        stream = (await call(() => exec.start({ hijack: true, stdin: true }))) as unknown as typeof stream;
      } catch (error) {
        // 409: stopped, paused, or between two of Docker's restarts ("is restarting"), when the
        // exec is created or when it starts (the container stopped in between)
        if (statusCode(error) === 409) throw new RerollError("E_NOT_RUNNING", `${ref} is not running: ${dockerMessage(error)}`, { kind: "failed", cause: error });
        throw error;
      }
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      docker().modem.demuxStream(stream, stdout, stderr);
      stderr.resume();
      stream.on("end", () => stdout.end());
      stream.on("close", () => stdout.end());
      stream.on("error", (error: Error) => stdout.destroy(error));
      return {
        output: stdout,
        write: (data: string) => void stream.write(data),
        close: () => {
          stream.end();
          stream.destroy();
        },
      };
    },
    async *events(filters, signal, sinceMs) {
      const options = {
        filters: JSON.stringify(filters),
        ...(sinceMs === undefined ? {} : { since: (sinceMs / 1000).toFixed(3) }),
      };
      // The subscription ends by closing its connection (stop), never by the signal's own abort:
      // a stream that ends early must close it too.
      const stream = await call(() => api.stream("GET", "/events", { query: options }));
      const stop = () => stream.destroy();
      if (signal.aborted) stop();
      signal.addEventListener("abort", stop, { once: true });
      try {
        let buffer = "";
        for await (const chunk of stream) {
          buffer += chunk.toString("utf8");
          let nl = buffer.indexOf("\n");
          while (nl !== -1) {
            const line = buffer.slice(0, nl).trim();
            buffer = buffer.slice(nl + 1);
            nl = buffer.indexOf("\n");
            if (line === "") continue;
            const raw = JSON.parse(line) as { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; timeNano?: number };
            yield {
              type: raw.Type ?? "",
              action: raw.Action ?? "",
              id: raw.Actor?.ID ?? "",
              attributes: raw.Actor?.Attributes ?? {},
              timeNano: raw.timeNano ?? 0,
            } satisfies EngineEvent;
          }
        }
      } catch (error) {
        if (!signal.aborted) throw error;
      } finally {
        signal.removeEventListener("abort", stop);
        stop();
      }
    },
    async ensureNetwork(name, labels) {
      const existing = await call(() => api<Dockerode.NetworkInspectInfo[]>("GET", "/networks", { query: { filters: filters({ name: [name] }) } }));
      if (existing.some((n) => n.Name === name)) return;
      try {
        await call(() => api("POST", "/networks/create", { body: { Name: name, Labels: { ...labels }, CheckDuplicate: true } }));
      } catch (error) {
        if (statusCode(error) === 409) return;
        if (statusCode(error) !== undefined) {
          throw new RerollError("E_NETWORK_REFUSED", `Docker could not create the network ${name}: ${dockerMessage(error)}`, {
            kind: "failed",
            cause: error,
            hint: /address pool/i.test(dockerMessage(error))
              ? "Docker has no address range left for another network: remove networks no container uses (docker network prune), or give the daemon more (default-address-pools in daemon.json)."
              : "Fix what Docker names, then run the command again.",
          });
        }
        throw error;
      }
    },
    async removeNetwork(name) {
      try {
        await call(() => api("DELETE", `/networks/${encodeURIComponent(name)}`));
      } catch (error) {
        if (statusCode(error) !== 404) throw error;
      }
    },
    async ensureVolume(name, labels, driver, driverOpts) {
      try {
        await call(() => api("GET", `/volumes/${encodeURIComponent(name)}`));
        return;
      } catch (error) {
        if (statusCode(error) !== 404) throw error;
      }
      try {
        await call(() =>
          api("POST", "/volumes/create", { body: { Name: name, Labels: { ...labels }, ...(driver === undefined ? {} : { Driver: driver }), DriverOpts: { ...(driverOpts ?? {}) } } }),
        );
      } catch (error) {
        // a driver the daemon does not have, options it rejects
        if (statusCode(error) === undefined) throw error;
        throw new RerollError("E_VOLUME_REFUSED", `Docker could not create the volume ${name}: ${dockerMessage(error)}`, {
          kind: "failed",
          cause: error,
          hint: "Check the volume's driver and driver_opts in the Compose file, then run the command again.",
        });
      }
    },
    async listVolumes(labels) {
      const result = await call(() => api<{ Volumes?: { Name: string }[] }>("GET", "/volumes", { query: { filters: filters({ label: labels }) } }));
      return (result.Volumes ?? []).map((v) => v.Name);
    },
    async hasVolume(name) {
      try {
        await call(() => api("GET", `/volumes/${encodeURIComponent(name)}`));
        return true;
      } catch (error) {
        if (statusCode(error) === 404) return false;
        throw error;
      }
    },
    async removeVolume(name) {
      try {
        await call(() => api("DELETE", `/volumes/${encodeURIComponent(name)}`));
      } catch (error) {
        if (statusCode(error) !== 404) throw error;
      }
    },
    async listNetworks(labels) {
      const networks = await call(() => api<Dockerode.NetworkInspectInfo[]>("GET", "/networks", { query: { filters: filters({ label: labels }) } }));
      return networks.map((n) => n.Name);
    },
    async *build(request) {
      const response = await call(() =>
        api.stream("POST", "/build", {
          query: {
            dockerfile: request.dockerfile,
            t: request.tags,
            buildargs: JSON.stringify(request.buildArgs),
            labels: JSON.stringify(request.labels),
            target: request.target,
            nocache: request.noCache,
            pull: request.pull,
            rm: true,
            forcerm: true,
          },
          body: request.context,
          ...(request.recycle === undefined ? {} : { recycle: request.recycle }),
          contentType: "application/x-tar",
          ...(request.signal === undefined ? {} : { signal: request.signal }),
        }),
      );
      yield* jsonMessages(response);
    },
  };
}
