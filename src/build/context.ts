import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from "node:fs";
import { lstat, readFile } from "node:fs/promises";
import { join, posix, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import dockerignore from "@balena/dockerignore";
import { RerollError } from "../core/errors.js";
import { TarEntryChangedError, TarReaderGoneError, TarWriter, type TarHeader } from "./tar.js";

/**
 * The build context as the docker CLI sends it: a tar stream of the context directory that
 * honours `.dockerignore` exactly (patterns, `**`, `!` exceptions, the CLI's rule for
 * walking into an excluded directory), keeps modes, symlinks and hard links, owns every
 * entry by root, and always includes the Dockerfile and `.dockerignore`. A Dockerfile outside
 * the context is added under a random name that the context's `.dockerignore` then lists,
 * so the daemon drops it after reading (as the CLI does).
 *
 * The stream is produced while the daemon reads it: files are read straight into the tar
 * writer's few chunks, whatever their size, and the walk waits whenever the daemon is behind.
 * Directory listings, lstat and reads are synchronous on purpose: on thousands of small files
 * the promise API's per-call thread-pool round trips made sending a context 20 times slower
 * than `tar` (bench/), and the walk yields at every entry anyway.
 */

export interface BuildContextOptions {
  /** absolute context directory */
  readonly context: string;
  /** absolute Dockerfile path */
  readonly dockerfile: string;
}

export interface ContextStats {
  files: number;
  bytes: number;
}

export interface BuildContext {
  readonly stream: Readable;
  /** the Dockerfile's path inside the tar */
  readonly dockerfile: string;
  /** counts so far; final when the stream has ended */
  readonly stats: ContextStats;
  /** resolves when every entry has been written; rejects with E_BUILD_CONTEXT, or TarReaderGoneError when the stream's reader went away first */
  readonly done: Promise<void>;
  /** gives a chunk of `stream` back once it is written out, so its memory is reused (TarWriter.recycle) */
  readonly recycle: (chunk: Buffer) => void;
}

const UTF8_BOM = "\uFEFF";



// The package is CommonJS with `factory.default = factory`; its typings describe only the default.
type IgnoreFactory = typeof dockerignore.default;
const ignore: IgnoreFactory = (dockerignore as unknown as { default?: IgnoreFactory }).default ?? (dockerignore as unknown as IgnoreFactory);

/** Reads `.dockerignore` the way Docker's ReadAll does: comments, trimming, Clean, no leading '/'. */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    let line = index === 0 && raw.startsWith(UTF8_BOM) ? raw.slice(1) : raw;
    if (line.startsWith("#")) return;
    line = line.trim();
    if (line === "") return;
    const invert = line.startsWith("!");
    if (invert) line = line.slice(1).trim();
    if (line.length > 0) {
      line = posix.normalize(line);
      if (line.length > 1 && line.endsWith("/")) line = line.slice(0, -1);
      if (line.length > 1 && line.startsWith("/")) line = line.slice(1);
    }
    patterns.push(invert ? `!${line}` : line);
  });
  return patterns;
}

function contextError(message: string, cause?: unknown, hint = "Make the file readable, or exclude it in .dockerignore."): RerollError {
  return new RerollError("E_BUILD_CONTEXT", message, { kind: "failed", hint, cause });
}

