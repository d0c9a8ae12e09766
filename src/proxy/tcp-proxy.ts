import { connect, createServer, type Server, type Socket } from "node:net";
import { MOVED, type TargetPool } from "./pool.js";

/**
 * reroll-proxy's plain TCP mode (`x-reroll.proxy.mode: tcp`), for ports that do not speak
 * HTTP: each client connection goes to the ready target with the fewest open connections.
 * The client's bytes wait (paused) until a target accepted the connection, so a refused
 * connect is tried on the next target with nothing lost; with no ready target the client's
 * connection is closed at once. A connection counts as outstanding on its target until
 * either side closes it, which is what a drain waits for.
 */

export interface TcpProxyOptions {
  readonly pool: TargetPool;
  /** connecting to a target: default 2 s, then the next one is tried */
  readonly connectTimeoutMs?: number;
  /** an idle connection (no byte either way) is closed after this: default 1 h */
  readonly idleTimeoutMs?: number;
}

export function createTcpProxy(options: TcpProxyOptions): Server {
  const connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 3_600_000;
  return createServer({ pauseOnConnect: true }, (client: Socket) => {
    client.on("error", () => client.destroy());
    const tried = new Set<string>();
    const attempt = (): void => {
      const target = options.pool.pick(tried);
      if (target === undefined) {
        client.destroy();
        return;
      }
      tried.add(target.id);
      const release = options.pool.hold(target.id);
      const upstream = connect({ host: target.host, port: target.port });
      upstream.setTimeout(connectTimeoutMs, () => upstream.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" })));
      let connected = false;
      upstream.once("connect", () => {
        if (!options.pool.reaches(target.id, target.host)) {
          upstream.destroy(Object.assign(new Error("the replica moved while connecting"), { code: MOVED }));
          return;
        }
        connected = true;
        upstream.setTimeout(idleTimeoutMs, () => upstream.destroy());
        client.setTimeout(idleTimeoutMs, () => client.destroy());
        upstream.pipe(client);
        client.pipe(upstream);
        client.resume();
      });
      const close = (): void => {
        release();
        upstream.destroy();
        client.destroy();
      };
      upstream.on("error", (error: NodeJS.ErrnoException) => {
        if (connected) return close();
        release();
        if (client.destroyed) return;
        if (error.code !== MOVED) options.pool.failed(target.id);
        attempt();
      });
      upstream.on("close", () => {
        if (connected) close();
      });
      client.on("close", () => {
        if (connected) close();
        else upstream.destroy();
      });
    };
    attempt();
  });
}
