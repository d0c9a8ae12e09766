import { describe, expect, it } from "vitest";
import { isConverged, planRollout, renderPlan, whyNotConverged, type ObservedContainer, type RolloutTarget } from "../../src/core/rollout/plan.js";
import { DEFAULT_UPDATE_CONFIG } from "../../src/core/spec/types.js";

/** Golden plans: the text --dry-run prints, for the situations a rollout meets. */
const IMAGE_R1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const IMAGE_R2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

const target = (over: Partial<RolloutTarget> = {}): RolloutTarget => ({
  service: "web",
  revision: 2,
  imageId: IMAGE_R2,
  specHash: "h2",
  replicas: 3,
  update: DEFAULT_UPDATE_CONFIG,
  ...over,
});

const c = (revision: number, slot: number, state = "running", health: string = "healthy", specHash = `h${revision}`): ObservedContainer => ({
  id: `id-r${revision}-${slot}-${state}`,
  name: `shop-web-r${revision}-${slot}`,
  revision,
  slot,
  specHash,
  imageId: revision === 1 ? IMAGE_R1 : IMAGE_R2,
  state,
  health: health === "none" ? undefined : health,
});

const name = (slot: number) => `shop-web-r2-${slot}`;
const golden = (t: RolloutTarget, observed: ObservedContainer[]) => renderPlan(planRollout(t, observed), name);

