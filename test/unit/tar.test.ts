import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, readlink, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { TarWriter } from "../../src/build/tar.js";
import { tempDir } from "../support/tmp.js";

/** The writer's archives, read back by GNU tar: what the daemon's Go reader must also accept. */
describe("TarWriter", async () => {
  const dir = await tempDir();

  it("writes files, directories, links, long names and large streamed files that tar reads back exactly", async () => {
    const tar = new TarWriter();
    const archive = join(dir, "out.tar");
    const written = pipeline(tar.stream, createWriteStream(archive));
    const mtime = new Date("2024-03-01T12:00:00Z");
    const longDir = `${"d".repeat(90)}/${"e".repeat(90)}`;
    const veryLong = `${"x".repeat(120)}/${"y".repeat(130)}.txt`;
    const big = Buffer.alloc(3 * 64 * 1024 + 123, 7);
    await tar.add({ name: "dir/", type: "directory", mode: 0o750, mtime });
    await tar.add({ name: "dir/hello.txt", type: "file", mode: 0o640, mtime }, "héllo\n");
    await tar.add({ name: "dir/empty", type: "file", mode: 0o600, mtime }, Buffer.alloc(0));
    await tar.add({ name: `${longDir}/`, type: "directory", mode: 0o755, mtime });
    await tar.add({ name: `${longDir}/prefixed.txt`, type: "file", mode: 0o644, mtime }, "ustar prefix\n");
    await tar.add({ name: `${"x".repeat(120)}/`, type: "directory", mode: 0o755, mtime });
    await tar.add({ name: veryLong, type: "file", mode: 0o644, mtime }, "pax path\n");
    await tar.add({ name: "link", type: "symlink", mode: 0o777, mtime, linkname: `dir/${"z".repeat(150)}` });
    await tar.add({ name: "hard", type: "link", mode: 0o640, mtime, linkname: "dir/hello.txt" });
    await tar.add({ name: "pipe", type: "fifo", mode: 0o644, mtime });
    await writeFile(join(dir, "big-source"), big);
    await tar.addFile({ name: "big.bin", type: "file", mode: 0o644, mtime }, join(dir, "big-source"), big.length);
    await tar.finish();
    await written;

    const listing = execFileSync("tar", ["-tvf", archive], { encoding: "utf8" });
    expect(listing).toContain(veryLong);
    const out = join(dir, "extracted");
    await mkdir(out);
    execFileSync("tar", ["-xf", archive, "-C", out]);
    expect(await readFile(join(out, "dir/hello.txt"), "utf8")).toBe("héllo\n");
    expect((await stat(join(out, "dir/hello.txt"))).mode & 0o7777).toBe(0o640);
    expect((await stat(join(out, "dir"))).mode & 0o7777).toBe(0o750);
    expect((await stat(join(out, "dir/hello.txt"))).mtime.toISOString()).toBe(mtime.toISOString());
    expect(await readFile(join(out, longDir, "prefixed.txt"), "utf8")).toBe("ustar prefix\n");
    expect(await readFile(join(out, veryLong), "utf8")).toBe("pax path\n");
    expect(await readlink(join(out, "link"))).toBe(`dir/${"z".repeat(150)}`);
    expect((await stat(join(out, "hard"))).ino).toBe((await stat(join(out, "dir/hello.txt"))).ino);
    expect((await stat(join(out, "pipe"))).isFIFO()).toBe(true);
    expect((await readFile(join(out, "big.bin"))).equals(big)).toBe(true);
  });

  it("a file that is shorter or longer than its entry's size fails the entry instead of writing a corrupt archive", async () => {
    const file = join(dir, "four-bytes");
    await writeFile(file, "abcd");
    const tar = new TarWriter();
    tar.stream.resume();
    await expect(tar.addFile({ name: "f", type: "file", mode: 0o644, mtime: new Date() }, file, 10)).rejects.toThrow(/four-bytes shrank/);
    const other = new TarWriter();
    other.stream.resume();
    await expect(other.addFile({ name: "f", type: "file", mode: 0o644, mtime: new Date() }, file, 2)).rejects.toThrow(/four-bytes grew/);
    await expect(other.addFile({ name: "g", type: "file", mode: 0o644, mtime: new Date() }, join(dir, "missing"), 2)).rejects.toThrow(/ENOENT/);
  });

  /** 40 files of 100 KB with distinct content, as a reader that copies each chunk out sees them. */
  async function recycledArchive(): Promise<{ archive: Buffer; memories: number; files: Buffer[] }> {
    const files = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100_000 + i, i + 1));
    await Promise.all(files.map((content, i) => writeFile(join(dir, `src-${i}`), content)));
    const tar = new TarWriter();
    const copies: Buffer[] = [];
    const memories = new Set<ArrayBufferLike>();
    // a reader as the Engine client is: it writes each chunk out later (a socket behind) and
    // pauses meanwhile; a chunk must not change before it is given back
    tar.stream.on("data", (chunk: Buffer) => {
      memories.add(chunk.buffer);
      copies.push(Buffer.from(chunk));
      tar.stream.pause();
      setImmediate(() => {
        expect(chunk.equals(copies[copies.length - 1]!), "a chunk changed before it was given back").toBe(true);
        tar.recycle(chunk);
        tar.stream.resume();
      });
    });
    for (const [i, content] of files.entries()) await tar.addFile({ name: `f${i}`, type: "file", mode: 0o644, mtime: new Date() }, join(dir, `src-${i}`), content.length);
    await tar.finish();
    await new Promise((r) => tar.stream.once("end", r));
    return { archive: Buffer.concat(copies), memories: memories.size, files };
  }

  it("reuses the memory of chunks its reader gives back, without changing a chunk before it is given back", async () => {
    const { archive, memories, files } = await recycledArchive();
    expect(memories, "a few chunks' memory, reused").toBeLessThanOrEqual(8);
    const out = join(dir, "recycled");
    await mkdir(out);
    await writeFile(join(dir, "recycled.tar"), archive);
    execFileSync("tar", ["-xf", join(dir, "recycled.tar"), "-C", out]);
    for (const [i, content] of files.entries()) expect((await readFile(join(out, `f${i}`))).equals(content), `f${i}`).toBe(true);
  });

  it("never reuses a chunk its reader did not give back", async () => {
    const tar = new TarWriter();
    const chunks: Buffer[] = [];
    tar.stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    const files = Array.from({ length: 20 }, (_, i) => Buffer.alloc(70_000, i + 1));
    for (const [i, content] of files.entries()) {
      await writeFile(join(dir, `kept-${i}`), content);
      await tar.addFile({ name: `k${i}`, type: "file", mode: 0o644, mtime: new Date() }, join(dir, `kept-${i}`), content.length);
    }
    await tar.finish();
    await writeFile(join(dir, "kept.tar"), Buffer.concat(chunks));
    const out = join(dir, "kept");
    await mkdir(out);
    execFileSync("tar", ["-xf", join(dir, "kept.tar"), "-C", out]);
    for (const [i, content] of files.entries()) expect((await readFile(join(out, `k${i}`))).equals(content), `k${i}`).toBe(true);
    expect(new Set(chunks.map((c) => c.buffer)).size, "every chunk its own memory").toBe(chunks.length);
  });

  it("waits for a slow reader instead of buffering without bound", async () => {
    const tar = new TarWriter();
    const chunk = Buffer.alloc(64 * 1024);
    let added = 0;
    const writing = (async () => {
      for (let i = 0; i < 64; i += 1) {
        await tar.add({ name: `f${i}`, type: "file", mode: 0o644, mtime: new Date() }, chunk);
        added += 1;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    expect(added, "the writer stops while nobody reads").toBeLessThan(16);
    tar.stream.resume();
    await writing;
    expect(added).toBe(64);
  });
});
