import { randomBytes } from "node:crypto";
import { chmod, chown, open, realpath, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Replaces a file's content atomically: the new bytes go to a temporary file beside it,
 * are flushed, given the original's mode (and owner, when permitted), then renamed over it.
 * A reader sees the old file or the new one, never a half-written one; on any error the
 * temporary file is removed and the original is untouched. A symlink is written through:
 * the file it points to is replaced and the link stays a link.
 */
export async function writeFileAtomic(linkOrPath: string, data: Uint8Array): Promise<void> {
  const path = await realpath(linkOrPath);
  const original = await stat(path);
  const temp = join(dirname(path), `.${basename(path)}.reroll-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
  const handle = await open(temp, "wx", original.mode & 0o7777);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, original.mode & 0o7777);
    await chown(temp, original.uid, original.gid).catch(() => undefined);
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
