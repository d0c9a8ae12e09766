import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
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
    await tar.addStream({ name: "big.bin", type: "file", mode: 0o644, mtime }, big.length, Readable.from([big.subarray(0, 1000), big.subarray(1000)]));
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

  it("a source that changes size mid-read fails the entry instead of writing a corrupt archive", async () => {
    const tar = new TarWriter();
    tar.stream.resume();
    await expect(tar.addStream({ name: "f", type: "file", mode: 0o644, mtime: new Date() }, 10, Readable.from([Buffer.alloc(4)]))).rejects.toThrow(/changed size/);
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
