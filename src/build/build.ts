import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import pLimit from "p-limit";
import { analyzeBaseImages } from "../core/dockerfile/base-images.js";
import { parseDockerfile } from "../core/dockerfile/parse.js";
import { labelInstruction } from "../core/dockerfile/quote.js";
import { isRerollError, RerollError } from "../core/errors.js";
import type { EventSink, RerollEvent } from "../core/events.js";
import { parseImageRef, repositoryKey } from "../core/image-ref.js";
import {
  LABEL_BASE_IMAGES,
  LABEL_BUILD_ID,
  LABEL_GIT_COMMIT,
  LABEL_PROJECT,
  LABEL_REVISION,
  LABEL_SERVICE,
  serviceFilters,
} from "../core/labels.js";
import type { ServiceSpec, Spec } from "../core/spec/types.js";
import type { BuildStreamMessage, Engine, ImageSummary, Labeller } from "../engine/port.js";
import { acquireLock, type HeldLock } from "../rollout/lock.js";
import { createBuildContext } from "./context.js";
import { TarWriter } from "./tar.js";

export const DEFAULT_BUILD_PARALLELISM = 2;
export const BUILD_LAST_LINES = 20;
/** how long a second build of the same service waits to number its revision */
export const REVISION_LOCK_WAIT_MS = 120_000;
export const REVISION_LOCK_STALE_MS = 300_000;

export interface BuildOptions {
  /** services to build; default: every service with `build:` */
  readonly services?: readonly string[];
  readonly parallel?: number;
  readonly noCache?: boolean;
  readonly pull?: boolean;
  readonly signal?: AbortSignal;
  readonly onEvent?: EventSink;
  readonly now?: () => number;
}

export interface BuiltImage {
  readonly service: string;
  /** the image to pin: never a tag that can move */
  readonly imageId: string;
  readonly revision: number;
  /** true when the build produced an image reroll already knew, so its revision stands */
  readonly reused: boolean;
  readonly tags: readonly string[];
}

export interface BuildResult {
  readonly images: readonly BuiltImage[];
}

type KnownImage = { readonly revision: number; readonly image: ImageSummary };

interface RevisionState {
  /** the service's images that carry a revision label */
  readonly images: readonly KnownImage[];
  /** the highest revision on any of its images or containers */
  readonly highest: number;
  /** image ids that any container on the daemon (reroll's or not, in any state) uses */
  readonly inUse: ReadonlySet<string>;
  /** labeller containers of this service left by builds that died before removing them */
  readonly strayLabellers: readonly string[];
}

/**
 * Labeller containers are named per build (`<project>-<service>-reroll-labeller-<unique>`), so
 * one is made before the revision lock is held. A live build removes its own within seconds;
 * one this old was left by a build that died, and the next build of the service removes it.
 * (A labeller carries no labels of its own: its commit would copy them onto the image.)
 */
const LABELLER_STALE_MS = 10 * 60_000;

function labellerPrefix(project: string, service: string): string {
  return `${project}-${service}-reroll-labeller-`;
}

