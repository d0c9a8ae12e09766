import { Agent, createServer, request as httpRequest, type ClientRequest, type ClientRequestArgs, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { connect, createServer as createNetServer, type Server, type Socket } from "node:net";
import { WireProxy } from "./http-wire.js";
import type { Duplex } from "node:stream";
import { MOVED, type TargetPool } from "./pool.js";

/**
 * reroll-proxy's HTTP side: HTTP/1.1 with keep-alive on both sides, Upgrade (WebSocket)
 * passed through, X-Forwarded-*, least-outstanding balancing over the ready targets of a
 * TargetPool. A request whose connection to a target fails before any of it was sent is
 * tried on another ready target; one that reached a target is never replayed. With no
 * ready target the answer is 503 with Retry-After, at once.
 *
 * Plain HTTP/1.1 requests take the fast path on raw sockets (http-wire.ts); a connection
 * with anything else (HTTP/1.0, Upgrade, Expect, a chunked request body…) is handed to
 * Node's HTTP server below, which applies the same rules.
 */

export interface HttpProxyOptions {
  readonly pool: TargetPool;
  /** the whole request must have arrived by then (slow clients): default 60 s */
  readonly requestTimeoutMs?: number;
  /** the request head must have arrived by then: default 10 s */
  readonly headersTimeoutMs?: number;
  /** largest request head: default 16 KiB (Node's) */
  readonly maxHeaderBytes?: number;
  /** largest request body: default 100 MiB; larger → 413 */
  readonly maxBodyBytes?: number;
  /** connecting to a target: default 2 s, then the next target is tried */
  readonly connectTimeoutMs?: number;
  /** the target's response head must begin by then: default 60 s, then 504 */
  readonly responseTimeoutMs?: number;
  /** idle client keep-alive connections close after this: default 5 s (Node's) */
  readonly keepAliveTimeoutMs?: number;
}

/** Headers that belong to one connection and are never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);

/** a request carrying this header gets the answering replica's name back in TARGET_HEADER */
export const VERIFY_HEADER = "x-reroll-verify";
export const TARGET_HEADER = "x-reroll-target";

/** a reset of a reused connection within this long of writing to it means the target had closed it before */
const STALE_RESET_MS = 20;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

function forwardHeaders(req: IncomingMessage, keepUpgrade: boolean): OutgoingHttpHeaders {
  const named = new Set(
    String(req.headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== ""),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (name === VERIFY_HEADER) continue;
    if ((HOP_BY_HOP.has(name) || named.has(name)) && !(keepUpgrade && (name === "upgrade" || name === "connection"))) continue;
    out[name] = value;
  }
  // an IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; the header carries a.b.c.d
  const client = (req.socket.remoteAddress ?? "").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
  const prior = req.headers["x-forwarded-for"];
  out["x-forwarded-for"] = prior === undefined || prior === "" ? client : `${String(prior)}, ${client}`;
  out["x-forwarded-proto"] = (req.headers["x-forwarded-proto"] as string | undefined) ?? "http";
  if (req.headers.host !== undefined) out["x-forwarded-host"] = (req.headers["x-forwarded-host"] as string | undefined) ?? req.headers.host;
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

function plain(res: ServerResponse, status: number, text: string, extra: OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text), ...extra });
  res.end(text);
}

export interface HttpProxy {
  readonly server: Server;
  /** stops accepting; keep-alive connections close after their response in flight, idle ones now */
  shutdown(): void;
  /** closes idle pooled connections to a target (call when it starts draining) */
  forget(targetId: string): void;
}

