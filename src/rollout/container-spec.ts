import { createHash } from "node:crypto";
import { RerollError } from "../core/errors.js";
import { LABEL_PROJECT, LABEL_PROXY_FOR, LABEL_REVISION, LABEL_SERVICE } from "../core/labels.js";
import type { ServiceSpec, Spec } from "../core/spec/types.js";
import type { ContainerCreateRequest, ContainerSummary, HealthcheckRequest, ImageDetails, MountRequest } from "../engine/port.js";
import type { RecordedConfig } from "./state.js";

export const LABEL_SLOT = "dev.reroll.slot";
export const LABEL_SPEC_HASH = "dev.reroll.spec-hash";
export const DEFAULT_STOP_GRACE_MS = 10_000;

/** Docker's own healthcheck defaults, used to derive a readiness deadline. */
export const DOCKER_HEALTH_INTERVAL_MS = 30_000;
export const DOCKER_HEALTH_TIMEOUT_MS = 30_000;
export const DOCKER_HEALTH_RETRIES = 3;
/** margin on top of the healthcheck's own worst case before a replica is given up */
export const READINESS_SLACK_MS = 5_000;

/**
 * The service a replica or a proxy of the project serves, when the Compose file no longer has
 * it (removed or renamed): such a container keeps running, and a proxy keeps its host port,
 * until `reroll up --remove-orphans` or `reroll down SERVICE` removes it.
 */
export function orphanOf(c: ContainerSummary, services: ReadonlySet<string>): string | undefined {
  const service = c.labels[LABEL_SLOT] !== undefined ? c.labels[LABEL_SERVICE] : c.labels[LABEL_PROXY_FOR];
  return service !== undefined && !services.has(service) ? service : undefined;
}

export function networkName(project: string): string {
  return `${project}_default`;
}

export function containerName(project: string, service: string, revision: number, slot: number): string {
  return `${project}-${service}-r${revision}-${slot}`;
}

export function volumeName(spec: Spec, volume: string): string {
  return spec.volumes[volume]?.name ?? `${spec.project}_${volume}`;
}

function mounts(spec: Spec, service: ServiceSpec): MountRequest[] {
  return service.volumes.map((m): MountRequest => {
    switch (m.type) {
      case "volume":
        return { type: "volume", source: volumeName(spec, m.source), target: m.target, readOnly: m.readOnly, noCopy: m.nocopy };
      case "anonymous":
        return { type: "volume", target: m.target, readOnly: m.readOnly };
      case "bind":
        // only `false` is written: the configuration hash of every bind as it was stays the same
        return { type: "bind", source: m.source, target: m.target, readOnly: m.readOnly, ...(m.createHostPath ? {} : { createHostPath: false as const }) };
      case "tmpfs":
        return { type: "tmpfs", target: m.target, readOnly: false };
    }
  });
}

