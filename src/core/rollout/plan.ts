import type { UpdateConfig } from "../spec/types.js";

/**
 * Observe, then plan, then execute: the plan is data. Given what runs now (containers that
 * carry reroll's labels) and what should run (a revision image and a spec hash, N replicas),
 * it lists batches of steps, each with its cause. `--dry-run` prints it; the executor runs it.
 * It is a pure function, so a half-done rollout observed after a crash plans its own finish.
 */

export interface ObservedContainer {
  readonly id: string;
  readonly name: string;
  readonly revision: number;
  readonly slot: number;
  readonly specHash: string;
  readonly imageId: string;
  /** running, created, exited, … */
  readonly state: string;
  /** "healthy", "unhealthy", "starting", or undefined without a healthcheck */
  readonly health: string | undefined;
  /** when its process last started (epoch ms), for running replicas of the target when known */
  readonly startedAtMs?: number;
}

export interface RolloutTarget {
  readonly service: string;
  readonly revision: number;
  readonly imageId: string;
  readonly specHash: string;
  readonly replicas: number;
  readonly update: UpdateConfig;
}

export type Step =
  | { readonly kind: "start"; readonly slot: number; readonly cause: string }
  | { readonly kind: "stop"; readonly container: ObservedContainer; readonly cause: string }
  | { readonly kind: "remove"; readonly container: ObservedContainer; readonly cause: string };

export interface Batch {
  /** slots whose new replica this batch starts */
  readonly slots: readonly number[];
  /** old replicas that give way to them, per slot */
  readonly replaces: readonly ObservedContainer[];
  readonly steps: readonly Step[];
}

export interface RolloutPlan {
  readonly target: RolloutTarget;
  /** replicas already on the target and running: kept as they are */
  readonly kept: readonly ObservedContainer[];
  /**
   * Kept replicas not yet proven ready: their healthcheck has not passed, or they (re)started
   * inside the monitor window (a crash loop under a restart policy looks like this between
   * two restarts). They pass the readiness gates before anything else changes; one that
   * fails is removed and its slot planned again.
   */
  readonly unproven: readonly { readonly container: ObservedContainer; readonly cause: string }[];
  /** leftovers removed before any batch: stopped or failed target replicas, duplicates */
  readonly cleanup: readonly Step[];
  readonly batches: readonly Batch[];
  /** surplus replicas (scale down) and stopped old replicas, removed once every batch is ready */
  readonly finish: readonly Step[];
  readonly warnings: readonly string[];
}

/** On the target's revision, image and configuration. */
export function isCurrent(c: ObservedContainer, target: RolloutTarget): boolean {
  return c.revision === target.revision && c.specHash === target.specHash && c.imageId === target.imageId;
}

function describe(c: ObservedContainer): string {
  return `${c.name} (r${c.revision}, ${c.state}${c.health === undefined ? "" : `, ${c.health}`})`;
}

/** Why a replica of the target revision is removed before anything starts. */
function leftoverCause(c: ObservedContainer, target: RolloutTarget, kept: ObservedContainer | undefined): string {
  if (c.slot < 1 || c.slot > target.replicas) return `surplus replica ${describe(c)}`;
  // created and never started: only a rollout that stopped halfway leaves one
  if (c.state === "created") return `leftover of an interrupted rollout: ${describe(c)}`;
  // stopped by hand, exited, or stopped by a rollout that went no further: all the same here
  if (c.state !== "running") return `not running: ${describe(c)}`;
  if (kept !== undefined) return `a second replica in slot ${c.slot}, beside ${kept.name}: ${describe(c)}`;
  return `unhealthy, and stop-first stops it before its replacement starts: ${describe(c)}`;
}

function whyReplaced(c: ObservedContainer, target: RolloutTarget): string {
  if (c.revision !== target.revision) return `r${c.revision} → r${target.revision}`;
  if (isCurrent(c, target) && c.health === "unhealthy") return "it is unhealthy";
  if (c.imageId !== target.imageId) return "its image changed";
  return "its configuration changed";
}

/** Why a kept replica still has to prove itself, or undefined when it has (see RolloutPlan.unproven). */
function unprovenBecause(c: ObservedContainer, target: RolloutTarget, now: number | undefined): string | undefined {
  if (c.health === "starting") return "its healthcheck has not passed yet";
  if (now === undefined || c.startedAtMs === undefined) return undefined;
  const upMs = now - c.startedAtMs;
  if (upMs < target.update.monitorMs) return `it (re)started ${(Math.max(0, upMs) / 1000).toFixed(1)}s ago, inside the ${target.update.monitorMs / 1000}s monitor window`;
  return undefined;
}

/**
 * `now` (epoch ms) lets the planner tell replicas that started inside the monitor window.
 * `suspect`, when given, makes every kept replica unproven for that cause (a rollout killed
 * half-way may have been stopping it).
 */
