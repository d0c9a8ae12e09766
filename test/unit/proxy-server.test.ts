import { createServer, request, type Server } from "node:http";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect, type Server as NetServer } from "node:net";
import { createHttpProxy } from "../../src/proxy/http-proxy.js";
import { idLookup, runProxy, type RunningProxy } from "../../src/proxy/server.js";
import { createTcpProxy } from "../../src/proxy/tcp-proxy.js";
import { TargetPool } from "../../src/proxy/pool.js";
import { until } from "../support/loopback.js";
import { tempDir } from "../support/tmp.js";

/**
 * The reroll-proxy process on loopback (no Docker): replicas are servers on 127.0.0.x that
 * share one port, as replicas share their container port on the project network, and the
 * proxy's address lookup stands in for Docker's DNS.
 */

let root: string;
const servers: Server[] = [];
const proxies: RunningProxy[] = [];
/** proxies made directly (createHttpProxy, createTcpProxy) */
const fronts: NetServer[] = [];

beforeAll(async () => {
  root = await tempDir("reroll-proxy-server-");
});

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  for (const s of fronts.splice(0)) await new Promise((resolve) => s.close(resolve));
});

/** A replica answering `name` on host:port (port 0: any free one). */
async function replica(name: string, host: string, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.end(name));
  servers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return { server, port: (server.address() as { port: number }).port };
}

async function stop(server: Server): Promise<void> {
  servers.splice(servers.indexOf(server), 1);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A proxy whose saved routes are `targets`, as after a restart, with `lookup` as Docker's DNS. */
async function proxyFor(label: string, targetPort: number, targets: { id: string; host: string }[], lookup: (id: string) => Promise<string | null | undefined>, resolveEveryMs: number) {
  const dir = join(root, label);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "routes.json"), JSON.stringify({ targets: targets.map((t) => ({ ...t, name: t.id })) }));
  const proxy = await runProxy(
    { project: "p", service: "web", listeners: [{ port: 0, targetPort, mode: "http", published: "127.0.0.1:0" }] },
    { controlPath: join(dir, "control.sock"), settings: { healthcheck: undefined, drainTimeoutMs: 1_000 }, log: () => undefined, lookup, resolveEveryMs },
  );
  proxies.push(proxy);
  return proxy.ports[0]!;
}

describe("reroll-proxy follows replicas that Docker restarted", () => {
  it("a replica back at a new address gets traffic there; its old address, now another container's, gets none", async () => {
    const a = await replica("a", "127.0.0.2");
    await replica("b", "127.0.0.3", a.port);
    const dns = new Map<string, string | null>([
      ["a", "127.0.0.2"],
      ["b", "127.0.0.3"],
    ]);
    const asked = new Map<string, number>();
    const lookup = async (id: string) => {
      asked.set(id, (asked.get(id) ?? 0) + 1);
      return dns.get(id);
    };
    const port = await proxyFor("moved", a.port, [{ id: "a", host: "127.0.0.2" }, { id: "b", host: "127.0.0.3" }], lookup, 50);
    const first = await Promise.all(Array.from({ length: 20 }, () => get(port)));
    expect(new Set(first.map((r) => r.body))).toEqual(new Set(["a", "b"]));

    // a stops: Docker's DNS forgets it, and its address goes to another container
    await stop(a.server);
    dns.set("a", null);
    const seen = asked.get("a") ?? 0;
    await until(() => (asked.get("a") ?? 0) >= seen + 2);
    await replica("filler", "127.0.0.2", a.port);
    const whileGone = await Promise.all(Array.from({ length: 20 }, () => get(port)));
    expect(whileGone.map((r) => `${r.status} ${r.body}`)).toEqual(Array(20).fill("200 b"));

    // a is back, at another address
    await replica("a", "127.0.0.4", a.port);
    dns.set("a", "127.0.0.4");
    await until(() => (asked.get("a") ?? 0) >= seen + 4);
    const after = await Promise.all(Array.from({ length: 40 }, () => get(port)));
    expect(after.every((r) => r.status === 200)).toBe(true);
    expect(new Set(after.map((r) => r.body))).toEqual(new Set(["a", "b"]));
  });

  it("a failed connect has the target's address checked at once, not at the next round", async () => {
    const a = await replica("a", "127.0.0.2");
    await replica("b", "127.0.0.3", a.port);
    const dns = new Map<string, string | null>([
      ["a", "127.0.0.2"],
      ["b", "127.0.0.3"],
    ]);
    const asked: string[] = [];
    const lookup = async (id: string) => {
      asked.push(id);
      return dns.get(id);
    };
    // rounds every minute: only a failure can ask within this test
    const port = await proxyFor("failed", a.port, [{ id: "a", host: "127.0.0.2" }, { id: "b", host: "127.0.0.3" }], lookup, 60_000);
    await until(() => asked.length >= 2); // the round at start
    asked.length = 0;
    await stop(a.server);
    await replica("a", "127.0.0.4", a.port);
    dns.set("a", "127.0.0.4");
    const answers = await Promise.all(Array.from({ length: 10 }, () => get(port)));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(asked).toContain("a");
    await until(() => asked.length > 0);
    const later = await Promise.all(Array.from({ length: 20 }, () => get(port)));
    expect(new Set(later.map((r) => r.body))).toEqual(new Set(["a", "b"]));
  });
});