/** The healthcheck a replica runs with: the spec's, else the image's, else none. */
export function effectiveHealthcheck(service: ServiceSpec, image: ImageDetails | undefined): HealthcheckRequest | undefined {
  const h = service.healthcheck;
  if (h?.disable === true || h?.test?.[0] === "NONE") return undefined;
  const fromImage = image?.healthcheck;
  const test = h?.test ?? fromImage?.test;
  if (test === undefined) return undefined;
  const intervalMs = h?.intervalMs ?? fromImage?.intervalMs;
  const timeoutMs = h?.timeoutMs ?? fromImage?.timeoutMs;
  const retries = h?.retries ?? fromImage?.retries;
  const startPeriodMs = h?.startPeriodMs ?? fromImage?.startPeriodMs;
  return {
    test,
    ...(intervalMs === undefined ? {} : { intervalMs }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    ...(retries === undefined ? {} : { retries }),
    ...(startPeriodMs === undefined ? {} : { startPeriodMs }),
  };
}

/**
 * How long a new replica may take to become healthy, from its healthcheck's own settings:
 * start_period + 2 × (interval + timeout) × retries, plus the monitor window and a margin.
 * A replica that fails its checks is reported `unhealthy` by Docker after `retries` and
 * fails at once; this deadline only matters when Docker reports nothing, which on a loaded
 * daemon (dozens of replicas checking every second on two cores, bench/) takes longer than
 * the checks' own worst case. So it is generous: a slow-starting app is not rolled back early.
 */
export function readinessDeadlineMs(health: HealthcheckRequest | undefined, monitorMs: number): number {
  if (health === undefined) return monitorMs + READINESS_SLACK_MS;
  const interval = health.intervalMs ?? DOCKER_HEALTH_INTERVAL_MS;
  const timeout = health.timeoutMs ?? DOCKER_HEALTH_TIMEOUT_MS;
  const retries = health.retries ?? DOCKER_HEALTH_RETRIES;
  return (health.startPeriodMs ?? 0) + 2 * (interval + timeout) * Math.max(1, retries) + monitorMs + READINESS_SLACK_MS;
}

/**
 * Refuses a service whose replacement would lose data: an anonymous volume, or a VOLUME of
 * the image that no named volume or bind mount backs, unless `x-reroll.allow_data_loss`.
 */
export function checkDataSafety(service: ServiceSpec, image: ImageDetails | undefined): void {
  if (service.allowDataLoss) return;
  const backed = new Set(service.volumes.filter((m) => m.type === "volume" || m.type === "bind").map((m) => m.target.replace(/\/+$/, "")));
  const problems: string[] = [];
  for (const m of service.volumes) {
    if (m.type === "anonymous") problems.push(`services.${service.name}.volumes: ${m.target} is an anonymous volume; a new replica gets an empty one`);
  }
  for (const path of image?.volumes ?? []) {
    if (!backed.has(path.replace(/\/+$/, ""))) {
      problems.push(`services.${service.name}: the image declares VOLUME ${path}, which no named volume backs; a new replica gets an empty one`);
    }
  }
  if (problems.length > 0) {
    throw new RerollError("E_DATA_LOSS", `Replacing ${service.name}'s replicas would lose the data in their volumes; nothing was changed.`, {
      problems,
      hint: `Mount a named volume there (volumes: [name:${problems.length > 0 ? "/path" : ""}] with a top-level volumes: entry), or set x-reroll.allow_data_loss: true if the data is disposable.`,
    });
  }
}

/** The service's keys that are not the replica's own: the door and the rollout's settings stay the file's on rollback. */
const FILE_KEYS: ReadonlySet<string> = new Set<keyof ServiceSpec>(["name", "image", "imageDeclared", "build", "ports", "proxy", "deploy", "dependsOn", "allowDataLoss"]);

/** What `rollback` needs to run a service's replicas again as this rollout runs them (state.ts). */
export function recordConfig(spec: Spec, service: ServiceSpec): RecordedConfig {
  const runtime = Object.entries({ ...service, resources: service.deploy.resources }).filter(([key]) => !FILE_KEYS.has(key));
  const named = service.volumes.flatMap((m) => (m.type === "volume" && spec.volumes[m.source] !== undefined ? [[m.source, spec.volumes[m.source]!] as const] : []));
  return { service: Object.fromEntries(runtime.map(([key, value]) => [key, value ?? null])), volumes: Object.fromEntries(named) };
}

/**
 * The service as a recorded configuration ran it: the replica's keys from the record, the
 * door and the rollout settings from the Compose file. (The named volumes the record names
 * are resolved as they were then, through `recorded.volumes` in the spec: see `rollback`.)
 */
export function restoreConfig(service: ServiceSpec, recorded: RecordedConfig): ServiceSpec {
  const restored: Record<string, unknown> = { ...service };
  for (const [key, value] of Object.entries(recorded.service)) {
    if (key !== "resources" && !FILE_KEYS.has(key)) restored[key] = value ?? undefined;
  }
  const resources = (recorded.service["resources"] ?? service.deploy.resources) as ServiceSpec["deploy"]["resources"];
  return { ...(restored as unknown as ServiceSpec), deploy: { ...service.deploy, resources } };
}

/** Everything a replica is created with, except its name and revision labels. */
function runtimeConfig(spec: Spec, service: ServiceSpec, image: ImageDetails | undefined) {
  const restart = /^on-failure:(\d+)$/.exec(service.restart);
  return {
    cmd: service.command,
    entrypoint: service.entrypoint,
    env: service.environment,
    labels: service.labels,
    user: service.user,
    workingDir: service.workingDir,
    stopSignal: service.stopSignal,
    stopTimeoutSeconds: Math.ceil((service.stopGracePeriodMs ?? DEFAULT_STOP_GRACE_MS) / 1000),
    // without a Healthcheck of its own a container runs its image's: `disable` must say NONE
    healthcheck: effectiveHealthcheck(service, image) ?? (service.healthcheck?.disable === true ? { test: ["NONE"] } : undefined),
    exposedPorts: [...service.expose.map((p) => (p.includes("/") ? p : `${p}/tcp`)), ...service.ports.map((p) => `${p.target}/${p.protocol}`)],
    mounts: mounts(spec, service),
    tmpfs: Object.fromEntries(service.tmpfs.map((t) => [t, ""])),
    readOnly: service.readOnly,
    restart: restart === null ? { name: service.restart } : { name: "on-failure", maximumRetryCount: Number(restart[1]) },
    nanoCpus: service.deploy.resources.cpus === undefined ? undefined : Math.round(service.deploy.resources.cpus * 1e9),
    memoryBytes: service.deploy.resources.memoryBytes,
    // undefined when the file does not say: leaves the hash of a file without them as it was
    logging: service.logging,
    extraHosts: service.extraHosts,
    init: service.init,
    capAdd: service.capAdd,
    capDrop: service.capDrop,
  };
}

/** JSON with object keys sorted at every level: the same configuration, however the file orders it, hashes the same. */
function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** A short hash of a replica's configuration: a change replaces the replicas even on the same image. */
export function specHash(spec: Spec, service: ServiceSpec, image: ImageDetails | undefined): string {
  return createHash("sha256").update(stableStringify(runtimeConfig(spec, service, image))).digest("hex").slice(0, 16);
}

export function containerRequest(
  spec: Spec,
  service: ServiceSpec,
  image: ImageDetails,
  revision: number,
  slot: number,
  hash: string,
): ContainerCreateRequest {
  const c = runtimeConfig(spec, service, image);
  return {
    name: containerName(spec.project, service.name, revision, slot),
    image: image.id,
    ...(c.cmd === undefined ? {} : { cmd: c.cmd }),
    ...(c.entrypoint === undefined ? {} : { entrypoint: c.entrypoint }),
    env: c.env,
    labels: {
      ...c.labels,
      [LABEL_PROJECT]: spec.project,
      [LABEL_SERVICE]: service.name,
      [LABEL_REVISION]: String(revision),
      [LABEL_SLOT]: String(slot),
      [LABEL_SPEC_HASH]: hash,
    },
    ...(c.user === undefined ? {} : { user: c.user }),
    ...(c.workingDir === undefined ? {} : { workingDir: c.workingDir }),
    ...(c.stopSignal === undefined ? {} : { stopSignal: c.stopSignal }),
    stopTimeoutSeconds: c.stopTimeoutSeconds,
    ...(c.healthcheck === undefined ? {} : { healthcheck: c.healthcheck }),
    exposedPorts: c.exposedPorts,
    mounts: c.mounts,
    tmpfs: c.tmpfs,
    readOnly: c.readOnly,
    restart: c.restart,
    network: { name: networkName(spec.project), aliases: [service.name] },
    ...(c.nanoCpus === undefined ? {} : { nanoCpus: c.nanoCpus }),
    ...(c.memoryBytes === undefined ? {} : { memoryBytes: c.memoryBytes }),
    ...(c.logging === undefined ? {} : { logging: c.logging }),
    ...(c.extraHosts === undefined ? {} : { extraHosts: c.extraHosts }),
    ...(c.init === undefined ? {} : { init: c.init }),
    ...(c.capAdd === undefined ? {} : { capAdd: c.capAdd }),
    ...(c.capDrop === undefined ? {} : { capDrop: c.capDrop }),
  };
}
