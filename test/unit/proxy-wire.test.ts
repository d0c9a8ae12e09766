import { createHash } from "node:crypto";
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, createServer as createNetServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpProxy } from "../../src/proxy/http-proxy.js";
import { ChunkedEnd, parseRequestHead, parseResponseHead } from "../../src/proxy/http-wire.js";
import { TargetPool } from "../../src/proxy/pool.js";
import { closeLoopback, listen, until } from "../support/loopback.js";

/**
 * reroll-proxy's fast path (raw sockets) against real loopback servers: message framing,
 * connection reuse on both sides, and the hand-over of unusual requests to Node's parser.
 */

afterEach(closeLoopback);

/** An upstream served by `handler`; counts the connections it accepted. */
async function upstream(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void, keepAliveTimeout = 5_000): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handler(req, res, Buffer.concat(chunks)));
  });
  server.keepAliveTimeout = keepAliveTimeout;
  server.on("connection", () => (accepted += 1));
  return { port: await listen(server), accepted: () => accepted };
}

/** An upstream that answers every request with the same raw bytes, then does `after`. */
async function rawUpstream(answer: string, after: "close" | "keep" = "keep"): Promise<number> {
  const server = createNetServer((socket) => {
    let buffered = "";
    socket.on("data", (chunk: Buffer) => {
      buffered += chunk.toString("latin1");
      while (buffered.includes("\r\n\r\n")) {
        buffered = buffered.slice(buffered.indexOf("\r\n\r\n") + 4);
        socket.write(answer);
        if (after === "close") socket.end();
      }
    });
    socket.on("error", () => undefined);
  });
  return listen(server);
}

async function proxyTo(port: number, options: Partial<Parameters<typeof createHttpProxy>[0]> = {}) {
  const pool = new TargetPool();
  pool.add("a", "127.0.0.1", port, "replica-a");
  const proxy = createHttpProxy({ pool, connectTimeoutMs: 500, ...options });
  return { pool, proxy, port: await listen(proxy.server) };
}

/** Sends raw bytes on one connection and collects what comes back until `done` says so or the connection closes. */
function raw(port: number, bytes: string | Buffer, done: (received: string) => boolean = () => false, timeoutMs = 3_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      if (done(text)) finish(false);
    });
    socket.on("end", () => finish(true));
    socket.on("error", () => finish(true));
    socket.write(bytes);
  });
}

function get(port: number, options: { path?: string; method?: string; body?: Buffer | string; headers?: Record<string, string>; agent?: Agent } = {}): Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: options.path ?? "/", method: options.method ?? "GET", headers: options.headers ?? {}, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

