import { describe, expect, it } from "vitest";
import { analyzeBaseImages } from "../../src/core/dockerfile/base-images.js";
import { parseDockerfile } from "../../src/core/dockerfile/parse.js";

const froms = (text: string) =>
  analyzeBaseImages(parseDockerfile(text)).froms.map((f) => ({ line: f.instruction.line, kind: f.kind, image: f.expanded.text }));

describe("the Dockerfile grammar, as BuildKit reads it", () => {
  it("joins continuation lines, skipping comment and blank lines inside them", () => {
    const parsed = parseDockerfile("RUN a \\\n# note\n\n  b \\  \n  c\nFROM x:1\n");
    expect(parsed.instructions.map((i) => [i.keyword, i.args.text, i.line])).toEqual([
      ["RUN", "a   b   c", 1],
      ["FROM", "x:1", 6],
    ]);
  });

  it("maps each character of a joined instruction to its byte", () => {
    const text = "FROM \\\n  nginx:1.18\n";
    const from = parseDockerfile(text).instructions[0]!;
    const at = from.args.text.indexOf("1.18");
    expect(text.slice(from.args.offsets[at]!, from.args.offsets[at]! + 4)).toBe("1.18");
  });

  it("an escaped escape character does not continue the line", () => {
    const parsed = parseDockerfile("RUN echo \\\\\nFROM x:1\n");
    expect(parsed.instructions.map((i) => i.keyword)).toEqual(["RUN", "FROM"]);
  });

  it("reads parser directives only at the very top", () => {
    expect(parseDockerfile("# escape=`\nFROM x:1\n").escape).toBe("`");
    expect(parseDockerfile("\n# escape=`\nFROM x:1\n").escape).toBe("\\");
    expect(parseDockerfile("FROM x:1\n# escape=`\n").escape).toBe("\\");
    expect(parseDockerfile("# syntax=docker/dockerfile:1\n# escape=`\nFROM x:1\n").escape).toBe("`");
  });

  it("with escape=`, a backslash is an ordinary character", () => {
    const parsed = parseDockerfile("# escape=`\nCOPY a C:\\\nFROM x:1 `\n  AS b\n");
    expect(parsed.instructions.map((i) => [i.keyword, i.args.text])).toEqual([
      ["COPY", "a C:\\"],
      ["FROM", "x:1   AS b"],
    ]);
  });

  it("a heredoc swallows lines up to its terminator, <<- strips leading tabs", () => {
    const parsed = parseDockerfile("RUN <<EOF cat <<-'END'\nFROM a:1\nEOF\nFROM b:1\n\tEND\nFROM c:1\n");
    expect(parsed.instructions.map((i) => i.keyword)).toEqual(["RUN", "FROM"]);
    expect(froms("RUN <<EOF cat <<-'END'\nFROM a:1\nEOF\nFROM b:1\n\tEND\nFROM c:1\n")).toEqual([
      { line: 6, kind: "image", image: "c:1" },
    ]);
  });

  it("'#' starts a comment only at the beginning of a line", () => {
    const parsed = parseDockerfile("  # comment\nRUN echo # not a comment\n");
    expect(parsed.instructions).toHaveLength(1);
    expect(parsed.instructions[0]!.args.text).toBe("echo # not a comment");
  });

  it("only ARGs before the first FROM reach FROM lines; forms $V ${V} ${V:-d} ${V-d}", () => {
    const text = [
      "ARG A=alpine B",
      "ARG EMPTY=",
      "FROM $A:1 AS one",
      "FROM ${A}:2",
      "FROM ${B:-busybox}:3",
      "FROM ${EMPTY-x}y:4",
      "FROM ${EMPTY:-z}:5",
      "ARG LATE=nope",
      "FROM ${LATE:-late}:6",
      "FROM one",
      "FROM 0",
      "FROM scratch",
      "",
    ].join("\n");
    expect(froms(text)).toEqual([
      { line: 3, kind: "image", image: "alpine:1" },
      { line: 4, kind: "image", image: "alpine:2" },
      { line: 5, kind: "image", image: "busybox:3" },
      { line: 6, kind: "image", image: "y:4" },
      { line: 7, kind: "image", image: "z:5" },
      { line: 9, kind: "image", image: "late:6" },
      { line: 10, kind: "stage", image: "one" },
      { line: 11, kind: "stage", image: "0" },
      { line: 12, kind: "scratch", image: "scratch" },
    ]);
  });

  it("quotes are removed from ARG defaults and FROM words", () => {
    expect(froms(`ARG T="1.18" U='x y'\nFROM "nginx":$T\n`)).toEqual([{ line: 2, kind: "image", image: "nginx:1.18" }]);
  });

  it("reports a malformed FROM with its line", () => {
    expect(() => analyzeBaseImages(parseDockerfile("FROM\n"))).toThrow(/line 1/);
    expect(() => analyzeBaseImages(parseDockerfile("RUN x\nFROM a b\n"))).toThrow(/line 2/);
    expect(() => analyzeBaseImages(parseDockerfile("FROM Nginx:1\n"))).toThrow(/lowercase/);
  });
});
