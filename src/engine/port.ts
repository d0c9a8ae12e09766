import type { Readable } from "node:stream";

/**
 * The narrow port reroll uses to talk to Docker. It speaks reroll's own types; only the
 * adapter (docker-engine.ts) knows dockerode. Tests drive the core through a fake of this.
 */

export interface ImageSummary {
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** seconds since the epoch */
  readonly created: number;
}

export interface ImageDetails extends ImageSummary {
  readonly parent: string;
  /** the image's own VOLUME paths */
  readonly volumes: readonly string[];
  /** the image's own HEALTHCHECK */
  readonly healthcheck: HealthcheckRequest | undefined;
}

export interface ContainerSummary {
  readonly id: string;
  readonly names: readonly string[];
  readonly imageId: string;
  readonly labels: Readonly<Record<string, string>>;
  /** created, running, exited, … */
  readonly state: string;
  /** when the daemon created it, in ms since the epoch (by the daemon's clock) */
  readonly createdMs?: number;
  /** "healthy", "unhealthy", "starting", or undefined without a healthcheck (from the list's status text) */
  readonly health?: string | undefined;
  /** published ports (host side), when any */
  readonly published?: readonly { readonly hostIp: string; readonly hostPort: number }[];
  /** its IPv4 address on each network it is on now, by network name */
  readonly addresses?: Readonly<Record<string, string>>;
}

/** One JSON object of the Engine's build stream, as the daemon sent it. */
export interface BuildStreamMessage {
  readonly stream?: string;
  readonly status?: string;
  readonly id?: string;
  readonly progress?: string;
  readonly error?: string;
  readonly errorDetail?: { readonly message?: string; readonly code?: number };
  readonly aux?: { readonly ID?: string };
}

export interface BuildRequest {
  /** the context as a tar stream */
  readonly context: Readable;
  /** called with each chunk of `context` once it is written to the daemon, for its memory to be reused */
  readonly recycle?: (chunk: Buffer) => void;
  /** path of the Dockerfile inside the context */
  readonly dockerfile: string;
  readonly tags: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly target?: string;
  readonly noCache: boolean;
  readonly pull: boolean;
  readonly signal?: AbortSignal;
}

export interface MountRequest {
  readonly type: "volume" | "bind" | "tmpfs";
  readonly source?: string;
  readonly target: string;
  readonly readOnly: boolean;
  readonly noCopy?: boolean;
  /** a bind mount: false when its source must exist (create_host_path: false); otherwise the daemon creates a missing directory, as Compose has it */
  readonly createHostPath?: false;
}

export interface HealthcheckRequest {
  readonly test: readonly string[];
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly retries?: number;
  readonly startPeriodMs?: number;
}

/** A container to create, in reroll's terms; the adapter maps it to the Engine API. */
export interface ContainerCreateRequest {
  readonly name: string;
  readonly image: string;
  readonly cmd?: readonly string[];
  readonly entrypoint?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly user?: string;
  readonly workingDir?: string;
  readonly stopSignal?: string;
  readonly stopTimeoutSeconds?: number;
  readonly healthcheck?: HealthcheckRequest;
  readonly exposedPorts?: readonly string[];
  readonly mounts?: readonly MountRequest[];
  readonly tmpfs?: Readonly<Record<string, string>>;
  readonly readOnly?: boolean;
  readonly restart?: { readonly name: string; readonly maximumRetryCount?: number };
  readonly network?: { readonly name: string; readonly aliases: readonly string[] };
  /** host ports published to container ports ("8000/tcp"); hostPort "" lets Docker choose */
  readonly portBindings?: readonly PortBinding[];
  readonly nanoCpus?: number;
  readonly memoryBytes?: number;
  readonly logging?: { readonly driver: string | undefined; readonly options: Readonly<Record<string, string>> };
  readonly extraHosts?: readonly string[];
  readonly init?: boolean;
  readonly capAdd?: readonly string[];
  readonly capDrop?: readonly string[];
}

export interface PortBinding {
  readonly containerPort: string;
  readonly hostIp: string;
  readonly hostPort: string;
}

/** A process started inside a running container, stdin and stdout attached. */
export interface ExecSession {
  /** the process's stdout, demultiplexed */
  readonly output: AsyncIterable<Buffer>;
  write(data: string): void;
  /** closes stdin and the connection */
  close(): void;
}

