import { RerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import type { ObservedContainer, RolloutPlan } from "../core/rollout/plan.js";
import type { ServiceSpec, Spec, UpdateConfig } from "../core/spec/types.js";
import type { Engine, ImageDetails } from "../engine/port.js";
import { containerRequest, effectiveHealthcheck, readinessDeadlineMs } from "./container-spec.js";
import { waitUntilReady, type ReadinessFailure, type WatchedReplica } from "./readiness.js";

/**
 * Executes a rollout plan, batch by batch: start the new replicas, wait until they are
 * ready, then stop the old ones (start-first; stop-first does it the other way round).
 * Replaced replicas are stopped, not removed, until the whole run succeeds, so that going
 * back is starting them again. On a failure the failure action decides: `rollback` returns
 * every slot already replaced to its old replica with the same readiness gates.
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
}

export type ExecuteOutcome = "completed" | "rolled-back" | "paused" | "interrupted";

export interface ExecuteResult {
  readonly outcome: ExecuteOutcome;
  readonly failure?: ReadinessFailure;
  /** removes the replaced (stopped) old replicas: call once every service of the run succeeded */
  finish(): Promise<void>;
  /** puts the replaced old replicas back and removes the new ones: call when a later service failed */
  revert(): Promise<void>;
}

interface Replaced {
  readonly slot: number;
  readonly fresh: ObservedContainer;
  readonly old: readonly ObservedContainer[];
}