export function planRollout(target: RolloutTarget, observed: readonly ObservedContainer[], now?: number, suspect?: string): RolloutPlan {
  const warnings: string[] = [];
  const cleanup: Step[] = [];
  const kept: ObservedContainer[] = [];
  const unproven: { container: ObservedContainer; cause: string }[] = [];
  const finish: Step[] = [];

  // A target replica that is running (and not unhealthy) is kept; a stopped, failed or
  // duplicate one is a leftover of an interrupted or failed rollout, and is removed. With
  // start-first, one that runs but is unhealthy is replaced like an old replica, in its
  // batch: it may still answer (a loaded machine's checks time out), so it keeps its place
  // until its replacement is ready. (With stop-first it would be stopped first anyway.)
  const keptBySlot = new Map<number, ObservedContainer>();
  /** running replicas that give way slot by slot, start-first or stop-first: old ones, and unhealthy current ones */
  const oldRunning = new Map<number, ObservedContainer[]>();
  const giveWay = (c: ObservedContainer) => oldRunning.set(c.slot, [...(oldRunning.get(c.slot) ?? []), c]);
  for (const c of [...observed].sort((a, b) => a.slot - b.slot || a.name.localeCompare(b.name))) {
    if (!isCurrent(c, target)) continue;
    const running = c.state === "running" && c.slot >= 1 && c.slot <= target.replicas;
    if (running && c.health === "unhealthy" && target.update.order === "start-first") {
      giveWay(c);
    } else if (running && c.health !== "unhealthy" && !keptBySlot.has(c.slot)) {
      keptBySlot.set(c.slot, c);
      kept.push(c);
      const cause = unprovenBecause(c, target, now) ?? suspect;
      if (cause !== undefined) unproven.push({ container: c, cause });
    } else {
      cleanup.push({
        kind: "remove",
        container: c,
        cause: leftoverCause(c, target, keptBySlot.get(c.slot)),
      });
    }
  }

  // Old replicas: running ones give way slot by slot; stopped ones are removed at the end
  // (they are kept until then, so a rollback can start them again).
  for (const c of observed) {
    if (isCurrent(c, target)) continue;
    if (c.state === "running") giveWay(c);
    else finish.push({ kind: "remove", container: c, cause: `stopped replica of an earlier rollout: ${describe(c)}` });
  }

  const missing: number[] = [];
  for (let slot = 1; slot <= target.replicas; slot += 1) if (!keptBySlot.has(slot)) missing.push(slot);

  // Old replicas in slots beyond the new count, or in slots already kept, are surplus.
  for (const [slot, containers] of oldRunning) {
    if (slot >= 1 && slot <= target.replicas && !keptBySlot.has(slot)) continue;
    for (const c of containers) {
      finish.push({ kind: "stop", container: c, cause: `surplus replica ${describe(c)}` }, { kind: "remove", container: c, cause: "surplus replica" });
    }
    oldRunning.delete(slot);
  }

  const { parallelism, order } = target.update;
  // Slots with nothing to replace (a first deploy, a scale-up) all start at once, as Swarm and
  // Kubernetes create a service's replicas: no ready replica is at stake, so parallelism,
  // which guards the ready ones, has nothing to guard.
  const replacing = missing.some((slot) => (oldRunning.get(slot) ?? []).length > 0);
  const size = parallelism === 0 || !replacing ? Math.max(1, missing.length) : parallelism;
  if (order === "stop-first" && target.replicas <= size && [...oldRunning.values()].flat().length > 0) {
    warnings.push(
      `order: stop-first with ${target.replicas} replica${target.replicas === 1 ? "" : "s"} and parallelism ${parallelism} means downtime: every running replica stops before its replacement is ready`,
    );
  }

  const batches: Batch[] = [];
  for (let i = 0; i < missing.length; i += size) {
    const slots = missing.slice(i, i + size);
    const replaces = slots.flatMap((slot) => oldRunning.get(slot) ?? []);
    const starts: Step[] = slots.map((slot) => {
      const old = oldRunning.get(slot) ?? [];
      return {
        kind: "start",
        slot,
        cause: old.length === 0 ? `slot ${slot} has no replica on r${target.revision}` : `replaces ${old.map((c) => `${c.name}: ${whyReplaced(c, target)}`).join(", ")}`,
      };
    });
    const stops: Step[] = replaces.map((c) => ({ kind: "stop", container: c, cause: `replaced in slot ${c.slot}` }));
    batches.push({ slots, replaces, steps: order === "stop-first" ? [...stops, ...starts] : [...starts, ...stops] });
  }
  for (const batch of batches) {
    for (const c of batch.replaces) finish.push({ kind: "remove", container: c, cause: `replaced by r${target.revision}` });
  }
  return { target, kept, unproven, cleanup, batches, finish, warnings };
}

