import { createHash } from "node:crypto";
import { RerollError, isRerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import { LABEL_PROJECT, LABEL_PROXY_FOR, LABEL_SERVICE } from "../core/labels.js";
import type { ServiceSpec, Spec } from "../core/spec/types.js";
import type { ContainerDetails, ContainerSummary, Engine } from "../engine/port.js";
import { networkName, orphanOf } from "../rollout/container-spec.js";
import { ProxyControl } from "./control-client.js";
import { currentProxyImage, ensureProxyImage, pruneProxyImages } from "./image.js";
import { CONFIG_ENV, CONTROL_SOCKET, type ProxyConfig, type ProxyListener, type ProxySettingsMessage, type TargetAddress, type TargetReport } from "./protocol.js";

/**
 * The reroll-proxy containers: one per service with published ports, named
 * `<project>-<service>-proxy`. Each publishes that service's ports (keeping their host
 * address) and nothing else, so adding, changing or removing one service's ports recreates
 * only that service's proxy: no other service's traffic is touched.
 */

export { LABEL_PROXY_FOR };
/** a hash of what a proxy container was created with (ports, image): a change recreates it */
export const LABEL_PROXY_SIGNATURE = "dev.reroll.proxy-signature";
/** listeners inside the proxy container start here, one per published port */
export const PROXY_FIRST_PORT = 10_000;
/** SIGTERM → the proxy stops accepting and finishes what is in flight for up to this long */
export const PROXY_STOP_GRACE_SECONDS = 10;

export function proxyContainerName(project: string, service: string): string {
  return `${project}-${service}-proxy`;
}

export function proxied(service: ServiceSpec): boolean {
  return service.ports.length > 0;
}

export function publicAddress(hostIp: string, hostPort: number | string | undefined): string {
  const ip = hostIp === "" ? "0.0.0.0" : hostIp;
  return `${ip.includes(":") ? `[${ip}]` : ip}:${hostPort === undefined || hostPort === "" ? "(any)" : hostPort}`;
}

export function proxyConfig(spec: Spec, service: ServiceSpec): ProxyConfig {
  const udp = service.ports.filter((p) => p.protocol === "udp");
  if (udp.length > 0) {
    throw new RerollError("E_SPEC_INVALID", `${service.name} publishes UDP ports, which reroll-proxy cannot carry.`, {
      problems: udp.map((p) => `services.${service.name}.ports: ${p.target}/udp`),
      hint: "Publish only TCP ports, or run that service outside reroll.",
    });
  }
  const listeners: ProxyListener[] = service.ports.map((p, i) => ({
    port: PROXY_FIRST_PORT + i,
    targetPort: p.target,
    mode: service.proxy.mode,
    published: publicAddress(p.hostIp, p.published),
  }));
  return { project: spec.project, service: service.name, listeners };
}

export function proxySettings(service: ServiceSpec): ProxySettingsMessage {
  return {
    healthcheck:
      service.proxy.healthcheckPath === undefined
        ? undefined
        : { path: service.proxy.healthcheckPath, intervalMs: service.proxy.healthcheckIntervalMs, timeoutMs: service.proxy.healthcheckTimeoutMs },
    drainTimeoutMs: service.proxy.drainTimeoutMs,
  };
}

export interface ServiceProxy {
  readonly name: string;
  readonly control: ProxyControl;
  /** where clients reach it on the host, with the port Docker chose when the file left it open */
  readonly published: readonly { readonly hostIp: string; readonly hostPort: number }[];
}

/** Who holds a host port: a container publishing it, or a process of the host. */
async function portHolder(engine: Engine, hostPort: number): Promise<{ text: string; holder?: ContainerSummary }> {
  const containers = await engine.listContainers();
  const holder = containers.find((c) => (c.published ?? []).some((p) => p.hostPort === hostPort));
  return holder === undefined ? { text: "a process on this host (not a container)" } : { text: `the container ${holder.names[0] ?? holder.id}`, holder };
}

/** What a proxy container is made from: one that carries another signature is made again. */
function proxySignature(spec: Spec, service: ServiceSpec, image: string): string {
  return createHash("sha256")
    .update(JSON.stringify({ listeners: service.ports, mode: service.proxy.mode, image, network: networkName(spec.project) }))
    .digest("hex")
    .slice(0, 16);
}

/**
 * What ensureServiceProxy would do to the service's proxy, read from Docker alone (for
 * --dry-run): undefined when the running proxy is kept as it is.
 */
export async function plannedProxyChange(engine: Engine, spec: Spec, service: ServiceSpec): Promise<string | undefined> {
  const name = proxyContainerName(spec.project, service.name);
  const ports = service.ports.map((p) => `${p.hostIp === "" ? "" : `${p.hostIp}:`}${p.published ?? "(a port Docker picks)"}`).join(", ");
  const isProxied = proxied(service);
  // the proxy image is looked for (~25 ms: a hash of the package) only for a proxied service
  const [existing, image] = await Promise.all([engine.inspectContainer(name), isProxied ? currentProxyImage(engine) : undefined]);
  const ours = existing !== undefined && existing.labels[LABEL_PROJECT] === spec.project && existing.labels[LABEL_PROXY_FOR] === service.name;
  if (!isProxied) return ours ? `remove  ${name} once the rollout completes: ${service.name} publishes no port any more` : undefined;
  if (existing === undefined) return `create  ${name}, publishing ${ports}`;
  if (!ours) return `cannot create ${name}: a container reroll did not make has that name`;
  if (existing.state === "restarting") return `recreate ${name}, publishing ${ports}: it keeps exiting (exit code ${existing.exitCode}, restarted ${existing.restartCount} times)`;
  if (!existing.running) return `recreate ${name}, publishing ${ports}: it is not running`;
  // no current image means one is built first, and a proxy on the old one is made again
  if (image !== undefined && existing.labels[LABEL_PROXY_SIGNATURE] === proxySignature(spec, service, image)) return undefined;
  return `recreate ${name}, publishing ${ports}: its ports or image changed; ${service.name}'s traffic pauses for about a second`;
}

/**
 * Makes sure the service's proxy runs with the right ports and image, and routes to exactly
 * the replicas that serve now (servingReplicas): Docker is the truth, since a run killed
 * between starting a replica and routing it, or a replica Docker restarted, leaves routes
 * that do not match what runs.
 */
export async function ensureServiceProxy(engine: Engine, spec: Spec, service: ServiceSpec, emit: EventSink): Promise<ServiceProxy> {
  const config = proxyConfig(spec, service);
  const settings = proxySettings(service);
  const image = await ensureProxyImage(engine, emit);
  const name = proxyContainerName(spec.project, service.name);
  const signature = proxySignature(spec, service, image);
  const existing = await engine.inspectContainer(name);
  // Docker keeps a container it is restarting "running": one that keeps exiting is made anew
  const restarting = existing?.state === "restarting";
  let created = !(existing !== undefined && existing.labels[LABEL_PROXY_SIGNATURE] === signature && existing.running && !restarting);
  /** Removes the proxy container there is (when any) and starts a new one. */
  const replace = async (old: ContainerDetails | undefined, why: "changed" | "kept exiting" | "did not answer"): Promise<void> => {
    if (old !== undefined) {
      if (old.labels[LABEL_PROJECT] !== spec.project || old.labels[LABEL_PROXY_FOR] !== service.name) {
        throw new RerollError("E_NAME_TAKEN", `The container name ${name} is taken by a container reroll did not make.`, {
          hint: `Rename or remove that container (docker rm -f ${name}), or use another project name (-p).`,
        });
      }
      if (why !== "changed") {
        // its log goes with it: the line that says why is kept in the warning
        const lines = await engine.containerLogs(old.id, 20).catch(() => []);
        const said = [...lines].reverse().find((l) => /error/i.test(l)) ?? lines.at(-1);
        const what = why === "kept exiting" ? `it keeps exiting (exit code ${old.exitCode}, restarted ${old.restartCount} times by Docker)` : "it did not answer on its control socket";
        emit({ type: "warning", service: service.name, message: `${name} is recreated: ${what}${said === undefined ? "" : `; its log said: ${said}`}` });
      } else if (old.running) {
        emit({ type: "warning", service: service.name, message: `${name} is recreated (its ports or image changed): ${service.name}'s traffic pauses for about a second` });
      }
      await engine.removeContainer(old.id, { force: true });
      emit({ type: "proxy-removed", service: service.name, name, cause: why !== "changed" ? why : old.running ? "recreated with new ports or image" : "not running" });
      // the image it ran may be an older reroll's, now unused
      if (old.imageId !== image) await pruneProxyImages(engine, image);
    }
    const result = await engine.createContainer({
      name,
      image,
      cmd: ["proxy", "run", "--control", CONTROL_SOCKET],
      env: { [CONFIG_ENV]: JSON.stringify(config), REROLL_PROXY_SETTINGS: JSON.stringify(settings) },
      labels: { [LABEL_PROJECT]: spec.project, [LABEL_PROXY_FOR]: service.name, [LABEL_PROXY_SIGNATURE]: signature },
      stopTimeoutSeconds: PROXY_STOP_GRACE_SECONDS,
      exposedPorts: config.listeners.map((l) => `${l.port}/tcp`),
      portBindings: service.ports.map((p, i) => ({ containerPort: `${PROXY_FIRST_PORT + i}/tcp`, hostIp: p.hostIp, hostPort: p.published === undefined ? "" : String(p.published) })),
      restart: { name: "unless-stopped" },
      network: { name: networkName(spec.project), aliases: [] },
    });
    if ("conflict" in result) throw new RerollError("E_NAME_TAKEN", `The container name ${name} was taken while reroll created it.`, { kind: "failed", hint: "Run the command again." });
    try {
      await engine.startContainer(result.id);
    } catch (error) {
      await engine.removeContainer(result.id, { force: true });
      const message = error instanceof Error ? error.message : String(error);
      const busy = /port is already allocated|address already in use|bind: /i.test(message);
      if (busy) {
        const holders = await Promise.all(
          service.ports.filter((p) => p.published !== undefined).map(async (p) => ({ address: publicAddress(p.hostIp, p.published), ...(await portHolder(engine, p.published!)) })),
        );
        // a renamed service: its old proxy, an orphan of this project, still holds the port
        const services = new Set(spec.services.map((s) => s.name));
        const orphan = holders.find((h) => h.holder !== undefined && h.holder.labels[LABEL_PROJECT] === spec.project && orphanOf(h.holder, services) !== undefined);
        // moving from `docker compose up` to reroll: Compose's own container has the port
        const compose = holders.find((h) => h.holder?.labels["com.docker.compose.project"] !== undefined)?.holder;
        const composeProject = compose?.labels["com.docker.compose.project"];
        throw new RerollError("E_PORT_IN_USE", `${service.name}'s port cannot be published: ${message.replace(/^.*?(Bind for|listen tcp|driver failed)/, "$1")}`, {
          kind: "input",
          problems: holders.map((h) => `${h.address} may be held by ${h.text}`),
          hint:
            orphan !== undefined
              ? `${orphan.holder!.names[0] ?? orphan.holder!.id} is the proxy of ${orphanOf(orphan.holder!, services)}, which the Compose file no longer has: reroll up --remove-orphans removes it and frees the port.`
              : compose !== undefined
                ? `${compose.names[0] ?? compose.id} was started by docker compose (project ${composeProject}). To hand the service to reroll, take Compose's containers down first (docker compose -p ${composeProject} down; its named volumes stay), then run reroll up (the service does not answer in between). Or change services.${service.name}.ports in ${spec.file}.`
                : `Free the port, or change services.${service.name}.ports in ${spec.file}.`,
        });
      }
      throw error;
    }
  };
  if (created) await replace(existing, restarting ? "kept exiting" : "changed");
  let control: ProxyControl;
  try {
    control = await ProxyControl.open(engine, name);
  } catch (error) {
    // found running between two of Docker's restarts of a proxy that keeps exiting, or hung: made anew, once
    if (created || !isRerollError(error) || error.code !== "E_PROXY_UNREACHABLE") throw error;
    created = true;
    const now = await engine.inspectContainer(name);
    await replace(now, now !== undefined && (now.state === "restarting" || now.restartCount > (existing?.restartCount ?? 0)) ? "kept exiting" : "did not answer");
    control = await ProxyControl.open(engine, name);
  }
  try {
    await control.request({ op: "configure", settings });
    await syncRoutes(control, service, await servingReplicas(engine, spec.project, service.name));
  } catch (error) {
    control.close();
    throw error;
  }
  const details = await engine.inspectContainer(name);
  const published = (details?.ports ?? []).map((p) => ({ hostIp: p.hostIp, hostPort: Number(p.hostPort) }));
  emit({ type: "proxy-ready", service: service.name, name, published: published.map((p) => publicAddress(p.hostIp, p.hostPort)), created });
  return { name, control, published };
}

/** The proxies of a project, by service. */
export async function listProxies(engine: Engine, project: string): Promise<{ id: string; name: string; service: string; running: boolean }[]> {
  const containers = await engine.listContainers([`${LABEL_PROJECT}=${project}`, LABEL_PROXY_FOR]);
  return containers.map((c) => ({ id: c.id, name: c.names[0] ?? c.id, service: c.labels[LABEL_PROXY_FOR] ?? "", running: c.state === "running" }));
}

export async function removeServiceProxy(engine: Engine, project: string, service: string, cause: string, emit: EventSink): Promise<boolean> {
  const name = proxyContainerName(project, service);
  const existing = await engine.inspectContainer(name);
  if (existing === undefined || existing.labels[LABEL_PROJECT] !== project || existing.labels[LABEL_PROXY_FOR] !== service) return false;
  await engine.stopContainer(existing.id, PROXY_STOP_GRACE_SECONDS);
  await engine.removeContainer(existing.id, { force: true });
  emit({ type: "proxy-removed", service, name, cause });
  return true;
}

/**
 * The replicas of a service that may take traffic now: running and not unhealthy. `healthy`
 * is false for one whose Docker healthcheck has not reported yet (`starting`): it is routed
 * only once the proxy's own probe of the health path answers, or Docker reports it healthy.
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
 * Routes a proxy to exactly the serving replicas: healthy ones, and ones it routes already,
 * at once; others still `starting` once the proxy's probe of the health path answers (bounded
 * by `probeMs`), when there is a path. A replica the proxy routes stays routed while Docker's
 * first health check is pending (30 s by default): its probe admitted it, and taking it out
 * until a new probe answered left the proxy with no replica for a moment (503s under load).
 */
async function syncRoutes(control: ProxyControl, service: ServiceSpec, serving: readonly (TargetAddress & { healthy: boolean })[], probeMs = 15_000): Promise<void> {
  const routed = new Set((await control.status()).targets.filter((t) => t.state === "ready" || t.state === "unreachable").map((t) => t.id));
  const admitted = serving.filter((t) => t.healthy || routed.has(t.id));
  await control.request({ op: "sync", targets: admitted.map(({ healthy: _healthy, ...target }) => target) });
  if (service.proxy.healthcheckPath === undefined) return;
  await Promise.all(
    serving
      .filter((t) => !admitted.includes(t))
      .map(async ({ healthy: _healthy, ...target }) => {
        const timer = setTimeout(() => void control.request({ op: "remove", target: target.id }).catch(() => undefined), probeMs);
        try {
          await control.add(target, true).catch(() => undefined);
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
  readonly published: readonly string[];
  readonly targets: readonly TargetReport[];
  /** why the targets could not be read */
  readonly error?: string;
}

/** Each proxy of the project (optionally only these services): where it listens and what it routes to. */
export async function proxyStatuses(engine: Engine, project: string, services: readonly string[] = []): Promise<ProxyStatus[]> {
  const containers = await engine.listContainers([`${LABEL_PROJECT}=${project}`, LABEL_PROXY_FOR]);
  return Promise.all(
    containers
      .filter((c) => services.length === 0 || services.includes(c.labels[LABEL_PROXY_FOR] ?? ""))
      .map(async (c): Promise<ProxyStatus> => {
        const base = {
          service: c.labels[LABEL_PROXY_FOR] ?? "",
          name: c.names[0] ?? c.id,
          running: c.state === "running",
          published: (c.published ?? []).map((p) => publicAddress(p.hostIp, p.hostPort)),
        };
        if (c.state !== "running") return { ...base, targets: [], error: `the proxy container is ${c.state}` };
        try {
          const control = await ProxyControl.open(engine, c.id, 3_000);
          try {
            return { ...base, targets: (await control.status()).targets };
          } finally {
            control.close();
          }
        } catch (error) {
          return { ...base, targets: [], error: error instanceof Error ? error.message : String(error) };
        }
      }),
  );
}