export interface ContainerDetails extends ContainerSummary {
  readonly running: boolean;
  readonly exitCode: number;
  /** "healthy", "unhealthy", "starting", or undefined without a healthcheck */
  readonly health: string | undefined;
  readonly startedAt: string;
  readonly restartCount: number;
  readonly hasHealthcheck: boolean;
  /** the container's address on each network it joined */
  readonly networks: Readonly<Record<string, string>>;
  /** host ports bound to its container ports, as Docker reports them (while running) */
  readonly ports: readonly PortBinding[];
  /** its main process on the host, 0 when not running */
  readonly pid: number;
}

/** One event of the daemon's event stream, as far as reroll reads it. */
export interface EngineEvent {
  readonly type: string;
  readonly action: string;
  readonly id: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly timeNano: number;
}

export interface Labeller {
  /** the new image: the labeller's image with `labels` added */
  commit(labels: Readonly<Record<string, string>>): Promise<string>;
  /** removes the labeller container; never fails */
  remove(): Promise<void>;
}

export type CreateResult = { readonly id: string } | { readonly conflict: true };

export interface Engine {
  /** resolves when the daemon answers; rejects with E_DOCKER_UNAVAILABLE otherwise */
  ping(): Promise<void>;
  /** images, optionally only those carrying every label given (`key` or `key=value`) */
  listImages(labels?: readonly string[]): Promise<readonly ImageSummary[]>;
  inspectImage(ref: string): Promise<ImageDetails | undefined>;
  tagImage(id: string, repository: string, tag: string): Promise<void>;
  /**
   * A never-started container of `image` named `workName` (a leftover of that name is
   * replaced), whose commit makes `image` plus labels and nothing else (no layer of content).
   * Undefined when the image has no command, so that no container can be made from it as it is.
   */
  createLabeller(image: string, workName: string): Promise<Labeller | undefined>;
  /** makes an image from a root filesystem tar (`docker import`) */
  importImage(rootfs: Readable, repository: string, tag: string, labels: Readonly<Record<string, string>>): Promise<void>;
  /** removes one tag, or the image by id when `ref` is an id; never forced */
  removeImage(ref: string): Promise<void>;
  /** containers in any state, optionally only those carrying every label given */
  listContainers(labels?: readonly string[]): Promise<readonly ContainerSummary[]>;
  /** creates (does not start) a container; a name already taken is `{conflict: true}` */
  createContainer(request: ContainerCreateRequest): Promise<CreateResult>;
  /** removes a container by id or name; a missing one is not an error */
  removeContainer(ref: string, options?: { readonly force?: boolean; readonly volumes?: boolean }): Promise<void>;
  inspectContainer(ref: string): Promise<ContainerDetails | undefined>;
  startContainer(ref: string): Promise<void>;
  /** stops with the container's own stop signal, then SIGKILL after `timeoutSeconds` (by default, the container's own StopTimeout) */
  stopContainer(ref: string, timeoutSeconds?: number): Promise<void>;
  renameContainer(ref: string, name: string): Promise<void>;
  /** sends a signal to the container's main process (a reload, for HAProxy's master: SIGUSR2) */
  signalContainer(ref: string, signal: string): Promise<void>;
  /** unpacks a tar archive into `dir` of the container, created or running (its volumes included) */
  putArchive(ref: string, dir: string, archive: Readable): Promise<void>;
  /** the last `lines` lines of the container's output, without empty ones or trailing whitespace (none for a container that is gone) */
  containerLogs(ref: string, lines: number): Promise<readonly string[]>;
  exec(ref: string, cmd: readonly string[]): Promise<ExecSession>;
  /** the daemon's events since `sinceMs` (epoch ms, replayed) or now, until `signal` aborts */
  events(filters: Readonly<Record<string, readonly string[]>>, signal: AbortSignal, sinceMs?: number): AsyncIterable<EngineEvent>;
  ensureNetwork(name: string, labels: Readonly<Record<string, string>>): Promise<void>;
  removeNetwork(name: string): Promise<void>;
  ensureVolume(name: string, labels: Readonly<Record<string, string>>, driver?: string, driverOpts?: Readonly<Record<string, string>>): Promise<void>;
  listVolumes(labels: readonly string[]): Promise<readonly string[]>;
  /** whether the daemon has a volume of that name */
  hasVolume(name: string): Promise<boolean>;
  removeVolume(name: string): Promise<void>;
  listNetworks(labels: readonly string[]): Promise<readonly string[]>;
  /** sends a build; yields the daemon's messages as they arrive */
  build(request: BuildRequest): AsyncIterable<BuildStreamMessage>;
}

/** How to reach the daemon, as the docker CLI finds it. */
export interface DockerConnection {
  readonly socketPath?: string;
  readonly protocol?: "http" | "https";
  readonly host?: string;
  readonly port?: number;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** what the user would recognise: DOCKER_HOST or the socket path */
  readonly describe: string;
}