export async function createBuildContext(options: BuildContextOptions): Promise<BuildContext> {
  const { context } = options;
  const contextStat = await lstat(context).catch(() => undefined);
  if (contextStat === undefined || !contextStat.isDirectory()) {
    throw new RerollError("E_BUILD_CONTEXT", `The build context ${context} is not a directory.`, {
      hint: "Check build.context in the Compose file.",
    });
  }
  const dockerfileStat = await lstat(options.dockerfile).catch(() => undefined);
  if (dockerfileStat === undefined) {
    throw new RerollError("E_BUILD_CONTEXT", `There is no Dockerfile at ${options.dockerfile}.`, {
      hint: "Check build.dockerfile in the Compose file (it is relative to the build context).",
    });
  }

  const ignorePath = join(context, ".dockerignore");
  const ignoreText = await readFile(ignorePath, "utf8").catch(() => undefined);
  const patterns = ignoreText === undefined ? [] : parseDockerignore(ignoreText);

  const rel = relative(context, options.dockerfile);
  const inside = rel !== "" && !rel.startsWith("..") && !rel.startsWith(sep);
  // node:crypto only for a Dockerfile outside the context: its loading would delay every build request
  const dockerfileInTar = inside ? rel.split(sep).join("/") : `.dockerfile.${(await import("node:crypto")).randomBytes(10).toString("hex")}`;

  // The CLI's TrimBuildFilesFromExcludes: the Dockerfile and .dockerignore are always sent.
  const probe = ignore().add(patterns);
  if (probe.ignores(".dockerignore")) patterns.push("!.dockerignore");
  if (inside && probe.ignores(dockerfileInTar)) patterns.push(`!${dockerfileInTar}`);
  const matcher = ignore().add(patterns);
  const exceptions = patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1));

  const tar = new TarWriter();
  const stats: ContextStats = { files: 0, bytes: 0 };
  const hardLinks = new Map<string, string>();
  let sawDockerignore = false;

  const addEntry = (header: TarHeader, body?: Buffer | string): Promise<void> => tar.add(header, body);

  const addFile = async (absolute: string, name: string, st: Stats): Promise<void> => {
    try {
      await tar.addFile({ name, type: "file", mode: st.mode & 0o7777, mtime: st.mtime }, absolute, st.size);
    } catch (error) {
      if (error instanceof TarEntryChangedError) {
        throw contextError(
          `${absolute} changed while the build context was being sent.`,
          error,
          "Build again once nothing is writing to it, or exclude it in .dockerignore if it is output (a log, a build artefact).",
        );
      }
      throw error;
    }
    stats.files += 1;
    stats.bytes += st.size;
  };

  const walk = async (dir: string, relDir: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (error) {
      throw contextError(`Cannot read the directory ${dir} of the build context.`, error);
    }
    for (const name of names) {
      const absolute = join(dir, name);
      const relPath = relDir === "" ? name : `${relDir}/${name}`;
      let st: Stats;
      try {
        st = lstatSync(absolute);
      } catch (error) {
        throw contextError(`Cannot read ${absolute} in the build context.`, error);
      }
      if (matcher.ignores(relPath)) {
        if (!st.isDirectory()) continue;
        // An excluded directory: Docker walks into it only when an exception pattern starts under it.
        const dirSlash = `${relPath}/`;
        if (exceptions.some((p) => `${p}/`.startsWith(dirSlash))) await walk(absolute, relPath);
        continue;
      }
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        await addEntry({ name: `${relPath}/`, type: "directory", mode, mtime: st.mtime });
        await walk(absolute, relPath);
      } else if (st.isSymbolicLink()) {
        await addEntry({ name: relPath, type: "symlink", linkname: readlinkSync(absolute), mode, mtime: st.mtime });
      } else if (st.isFile()) {
        if (relPath === ".dockerignore" && !inside) {
          sawDockerignore = true;
          const text = `${readFileSync(absolute, "utf8")}\n${dockerfileInTar}\n`;
          await addEntry({ name: relPath, type: "file", mode, mtime: st.mtime }, text);
          continue;
        }
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? hardLinks.get(key) : undefined;
        if (first !== undefined) {
          await addEntry({ name: relPath, type: "link", linkname: first, mode, mtime: st.mtime });
          continue;
        }
        if (st.nlink > 1) hardLinks.set(key, relPath);
        try {
          await addFile(absolute, relPath, st);
        } catch (error) {
          throw error instanceof RerollError || error instanceof TarReaderGoneError ? error : contextError(`Cannot read ${absolute} in the build context.`, error);
        }
      } else if (st.isFIFO()) {
        await addEntry({ name: relPath, type: "fifo", mode, mtime: st.mtime });
      }
      // sockets and devices are not sent, as with `docker build`
    }
  };

  const done = (async () => {
    try {
      await walk(context, "");
      if (!inside) {
        const now = new Date();
        if (!sawDockerignore) await addEntry({ name: ".dockerignore", type: "file", mode: 0o600, mtime: now }, `\n${dockerfileInTar}\n`);
        await addEntry({ name: dockerfileInTar, type: "file", mode: 0o600, mtime: now }, await readFile(options.dockerfile));
      }
      await tar.finish();
    } catch (error) {
      const failure = error instanceof RerollError || error instanceof TarReaderGoneError ? error : contextError(`Sending the build context ${context} failed.`, error);
      tar.destroy(failure);
      throw failure;
    }
  })();
  // The walk's failure is reported through `done` and the stream; never as an unhandled rejection.
  done.catch(() => undefined);

  return { stream: tar.stream, dockerfile: dockerfileInTar, stats, done, recycle: tar.recycle };
}