describe("reroll-proxy fast path: parsing", () => {
  it("rewrites a request head: hop-by-hop and Connection-named headers out, X-Forwarded-* in, the verify header kept back", () => {
    const parsed = parseRequestHead(
      ["GET /a?b=1 HTTP/1.1", "Host: shop.example", "Connection: keep-alive, X-Secret", "X-Secret: 1", "Keep-Alive: timeout=5", "X-Forwarded-For: 10.0.0.1", "x-reroll-verify: 1", "Accept: */*"].join("\r\n"),
      "127.0.0.1",
      "x-reroll-verify",
    );
    expect(parsed).toEqual({
      method: "GET",
      head: "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\nx-forwarded-for: 10.0.0.1, 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: shop.example\r\n\r\n",
      bodyLength: 0,
      keepAlive: true,
      verify: true,
    });
  });

  it("leaves to Node's parser whatever is not plain HTTP/1.1", () => {
    const unusual = [
      "GET / HTTP/1.0\r\nHost: a",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked",
      "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade",
      "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1",
      "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b",
      "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x",
      "GET / HTTP/1.1\r\nHost: a\nX-Bare-LF: 1",
      "GET  / HTTP/1.1\r\nHost: a",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b",
    ];
    for (const head of unusual) expect(parseRequestHead(head, "127.0.0.1", "x-reroll-verify"), head).toBeUndefined();
  });

  it("frames responses as RFC 9112 says: HEAD, 204, 304 and 1xx have no body; an encoding beats a length; no length means until close", () => {
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5", "HEAD")?.framing).toEqual({ kind: "length", length: 0 });
    expect(parseResponseHead("HTTP/1.1 204 No Content", "GET")?.framing).toEqual({ kind: "length", length: 0 });
    expect(parseResponseHead("HTTP/1.1 304 Not Modified\r\nContent-Length: 10", "GET")?.framing).toEqual({ kind: "length", length: 0 });
    const both = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", "GET")!;
    expect(both.framing).toEqual({ kind: "chunked" });
    expect(both.reusable).toBe(false);
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip", "GET")?.framing).toEqual({ kind: "close" });
    expect(parseResponseHead("HTTP/1.1 200 OK", "GET")).toMatchObject({ framing: { kind: "close" }, reusable: false });
    expect(parseResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 1", "GET")?.reusable).toBe(false);
    expect(parseResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive", "GET")?.reusable).toBe(true);
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close", "GET")).toMatchObject({ reusable: false, head: "HTTP/1.1 200 OK\r\nContent-Length: 1" });
    expect(parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2", "GET")).toBeUndefined();
    expect(parseResponseHead("HTTP/2 200", "GET")).toBeUndefined();
  });

  it("finds the end of a chunked body however it is split, extensions and trailers included", () => {
    const body = Buffer.from("5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer-One: x\r\n\r\nNEXT");
    const end = body.indexOf("NEXT");
    for (let split = 1; split < body.length; split += 1) {
      const scanner = new ChunkedEnd();
      const first = scanner.scan(body.subarray(0, split));
      if (first >= 0) {
        expect(first).toBe(end);
        continue;
      }
      expect(split + scanner.scan(body.subarray(split))).toBe(end);
    }
    expect(() => new ChunkedEnd().scan(Buffer.from("zz\r\n"))).toThrow(/chunk size/);
  });
});

describe("reroll-proxy fast path: traffic", () => {
  it("keeps connections alive on both sides: 50 requests on one client connection use one upstream connection", async () => {
    const up = await upstream((_req, res) => res.end("ok"));
    const { port } = await proxyTo(up.port);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const clientSockets = new Set<unknown>();
    for (let i = 0; i < 50; i += 1) {
      const answer = await get(port, { agent });
      expect(answer.body.toString()).toBe("ok");
    }
    agent.on("free", (s) => clientSockets.add(s));
    await get(port, { agent });
    expect(clientSockets.size).toBe(1);
    expect(up.accepted()).toBe(1);
    agent.destroy();
  });

  it("passes chunked responses with trailers, large bodies both ways, and HEAD/204/304 without bodies, all on one connection", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    for (let i = 0; i < big.length; i += 4093) big[i] = i % 251;
    const up = await upstream((req, res, body) => {
      if (req.url === "/chunked") {
        res.writeHead(200, { trailer: "x-sum" });
        res.write("one,");
        setTimeout(() => {
          res.write("two,");
          res.addTrailers({ "x-sum": "3" });
          res.end("three");
        }, 20);
      } else if (req.url === "/big") res.writeHead(200, { "content-length": big.length }).end(req.method === "HEAD" ? undefined : big);
      else if (req.url === "/echo") res.end(sha(body));
      else if (req.url === "/204") res.writeHead(204).end();
      else if (req.url === "/304") res.writeHead(304, { etag: '"x"' }).end();
      else res.end("plain");
    });
    const { port } = await proxyTo(up.port);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const chunked = await get(port, { path: "/chunked", agent });
    expect(chunked.body.toString()).toBe("one,two,three");
    expect(chunked.headers["transfer-encoding"]).toBe("chunked");
    expect(sha((await get(port, { path: "/big", agent })).body)).toBe(sha(big));
    expect((await get(port, { path: "/echo", method: "POST", body: big, agent })).body.toString()).toBe(sha(big));
    const head = await get(port, { path: "/big", method: "HEAD", agent });
    expect(head.headers["content-length"]).toBe(String(big.length));
    expect(head.body.length).toBe(0);
    expect((await get(port, { path: "/204", agent })).status).toBe(204);
    expect((await get(port, { path: "/304", agent })).status).toBe(304);
    expect((await get(port, { agent })).body.toString()).toBe("plain");
    expect(up.accepted()).toBe(1);
    agent.destroy();
  });

  it("answers pipelined requests in order", async () => {
    const up = await upstream((req, res) => setTimeout(() => res.end(`answer ${req.url}`), req.url === "/1" ? 50 : 0));
    const { port } = await proxyTo(up.port);
    const request = (path: string) => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const { text } = await raw(port, request("/1") + request("/2") + request("/3"), (t) => t.includes("answer /3"));
    expect([...text.matchAll(/answer \/(\d)/g)].map((m) => m[1])).toEqual(["1", "2", "3"]);
  });

  it("a body delimited by the target's close reaches the client, which is then told the connection closes", async () => {
    const target = await rawUpstream("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil close", "close");
    const { port } = await proxyTo(target);
    const { text, closed } = await raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.toLowerCase()).toContain("connection: close");
    expect(text.endsWith("\r\n\r\nuntil close")).toBe(true);
  });

  it("a target's Connection: close ends only its own connection: the client's stays open", async () => {
    const target = await rawUpstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "close");
    const { port } = await proxyTo(target);
    const request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.on("data", (c: Buffer) => (text += c.toString()));
    socket.write(request);
    await until(() => text.endsWith("ok"));
    expect(text.toLowerCase()).not.toContain("connection: close");
    socket.write(request);
    await until(() => text.split("\r\n\r\nok").length === 3);
    socket.destroy();
  });

  it("a pooled connection the target closed while idle costs no request", async () => {
    const up = await upstream((_req, res) => res.end("fresh"), 100);
    const { port } = await proxyTo(up.port);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(port, { agent })).status).toBe(200);
    // Node closes an idle connection about a second after its keepAliveTimeout
    await new Promise((r) => setTimeout(r, 1_400));
    const again = await get(port, { agent });
    expect(again.status).toBe(200);
    expect(again.body.toString()).toBe("fresh");
    expect(up.accepted()).toBe(2);
    agent.destroy();
  });

  it("hands HTTP/1.0, chunked request bodies and Expect: 100-continue to Node's parser, which forwards them too", async () => {
    const up = await upstream((req, res, body) => res.end(`${req.method} ${body.toString()}`));
    const { port } = await proxyTo(up.port);
    const old = await raw(port, "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    expect(old.text).toMatch(/^HTTP\/1\.1 200/);
    expect(old.text.endsWith("GET ")).toBe(true);
    const chunkedBody = await raw(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", (t) => t.includes("POST abc"));
    expect(chunkedBody.text).toContain("POST abc");
    const expect100 = await get(port, { method: "PUT", body: "xyz", headers: { expect: "100-continue", "content-length": "3" } });
    expect(expect100.body.toString()).toBe("PUT xyz");
    // a plain request after an unusual one on the same connection is still answered
    const mixed = await raw(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", (t) => t.includes("GET "));
    expect(mixed.text).toContain("POST q");
  });

  it("names the replica when asked (--verify) and never forwards the asking header", async () => {
    const up = await upstream((req, res) => res.end(JSON.stringify(req.headers)));
    const { port } = await proxyTo(up.port);
    const answer = await get(port, { headers: { "x-reroll-verify": "1" } });
    expect(answer.headers["x-reroll-target"]).toBe("replica-a");
    expect(JSON.parse(answer.body.toString())).not.toHaveProperty("x-reroll-verify");
    expect((await get(port)).headers["x-reroll-target"]).toBeUndefined();
  });

  it("limits: an oversized head gets 431, a slow head 408, a target that does not answer 504", async () => {
    const up = await upstream((req, res) => (req.url === "/hang" ? undefined : res.end("ok")));
    const { port } = await proxyTo(up.port, { headersTimeoutMs: 300, responseTimeoutMs: 300 });
    const huge = await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(huge.text).toMatch(/^HTTP\/1\.1 431/);
    const slow = await raw(port, "GET / HTTP/1.1\r\nHost: x\r\n");
    expect(slow.text).toMatch(/^HTTP\/1\.1 408/);
    expect(slow.closed).toBe(true);
    const hang = await get(port, { path: "/hang" });
    expect(hang.status).toBe(504);
  });

  it("a client gone mid-response frees its target: nothing stays outstanding, and the next request is served", async () => {
    const up = await upstream((req, res) => {
      if (req.url !== "/stream") return res.end("after");
      res.write("start");
      const timer = setInterval(() => res.write("."), 10);
      res.on("close", () => clearInterval(timer));
    });
    const { port, pool } = await proxyTo(up.port);
    await raw(port, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", (t) => t.includes("start"));
    await until(() => pool.list()[0]!.outstanding === 0);
    expect((await get(port)).body.toString()).toBe("after");
  });

  it("on shutdown an idle connection closes at once and one in flight gets its answer with Connection: close", async () => {
    const up = await upstream((_req, res) => setTimeout(() => res.end("late"), 200));
    const { port, proxy } = await proxyTo(up.port);
    const idle = connect(port, "127.0.0.1");
    const idleClosed = new Promise<void>((resolve) => idle.on("close", () => resolve()));
    await new Promise((resolve) => idle.on("connect", resolve));
    const inFlight = get(port, { headers: { connection: "keep-alive" } });
    await new Promise((r) => setTimeout(r, 50));
    proxy.shutdown();
    await idleClosed;
    const answer = await inFlight;
    expect(answer.body.toString()).toBe("late");
    expect(answer.headers["connection"]).toBe("close");
  });
});
