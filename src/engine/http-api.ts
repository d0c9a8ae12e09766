import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { createRequire } from "node:module";
import type { Readable } from "node:stream";
import type { DockerConnection } from "./port.js";

/**
 * The Engine API over node:http, with no dependency: plain request/response calls (list,
 * inspect, create, start, stop, remove…) and the two streams on every command's path, a
 * build (a tar body, a JSON-lines answer) and the event subscription. Loading dockerode
 * costs ~70 ms even with its optional modules deferred, which `reroll status` (< 300 ms) and
 * a build or rollout's start cannot afford (bench/). dockerode stays the client for the rare
 * calls it does best (exec's hijacked stream, logs, import) and is loaded on their first use.
 * Errors carry `statusCode` and the daemon's message, as dockerode's do.
 */

export interface EngineApiError extends Error {
  readonly statusCode: number;
  readonly json?: unknown;
}

/** Query parameters; an array is sent as the parameter repeated (`t=a&t=b`). */
export type Query = Readonly<Record<string, string | number | boolean | readonly string[] | undefined>>;

export interface StreamOptions {
  readonly query?: Query;
  /** a request body streamed as it is read (sent chunked) */
  readonly body?: Readable;
  /** called with each chunk of `body` once the socket has written it: the body may reuse its memory */
  readonly recycle?: (chunk: Buffer) => void;
  readonly contentType?: string;
  /** aborting closes the connection: the daemon cancels a build, and the answer ends */
  readonly signal?: AbortSignal;
}

export interface EngineApi {
  <T = unknown>(method: string, path: string, options?: { query?: Query; body?: unknown }): Promise<T>;
  /** A call whose answer is read as it comes: resolves with the response once its status is 2xx. */
  stream(method: string, path: string, options?: StreamOptions): Promise<IncomingMessage>;
}

function queryString(query: Query | undefined): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value as readonly string[]) search.append(key, item);
    else search.set(key, String(value));
  }
  return search.size === 0 ? "" : `?${search.toString()}`;
}

function apiError(status: number, text: string): EngineApiError {
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = text;
  }
  const message = (json as { message?: string } | undefined)?.message ?? (typeof json === "string" ? json.trim() : "");
  return Object.assign(new Error(`(HTTP code ${status}) ${message}`), { statusCode: status, json }) as EngineApiError;
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    res.on("error", reject);
  });
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : Object.assign(new Error("The operation was aborted"), { name: "AbortError" });
}

export function engineApi(connection: DockerConnection): EngineApi {
  const send = connection.protocol === "https" ? (createRequire(import.meta.url)("node:https") as typeof import("node:https")).request : httpRequest;
  const base: RequestOptions =
    connection.socketPath !== undefined
      ? // servername only matters to TLS; left unset, Node's agent works it out with isIP(),
        // whose first call compiles an IPv6 pattern: 6 ms of `reroll status`
        ({ socketPath: connection.socketPath, servername: "" } as RequestOptions)
      : {
          host: connection.host,
          port: connection.port,
          ...(connection.protocol === "https" ? { ca: connection.ca, cert: connection.cert, key: connection.key } : ({ servername: "" } as RequestOptions)),
        };

  const call = async <T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> => {
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req: ClientRequest = send(
        {
          ...base,
          method,
          path: `${path}${queryString(options.query)}`,
          headers: payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": payload.length },
        },
        (res: IncomingMessage) => {
          readAll(res).then((text) => resolve({ status: res.statusCode ?? 0, text }), reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
    if (response.status >= 300) throw apiError(response.status, response.text);
    if (response.text === "") return undefined as T;
    try {
      return JSON.parse(response.text) as T;
    } catch {
      return response.text as T;
    }
  };

  const stream = (method: string, path: string, options: StreamOptions = {}): Promise<IncomingMessage> =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const { signal, body } = options;
      if (signal?.aborted === true) {
        reject(abortError(signal));
        return;
      }
      let response: IncomingMessage | undefined;
      let stopBody = (): void => undefined;
      const onAbort = (): void => {
        const error = abortError(signal!);
        response?.destroy(error);
        req.destroy(error);
      };
      const req: ClientRequest = send(
        {
          ...base,
          method,
          path: `${path}${queryString(options.query)}`,
          headers: body === undefined ? {} : { "Content-Type": options.contentType ?? "application/octet-stream" },
        },
        (res: IncomingMessage) => {
          response = res;
          res.on("close", () => signal?.removeEventListener("abort", onAbort));
          const status = res.statusCode ?? 0;
          if (status >= 300) {
            stopBody();
            readAll(res).then((text) => reject(apiError(status, text)), reject);
            return;
          }
          // After the answer has begun, an abort or a lost daemon ends it with an error.
          req.off("error", reject);
          req.on("error", (error) => res.destroy(error));
          resolve(res);
        },
      );
      req.on("error", reject);
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("close", () => {
        if (response === undefined) signal?.removeEventListener("abort", onAbort);
      });
      if (body === undefined) {
        req.end();
      } else {
        // A body that fails (an unreadable file in a build context) ends the request with its error.
        body.on("error", (error) => req.destroy(error));
        stopBody = sendBody(body, req, options.recycle);
      }
    });

  return Object.assign(call, { stream }) as EngineApi;
}

/**
 * Streams `body` into the request, pausing while the socket is behind, as `pipe` does; with
 * `recycle`, each chunk is handed back once written (a write's callback runs after the socket
 * has written it, and writes finish in order). Returns what stops the sending.
 */
function sendBody(body: Readable, req: ClientRequest, recycle: ((chunk: Buffer) => void) | undefined): () => void {
  if (recycle === undefined) {
    body.pipe(req);
    return () => body.unpipe(req);
  }
  const resume = (): void => {
    body.resume();
  };
  const onData = (chunk: Buffer): void => {
    const more = req.write(chunk, (error) => {
      if (error === undefined || error === null) recycle(chunk);
    });
    if (!more) {
      body.pause();
      req.once("drain", resume);
    }
  };
  const onEnd = (): void => {
    req.end();
  };
  body.on("data", onData);
  body.once("end", onEnd);
  return () => {
    body.off("data", onData);
    body.off("end", onEnd);
    req.off("drain", resume);
    body.pause();
  };
}