function observedFromCreate(id: string, name: string, revision: number, slot: number, hash: string, imageId: string): ObservedContainer {
  return { id, name, revision, slot, specHash: hash, imageId, state: "running", health: undefined };
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

  /** Graceful stops in flight, by container id: they overlap the next batch, as in Swarm. */
  const stopping = new Map<string, Promise<void>>();
  const stop = (c: ObservedContainer, cause: string): Promise<void> => {
    const existing = stopping.get(c.id);
    if (existing !== undefined) return existing;
    ctx.emit({ type: "replica-stop", service: service.name, name: c.name, cause });
    const done = engine.stopContainer(c.id, Math.ceil((service.stopGracePeriodMs ?? 10_000) / 1000));
    stopping.set(c.id, done);
    done.catch(() => undefined);
    return done;
  };
  /** Waits for the graceful stops of these containers (all when omitted). */
  const stopped = async (containers?: readonly ObservedContainer[]): Promise<void> => {
    const ids = containers === undefined ? [...stopping.keys()] : containers.map((c) => c.id);
    await Promise.all(ids.map((id) => stopping.get(id)).filter((p) => p !== undefined));
  };
  const remove = async (c: ObservedContainer, cause: string): Promise<void> => {
    await engine.removeContainer(c.id, { force: true });
    ctx.emit({ type: "replica-remove", service: service.name, name: c.name, cause });
  };

  /** Starts containers and waits until every one is ready; returns the first failure. */
  const startAndWait = async (
    containers: readonly { id: string; name: string }[],
    monitorMs: number,
    signal: AbortSignal | undefined,
  ): Promise<ReadinessFailure | undefined> => {
    const sinceMs = ctx.now();
    for (const c of containers) await engine.startContainer(c.id);
    const watched: WatchedReplica[] = containers.map((c) => ({
      id: c.id,
      name: c.name,
      hasHealthcheck: health !== undefined,
      deadlineMs: ctx.timeoutMs ?? readinessDeadlineMs(health, monitorMs),
    }));
    return waitUntilReady(engine, watched, {
      monitorMs,
      sinceMs,
      now: ctx.now,
      ...(signal === undefined ? {} : { signal }),
      onProgress: (replica, state) => ctx.emit({ type: "replica-state", service: service.name, name: replica.name, state }),
    });
  };

  /** Puts old replicas of the given slots back (newest batch first) and removes their new ones. */
  const goBack = async (slots: readonly Replaced[], reason: string): Promise<void> => {
    const olds = slots.flatMap((r) => r.old);
    ctx.emit({ type: "rollback-start", service: service.name, to: [...new Set(olds.map((o) => o.revision))], reason });
    const size = ctx.rollbackConfig.parallelism === 0 ? Math.max(1, slots.length) : ctx.rollbackConfig.parallelism;
    const order = [...slots].reverse();
    for (let i = 0; i < order.length; i += size) {
      const batch = order.slice(i, i + size);
      const toStart = batch.flatMap((r) => r.old);
      await stopped(toStart);
      // The rollback is not interruptible: stopping half-way would leave the service with neither revision ready.
      const failure = await startAndWait(toStart, ctx.rollbackConfig.monitorMs, undefined);
      if (failure !== undefined) {
        ctx.emit({ type: "replica-failed", service: service.name, name: failure.name, reason: failure.reason, message: failure.message, logs: failure.logs, ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }) });
        throw new RerollError(
          "E_ROLLBACK_FAILED",
          `Rolling ${service.name} back failed: ${failure.message}. Replicas of both revisions may be running.`,
          { kind: "inconsistent", problems: failure.logs.map((l) => `  | ${l}`), hint: "Check `reroll status`, fix the cause, then run `reroll up` or `reroll rollback` again." },
        );
      }
      for (const r of batch) await remove(r.fresh, "rolled back");
    }
  };

  for (const step of plan.cleanup) if (step.kind === "remove") await remove(step.container, step.cause);
  try {
    return await run();
  } finally {
    // never leave a stop half-awaited behind the caller's back
    if (stopping.size > 0) await stopped().catch(() => undefined);
  }

  async function run(): Promise<ExecuteResult> {

  const update = ctx.update;
  for (const [index, batch] of plan.batches.entries()) {
    if (aborted()) return result("interrupted");
    if (index > 0 && update.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, update.delayMs));
    const oldOf = (slot: number) => batch.replaces.filter((c) => c.slot === slot);
    if (update.order === "stop-first") for (const c of batch.replaces) await stop(c, `replaced in slot ${c.slot}`);

    const fresh: Replaced[] = [];
    for (const slot of batch.slots) {
      const request = containerRequest(ctx.spec, service, ctx.image, ctx.revision, slot, ctx.hash);
      await engine.removeContainer(request.name, { force: true }); // a leftover of the same name
      const created = await engine.createContainer(request);
      if ("conflict" in created) throw new RerollError("E_NAME_TAKEN", `The container name ${request.name} is taken.`, { kind: "failed" });
      ctx.emit({ type: "replica-start", service: service.name, name: request.name, revision: ctx.revision, slot, replaces: oldOf(slot).map((c) => c.name) });
      fresh.push({ slot, fresh: observedFromCreate(created.id, request.name, ctx.revision, slot, ctx.hash, ctx.image.id), old: oldOf(slot) });
    }
    const failure = await startAndWait(
      fresh.map((r) => r.fresh),
      update.monitorMs,
      ctx.signal,
    );

    if (failure !== undefined) {
      if (failure.reason !== "interrupted") {
        ctx.emit({ type: "replica-failed", service: service.name, name: failure.name, reason: failure.reason, message: failure.message, logs: failure.logs, ...(failure.exitCode === undefined ? {} : { exitCode: failure.exitCode }) });
      }
      // The batch in flight goes back first: its new replicas out, its old ones (stop-first) in.
      for (const r of fresh) await remove(r.fresh, failure.reason === "interrupted" ? "interrupted before it was ready" : "failed its readiness gate");
      if (update.order === "stop-first" && batch.replaces.length > 0) {
        const back = await startAndWait(batch.replaces, ctx.rollbackConfig.monitorMs, undefined);
        if (back !== undefined) {
          throw new RerollError("E_ROLLBACK_FAILED", `Restarting ${service.name}'s previous replicas failed: ${back.message}.`, {
            kind: "inconsistent",
            hint: "Check `reroll status`, fix the cause, then run `reroll up` or `reroll rollback` again.",
          });
        }
      }
      if (failure.reason === "interrupted") return result("interrupted", failure);
      failures += fresh.length;
      const tolerated = failures / Math.max(1, plan.target.replicas) <= update.maxFailureRatio;
      if (tolerated || update.failureAction === "continue") continue;
      if (update.failureAction === "pause") return result("paused", failure);
      await goBack(replaced, failure.message);
      replaced.length = 0;
      return result("rolled-back", failure);
    }

    // The old replicas' graceful stops run while the next batch starts; the floor of ready
    // replicas holds because each one's replacement is already ready.
    if (update.order === "start-first") for (const c of batch.replaces) void stop(c, `replaced by ${fresh.find((r) => r.slot === c.slot)?.fresh.name ?? "a new replica"}`);
    replaced.push(...fresh);
    for (const r of fresh) doneSlots.add(r.slot);
  }
  return result("completed");
  }

  function result(outcome: ExecuteOutcome, failure?: ReadinessFailure): ExecuteResult {
    return {
      outcome,
      ...(failure === undefined ? {} : { failure }),
      finish: async () => {
        await stopped();
        for (const step of plan.finish) {
          if (step.kind === "start") continue;
          // an old replica whose slot kept it (a tolerated failure) still serves
          if (batchOld.has(step.container.id) && !doneSlots.has(step.container.slot)) continue;
          if (step.kind === "stop") await stop(step.container, step.cause);
          else await remove(step.container, step.cause);
        }
      },
      revert: async () => {
        if (replaced.length > 0) await goBack(replaced, "another service of this rollout failed");
        replaced.length = 0;
      },
    };
  }
}