function labellerName(project: string, service: string): string {
  return `${labellerPrefix(project, service)}${process.pid.toString(36)}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

/** The revision labels of a service's images and containers: where revision numbers come from. */
async function revisionState(engine: Engine, project: string, service: string, nowMs = Date.now(), ownLabeller?: string): Promise<RevisionState> {
  const [listed, containers] = await Promise.all([engine.listImages([...serviceFilters(project, service), LABEL_REVISION]), engine.listContainers()]);
  const images = listed.flatMap((image) => {
    const revision = Number(image.labels[LABEL_REVISION]);
    return Number.isInteger(revision) ? [{ revision, image }] : [];
  });
  const containerRevisions = containers
    .filter((c) => c.labels[LABEL_PROJECT] === project && c.labels[LABEL_SERVICE] === service)
    .map((c) => Number(c.labels[LABEL_REVISION]))
    .filter((n) => Number.isInteger(n));
  const prefix = labellerPrefix(project, service);
  return {
    images,
    highest: Math.max(0, ...images.map((i) => i.revision), ...containerRevisions),
    inUse: new Set(containers.map((c) => c.imageId)),
    strayLabellers: containers
      .filter((c) => c.state === "created" && c.createdMs !== undefined && nowMs - c.createdMs > LABELLER_STALE_MS)
      .filter((c) => c.names.some((n) => n.startsWith(prefix)) && (ownLabeller === undefined || !c.names.includes(ownLabeller)))
      .map((c) => c.id),
  };
}

/** The images beyond the newest `history` revisions, counting `current` (which is kept). */
function revisionsBeyondHistory(images: readonly KnownImage[], current: { id: string; revision: number }, history: number): KnownImage[] {
  const others = images.filter((i) => i.image.id !== current.id).sort((a, b) => b.revision - a.revision);
  return others.slice(Math.max(0, history - 1));
}

/**
 * Removes old revision images (their tags, then the image), never one a container uses.
 * `moving` are tags being put on the new image meanwhile (`:latest`): never removed by name,
 * which could take them off the new image.
 */
async function removeRevisions(
  engine: Engine,
  service: string,
  old: readonly KnownImage[],
  inUse: ReadonlySet<string>,
  moving: ReadonlySet<string> = new Set(),
): Promise<RerollEvent[]> {
  return Promise.all(
    old.map(async ({ revision, image }): Promise<RerollEvent> => {
      if (inUse.has(image.id)) return { type: "image-kept", service, revision, imageId: image.id, reason: "a container uses it" };
      try {
        for (const tag of image.repoTags) if (!moving.has(tag)) await engine.removeImage(tag);
        if (image.repoTags.length === 0 || (await engine.inspectImage(image.id)) !== undefined) await engine.removeImage(image.id);
        return { type: "image-removed", service, revision, imageId: image.id };
      } catch (error) {
        return { type: "image-kept", service, revision, imageId: image.id, reason: (error as Error).message };
      }
    }),
  );
}

function tagsFor(service: ServiceSpec, revision: number): { repository: string; tag: string }[] {
  const ref = parseImageRef(service.image, `image of service ${service.name}`);
  return [
    { repository: ref.name, tag: ref.tag ?? "latest" },
    { repository: ref.name, tag: `r${revision}` },
  ];
}

function selectServices(spec: Spec, names: readonly string[] | undefined): ServiceSpec[] {
  if (names === undefined || names.length === 0) {
    const buildable = spec.services.filter((s) => s.build !== undefined);
    if (buildable.length === 0) {
      throw new RerollError("E_NOTHING_TO_BUILD", `No service in ${spec.file} has a build: section.`, {
        hint: "Add build: (a context directory) to the services reroll should build.",
      });
    }
    return buildable;
  }
  const problems: string[] = [];
  const chosen: ServiceSpec[] = [];
  for (const name of names) {
    const service = spec.services.find((s) => s.name === name);
    if (service === undefined) problems.push(`${name}: no such service (services: ${spec.services.map((s) => s.name).join(", ")})`);
    else if (service.build === undefined) problems.push(`${name}: has no build: section (it runs the image ${service.image} as is)`);
    else if (!chosen.includes(service)) chosen.push(service);
  }
  if (problems.length > 0) {
    throw new RerollError("E_SERVICE_UNKNOWN", "Some services cannot be built; nothing was built.", {
      problems,
      hint: "Name services that have a build: section in the Compose file.",
    });
  }
  return chosen;
}

/** Base-image references a service's Dockerfile resolves to with its build args (best effort). */
function baseImageRefs(service: ServiceSpec): string[] {
  try {
    const parsed = parseDockerfile(readFileSync(service.build!.dockerfile).toString("latin1"));
    const refs = analyzeBaseImages(parsed, service.build!.args).froms.flatMap((f) => (f.kind === "image" ? [f.expanded.text] : []));
    return [...new Set(refs)];
  } catch {
    return [];
  }
}

/** Services whose Dockerfile builds FROM another service's image wait for that build. */
function dependencies(services: readonly ServiceSpec[]): Map<string, string[]> {
  const byRepository = new Map(services.map((s) => [repositoryKey(parseImageRef(s.image)), s.name]));
  const deps = new Map<string, string[]>();
  for (const service of services) {
    const mine = new Set<string>();
    for (const ref of baseImageRefs(service)) {
      try {
        const other = byRepository.get(repositoryKey(parseImageRef(ref)));
        if (other !== undefined && other !== service.name) mine.add(other);
      } catch {
        // not a reference reroll can read; Docker will say what is wrong with it
      }
    }
    deps.set(service.name, [...mine]);
  }
  const visiting = new Set<string>();
  const visited = new Set<string>();
  const visit = (name: string, path: string[]): void => {
    if (visited.has(name)) return;
    if (visiting.has(name)) {
      throw new RerollError("E_BUILD_CYCLE", `Services build FROM each other in a cycle: ${[...path, name].join(" → ")}.`, {
        hint: "A service's Dockerfile can build on another service's image, but not in a circle.",
      });
    }
    visiting.add(name);
    for (const dep of deps.get(name) ?? []) visit(dep, [...path, name]);
    visiting.delete(name);
    visited.add(name);
  };
  for (const name of deps.keys()) visit(name, []);
  return deps;
}

async function gitCommit(dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)("git", ["-C", dir, "rev-parse", "HEAD"], { timeout: 5_000 });
    const commit = stdout.trim();
    return /^[0-9a-f]{40,64}$/.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

export interface StreamOutcome {
  imageId: string | undefined;
  error: string | undefined;
  step: string | undefined;
  lastLines: string[];
}

/** Reads the build stream as data: steps, output, progress, the image id, and any error line. */
export async function followBuild(service: string, messages: AsyncIterable<BuildStreamMessage>, emit: EventSink): Promise<StreamOutcome> {
  const outcome: StreamOutcome = { imageId: undefined, error: undefined, step: undefined, lastLines: [] };
  let partial = "";
  const remember = (line: string) => {
    outcome.lastLines.push(line);
    if (outcome.lastLines.length > BUILD_LAST_LINES) outcome.lastLines.shift();
  };
  for await (const message of messages) {
    if (message.error !== undefined || message.errorDetail !== undefined) {
      // The daemon reports a failed step as a line in a 200 response: the status code says nothing.
      outcome.error = message.errorDetail?.message ?? message.error ?? "unknown build error";
      continue;
    }
    if (message.aux?.ID !== undefined) outcome.imageId = message.aux.ID;
    if (message.stream !== undefined) {
      partial += message.stream;
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const raw of lines) {
        const line = raw.replace(/\r$/, "");
        const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
        if (step !== null) {
          outcome.step = `step ${step[1]}/${step[2]}: ${step[3]}`;
          emit({ type: "build-step", service, step: Number(step[1]), total: Number(step[2]), instruction: step[3]! });
          continue;
        }
        const built = /^Successfully built ([0-9a-f]{12,64})$/.exec(line);
        if (built !== null && outcome.imageId === undefined) outcome.imageId = built[1];
        remember(line);
        emit({ type: "build-output", service, text: line });
      }
    } else if (message.status !== undefined) {
      emit({
        type: "build-progress",
        service,
        status: message.status,
        ...(message.id === undefined ? {} : { id: message.id }),
        ...(message.progress === undefined ? {} : { progress: message.progress }),
      });
    }
  }
  if (partial !== "") remember(partial);
  return outcome;
}


/**
 * The context that labels a built image: `FROM <id>` and one LABEL instruction, so the
 * labelled image adds no layer and costs a single builder step.
 */
function labelContext(imageId: string, labels: Readonly<Record<string, string>>): Readable {
  const tar = new TarWriter();
  const dockerfile = `FROM ${imageId}\n${labelInstruction(labels)}\n`;
  void tar.add({ name: "Dockerfile", type: "file", mode: 0o644, mtime: new Date() }, dockerfile).then(() => tar.finish());
  return tar.stream;
}

/**
 * Builds services' images through the daemon, in parallel where independent. Each new image
 * gets the service's next revision (numbered under a lock in Docker, so concurrent builds
 * sharing a daemon agree); an image reroll already knows keeps its revision. Old revisions
 * beyond `x-reroll.history` are removed unless a container uses them.
 */
/**
 * The daemon refuses to start a build it cannot read (HTTP 400): a Dockerfile it cannot
 * parse (`FROMM`, a `COPY` without arguments, an empty file), a target it does not have.
 * That is the input's fault and nothing was built: an input error naming the file and the
 * daemon's words (its line number among them), not a failure of reroll's.
 */
function refusedBuild(service: string, dockerfile: string, error: unknown): RerollError | undefined {
  if ((error as { statusCode?: number } | undefined)?.statusCode !== 400) return undefined;
  const said = String((error as Error).message).replace(/^\(HTTP code 400\)\s*/, "");
  return new RerollError("E_DOCKERFILE_INVALID", `${service}'s Dockerfile ${dockerfile} cannot be built: ${said}.`, {
    kind: "input",
    cause: error,
    hint: "Fix what the daemon names in that Dockerfile; nothing was built.",
  });
}

