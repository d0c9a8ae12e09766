import { RerollError, isRerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import { isCurrent, type Batch, type ObservedContainer, type RolloutPlan } from "../core/rollout/plan.js";
import type { ServiceSpec, Spec, UpdateConfig } from "../core/spec/types.js";
import type { Engine, ImageDetails } from "../engine/port.js";
import { containerName, containerRequest, DEFAULT_STOP_GRACE_MS, effectiveHealthcheck, readinessDeadlineMs } from "./container-spec.js";
import type { Traffic } from "../proxy/traffic.js";
import { StartRefused, waitUntilReady, type ReadinessFailure, type WatchedReplica } from "./readiness.js";

/**
 * Executes a rollout plan in `parallelism` lanes: each starts a slot's new replica, waits
 * until it is healthy, then stops the old one (start-first; stop-first does it the other way
 * round) while the slot's monitor window runs beside the lane's next start. Replaced replicas
 * are stopped, not removed, until the whole run succeeds, so that going back is starting
 * them again. On a failure the failure action decides: `rollback` returns every slot
 * already replaced to its old replica with the same readiness gates.
 */

export interface ExecuteContext {
  readonly engine: Engine;
  readonly spec: Spec;
  readonly service: ServiceSpec;
  readonly image: ImageDetails;
  readonly revision: number;
  readonly hash: string;
  /** update_config for a rollout, rollback_config when going back */
  readonly update: UpdateConfig;
  readonly rollbackConfig: UpdateConfig;
  /** overrides the deadline derived from the healthcheck (--timeout) */
  readonly timeoutMs?: number;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  readonly emit: EventSink;
  /** the service's reroll-proxy, when it publishes ports: routes and drains around each replacement */
  readonly traffic?: Traffic;
}

export type ExecuteOutcome = "completed" | "rolled-back" | "paused" | "interrupted";

export interface ExecuteResult {
  readonly outcome: ExecuteOutcome;
  readonly failure?: ReadinessFailure;
  /** on completion: the replicas of the target the rollout kept or proved, which now serve the service */
  readonly serving: readonly { readonly id: string; readonly name: string }[];
  /**
   * waits for the old replicas' graceful stops still in flight (on completion, the last slots'
   * are), then removes the replaced old replicas: call once every service of the run succeeded
   */
  finish(): Promise<void>;
  /** puts the replaced old replicas back and removes the new ones: call when a later service failed */
  revert(): Promise<void>;
  /** resolves once no graceful stop is in flight any more (whatever became of them) */
  settled(): Promise<void>;
}

interface Watch {
  /** settles once the daemon answered the start (or the watch ended without one) */
  readonly started: Promise<void>;
  readonly healthy: Promise<ReadinessFailure | undefined>;
  readonly ready: Promise<ReadinessFailure | undefined>;
  abort(): void;
}

/** A slot that passed its healthy gate and whose monitor window is open. */
interface Window {
  readonly fresh: readonly Replaced[];
  readonly watch: Watch;
}

/** A promise that never settles: a fresh one per race, so no reaction piles up on a shared one. */
const never = (): Promise<never> => new Promise<never>(() => undefined);

interface Replaced {
  readonly slot: number;
  readonly fresh: ObservedContainer;
  readonly old: readonly ObservedContainer[];
}

/** A slot's new replicas as created; `refused` when the daemon refused one of them. */
interface SlotCreation {
  readonly fresh: readonly Replaced[];
  readonly refused?: unknown;
}

function observedFromCreate(id: string, name: string, revision: number, slot: number, hash: string, imageId: string): ObservedContainer {
  return { id, name, revision, slot, specHash: hash, imageId, state: "running", health: undefined };
}

/** The name an old replica steps aside to, freeing its own for a replacement of the same revision. */
const asideName = (name: string, id: string): string => `${name}-replaced-${id.slice(0, 8)}`;

/** Takes a replica out of the proxy's routes (draining it); a proxy that cannot be reached is reported, not fatal. */
async function retireReplica(ctx: ExecuteContext, c: { id: string; name: string }): Promise<void> {
  if (ctx.traffic === undefined) return;
  try {
    await ctx.traffic.retire(c);
  } catch (error) {
    ctx.emit({ type: "warning", service: ctx.service.name, message: `could not drain ${c.name} through the proxy: ${error instanceof Error ? error.message : String(error)}` });
  }
}

async function removeReplica(ctx: ExecuteContext, c: { id: string; name: string }, cause: string): Promise<void> {
  await retireReplica(ctx, c);
  await ctx.engine.removeContainer(c.id, { force: true });
  ctx.emit({ type: "replica-remove", service: ctx.service.name, name: c.name, cause });
}

function reportReplicaFailure(ctx: ExecuteContext, failure: ReadinessFailure): void {
  if (failure.reason === "interrupted") return;
  ctx.emit({ type: "replica-failed", service: ctx.service.name, name: failure.name, reason: failure.reason, message: failure.message, logs: failure.logs, ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }) });
}

