import { join } from "node:path";
import { homedir } from "node:os";
import { bump } from "../../bump/bump.js";
import { listedTags, localTags, registryTags, type TagSource } from "../../bump/tag-sources.js";
import { dockerConfigCredentials } from "../../registry/credentials.js";
import type { CliIo } from "../io.js";
import type { BumpCommandOptions } from "../program.js";
import { renderBump } from "../render/bump.js";
import { resolveOutputMode } from "../render/output-mode.js";

/** Flags → library call → rendered result. */
export async function runBump(options: BumpCommandOptions, io: CliIo): Promise<void> {
  const result = await bump({
    dockerfile: options.dockerfile,
    ...(options.image === undefined ? {} : { image: options.image }),
    ...(options.stage === undefined ? {} : { stage: options.stage }),
    ...(options.to === undefined ? {} : { to: options.to }),
    ...(options.level === undefined ? {} : { level: options.level }),
    ...(options.tagsFrom === undefined ? {} : { tags: tagSource(options.tagsFrom, io) }),
    dryRun: options.dryRun,
  });
  renderBump(result, resolveOutputMode(options.global.output, io), options.dryRun, io);
}

function tagSource(from: NonNullable<BumpCommandOptions["tagsFrom"]>, io: CliIo): TagSource {
  switch (from.kind) {
    case "local":
      return localTags(async () => {
        const { connectEngine } = await import("../engine.js");
        return connectEngine(io);
      });
    case "registry": {
      const configDir = io.env["DOCKER_CONFIG"] ?? join(io.env["HOME"] ?? homedir(), ".docker");
      return registryTags({ credentials: dockerConfigCredentials(configDir) });
    }
    case "list":
      return listedTags(from.path, () => io.readStdin());
  }
}
