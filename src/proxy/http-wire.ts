import { connect, type Socket } from "node:net";
import { MOVED, type TargetPool } from "./pool.js";

/**
 * reroll-proxy's fast path: plain HTTP/1.1 requests forwarded on raw sockets. Node's HTTP
 * server and client parse every message into objects and serialize them again; a proxy only
 * needs the request head (to rewrite hop-by-hop and X-Forwarded-* headers), the framing of
 * both bodies (to know where a message ends and a connection can be reused) and the response
 * head (to drop hop-by-hop headers). Bodies pass through as bytes, chunked ones included.
 *
 * Anything unusual is handed to Node's HTTP server with the bytes read so far (`fallback`):
 * HTTP/1.0, `Upgrade`, `Expect`, a chunked or otherwise encoded request body, duplicated
 * lengths, obsolete line folding, anything its strict grammar does not accept. That path
 * (http-proxy.ts) has the same rules; this one is only faster.
 */

export interface WireOptions {
  readonly pool: TargetPool;
  /** gives the connection, with the bytes already read, to Node's HTTP server */
  readonly fallback: (socket: Socket, buffered: Buffer) => void;
  readonly closing: () => boolean;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** the replica's name is returned in this response header when the request carries `verifyHeader` */
  readonly verifyHeader: string;
  readonly targetHeader: string;
  /** a reset of a reused connection within this long of writing to it: the target had closed it */
  readonly staleResetMs: number;
}

/** an idle pooled connection is closed before Node's default server keep-alive timeout (5 s) can race it */
const UPSTREAM_IDLE_MS = 4_000;
/** request bytes buffered beyond the current request before reading pauses */
const CLIENT_BUFFER_BYTES = 64 * 1024;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\s\0]+) HTTP\/1\.1$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n\0]*)?$/;
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);
/** RFC 9110 §7.6.1, plus the names a Connection header lists */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"]);
const CRLF2 = Buffer.from("\r\n\r\n");

/** One request, as the fast path forwards it. */
export interface WireRequest {
  readonly method: string;
  /** the head sent to the target: hop-by-hop headers dropped, X-Forwarded-* set, ending in CRLF CRLF */
  readonly head: string;
  readonly bodyLength: number;
  /** the client lets the connection stay open after this exchange */
  readonly keepAlive: boolean;
  readonly verify: boolean;
}

/** a bare CR or LF, or a NUL, anywhere in a head: for the strict parser to judge */
const STRAY = /\0|\r(?!\n)|(?<!\r)\n/;

/** Splits a head into lines; undefined when a line holds a bare CR or LF, or a NUL. */
function headLines(head: string): string[] | undefined {
  return STRAY.test(head) ? undefined : head.split("\r\n");
}

/**
 * Header names whose first letter is none of these are passed on untouched without a closer
 * look (lowercasing every name costs more than the rest of the parse).
 */
function mayMatter(code: number): boolean {
  switch (code | 0x20) {
    case 0x63: // c: connection, content-length
    case 0x65: // e: expect
    case 0x68: // h: host
    case 0x6b: // k: keep-alive
    case 0x70: // p: proxy-*
    case 0x74: // t: te, trailer, transfer-encoding
    case 0x75: // u: upgrade
    case 0x78: // x: x-forwarded-*, the verify header
      return true;
    default:
      return false;
  }
}

/** The lowercased options a Connection header lists: close, keep-alive, upgrade, or header names. */
function connectionOptions(value: string): string[] {
  const options: string[] = [];
  for (const token of value.toLowerCase().split(",")) {
    const t = token.trim();
    if (t !== "") options.push(t);
  }
  return options;
}

/** A kept header line that the Connection header names is hop-by-hop too, and is dropped. */
function namedByConnection(named: readonly string[], line: string, name: string): boolean {
  return named.length > 0 && named.includes(name === "" ? line.slice(0, line.indexOf(":")).toLowerCase() : name);
}

/**
 * Parses a request head (without its final CRLF CRLF). Undefined means "not for the fast
 * path": Node's parser takes the connection and answers or rejects as it does.
 */