/** A pool whose target `a` loses its address while a connect to it is under way, as when its container stops. */
function poolLosingA(port: number): TargetPool {
  const pool = new TargetPool();
  pool.add("a", "127.0.0.2", port);
  pool.add("b", "127.0.0.3", port);
  const pick = pool.pick.bind(pool);
  pool.pick = (exclude) => {
    const target = pick(exclude);
    if (target?.id === "a") pool.unreachable("a");
    return target;
  };
  return pool;
}

/** One raw HTTP exchange (`version` 1.1 takes the fast path, 1.0 Node's server). */
function exchange(port: number, version: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let text = "";
    socket.on("data", (c: Buffer) => (text += c.toString()));
    socket.on("end", () => {
      socket.end();
      resolve(text.slice(text.indexOf("\r\n\r\n") + 4));
    });
    socket.on("error", reject);
    socket.write(`GET / HTTP/${version}\r\nhost: x\r\nconnection: close\r\n\r\n`);
  });
}

describe("a connect that completes after its target lost that address", () => {
  it.each(["1.1", "1.0"])("HTTP/%s: the request goes to another target, never to the address's new owner", async (version) => {
    const filler = await replica("filler", "127.0.0.2");
    await replica("b", "127.0.0.3", filler.port);
    const proxy = createHttpProxy({ pool: poolLosingA(filler.port) });
    fronts.push(proxy.server);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    const port = (proxy.server.address() as { port: number }).port;
    const bodies = await Promise.all(Array.from({ length: 6 }, () => exchange(port, version)));
    expect(bodies).toEqual(Array(6).fill("b"));
  });

  it("TCP mode: the connection goes to another target", async () => {
    const filler = await replica("filler", "127.0.0.2");
    await replica("b", "127.0.0.3", filler.port);
    const tcp = createTcpProxy({ pool: poolLosingA(filler.port) });
    fronts.push(tcp);
    await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
    const port = (tcp.address() as { port: number }).port;
    const bodies = await Promise.all(Array.from({ length: 6 }, () => exchange(port, "1.1")));
    expect(bodies).toEqual(Array(6).fill("b"));
  });
});

describe("looking targets up by container id", () => {
  const nxdomain = () => Promise.reject(Object.assign(new Error("queryA ENOTFOUND"), { code: "ENOTFOUND" }));

  it("believes 'no such container' only once its own id resolved: a DNS that answers no ids stops nothing", async () => {
    const lookup = idLookup(nxdomain, "selfselfself");
    expect(await lookup("0123456789abcdef")).toBeUndefined();
  });

  it("asks for the short id: an address, or null once the container is gone", async () => {
    const asked: string[] = [];
    const dns = new Map([
      ["selfselfself", "172.20.0.9"],
      ["0123456789ab", "172.20.0.3"],
    ]);
    const lookup = idLookup(async (name) => {
      asked.push(name);
      const address = dns.get(name);
      return address === undefined ? nxdomain() : [address];
    }, "selfselfself");
    expect(await lookup("0123456789abcdef")).toBe("172.20.0.3");
    dns.delete("0123456789ab");
    expect(await lookup("0123456789abcdef")).toBeNull();
    expect(asked).toEqual(["selfselfself", "0123456789ab", "0123456789ab"]);
  });

  it("a DNS that does not answer (timeout) leaves the target as it is", async () => {
    const lookup = idLookup(async (name) => (name === "selfselfself" ? ["172.20.0.9"] : Promise.reject(Object.assign(new Error("timeout"), { code: "ETIMEOUT" }))), "selfselfself");
    expect(await lookup("0123456789abcdef")).toBeUndefined();
  });
});

describe("TargetPool", () => {
  it("passes over a target whose connect just failed while another can take the request, and tells whoever asked", () => {
    const failures: string[] = [];
    const pool = new TargetPool({ onFailure: (id) => failures.push(id) });
    pool.add("a", "127.0.0.2", 80);
    pool.add("b", "127.0.0.3", 80);
    pool.failed("a");
    expect(failures).toEqual(["a"]);
    expect(Array.from({ length: 10 }, () => pool.pick()?.id)).toEqual(Array(10).fill("b"));
    // the only one left is still tried rather than refusing the request
    expect(pool.pick(new Set(["b"]))?.id).toBe("a");
  });

  it("an unreachable target gets nothing, even as the last one; readdress brings it back at its new address", () => {
    const pool = new TargetPool();
    pool.add("a", "127.0.0.2", 80);
    pool.unreachable("a");
    expect(pool.pick()).toBeUndefined();
    expect(pool.readdress("a", "127.0.0.9")).toBe(true);
    expect(pool.pick()).toMatchObject({ id: "a", host: "127.0.0.9" });
    expect(pool.isReady("a", "127.0.0.2")).toBe(false);
    expect(pool.isReady("a", "127.0.0.9")).toBe(true);
  });
});
