import { describe, expect, it } from "vitest";
import { createEventRenderer, describeEvent, fitWidth } from "../../src/cli/render/events.js";
import type { CliIo } from "../../src/cli/io.js";

const ESCAPE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");
/** What a terminal shows once the escapes are taken out. */
const visible = (text: string): string => text.replace(ESCAPE, "");

const tty = (columns: number | undefined): { io: CliIo; out: () => string } => {
  let written = "";
  const stream = { isTTY: true, columns, write: (t: string) => (written += t) };
  const io: CliIo = { argv: [], cwd: "/", signal: new AbortController().signal, env: {}, stdout: stream, stderr: stream, readStdin: async () => "" };
  return { io, out: () => written };
};

/**
 * The screen a terminal is left with: the renderer only moves up (ESC[nA), clears a line
 * (ESC[2K) or the rest of the screen (ESC[J), and writes lines; colours are dropped.
 */
function screen(written: string): string[] {
  const rows: string[] = [];
  let row = 0;
  const esc = String.fromCharCode(27);
  for (const token of written.match(new RegExp(`${esc}\\[[0-9;]*[A-Za-z]|\n|[^${esc}\n]+`, "g")) ?? []) {
    if (token === "\n") row += 1;
    else if (token.endsWith("A") && token.startsWith("\x1b[")) row = Math.max(0, row - Number(token.slice(2, -1)));
    else if (token === "\x1b[2K") rows[row] = "";
    else if (token === "\x1b[J") rows.splice(row);
    else if (!token.startsWith("\x1b[")) rows[row] = (rows[row] ?? "") + token;
  }
  return rows.filter((r) => r !== undefined && r !== "");
}

describe("the tty renderer", () => {
  it("fitWidth counts only visible characters and never cuts inside a colour escape", () => {
    const line = "\x1b[1mweb\x1b[0m  \x1b[32mcompleted r3 in 4.2s\x1b[0m";
    expect(fitWidth(line, 100)).toBe(line);
    const cut = fitWidth(line, 8);
    expect(visible(cut)).toBe("web  com");
    expect(cut.endsWith("\x1b[0m")).toBe(true);
    // every escape in the cut line is whole
    expect(visible(cut)).not.toContain("\x1b");
  });

  it.each([0, undefined])("a terminal reporting %s columns still shows whole lines", (columns) => {
    const { io, out } = tty(columns);
    const renderer = createEventRenderer("tty", io, () => 0);
    renderer.sink({ type: "replica-state", service: "w", name: "sc-w-r3-1", state: "ready" });
    renderer.sink({ type: "replica-stop", service: "w", name: "sc-w-r2-1", cause: "replaced by sc-w-r3-1" });
    renderer.close();
    const text = visible(out());
    expect(text).toContain("sc-w-r3-1  ready");
    expect(text).toContain("sc-w-r2-1  stopping (replaced by sc-w-r3-1)");
  });

  it("a configuration change rolled back: the aside line goes, and the own name's line says the old replica is back", () => {
    const { io, out } = tty(120);
    const renderer = createEventRenderer("tty", io, () => 0);
    const aside = "p-w-r1-1-replaced-0123abcd";
    renderer.sink({ type: "replica-start", service: "w", name: "p-w-r1-1", revision: 1, slot: 1, replaces: [aside] });
    renderer.sink({ type: "replica-state", service: "w", name: "p-w-r1-1", state: "running" });
    renderer.sink({ type: "replica-stop", service: "w", name: aside, cause: "replaced by p-w-r1-1" });
    renderer.sink({ type: "replica-failed", service: "w", name: "p-w-r1-1", reason: "exited", message: "p-w-r1-1 exited with code 3", logs: [], exitCode: 3 });
    renderer.sink({ type: "replica-state", service: "w", name: aside, state: "ready" });
    renderer.sink({ type: "replica-remove", service: "w", name: "p-w-r1-1", cause: "rolled back" });
    renderer.sink({ type: "replica-rename", service: "w", name: "p-w-r1-1", from: aside });
    const shown = screen(out());
    renderer.close();
    // one line: the aside name's own line is gone, not left saying "ready" for a name no container has
    expect(shown).toHaveLength(1);
    expect(shown.some((line) => line.trimStart().startsWith(aside))).toBe(false);
    expect(shown[0]).toMatch(/^ {2}p-w-r1-1 +back under its own name \(was p-w-r1-1-replaced-0123abcd\)/);
  });
});

describe("a drain's line", () => {
  it("says what a drain that timed out left: requests on the door's worker, and workers a reload left", () => {
    const drain = (outstanding: number, olderWorkers?: number) =>
      describeEvent({ type: "proxy-drain", service: "web", name: "web-r1-1", drained: false, outstanding, ms: 30_000, ...(olderWorkers === undefined ? {} : { olderWorkers }) });
    expect(drain(2)).toBe("web-r1-1: drained in 30000 ms (2 still open at the drain timeout)");
    expect(drain(0, 1)).toBe("web-r1-1: drained in 30000 ms (a worker from before a reload still serving at the drain timeout)");
    expect(drain(1, 2)).toBe("web-r1-1: drained in 30000 ms (1 still open, 2 workers from before a reload still serving at the drain timeout)");
  });
});