export function parseRequestHead(head: string, client: string, verifyHeader: string): WireRequest | undefined {
  const lines = headLines(head);
  if (lines === undefined) return undefined;
  const requestLine = REQUEST_LINE.exec(lines[0]!);
  if (requestLine === null) return undefined;
  let out = `${lines[0]}\r\n`;
  let length: string | undefined;
  let host: string | undefined;
  let forwardedFor: string | undefined;
  let forwardedProto: string | undefined;
  let forwardedHost: string | undefined;
  let keepAlive = true;
  let verify = false;
  let named: string[] = [];
  const kept: [string, string][] = [];
  for (let i = 1; i < lines.length; i += 1) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    const rawName = line.slice(0, colon);
    if (!TOKEN.test(rawName)) return undefined;
    if (!mayMatter(line.charCodeAt(0))) {
      kept.push([line, ""]);
      continue;
    }
    const name = rawName.toLowerCase();
    const value = line.slice(colon + 1).trim();
    switch (name) {
      case "content-length":
        if (length !== undefined || !/^\d{1,15}$/.test(value)) return undefined;
        length = value;
        kept.push([line, name]);
        break;
      case "transfer-encoding":
      case "upgrade":
      case "expect":
        return undefined;
      case "host":
        if (host !== undefined) return undefined;
        host = value;
        kept.push([line, name]);
        break;
      case "connection": {
        const options = connectionOptions(value);
        if (options.includes("upgrade")) return undefined;
        if (options.includes("close")) keepAlive = false;
        named.push(...options);
        break;
      }
      case "x-forwarded-for":
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        break;
      case "x-forwarded-proto":
        forwardedProto ??= value;
        break;
      case "x-forwarded-host":
        forwardedHost ??= value;
        break;
      default:
        if (name === verifyHeader) verify = true;
        else if (!HOP_BY_HOP.has(name)) kept.push([line, name]);
    }
  }
  if (named.length > 0) named = named.filter((n) => n !== "host");
  for (const [line, name] of kept) if (!namedByConnection(named, line, name)) out += `${line}\r\n`;
  out += `x-forwarded-for: ${forwardedFor === undefined || forwardedFor === "" ? client : `${forwardedFor}, ${client}`}\r\n`;
  out += `x-forwarded-proto: ${forwardedProto ?? "http"}\r\n`;
  if (host !== undefined) out += `x-forwarded-host: ${forwardedHost ?? host}\r\n`;
  out += "\r\n";
  return { method: requestLine[1]!, head: out, bodyLength: length === undefined ? 0 : Number(length), keepAlive, verify };
}

/** A response head, parsed: what to send the client and how its body is framed. */
export interface WireResponse {
  readonly status: number;
  /** the head for the client, without its final CRLF CRLF; hop-by-hop headers dropped (Transfer-Encoding kept: the body passes through as it is) */
  readonly head: string;
  readonly framing: { readonly kind: "length"; readonly length: number } | { readonly kind: "chunked" } | { readonly kind: "close" };
  /** the target's connection can carry another request afterwards */
  readonly reusable: boolean;
}

export function parseResponseHead(head: string, method: string): WireResponse | undefined {
  const lines = headLines(head);
  if (lines === undefined) return undefined;
  const statusLine = STATUS_LINE.exec(lines[0]!);
  if (statusLine === null) return undefined;
  const status = Number(statusLine[2]);
  let reusable = statusLine[1] === "1";
  let length: number | undefined;
  let chunked = false;
  let encoded = false;
  let named: string[] = [];
  const kept: [string, string][] = [];
  for (let i = 1; i < lines.length; i += 1) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) return undefined;
    if (!mayMatter(line.charCodeAt(0))) {
      kept.push([line, ""]);
      continue;
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value))) return undefined;
      length = Number(value);
      kept.push([line, name]);
    } else if (name === "transfer-encoding") {
      encoded = true;
      chunked = value.toLowerCase().split(",").at(-1)?.trim() === "chunked";
      kept.push([`Transfer-Encoding: ${value}`, name]);
    } else if (name === "connection") {
      const options = connectionOptions(value);
      if (options.includes("close")) reusable = false;
      else if (options.includes("keep-alive") && statusLine[1] === "0") reusable = true;
      named.push(...options);
    } else if (!HOP_BY_HOP.has(name) || name === "trailer") {
      kept.push([line, name]);
    }
  }
  if (named.length > 0) named = named.filter((n) => n !== "transfer-encoding" && n !== "content-length");
  let out = `HTTP/1.1${lines[0]!.slice(8)}`;
  for (const [line, name] of kept) if (!namedByConnection(named, line, name)) out += `\r\n${line}`;
  const bodiless = method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
  if (bodiless) return { status, head: out, framing: { kind: "length", length: 0 }, reusable };
  if (encoded) {
    // a length beside an encoding is ignored (RFC 9112 §6.3), and the target's connection is not reused
    if (length !== undefined) reusable = false;
    if (!chunked) return { status, head: out, framing: { kind: "close" }, reusable: false };
    return { status, head: out, framing: { kind: "chunked" }, reusable };
  }
  if (length !== undefined) return { status, head: out, framing: { kind: "length", length }, reusable };
  return { status, head: out, framing: { kind: "close" }, reusable: false };
}