describe("rollout plans", () => {
  it("a first rollout starts every replica at once: no ready replica is at stake, as when Swarm or Kubernetes create a service", () => {
    expect(golden(target(), [])).toBe(
      [
        "web: 3 replicas of r2 (222222222222), start-first, parallelism 1, monitor 5s, on failure rollback",
        "  batch 1/1",
        "    start   shop-web-r2-1 and wait until ready: slot 1 has no replica on r2",
        "    start   shop-web-r2-2 and wait until ready: slot 2 has no replica on r2",
        "    start   shop-web-r2-3 and wait until ready: slot 3 has no replica on r2",
      ].join("\n"),
    );
    // a scale-up beside running replicas: the new slots at once, the running ones kept
    expect(planRollout(target({ replicas: 5 }), [c(2, 1), c(2, 2), c(2, 3)]).batches.map((b) => b.slots)).toEqual([[4, 5]]);
    // one slot to replace among the empty ones: parallelism holds for all of them
    expect(planRollout(target(), [c(1, 1)]).batches.map((b) => b.slots)).toEqual([[1], [2], [3]]);
  });

  it("r1 → r2, start-first: each new replica is ready before its old one stops; old ones are removed at the end", () => {
    expect(golden(target(), [c(1, 1), c(1, 2), c(1, 3)])).toBe(
      [
        "web: 3 replicas of r2 (222222222222), start-first, parallelism 1, monitor 5s, on failure rollback",
        "  batch 1/3",
        "    start   shop-web-r2-1 and wait until ready: replaces shop-web-r1-1: r1 → r2",
        "    stop    shop-web-r1-1: replaced in slot 1",
        "  batch 2/3",
        "    start   shop-web-r2-2 and wait until ready: replaces shop-web-r1-2: r1 → r2",
        "    stop    shop-web-r1-2: replaced in slot 2",
        "  batch 3/3",
        "    start   shop-web-r2-3 and wait until ready: replaces shop-web-r1-3: r1 → r2",
        "    stop    shop-web-r1-3: replaced in slot 3",
        "  when every batch is ready",
        "    remove  shop-web-r1-1: replaced by r2",
        "    remove  shop-web-r1-2: replaced by r2",
        "    remove  shop-web-r1-3: replaced by r2",
      ].join("\n"),
    );
  });

  it("after a crash mid-rollout, the same plan finishes the job from what Docker shows", () => {
    const observed = [c(2, 1), c(1, 1, "exited", "none"), c(2, 2, "created", "none"), c(1, 2), c(1, 3)];
    expect(golden(target(), observed)).toBe(
      [
        "web: 3 replicas of r2 (222222222222), start-first, parallelism 1, monitor 5s, on failure rollback",
        "  keep    shop-web-r2-1: already r2 and running",
        "  remove  shop-web-r2-2: leftover of an interrupted rollout: shop-web-r2-2 (r2, created)",
        "  batch 1/2",
        "    start   shop-web-r2-2 and wait until ready: replaces shop-web-r1-2: r1 → r2",
        "    stop    shop-web-r1-2: replaced in slot 2",
        "  batch 2/2",
        "    start   shop-web-r2-3 and wait until ready: replaces shop-web-r1-3: r1 → r2",
        "    stop    shop-web-r1-3: replaced in slot 3",
        "  when every batch is ready",
        "    remove  shop-web-r1-1: stopped replica of an earlier rollout: shop-web-r1-1 (r1, exited)",
        "    remove  shop-web-r1-2: replaced by r2",
        "    remove  shop-web-r1-3: replaced by r2",
      ].join("\n"),
    );
  });

  it("scaling down: the surplus replicas are the reason given, and go before anything starts", () => {
    const plan = planRollout(target({ replicas: 1 }), [c(2, 1), c(2, 2), c(2, 3)]);
    expect(plan.batches).toEqual([]);
    expect(plan.cleanup.map((s) => s.cause)).toEqual(["surplus replica shop-web-r2-2 (r2, running, healthy)", "surplus replica shop-web-r2-3 (r2, running, healthy)"]);
    expect(whyNotConverged(plan)).toBe("scaling to 1: 2 surplus replicas to stop");
  });

  it("a replica stopped outside a rollout is said to be not running, and its slot gets a new one", () => {
    const stopFirst = { ...DEFAULT_UPDATE_CONFIG, order: "stop-first" as const };
    const observed = [c(2, 1), c(2, 2, "exited", "none"), c(2, 3, "running", "unhealthy"), { ...c(2, 1), id: "second", name: "shop-web-r2-1-replaced-x" }];
    expect(golden(target({ update: stopFirst }), observed)).toBe(
      [
        "web: 3 replicas of r2 (222222222222), stop-first, parallelism 1, monitor 5s, on failure rollback",
        "  keep    shop-web-r2-1: already r2 and running",
        "  remove  shop-web-r2-1-replaced-x: a second replica in slot 1, beside shop-web-r2-1: shop-web-r2-1-replaced-x (r2, running, healthy)",
        "  remove  shop-web-r2-2: not running: shop-web-r2-2 (r2, exited)",
        "  remove  shop-web-r2-3: unhealthy, and stop-first stops it before its replacement starts: shop-web-r2-3 (r2, running, unhealthy)",
        "  batch 1/1",
        "    start   shop-web-r2-2 and wait until ready: slot 2 has no replica on r2",
        "    start   shop-web-r2-3 and wait until ready: slot 3 has no replica on r2",
      ].join("\n"),
    );
  });

  it("a configuration change on the same image replaces replicas too; an unhealthy target replica is replaced", () => {
    const plan = planRollout(target({ specHash: "h2-new-env" }), [c(2, 1, "running", "healthy"), c(2, 2, "running", "unhealthy", "h2-new-env")]);
    expect(plan.batches.map((b) => b.slots)).toEqual([[1], [2], [3]]);
    // the unhealthy one is not removed up front: it keeps its place until its replacement is ready
    expect(plan.cleanup).toEqual([]);
    expect(plan.batches[0]!.steps[0]).toMatchObject({ kind: "start", cause: "replaces shop-web-r2-1: its configuration changed" });
    expect(plan.batches[1]!.steps.map((s) => s.kind)).toEqual(["start", "stop"]);
    expect(plan.batches[1]!.steps[0]).toMatchObject({ kind: "start", cause: "replaces shop-web-r2-2: it is unhealthy" });
    expect(whyNotConverged(plan)).toBe("1 replica of r2 unhealthy; 1 replica of r2 with another image or configuration; 1 slot without a replica");
  });

  it("unhealthy replicas of the target are replaced start-first, in batches, like old ones", () => {
    const update = { ...DEFAULT_UPDATE_CONFIG, parallelism: 2 };
    const observed = [c(2, 1, "running", "unhealthy"), c(2, 2, "running", "healthy"), c(2, 3, "running", "unhealthy"), c(2, 4, "exited", "unhealthy")];
    expect(golden(target({ update }), observed)).toBe(
      [
        "web: 3 replicas of r2 (222222222222), start-first, parallelism 2, monitor 5s, on failure rollback",
        "  keep    shop-web-r2-2: already r2 and running",
        "  remove  shop-web-r2-4: surplus replica shop-web-r2-4 (r2, exited, unhealthy)",
        "  batch 1/1",
        "    start   shop-web-r2-1 and wait until ready: replaces shop-web-r2-1: it is unhealthy",
        "    start   shop-web-r2-3 and wait until ready: replaces shop-web-r2-3: it is unhealthy",
        "    stop    shop-web-r2-1: replaced in slot 1",
        "    stop    shop-web-r2-3: replaced in slot 3",
        "  when every batch is ready",
        "    remove  shop-web-r2-1: replaced by r2",
        "    remove  shop-web-r2-3: replaced by r2",
      ].join("\n"),
    );
    const plan = planRollout(target({ update }), observed);
    expect(whyNotConverged(plan)).toBe("2 replicas of r2 unhealthy; 1 leftover container to remove");
    // stop-first would stop it before its replacement anyway: it is a leftover, removed first
    const stopFirst = planRollout(target({ replicas: 1, update: { ...DEFAULT_UPDATE_CONFIG, order: "stop-first" } }), [c(2, 1, "running", "unhealthy")]);
    expect(stopFirst.cleanup.map((s) => s.kind === "remove" && s.container.name)).toEqual(["shop-web-r2-1"]);
    expect(stopFirst.batches[0]!.steps.map((s) => s.kind)).toEqual(["start"]);
  });

  it("a run that goes on after a rollback says why", () => {
    const back = target({ revision: 1, imageId: IMAGE_R1, specHash: "h1" });
    expect(whyNotConverged(planRollout(back, [c(1, 1), c(2, 2), c(1, 3)]))).toBe("1 replica on r2");
    expect(whyNotConverged(planRollout(back, [c(1, 1), c(1, 2)]))).toBe("1 slot without a replica");
    expect(whyNotConverged(planRollout(back, [c(1, 1), c(1, 2), c(1, 3)]))).toBe("");
  });

  it("scaling down keeps the first replicas and removes the rest once the rest is ready", () => {
    expect(golden(target({ replicas: 1 }), [c(2, 1), c(2, 2), c(2, 3)])).toBe(
      [
        "web: 1 replica of r2 (222222222222), start-first, parallelism 1, monitor 5s, on failure rollback",
        "  keep    shop-web-r2-1: already r2 and running",
        "  remove  shop-web-r2-2: surplus replica shop-web-r2-2 (r2, running, healthy)",
        "  remove  shop-web-r2-3: surplus replica shop-web-r2-3 (r2, running, healthy)",
      ].join("\n"),
    );
  });

  it("stop-first with one replica warns that it means downtime, and stops before it starts", () => {
    const update = { ...DEFAULT_UPDATE_CONFIG, order: "stop-first" as const };
    expect(golden(target({ replicas: 1, update }), [c(1, 1)])).toBe(
      [
        "web: 1 replica of r2 (222222222222), stop-first, parallelism 1, monitor 5s, on failure rollback",
        "  warning: order: stop-first with 1 replica and parallelism 1 means downtime: every running replica stops before its replacement is ready",
        "  batch 1/1",
        "    stop    shop-web-r1-1: replaced in slot 1",
        "    start   shop-web-r2-1 and wait until ready: replaces shop-web-r1-1: r1 → r2",
        "  when every batch is ready",
        "    remove  shop-web-r1-1: replaced by r2",
      ].join("\n"),
    );
  });

  it("parallelism groups slots into batches; 0 means all at once", () => {
    const two = planRollout(target({ update: { ...DEFAULT_UPDATE_CONFIG, parallelism: 2 } }), [c(1, 1), c(1, 2), c(1, 3)]);
    expect(two.batches.map((b) => b.slots)).toEqual([[1, 2], [3]]);
    const all = planRollout(target({ update: { ...DEFAULT_UPDATE_CONFIG, parallelism: 0 } }), [c(1, 1), c(1, 2), c(1, 3)]);
    expect(all.batches.map((b) => b.slots)).toEqual([[1, 2, 3]]);
  });

  it("a converged service has nothing to do", () => {
    const plan = planRollout(target(), [c(2, 1), c(2, 2), c(2, 3)]);
    expect(isConverged(plan)).toBe(true);
    expect(renderPlan(plan, name)).toContain("nothing to do");
  });

  it("a kept replica that has not proven itself is watched: health still starting, or restarted inside the monitor window", () => {
    const now = 1_000_000;
    const restarted = { ...c(2, 2), startedAtMs: now - 1200 };
    const settled = { ...c(2, 3), startedAtMs: now - 60_000 };
    const plan = planRollout(target(), [c(2, 1, "running", "starting"), restarted, settled], now);
    expect(isConverged(plan)).toBe(false);
    expect(plan.unproven.map((u) => u.container.slot)).toEqual([1, 2]);
    expect(renderPlan(plan, name)).toBe(
      [
        "web: 3 replicas of r2 (222222222222), start-first, parallelism 1, monitor 5s, on failure rollback",
        "  watch   shop-web-r2-1: r2, but its healthcheck has not passed yet; wait until ready, replace it if it fails",
        "  watch   shop-web-r2-2: r2, but it (re)started 1.2s ago, inside the 5s monitor window; wait until ready, replace it if it fails",
        "  keep    shop-web-r2-3: already r2 and running",
      ].join("\n"),
    );
    // without the clock, only the health the list reports counts
    expect(planRollout(target(), [c(2, 1), restarted, settled]).unproven).toEqual([]);
  });
});