export async function build(spec: Spec, engine: Engine, options: BuildOptions = {}): Promise<BuildResult> {
  const services = selectServices(spec, options.services);
  const emit: EventSink = options.onEvent ?? (() => undefined);
  const now = options.now ?? Date.now;
  const deps = dependencies(services);
  const limit = pLimit(Math.max(1, options.parallel ?? DEFAULT_BUILD_PARALLELISM));
  const failures: string[] = [];
  const aborted = (): boolean => options.signal?.aborted === true;
  const tasks = new Map<string, Promise<BuiltImage | undefined>>();

  const buildOne = async (service: ServiceSpec): Promise<BuiltImage> => {
    const started = now();
    const b = service.build!;
    emit({ type: "build-start", service: service.name, context: b.context, dockerfile: b.dockerfile });
    const context = await createBuildContext({ context: b.context, dockerfile: b.dockerfile });
    // What labelling needs but the build does not: looked up while the daemon builds.
    const bases = Promise.all(baseImageRefs(service).map(async (ref) => ({ ref, id: (await engine.inspectImage(ref))?.id ?? null })));
    // git is asked once the context is sent: starting it (~8 ms of this thread) would delay the request
    const commit = context.done.then(
      () => gitCommit(b.context),
      () => undefined,
    );
    bases.catch(() => undefined);
    let outcome: StreamOutcome;
    try {
      outcome = await followBuild(
        service.name,
        engine.build({
          context: context.stream,
          recycle: context.recycle,
          dockerfile: context.dockerfile,
          tags: [],
          buildArgs: b.args,
          // No labels here: the classic builder turns each one into a step with its own
          // container and commit (~85 ms each). They go on in one LABEL step below.
          labels: {},
          ...(b.target === undefined ? {} : { target: b.target }),
          noCache: options.noCache === true,
          pull: options.pull === true,
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        }),
        emit,
      );
    } catch (error) {
      // A context that could not be read explains a failed request better than the request does.
      context.stream.destroy();
      const contextFailure = await Promise.race([
        context.done.then(
          () => undefined,
          (failure: unknown) => failure,
        ),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1_000).unref()),
      ]);
      throw contextFailure instanceof RerollError ? contextFailure : (refusedBuild(service.name, b.dockerfile, error) ?? error);
    }
    await context.done;
    emit({ type: "build-context-sent", service: service.name, files: context.stats.files, bytes: context.stats.bytes });
    if (outcome.error !== undefined || outcome.imageId === undefined) {
      const message = outcome.error ?? "the daemon ended the build without reporting an image";
      emit({
        type: "build-failed",
        service: service.name,
        message,
        ...(outcome.step === undefined ? {} : { step: outcome.step }),
        lastLines: outcome.lastLines,
      });
      throw new RerollError(
        "E_BUILD_FAILED",
        `Building ${service.name} failed${outcome.step === undefined ? "" : ` at ${outcome.step}`}: ${message}`,
        {
          kind: "failed",
          problems: outcome.lastLines.length === 0 ? [] : [`last lines of ${service.name}'s build:`, ...outcome.lastLines.map((l) => `  ${l}`)],
          hint: buildFailureHint(outcome.step, message, options.pull === true),
        },
      );
    }
    // the build's last message names the image by its full id; only an older daemon's
    // "Successfully built <short id>" needs a look
    const fullId = /^sha256:[0-9a-f]{64}$/.test(outcome.imageId) ? outcome.imageId : (await engine.inspectImage(outcome.imageId))?.id;
    if (fullId === undefined) throw new RerollError("E_BUILD_FAILED", `The image ${outcome.imageId} built for ${service.name} is gone.`, { kind: "failed" });
    const builtId: string = fullId;

    // The labeller container (its own name, see LABELLER_STALE_MS) is made while the lock is
    // taken and the revisions are read, and goes while the tags are made: it is not needed
    // after the commit, nor at all when the build is an image reroll already knows.
    const ownLabeller = labellerName(spec.project, service.name);
    const labellerMade = engine.createLabeller(builtId, ownLabeller);
    labellerMade.catch(() => undefined); // awaited when labelling, or by its removal
    let labellerGone: Promise<void> | undefined;
    const dropLabeller = (): Promise<void> => (labellerGone ??= labellerMade.then((labeller) => labeller?.remove(), () => undefined));
    let lock: HeldLock;
    try {
      lock = await acquireLock(engine, {
        name: `${spec.project}-${service.name}-revision-lock`,
        project: spec.project,
        command: `reroll build ${service.name}`,
        waitMs: REVISION_LOCK_WAIT_MS,
        staleAfterMs: REVISION_LOCK_STALE_MS,
        // held only while a build is numbered and labelled: two minutes of it is a stuck build
        hint: `Another build of ${service.name} is numbering its image; when it has finished (or is gone), build again.`,
        now,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        onEvent: emit,
      });
    } catch (error) {
      await dropLabeller();
      throw error;
    }
    let pruned: RerollEvent[];
    let result: BuiltImage;
    let strays: Promise<unknown> = Promise.resolve();
    try {
      const { images, highest, inUse, strayLabellers } = await revisionState(engine, spec.project, service.name, now(), ownLabeller);
      strays = Promise.allSettled(strayLabellers.map((id) => engine.removeContainer(id, { force: true })));
      const known = images.find((i) => i.image.labels[LABEL_BUILD_ID] === builtId);
      const revision = known?.revision ?? highest + 1;
      const imageId = known !== undefined ? known.image.id : await labelBuilt(revision, await labellerMade);
      void dropLabeller();
      const tags = tagsFor(service, revision);
      // Old revisions beyond the history go while the new one is tagged: which ones is decided
      // by the numbers alone. Not before the labelling, so a failed build removes nothing.
      const old = revisionsBeyondHistory(images, { id: imageId, revision }, spec.reroll.history);
      [pruned] = await Promise.all([
        removeRevisions(engine, service.name, old, inUse, new Set(tags.map((t) => `${t.repository}:${t.tag}`))),
        Promise.all(tags.map(({ repository, tag }) => engine.tagImage(imageId, repository, tag))),
      ]);
      result = {
        service: service.name,
        imageId,
        revision,
        reused: known !== undefined,
        tags: tags.map((t) => `${t.repository}:${t.tag}`),
      };
    } finally {
      await Promise.all([dropLabeller(), strays, lock.release()]);
    }
    emit({ type: "build-done", ...result, durationMs: now() - started });
    for (const event of pruned) emit(event);
    return result;

    /** The built image with reroll's labels: a new image id, the same layers. */
    async function labelBuilt(revision: number, labeller: Labeller | undefined): Promise<string> {
      // A base the build itself pulled did not exist when it was first looked up.
      const baseImages = await Promise.all(
        (await bases).map(async (b) => (b.id !== null ? b : { ref: b.ref, id: (await engine.inspectImage(b.ref))?.id ?? null })),
      );
      const gitHead = await commit;
      const labels = {
        ...b.labels,
        [LABEL_PROJECT]: spec.project,
        [LABEL_SERVICE]: service.name,
        [LABEL_REVISION]: String(revision),
        [LABEL_BUILD_ID]: builtId,
        [LABEL_BASE_IMAGES]: JSON.stringify(baseImages),
        ...(gitHead === undefined ? {} : { [LABEL_GIT_COMMIT]: gitHead }),
      };
      // A commit of a never-started container adds the labels and nothing else, for a
      // fraction of a builder step; an image without a command (no container can be made
      // from it) is labelled by a one-step build instead.
      if (labeller !== undefined) return labeller.commit(labels);
      const labelled = await followBuild(
        service.name,
        engine.build({ context: labelContext(builtId, labels), dockerfile: "Dockerfile", tags: [], buildArgs: {}, labels: {}, noCache: false, pull: false }),
        () => undefined,
      );
      if (labelled.error !== undefined || labelled.imageId === undefined) {
        throw new RerollError("E_BUILD_FAILED", `Labelling ${service.name}'s image failed: ${labelled.error ?? "no image id"}`, { kind: "failed" });
      }
      return (await engine.inspectImage(labelled.imageId))?.id ?? labelled.imageId;
    }
  };

  const schedule = (service: ServiceSpec): Promise<BuiltImage | undefined> => {
    const existing = tasks.get(service.name);
    if (existing !== undefined) return existing;
    const after = deps.get(service.name) ?? [];
    if (after.length > 0) emit({ type: "build-queued", service: service.name, after });
    const task = (async () => {
      const prerequisites = await Promise.all(after.map((name) => schedule(services.find((s) => s.name === name)!)));
      if (prerequisites.some((p) => p === undefined)) {
        emit({ type: "build-skipped", service: service.name, reason: `${after.join(", ")} did not build` });
        return undefined;
      }
      return limit(async () => {
        if (aborted() || failures.length > 0) {
          emit({ type: "build-skipped", service: service.name, reason: aborted() ? "interrupted" : "another build failed" });
          return undefined;
        }
        try {
          return await buildOne(service);
        } catch (error) {
          if (aborted()) return undefined;
          failures.push(isRerollError(error) ? error.message : `${service.name}: ${(error as Error).message}`);
          throw error;
        }
      });
    })();
    tasks.set(service.name, task);
    return task;
  };

  const settled = await Promise.allSettled(services.map(schedule));
  if (aborted()) {
    throw new RerollError("E_INTERRUPTED", "The build was interrupted; builds in flight were cancelled.", {
      kind: "interrupted",
      hint: "Nothing else was changed. Run reroll build again to finish.",
    });
  }
  const errors = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) {
    throw new RerollError("E_BUILD_FAILED", `${errors.length} builds failed.`, {
      kind: "failed",
      problems: errors.flatMap((e) => (isRerollError(e) ? [e.message, ...e.problems] : [String(e)])),
      hint: "Fix the Dockerfiles or contexts; the previous images and containers are untouched.",
    });
  }
  return { images: settled.flatMap((s) => (s.status === "fulfilled" && s.value !== undefined ? [s.value] : [])) };
}

