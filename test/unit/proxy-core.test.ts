import { createServer, request, type IncomingMessage } from "node:http";
import { connect, type AddressInfo, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpProxy } from "../../src/proxy/http-proxy.js";
import { TargetPool } from "../../src/proxy/pool.js";
import { closeLoopback, listen, until } from "../support/loopback.js";

/** reroll-proxy's HTTP core against real loopback servers (no Docker): what a client sees. */

afterEach(closeLoopback);

/** An upstream that answers with its name, the headers it got, and waits ?delay= ms first. */
async function upstream(name: string): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    const delay = Number(new URL(req.url ?? "/", "http://x").searchParams.get("delay") ?? 0);
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () =>
      setTimeout(() => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ name, headers: req.headers, body }));
      }, delay),
    );
  });
  server.on("upgrade", (_req, socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n");
    socket.on("data", (chunk: Buffer) => socket.write(`${name}:${chunk.toString()}`));
    socket.on("end", () => socket.end());
  });
  return { port: await listen(server), server };
}

/** A pool with one upstream per name, and a proxy in front of it. */
async function proxied(...names: string[]) {
  const pool = new TargetPool();
  for (const name of names) pool.add(name, "127.0.0.1", (await upstream(name)).port);
  return { pool, ...(await proxyOn(pool)) };
}

async function proxyOn(pool: TargetPool) {
  const proxy = createHttpProxy({ pool, connectTimeoutMs: 500 });
  return { proxy, port: await listen(proxy.server) };
}

function get(port: number, path = "/", options: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers ?? {}, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe("reroll-proxy HTTP core", () => {
  it("balances over the ready targets and sets X-Forwarded-For/-Proto/-Host", async () => {
    const { port } = await proxied("a", "b");
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(port, "/", { headers: { host: "shop.example" } })));
    const names = answers.map((r) => (JSON.parse(r.body) as { name: string }).name);
    expect(new Set(names)).toEqual(new Set(["a", "b"]));
    const headers = (JSON.parse(answers[0]!.body) as { headers: Record<string, string> }).headers;
    expect(headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(headers["x-forwarded-proto"]).toBe("http");
    expect(headers["x-forwarded-host"]).toBe("shop.example");
    expect(headers["host"]).toBe("shop.example");
  });

  it("a target that refuses connections costs no request: each goes to another ready target", async () => {
    const live = await upstream("live");
    const pool = new TargetPool();
    pool.add("dead", "127.0.0.1", await closedPort());
    pool.add("live", "127.0.0.1", live.port);
    const { port } = await proxyOn(pool);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => get(port, `/?i=${i}`, { method: i % 2 === 0 ? "GET" : "POST", body: i % 2 === 0 ? undefined : `body-${i}` })));
    expect(answers.map((r) => r.status)).toEqual(Array(40).fill(200));
    // a POST retried after a failed connect still carries its whole body
    expect((JSON.parse(answers[1]!.body) as { body: string }).body).toBe("body-1");
  });

  it("no ready target: 503 with Retry-After at once, not a hang", async () => {
    const pool = new TargetPool();
    const { port } = await proxyOn(pool);
    const started = Date.now();
    const answer = await get(port);
    expect(answer.status).toBe(503);
    expect(answer.headers["retry-after"]).toBe("1");
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("draining: a 2 s request in flight completes with 200, new requests go elsewhere, the drain waits for it", async () => {
    const old = await upstream("old");
    const fresh = await upstream("new");
    const pool = new TargetPool();
    pool.add("old", "127.0.0.1", old.port);
    const { port } = await proxyOn(pool);
    const slow = get(port, "/?delay=2000");
    await new Promise((r) => setTimeout(r, 200));
    pool.add("new", "127.0.0.1", fresh.port);
    const drainStarted = Date.now();
    const drained = pool.drain("old", 10_000);
    const during = await get(port);
    expect((JSON.parse(during.body) as { name: string }).name).toBe("new");
    const result = await drained;
    expect(result).toEqual({ drained: true, outstanding: 0 });
    expect(Date.now() - drainStarted).toBeGreaterThan(1500);
    const slowAnswer = await slow;
    expect(slowAnswer.status).toBe(200);
    expect((JSON.parse(slowAnswer.body) as { name: string }).name).toBe("old");
  });

  it("a drain is bounded by its timeout", async () => {
    const { pool, port } = await proxied("old");
    const slow = get(port, "/?delay=1500");
    await new Promise((r) => setTimeout(r, 100));
    expect(await pool.drain("old", 300)).toEqual({ drained: false, outstanding: 1 });
    expect((await slow).status).toBe(200);
  });

  it("passes an Upgrade through and keeps the connection while the target drains", async () => {
    const { pool, port } = await proxied("a");
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (c: Buffer) => (received += c.toString()));
    socket.write("GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n");
    await until(() => received.includes("101 Switching Protocols"));
    const drained = pool.drain("a", 400);
    socket.write("ping");
    await until(() => received.includes("a:ping"));
    // the open connection counts as outstanding: the drain runs to its timeout
    expect(await drained).toEqual({ drained: false, outstanding: 1 });
    socket.destroy();
  });

  it("a body over the limit is refused with 413 and never forwarded", async () => {
    const a = await upstream("a");
    const pool = new TargetPool();
    pool.add("a", "127.0.0.1", a.port);
    const proxy = createHttpProxy({ pool, maxBodyBytes: 1024 });
    const port = await listen(proxy.server);
    const answer = await get(port, "/", { method: "POST", body: "x".repeat(4096) });
    expect(answer.status).toBe(413);
  });
});
