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
export { loadSpec, findComposeFile, COMPOSE_FILE_NAMES, type LoadSpecOptions } from "./spec/load.js";
export { validateSpec, type ValidateContext } from "./core/spec/validate.js";
export type {
  Spec,
  ServiceSpec,
  BuildSpec,
  PortSpec,
  VolumeMount,
  HealthcheckSpec,
  DeploySpec,
  UpdateConfig,
  ProxySettings,
  VolumeSpec,
  RerollSettings,
} from "./core/spec/types.js";
export { DEFAULT_UPDATE_CONFIG, DEFAULT_ROLLBACK_CONFIG, DEFAULT_HISTORY } from "./core/spec/types.js";
export { build, pruneRevisions, DEFAULT_BUILD_PARALLELISM, type BuildOptions, type BuildResult, type BuiltImage } from "./build/build.js";
export { createBuildContext, parseDockerignore, type BuildContext, type BuildContextOptions } from "./build/context.js";
export { EVENT_SCHEMA_VERSION, type RerollEvent, type BuildEvent, type EventSink } from "./core/events.js";
export * as labels from "./core/labels.js";
export {
  up,
  rollback,
  type UpOptions,
  type RollbackOptions,
  type RolloutOptions,
  type RolloutResult,
  type ServiceOutcome,
} from "./rollout/up.js";
export { status, history, down, type ProjectStatus, type ServiceStatus, type ReplicaStatus, type HistoryEntry } from "./rollout/inspect.js";
export { proxyStatuses, type ProxyStatus } from "./proxy/manage.js";
export type { VerifyReport } from "./core/events.js";