export function createHttpProxy(options: HttpProxyOptions): HttpProxy {
  const { pool } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
  const responseTimeoutMs = options.responseTimeoutMs ?? 60_000;
  const maxBodyBytes = options.maxBodyBytes ?? 100 * 1024 * 1024;
  const agents = new Map<string, Agent>();
  let closing = false;
  const agentFor = (id: string): Agent => {
    let agent = agents.get(id);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, keepAliveMsecs: 1_000, timeout: responseTimeoutMs });
      // The request gets its socket only once connected, and only if the target is still at
      // that address (pool.reaches): nothing of it is written to an address since given to another container.
      agent.createConnection = (options: ClientRequestArgs, created?: (error: Error | null, socket: Duplex) => void): Duplex | undefined => {
        const host = options.host ?? "";
        const socket = connect({ host, port: Number(options.port ?? 80), noDelay: true });
        if (created === undefined) return socket;
        const failed = (error: Error): void => created(error, socket);
        socket.once("error", failed);
        socket.once("connect", () => {
          socket.off("error", failed);
          if (pool.reaches(id, host)) created(null, socket);
          else {
            socket.destroy();
            created(Object.assign(new Error("the replica moved while connecting"), { code: MOVED }), socket);
          }
        });
        return undefined;
      };
      agents.set(id, agent);
    }
    return agent;
  };

  const limits = {
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
    maxHeaderBytes: options.maxHeaderBytes ?? 16 * 1024,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 5_000,
  };
  const strict = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
    },
    (req, res) => {
      const declared = Number(req.headers["content-length"] ?? 0);
      if (declared > maxBodyBytes) {
        plain(res, 413, `request body over ${maxBodyBytes} bytes\n`, { connection: "close" });
        req.resume();
        return;
      }
      forward(req, res, new Set());
    },
  );

  function forward(req: IncomingMessage, res: ServerResponse, tried: Set<string>): void {
    const target = pool.pick(tried);
    if (target === undefined) {
      plain(res, 503, "no ready replica\n", { "retry-after": "1" });
      req.resume();
      return;
    }
    tried.add(target.id);
    const release = pool.hold(target.id);
    let sent = false; // any byte of the request written to a connected target
    let sentAt = 0;
    let answered = false;
    let abandoned = false; // the client left: a failure of this request says nothing of the target
    const upstream: ClientRequest = httpRequest({
      host: target.host,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req, false),
      agent: agentFor(target.id),
    });
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })), connectTimeoutMs);
    let responseTimer: NodeJS.Timeout | undefined;
    const startBody = (): void => {
      clearTimeout(connectTimer);
      sent = true;
      sentAt = Date.now();
      responseTimer = setTimeout(() => upstream.destroy(Object.assign(new Error("response timeout"), { code: "E_RESPONSE_TIMEOUT" })), responseTimeoutMs);
      let bytes = 0;
      req.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > maxBodyBytes) {
          upstream.destroy();
          plain(res, 413, `request body over ${maxBodyBytes} bytes\n`, { connection: "close" });
        }
      });
      req.pipe(upstream);
    };
    upstream.on("socket", (socket: Socket) => {
      // the body is read only once a connection exists, so a failed connect leaves it whole for the next target
      if (socket.connecting) socket.once("connect", startBody);
      else startBody();
    });
    upstream.on("response", (upstreamRes: IncomingMessage) => {
      answered = true;
      clearTimeout(responseTimer);
      const headers = responseHeaders(upstreamRes.headers);
      if (closing) headers["connection"] = "close";
      // `reroll up --verify` asks which replica answered, to report the revisions it saw
      if (req.headers[VERIFY_HEADER] !== undefined) headers[TARGET_HEADER] = target.name;
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers);
      upstreamRes.pipe(res);
      upstreamRes.on("error", () => res.destroy());
      upstreamRes.on("end", release);
    });
    upstream.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
      release();
      if (answered) {
        res.destroy();
        return;
      }
      // Not reached: the connect failed, or a pooled connection the target had already
      // closed was reset before it answered anything (safe to repeat for idempotent requests without a body).
      // A stale pooled connection is reset as soon as it is written to; a reset that comes
      // later is a target that read the request and died: that request is not replayed.
      const reusedReset =
        upstream.reusedSocket && (error.code === "ECONNRESET" || error.code === "EPIPE") && Date.now() - sentAt < STALE_RESET_MS && IDEMPOTENT.has(req.method ?? "") && declaredEmpty(req);
      if (!sent || reusedReset) {
        if (!sent && !abandoned && error.code !== MOVED) pool.failed(target.id);
        forward(req, res, tried);
        return;
      }
      plain(res, error.code === "E_RESPONSE_TIMEOUT" ? 504 : 502, error.code === "E_RESPONSE_TIMEOUT" ? "the replica did not answer in time\n" : "the replica closed the connection\n");
    });
    res.on("close", () => {
      // the client went away (or the response ended): nothing more to send upstream
      if (!res.writableFinished) {
        abandoned = true;
        upstream.destroy();
      }
      release();
    });
  }

  strict.on("upgrade", (req: IncomingMessage, client: Duplex, head: Buffer) => upgrade(req, client, head, new Set()));

  const wire = new WireProxy({
    pool,
    fallback: (socket, buffered) => {
      if (buffered.length > 0) socket.unshift(buffered);
      strict.emit("connection", socket);
      socket.resume();
    },
    closing: () => closing,
    ...limits,
    maxBodyBytes,
    connectTimeoutMs,
    responseTimeoutMs,
    verifyHeader: VERIFY_HEADER,
    targetHeader: TARGET_HEADER,
    staleResetMs: STALE_RESET_MS,
  });
  const server = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => wire.accept(socket));

  function upgrade(req: IncomingMessage, client: Duplex, head: Buffer, tried: Set<string>): void {
    const target = pool.pick(tried);
    if (target === undefined) {
      client.end("HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      return;
    }
    tried.add(target.id);
    const release = pool.hold(target.id);
    const socket = connect({ host: target.host, port: target.port });
    socket.setTimeout(connectTimeoutMs, () => socket.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })));
    let connected = false;
    socket.once("connect", () => {
      if (!pool.reaches(target.id, target.host)) {
        socket.destroy(Object.assign(new Error("the replica moved while connecting"), { code: MOVED }));
        return;
      }
      connected = true;
      socket.setTimeout(0);
      const headers = forwardHeaders(req, true);
      const lines = [`${req.method ?? "GET"} ${req.url ?? "/"} HTTP/1.1`];
      for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${String(v)}`);
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head.length > 0) socket.write(head);
      socket.pipe(client);
      client.pipe(socket);
    });
    const close = (): void => {
      release();
      socket.destroy();
      client.destroy();
    };
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (!connected) {
        release();
        if (!client.destroyed && error.code !== MOVED) pool.failed(target.id);
        upgrade(req, client, head, tried);
        return;
      }
      close();
    });
    // An upgraded connection has no half-close worth keeping (the HTTP server allows it
    // half-open): the end of either side ends both.
    for (const side of ["end", "close"] as const) {
      socket.on(side, () => {
        if (connected) close();
      });
      client.on(side, () => {
        if (connected) close();
        else if (side === "close") socket.destroy();
      });
    }
    client.on("error", close);
  }

  return {
    server,
    shutdown() {
      closing = true;
      server.close();
      wire.closeIdle();
      strict.closeIdleConnections();
    },
    forget(targetId) {
      wire.forget(targetId);
      const agent = agents.get(targetId);
      if (agent === undefined) return;
      for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
      if (pool.list().every((t) => t.id !== targetId)) {
        agent.destroy();
        agents.delete(targetId);
      }
    },
  };
}

function declaredEmpty(req: IncomingMessage): boolean {
  return (req.headers["content-length"] === undefined || req.headers["content-length"] === "0") && req.headers["transfer-encoding"] === undefined;
}
