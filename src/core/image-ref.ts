import { RerollError } from "./errors.js";

/**
 * Image references as Docker normalises them (the distribution/reference grammar):
 * `nginx`, `library/nginx` and `docker.io/library/nginx` name one repository;
 * `localhost:5000/nginx`, `bitnami/nginx` and `[::1]:5000/tools/x` name others.
 */

export const DEFAULT_DOMAIN = "docker.io";
const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
const OFFICIAL_NAMESPACE = "library";
const MAX_TAG_LENGTH = 128;

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/** A parsed reference, with the position of each part in the text it was parsed from. */
export interface ImageRef {
  /** the text as written */
  readonly text: string;
  /** the name as written (domain and path), without tag or digest */
  readonly name: string;
  /** registry host (and port) after normalisation: `docker.io` by default */
  readonly domain: string;
  /** repository path after normalisation: `library/nginx` */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  /** [start, end) of the name in `text` */
  readonly nameRange: readonly [number, number];
  /** [start, end) of the tag (without ':') in `text`, when there is one */
  readonly tagRange: readonly [number, number] | undefined;
}

export function isValidTag(tag: string): boolean {
  return tag.length <= MAX_TAG_LENGTH && TAG_RE.test(tag);
}

export function isValidDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

/** Parses `text` as an image reference; returns a reason instead of throwing. */
export function tryParseImageRef(text: string): ImageRef | string {
  if (text.length === 0) return "the reference is empty";
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest)) return `"${digest}" is not a valid digest (expected algorithm:hex)`;
  }
  let tag: string | undefined;
  let tagRange: [number, number] | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  // A bracketed IPv6 host with no path ("[::1]:5000") has no tag: the colon belongs to the host.
  if (colon !== -1 && !(lastSlash === -1 && rest.startsWith("["))) {
    tag = rest.slice(colon + 1);
    tagRange = [colon + 1, rest.length];
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) return `"${tag}" is not a valid tag (letters, digits, '_', '.', '-'; at most 128)`;
  }
  const name = rest;
  const { domain, path } = splitDomain(name);
  if (domain !== undefined && !DOMAIN_RE.test(domain)) return `"${domain}" is not a valid registry host`;
  if (path.length === 0) return `"${text}" has no repository name`;
  for (const component of path.split("/")) {
    if (!PATH_COMPONENT_RE.test(component)) {
      return component.toLowerCase() !== component
        ? `repository names must be lowercase ("${component}")`
        : `"${component}" is not a valid repository name component`;
    }
  }
  const normalisedDomain = domain === undefined || domain === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : domain;
  const normalisedPath =
    normalisedDomain === DEFAULT_DOMAIN && !path.includes("/") ? `${OFFICIAL_NAMESPACE}/${path}` : path;
  return {
    text,
    name,
    domain: normalisedDomain,
    path: normalisedPath,
    tag,
    digest,
    nameRange: [0, name.length],
    tagRange,
  };
}

export function parseImageRef(text: string, what = "image reference"): ImageRef {
  const ref = tryParseImageRef(text);
  if (typeof ref === "string") {
    throw new RerollError("E_BAD_REFERENCE", `Invalid ${what} "${text}": ${ref}.`, {
      hint: "Write it as Docker does: [registry[:port]/]repository[:tag], for example nginx:1.19 or localhost:5000/app.",
    });
  }
  return ref;
}

/**
 * Docker's rule: the first component is a registry host when it contains '.' or ':',
 * is "localhost", or has an upper-case letter; otherwise the name is on Docker Hub.
 */
function splitDomain(name: string): { domain: string | undefined; path: string } {
  const slash = name.indexOf("/");
  if (slash === -1) return { domain: undefined, path: name };
  const first = name.slice(0, slash);
  const isDomain = /[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first;
  return isDomain ? { domain: first, path: name.slice(slash + 1) } : { domain: undefined, path: name };
}

/** The fully qualified repository: `docker.io/library/nginx`. Two refs name one image iff these are equal. */
export function repositoryKey(ref: Pick<ImageRef, "domain" | "path">): string {
  return `${ref.domain}/${ref.path}`;
}

/** The short form the docker CLI shows: `nginx`, `bitnami/nginx`, `localhost:5000/app`. */
export function familiarName(ref: Pick<ImageRef, "domain" | "path">): string {
  if (ref.domain !== DEFAULT_DOMAIN) return `${ref.domain}/${ref.path}`;
  return ref.path.startsWith(`${OFFICIAL_NAMESPACE}/`) ? ref.path.slice(OFFICIAL_NAMESPACE.length + 1) : ref.path;
}
