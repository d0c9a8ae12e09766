import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseImageRef, repositoryKey, tryParseImageRef } from "../core/image-ref.js";
import { isRerollError, RerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import { LABEL_PROJECT, LABEL_REVISION, serviceFilters } from "../core/labels.js";
import { isConverged, planRollout, renderPlan, whyNotConverged, type ObservedContainer, type RolloutPlan, type RolloutTarget } from "../core/rollout/plan.js";
import type { ServiceSpec, Spec } from "../core/spec/types.js";
import { analyzeBaseImages } from "../core/dockerfile/base-images.js";
import { parseDockerfile } from "../core/dockerfile/parse.js";
import type { ContainerSummary, Engine, ImageDetails } from "../engine/port.js";
import { writeFileAtomic } from "../fs/atomic-write.js";
import {
  checkDataSafety,
  containerName,
  DEFAULT_STOP_GRACE_MS,
  effectiveHealthcheck,
  LABEL_SLOT,
  LABEL_SPEC_HASH,
  networkName,
  orphanOf,
  recordConfig,
  restoreConfig,
  specHash,
  volumeName,
} from "./container-spec.js";
import { executePlan, proveKept, type ExecuteContext, type ExecuteResult } from "./execute.js";
import { acquireProjectLock, type HeldLock } from "./lock.js";
import { checkDoorInputs, ensureServiceProxy, listProxies, plannedProxyChange, proxied, removeServiceProxy, type ServiceProxy } from "../proxy/manage.js";
import { proxyTraffic, type Traffic } from "../proxy/traffic.js";
import { startVerify, type VerifyReport, type VerifyRun } from "../proxy/verify.js";
import { appendLedger, completedRevisions, readLedger, recordedConfig, rollbackStack, type Outcome, type Step } from "./state.js";


export interface RolloutOptions {
  readonly services?: readonly string[];
  readonly dryRun?: boolean;
  readonly lockWaitMs?: number;
  /** overrides the readiness deadline derived from each healthcheck */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: EventSink;
  readonly now?: () => number;
  /** send traffic through each proxied service's public port while rolling, and report it */
  readonly verify?: { readonly path: string };
  /** remove the replicas and proxies of services the Compose file no longer has (else: a warning) */
  readonly removeOrphans?: boolean;
}

export interface UpOptions extends RolloutOptions {
  /** IMAGE:TAG: bump, build and roll as one transaction */
  readonly bump?: string;
  readonly noBuild?: boolean;
  readonly parallel?: number;
}

export interface RollbackOptions extends RolloutOptions {
  /** the revision to go back to; default: the one before the last completed rollout */
  readonly to?: number;
}

export interface ServiceOutcome {
  readonly service: string;
  readonly revision: number;
  readonly outcome: Outcome | "unchanged";
  readonly plan: string;
}

export interface RolloutResult {
  readonly project: string;
  readonly services: readonly ServiceOutcome[];
  /** what --verify measured, per proxied service */
  readonly verify?: readonly VerifyReport[];
}

interface Target {
  readonly service: ServiceSpec;
  readonly image: ImageDetails;
  readonly revision: number;
  /** a rollback's: the revision it goes back from, when the ledger says */
  readonly rollbackFrom?: number;
  /** a rollback's to another configuration of the revision in place */
  readonly configOnly?: boolean;
  /** a rollback's: the top-level volumes its recorded configuration names, as they were */
  readonly volumes?: Spec["volumes"];
  /** lines the dry run's plan starts with: what it would edit, what it did not do */
  readonly dryRunNotes?: readonly string[];
}

/**
 * The service's containers as the planner sees them. With `revision`, the running ones of that
 * revision are inspected too, for when they last started (a replica the planner would keep
 * must not be in a crash loop under its restart policy).
 */
export async function observeService(engine: Engine, project: string, service: string, revision?: number): Promise<ObservedContainer[]> {
  const listed = (await engine.listContainers(serviceFilters(project, service))).map(
    (c): ObservedContainer => ({
      id: c.id,
      name: c.names[0] ?? c.id,
      revision: Number(c.labels[LABEL_REVISION] ?? 0),
      slot: Number(c.labels[LABEL_SLOT] ?? 0),
      specHash: c.labels[LABEL_SPEC_HASH] ?? "",
      imageId: c.imageId,
      state: c.state,
      health: c.health,
    }),
  );
  if (revision === undefined) return listed;
  return Promise.all(
    listed.map(async (c) => {
      if (c.revision !== revision || c.state !== "running") return c;
      const details = await engine.inspectContainer(c.id);
      const startedAtMs = details === undefined ? NaN : Date.parse(details.startedAt);
      return Number.isNaN(startedAtMs) ? c : { ...c, startedAtMs, health: details?.health ?? c.health };
    }),
  );
}

/**
 * After the last monitor window: a replica the rollout kept or proved that is gone or stopped
 * now (removed, stopped or crashed outside the rollout after it proved itself) is named in a
 * warning, so a service left short is not reported as whole. One container list, made beside
 * the removals and the outcome's record; `status` calls such a service degraded.
 */
async function warnShort(engine: Engine, project: string, done: readonly { target: Target; result: ExecuteResult }[], emit: EventSink): Promise<void> {
  const all = new Map((await engine.listContainers([`${LABEL_PROJECT}=${project}`])).map((c) => [c.id, c.state]));
  for (const { target, result } of done) {
    const lost = result.serving.filter((c) => all.get(c.id) !== "running").map((c) => `${c.name} ${all.has(c.id) ? all.get(c.id) : "removed"}`);
    if (lost.length === 0) continue;
    emit({
      type: "warning",
      service: target.service.name,
      message: `${target.service.name} completed on r${target.revision}, but ${lost.join(", ")} since ${lost.length === 1 ? "it" : "they"} proved ready, outside the rollout: ${target.service.deploy.replicas - lost.length} of ${target.service.deploy.replicas} replicas serve; reroll up replaces ${lost.length === 1 ? "it" : "them"}`,
    });
  }
}

/** Whether a replica runs a step: its revision, and its configuration when the step names one. */
function runsStep(step: Step): (c: ObservedContainer) => boolean {
  return (c) => c.revision === step.revision && (step.specHash === undefined || c.specHash === step.specHash);
}

/** What a stop takes after its grace period (the daemon's kill, the exit): 0.3-0.4 s measured here, with room to spare. */
const STOP_SETTLE_MS = 1_000;

/**
 * Observes and plans one service; kept replicas that have not proven themselves yet are
 * watched through the readiness gates first, and one that fails is removed and the service
 * planned again, so its slot gets a new replica like any other.
 */
async function planProven(spec: Spec, target: RolloutTarget, ctx: ExecuteContext, tookOver = false): Promise<{ plan: RolloutPlan; observed: ObservedContainer[] }> {
  // After a takeover, a kept replica is watched as long as a stop the dead holder asked for
  // could still take (its grace period, then the kill): Docker shows such a replica running
  // until it exits, and keeping it would leave its slot empty once it does.
  let suspect = tookOver;
  for (;;) {
    const observedAt = ctx.now();
    const observed = await observeService(ctx.engine, spec.project, target.service, target.revision);
    const plan = planRollout(target, observed, observedAt, suspect ? "the rollout that stopped half-way may have been stopping it" : undefined);
    ctx.emit({ type: "rollout-plan", service: target.service, plan: renderPlan(plan, (slot) => containerName(spec.project, target.service, target.revision, slot)) });
    const graceMs = ctx.service.stopGracePeriodMs ?? DEFAULT_STOP_GRACE_MS;
    const watch = suspect ? { ...ctx, update: { ...ctx.update, monitorMs: Math.max(ctx.update.monitorMs, graceMs + STOP_SETTLE_MS) } } : ctx;
    suspect = false;
    const failure = await proveKept(plan, watch, observedAt);
    // proven: from here on they are kept like any other
    if (failure === undefined) return { plan: { ...plan, unproven: [] }, observed };
    if (failure.reason === "interrupted") {
      throw new RerollError("E_INTERRUPTED", `Interrupted while watching ${failure.name}; nothing was changed.`, { kind: "interrupted", hint: "Run the same command again." });
    }
  }
}

/** The services named (all when none), depends_on first; an unknown name is an error listing the known ones. */
export function selectServices(spec: Spec, names: readonly string[] | undefined): ServiceSpec[] {
  const unknown = (names ?? []).filter((n) => !spec.services.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new RerollError("E_SERVICE_UNKNOWN", `No such service: ${unknown.join(", ")}.`, {
      hint: `Services in ${spec.file}: ${spec.services.map((s) => s.name).join(", ")}.`,
    });
  }
  const chosen = names === undefined || names.length === 0 ? spec.services : spec.services.filter((s) => names.includes(s.name));
  // depends_on first
  const ordered: ServiceSpec[] = [];
  const visit = (s: ServiceSpec, path: string[]): void => {
    if (ordered.includes(s)) return;
    if (path.includes(s.name)) throw new RerollError("E_SPEC_INVALID", `depends_on forms a cycle: ${[...path, s.name].join(" → ")}.`, { hint: "Remove one of the depends_on entries." });
    for (const dep of s.dependsOn) {
      const d = chosen.find((x) => x.name === dep);
      if (d !== undefined) visit(d, [...path, s.name]);
    }
    ordered.push(s);
  };
  for (const s of chosen) visit(s, []);
  return ordered;
}

/** The newest revision image of a service (for --no-build and --dry-run). */
async function newestRevision(engine: Engine, project: string, service: string): Promise<{ image: ImageDetails; revision: number } | undefined> {
  const images = await engine.listImages([...serviceFilters(project, service), LABEL_REVISION]);
  const newest = [...images].sort((a, b) => Number(b.labels[LABEL_REVISION]) - Number(a.labels[LABEL_REVISION]))[0];
  if (newest === undefined) return undefined;
  const image = await engine.inspectImage(newest.id);
  return image === undefined ? undefined : { image, revision: Number(newest.labels[LABEL_REVISION]) };
}

/** A service that runs an image as given: its revision is the ledger's for that image id, or the next one. */
async function imageOnlyTarget(engine: Engine, spec: Spec, service: ServiceSpec): Promise<Target> {
  const image = await engine.inspectImage(service.image);
  if (image === undefined) {
    throw new RerollError("E_IMAGE_MISSING", `The image ${service.image} of service ${service.name} is not on the Docker daemon.`, {
      hint: `Pull or build it first (docker pull ${service.image}), or give the service a build: section.`,
    });
  }
  const ledger = await readLedger(engine, spec.project);
  const entries = ledger.services[service.name] ?? [];
  const known = entries.find((e) => e.imageId === image.id);
  const running = (await observeService(engine, spec.project, service.name)).map((c) => c.revision);
  const revision = known?.revision ?? Math.max(0, ...entries.map((e) => e.revision), ...running) + 1;
  return { service, image, revision };
}

/** Services whose Dockerfile uses `image` in a FROM line, for --bump. */
function servicesUsing(services: readonly ServiceSpec[], image: string): ServiceSpec[] {
  const wanted = repositoryKey(parseImageRef(image, "--bump image"));
  return services.filter((s) => {
    if (s.build === undefined) return false;
    try {
      const froms = analyzeBaseImages(parseDockerfile(readFileSync(s.build.dockerfile).toString("latin1")), s.build.args).froms;
      return froms.some((f) => f.ref !== undefined && repositoryKey(f.ref) === wanted);
    } catch {
      return false;
    }
  });
}

/**
 * Replicas and proxies of services the Compose file no longer has. Without --remove-orphans
 * they are named in a warning and left alone; with it they go before anything else (a proxy
 * first, freeing its host port for a renamed service), each replica gracefully, as `down`
 * stops one.
 */
async function handleOrphans(engine: Engine, spec: Spec, remove: boolean | "would", emit: EventSink): Promise<void> {
  const names = new Set(spec.services.map((s) => s.name));
  const orphans = (await engine.listContainers([`${LABEL_PROJECT}=${spec.project}`])).flatMap((c) => {
    const service = orphanOf(c, names);
    return service === undefined ? [] : [{ c, service }];
  });
  if (orphans.length === 0) return;
  const byService = new Map<string, ContainerSummary[]>();
  for (const o of orphans) byService.set(o.service, [...(byService.get(o.service) ?? []), o.c]);
  if (remove !== true) {
    for (const [service, containers] of byService) {
      const list = containers.map((c) => c.names[0] ?? c.id).join(", ");
      const them = containers.length === 1 ? "it" : "them";
      emit({
        type: "warning",
        service,
        message: `${list} belong${containers.length === 1 ? "s" : ""} to ${service}, which the Compose file no longer has (removed or renamed?): ${remove === "would" ? `--remove-orphans removes ${them}` : `reroll up --remove-orphans or reroll down ${service} removes ${them}`}`,
      });
    }
    return;
  }
  for (const service of byService.keys()) await removeServiceProxy(engine, spec.project, service, `${service} is no longer in the Compose file`, emit);
  const replicas = orphans.filter((o) => o.c.labels[LABEL_SLOT] !== undefined);
  await Promise.all(
    replicas.map(async ({ c, service }) => {
      if (c.state === "running" || c.state === "restarting") await engine.stopContainer(c.id);
      await engine.removeContainer(c.id, { force: true });
      emit({ type: "replica-remove", service, name: c.names[0] ?? c.id, cause: `${service} is no longer in the Compose file` });
    }),
  );
}

/** The named volumes the services mount. */
function usedVolumes(services: readonly ServiceSpec[]): Set<string> {
  return new Set(services.flatMap((s) => s.volumes.flatMap((m) => (m.type === "volume" ? [m.source] : []))));
}

/**
 * An external volume is managed outside reroll: one that is missing is refused before
 * anything changes, as Compose does. Docker would create an empty one at the first mount,
 * and the new replicas would run on it while the data sits in the volume that was meant.
 */
async function checkExternalVolumes(engine: Engine, spec: Spec, services: readonly ServiceSpec[]): Promise<void> {
  const external = [...usedVolumes(services)].filter((name) => spec.volumes[name]!.external);
  const missing = (await Promise.all(external.map(async (name) => ((await engine.hasVolume(volumeName(spec, name))) ? [] : [name])))).flat();
  if (missing.length === 0) return;
  throw new RerollError("E_VOLUME_MISSING", `The external volume${missing.length === 1 ? "" : "s"} ${missing.map((n) => volumeName(spec, n)).join(", ")} ${missing.length === 1 ? "does" : "do"} not exist; nothing was changed.`, {
    problems: missing.map((n) => `volumes.${n}: external, named ${volumeName(spec, n)}`),
    hint: `Create ${missing.length === 1 ? "it" : "them"} (docker volume create NAME), set the right name: in ${spec.file}, or drop external: true to let reroll create a project volume.`,
  });
}

async function ensureProjectResources(engine: Engine, spec: Spec, services: readonly ServiceSpec[]): Promise<void> {
  await engine.ensureNetwork(networkName(spec.project), { [LABEL_PROJECT]: spec.project });
  for (const name of usedVolumes(services)) {
    const v = spec.volumes[name]!;
    if (v.external) continue;
    await engine.ensureVolume(volumeName(spec, name), { [LABEL_PROJECT]: spec.project, ...v.labels }, v.driver, v.driverOpts);
  }
}

/**
 * Rolls the given targets: one project lock, then per service (depends_on first) observe,
 * plan, execute. Replaced replicas are removed only when every service succeeded; if one
 * fails, the services before it in this run are put back too.
 */
async function rollTargets(
  spec: Spec,
  engine: Engine,
  targets: readonly Target[],
  mode: "up" | "rollback",
  options: RolloutOptions,
  heldLock?: HeldLock,
): Promise<RolloutResult> {
  const emit: EventSink = options.onEvent ?? (() => undefined);
  const now = options.now ?? Date.now;
  const outcomes: ServiceOutcome[] = [];

  if (options.dryRun === true) {
    await checkExternalVolumes(engine, spec, targets.map((t) => t.service));
    await handleOrphans(engine, spec, options.removeOrphans === true ? "would" : false, emit);
    for (const t of targets) {
      const hash = specHash(spec, t.service, t.image);
      const plan = planRollout(
        { service: t.service.name, revision: t.revision, imageId: t.image.id, specHash: hash, replicas: t.service.deploy.replicas, update: mode === "up" ? t.service.deploy.update : t.service.deploy.rollback },
        await observeService(engine, spec.project, t.service.name, t.revision),
        now(),
      );
      const proxyChange = await plannedProxyChange(engine, spec, t.service);
      const shared = sharedVolumeWarning(t.service, plan.batches.some((b) => b.replaces.length > 0));
      if (shared !== undefined) emit({ type: "warning", service: t.service.name, message: shared });
      const text = renderPlan(plan, (slot) => containerName(spec.project, t.service.name, t.revision, slot), {
        notes: t.dryRunNotes ?? [],
        changes: proxyChange === undefined ? [] : [`proxy   ${proxyChange}`],
      });
      emit({ type: "rollout-plan", service: t.service.name, plan: text });
      outcomes.push({ service: t.service.name, revision: t.revision, outcome: "unchanged", plan: text });
    }
    return { project: spec.project, services: outcomes };
  }

  const lock = heldLock ?? (await projectLock(spec, engine, mode, options));
  const done: { target: Target; result: ExecuteResult; hash: string }[] = [];
  const proxies = new Map<string, ServiceProxy>();
  const traffic = new Map<string, Traffic>();
  const verifying: VerifyRun[] = [];
  const reports: VerifyReport[] = [];
  const stopVerifying = async (): Promise<void> => {
    for (const report of await Promise.all(verifying.splice(0).map((v) => v.stop()))) {
      reports.push(report);
      emit({ type: "verify-report", service: report.service, report });
    }
  };
  try {
    await checkExternalVolumes(engine, spec, targets.map((t) => t.service));
    await Promise.all([ensureProjectResources(engine, spec, targets.map((t) => t.service)), handleOrphans(engine, spec, options.removeOrphans === true, emit)]);
    // every door is in place (ports published, routes known) before any replica changes
    await checkDoorInputs(engine, targets.map((t) => t.service));
    let doorsChanged = false;
    for (const t of targets) {
      if (!proxied(t.service)) continue;
      const proxy = await ensureServiceProxy(engine, spec, t.service, emit).catch((error: unknown) => {
        // an earlier service's doors were made or removed: "nothing was changed" is no longer true
        throw doorsChanged && isRerollError(error) && error.kind === "input" ? new RerollError(error.code, error.message, { kind: "failed", problems: error.problems, hint: error.hint, cause: error }) : error;
      });
      doorsChanged ||= proxy.changed;
      proxies.set(t.service.name, proxy);
      traffic.set(t.service.name, proxyTraffic(engine, proxy.control, t.service, networkName(spec.project), emit));
    }
    if (options.verify !== undefined) await startVerifying(targets, proxies, options.verify.path, emit, verifying);
    for (const t of targets) {
      const started = now();
      const service = t.service;
      checkDataSafety(service, t.image);
      const hash = specHash(spec, service, t.image);
      const update = mode === "up" ? service.deploy.update : service.deploy.rollback;
      const ctx: ExecuteContext = {
        engine,
        spec,
        service,
        image: t.image,
        revision: t.revision,
        hash,
        update,
        rollbackConfig: service.deploy.rollback,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        now,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        emit,
        ...(traffic.has(service.name) ? { traffic: traffic.get(service.name)! } : {}),
      };
      if (effectiveHealthcheck(service, t.image) === undefined && service.deploy.replicas > 0) {
        emit({ type: "warning", service: service.name, message: `${service.name} has no healthcheck: a replica counts as ready once it has run for the monitor window (${update.monitorMs / 1000}s)` });
      }
      const { plan, observed } = await planProven(spec, { service: service.name, revision: t.revision, imageId: t.image.id, specHash: hash, replicas: service.deploy.replicas, update }, ctx, lock.tookOver);
      const text = renderPlan(plan, (slot) => containerName(spec.project, service.name, t.revision, slot));
      for (const warning of plan.warnings) emit({ type: "warning", service: service.name, message: warning });
      const from = [...new Set(observed.filter((c) => c.state === "running").map((c) => c.revision))];
      emit({ type: "rollout-start", service: service.name, revision: t.revision, from, reason: whyNotConverged(plan) });
      const result = await executePlan(plan, ctx);
      emit({ type: "rollout-done", service: service.name, revision: t.revision, outcome: result.outcome, durationMs: now() - started });
      outcomes.push({ service: service.name, revision: t.revision, outcome: result.outcome === "rolled-back" ? "rolled-back" : result.outcome, plan: text });
      // a failure to converge is reported once the services before this one are back too
      let convergeFailure: unknown;
      if (result.outcome === "rolled-back") {
        await convergeToPrevious(spec, engine, service, { revision: t.revision, specHash: hash }, options, emit, now, traffic.get(service.name)).catch((error: unknown) => (convergeFailure = error));
      }
      // paused keeps what is done: the slots already on the target lose their stopped old replicas
      if (result.outcome === "paused") await result.finish();
      if (result.outcome !== "completed") {
        await appendLedger(engine, spec.project, {
          [service.name]: { revision: t.revision, imageId: t.image.id, specHash: hash, outcome: result.outcome, at: now(), ...(result.failure === undefined ? {} : { detail: result.failure.message }) },
        });
        for (const earlier of [...done].reverse()) await earlier.result.revert();
        if (done.length > 0) {
          await appendLedger(
            engine,
            spec.project,
            Object.fromEntries(
              done.map((d) => [d.target.service.name, { revision: d.target.revision, imageId: d.target.image.id, specHash: d.hash, outcome: "rolled-back" as const, at: now(), detail: `${service.name} failed` }]),
            ),
          );
        }
        if (convergeFailure !== undefined) throw convergeFailure;
        if (result.outcome === "interrupted") {
          throw new RerollError("E_INTERRUPTED", `Interrupted: ${service.name}'s batch in flight was brought back; no replica was left half-started.`, {
            kind: "interrupted",
            hint: "Run the same command again to finish, or reroll rollback to go back.",
          });
        }
        const why = result.failure?.message ?? "a replica failed";
        throw new RerollError(
          result.outcome === "paused" ? "E_ROLLOUT_PAUSED" : "E_ROLLOUT_FAILED",
          result.outcome === "paused"
            ? `${service.name}'s rollout to r${t.revision} paused (failure_action: pause): ${why}.`
            : `${service.name}'s rollout to r${t.revision} failed and was rolled back: ${why}. ${from.length === 0 ? `Nothing of ${service.name} ran before it, and nothing of r${t.revision} is left.` : "The previous revision is running."}`,
          {
            kind: "failed",
            problems: result.failure?.logs.length ? [`last lines of ${result.failure.name}:`, ...result.failure.logs.map((l) => `  | ${l}`)] : [],
            hint: failureHint(result.outcome === "paused", result.failure),
          },
        );
      }
      done.push({ target: t, result, hash });
    }
    // Every new replica is ready and has held for its monitor window: the outcome is recorded
    // while the stopped old replicas are removed and the proxies are listed (a service whose
    // ports were removed no longer needs its proxy, which goes once the outcome is recorded).
    // Should a removal fail, the record is still true, and the next up removes what is left.
    const [, , , existingProxies] = await Promise.all([
      Promise.all(done.map((d) => d.result.finish())),
      warnShort(engine, spec.project, done, emit),
      appendLedger(
        engine,
        spec.project,
        Object.fromEntries(
          done.map((d) => [
            d.target.service.name,
            {
              revision: d.target.revision,
              imageId: d.target.image.id,
              specHash: d.hash,
              outcome: "completed" as const,
              at: now(),
              ...(mode === "rollback" ? { by: "rollback" as const, detail: rollbackDetail(d.target) } : {}),
            },
          ]),
        ),
        // what rollback needs to run these replicas again as they run now
        Object.fromEntries(done.map((d) => [d.target.service.name, recordConfig(spec, d.target.service)])),
      ),
      listProxies(engine, spec.project),
    ]);
    const rolled = new Set(targets.map((t) => t.service.name));
    for (const p of existingProxies) {
      const service = spec.services.find((s) => s.name === p.service);
      if (rolled.has(p.service) && service !== undefined && !proxied(service)) await removeServiceProxy(engine, spec.project, p.service, "the service publishes no port any more", emit);
    }
    await stopVerifying();
    return { project: spec.project, services: outcomes, ...(options.verify === undefined ? {} : { verify: reports }) };
  } finally {
    // a completed service's last old replicas may still be draining or stopping when a later
    // one fails: they are stopped before the lock goes, as they would have been
    await Promise.all(done.map((d) => d.result.settled()));
    await stopVerifying().catch(() => undefined);
    for (const [service, p] of proxies) {
      // servers taken out that HAProxy kept in maintenance go with a seamless reload
      await p.control.settle().catch((error: unknown) => emit({ type: "warning", service, message: `could not reload ${p.name} to drop the replicas it took out: ${error instanceof Error ? error.message : String(error)}` }));
      p.control.close();
    }
    if (heldLock === undefined) await lock.release();
  }
}

/**
 * `--verify`: traffic through the public port of every proxied HTTP service that is serving
 * already (a first deploy has nothing to compare with), from the first replacement to the
 * last drain.
 */
async function startVerifying(targets: readonly Target[], proxies: ReadonlyMap<string, ServiceProxy>, path: string, emit: EventSink, runs: VerifyRun[]): Promise<void> {
  for (const t of targets) {
    const proxy = proxies.get(t.service.name);
    if (proxy === undefined) continue;
    if (t.service.proxy.mode === "tcp") {
      emit({ type: "warning", service: t.service.name, message: `--verify sends HTTP requests; ${t.service.name} is proxied as plain TCP and is not checked` });
      continue;
    }
    const status = await proxy.control.status();
    const port = proxy.published[0];
    if (port === undefined || !status.some((x) => x.state === "ready")) {
      emit({ type: "warning", service: t.service.name, message: `--verify: ${t.service.name} has no serving replica before this rollout, so there is nothing to keep serving; not checked` });
      continue;
    }
    const host = port.hostIp === "" || port.hostIp === "0.0.0.0" ? "127.0.0.1" : port.hostIp === "::" ? "::1" : port.hostIp;
    // the doors name the replica that answered only to requests carrying this run's token
    const token = randomBytes(16).toString("hex");
    const release = await proxy.control.allowVerify(token);
    const run = startVerify({ service: t.service.name, host, port: port.hostPort, path, token });
    runs.push({ stop: () => run.stop().finally(release) });
  }
}

/**
 * A one-replica service that writes to a named volume, rolled start-first, has two replicas on
 * the same data for a moment: what a database-like app must not have. Said by --dry-run, with
 * the choice; stop-first behind a door holds requests in the gap instead of failing them.
 */
function sharedVolumeWarning(service: ServiceSpec, replaces: boolean): string | undefined {
  const update = service.deploy.update;
  if (!replaces || service.deploy.replicas !== 1 || update.order !== "start-first") return undefined;
  const written = service.volumes.filter((m) => m.type === "volume" && !m.readOnly);
  if (written.length === 0) return undefined;
  const volumes = written.map((m) => (m.type === "volume" ? m.source : "")).join(", ");
  return `${service.name} has one replica writing to ${volumes}, and start-first runs the new replica beside the old one on the same data for a moment. If the app cannot share its data (a database, a file it locks), set services.${service.name}.deploy.update_config.order: stop-first${proxied(service) && service.proxy.mode === "http" ? " (its door holds the requests that arrive in the gap, so none fails)" : " (the service is down in the gap)"}; if it can, mount the volume read-only in one of them or ignore this.`;
}

/** One rollout per project at a time (DESIGN.md). */
function projectLock(spec: Spec, engine: Engine, mode: string, options: RolloutOptions): Promise<HeldLock> {
  return acquireProjectLock(engine, spec.project, `reroll ${mode}`, {
    ...(options.lockWaitMs === undefined ? {} : { waitMs: options.lockWaitMs }),
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
}

/**
 * After a rollback, every replica must be on the last completed step (revision and
 * configuration), including ones an interrupted earlier run had already moved to the failed
 * target (this run kept them, so it had no old replica of theirs to start again). Anything
 * else is rolled there too.
 */
async function convergeToPrevious(
  spec: Spec,
  engine: Engine,
  fileService: ServiceSpec,
  failed: Required<Step>,
  options: RolloutOptions,
  emit: EventSink,
  now: () => number,
  traffic: Traffic | undefined,
): Promise<void> {
  // The failed run never completed: the top of the stack is what ran before it. When that is
  // the failed target itself (it replaced sick replicas of what runs) or may be (a record
  // without its hash), the rollback has put back all there was to put back.
  const ledger = await readLedger(engine, spec.project);
  const step = rollbackStack(ledger, fileService.name).at(-1);
  if (step === undefined || (step.revision === failed.revision && (step.specHash === undefined || step.specHash === failed.specHash))) return;
  const previous = step.revision;
  // The rollback started the old replicas again, each with the configuration it ran with.
  // When every slot runs on the previous step, that is the previous state: replacing them to
  // match the Compose file's new configuration (which came with the failed rollout) would be
  // a rollout of its own, and it may be what failed.
  const onStep = runsStep(step);
  const running = (await observeService(engine, spec.project, fileService.name)).filter((c) => c.state === "running" && c.health !== "unhealthy");
  const onPrevious = new Set(running.filter(onStep).map((c) => c.slot));
  if (running.every(onStep) && Array.from({ length: fileService.deploy.replicas }, (_, i) => i + 1).every((slot) => onPrevious.has(slot))) return;
  // the previous step's own configuration when the ledger kept it, else the file's
  const recorded = recordedConfig(ledger, fileService.name, step);
  const service = recorded === undefined ? fileService : restoreConfig(fileService, recorded);
  const runSpec = withRecordedVolumes(spec, recorded === undefined ? [] : [recorded]);
  const images = await engine.listImages([...serviceFilters(spec.project, service.name), `${LABEL_REVISION}=${previous}`]);
  const image = images[0] === undefined ? undefined : await engine.inspectImage(images[0].id);
  if (image === undefined) return;
  const hash = specHash(runSpec, service, image);
  const ctx: ExecuteContext = {
    engine,
    spec: runSpec,
    service,
    image,
    revision: previous,
    hash,
    update: service.deploy.rollback,
    rollbackConfig: service.deploy.rollback,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    now,
    emit,
    ...(traffic === undefined ? {} : { traffic }),
  };
  const { plan } = await planProven(runSpec, { service: service.name, revision: previous, imageId: image.id, specHash: hash, replicas: service.deploy.replicas, update: service.deploy.rollback }, ctx);
  if (isConverged(plan)) return;
  emit({ type: "rollback-start", service: service.name, to: [previous], reason: whyNotConverged(plan) });
  const result = await executePlan(plan, ctx);
  if (result.outcome !== "completed") {
    throw new RerollError("E_ROLLBACK_FAILED", `Returning ${service.name} to r${previous} failed: ${result.failure?.message ?? result.outcome}.`, {
      kind: "inconsistent",
      hint: "Check `reroll status`, fix the cause, then run `reroll rollback` again.",
    });
  }
  await result.finish();
}

/** Makes the running containers match the Compose file and the newest build. */
export async function up(spec: Spec, engine: Engine, options: UpOptions = {}): Promise<RolloutResult> {
  const services = selectServices(spec, options.services);
  // what is rolled: the file's services, with the image: a --bump edited
  let rollSpec = spec;
  let rolling = services;
  /** what a dry run's --bump would edit, per service, for its plan */
  const bumpNotes = new Map<string, string>();
  const emit: EventSink = options.onEvent ?? (() => undefined);
  const bumped: { path: string; original: Buffer }[] = [];
  // Without a build, the newest revisions are read while the lock is taken (a daemon round
  // trip or two each); read again if the lock had to wait, since the holder may have built.
  const readsEarly = options.bump === undefined && (options.noBuild === true || options.dryRun === true);
  const early = new Map(readsEarly ? services.filter((s) => s.build !== undefined).map((s) => [s.name, newestRevision(engine, spec.project, s.name)] as const) : []);
  for (const read of early.values()) read.catch(() => undefined); // awaited below, unless the lock fails first
  // The lock covers the whole transaction: the --bump edit and the build too.
  const lock = options.dryRun === true ? undefined : await projectLock(spec, engine, "up", options);
  if (lock?.waited === true) early.clear();
  try {
    // before the --bump edit and the build: a missing external volume is an input error
    await checkExternalVolumes(engine, spec, services);
    if (options.bump !== undefined) {
      const ref = parseImageRef(options.bump, "--bump");
      if (ref.tag === undefined) throw new RerollError("E_USAGE", `--bump takes IMAGE:TAG, got "${options.bump}".`, { hint: "For example: --bump nginx:1.19." });
      const users = servicesUsing(services, ref.name);
      const wanted = repositoryKey(ref);
      const imageUsers = services.filter((s) => {
        if (s.build !== undefined) return false;
        const own = tryParseImageRef(s.image);
        return typeof own !== "string" && repositoryKey(own) === wanted;
      });
      if (users.length === 0 && imageUsers.length === 0) {
        throw new RerollError("E_IMAGE_NOT_FOUND", `No Dockerfile FROM line and no image: of the services being rolled uses ${ref.name}.`, {
          hint: "Name the image as the FROM lines or image: values do.",
        });
      }
      if (imageUsers.length > 0) {
        // services that run an image as is: the tag in their image: value (compose-image.ts)
        const original = readFileSync(spec.file);
        const { bumpComposeImages } = await import("../bump/compose-image.js");
        const { text, edits } = await bumpComposeImages(original.toString("utf8"), spec.file, imageUsers.map((s) => s.name), ref);
        const bumpedImage = new Map(edits.map((e) => [e.service, e.to]));
        const withBump = (s: ServiceSpec): ServiceSpec => (bumpedImage.has(s.name) ? { ...s, image: bumpedImage.get(s.name)! } : s);
        rolling = services.map(withBump);
        rollSpec = { ...spec, services: spec.services.map(withBump) };
        for (const e of edits) bumpNotes.set(e.service, `bump    ${spec.file}: services.${e.service}.image ${e.from} → ${e.to} (a dry run writes nothing)`);
        if (options.dryRun !== true && edits.length > 0) {
          await writeFileAtomic(spec.file, Buffer.from(text, "utf8"));
          bumped.push({ path: spec.file, original });
        }
      }
      for (const s of users) {
        const path = s.build!.dockerfile;
        const original = readFileSync(path);
        // loaded when used: the tag policy (semver) costs start-up time every other run would pay
        const { bump } = await import("../bump/bump.js");
        const result = await bump({ dockerfile: path, image: ref.name, to: ref.tag, dryRun: options.dryRun === true });
        if (result.written) bumped.push({ path, original });
        const changes = result.changes.map((c) => `line ${c.line} ${c.from} → ${c.to}`).join(", ");
        if (changes !== "") bumpNotes.set(s.name, `bump    ${path}: ${changes} (a dry run writes nothing)`);
      }
    }

    const targets: Target[] = [];
    const unbuilt: ServiceOutcome[] = [];
    const buildable = services.filter((s) => s.build !== undefined);
    if (buildable.length > 0 && options.noBuild !== true && options.dryRun !== true) {
      const { build } = await import("../build/build.js");
      const built = await build(spec, engine, {
        services: buildable.map((s) => s.name),
        ...(options.parallel === undefined ? {} : { parallel: options.parallel }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        onEvent: emit,
        ...(options.now === undefined ? {} : { now: options.now }),
      });
      for (const image of built.images) {
        const details = await engine.inspectImage(image.imageId);
        if (details !== undefined) targets.push({ service: services.find((s) => s.name === image.service)!, image: details, revision: image.revision });
      }
    } else {
      const ledger = buildable.length > 0 ? readLedger(engine, spec.project) : undefined;
      ledger?.catch(() => undefined); // awaited below, unless a read before it fails
      // a dry run of up plans with the newest build, as --no-build rolls it, and says so
      const notBuilding = options.dryRun === true && options.noBuild !== true;
      for (const s of buildable) {
        const newest = await (early.get(s.name) ?? newestRevision(engine, spec.project, s.name));
        if (newest === undefined && notBuilding) {
          const proxyChange = await plannedProxyChange(engine, spec, s);
          const replicas = `${s.deploy.replicas} replica${s.deploy.replicas === 1 ? "" : "s"}`;
          unbuilt.push({
            service: s.name,
            revision: 0,
            outcome: "unchanged",
            plan: [
              `${s.name}: not built yet: reroll up builds it first (a dry run does not build), then starts ${replicas} of its first revision`,
              ...(proxyChange === undefined ? [] : [`  proxy   ${proxyChange}`]),
            ].join("\n"),
          });
          continue;
        }
        if (newest === undefined) {
          throw new RerollError("E_NO_BUILD", `${s.name} has no built revision yet.`, { hint: "Run reroll up without --no-build, or reroll build first." });
        }
        // The newest build is not always what the Dockerfile says: a --bump that failed was
        // reverted, but its build stays. Rolling it again may be meant (a passing failure).
        const last = [...((await ledger!).services[s.name] ?? [])].reverse().find((e) => e.revision === newest.revision);
        if (last !== undefined && (last.outcome === "rolled-back" || last.outcome === "failed")) {
          emit({
            type: "warning",
            service: s.name,
            message:
              `r${newest.revision}, ${s.name}'s newest build,${notBuilding ? " which this plan rolls," : ""} was ${last.outcome === "failed" ? "a failed rollout" : "rolled back"} the last time` +
              `${last.detail === undefined ? "" : ` (${last.detail})`}; ` +
              (notBuilding ? "reroll up builds what the Dockerfile says now first" : "rolling it again. reroll up without --no-build builds what the Dockerfile says now"),
          });
        }
        targets.push({
          service: s,
          ...newest,
          ...(notBuilding
            ? { dryRunNotes: [`build   not run in a dry run: this plans r${newest.revision}, the newest build; reroll up builds first, and a changed Dockerfile or context makes a new revision`] }
            : {}),
        });
      }
    }
    for (const s of rolling.filter((x) => x.build === undefined)) targets.push(await imageOnlyTarget(engine, rollSpec, s));
    const ordered = rolling
      .map((s) => targets.find((t) => t.service.name === s.name)!)
      .filter(Boolean)
      .map((t) => {
        const note = options.dryRun === true ? bumpNotes.get(t.service.name) : undefined;
        return note === undefined ? t : { ...t, dryRunNotes: [note, ...(t.dryRunNotes ?? [])] };
      });
    const result = await rollTargets(rollSpec, engine, ordered, "up", options, lock);
    if (unbuilt.length === 0) return result;
    const planned = [...result.services, ...unbuilt];
    return { ...result, services: services.flatMap((s) => planned.filter((o) => o.service === s.name)) };
  } catch (error) {
    // --bump is one transaction: whatever failed, the Dockerfile describes what runs.
    for (const { path, original } of bumped) await writeFileAtomic(path, original);
    if (bumped.length > 0 && isRerollError(error)) {
      const files = [...new Set(bumped.map((b) => b.path))];
      const what = files.every((f) => f !== spec.file) ? "The Dockerfile edit was" : `The --bump edit of ${files.join(", ")} was`;
      // a build that failed because the image --bump names is nowhere (not on the daemon, not
      // pullable) failed on the input: nothing was built and the edit is undone
      const missing = error.code === "E_BUILD_FAILED" && (await engine.inspectImage(options.bump!).catch(() => undefined)) === undefined;
      throw new RerollError(missing ? "E_IMAGE_NOT_FOUND" : error.code, `${missing ? `${options.bump} is not on the Docker daemon and could not be pulled. ` : ""}${error.message} ${what} reverted.`, {
        kind: missing ? "input" : error.kind,
        problems: error.problems,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
        cause: error.cause,
      });
    }
    throw error;
  } finally {
    await lock?.release();
  }
}

/**
 * Where `rollback` goes, per service: the last revision whose rollout completed before the
 * current one (or `to`), with its image. The services are read at once; a failure is the
 * first service's in the Compose order, whichever answered first.
 */
async function rollbackTargets(spec: Spec, engine: Engine, services: readonly ServiceSpec[], to: number | undefined): Promise<Target[]> {
  const ledger = readLedger(engine, spec.project);
  ledger.catch(() => undefined); // awaited by each service's read
  const read = async (service: ServiceSpec): Promise<Target> => {
    const [entries, observed] = await Promise.all([ledger, observeService(engine, spec.project, service.name)]);
    const running = observed.filter((c) => c.state === "running").map((c) => c.revision);
    const stack = rollbackStack(entries, service.name);
    const current = stack.at(-1);
    // --to N: N as the newest completed rollout of it ran, on the stack or left by a rollback
    const toStep = (n: number): Step => {
      const completed = [...(entries.services[service.name] ?? [])].reverse().find((e) => e.outcome === "completed" && e.revision === n);
      return stack.findLast((s) => s.revision === n) ?? { revision: n, ...(completed?.specHash === undefined ? {} : { specHash: completed.specHash }) };
    };
    // Replicas off the last completed step (a rollout paused, interrupted or killed half-way)
    // are what is undone: rollback goes to that step, as it goes to the one below it when the
    // last completed rollout is what runs.
    const away = current === undefined ? [] : observed.filter((c) => (c.state === "running" || c.state === "restarting") && !runsStep(current)(c));
    const step = to !== undefined ? toStep(to) : away.length > 0 ? current : stack.at(-2);
    if (step === undefined) {
      // others completed once, but after the rollbacks that left them: only --to goes there
      const others = completedRevisions(entries, service.name).filter((r) => r !== current?.revision);
      throw new RerollError("E_NO_PREVIOUS", `${service.name} has no earlier completed revision to go back to${running.length > 0 ? ` (running: ${[...new Set(running)].map((r) => `r${r}`).join(", ")})` : ""}.`, {
        hint:
          others.length === 0
            ? "See reroll history SERVICE, and pass --to REVISION."
            : `Earlier rollbacks left ${others.map((r) => `r${r}`).join(", ")}; to roll one out again, pass --to REVISION (see reroll history ${service.name}).`,
      });
    }
    const revision = step.revision;
    const images = await engine.listImages([...serviceFilters(spec.project, service.name), `${LABEL_REVISION}=${revision}`]);
    const entry = (entries.services[service.name] ?? []).find((e) => e.revision === revision);
    const id = images[0]?.id ?? entry?.imageId;
    if (id === undefined) {
      // neither an image nor a rollout ever had that number: a typo, most likely
      const known = revisionNumbers(await engine.listImages(serviceFilters(spec.project, service.name)), entries.services[service.name] ?? []);
      throw new RerollError("E_REVISION_UNKNOWN", `${service.name} has no revision r${revision}${known.length > 0 ? `; its revisions are ${known.map((r) => `r${r}`).join(", ")}` : ": it has never been built or rolled out on this daemon"}.`, {
        hint: "See reroll history SERVICE, and pass one of its revisions to --to.",
      });
    }
    const image = await engine.inspectImage(id);
    if (image === undefined) {
      throw new RerollError("E_REVISION_GONE", `The image of ${service.name} r${revision} is no longer on the daemon.`, {
        hint: "Raise x-reroll.history to keep more revisions; rebuild that revision to go back to it.",
      });
    }
    // the replicas as that step ran them (records from before reroll kept configurations: the file's)
    const recorded = recordedConfig(entries, service.name, step);
    return {
      service: recorded === undefined ? service : restoreConfig(service, recorded),
      image,
      revision,
      ...(recorded === undefined ? {} : { volumes: recorded.volumes }),
      ...rollbackFrom(step, away.length > 0 ? away : current === undefined ? [] : [current]),
    };
  };
  const settled = await Promise.allSettled(services.map(read));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed !== undefined) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<Target>).value);
}

/** What a rollback to `step` goes back from: the revisions (or configurations of it) it replaces. */
function rollbackFrom(step: Step, from: readonly { revision: number; specHash?: string }[]): Pick<Target, "rollbackFrom" | "configOnly"> {
  const others = from.filter((f) => f.revision !== step.revision).map((f) => f.revision);
  if (others.length > 0) return { rollbackFrom: Math.max(...others) };
  return from.some((f) => f.specHash !== undefined && step.specHash !== undefined && f.specHash !== step.specHash) ? { configOnly: true } : {};
}

/** What a completed rollback's ledger entry says it did. */
function rollbackDetail(t: Target): string {
  if (t.configOnly === true) return `reroll rollback of r${t.revision}'s configuration`;
  return `reroll rollback${t.rollbackFrom === undefined ? "" : ` from r${t.rollbackFrom}`}`;
}

/** The revision numbers a service's images and rollouts carry, lowest first. */
function revisionNumbers(images: readonly { labels: Readonly<Record<string, string>> }[], rollouts: readonly { revision: number }[]): number[] {
  const numbers = [...images.map((i) => Number(i.labels[LABEL_REVISION])), ...rollouts.map((e) => e.revision)].filter((n) => Number.isInteger(n) && n > 0);
  return [...new Set(numbers)].sort((a, b) => a - b);
}

/** The spec a rollback runs under: the top-level volumes its recorded configurations name resolve as they did. */
function withRecordedVolumes(spec: Spec, records: readonly { readonly volumes?: Spec["volumes"] }[]): Spec {
  const volumes = Object.assign({}, ...records.map((r) => r.volumes ?? {})) as Spec["volumes"];
  return Object.keys(volumes).length === 0 ? spec : { ...spec, volumes: { ...spec.volumes, ...volumes } };
}

/** Goes back to the last revision whose rollout completed before the current one (or `to`). */
export async function rollback(spec: Spec, engine: Engine, options: RollbackOptions = {}): Promise<RolloutResult> {
  const services = selectServices(spec, options.services);
  if (options.dryRun === true) {
    const targets = await rollbackTargets(spec, engine, services, options.to);
    return rollTargets(withRecordedVolumes(spec, targets), engine, targets, "rollback", options);
  }
  // The targets are read while the lock is taken (a few daemon round trips), as `up --no-build`
  // does, and read again if the lock had to wait: its holder may have completed a rollout.
  const early = rollbackTargets(spec, engine, services, options.to);
  early.catch(() => undefined); // awaited below, unless the lock fails first
  const lock = await projectLock(spec, engine, "rollback", options);
  try {
    const targets = lock.waited ? await rollbackTargets(spec, engine, services, options.to) : await early;
    return await rollTargets(withRecordedVolumes(spec, targets), engine, targets, "rollback", options, lock);
  } finally {
    await lock.release();
  }
}

/** What to do after a failed rollout: the logs when there are some, more time when it ran out. */
function failureHint(paused: boolean, failure: { readonly reason: string; readonly logs: readonly string[] } | undefined): string {
  const cause = failure !== undefined && failure.logs.length > 0 ? "Fix the cause (see the last lines above)" : "Fix the cause";
  const slow =
    failure?.reason === "timeout" ? " If the replica only needs longer to start, give it that: the healthcheck's start_period, or --timeout DURATION." : "";
  return paused ? `${cause} and run reroll up again, or reroll rollback.${slow}` : `${cause}, then run reroll up again.${slow}`;
}
