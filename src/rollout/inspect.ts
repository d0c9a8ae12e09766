import { RerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import { LABEL_BASE_IMAGES, LABEL_LOCK_HOLDER, LABEL_PROJECT, LABEL_PROXY_FOR, LABEL_REVISION, LABEL_SERVICE } from "../core/labels.js";
import type { ServiceSpec, Spec } from "../core/spec/types.js";
import type { ContainerSummary, Engine } from "../engine/port.js";
import type { ProxyStatus } from "../proxy/manage.js";
import { LABEL_SLOT, LABEL_SPEC_HASH, networkName, orphanOf, specHash } from "./container-spec.js";
import { acquireProjectLock, describeHolder, holderGone, parseHolder, PROJECT_LOCK_STALE_MS } from "./lock.js";
import { completedRevisions, LABEL_LEDGER, readLedger, type LedgerEntry } from "./state.js";

export interface ReplicaStatus {
  readonly name: string;
  readonly revision: number;
  readonly slot: number;
  readonly state: string;
  readonly health: string | undefined;
  readonly ready: boolean;
}

export interface ServiceStatus {
  readonly service: string;
  /** the revision the last completed rollout put in place */
  readonly current: number | undefined;
  /** the newest revision built */
  readonly newest: number | undefined;
  readonly desiredReplicas: number;
  readonly ready: number;
  readonly running: number;
  readonly replicas: readonly ReplicaStatus[];
  readonly image: string | undefined;
  /** converged | rollout in progress | interrupted: … | not deployed | drifted: … | degraded: … */
  readonly rollout: string;
  /** the service's doors (one per published port): their addresses, replicas and holds */
  readonly proxies: readonly ProxyStatus[];
  /**
   * true when the replicas run (one revision, one configuration) otherwise than the Compose
   * file now says for that revision: after a rollback of a configuration change, or a file
   * edited since the last `up`. `reroll up --no-build` would replace them.
   */
  readonly fileDiffers: boolean;
}

export interface ProjectStatus {
  readonly project: string;
  /** the rollout holding the project's lock, when its process is alive (or on another host) */
  readonly lock: string | undefined;
  /** the holder of a lock left behind by a rollout whose process is gone */
  readonly staleLock?: string;
  readonly services: readonly ServiceStatus[];
  /** replicas and proxies of services the Compose file no longer has */
  readonly orphans: readonly { readonly name: string; readonly service: string; readonly state: string }[];
}

/** What runs, per service and replica, read with one container list and one image list, asked at once. */
export async function status(spec: Spec, engine: Engine, names?: readonly string[]): Promise<ProjectStatus> {
  const [all, images] = await Promise.all([
    engine.listContainers([`${LABEL_PROJECT}=${spec.project}`]),
    engine.listImages([`${LABEL_PROJECT}=${spec.project}`, LABEL_REVISION]),
  ]);
  const lockContainer = all.find((c) => c.labels[LABEL_LOCK_HOLDER] !== undefined && c.names[0] === `${spec.project}-reroll-lock`);
  const holder = lockContainer === undefined ? undefined : parseHolder(lockContainer.labels[LABEL_LOCK_HOLDER]);
  // A holder killed (SIGKILL, a lost machine) leaves its lock behind: its rollout stopped
  // halfway, and the next `up` or `rollback` takes the lock over and finishes it.
  const gone = lockContainer !== undefined && holderGone(holder, Date.now(), PROJECT_LOCK_STALE_MS);
  const lockHolder = lockContainer === undefined || gone ? undefined : describeHolder(holder);
  const staleLock = gone ? describeHolder(holder) : undefined;
  const ledgerContainers = all.filter((c) => c.labels[LABEL_LEDGER] !== undefined);
  const services: ServiceStatus[] = [];
  const selected = spec.services.filter((s) => names === undefined || names.length === 0 || names.includes(s.name));
  const replicasOf = new Map(selected.map((s) => [s.name, all.filter((c) => c.labels[LABEL_SERVICE] === s.name && c.labels[LABEL_SLOT] !== undefined)]));
  // The ledger, the proxies and the images of the running replicas, all at once. The proxies
  // answer over exec: asked only when there are some (their code is loaded only then:
  // status must start fast, bench/).
  const [ledger, proxies, differs] = await Promise.all([
    ledgerContainers.length === 0 ? undefined : readLedger(engine, spec.project),
    all.some((c) => c.labels[LABEL_PROXY_FOR] !== undefined) ? import("../proxy/manage.js").then((m) => m.proxyStatuses(engine, spec.project, names ?? [])) : [],
    Promise.all(selected.map((s) => differsFromFile(spec, engine, s, replicasOf.get(s.name)!))),
  ]);
  for (const [i, service] of selected.entries()) {
    const containers = replicasOf.get(service.name)!;
    const replicas = containers
      .map((c): ReplicaStatus => ({
        name: c.names[0] ?? c.id,
        revision: Number(c.labels[LABEL_REVISION] ?? 0),
        slot: Number(c.labels[LABEL_SLOT] ?? 0),
        state: c.state,
        health: c.health,
        ready: c.state === "running" && c.health !== "unhealthy" && c.health !== "starting",
      }))
      .sort((a, b) => a.slot - b.slot || a.revision - b.revision);
    const current = ledger === undefined ? undefined : completedRevisions(ledger, service.name)[0];
    const newest = Math.max(0, ...images.filter((i) => i.labels[LABEL_SERVICE] === service.name).map((i) => Number(i.labels[LABEL_REVISION]))) || undefined;
    const runningRevisions = new Set(replicas.filter((r) => r.state === "running").map((r) => r.revision));
    const hashes = new Set(containers.filter((c) => c.state === "running").map((c) => c.labels[LABEL_SPEC_HASH]));
    const down = replicas.filter((r) => r.state !== "running");
    // What a rollout leaves behind when it stops halfway: two revisions or configurations
    // running, replaced replicas kept stopped (so going back is starting them), a replica
    // created and never started. A replica of the running revision that is merely down was
    // stopped by hand or exited: that is a degraded service, not a rollout to finish.
    const halfway = runningRevisions.size > 1 || hashes.size > 1 || down.some((r) => r.state === "created" || (runningRevisions.size > 0 && !runningRevisions.has(r.revision)));
    const ready = replicas.filter((r) => r.ready).length;
    // replicas serve, but nothing publishes the service's ports: unreachable from outside
    const doors = all.filter((c) => c.labels[LABEL_PROXY_FOR] === service.name);
    const closed = doors.filter((c) => c.state !== "running");
    const unpublished = service.ports.length > 0 && ready > 0 && (doors.length === 0 || closed.length > 0);
    const moved = movedReplicas(containers, proxies.filter((p) => p.service === service.name), networkName(spec.project));
    let rollout: string;
    if (replicas.length === 0) rollout = service.deploy.replicas === 0 && current !== undefined ? "converged" : "not deployed";
    else if (lockHolder !== undefined) rollout = "rollout in progress";
    else if (staleLock !== undefined) rollout = "interrupted: its rollout's process is gone; run reroll up to finish or reroll rollback";
    else if (halfway) rollout = "interrupted: run reroll up to finish or reroll rollback";
    else if (current !== undefined && runningRevisions.size > 0 && !runningRevisions.has(current)) rollout = `drifted: r${[...runningRevisions].join(", r")} runs, the last completed rollout was r${current}`;
    else if (unpublished && closed.some((c) => c.state === "restarting")) rollout = "degraded: its door keeps exiting and Docker restarts it (docker logs says why); reroll up or reroll proxy up recreates it";
    else if (unpublished && closed.length > 0) rollout = `degraded: its door ${closed.map((c) => `${c.names[0] ?? c.id} is ${c.state}`).join(", ")}, so that port is closed; reroll up or reroll proxy up starts it`;
    else if (unpublished) rollout = "degraded: no door publishes its ports (reroll proxy down, or it was removed); reroll up or reroll proxy up starts one";
    else if (moved.length > 0) rollout = `degraded: ${moved.join(", ")} came back at another address after a restart, and its door still routes the old one; reroll proxy up routes ${moved.length === 1 ? "it" : "them"} again`;
    else if (down.length > 0) rollout = `degraded: ${down.map((r) => `${r.name} ${r.state}`).join(", ")}; reroll up replaces ${down.length === 1 ? "it" : "them"}`;
    else if (ready !== service.deploy.replicas) rollout = `degraded: ${ready} of ${service.deploy.replicas} replicas ready`;
    else rollout = "converged";
    const imageOfCurrent = containers.find((c) => c.state === "running")?.imageId;
    services.push({
      service: service.name,
      current,
      newest,
      desiredReplicas: service.deploy.replicas,
      ready,
      running: replicas.filter((r) => r.state === "running").length,
      replicas,
      image: imageOfCurrent,
      rollout,
      proxies: proxies.filter((p) => p.service === service.name),
      fileDiffers: differs[i]!,
    });
  }
  const serviceNames = new Set(spec.services.map((s) => s.name));
  const orphans = all.flatMap((c) => {
    const service = orphanOf(c, serviceNames);
    return service === undefined ? [] : [{ name: c.names[0] ?? c.id, service, state: c.state }];
  });
  return { project: spec.project, lock: lockHolder, ...(staleLock === undefined ? {} : { staleLock }), services, orphans };
}

/**
 * Whether a service's running replicas (one image, one configuration) carry another
 * configuration hash than the Compose file gives with that image: the hash `up` compares.
 * One image inspection, and none when the replicas differ among themselves.
 */
async function differsFromFile(spec: Spec, engine: Engine, service: ServiceSpec, replicas: readonly ContainerSummary[]): Promise<boolean> {
  const running = replicas.filter((c) => c.state === "running");
  if (new Set(running.map((c) => c.imageId)).size !== 1 || new Set(running.map((c) => c.labels[LABEL_SPEC_HASH])).size !== 1) return false;
  const image = await engine.inspectImage(running[0]!.imageId);
  return image !== undefined && specHash(spec, service, image) !== running[0]!.labels[LABEL_SPEC_HASH];
}

export interface HistoryEntry {
  readonly revision: number;
  readonly imageId: string | undefined;
  readonly kept: boolean;
  readonly created: number | undefined;
  readonly baseImages: readonly string[];
  readonly outcomes: readonly LedgerEntry[];
  readonly current: boolean;
}

/** The revisions of a service: images kept, what they were built on, and how their rollouts ended. */
export async function history(spec: Spec, engine: Engine, service: string): Promise<readonly HistoryEntry[]> {
  if (!spec.services.some((s) => s.name === service)) {
    throw new RerollError("E_SERVICE_UNKNOWN", `No such service: ${service}.`, { hint: `Services in ${spec.file}: ${spec.services.map((s) => s.name).join(", ")}.` });
  }
  const images = await engine.listImages([`${LABEL_PROJECT}=${spec.project}`, `${LABEL_SERVICE}=${service}`, LABEL_REVISION]);
  const ledger = await readLedger(engine, spec.project);
  const entries = ledger.services[service] ?? [];
  const current = completedRevisions(ledger, service)[0];
  const revisions = new Set([...images.map((i) => Number(i.labels[LABEL_REVISION])), ...entries.map((e) => e.revision)]);
  return Promise.all(
    [...revisions]
      .sort((a, b) => b - a)
      .map(async (revision): Promise<HistoryEntry> => {
        const image = images.find((i) => Number(i.labels[LABEL_REVISION]) === revision);
        const imageId = image?.id ?? entries.find((e) => e.revision === revision)?.imageId;
        if (image === undefined) {
          // not built by reroll (a service that runs an `image:` as is), or since removed:
          // the daemon says which, and names the image by its tags
          const run = imageId === undefined ? undefined : await engine.inspectImage(imageId);
          return {
            revision,
            imageId,
            kept: run !== undefined,
            created: run?.created,
            baseImages: run?.repoTags.filter((t) => t !== "<none>:<none>") ?? [],
            outcomes: entries.filter((e) => e.revision === revision),
            current: revision === current,
          };
        }
        let baseImages: string[] = [];
        try {
          baseImages = (JSON.parse(image.labels[LABEL_BASE_IMAGES] ?? "[]") as { ref: string }[]).map((b) => b.ref);
        } catch {
          baseImages = [];
        }
        return {
          revision,
          imageId,
          kept: true,
          created: image.created,
          baseImages,
          outcomes: entries.filter((e) => e.revision === revision),
          current: revision === current,
        };
      }),
  );
}

/**
 * Stops (gracefully) and removes the project's service containers, then its network (named
 * volumes only with `volumes`); nothing without reroll's labels. Works from labels alone:
 * `spec` only names the project.
 */
export async function down(
  spec: Pick<Spec, "project"> & Partial<Pick<Spec, "services" | "file">>,
  engine: Engine,
  options: { services?: readonly string[]; volumes?: boolean; now?: () => number; lockWaitMs?: number; signal?: AbortSignal; onEvent?: EventSink } = {},
): Promise<{ removed: string[] }> {
  if (options.volumes === true && (options.services ?? []).length > 0) {
    // named volumes belong to the project, and another service may mount the same one
    throw new RerollError("E_USAGE", "--volumes removes the project's named volumes, so it takes down the whole project, not some services.", {
      hint: `Run reroll down --volumes for the whole project, or reroll down ${(options.services ?? []).join(" ")} to keep the volumes.`,
    });
  }
  await refuseUnknownServices(spec, engine, options.services ?? []);
  const lock = await acquireProjectLock(engine, spec.project, "reroll down", {
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.lockWaitMs === undefined ? {} : { waitMs: options.lockWaitMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
  const removed: string[] = [];
  try {
    const all = await engine.listContainers([`${LABEL_PROJECT}=${spec.project}`]);
    const names = options.services ?? [];
    // the doors first: no request is sent to a replica being removed
    for (const c of all) {
      const service = c.labels[LABEL_PROXY_FOR];
      if (service === undefined || (names.length > 0 && !names.includes(service))) continue;
      const { removeServiceProxy } = await import("../proxy/manage.js");
      if (await removeServiceProxy(engine, spec.project, service, "reroll down", () => undefined)) removed.push(c.names[0] ?? c.id);
    }
    // the lock and the ledger stay
    const replicas = all.filter((c) => c.labels[LABEL_SLOT] !== undefined && (names.length === 0 || names.includes(c.labels[LABEL_SERVICE] ?? "")));
    // Graceful, as a rollout stops an old replica: its stop signal, then its own grace period
    // (the container's StopTimeout, set from stop_grace_period), all at once; then removed.
    await Promise.all(
      replicas.map(async (c) => {
        if (c.state === "running" || c.state === "restarting") await engine.stopContainer(c.id);
        await engine.removeContainer(c.id, { force: true });
      }),
    );
    removed.push(...replicas.map((c) => c.names[0] ?? c.id));
    if (names.length === 0) {
      await engine.removeNetwork(networkName(spec.project)).catch(() => undefined);
      if (options.volumes === true) {
        for (const volume of await engine.listVolumes([`${LABEL_PROJECT}=${spec.project}`])) await engine.removeVolume(volume);
      }
    }
    return { removed };
  } finally {
    await lock.release();
  }
}

/**
 * Replicas a door routes at an address they no longer have: Docker gives a replica it
 * restarts (its restart policy, a daemon restart) whatever address is free then, and HAProxy
 * 2.6 cannot follow a server added at run time by name. Its checks take the old address out.
 */
export function movedReplicas(replicas: readonly ContainerSummary[], doors: readonly ProxyStatus[], network: string): string[] {
  const moved = new Set<string>();
  for (const target of doors.flatMap((d) => d.targets)) {
    const replica = replicas.find((c) => c.state === "running" && target.id !== "" && c.id.startsWith(target.id));
    const address = replica?.addresses?.[network];
    if (replica !== undefined && address !== undefined && address !== target.host) moved.add(replica.names[0] ?? replica.id);
  }
  return [...moved];
}

/**
 * A service `down` is named that neither the Compose file has nor any container of the
 * project runs (a replica or a door; a service the file no longer has may still run): a typo,
 * refused before anything is touched, rather than "nothing to remove".
 */
async function refuseUnknownServices(spec: Pick<Spec, "project"> & Partial<Pick<Spec, "services" | "file">>, engine: Engine, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const inFile = new Set((spec.services ?? []).map((s) => s.name));
  const running = new Set((await engine.listContainers([`${LABEL_PROJECT}=${spec.project}`])).flatMap((c) => [c.labels[LABEL_SERVICE], c.labels[LABEL_PROXY_FOR]].filter((s): s is string => s !== undefined)));
  const unknown = names.filter((n) => !inFile.has(n) && !running.has(n));
  if (unknown.length === 0) return;
  const known = [...new Set([...inFile, ...running])].sort();
  throw new RerollError("E_SERVICE_UNKNOWN", `No such service in project ${spec.project}: ${unknown.join(", ")}.`, {
    hint: known.length === 0 ? `Project ${spec.project} has no service${spec.file === undefined ? " running" : ` in ${spec.file} and none running`}: check -p and the directory.` : `Its services: ${known.join(", ")}.`,
  });
}