/**
 * Keeps the newest `x-reroll.history` revision images of a service and removes older ones,
 * never one that a container (reroll's or anyone's, in any state) still uses. `reroll build`
 * does this itself for each service it builds.
 */
export async function pruneRevisions(spec: Spec, engine: Engine, service: string, emit: EventSink): Promise<void> {
  const { images, inUse } = await revisionState(engine, spec.project, service);
  const newest = [...images].sort((a, b) => b.revision - a.revision)[0];
  if (newest === undefined) return;
  const old = revisionsBeyondHistory(images, { id: newest.image.id, revision: newest.revision }, spec.reroll.history);
  for (const event of await removeRevisions(engine, service, old, inUse)) emit(event);
}

/**
 * What to do about a failed build. A FROM step that could not fetch its image is a registry
 * or network matter (or --pull asking for one), not a Dockerfile to fix.
 */
export function buildFailureHint(step: string | undefined, message: string, pull: boolean): string {
  const untouched = "the previous images and containers are untouched";
  const fetching = /\bFROM\b/i.test(step ?? "") && /pull access denied|manifest unknown|manifest for .* not found|not found: manifest|registry|no such host|dial tcp|i\/o timeout|TLS handshake|unauthorized|denied/i.test(message);
  if (!fetching) return `Fix the Dockerfile or the context; ${untouched}.`;
  if (pull) return `--pull asks the registry for every base image, and it could not be reached or refused: build without --pull to use the images the daemon has, or check the name, docker login and the network; ${untouched}.`;
  return `The daemon does not have that base image and could not pull it: check its name and tag, docker login and the network, or build or load it into the daemon; ${untouched}.`;
}