export async function executePlan(plan: RolloutPlan, ctx: ExecuteContext): Promise<ExecuteResult> {
  const { engine, service } = ctx;
  const health = effectiveHealthcheck(service, ctx.image);
  const aborted = (): boolean => ctx.signal?.aborted === true;
  const replaced: Replaced[] = [];
  /** slots whose new replica became ready: only their old replicas may be removed at the end */
  const doneSlots = new Set<number>();
  const batchOld = new Set(plan.batches.flatMap((b) => b.replaces.map((c) => c.id)));
  let failures = 0;

  /** old replicas renamed `<name>-replaced-<id>` to free their name for a replacement: id → name */
  const steppedAside = new Map<string, string>();
  /**
   * A container's name as `docker ps` shows it now: an old replica that stepped aside for its
   * replacement goes by its aside name until it takes its own back, so that a configuration
   * change on the same revision does not report "r1-1 stopping (replaced by r1-1)".
   */
  const nameOf = (c: { id: string; name: string }): { id: string; name: string } => {
    const own = steppedAside.get(c.id);
    return own === undefined ? c : { id: c.id, name: asideName(own, c.id) };
  };
  /** Graceful stops in flight, by container id: they overlap the next starts, as in Swarm. */
  const stopping = new Map<string, Promise<void>>();
  const graceSeconds = Math.ceil((service.stopGracePeriodMs ?? DEFAULT_STOP_GRACE_MS) / 1000);
  /** replicas whose stop ran out its whole grace period: Docker killed them (see `finish`) */
  const killed: string[] = [];
  const stop = (c: ObservedContainer, cause: string): Promise<void> => {
    const existing = stopping.get(c.id);
    if (existing !== undefined) return existing;
    const done = (async () => {
      // the proxy stops routing to it and waits for its in-flight requests first
      await retire(c);
      ctx.emit({ type: "replica-stop", service: service.name, name: nameOf(c).name, cause });
      const asked = ctx.now();
      await engine.stopContainer(c.id, graceSeconds);
      // Docker sends SIGKILL when the grace period ends: a stop that took that long was one
      if (c.state === "running" && ctx.now() - asked >= graceSeconds * 1000) killed.push(nameOf(c).name);
    })();
    stopping.set(c.id, done);
    done.catch(() => undefined);
    return done;
  };
  /** Waits for the graceful stops of these containers (all when omitted). */
  const stopped = async (containers?: readonly ObservedContainer[]): Promise<void> => {
    const ids = containers === undefined ? [...stopping.keys()] : containers.map((c) => c.id);
    await Promise.all(ids.map((id) => stopping.get(id)).filter((p) => p !== undefined));
  };
  const retire = (c: { id: string; name: string }): Promise<void> => retireReplica(ctx, nameOf(c));
  const remove = (c: { id: string; name: string }, cause: string): Promise<void> => removeReplica(ctx, nameOf(c), cause);
  /**
   * A replica that may be serving or working goes as an old replica does: drained, then its
   * stop signal and grace period, never killed outright; then it is removed. (Docker answers
   * a stop of a container that is not running at once.)
   */
  const stopAndRemove = async (c: ObservedContainer, cause: string): Promise<void> => {
    if (c.state === "running" || c.state === "restarting") await stop(c, cause);
    await remove(c, cause);
  };
  /**
   * Gives old replicas that stepped aside their names back, once the replacements holding
   * those names are gone (a rollback): what runs afterwards is named as before the run.
   */
  const takeNamesBack = async (olds: readonly { id: string }[]): Promise<void> => {
    for (const old of olds) {
      const name = steppedAside.get(old.id);
      if (name === undefined) continue;
      const from = asideName(name, old.id);
      steppedAside.delete(old.id);
      // a name still taken (a replacement that could not be removed) leaves the old one as it is
      const renamed = await engine.renameContainer(old.id, name).then(
        () => true,
        () => false,
      );
      if (renamed) ctx.emit({ type: "replica-rename", service: service.name, name, from });
      else steppedAside.set(old.id, name);
    }
  };

  /**
   * Creates a slot's new replicas (not started). A name still held by the replica it replaces
   * (same revision, new configuration) is freed by renaming that one aside, still serving.
   */
  const createSlot = async (batch: Batch): Promise<SlotCreation> => {
    const creating = await Promise.allSettled(
      batch.slots.map(async (slot): Promise<Replaced> => {
        const request = containerRequest(ctx.spec, service, ctx.image, ctx.revision, slot, ctx.hash);
        let created = await engine.createContainer(request);
        if ("conflict" in created) {
          const holder = await engine.inspectContainer(request.name);
          if (holder !== undefined && batchOld.has(holder.id)) {
            // the replica this one replaces has its name (same revision, new configuration):
            // it steps aside, still serving, and is stopped and removed by id as usual
            await engine.renameContainer(holder.id, asideName(request.name, holder.id));
            steppedAside.set(holder.id, request.name);
          } else {
            // a leftover of the same name, from a run killed between create and record
            await engine.removeContainer(request.name, { force: true });
          }
          created = await engine.createContainer(request);
        }
        if ("conflict" in created) throw new RerollError("E_NAME_TAKEN", `The container name ${request.name} is taken.`, { kind: "failed" });
        return { slot, fresh: observedFromCreate(created.id, request.name, ctx.revision, slot, ctx.hash, ctx.image.id), old: batch.replaces.filter((c) => c.slot === slot) };
      }),
    );
    const refused = creating.find((c) => c.status === "rejected");
    return { fresh: creating.flatMap((c) => (c.status === "fulfilled" ? [c.value] : [])), ...(refused === undefined ? {} : { refused: refused.reason as unknown }) };
  };
  /** A slot that will not start: its created (never started) replicas go and the old ones get their names back. */
  const discardSlot = async (batch: Batch, made: SlotCreation): Promise<void> => {
    await Promise.all(made.fresh.map((r) => engine.removeContainer(r.fresh.id, { force: true })));
    await takeNamesBack(batch.replaces);
  };

  /**
   * Starts containers and watches them: `healthy` settles when every one passed its first
   * gate (or with the first failure), `ready` when every one also held for the monitor
   * window. `abort()` ends the watch with an "interrupted" failure.
   */
  const startWatch = async (containers: readonly { id: string; name: string }[], monitorMs: number, interruptible: boolean): Promise<Watch> => {
    const local = new AbortController();
    const signal = interruptible && ctx.signal !== undefined ? AbortSignal.any([ctx.signal, local.signal]) : local.signal;
    const sinceMs = ctx.now();
    const watched: WatchedReplica[] = containers.map((c) => ({
      id: c.id,
      // an old replica that a rollback restarts may still be aside, under another name
      name: nameOf(c).name,
      hasHealthcheck: health !== undefined,
      ...readinessDeadline(ctx, health, monitorMs),
    }));
    let settleHealthy: (failure: ReadinessFailure | undefined) => void = () => undefined;
    let failHealthy: (error: unknown) => void = () => undefined;
    const healthy = new Promise<ReadinessFailure | undefined>((resolve, reject) => {
      settleHealthy = resolve;
      failHealthy = reject;
    });
    let admitted: Promise<void> = Promise.resolve();
    admitted.catch(() => undefined);
    let markStarted: () => void = () => undefined;
    const answered = new Promise<void>((resolve) => (markStarted = resolve));
    const ready = waitUntilReady(engine, watched, {
      monitorMs,
      sinceMs,
      start: async () => {
        try {
          await Promise.all(
            containers.map((c) =>
              engine.startContainer(c.id).catch((error: unknown) => {
                throw isRerollError(error) && error.code === "E_START_REFUSED" ? new StartRefused(c.id, error.message.replace(c.id, nameOf(c).name)) : error;
              }),
            ),
          );
        } finally {
          markStarted();
        }
      },
      now: ctx.now,
      signal,
      onProgress: (replica, state) => ctx.emit({ type: "replica-state", service: service.name, name: replica.name, state }),
      // routed once all passed their gate (the proxy's probe routes each one itself)
      onAllHealthy: () => {
        admitted = ctx.traffic === undefined ? Promise.resolve() : ctx.traffic.admit(containers);
        admitted.then(() => settleHealthy(undefined), failHealthy);
      },
      ...(ctx.traffic?.gate === undefined ? {} : { gate: ctx.traffic.gate }),
    }).then(
      async (failure) => {
        // ready means routed too: never report it before the proxy took it
        if (failure === undefined) await admitted;
        settleHealthy(failure);
        return failure;
      },
      (error: unknown) => {
        failHealthy(error);
        throw error;
      },
    );
    // whoever does not await one of them must not see an unhandled rejection
    healthy.catch(() => undefined);
    ready.catch(() => undefined);
    const started = Promise.race([answered, ready.then(() => undefined, () => undefined)]);
    return { started, healthy, ready, abort: () => local.abort() };
  };
  const startAndWait = async (containers: readonly { id: string; name: string }[], monitorMs: number, interruptible: boolean): Promise<ReadinessFailure | undefined> =>
    (await startWatch(containers, monitorMs, interruptible)).ready;

  const reportFailure = (failure: ReadinessFailure): void => reportReplicaFailure(ctx, failure);

  /**
   * An old replica of the target's own revision, image and configuration was replaced only
   * because it was unhealthy (plan.ts). Going back would put it in place of a new replica
   * that is its twin and passed the gates, so its slot keeps the new one and it goes.
   */
  const isSickTwin = (c: ObservedContainer): boolean => isCurrent(c, plan.target);

  /**
   * The new replica whose failure sent the rollout back may have exited (or crashed and been
   * restarted by its policy) since it was started: it is stopped only if it runs now, so that
   * an exited one is not reported as stopping.
   */
  const asItIsNow = async (c: ObservedContainer, failed: ReadinessFailure | undefined): Promise<ObservedContainer> => {
    if (failed?.id !== c.id || failed.exitCode === undefined) return c;
    const now = await engine.inspectContainer(c.id).catch(() => undefined);
    return now === undefined ? c : { ...c, state: now.state };
  };

  /** Puts old replicas of the given slots back (newest batch first) and removes their new ones. */
  const goBack = async (replacedSlots: readonly Replaced[], reason: string, failed?: ReadinessFailure): Promise<void> => {
    const sick = replacedSlots.flatMap((r) => r.old.filter(isSickTwin));
    if (sick.length > 0) {
      await stopped(sick);
      await Promise.all(sick.map((c) => remove(c, "unhealthy; the new replica of the same revision that replaced it stays")));
      // gone under their aside names: none is to take its name back
      for (const c of sick) steppedAside.delete(c.id);
    }
    const slots = replacedSlots.filter((r) => !(r.old.length > 0 && r.old.every(isSickTwin))).map((r) => ({ ...r, old: r.old.filter((c) => !isSickTwin(c)) }));
    if (slots.length === 0) return;
    const olds = slots.flatMap((r) => r.old);
    ctx.emit({ type: "rollback-start", service: service.name, to: [...new Set(olds.map((o) => o.revision))], reason });
    const size = ctx.rollbackConfig.parallelism === 0 ? Math.max(1, slots.length) : ctx.rollbackConfig.parallelism;
    const order = [...slots].reverse();
    for (let i = 0; i < order.length; i += size) {
      const batch = order.slice(i, i + size);
      const toStart = batch.flatMap((r) => r.old);
      await stopped(toStart);
      // The rollback is not interruptible: stopping half-way would leave the service with neither revision ready.
      const failure = await startAndWait(toStart, ctx.rollbackConfig.monitorMs, false);
      if (failure !== undefined) {
        reportFailure(failure);
        throw new RerollError(
          "E_ROLLBACK_FAILED",
          `Rolling ${service.name} back failed: ${failure.message}. Replicas of both revisions may be running.`,
          { kind: "inconsistent", problems: failure.logs.map((l) => `  | ${l}`), hint: "Check `reroll status`, fix the cause, then run `reroll up` or `reroll rollback` again." },
        );
      }
      // the new replicas of slots that had passed their gates may be serving or working
      await Promise.all(batch.map(async (r) => stopAndRemove(await asItIsNow(r.fresh, failed), "rolled back")));
      await takeNamesBack(toStart);
    }
  };

  // Leftovers go first, all at once, not one daemon round trip after another; a running one
  // (a surplus replica when scaling down, a second one in a slot) gracefully.
  await Promise.all(plan.cleanup.flatMap((step) => (step.kind === "remove" ? [stopAndRemove(step.container, step.cause)] : [])));
  let completed = false;
  try {
    const executed = await run();
    completed = executed.outcome === "completed";
    return executed;
  } finally {
    // Never leave a stop half-awaited behind the caller's back, except on completion: the last
    // slots' old replicas are still in their grace period then, and finish() awaits them, so
    // the caller records the outcome meanwhile instead of after Docker's kill and teardown.
    if (!completed && stopping.size > 0) await stopped().catch(() => undefined);
  }

  /**
   * The slots, pipelined as Swarm's updater does: `parallelism` lanes, each taking the next
   * slot as soon as its own previous one is healthy, so a slow replica holds up its lane
   * only, not a whole batch. Within a lane, once a slot is healthy its old replicas stop and
   * its monitor window stays open while the lane's next slot starts; the lane stops its next
   * old replicas only after that window closed cleanly. So each lane has at most one slot
   * without a ready replica, and the floor of `replicas − parallelism` ready replicas holds.
   * A failure that is not tolerated halts every lane: the slots in flight are dropped (their
   * new replicas removed), and the open windows go back with everything replaced (rollback)
   * or are waited for (pause). A window that fails brings its slot back (old replica started
   * again and ready, new one removed) before its lane stops anything else.
   */
  async function run(): Promise<ExecuteResult> {
    const update = ctx.update;
    // one entry per slot, in the plan's order; the lanes take them in turn
    const queue: Batch[] = plan.batches.flatMap((b) => b.slots.map((slot) => ({ slots: [slot], replaces: b.replaces.filter((c) => c.slot === slot), steps: [] })));
    // nothing replaced (a first deploy, a scale-up): every slot at once, as the plan says
    const replacing = queue.some((b) => b.replaces.length > 0);
    const laneCount = Math.max(1, Math.min(queue.length, update.parallelism === 0 || !replacing ? queue.length : update.parallelism));
    let next = 0;
    type Halt = { readonly outcome: "rolled-back" | "paused" | "interrupted"; readonly failure: ReadinessFailure };
    let halt: Halt | undefined;
    let signalHalt: () => void = () => undefined;
    const halted = new Promise<void>((resolve) => (signalHalt = resolve));
    /** read through a call: TypeScript would narrow the variable, which the lanes' awaits change */
    const halting = (): Halt | undefined => halt;
    const stopAll = (outcome: Halt["outcome"], failure: ReadinessFailure): void => {
      if (halt !== undefined) return;
      halt = { outcome, failure };
      signalHalt();
    };
    const haltFor = (failure: ReadinessFailure): Halt["outcome"] => (failure.reason === "interrupted" ? "interrupted" : update.failureAction === "pause" ? "paused" : "rolled-back");
    const interruption: ReadinessFailure = { id: "", name: service.name, reason: "interrupted", message: "interrupted", logs: [] };
    /** an error thrown in a lane (the daemon refused something): the others stop, then it is thrown */
    const thrown: unknown[] = [];
    /** windows open when a rollback halted the lanes: their slots go back with the replaced ones */
    const abandoned: Replaced[] = [];
    /** slots created ahead of their start (see below), until a lane starts them */
    const prepared = new Map<Batch, Promise<SlotCreation>>();

    /** A failure counted against max_failure_ratio: true when the rollout goes on. */
    const tolerate = (count: number): boolean => {
      failures += count;
      return failures / Math.max(1, plan.target.replicas) <= update.maxFailureRatio || update.failureAction === "continue";
    };
    /**
     * A failure that is not tolerated halts every lane at once, before the failed slot is
     * brought back: bringing it back takes a start and a readiness gate, and meanwhile the
     * other lanes would stop more old replicas and start more new ones, only for the
     * rollback to undo them (Swarm and Kubernetes stop an update at its failure too).
     * True when the lanes stop.
     */
    const haltUnlessTolerated = (failure: ReadinessFailure, count: number): boolean => {
      if (failure.reason === "interrupted") stopAll("interrupted", failure);
      else if (!tolerate(count)) stopAll(haltFor(failure), failure);
      return halting() !== undefined;
    };
    const accept = (w: Window): void => {
      replaced.push(...w.fresh);
      for (const r of w.fresh) doneSlots.add(r.slot);
    };
    const bringBack = async (w: Window, failure: ReadinessFailure): Promise<void> => {
      reportFailure(failure);
      await goBack(w.fresh, failure.reason === "interrupted" ? "interrupted inside its monitor window" : failure.message, failure);
    };
    /** The in-flight slot failed or was stopped: its new replica out, its old ones (stop-first) back. */
    const dropInFlight = async (batch: Batch, fresh: readonly Replaced[], watch: Watch, why: string): Promise<void> => {
      watch.abort();
      await watch.ready.catch(() => undefined);
      for (const r of fresh) await remove(r.fresh, why);
      await takeNamesBack(batch.replaces);
      if (update.order === "stop-first" && batch.replaces.length > 0) {
        const back = await startAndWait(batch.replaces, ctx.rollbackConfig.monitorMs, false);
        if (back !== undefined) {
          throw new RerollError("E_ROLLBACK_FAILED", `Restarting ${service.name}'s previous replicas failed: ${back.message}.`, {
            kind: "inconsistent",
            hint: "Check `reroll status`, fix the cause, then run `reroll up` or `reroll rollback` again.",
          });
        }
      }
    };

    const lane = async (): Promise<void> => {
      let open: Window | undefined;
      /** Waits for the open window (or a halt); true when the lane must stop. */
      const settle = async (): Promise<boolean> => {
        const w = open;
        if (w === undefined) return halting() !== undefined;
        const closed = await Promise.race([w.watch.ready.then((failure) => ({ failure })), halted.then(() => undefined)]);
        if (closed === undefined) return true; // halted: leave() settles the window
        open = undefined;
        if (closed.failure === undefined) {
          accept(w);
          return false;
        }
        haltUnlessTolerated(closed.failure, w.fresh.length);
        await bringBack(w, closed.failure);
        return halting() !== undefined;
      };
      /** The lane stops: its open window is settled the way the halt asks. */
      const leave = async (): Promise<void> => {
        const w = open;
        open = undefined;
        if (w === undefined) return;
        if (halting()?.outcome === "rolled-back") {
          w.watch.abort();
          await w.watch.ready.catch(() => undefined);
          abandoned.push(...w.fresh);
          return;
        }
        // paused: the window runs to its end; interrupted: it is cut short. One that closed cleanly keeps its slot.
        if (halting()?.outcome !== "paused") w.watch.abort();
        const closed = await w.watch.ready.catch(() => halting()?.failure ?? interruption);
        if (closed === undefined) accept(w);
        else await bringBack(w, closed);
      };

      let first = true;
      try {
        lanes: for (;;) {
          if (halting() !== undefined) break;
          if (aborted()) {
            stopAll("interrupted", interruption);
            break;
          }
          const batch = queue[next];
          if (batch === undefined) {
            await settle();
            break;
          }
          next += 1;
          if (!first && update.delayMs > 0) {
            await Promise.race([new Promise((resolve) => setTimeout(resolve, update.delayMs)), halted]);
            if (halting() !== undefined) break;
          }
          first = false;
          const made = await (prepared.get(batch) ?? createSlot(batch));
          prepared.delete(batch);
          if (made.refused !== undefined) {
            // nothing of the slot runs: what was created goes, so nothing is left half-made
            await discardSlot(batch, made);
            // The daemon said no to the replica's configuration (a bind source that does not
            // exist, say): the slot failed, and the rollout goes back (or on) as for any failure.
            // Anything else (the daemon gone) is thrown.
            if (!isRerollError(made.refused) || (made.refused.code !== "E_CREATE_REFUSED" && made.refused.code !== "E_NO_SUCH_IMAGE")) throw made.refused;
            const failure: ReadinessFailure = { id: "", name: containerName(ctx.spec.project, service.name, ctx.revision, batch.slots[0]!), reason: "refused", message: made.refused.message, logs: [] };
            reportFailure(failure);
            if (!tolerate(batch.slots.length)) {
              stopAll(haltFor(failure), failure);
              break lanes;
            }
            continue;
          }
          // the lanes stopped while the slot was being created (ahead, perhaps): none of it starts
          if (halting() !== undefined || aborted()) {
            await discardSlot(batch, made);
            if (halting() === undefined) stopAll("interrupted", interruption);
            break;
          }
          /** a stop-first slot that leaves no replica serving holds requests at the door until it is over */
          let release: (() => Promise<void>) | undefined;
          if (update.order === "stop-first") {
            // stopping an old replica while the lane's window is open would take two slots below ready
            if (await settle()) {
              await discardSlot(batch, made);
              break;
            }
            if (ctx.traffic?.hold !== undefined && batch.replaces.length > 0 && batch.replaces.length >= service.deploy.replicas) release = await ctx.traffic.hold().catch(() => undefined);
            for (const c of batch.replaces) await stop(c, `replaced in slot ${c.slot}`);
          }
          const fresh = made.fresh;
          for (const r of fresh) ctx.emit({ type: "replica-start", service: service.name, name: r.fresh.name, revision: ctx.revision, slot: r.slot, replaces: r.old.map((c) => nameOf(c).name) });
          const watch = await startWatch(
            fresh.map((r) => r.fresh),
            update.monitorMs,
            true,
          );
          // The next slot nobody has taken or prepared yet is created while this one starts up
          // and waits for its health check, once the daemon has answered this start: a create
          // costs the daemon ~0.1 s here, which then falls outside the wait between one slot
          // being healthy and the next start. Whichever lane is free first takes it.
          const following = queue.slice(next).find((b) => !prepared.has(b));
          if (following !== undefined) {
            const creating = watch.started.then(() => (halting() === undefined && !aborted() ? createSlot(following) : { fresh: [] }));
            creating.catch(() => undefined);
            prepared.set(following, creating);
          }

          // Wait until this slot is healthy and the lane's window before it closed, whichever comes last.
          let healthy = false;
          /** the lanes halted: this slot's new replica goes, its old ones stay (or, stop-first, come back) */
          const dropForHalt = (): Promise<void> => dropInFlight(batch, fresh, watch, halting()?.outcome === "interrupted" ? "interrupted before it was ready" : "stopped: another replica failed");
          try {
            for (;;) {
              const w = open;
              const event = await Promise.race([
                healthy ? never() : watch.healthy.then((failure) => ({ from: "slot" as const, failure })),
                // a failure inside this slot's own monitor window, while the window before it is still open
                watch.ready.then((failure) => (failure === undefined ? never() : { from: "slot" as const, failure })),
                w === undefined ? never() : w.watch.ready.then((failure) => ({ from: "window" as const, failure })),
                halted.then(() => ({ from: "halt" as const, failure: undefined })),
              ]);
              if (event.from === "halt") {
                await dropForHalt();
                break lanes;
              } else if (event.from === "slot" && event.failure === undefined) {
                healthy = true;
              } else if (event.from === "slot") {
                const failure = event.failure!;
                reportFailure(failure);
                const stops = haltUnlessTolerated(failure, fresh.length);
                await dropInFlight(batch, fresh, watch, failure.reason === "interrupted" ? "interrupted before it was ready" : "failed its readiness gate");
                if (stops) break lanes;
                break;
              } else if (event.failure === undefined) {
                open = undefined;
                accept(w!);
              } else {
                const failure = event.failure;
                open = undefined;
                const stops = haltUnlessTolerated(failure, w!.fresh.length);
                if (failure.reason === "interrupted") {
                  await dropInFlight(batch, fresh, watch, "interrupted before it was ready");
                  await bringBack(w!, failure);
                  break lanes;
                }
                await bringBack(w!, failure);
                if (stops) {
                  await dropInFlight(batch, fresh, watch, "stopped: an earlier replica failed");
                  break lanes;
                }
              }
              if (healthy && open === undefined && halting() !== undefined) {
                // healthy, but another lane halted meanwhile (both had settled when the race was
                // run, and it took the first): its old replicas stay, and it goes as in a halt
                await dropForHalt();
                break lanes;
              }
              if (healthy && open === undefined) {
                // The old replicas' graceful stops run while the lane's next slot starts; the floor
                // holds because the replacement is healthy and the lane has no other window open.
                if (update.order === "start-first") for (const c of batch.replaces) void stop(c, `replaced by ${fresh.find((r) => r.slot === c.slot)?.fresh.name ?? "a new replica"}`);
                open = { fresh, watch };
                break;
              }
            }
          } finally {
            // the slot is routed, or over: held requests go on to whatever serves now
            await release?.().catch(() => undefined);
          }
        }
      } catch (error) {
        thrown.push(error);
        stopAll("interrupted", interruption);
      }
      try {
        await leave();
      } catch (error) {
        thrown.push(error);
      }
    };

    await Promise.all(Array.from({ length: laneCount }, () => lane()));
    // slots created ahead that no lane started (the lanes stopped): never started, they go
    for (const [batch, creating] of [...prepared]) {
      prepared.delete(batch);
      try {
        await discardSlot(batch, await creating.catch((refused: unknown) => ({ fresh: [], refused })));
      } catch (error) {
        thrown.push(error);
      }
    }
    if (thrown.length > 0) throw thrown[0];
    const ended = halting();
    if (ended !== undefined) {
      if (ended.outcome === "rolled-back") {
        await goBack([...replaced, ...abandoned], ended.failure.message, ended.failure);
        replaced.length = 0;
      }
      return result(ended.outcome, ended.failure);
    }
    const kept = plan.batches.flatMap((b) => b.slots).filter((slot) => !doneSlots.has(slot));
    if (kept.length > 0) {
      ctx.emit({
        type: "warning",
        service: service.name,
        message: `${kept.length} replica${kept.length === 1 ? "" : "s"} failed and kept the previous revision (slot ${kept.join(", ")}); failure_action ${update.failureAction}, max_failure_ratio ${update.maxFailureRatio} let the rollout finish`,
      });
    }
    return result("completed");
  }

  function result(outcome: ExecuteOutcome, failure?: ReadinessFailure): ExecuteResult {
    return {
      outcome,
      ...(failure === undefined ? {} : { failure }),
      serving: outcome === "completed" ? [...plan.kept, ...replaced.map((r) => r.fresh)].map((c) => ({ id: c.id, name: c.name })) : [],
      finish: async () => {
        await stopped();
        // an old replica whose slot kept it (a tolerated failure) still serves
        const steps = plan.finish.filter((step) => step.kind !== "start" && !(batchOld.has(step.container.id) && !doneSlots.has(step.container.slot)));
        // surplus replicas stop gracefully, all at once; then everything replaced goes, all at once
        await Promise.all(steps.flatMap((step) => (step.kind === "stop" ? [stop(step.container, step.cause)] : [])));
        if (killed.length > 0) {
          ctx.emit({
            type: "warning",
            service: service.name,
            message: `${killed.join(", ")} did not exit within ${service.name}'s stop_grace_period (${graceSeconds}s) of its stop signal, so Docker killed ${killed.length === 1 ? "it" : "them"}, cutting off what ${killed.length === 1 ? "it was" : "they were"} doing, and each stop took the whole grace period. A server should exit on SIGTERM: give it a handler, or init: true when it runs as PID 1 (which ignores signals it has no handler for), or a longer stop_grace_period if it needs one`,
          });
          killed.length = 0;
        }
        await Promise.all(steps.flatMap((step) => (step.kind === "remove" ? [remove(step.container, step.cause)] : [])));
      },
      revert: async () => {
        if (replaced.length > 0) await goBack(replaced, "another service of this rollout failed");
        replaced.length = 0;
      },
      settled: () => stopped().catch(() => undefined),
    };
  }
}

