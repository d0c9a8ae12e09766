import { RerollError } from "../core/errors.js";
import { tryParseImageRef, type ImageRef } from "../core/image-ref.js";

export interface ComposeImageEdit {
  readonly service: string;
  readonly from: string;
  readonly to: string;
}

/**
 * `--bump` for services that run an `image:` as is (no build): the tag in that `image:` value
 * of the Compose file, edited in place. Only the tag's bytes change; quotes, comments, key
 * order and every other byte stay, as with a Dockerfile. A value the file does not spell out
 * (a variable, an alias, a merge key, an escape) is refused: the edit would land elsewhere.
 */
export async function bumpComposeImages(
  source: string,
  file: string,
  services: readonly string[],
  to: ImageRef,
): Promise<{ readonly text: string; readonly edits: readonly ComposeImageEdit[] }> {
  const yaml = (await import("yaml")) as typeof import("yaml") & { default?: typeof import("yaml") };
  const { isScalar, parseDocument } = yaml.default ?? yaml;
  const document = parseDocument(source);
  const replacements: { start: number; end: number; text: string; edit: ComposeImageEdit }[] = [];
  for (const service of services) {
    const path = `services.${service}.image`;
    const refuse = (why: string): never => {
      throw new RerollError("E_BUMP_UNSUPPORTED", `--bump cannot edit ${path} in ${file}: ${why}.`, {
        hint: `Edit the tag there by hand and run reroll up, or write the image in the service itself (image: ${to.name}:${to.tag ?? ""}).`,
      });
    };
    const node = document.getIn(["services", service, "image"], true);
    if (!isScalar(node) || node.range === undefined || node.range === null) return refuse("its value is not written in the service (an alias or a merge key)");
    const [start, end] = node.range;
    const raw = source.slice(start, end);
    const quote = raw.startsWith('"') || raw.startsWith("'") ? raw[0]! : "";
    const inner = quote === "" ? raw : raw.slice(1, -1);
    if (inner.includes("$")) return refuse(`its value (${inner}) comes from variables; set the tag where they are defined`);
    if (inner !== node.value || (quote === '"' && inner.includes("\\"))) return refuse("its value is not plain text (a block scalar or an escape)");
    const current = tryParseImageRef(inner);
    if (typeof current === "string") return refuse(current);
    if (current.digest !== undefined) return refuse(`${inner} is pinned by digest, which a new tag would contradict`);
    const tag = to.tag!;
    const replaced =
      current.tagRange === undefined
        ? `${inner.slice(0, current.nameRange[1])}:${tag}${inner.slice(current.nameRange[1])}`
        : `${inner.slice(0, current.tagRange[0])}${tag}${inner.slice(current.tagRange[1])}`;
    if (replaced === inner) continue;
    replacements.push({ start, end, text: `${quote}${replaced}${quote}`, edit: { service, from: inner, to: replaced } });
  }
  let text = source;
  // from the end, so the earlier offsets hold
  for (const r of [...replacements].sort((a, b) => b.start - a.start)) text = `${text.slice(0, r.start)}${r.text}${text.slice(r.end)}`;
  return { text, edits: replacements.map((r) => r.edit) };
}
