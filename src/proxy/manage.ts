import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { RerollError, isRerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import { LABEL_PROJECT, LABEL_PROXY_FOR, LABEL_SERVICE } from "../core/labels.js";
import type { PortSpec, ServiceSpec, Spec } from "../core/spec/types.js";
import type { ContainerSummary, Engine } from "../engine/port.js";
import { networkName, orphanOf } from "../rollout/container-spec.js";
import { Door, readHold, readTargets, type DrainResult, type TargetAddress, type TargetReport } from "./door.js";
import { CERTS_DIR, CONFIG_DIR, CONFIG_FILE, DOOR_LISTEN_PORT, renderDoorConfig, serverArguments, type DoorSettings } from "./haproxy-config.js";
import { RuntimeSession } from "./runtime.js";
import { CERTIFICATE_FILE, certificateVolume, portTls, readCertificate, servesTls, type Certificate } from "./tls.js";

/**
 * The doors: one HAProxy container per published port of a service, named
 * `<project>-<service>-proxy-<port>`, on the project network. Docker fixes a container's
 * published ports when it is made, so a door per port lets a port be added, changed or removed
 * without touching the service's other ports: a new door publishes its port before an old
 * one is given up.
 */

export { LABEL_PROXY_FOR };
/** a hash of what a door was created with (image, network, published address): a change makes it anew */
export const LABEL_PROXY_SIGNATURE = "dev.reroll.proxy-signature";
/** the published port a door carries, as the Compose file says it */
export const LABEL_PROXY_PORT = "dev.reroll.proxy-port";
/** the image reference a door was made from, as the Compose file names it */
export const LABEL_PROXY_IMAGE = "dev.reroll.proxy-image";
/** SIGUSR1 (HAProxy's graceful stop) lets in-flight requests finish for this long */
export const PROXY_STOP_GRACE_SECONDS = 10;
/** a replica still `starting` in Docker's eyes is routed by a sync once its probe answers, within this */
const SYNC_PROBE_MS = 15_000;

export function proxied(service: ServiceSpec): boolean {
  return service.ports.length > 0;
}

export function publicAddress(hostIp: string, hostPort: number | string | undefined): string {
  const ip = hostIp === "" ? "0.0.0.0" : hostIp;
  return `${ip.includes(":") ? `[${ip}]` : ip}:${hostPort === undefined || hostPort === "" ? "(any)" : hostPort}`;
}

/** `8080`, `127.0.0.1-8080`, or `any-80` for a host port Docker picks (keyed by the target port) */
function doorKey(port: PortSpec): string {
  const host = port.published === undefined ? `any-${port.target}` : String(port.published);
  return port.hostIp === "" || port.hostIp === "0.0.0.0" ? host : `${port.hostIp.replace(/[^0-9a-zA-Z.]/g, "_")}-${host}`;
}

export function proxyContainerName(project: string, service: string, port: PortSpec): string {
  return `${project}-${service}-proxy-${doorKey(port)}`;
}

function tcpPorts(service: ServiceSpec): readonly PortSpec[] {
  const udp = service.ports.filter((p) => p.protocol === "udp");
  if (udp.length > 0) {
    throw new RerollError("E_SPEC_INVALID", `${service.name} publishes UDP ports, which reroll's door (HAProxy) cannot carry.`, {
      problems: udp.map((p) => `services.${service.name}.ports: ${p.target}/udp`),
      hint: "Publish only TCP ports, or run that service outside reroll.",
    });
  }
  return service.ports;
}

export function doorSettings(spec: Spec, service: ServiceSpec, port: PortSpec, certificate: Certificate | undefined): DoorSettings {
  return {
    ...portTls(service, port, certificate),
    project: spec.project,
    service: service.name,
    mode: service.proxy.mode,
    targetPort: port.target,
    healthPath: service.proxy.healthcheckPath,
    probeIntervalMs: service.proxy.healthcheckIntervalMs,
    probeTimeoutMs: service.proxy.healthcheckTimeoutMs,
    drainTimeoutMs: service.proxy.drainTimeoutMs,
    trustedProxies: service.proxy.trustedProxies,
    threads: service.proxy.threads,
  };
}

/** What a door is made with and cannot change while it runs: its image, network, published address and mounts (a certificate volume when it serves TLS). */
function doorSignature(spec: Spec, service: ServiceSpec, port: PortSpec, imageId: string): string {
  const tls = servesTls(service, port);
  return createHash("sha256")
    .update(JSON.stringify({ image: imageId, network: networkName(spec.project), hostIp: port.hostIp, published: port.published ?? null, target: port.published === undefined ? port.target : null, ...(tls ? { tls } : {}) }))
    .digest("hex")
    .slice(0, 16);
}

/**
 * Whether a door's configuration file needs a reload for these settings: it differs other than
 * in which servers it names, or a server line was written with other arguments (by an older
 * reroll: its servers run as that one added them). Read back, the file has no final newline.
 */
export function needsReload(current: string, settings: DoorSettings): boolean {
  const isServer = (l: string): boolean => l.startsWith("  server ");
  const staticPart = (config: string): string =>
    config
      .split("\n")
      .filter((l) => !isServer(l))
      .join("\n")
      .trimEnd();
  return staticPart(current) !== staticPart(renderDoorConfig(settings, [])) || current.split("\n").filter(isServer).some((l) => !serverLineIsCurrent(l, settings));
}

/** A server line as this reroll writes it: the replica by its short id, which the door resolves, with these settings. */
function serverLineIsCurrent(line: string, settings: DoorSettings): boolean {
  const parts = /^ {2}server (\S+) (\S+):\d+ .* weight (\d+)( |$)/.exec(line);
  return parts !== null && isIP(parts[2]!) === 0 && line === `  server ${parts[1]} ${serverArguments(settings, parts[2]!, Number(parts[3]))}`;
}

/** The doors of a service as Docker lists them. */
async function doorsOf(engine: Engine, project: string, service?: string): Promise<readonly ContainerSummary[]> {
  return engine.listContainers([`${LABEL_PROJECT}=${project}`, service === undefined ? LABEL_PROXY_FOR : `${LABEL_PROXY_FOR}=${service}`]);
}

/** Every proxied service's door image is on the daemon and its certificate is sound: checked before any door changes, so a bad one changes nothing. */
export async function checkDoorInputs(engine: Engine, services: readonly ServiceSpec[]): Promise<void> {
  for (const service of services) {
    if (!proxied(service)) continue;
    await doorImage(engine, service);
    await readCertificate(service);
  }
}

async function doorImage(engine: Engine, service: ServiceSpec): Promise<string> {
  const image = await engine.inspectImage(service.proxy.image);
  if (image === undefined) {
    throw new RerollError("E_PROXY_IMAGE_MISSING", `The door's image ${service.proxy.image} is not on this Docker daemon.`, {
      kind: "input",
      hint: `Pull it first (docker pull ${service.proxy.image}), or name another HAProxy image in services.${service.name}.x-reroll.proxy.image.`,
    });
  }
  return image.id;
}

/** Who holds a host port: a container publishing it, or a process of the host. */
async function portHolder(engine: Engine, hostPort: number): Promise<{ text: string; holder?: ContainerSummary }> {
  const containers = await engine.listContainers();
  const holder = containers.find((c) => (c.published ?? []).some((p) => p.hostPort === hostPort));
  return holder === undefined ? { text: "a process on this host (not a container)" } : { text: `the container ${holder.names[0] ?? holder.id}`, holder };
}

/** The error for a port Docker could not publish, naming who holds it and what to do. */
async function portInUse(engine: Engine, spec: Spec, service: ServiceSpec, port: PortSpec, message: string, serving: boolean): Promise<RerollError> {
  const holder = port.published === undefined ? { text: "unknown" } : await portHolder(engine, port.published);
  const address = publicAddress(port.hostIp, port.published);
  const services = new Set(spec.services.map((s) => s.name));
  const h = holder.holder;
  const orphan = h !== undefined && h.labels[LABEL_PROJECT] === spec.project ? orphanOf(h, services) : undefined;
  const composeProject = h?.labels["com.docker.compose.project"];
  return new RerollError("E_PORT_IN_USE", `${service.name}'s port ${address} cannot be published: ${message.replace(/^.*?(Bind for|listen tcp|driver failed)/, "$1")}`, {
    // nothing changed when the service had no door; otherwise its doors keep serving as they were
    kind: serving ? "failed" : "input",
    problems: [`${address} is held by ${holder.text}`],
    hint:
      orphan !== undefined
        ? `${h!.names[0] ?? h!.id} is the door of ${orphan}, which the Compose file no longer has: reroll up --remove-orphans removes it and frees the port.`
        : composeProject !== undefined
          ? `${h!.names[0] ?? h!.id} was started by docker compose (project ${composeProject}). To hand the service to reroll, take Compose's containers down first (docker compose -p ${composeProject} down; its named volumes stay), then run reroll up (the service does not answer in between). Or change services.${service.name}.ports in ${spec.file}.`
          : `Free the port, or change services.${service.name}.ports in ${spec.file}.${serving ? " The service's other doors serve as before." : ""}`,
  });
}

/** Creates and starts a door with its configuration in place; a port Docker cannot publish removes it again. */
async function createDoor(engine: Engine, spec: Spec, service: ServiceSpec, port: PortSpec, imageId: string, certificate: Certificate | undefined, serving: boolean): Promise<void> {
  const name = proxyContainerName(spec.project, service.name, port);
  const settings = doorSettings(spec, service, port, certificate);
  const labels = { [LABEL_PROJECT]: spec.project, [LABEL_PROXY_FOR]: service.name };
  if (settings.tls !== undefined) await engine.ensureVolume(certificateVolume(name), labels);
  const result = await engine.createContainer({
    name,
    image: service.proxy.image,
    labels: { [LABEL_PROJECT]: spec.project, [LABEL_PROXY_FOR]: service.name, [LABEL_PROXY_PORT]: publicAddress(port.hostIp, port.published), [LABEL_PROXY_IMAGE]: service.proxy.image, [LABEL_PROXY_SIGNATURE]: doorSignature(spec, service, port, imageId) },
    stopSignal: "SIGUSR1",
    stopTimeoutSeconds: PROXY_STOP_GRACE_SECONDS,
    exposedPorts: [`${DOOR_LISTEN_PORT}/tcp`],
    portBindings: [{ containerPort: `${DOOR_LISTEN_PORT}/tcp`, hostIp: port.hostIp, hostPort: port.published === undefined ? "" : String(port.published) }],
    restart: { name: "unless-stopped" },
    network: { name: networkName(spec.project), aliases: [] },
    ...(settings.tls === undefined ? {} : { mounts: [{ type: "volume" as const, source: certificateVolume(name), target: CERTS_DIR, readOnly: false }] }),
  });
  if ("conflict" in result) throw new RerollError("E_NAME_TAKEN", `The container name ${name} was taken while reroll created it.`, { kind: "failed", hint: "Run the command again." });
  try {
    if (settings.tls !== undefined) await writeCertificate(engine, result.id, certificate!);
    await Door.writeFiles(engine, result.id, Door.initialFiles(settings, []));
    await engine.startContainer(result.id);
  } catch (error) {
    await discardDoor(engine, name);
    const message = error instanceof Error ? error.message : String(error);
    if (/port is already allocated|address already in use|bind: /i.test(message)) throw await portInUse(engine, spec, service, port, message, serving);
    throw error;
  }
}

/** A door made in this call that is not kept (a port that could not be published): its container and certificate volume go. */
async function discardDoor(engine: Engine, name: string): Promise<void> {
  await engine.removeContainer(name, { force: true });
  await engine.removeVolume(certificateVolume(name));
}

function writeCertificate(engine: Engine, container: string, certificate: Certificate): Promise<void> {
  return Door.writeFiles(engine, container, [{ name: CERTIFICATE_FILE, text: certificate.pem, secret: true }], CERTS_DIR);
}

async function removeDoor(engine: Engine, door: { readonly id: string; readonly name: string }, service: string, cause: string, emit: EventSink): Promise<void> {
  await engine.stopContainer(door.id, PROXY_STOP_GRACE_SECONDS);
  await engine.removeContainer(door.id, { force: true });
  await engine.removeVolume(certificateVolume(door.name));
  emit({ type: "proxy-removed", service, name: door.name, cause });
}

/** What ensureServiceProxy would do to the service's doors, read from Docker alone (for --dry-run): undefined when nothing changes. */
export async function plannedProxyChange(engine: Engine, spec: Spec, service: ServiceSpec): Promise<string | undefined> {
  const existing = await doorsOf(engine, spec.project, service.name);
  if (!proxied(service)) return existing.length > 0 ? `remove  ${existing.map((c) => c.names[0]).join(", ")} once the rollout completes: ${service.name} publishes no port any more` : undefined;
  const [image, certificate] = await Promise.all([engine.inspectImage(service.proxy.image), readCertificate(service)]);
  const changes: string[] = [];
  const wanted = new Set<string>();
  for (const port of service.ports) {
    const name = proxyContainerName(spec.project, service.name, port);
    wanted.add(name);
    const door = existing.find((c) => c.names[0] === name);
    const address = publicAddress(port.hostIp, port.published);
    if (door === undefined) changes.push(`create  ${name}, publishing ${address}${image === undefined ? ` (its image ${service.proxy.image} is missing: pull it first)` : ""}`);
    else if (image !== undefined && door.labels[LABEL_PROXY_SIGNATURE] !== doorSignature(spec, service, port, image.id)) changes.push(`recreate ${name} (its image, network or TLS changed): ${address} pauses for about a second`);
    else if (door.state !== "running") changes.push(`start   ${name}: it is ${door.state}`);
    else if (await configurationDiffers(engine, door.id, doorSettings(spec, service, port, certificate))) changes.push(`reload  ${name}: its configuration changed (a seamless reload: no request fails)`);
  }
  for (const door of existing) if (!wanted.has(door.names[0] ?? "")) changes.push(`remove  ${door.names[0]} (${door.labels[LABEL_PROXY_PORT] ?? "a port"} is no longer published), after the new doors serve`);
  return changes.length === 0 ? undefined : changes.join("; ");
}

/** Whether a running door's configuration file differs from what these settings make (servers aside): read through its runtime session. */
async function configurationDiffers(engine: Engine, container: string, settings: DoorSettings): Promise<boolean> {
  const session = await RuntimeSession.open(engine, container, 3_000).catch(() => undefined);
  if (session === undefined) return false;
  try {
    return needsReload(await session.readFile(`${CONFIG_DIR}/${CONFIG_FILE}`), settings);
  } finally {
    session.close();
  }
}

/** A service's doors together: a replica is routed, drained or removed in every one. */
export class ServiceDoors {
  constructor(readonly doors: readonly Door[]) {}

  async status(): Promise<TargetReport[]> {
    return this.doors.length === 0 ? [] : this.doors[0]!.status();
  }

  async add(target: TargetAddress, probe: boolean): Promise<{ probes: number; ms: number }> {
    const results = await Promise.all(this.doors.map((d) => d.add(target, probe)));
    return { probes: Math.max(0, ...results.map((r) => r.probes)), ms: Math.max(0, ...results.map((r) => r.ms)) };
  }

  async drain(id: string, timeoutMs?: number): Promise<DrainResult> {
    const results = await Promise.all(this.doors.map((d) => d.drain(id, timeoutMs)));
    const olderWorkers = results.reduce((n, r) => n + (r.olderWorkers ?? 0), 0);
    return {
      routed: results.some((r) => r.routed),
      drained: results.every((r) => r.drained),
      outstanding: results.reduce((n, r) => n + r.outstanding, 0),
      ms: Math.max(0, ...results.map((r) => r.ms)),
      ...(olderWorkers > 0 ? { olderWorkers } : {}),
    };
  }

  /** Holds new requests at every door (at most `ms`), until the returned release. */
  async hold(ms: number): Promise<() => Promise<void>> {
    await Promise.all(this.doors.map((d) => d.hold(ms)));
    return () => this.release();
  }

  async release(): Promise<void> {
    await Promise.all(this.doors.map((d) => d.release()));
  }

  async allowVerify(token: string): Promise<() => Promise<void>> {
    const removals = await Promise.all(this.doors.map((d) => d.allowVerify(token)));
    return async () => void (await Promise.all(removals.map((r) => r())));
  }

  /** Reloads the doors that kept servers they could not remove at run time. */
  async settle(): Promise<void> {
    await Promise.all(this.doors.map((d) => d.settle()));
  }

  close(): void {
    for (const d of this.doors) d.close();
  }
}

export interface ServiceProxy {
  /** the first door's name */
  readonly name: string;
  readonly control: ServiceDoors;
  /** where clients reach it on the host, with the port Docker chose when the file left it open */
  readonly published: readonly { readonly hostIp: string; readonly hostPort: number }[];
  /** whether a door was made or removed: the project is no longer as it was */
  readonly changed: boolean;
}

/** What a door's log said last about why it failed (its log goes with it when it is made anew). */
async function lastWords(engine: Engine, name: string): Promise<string> {
  const details = await engine.inspectContainer(name);
  const lines = await engine.containerLogs(name, 20).catch(() => []);
  const said = [...lines].reverse().find((l) => /alert|error|fatal|\[ALERT\]/i.test(l)) ?? lines.at(-1);
  const state = details === undefined ? "" : ` (exit code ${details.exitCode}, restarted ${details.restartCount} times by Docker)`;
  return `${state}${said === undefined ? "" : `; its log said: ${said}`}`;
}

/** Starts a door found stopped (`docker kill`, a host reboot without restart): the next command that needs it does. */
function startIfStopped(engine: Engine, name: string, service: string, emit: EventSink): () => Promise<void> {
  return async () => {
    const details = await engine.inspectContainer(name);
    if (details === undefined || details.running || details.state === "restarting") return;
    emit({ type: "warning", service, message: `${name} was ${details.state} (exit code ${details.exitCode}); started again` });
    await engine.startContainer(details.id);
  };
}

/**
 * Makes sure each published port of the service has its door, running, with the current
 * configuration, routing to exactly the replicas that serve now. New doors are made before
 * doors of ports no longer published are removed; a door whose configuration changed reloads
 * seamlessly. Docker is the truth for what serves: a run killed between starting a replica and
 * routing it, or a replica Docker restarted, leaves routes that do not match what runs.
 */
export async function ensureServiceProxy(engine: Engine, spec: Spec, service: ServiceSpec, emit: EventSink): Promise<ServiceProxy> {
  const ports = tcpPorts(service);
  const imageId = await doorImage(engine, service);
  const certificate = await readCertificate(service);
  const existing = await doorsOf(engine, spec.project, service.name);
  const doorsServe = existing.some((c) => c.state === "running");
  // what Docker says serves now, read once for all the service's doors
  const serving = await servingReplicas(engine, spec.project, service.name);
  const made: string[] = [];
  const doors: Door[] = [];
  try {
    for (const port of ports) {
      const name = proxyContainerName(spec.project, service.name, port);
      const found = existing.find((c) => c.names[0] === name);
      const settings = doorSettings(spec, service, port, certificate);
      const current = found !== undefined && found.labels[LABEL_PROXY_SIGNATURE] === doorSignature(spec, service, port, imageId) && found.state !== "restarting";
      const remake = async (why: "kept exiting" | "changed"): Promise<void> => {
        if (why === "kept exiting") emit({ type: "warning", service: service.name, message: `${name} is recreated: it keeps exiting${await lastWords(engine, name)}` });
        await removeDoor(engine, { id: found!.id, name }, service.name, why === "kept exiting" ? "kept exiting" : "made anew: its image or network changed", emit);
        await createDoor(engine, spec, service, port, imageId, certificate, doorsServe);
        made.push(name);
      };
      if (!current && found !== undefined) await remake(found.state === "restarting" ? "kept exiting" : "changed");
      else if (!current) {
        await createDoor(engine, spec, service, port, imageId, certificate, doorsServe);
        made.push(name);
      } else await startIfStopped(engine, name, service.name, emit)();
      let door: Door;
      try {
        door = await Door.open(engine, name, settings, startIfStopped(engine, name, service.name, emit));
      } catch (error) {
        // found running between two of Docker's restarts of a door that keeps exiting: made anew, once
        if (made.includes(name) || !isRerollError(error) || error.code !== "E_PROXY_UNREACHABLE") throw error;
        await remake("kept exiting");
        door = await Door.open(engine, name, settings, startIfStopped(engine, name, service.name, emit));
      }
      doors.push(door);
      if (current && needsReload(await door.currentConfig(), settings)) {
        // a new certificate is in place before the configuration that names it is loaded
        if (settings.tls !== undefined) await writeCertificate(engine, name, certificate!);
        await door.reconfigure(settings);
      }
      await syncRoutes(door, service, serving);
    }
  } catch (error) {
    for (const d of doors) d.close();
    // a port that could not be published leaves the service as it was: the doors made now go
    for (const name of made) await discardDoor(engine, name).catch(() => undefined);
    throw error;
  }
  const wanted = new Set(ports.map((p) => proxyContainerName(spec.project, service.name, p)));
  let removed = false;
  for (const old of existing) {
    const name = old.names[0] ?? old.id;
    if (wanted.has(name)) continue;
    await removeDoor(engine, { id: old.id, name }, service.name, `${old.labels[LABEL_PROXY_PORT] ?? "its port"} is no longer published`, emit);
    removed = true;
  }
  const published: { hostIp: string; hostPort: number }[] = [];
  for (const door of doors) {
    const details = await engine.inspectContainer(door.container);
    const ports = (details?.ports ?? []).map((p) => ({ hostIp: p.hostIp, hostPort: Number(p.hostPort) }));
    published.push(...ports);
    emit({ type: "proxy-ready", service: service.name, name: door.container, published: ports.map((p) => publicAddress(p.hostIp, p.hostPort)), created: made.includes(door.container) });
  }
  return { name: doors[0]?.container ?? "", control: new ServiceDoors(doors), published, changed: made.length > 0 || removed };
}

/** The doors of a project, with their service. */
export async function listProxies(engine: Engine, project: string): Promise<{ id: string; name: string; service: string; running: boolean }[]> {
  return (await doorsOf(engine, project)).map((c) => ({ id: c.id, name: c.names[0] ?? c.id, service: c.labels[LABEL_PROXY_FOR] ?? "", running: c.state === "running" }));
}

/** Stops (gracefully) and removes every door of a service; false when it had none. */
export async function removeServiceProxy(engine: Engine, project: string, service: string, cause: string, emit: EventSink): Promise<boolean> {
  const doors = await doorsOf(engine, project, service);
  for (const door of doors) await removeDoor(engine, { id: door.id, name: door.names[0] ?? door.id }, service, cause, emit);
  return doors.length > 0;
}

/**
 * The replicas of a service that may take traffic now: running and not unhealthy. `healthy`
 * is false for one whose Docker healthcheck has not reported yet (`starting`).
 */
async function servingReplicas(engine: Engine, project: string, service: string): Promise<(TargetAddress & { healthy: boolean })[]> {
  const containers = (await engine.listContainers([`${LABEL_PROJECT}=${project}`, `${LABEL_SERVICE}=${service}`])).filter((c) => c.state === "running" && c.health !== "unhealthy");
  const found = await Promise.all(
    containers.map(async (c) => {
      const details = await engine.inspectContainer(c.id);
      const host = details?.networks[networkName(project)];
      return host === undefined || host === "" ? [] : [{ id: details!.id, name: details!.names[0]!, host, healthy: c.health !== "starting" }];
    }),
  );
  return found.flat();
}

/**
 * Routes a door to exactly the serving replicas: healthy ones and ones it routes already at
 * once; others still `starting` once the door's probe of the health path answers (bounded),
 * when there is a path. A routed replica stays routed while Docker's first check is pending.
 */
async function syncRoutes(door: Door, service: ServiceSpec, serving: readonly (TargetAddress & { healthy: boolean })[]): Promise<void> {
  const routed = new Set((await door.status()).filter((t) => t.state === "ready" || t.state === "down").map((t) => t.id));
  const admitted = serving.filter((t) => t.healthy || routed.has(t.id.slice(0, 12)));
  await door.sync(admitted.map(({ healthy: _healthy, ...target }) => target));
  if (service.proxy.healthcheckPath === undefined) return;
  await Promise.all(
    serving
      .filter((t) => !admitted.includes(t))
      .map(async ({ healthy: _healthy, ...target }) => {
        const timer = setTimeout(() => void door.remove(target.id).catch(() => undefined), SYNC_PROBE_MS);
        try {
          await door.add(target, true).catch(() => undefined);
        } finally {
          clearTimeout(timer);
        }
      }),
  );
}

export interface ProxyStatus {
  readonly service: string;
  readonly name: string;
  readonly running: boolean;
  /** Docker's state of the door container (running, exited, restarting…) */
  readonly state: string;
  readonly image: string;
  readonly published: readonly string[];
  readonly targets: readonly TargetReport[];
  /** while the door holds new requests: the hold's bound, in ms from when it began */
  readonly holdMs?: number;
  /** why the targets could not be read */
  readonly error?: string;
}

/** Each door of the project (optionally only these services): where it listens and what HAProxy routes to. */
export async function proxyStatuses(engine: Engine, project: string, services: readonly string[] = []): Promise<ProxyStatus[]> {
  const containers = await doorsOf(engine, project);
  return Promise.all(
    containers
      .filter((c) => services.length === 0 || services.includes(c.labels[LABEL_PROXY_FOR] ?? ""))
      .map(async (c): Promise<ProxyStatus> => {
        const base = {
          service: c.labels[LABEL_PROXY_FOR] ?? "",
          name: c.names[0] ?? c.id,
          running: c.state === "running",
          state: c.state,
          image: c.labels[LABEL_PROXY_IMAGE] ?? c.imageId,
          published: (c.published ?? []).map((p) => publicAddress(p.hostIp, p.hostPort)),
        };
        if (c.state !== "running") return { ...base, published: [c.labels[LABEL_PROXY_PORT] ?? ""], targets: [], error: `the door is ${c.state}: its port is closed until reroll up or reroll proxy up starts it` };
        try {
          const session = await RuntimeSession.open(engine, c.id, 3_000);
          try {
            const run = (command: string): Promise<string> => session.command(command);
            const [targets, holdMs] = await Promise.all([readTargets(run), readHold(run)]);
            return { ...base, targets, ...(holdMs === undefined ? {} : { holdMs }) };
          } finally {
            session.close();
          }
        } catch (error) {
          return { ...base, targets: [], error: error instanceof Error ? error.message : String(error) };
        }
      }),
  );
}