/** The plan as text: one line per step with its cause. Golden-tested; printed by --dry-run. */
export function renderPlan(
  plan: RolloutPlan,
  name: (slot: number) => string,
  before: { readonly notes?: readonly string[]; readonly changes?: readonly string[] } = {},
): string {
  const changes = before.changes ?? [];
  const t = plan.target;
  const lines = [
    `${t.service}: ${t.replicas} replica${t.replicas === 1 ? "" : "s"} of r${t.revision} (${t.imageId.replace(/^sha256:/, "").slice(0, 12)}), ` +
      `${t.update.order}, parallelism ${t.update.parallelism === 0 ? "all" : t.update.parallelism}, monitor ${t.update.monitorMs / 1000}s, on failure ${t.update.failureAction}`,
  ];
  for (const w of plan.warnings) lines.push(`  warning: ${w}`);
  // what the plan leaves out (a dry run's build), then what changes before the replicas (the proxy in front of them)
  for (const line of [...(before.notes ?? []), ...changes]) lines.push(`  ${line}`);
  const unproven = new Map(plan.unproven.map((u) => [u.container.id, u.cause]));
  for (const c of plan.kept) {
    const cause = unproven.get(c.id);
    lines.push(cause === undefined ? `  keep    ${c.name}: already r${t.revision} and running` : `  watch   ${c.name}: r${t.revision}, but ${cause}; wait until ready, replace it if it fails`);
  }
  for (const step of plan.cleanup) lines.push(`  ${stepText(step, name)}`);
  plan.batches.forEach((batch, i) => {
    lines.push(`  batch ${i + 1}/${plan.batches.length}`);
    for (const step of batch.steps) lines.push(`    ${stepText(step, name)}`);
  });
  if (plan.finish.length > 0) lines.push("  when every batch is ready");
  for (const step of plan.finish) lines.push(`    ${stepText(step, name)}`);
  if (isConverged(plan)) lines.push(changes.length === 0 ? "  nothing to do: every replica runs the target" : "  no replica to change: every replica runs the target");
  return lines.join("\n");
}

function stepText(step: Step, name: (slot: number) => string): string {
  switch (step.kind) {
    case "start":
      return `start   ${name(step.slot)} and wait until ready: ${step.cause}`;
    case "stop":
      return `stop    ${step.container.name}: ${step.cause}`;
    case "remove":
      return `remove  ${step.container.name}: ${step.cause}`;
  }
}

/** Why a plan has work to do, in a few words: what a person reads when a run goes on to it. */
export function whyNotConverged(plan: RolloutPlan): string {
  const t = plan.target;
  const replaced = plan.batches.flatMap((b) => b.replaces);
  const reasons: string[] = [];
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const others = [...new Set(replaced.filter((c) => c.revision !== t.revision).map((c) => c.revision))].sort((a, b) => a - b);
  for (const r of others) reasons.push(`${count(replaced.filter((c) => c.revision === r).length, "replica")} on r${r}`);
  // a replica already on the target gives way only for being unhealthy
  const sick = replaced.filter((c) => isCurrent(c, t)).length;
  if (sick > 0) reasons.push(`${count(sick, "replica")} of r${t.revision} unhealthy`);
  const changed = replaced.filter((c) => c.revision === t.revision && !isCurrent(c, t)).length;
  if (changed > 0) reasons.push(`${count(changed, "replica")} of r${t.revision} with another image or configuration`);
  const empty = plan.batches.flatMap((b) => b.slots).length - new Set(replaced.map((c) => c.slot)).size;
  if (empty > 0) reasons.push(`${count(empty, "slot")} without a replica`);
  // running replicas beyond the declared count: a scale-down (a stopped one is a mere leftover)
  const surplus = plan.cleanup.filter((step) => step.kind !== "start" && (step.container.slot < 1 || step.container.slot > t.replicas) && (step.container.state === "running" || step.container.state === "restarting")).length;
  if (surplus > 0) reasons.push(`scaling to ${t.replicas}: ${count(surplus, "surplus replica")} to stop`);
  if (plan.cleanup.length > surplus) reasons.push(`${count(plan.cleanup.length - surplus, "leftover container")} to remove`);
  if (plan.unproven.length > 0) reasons.push(`${count(plan.unproven.length, "replica")} not proven ready yet`);
  if (reasons.length === 0 && plan.finish.length > 0) reasons.push(`${count(plan.finish.length, "stopped or surplus container")} to remove`);
  return reasons.join("; ");
}

/** True when nothing needs to change. */
export function isConverged(plan: RolloutPlan): boolean {
  return plan.cleanup.length === 0 && plan.batches.length === 0 && plan.finish.length === 0 && plan.unproven.length === 0;
}
