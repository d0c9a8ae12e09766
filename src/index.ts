/** reroll's library API: the same operations as the CLI, as typed functions. Named exports only. */
export { RerollError, isRerollError, redactSecrets, type ErrorKind } from "./core/errors.js";
export {
  parseImageRef,
  tryParseImageRef,
  repositoryKey,
  familiarName,
  isValidTag,
  type ImageRef,
} from "./core/image-ref.js";
export { parseDockerfile, type ParsedDockerfile, type Instruction, type Located, type Directive } from "./core/dockerfile/parse.js";
export { analyzeBaseImages, type BaseImages, type FromLine, type FromKind, type MetaArg } from "./core/dockerfile/base-images.js";
export {
  findBumpTargets,
  planBump,
  applyEdits,
  type BumpPlan,
  type BumpChange,
  type BumpTargets,
  type TagSpec,
  type TextEdit,
} from "./core/dockerfile/plan-bump.js";
export {
  parseVersionTag,
  bumpSyntactic,
  pickCandidate,
  chooseTag,
  compareNumbers,
  type BumpLevel,
  type VersionTag,
  type TagChoice,
} from "./core/tag-policy.js";
export { unifiedDiff } from "./core/diff.js";
export { bump, DEFAULT_DOCKERFILE, type BumpOptions, type BumpResult } from "./bump/bump.js";
export { localTags, registryTags, listedTags, parseTagList, type TagSource } from "./bump/tag-sources.js";
export { listRegistryTags, type RegistryTagOptions } from "./registry/tags.js";
export { dockerConfigCredentials, type CredentialLookup, type RegistryCredentials } from "./registry/credentials.js";
export { createDockerEngine } from "./engine/docker-engine.js";
export { dockerConnectionFromEnv } from "./engine/connection.js";
export type { Engine, ImageSummary, DockerConnection } from "./engine/port.js";
export { writeFileAtomic } from "./fs/atomic-write.js";