/**
 * Finds where a chunked body ends, across as many reads as it takes. `scan` returns the
 * offset just past the end in the buffer given, or -1 when the body goes on.
 */
export class ChunkedEnd {
  #state: "size" | "data" | "crlf" | "trailer" = "size";
  #line = "";
  #remaining = 0;
  #lineLength = 0;

  scan(b: Buffer, from = 0): number {
    let i = from;
    while (i < b.length) {
      switch (this.#state) {
        case "size": {
          const lf = b.indexOf(10, i);
          const end = lf < 0 ? b.length : lf;
          this.#line += b.toString("latin1", i, end);
          if (this.#line.length > 1024) throw new Error("chunk size line too long");
          if (lf < 0) return -1;
          i = lf + 1;
          const digits = /^\s*([0-9a-fA-F]{1,12})\s*(?:;[^\r\n]*)?\r?$/.exec(this.#line);
          this.#line = "";
          if (digits === null) throw new Error("bad chunk size");
          const size = parseInt(digits[1]!, 16);
          if (size === 0) {
            this.#state = "trailer";
            this.#lineLength = 0;
          } else {
            this.#remaining = size;
            this.#state = "data";
          }
          break;
        }
        case "data": {
          const take = Math.min(this.#remaining, b.length - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            this.#state = "crlf";
            this.#remaining = 2;
          }
          break;
        }
        case "crlf": {
          const take = Math.min(this.#remaining, b.length - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = "size";
          break;
        }
        case "trailer": {
          const byte = b[i]!;
          i += 1;
          if (byte === 10) {
            if (this.#lineLength === 0) return i;
            this.#lineLength = 0;
          } else if (byte !== 13) {
            this.#lineLength += 1;
            if (this.#lineLength > 8192) throw new Error("trailer line too long");
          }
          break;
        }
      }
    }
    return -1;
  }
}

/**
 * One read buffer for every connection to a target (`onread`: no Buffer and no stream event
 * per read). A read is handled before the next one lands; whatever is kept past it is copied.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** A pooled connection to a target; the exchange using it sets the handlers. */
class Upstream {
  /** gets each read; the bytes are only valid during the call */
  onData: ((chunk: Buffer) => void) | undefined;
  onGone: ((error: NodeJS.ErrnoException | undefined) => void) | undefined;
  readonly socket: Socket;
  connected = false;
  gone = false;
  /** when it was parked idle (epoch ms), 0 while in use */
  parkedAt = 0;

  /** the address connected to: a target that moved since is not reached through this one again */
  readonly host: string;

  constructor(
    target: { readonly host: string; readonly port: number },
    readonly targetId: string,
  ) {
    this.host = target.host;
    const socket = connect({
      host: target.host,
      port: target.port,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number, buffer: Uint8Array): boolean => {
          if (this.onData !== undefined) this.onData((buffer as Buffer).subarray(0, bytes));
          else socket.destroy(); // bytes nobody asked for: never reuse it
          return true;
        },
      },
    });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("connect", () => (this.connected = true));
    const end = (error?: NodeJS.ErrnoException): void => {
      if (this.gone) return;
      this.gone = true;
      socket.destroy();
      const handler = this.onGone;
      this.onGone = undefined;
      this.onData = undefined;
      handler?.(error);
    };
    socket.on("error", end);
    socket.on("end", () => end());
    socket.on("close", () => end());
  }
}

/** how often deadlines (timeouts of every kind) are checked: one timer for all connections, none per request */
const SWEEP_MS = 100;

export class WireProxy {
  readonly #idle = new Map<string, Upstream[]>();
  readonly #clients = new Set<ClientConnection>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(readonly options: WireOptions) {
    this.#sweeper = setInterval(() => this.#sweep(Date.now()), SWEEP_MS);
    this.#sweeper.unref();
  }

  accept(socket: Socket): void {
    const client = new ClientConnection(this, socket);
    this.#clients.add(client);
    socket.on("close", () => this.#clients.delete(client));
  }

  #sweep(now: number): void {
    for (const c of this.#clients) c.tick(now);
    for (const list of this.#idle.values()) {
      for (const u of list) if (u.parkedAt > 0 && now - u.parkedAt > UPSTREAM_IDLE_MS) u.socket.destroy();
    }
  }

  /** closes idle pooled connections to a target (it is draining or gone) */
  forget(targetId: string): void {
    for (const u of this.#idle.get(targetId)?.splice(0) ?? []) u.socket.destroy();
    this.#idle.delete(targetId);
  }

  /** shutdown: idle client connections close now, busy ones after their response */
  closeIdle(): void {
    for (const c of this.#clients) c.closeIfIdle();
  }

  take(target: { id: string; host: string; port: number }): { upstream: Upstream; reused: boolean } {
    const list = this.#idle.get(target.id);
    while (list !== undefined && list.length > 0) {
      const u = list.pop()!;
      if (u.gone) continue;
      u.parkedAt = 0;
      u.onGone = undefined;
      return { upstream: u, reused: true };
    }
    return { upstream: new Upstream(target, target.id), reused: false };
  }

  park(u: Upstream): void {
    if (u.gone) return;
    u.onData = undefined;
    // paused for a slow client of the last exchange: that client no longer matters
    if (u.socket.isPaused()) u.socket.resume();
    if (!this.options.pool.isReady(u.targetId, u.host)) {
      u.socket.destroy();
      return;
    }
    let idle = this.#idle.get(u.targetId);
    if (idle === undefined) {
      idle = [];
      this.#idle.set(u.targetId, idle);
    }
    const list = idle;
    u.onGone = () => {
      const at = list.indexOf(u);
      if (at >= 0) list.splice(at, 1);
    };
    u.parkedAt = Date.now();
    list.push(u);
  }
}

type ExchangeEnd = { readonly ok: true } | { readonly ok: false; readonly closeClient: boolean };

class ClientConnection {
  #buffer: Buffer = Buffer.alloc(0);
  #busy = false;
  #ended = false;
  #handedOver = false;
  /** the connection's deadline (idle keep-alive, request head, whole request), 0 for none */
  #deadline = 0;
  #onDeadline: (() => void) | undefined;
  /** the exchange's deadline (connect, response head), 0 for none */
  #exchangeDeadline = 0;
  #onExchangeDeadline: (() => void) | undefined;
  /** the deadline in force is the request head's */
  #headPending = false;
  /** the response in flight has begun: the proxy can no longer answer in its place */
  #responding = false;
  /** body bytes of the request in flight still to come from the client, and where they go */
  #bodyLeft = 0;
  #bodySink: ((chunk: Buffer) => void) | undefined;
  /** the exchange in flight, told when the client goes away */
  #onClientGone: (() => void) | undefined;
  readonly #remote: string;
  readonly #listeners: [string, (...args: never[]) => void][] = [];

  constructor(
    readonly proxy: WireProxy,
    readonly socket: Socket,
  ) {
    socket.setNoDelay(true);
    this.#remote = (socket.remoteAddress ?? "").replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, "");
    this.#on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#on("end", () => {
      this.#ended = true;
      if (!this.#busy) socket.end();
    });
    this.#on("error", () => socket.destroy());
    this.#on("close", () => {
      this.#deadline = 0;
      this.#exchangeDeadline = 0;
      this.#onClientGone?.();
    });
    this.#idle();
  }

  #on(event: string, listener: (...args: never[]) => void): void {
    this.#listeners.push([event, listener]);
    this.socket.on(event, listener as (...args: unknown[]) => void);
  }

  get #o(): WireOptions {
    return this.proxy.options;
  }

