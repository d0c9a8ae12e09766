import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, closeSync, fsyncSync, openSync, realpathSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Replaces a file's content atomically: the new bytes go to a temporary file beside it,
 * are flushed, given the original's mode (and owner, when permitted), then renamed over it.
 * A reader sees the old file or the new one, never a half-written one; on any error the
 * temporary file is removed and the original is untouched. A symlink is written through:
 * the file it points to is replaced and the link stays a link.
 *
 * Synchronous calls on purpose: the files are small (Dockerfiles), and on a cold start the
 * promise-based FileHandle path costs more CPU than the whole edit (bench/).
 */
export async function writeFileAtomic(linkOrPath: string, data: Uint8Array): Promise<void> {
  const path = realpathSync(linkOrPath);
  const original = statSync(path);
  const mode = original.mode & 0o7777;
  const temp = join(dirname(path), `.${basename(path)}.reroll-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  const fd = openSync(temp, "wx", mode);
  try {
    try {
      let written = 0;
      while (written < data.length) written += writeSync(fd, data, written, data.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(temp, mode);
    try {
      chownSync(temp, original.uid, original.gid);
    } catch {
      // not permitted for a non-root user on someone else's file: the mode is what matters
    }
    renameSync(temp, path);
  } catch (error) {
    try {
      unlinkSync(temp);
    } catch {
      // already gone
    }
    throw error;
  }
}
