import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { createRequire } from "node:module";
import type { DockerConnection } from "./port.js";

/**
 * The Engine API's plain request/response calls (list, inspect, create, start, stop,
 * remove…) over node:http, with no dependency: loading dockerode costs ~100 ms, which
 * `reroll status` cannot afford (< 300 ms, bench/). dockerode stays the client for the
 * streaming calls (build, import, events, logs) and is loaded on their first use. Errors
 * carry `statusCode` and the daemon's message, as dockerode's do.
 */

export interface EngineApiError extends Error {
  readonly statusCode: number;
  readonly json?: unknown;
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface EngineApi {
  <T = unknown>(method: string, path: string, options?: { query?: Query; body?: unknown }): Promise<T>;
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

  return async <T>(method: string, path: string, options: { query?: Query; body?: unknown } = {}): Promise<T> => {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) search.set(key, String(value));
    const query = search.size === 0 ? "" : `?${search.toString()}`;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const response = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req: ClientRequest = send(
        {
          ...base,
          method,
          path: `${path}${query}`,
          headers: payload === undefined ? {} : { "Content-Type": "application/json", "Content-Length": payload.length },
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
    let json: unknown;
    try {
      json = response.text === "" ? undefined : JSON.parse(response.text);
    } catch {
      json = response.text;
    }
    if (response.status >= 300) {
      const message = (json as { message?: string } | undefined)?.message ?? (typeof json === "string" ? json.trim() : "");
      throw Object.assign(new Error(`(HTTP code ${response.status}) ${message}`), { statusCode: response.status, json }) as EngineApiError;
    }
    return json as T;
  };
}