  tick(now: number): void {
    if (this.#deadline > 0 && now >= this.#deadline) {
      this.#deadline = 0;
      this.#onDeadline?.();
    }
    if (this.#exchangeDeadline > 0 && now >= this.#exchangeDeadline) {
      this.#exchangeDeadline = 0;
      this.#onExchangeDeadline?.();
    }
  }

  #setDeadline(ms: number, action: () => void): void {
    this.#deadline = Date.now() + ms;
    this.#onDeadline = action;
  }

  #setExchangeDeadline(ms: number, action: () => void): void {
    this.#exchangeDeadline = Date.now() + ms;
    this.#onExchangeDeadline = action;
  }

  closeIfIdle(): void {
    if (!this.#busy && this.#buffer.length === 0 && !this.#handedOver) this.socket.end();
  }

  readonly #destroy = (): void => {
    this.socket.destroy();
  };

  #idle(): void {
    if (this.#o.closing()) {
      this.#deadline = 0;
      this.socket.end();
      return;
    }
    this.#setDeadline(this.#o.keepAliveTimeoutMs, this.#destroy);
  }

  #onData(chunk: Buffer): void {
    if (this.#bodyLeft > 0 && this.#bodySink !== undefined) {
      const take = Math.min(this.#bodyLeft, chunk.length);
      this.#bodyLeft -= take;
      this.#bodySink(take === chunk.length ? chunk : chunk.subarray(0, take));
      if (this.#bodyLeft === 0) this.#deadline = 0; // arrived whole
      if (take === chunk.length) return;
      chunk = chunk.subarray(take);
    }
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.#busy) {
      if (this.#buffer.length > CLIENT_BUFFER_BYTES) this.socket.pause();
      return;
    }
    this.#next();
  }

  /** Reads the next request from the buffer, if its head is complete. */
  #next(): void {
    if (this.#busy || this.#handedOver || this.socket.destroyed) return;
    if (this.#buffer.length === 0) {
      if (this.#ended) this.socket.end();
      else this.#idle();
      return;
    }
    const end = this.#buffer.indexOf(CRLF2);
    if (end < 0) {
      if (this.#buffer.length > this.#o.maxHeaderBytes) {
        this.#handOver(); // Node answers 431 as it does
        return;
      }
      // the head's first bytes are here: it must be whole within headersTimeout
      if (!this.#headPending) {
        this.#headPending = true;
        this.#setDeadline(this.#o.headersTimeoutMs, () => this.#fail(408, "the request head did not arrive in time\n"));
      }
      return;
    }
    this.#headPending = false;
    this.#deadline = 0;
    if (end > this.#o.maxHeaderBytes) {
      this.#handOver();
      return;
    }
    const request = parseRequestHead(this.#buffer.toString("latin1", 0, end), this.#remote, this.#o.verifyHeader);
    if (request === undefined) {
      this.#handOver();
      return;
    }
    this.#buffer = this.#buffer.subarray(end + 4);
    if (request.bodyLength > this.#o.maxBodyBytes) {
      this.#fail(413, `request body over ${this.#o.maxBodyBytes} bytes\n`);
      return;
    }
    this.#busy = true;
    if (request.bodyLength > this.#buffer.length) {
      // the rest of the body waits in the socket until a target is connected, and must come in time
      this.socket.pause();
      this.#setDeadline(this.#o.requestTimeoutMs, () => this.#fail(408, "the request did not arrive in time\n"));
    }
    this.#forward(request, new Set());
  }

  #handOver(): void {
    this.#handedOver = true;
    this.#deadline = 0;
    for (const [event, listener] of this.#listeners) this.socket.removeListener(event, listener as (...args: unknown[]) => void);
    const buffered = this.#buffer;
    this.#buffer = Buffer.alloc(0);
    this.#o.fallback(this.socket, buffered);
  }

  /** An answer of the proxy's own, then the connection closes. */
  #fail(status: number, text: string): void {
    this.#deadline = 0;
    if (this.socket.destroyed) return;
    if (this.#responding) this.socket.destroy();
    else this.socket.end(plainResponse(status, text, "connection: close\r\n"));
    this.#buffer = Buffer.alloc(0);
    this.#handedOver = true; // nothing more is read
  }

  /** The exchange ended: the next request, or the connection's end. */
  #done(end: ExchangeEnd, keepAlive: boolean): void {
    this.#busy = false;
    this.#responding = false;
    this.#bodyLeft = 0;
    this.#bodySink = undefined;
    this.#onClientGone = undefined;
    this.#deadline = 0;
    this.#exchangeDeadline = 0;
    if (!end.ok) {
      if (end.closeClient) this.socket.destroy();
      return;
    }
    if (!keepAlive || this.#o.closing()) {
      this.socket.end();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.#next();
  }

  #forward(request: WireRequest, tried: Set<string>): void {
    const o = this.#o;
    const target = o.pool.pick(tried);
    if (target === undefined) {
      // the body, if any, is dropped: whole when already here, else with the connection
      const whole = this.#buffer.length >= request.bodyLength;
      if (whole) this.#buffer = this.#buffer.subarray(request.bodyLength);
      const keep = whole && request.keepAlive && !o.closing();
      this.socket.write(plainResponse(503, "no ready replica\n", `retry-after: 1\r\n${keep ? "" : "connection: close\r\n"}`));
      this.#done({ ok: true }, keep);
      return;
    }
    tried.add(target.id);
    const release = o.pool.hold(target.id);
    const { upstream, reused } = this.proxy.take(target);
    const socket = upstream.socket;
    const client = this.socket;
    let sent = false;
    let sentAt = 0;
    let answered = false;
    let finished = false;
    let response: WireResponse | undefined;
    let head: Buffer | undefined;
    let left = 0;
    let chunked: ChunkedEnd | undefined;

    const finish = (end: ExchangeEnd, reusable: boolean): void => {
      if (finished) return;
      finished = true;
      release();
      if (reusable) this.proxy.park(upstream);
      else {
        upstream.onData = undefined;
        upstream.onGone = undefined;
        socket.destroy();
      }
      this.#done(end, request.keepAlive && (response === undefined || response.framing.kind !== "close"));
    };
    this.#onClientGone = () => finish({ ok: false, closeClient: true }, false);

    const writeClient = (chunk: Buffer | string): void => {
      this.#responding = true;
      if (!(typeof chunk === "string" ? client.write(chunk, "latin1") : client.write(chunk)) && !socket.isPaused()) {
        socket.pause();
        client.once("drain", () => socket.resume());
      }
    };

    /** the response's body bytes in `chunk` from `from`; true when it ended */
    const body = (chunk: Buffer, from: number): boolean => {
      const framing = response!.framing;
      if (framing.kind === "close") {
        if (from < chunk.length) writeClient(Buffer.from(chunk.subarray(from)));
        return false;
      }
      let end: number;
      if (framing.kind === "length") {
        const take = Math.min(left, chunk.length - from);
        left -= take;
        end = left === 0 ? from + take : -1;
      } else {
        end = chunked!.scan(chunk, from);
      }
      const stop = end < 0 ? chunk.length : end;
      // a copy: the read buffer is reused, and a write may hold on to what it is given
      if (stop > from) writeClient(Buffer.from(chunk.subarray(from, stop)));
      if (end < 0) return false;
      // bytes after the end of the response: the target is not speaking HTTP as agreed
      finish({ ok: true }, response!.reusable && end === chunk.length && !o.closing());
      return true;
    };

    upstream.onData = (chunk: Buffer) => {
      if (response !== undefined) {
        try {
          body(chunk, 0);
        } catch {
          finish({ ok: false, closeClient: true }, false);
        }
        return;
      }
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      for (;;) {
        const end = head.indexOf(CRLF2);
        if (end < 0) {
          if (head.length > 64 * 1024) this.#upstreamFailed(request, finish, 502, "the replica sent an oversized response head\n");
          else if (head.buffer === READ_BUFFER.buffer) head = Buffer.from(head); // kept past this read
          return;
        }
        const parsed = parseResponseHead(head.toString("latin1", 0, end), request.method);
        if (parsed === undefined || parsed.status === 101) {
          this.#upstreamFailed(request, finish, 502, "the replica sent an invalid response\n");
          return;
        }
        this.#exchangeDeadline = 0;
        answered = true;
        if (parsed.status < 200) {
          // informational (103 Early Hints…): passed on; the final head follows
          writeClient(`${parsed.head}\r\n\r\n`);
          head = head.subarray(end + 4);
          continue;
        }
        response = parsed;
        let extra = "";
        if (request.verify) extra += `\r\n${o.targetHeader}: ${target.name}`;
        if (!request.keepAlive || o.closing() || parsed.framing.kind === "close") extra += "\r\nconnection: close";
        const rest = head.subarray(end + 4);
        head = undefined;
        const text = `${parsed.head}${extra}\r\n\r\n`;
        if (parsed.framing.kind === "length") left = parsed.framing.length;
        if (parsed.framing.kind === "chunked") chunked = new ChunkedEnd();
        // the whole response is here (the usual case): head and body leave in one write
        let complete = -1;
        try {
          if (parsed.framing.kind === "length" && left <= rest.length) complete = left;
          else if (parsed.framing.kind === "chunked") complete = chunked!.scan(rest);
        } catch {
          this.#upstreamFailed(request, finish, 502, "the replica sent an invalid chunked body\n");
          return;
        }
        if (complete >= 0) {
          const size = Buffer.byteLength(text, "latin1");
          const whole = Buffer.allocUnsafe(size + complete);
          whole.write(text, 0, "latin1");
          rest.copy(whole, size, 0, complete);
          writeClient(whole);
          finish({ ok: true }, parsed.reusable && rest.length === complete && !o.closing());
          return;
        }
        // the chunked body's beginning was scanned already: it is passed on as it is
        const scanned = parsed.framing.kind === "chunked";
        // the head and the body bytes that came with it leave in one write (writev)
        client.cork();
        writeClient(text);
        try {
          if (scanned) {
            if (rest.length > 0) writeClient(Buffer.from(rest));
          } else body(rest, 0);
        } catch {
          finish({ ok: false, closeClient: true }, false);
        } finally {
          client.uncork();
        }
        return;
      }
    };
    upstream.onGone = (error) => {
      if (finished) return;
      if (response !== undefined) {
        // a body delimited by the connection's close ends here; any other is cut short
        if (response.framing.kind === "close" && error === undefined) finish({ ok: true }, false);
        else finish({ ok: false, closeClient: true }, false);
        return;
      }
      if (answered) {
        finish({ ok: false, closeClient: true }, false);
        return;
      }
      const code = error?.code;
      // Not reached: the connect failed, or a pooled connection the target had already closed
      // was reset as soon as it was written to. A request that may have reached it is not replayed.
      const stale = reused && (error === undefined || code === "ECONNRESET" || code === "EPIPE") && Date.now() - sentAt < o.staleResetMs && IDEMPOTENT.has(request.method) && request.bodyLength === 0;
      if (!sent || stale) {
        finished = true;
        release();
        if (!sent && error !== undefined && error.code !== MOVED) o.pool.failed(target.id);
        this.#exchangeDeadline = 0;
        this.#onClientGone = undefined;
        if (client.destroyed) return;
        this.#forward(request, tried);
        return;
      }
      this.#upstreamFailed(request, finish, code === "E_RESPONSE_TIMEOUT" ? 504 : 502, code === "E_RESPONSE_TIMEOUT" ? "the replica did not answer in time\n" : "the replica closed the connection\n");
    };

    const send = (): void => {
      sent = true;
      sentAt = Date.now();
      this.#setExchangeDeadline(o.responseTimeoutMs, () => socket.destroy(Object.assign(new Error("response timeout"), { code: "E_RESPONSE_TIMEOUT" })));
      const here = Math.min(request.bodyLength, this.#buffer.length);
      if (here === 0) socket.write(request.head, "latin1");
      else {
        socket.write(Buffer.concat([Buffer.from(request.head, "latin1"), this.#buffer.subarray(0, here)]));
        this.#buffer = this.#buffer.subarray(here);
      }
      this.#bodyLeft = request.bodyLength - here;
      if (this.#bodyLeft > 0) {
        this.#bodySink = (chunk) => {
          if (!socket.write(chunk)) {
            client.pause();
            socket.once("drain", () => client.resume());
          }
        };
        client.resume();
      } else if (this.#deadline > 0) this.#deadline = 0; // arrived whole
    };
    if (upstream.connected) send();
    else {
      this.#setExchangeDeadline(o.connectTimeoutMs, () => socket.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })));
      socket.once("connect", () => {
        if (o.pool.reaches(target.id, upstream.host)) send();
        else socket.destroy(Object.assign(new Error("the replica moved while connecting"), { code: MOVED }));
      });
    }
  }

  /** The target failed before answering: the proxy answers for it. */
  #upstreamFailed(request: WireRequest, finish: (end: ExchangeEnd, reusable: boolean) => void, status: number, text: string): void {
    // a body not read to its end leaves the connection unusable for the next request
    const clean = this.#bodyLeft === 0 && request.keepAlive && !this.#o.closing();
    this.socket.write(plainResponse(status, text, clean ? "" : "connection: close\r\n"));
    finish(clean ? { ok: true } : { ok: false, closeClient: false }, false);
    if (!clean) this.socket.end();
  }
}

function plainResponse(status: number, text: string, extra: string): string {
  const reason: Record<number, string> = { 408: "Request Timeout", 413: "Payload Too Large", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout" };
  return `HTTP/1.1 ${status} ${reason[status] ?? ""}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${extra}\r\n${text}`;
}
