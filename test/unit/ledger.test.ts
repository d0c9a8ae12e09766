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
    expect(rollbackStack(ledger(...steps), "web")).toEqual(expected);
  });

  it("the current revision is the top of the stack and the newest completed one alike", () => {
    const l = ledger(1, 2, 3, "rb2", "rb1");
    expect(rollbackStack(l, "web").at(-1)).toBe(completedRevisions(l, "web")[0]);
    expect(rollbackStack(l, "other")).toEqual([]);
  });
});
