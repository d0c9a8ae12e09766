import { describe, expect, it } from "vitest";
import { completedRevisions, rollbackStack, type Ledger, type LedgerEntry } from "../../src/rollout/state.js";

/** The ledger's reading of where `rollback` goes: an undo stack of completed rollouts. */
describe("rollbackStack", () => {
  const ledger = (...steps: (string | number)[]): Ledger => {
    // 3: up to r3 completed · "rb2": a rollback to r2 completed · "x4": up to r4 rolled back
    const entries: LedgerEntry[] = steps.map((step, i) => {
      const text = String(step);
      const revision = Number(text.replace(/^\D+/, ""));
      const base = { revision, imageId: `sha256:${revision}`, at: i };
      if (text.startsWith("rb")) return { ...base, outcome: "completed", by: "rollback" };
      if (text.startsWith("x")) return { ...base, outcome: "rolled-back" };
      return { ...base, outcome: "completed" };
    });
    return { seq: 1, services: { web: entries } };
  };

  it.each([
    [[1, 2, 3], [1, 2, 3]],
    // each rollback goes one further back
    [[1, 2, 3, "rb2"], [1, 2]],
    [[1, 2, 3, "rb2", "rb1"], [1]],
    // a failed rollout and an up of the same revision again leave the stack as it was
    [[1, 2, "x3", 2], [1, 2]],
    // --to a revision the stack no longer holds puts it on top
    [[1, 2, 3, "rb2", "rb1", "rb3"], [1, 3]],
    // --to far back takes everything above it off
    [[1, 2, 3, 4, "rb1"], [1]],
    // a new rollout after a rollback builds on what runs
    [[1, 2, 3, "rb2", 4], [1, 2, 4]],
    // ledgers written before rollbacks were marked read as rollouts
    [[1, 2, 1], [1, 2, 1]],
  ])("%j → %j", (steps, expected) => {
    expect(rollbackStack(ledger(...steps), "web").map((s) => s.revision)).toEqual(expected);
  });

  it("the current revision is the top of the stack and the newest completed one alike", () => {
    const l = ledger(1, 2, 3, "rb2", "rb1");
    expect(rollbackStack(l, "web").at(-1)?.revision).toBe(completedRevisions(l, "web")[0]);
    expect(rollbackStack(l, "other")).toEqual([]);
  });

  /** entries of revision r with configuration c: "2a" is r2 with config a; "rb2a" a rollback to it */
  const configured = (...steps: string[]): Ledger => {
    const entries: LedgerEntry[] = steps.map((text, i) => {
      const [, rb, revision, hash] = /^(rb)?(\d+)([a-z]?)$/.exec(text)!;
      return {
        revision: Number(revision),
        imageId: `sha256:${revision}`,
        at: i,
        outcome: "completed",
        ...(hash === "" ? {} : { specHash: hash }),
        ...(rb === undefined ? {} : { by: "rollback" as const }),
      };
    });
    return { seq: 1, services: { web: entries } };
  };
  const text = (l: Ledger) => rollbackStack(l, "web").map((s) => `${s.revision}${s.specHash ?? ""}`);

  it.each([
    // a new configuration of the same revision is a step of its own, which rollback undoes
    [["1a", "2a", "2b"], ["1a", "2a", "2b"]],
    [["1a", "2a", "2b", "rb2a"], ["1a", "2a"]],
    [["1a", "2a", "2b", "rb2a", "rb1a"], ["1a"]],
    // the same revision and configuration again is no new step
    [["1a", "1a", "2a", "2a"], ["1a", "2a"]],
    // a configuration gone back to by hand (the file edited back) is a new step, as a rebuild is
    [["1a", "1b", "1a"], ["1a", "1b", "1a"]],
    // records from before the hash was kept match any configuration of their revision
    [["1", "2", "2b"], ["1", "2"]],
    [["1", "2", "rb1a"], ["1"]],
  ])("configurations: %j → %j", (steps, expected) => {
    expect(text(configured(...steps))).toEqual(expected);
  });
});