/**
 * Watches the kept replicas that have not proven themselves yet (`RolloutPlan.unproven`)
 * through the same gates as a new replica: the proxy's probe or Docker's health, then the
 * monitor window. The first one that fails is drained and removed, and its failure returned,
 * so the caller plans its slot again; nothing else changes meanwhile.
 */
export async function proveKept(plan: RolloutPlan, ctx: ExecuteContext, observedAtMs: number): Promise<ReadinessFailure | undefined> {
  if (plan.unproven.length === 0) return undefined;
  const { engine, service } = ctx;
  const health = effectiveHealthcheck(service, ctx.image);
  const monitorMs = ctx.update.monitorMs;
  const watched: WatchedReplica[] = plan.unproven.map(({ container: c, cause }) => {
    ctx.emit({ type: "replica-watch", service: service.name, name: c.name, cause });
    // healthy when observed, or running without a healthcheck since its start: only the monitor window is left
    const passedAtMs = c.health === "healthy" ? observedAtMs : health === undefined ? c.startedAtMs : undefined;
    return {
      id: c.id,
      name: c.name,
      hasHealthcheck: health !== undefined,
      ...readinessDeadline(ctx, health, monitorMs),
      ...(passedAtMs === undefined ? {} : { passedAtMs }),
    };
  });
  const failure = await waitUntilReady(engine, watched, {
    monitorMs,
    sinceMs: observedAtMs,
    now: ctx.now,
    ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    onProgress: (replica, state) => ctx.emit({ type: "replica-state", service: service.name, name: replica.name, state }),
    ...(ctx.traffic?.gate === undefined ? {} : { gate: ctx.traffic.gate }),
  });
  if (failure === undefined) {
    // routed if the proxy did not route it yet (no health path: Docker's health was the gate)
    await ctx.traffic?.admit(watched);
    return undefined;
  }
  if (failure.reason === "interrupted") return failure;
  // stopped from outside while watched (after a takeover, most often the stop its dead
  // holder had asked for): no failure of the replica's own, its slot gets a new one
  if (failure.stopSignals !== undefined) {
    await removeReplica(ctx, failure, `stopped while watched (signal ${failure.stopSignals.join(", then ")}, exit code ${failure.exitCode ?? "?"}), not by this rollout; its slot gets a new replica`);
    return failure;
  }
  reportReplicaFailure(ctx, failure);
  await removeReplica(ctx, failure, "kept, but failed its readiness gate; its slot gets a new replica");
  return failure;
}

/** A replica's deadline: `--timeout`'s, or else what its healthcheck's own settings allow. */
function readinessDeadline(ctx: ExecuteContext, health: Parameters<typeof readinessDeadlineMs>[0], monitorMs: number): Pick<WatchedReplica, "deadlineMs" | "deadlineFromFlag"> {
  return ctx.timeoutMs === undefined ? { deadlineMs: readinessDeadlineMs(health, monitorMs) } : { deadlineMs: ctx.timeoutMs, deadlineFromFlag: true };
}
