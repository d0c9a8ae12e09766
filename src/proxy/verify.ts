import { Agent, request as httpRequest, type IncomingMessage } from "node:http";
import type { VerifyReport } from "../core/events.js";
import { TARGET_HEADER, VERIFY_HEADER } from "./haproxy-config.js";

export type { VerifyReport };

/**
 * `reroll up --verify`: a steady stream of requests through a service's public port while it
 * rolls, half on keep-alive connections and half on a new connection per request, and a
 * report at the end: requests sent, failures by reason, latency, and which revisions
 * answered. Any failure makes the command exit 1, so a CI job keeps the proof.
 */


export interface VerifyOptions {
  readonly service: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** the token the doors were told to answer with the replica's name (reroll's own traffic only) */
  readonly token: string;
  /** concurrent clients, half keep-alive: default 8 */
  readonly clients?: number;
  /** pause between a client's requests: default 10 ms */
  readonly pauseMs?: number;
  /** a request taking longer fails with "timeout": default 30 s */
  readonly timeoutMs?: number;
}

export interface VerifyRun {
  stop(): Promise<VerifyReport>;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The revision in a replica's name (`<project>-<service>-r<revision>-<slot>`, as a door's server `….<id>`). */
export function revisionOf(replica: string): string {
  const match = /-r(\d+)-\d+(\.[0-9a-f]{12})?$/.exec(replica);
  return match === null ? replica : `r${match[1]}`;
}

export function startVerify(options: VerifyOptions): VerifyRun {
  const clients = options.clients ?? 8;
  const pauseMs = options.pauseMs ?? 10;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const revisions: Record<string, number> = {};
  let sent = 0;
  let ok = 0;
  let running = true;
  const started = Date.now();
  const keepAlive = new Agent({ keepAlive: true, maxSockets: clients });

  const once = (reuse: boolean): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      sent += 1;
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        failures[reason] = (failures[reason] ?? 0) + 1;
        resolve();
      };
      const req = httpRequest(
        {
          host: options.host,
          port: options.port,
          path: options.path,
          method: "GET",
          agent: reuse ? keepAlive : false,
          headers: { [VERIFY_HEADER]: options.token, ...(reuse ? {} : { connection: "close" }) },
          timeout: timeoutMs,
        },
        (res: IncomingMessage) => {
          res.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? "response error"));
          res.resume();
          res.on("end", () => {
            if (settled) return;
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 400) return fail(`HTTP ${status}`);
            settled = true;
            ok += 1;
            latencies.push(performance.now() - t0);
            const target = res.headers[TARGET_HEADER];
            const revision = typeof target === "string" ? revisionOf(target) : "unknown";
            revisions[revision] = (revisions[revision] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on("timeout", () => {
        req.destroy();
        fail("timeout");
      });
      req.on("error", (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
      req.end();
    });

  const loops = Array.from({ length: clients }, async (_, i) => {
    const reuse = i % 2 === 0;
    while (running) {
      await once(reuse);
      if (pauseMs > 0 && running) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  });

  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      keepAlive.destroy();
      const sorted = [...latencies].sort((a, b) => a - b);
      const failed = Object.values(failures).reduce((a, b) => a + b, 0);
      return {
        service: options.service,
        url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}${options.path}`,
        sent,
        ok,
        failed,
        failures,
        p50Ms: Math.round(percentile(sorted, 50) * 100) / 100,
        p99Ms: Math.round(percentile(sorted, 99) * 100) / 100,
        maxMs: Math.round((sorted[sorted.length - 1] ?? 0) * 100) / 100,
        revisions,
        durationMs: Date.now() - started,
      };
    },
  };
}
