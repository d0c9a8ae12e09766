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
}

export interface ContainerSummary {
  readonly id: string;
  readonly names: readonly string[];
  readonly imageId: string;
  readonly labels: Readonly<Record<string, string>>;
  /** created, running, exited, … */
  readonly state: string;
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

/** A container to create. Grows with the rollout; only what reroll sets is here. */
export interface ContainerCreateRequest {
  readonly name: string;
  readonly image: string;
  readonly cmd?: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

export type CreateResult = { readonly id: string } | { readonly conflict: true };

export interface Engine {
  /** resolves when the daemon answers; rejects with E_DOCKER_UNAVAILABLE otherwise */
  ping(): Promise<void>;
  /** images, optionally only those carrying every label given (`key` or `key=value`) */
  listImages(labels?: readonly string[]): Promise<readonly ImageSummary[]>;
  inspectImage(ref: string): Promise<ImageDetails | undefined>;
  tagImage(id: string, repository: string, tag: string): Promise<void>;
  /** removes one tag, or the image by id when `ref` is an id; never forced */
  removeImage(ref: string): Promise<void>;
  /** containers in any state, optionally only those carrying every label given */
  listContainers(labels?: readonly string[]): Promise<readonly ContainerSummary[]>;
  /** creates (does not start) a container; a name already taken is `{conflict: true}` */
  createContainer(request: ContainerCreateRequest): Promise<CreateResult>;
  /** removes a container by id or name; a missing one is not an error */
  removeContainer(ref: string, options?: { readonly force?: boolean; readonly volumes?: boolean }): Promise<void>;
  inspectContainer(ref: string): Promise<ContainerSummary | undefined>;
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
