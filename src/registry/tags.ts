import { RerollError } from "../core/errors.js";
import { DEFAULT_DOMAIN, type ImageRef } from "../core/image-ref.js";
import type { CredentialLookup, RegistryCredentials } from "./credentials.js";

/**
 * Lists a repository's tags over the Registry HTTP API v2 (`GET /v2/<name>/tags/list`),
 * following `Link: <…>; rel="next"` pages and the registry's auth challenge: a Bearer
 * token from the realm it names (anonymous, or with the docker CLI's credentials), or Basic.
 */

export const REGISTRY_PAGE_SIZE = 1000;
export const REGISTRY_REQUEST_TIMEOUT_MS = 15_000;
const MAX_PAGES = 200;
const DOCKER_HUB_API_HOST = "registry-1.docker.io";

export interface RegistryTagOptions {
  readonly credentials?: CredentialLookup;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  /** tags asked for per page (`?n=`); the registry may send fewer and a Link to the next page */
  readonly pageSize?: number;
}

type Fetch = typeof fetch;

function isLoopback(host: string): boolean {
  const hostname = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0]!;
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function registryError(code: string, message: string, hint: string, cause?: unknown): RerollError {
  return new RerollError(code, message, { hint, cause });
}

interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

export function parseChallenge(header: string | null): Challenge | undefined {
  if (header === null) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const p of (match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
  return { scheme: match[1]!.toLowerCase(), params };
}

function basic(credentials: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
}

export async function listRegistryTags(
  repo: Pick<ImageRef, "domain" | "path">,
  options: RegistryTagOptions = {},
  fetchImpl: Fetch = fetch,
): Promise<string[]> {
  const host = repo.domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : repo.domain;
  const timeoutMs = options.timeoutMs ?? REGISTRY_REQUEST_TIMEOUT_MS;
  const where = `${repo.domain}/${repo.path}`;

  const request = async (url: string, authorization: string | undefined): Promise<Response> => {
    const signals = [AbortSignal.timeout(timeoutMs), ...(options.signal === undefined ? [] : [options.signal])];
    try {
      return await fetchImpl(url, {
        headers: { Accept: "application/json", ...(authorization === undefined ? {} : { Authorization: authorization }) },
        signal: AbortSignal.any(signals),
        redirect: "follow",
      });
    } catch (error) {
      throw registryError(
        "E_REGISTRY_UNREACHABLE",
        `The registry ${host} did not answer (${url.replace(/\?.*/, "")}).`,
        "Check the registry address and the network, or choose tags with --tags-from local|FILE.",
        error,
      );
    }
  };

  // Docker talks plain HTTP to a loopback registry when HTTPS is not offered there.
  let base = `https://${host}`;
  let first: Response;
  const firstPath = `/v2/${repo.path}/tags/list?n=${options.pageSize ?? REGISTRY_PAGE_SIZE}`;
  try {
    first = await request(base + firstPath, undefined);
  } catch (error) {
    if (!isLoopback(host)) throw error;
    base = `http://${host}`;
    first = await request(base + firstPath, undefined);
  }

  let authorization: string | undefined;
  if (first.status === 401) {
    authorization = await authorize(first.headers.get("www-authenticate"));
    await first.body?.cancel();
    first = await request(base + firstPath, authorization);
  }

  const tags: string[] = [];
  let response = first;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    if (response.status === 401 || response.status === 403) {
      throw registryError(
        "E_REGISTRY_AUTH",
        `The registry ${host} refused to list the tags of ${repo.path} (HTTP ${response.status}).`,
        `Log in with \`docker login ${repo.domain}\`, or choose tags with --tags-from local|FILE.`,
      );
    }
    if (response.status === 404) {
      throw registryError(
        "E_REGISTRY_NOT_FOUND",
        `The registry ${host} has no repository ${repo.path}.`,
        "Check the image name in the FROM line.",
      );
    }
    if (!response.ok) {
      throw registryError(
        "E_REGISTRY_RESPONSE",
        `The registry ${host} answered HTTP ${response.status} for the tags of ${where}.`,
        "Try again later, or choose tags with --tags-from local|FILE.",
      );
    }
    const body = (await response.json().catch(() => undefined)) as { tags?: unknown } | undefined;
    if (body === undefined || (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags))) {
      throw registryError(
        "E_REGISTRY_RESPONSE",
        `The registry ${host} sent a tag list that is not JSON of the form {"tags": [...]}.`,
        "Check that the address is a Docker registry (Registry HTTP API v2).",
      );
    }
    for (const tag of (body.tags as unknown[] | null | undefined) ?? []) if (typeof tag === "string") tags.push(tag);
    const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get("link") ?? "")?.[1];
    if (next === undefined) return tags;
    response = await request(new URL(next, base).toString(), authorization);
  }
  return tags;

  async function authorize(header: string | null): Promise<string> {
    const challenge = parseChallenge(header);
    const credentials = await options.credentials?.(repo.domain);
    if (challenge?.scheme === "basic") {
      if (credentials === undefined) {
        throw registryError(
          "E_REGISTRY_AUTH",
          `The registry ${host} asks for a login to list the tags of ${repo.path}.`,
          `Log in with \`docker login ${repo.domain}\`, or choose tags with --tags-from local|FILE.`,
        );
      }
      return basic(credentials);
    }
    const realm = challenge?.params["realm"];
    if (challenge?.scheme !== "bearer" || realm === undefined) {
      throw registryError(
        "E_REGISTRY_AUTH",
        `The registry ${host} asked for an authentication reroll does not know (${header ?? "no challenge"}).`,
        "Choose tags with --tags-from local|FILE.",
      );
    }
    const url = new URL(realm);
    if (challenge.params["service"] !== undefined) url.searchParams.set("service", challenge.params["service"]);
    url.searchParams.set("scope", challenge.params["scope"] ?? `repository:${repo.path}:pull`);
    const tokenResponse = await request(url.toString(), credentials === undefined ? undefined : basic(credentials));
    if (!tokenResponse.ok) {
      throw registryError(
        "E_REGISTRY_AUTH",
        `The registry's token service (${url.host}) refused a pull token for ${repo.path} (HTTP ${tokenResponse.status}).`,
        `Log in with \`docker login ${repo.domain}\`, or choose tags with --tags-from local|FILE.`,
      );
    }
    const token = (await tokenResponse.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const value = token.token ?? token.access_token;
    if (value === undefined) {
      throw registryError(
        "E_REGISTRY_AUTH",
        `The registry's token service (${url.host}) answered without a token.`,
        "Choose tags with --tags-from local|FILE.",
      );
    }
    return `Bearer ${value}`;
  }
}
