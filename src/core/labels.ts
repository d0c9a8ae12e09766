/**
 * The labels reroll keeps its state in. Everything reroll creates carries `project`; reroll
 * never touches a container or image without it.
 */
export const LABEL_PROJECT = "dev.reroll.project";
export const LABEL_SERVICE = "dev.reroll.service";
export const LABEL_REVISION = "dev.reroll.revision";
/** on a revision image: the id of the image the build produced, before reroll labelled it */
export const LABEL_BUILD_ID = "dev.reroll.build-id";
/** on a revision image: JSON [{ref, id}] of the base images its FROM lines resolved to */
export const LABEL_BASE_IMAGES = "dev.reroll.base-images";
export const LABEL_GIT_COMMIT = "dev.reroll.git-commit";
/** on a lock container: who holds it (JSON {pid, host, command, since}) */
export const LABEL_LOCK_HOLDER = "dev.reroll.lock-holder";
/** on a reroll-proxy container: the service whose ports it publishes */
export const LABEL_PROXY_FOR = "dev.reroll.proxy-for";

export function projectFilter(project: string): string {
  return `${LABEL_PROJECT}=${project}`;
}

export function serviceFilters(project: string, service: string): string[] {
  return [`${LABEL_PROJECT}=${project}`, `${LABEL_SERVICE}=${service}`];
}
