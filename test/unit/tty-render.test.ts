import { describe, expect, it } from "vitest";
import { createEventRenderer, fitWidth } from "../../src/cli/render/events.js";
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
});
