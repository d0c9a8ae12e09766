import { readFile } from "node:fs/promises";
import { RerollError } from "../core/errors.js";
import { isValidTag, repositoryKey, tryParseImageRef, type ImageRef } from "../core/image-ref.js";
import type { Engine } from "../engine/port.js";
import { listRegistryTags, type RegistryTagOptions } from "../registry/tags.js";

/** Where candidate tags for a level bump come from. */
export type TagSource = (repository: Pick<ImageRef, "domain" | "path">) => Promise<readonly string[]>;

/** The daemon's own tags of the repository (`docker images nginx`). */
export function localTags(engine: () => Promise<Engine>): TagSource {
  return async (repository) => {
    const wanted = repositoryKey(repository);
    const images = await (await engine()).listImages();
    const tags = new Set<string>();
    for (const image of images) {
      for (const repoTag of image.repoTags) {
        const ref = tryParseImageRef(repoTag);
        if (typeof ref !== "string" && ref.tag !== undefined && repositoryKey(ref) === wanted) tags.add(ref.tag);
      }
    }
    return [...tags];
  };
}

/** The registry's tag list over the Registry HTTP API v2. */
export function registryTags(options: RegistryTagOptions = {}): TagSource {
  return (repository) => listRegistryTags(repository, options);
}

/** One tag per line; blank lines and `#` comments are skipped. `what` names the source in errors. */
export function parseTagList(text: string, what: string): string[] {
  const tags: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    if (!isValidTag(line)) {
      throw new RerollError("E_TAGS_LIST", `${what}, line ${index + 1}: "${line}" is not a Docker tag.`, {
        hint: "Give one tag per line, such as 1.19 or 20.10.0-alpine3.18.",
      });
    }
    tags.push(line);
  });
  return tags;
}

/** Tags listed in a file, or on standard input when `path` is "-" (read through `readStdin`). */
export function listedTags(path: string, readStdin: () => Promise<string>): TagSource {
  return async () => {
    if (path === "-") return parseTagList(await readStdin(), "standard input");
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      throw new RerollError("E_TAGS_FILE", `Cannot read the tag list ${path}.`, {
        hint: "--tags-from takes local, registry, a file with one tag per line, or - for standard input.",
        cause: error,
      });
    }
    return parseTagList(text, path);
  };
}
