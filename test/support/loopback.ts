import type { AddressInfo, Server, Socket } from "node:net";

/**
 * Servers on 127.0.0.1 for tests without Docker (reroll-proxy's HTTP core): `listen` starts
 * one on a free port and remembers it and its connections; `closeLoopback` (in afterEach)
 * ends them all.
 */
const servers: Server[] = [];
const connections = new Set<Socket>();

export async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on("connection", (c: Socket) => connections.add(c));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

export async function closeLoopback(): Promise<void> {
  for (const c of connections) c.destroy();
  connections.clear();
  for (const s of servers.splice(0)) await new Promise((resolve) => s.close(resolve));
}

/** Waits until `condition` holds, checking every 10 ms; throws after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
