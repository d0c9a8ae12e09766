import { createServer, type IncomingMessage, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseImageRef } from "../../src/core/image-ref.js";
import { RerollError } from "../../src/core/errors.js";
import { listRegistryTags } from "../../src/registry/tags.js";

/**
 * The Bearer challenge flow Docker Hub, GHCR and most registries use: 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, a token from the realm (with basic
 * credentials when there are any), then the request again with the token.
 */
describe("registry token flow", () => {
  let server: Server;
  let base: string;
  const tokenRequests: { auth: string | undefined; service: string | null; scope: string | null }[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const url = new URL(req.url!, base);
      if (url.pathname === "/token") {
        tokenRequests.push({ auth: req.headers.authorization, service: url.searchParams.get("service"), scope: url.searchParams.get("scope") });
        const anonymous = req.headers.authorization === undefined;
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify(anonymous ? { token: "anon-token" } : { access_token: "user-token" }));
        return;
      }
      const repo = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname)?.[1];
      const token = req.headers.authorization?.replace(/^Bearer /, "");
      const allowed = repo === "library/nginx" ? token !== undefined : token === "user-token";
      if (!allowed) {
        res.writeHead(401, {
          "WWW-Authenticate": `Bearer realm="${base}/token",service="test-registry",scope="repository:${repo}:pull"`,
        });
        res.end();
        return;
      }
      const page = url.searchParams.get("last") === null ? 0 : 1;
      const tags = page === 0 ? ["1.18", "1.19"] : ["1.20"];
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (page === 0) headers["Link"] = `</v2/${repo}/tags/list?n=2&last=1.19>; rel="next"`;
      res.writeHead(200, headers);
      res.end(JSON.stringify({ name: repo, tags }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("takes an anonymous token and keeps it across pages", async () => {
    const host = new URL(base).host;
    const tags = await listRegistryTags(parseImageRef(`${host}/library/nginx`), { pageSize: 2 });
    expect(tags).toEqual(["1.18", "1.19", "1.20"]);
    expect(tokenRequests.at(-1)).toEqual({ auth: undefined, service: "test-registry", scope: "repository:library/nginx:pull" });
  });

  it("sends stored credentials to the token service, never to the logs", async () => {
    const host = new URL(base).host;
    const credentials = async (h: string) => (h === host ? { username: "me", password: "hunter2" } : undefined);
    const tags = await listRegistryTags(parseImageRef(`${host}/team/private`), { credentials });
    expect(tags).toEqual(["1.18", "1.19", "1.20"]);
    expect(tokenRequests.at(-1)?.auth).toBe(`Basic ${Buffer.from("me:hunter2").toString("base64")}`);
  });

  it("without credentials for a private repository: E_REGISTRY_AUTH with what to do", async () => {
    const host = new URL(base).host;
    const error = await listRegistryTags(parseImageRef(`${host}/team/private`)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RerollError);
    expect((error as RerollError).code).toBe("E_REGISTRY_AUTH");
    expect((error as RerollError).hint).toMatch(/docker login/);
  });

  it("an address where no registry answers: E_REGISTRY_UNREACHABLE", async () => {
    const error = await listRegistryTags(parseImageRef("127.0.0.1:1/x/y"), { timeoutMs: 2000 }).catch((e: unknown) => e);
    expect((error as RerollError).code).toBe("E_REGISTRY_UNREACHABLE");
  });
});
