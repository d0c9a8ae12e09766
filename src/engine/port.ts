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

export interface Engine {
  /** resolves when the daemon answers; rejects with E_DOCKER_UNAVAILABLE otherwise */
  ping(): Promise<void>;
  /** every image the daemon holds, with its repository tags */
  listImages(): Promise<readonly ImageSummary[]>;
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
