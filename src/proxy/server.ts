import { Resolver } from "node:dns/promises";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { request as httpRequest } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { createHttpProxy, type HttpProxy } from "./http-proxy.js";
import { TargetPool } from "./pool.js";
import type { ControlReply, ControlRequest, ProxyConfig, ProxySettingsMessage, StatusReply, TargetAddress, TargetReport } from "./protocol.js";
import { createTcpProxy } from "./tcp-proxy.js";

/**
 * The reroll-proxy process (`reroll proxy run`): the listeners of one service, a pool of
 * targets per listener, the fast health probe, and the control socket. Its targets are
 * written to a file beside the socket on every change and read back at start, so a proxy
 * that crashed or was restarted by Docker comes back serving the same replicas.
 *
 * Between rollouts nobody tells the proxy that Docker restarted a crashed replica, and the
 * replica may come back at another address while its old one goes to another container.
 * So every target's address is checked against Docker's DNS each RESOLVE_EVERY_MS, and at
 * once when a connect to it fails: a target whose container has no address takes no request,
 * one that moved is followed.
 */

/** the cadence of a new target's probe until its first 2xx, when the settings give none */
export const PROBE_EVERY_MS = 100;
/** how often each routed target's address is checked */
export const RESOLVE_EVERY_MS = 1_000;

/**
 * A target's current address: a string, null when its container has none (not running),
 * undefined when that could not be told (keep what is known).
 */
export type AddressLookup = (id: string) => Promise<string | null | undefined>;

/**
 * Docker's embedded DNS (127.0.0.11, in a container on a user-defined network) answers a
 * container's short id with its address on the network both share, and NXDOMAIN once the
 * container stops. The id is used, not the name: a name may pass from an old replica to its
 * replacement. Undefined outside such a container (the proxy run by hand, tests).
 */
export function dockerDnsLookup(resolvConf = "/etc/resolv.conf"): AddressLookup | undefined {
  let conf: string;
  try {
    conf = readFileSync(resolvConf, "utf8");
  } catch {
    return undefined;
  }
  if (!/^\s*nameserver\s+127\.0\.0\.11\s*$/m.test(conf)) return undefined;
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers(["127.0.0.11"]);
  // the trailing dot: the name as it is, never with a search domain
  return idLookup((name) => resolver.resolve4(`${name}.`), hostname());
}

/**
 * Container ids looked up with `resolve4`. An NXDOMAIN is believed only once `self` (this
 * container's own short id, its default hostname) has resolved: a daemon whose DNS did not
 * answer ids would otherwise have every target taken for stopped.
 */
export function idLookup(resolve4: (name: string) => Promise<string[]>, self: string): AddressLookup {
  let trusted = false;
  const ask = async (name: string): Promise<string | null | undefined> => {
    try {
      const [address] = await resolve4(name);
      return address ?? null;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return code === "ENOTFOUND" || code === "ENODATA" ? null : undefined;
    }
  };
  return async (id) => {
    if (!trusted) {
      if (typeof (await ask(self)) !== "string") return undefined;
      trusted = true;
    }
    return ask(id.slice(0, 12));
  };
}

export interface RunningProxy {
  readonly close: () => Promise<void>;
  /** the ports listened on, in the order of config.listeners (useful with port 0 in tests) */
  readonly ports: readonly number[];
}

interface Probing {
  readonly target: TargetAddress;
  cancelled: boolean;
  readonly cancel: () => void;
}

interface Saved {
  readonly targets: readonly TargetAddress[];
  readonly settings?: ProxySettingsMessage;
}

export interface ProxyRunOptions {
  readonly controlPath: string;
  readonly settings: ProxySettingsMessage;
  readonly log?: (line: string) => void;
  /** how targets' addresses are checked; default dockerDnsLookup(), null for never */
  readonly lookup?: AddressLookup | null;
  /** default RESOLVE_EVERY_MS */
  readonly resolveEveryMs?: number;
}

export async function runProxy(config: ProxyConfig, options: ProxyRunOptions): Promise<RunningProxy> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const statePath = join(dirname(options.controlPath), "routes.json");
  let settings = options.settings;
  const routed = new Map<string, TargetAddress>();
  const probing = new Map<string, Probing>();
  const draining = new Set<string>();
  /** routed targets whose container has no address now */
  const unreachable = new Set<string>();
  const lookup = options.lookup === undefined ? dockerDnsLookup() : (options.lookup ?? undefined);

  const listeners = config.listeners.map((l) => {
    const pool = new TargetPool({ onFailure: (id) => void recheck(id) });
    let http: HttpProxy | undefined;
    let server: Server;
    if (l.mode === "http") {
      http = createHttpProxy({ pool });
      server = http.server;
    } else {
      server = createTcpProxy({ pool });
    }
    return { config: l, pool, http, server };
  });

  let saves = 0;
  /** the routes, replaced whole (temporary file, then rename): a crash leaves the old file or the new one */
  const save = async (): Promise<void> => {
    const saved: Saved = { targets: [...routed.values()], settings };
    const temp = `${statePath}.${process.pid}.${saves++}.tmp`;
    writeFileSync(temp, `${JSON.stringify(saved)}\n`);
    renameSync(temp, statePath);
  };
  const route = (t: TargetAddress): void => {
    routed.set(t.id, t);
    draining.delete(t.id);
    unreachable.delete(t.id);
    for (const l of listeners) l.pool.add(t.id, t.host, l.config.targetPort, t.name ?? t.id);
  };
  const unroute = (id: string): void => {
    routed.delete(id);
    unreachable.delete(id);
    for (const l of listeners) {
      l.pool.remove(id);
      l.http?.forget(id);
    }
  };

  /** Follows a routed target to where its container is now (see RESOLVE_EVERY_MS). */
  const checking = new Set<string>();
  const recheck = async (id: string): Promise<void> => {
    if (lookup === undefined || checking.has(id) || !routed.has(id)) return;
    checking.add(id);
    try {
      const address = await lookup(id);
      const known = routed.get(id);
      if (known === undefined || address === undefined) return;
      const name = known.name ?? id.slice(0, 12);
      if (address === null) {
        if (unreachable.has(id)) return;
        unreachable.add(id);
        for (const l of listeners) {
          l.pool.unreachable(id);
          l.http?.forget(id);
        }
        log(`reroll-proxy: ${name} has no address (its container is not running): no request goes to it until it is back`);
        return;
      }
      const wasUnreachable = unreachable.delete(id);
      if (address === known.host) {
        if (wasUnreachable) {
          for (const l of listeners) l.pool.readdress(id, address);
          log(`reroll-proxy: ${name} is back at ${address}: routed`);
        }
        return;
      }
      routed.set(id, { ...known, host: address });
      for (const l of listeners) {
        l.pool.readdress(id, address);
        l.http?.forget(id);
      }
      await save();
      log(`reroll-proxy: ${name} moved from ${known.host} to ${address} (Docker restarted it): routed there`);
    } catch (error) {
      log(`reroll-proxy: checking the address of ${id.slice(0, 12)} failed: ${(error as Error).message}`);
    } finally {
      checking.delete(id);
    }
  };
  const recheckAll = (): void => {
    for (const id of routed.keys()) void recheck(id);
  };
  const rechecks = lookup === undefined ? undefined : setInterval(recheckAll, options.resolveEveryMs ?? RESOLVE_EVERY_MS);
  rechecks?.unref();

  // routes kept from before a restart
  try {
    const saved = JSON.parse(readFileSync(statePath, "utf8")) as Saved;
    if (saved.settings !== undefined) settings = saved.settings;
    for (const t of saved.targets) route(t);
    if (saved.targets.length > 0) log(`reroll-proxy: restored ${saved.targets.length} route(s): ${saved.targets.map((t) => t.id).join(", ")}`);
  } catch {
    // first start: no routes yet
  }
  // a replica may have moved while the proxy was down
  recheckAll();

  /** One probe of the health path (HTTP), or a plain connect (TCP mode / no path). */
  const probeOnce = (t: TargetAddress): Promise<boolean> =>
    new Promise((resolve) => {
      const first = listeners[0]!.config;
      const hc = settings.healthcheck;
      if (hc === undefined || first.mode === "tcp") {
        const socket: Socket = connect({ host: t.host, port: first.targetPort });
        const done = (ok: boolean) => {
          socket.destroy();
          resolve(ok);
        };
        socket.setTimeout(hc?.timeoutMs ?? 1_000, () => done(false));
        socket.once("connect", () => done(true));
        socket.once("error", () => done(false));
        return;
      }
      const req = httpRequest({ host: t.host, port: first.targetPort, path: hc.path, method: "GET", headers: { "user-agent": "reroll-proxy/health" }, timeout: hc.timeoutMs, agent: false }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      req.end();
    });

  const probeUntilHealthy = async (t: TargetAddress): Promise<{ ok: boolean; probes: number }> => {
    let cancelWait: () => void = () => undefined;
    const entry: Probing = {
      target: t,
      cancelled: false,
      cancel: () => {
        entry.cancelled = true;
        cancelWait();
      },
    };
    probing.get(t.id)?.cancel();
    probing.set(t.id, entry);
    let probes = 0;
    try {
      for (;;) {
        if (entry.cancelled) return { ok: false, probes };
        const started = Date.now();
        probes += 1;
        if (await probeOnce(t)) return { ok: !entry.cancelled, probes };
        const wait = Math.max(0, (settings.healthcheck?.intervalMs ?? PROBE_EVERY_MS) - (Date.now() - started));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          cancelWait = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      if (probing.get(t.id) === entry) probing.delete(t.id);
    }
  };

  const status = (): StatusReply => {
    const targets: TargetReport[] = [];
    const outstanding = (id: string) => listeners.reduce((n, l) => n + (l.pool.list().find((x) => x.id === id)?.outstanding ?? 0), 0);
    for (const t of routed.values()) {
      targets.push({ ...t, state: draining.has(t.id) ? "draining" : unreachable.has(t.id) ? "unreachable" : "ready", outstanding: outstanding(t.id) });
    }
    for (const p of probing.values()) if (!routed.has(p.target.id)) targets.push({ ...p.target, state: "probing", outstanding: 0 });
    return { config, settings, targets };
  };

  const handle = async (request: ControlRequest, mine: Set<string>): Promise<unknown> => {
    switch (request.op) {
      case "status":
        return status();
      case "configure":
        settings = request.settings;
        await save();
        return undefined;
      case "sync": {
        const wanted = new Map(request.targets.map((t) => [t.id, t]));
        for (const id of [...routed.keys()]) if (!wanted.has(id)) unroute(id);
        for (const t of wanted.values()) route(t);
        await save();
        return status();
      }
      case "add": {
        const started = Date.now();
        if (request.probe) {
          mine.add(request.target.id);
          const { ok, probes } = await probeUntilHealthy(request.target).finally(() => mine.delete(request.target.id));
          if (!ok) throw new Error(`${request.target.name ?? request.target.id}: probing was cancelled`);
          route(request.target);
          await save();
          log(`reroll-proxy: ${request.target.name ?? request.target.id} (${request.target.host}) answered its health check after ${probes} probe(s), ${Date.now() - started} ms: routed`);
          return { probes, ms: Date.now() - started };
        }
        route(request.target);
        await save();
        log(`reroll-proxy: ${request.target.name ?? request.target.id} (${request.target.host}) routed`);
        return { probes: 0, ms: 0 };
      }
      case "remove": {
        probing.get(request.target)?.cancel();
        unroute(request.target);
        await save();
        return undefined;
      }
      case "drain": {
        probing.get(request.target)?.cancel();
        if (!routed.has(request.target)) return { routed: false, drained: true, outstanding: 0, ms: 0 };
        const started = Date.now();
        draining.add(request.target);
        const timeoutMs = request.timeoutMs ?? settings.drainTimeoutMs;
        // no new request goes there; idle pooled connections to it close now, busy ones when their response ends
        const results = await Promise.all(
          listeners.map(async (l) => {
            const drainDone = l.pool.drain(request.target, timeoutMs);
            l.http?.forget(request.target);
            return drainDone;
          }),
        );
        unroute(request.target);
        draining.delete(request.target);
        await save();
        const outstanding = results.reduce((n, r) => n + r.outstanding, 0);
        log(`reroll-proxy: ${request.target.slice(0, 12)} drained in ${Date.now() - started} ms${outstanding > 0 ? `, ${outstanding} still open at the drain timeout` : ""}`);
        return { routed: true, drained: outstanding === 0, outstanding, ms: Date.now() - started };
      }
    }
  };

  // the control socket: NDJSON requests, replies in any order (a drain does not block a status)
  mkdirSync(dirname(options.controlPath), { recursive: true, mode: 0o700 });
  rmSync(options.controlPath, { force: true });
  const control = createServer((socket) => {
    socket.on("error", () => socket.destroy());
    // a probe lives as long as the session that asked for it: a CLI killed mid-rollout leaves none running
    const mine = new Set<string>();
    socket.on("close", () => {
      for (const id of mine) probing.get(id)?.cancel();
    });
    createInterface({ input: socket, crlfDelay: Infinity }).on("line", (raw: string) => {
      const line = raw.trim();
      if (line === "") return;
      let request: ControlRequest;
      try {
        request = JSON.parse(line) as ControlRequest;
      } catch {
        socket.write(`${JSON.stringify({ id: -1, ok: false, error: "not JSON" } satisfies ControlReply)}\n`);
        return;
      }
      handle(request, mine).then(
        (result) => socket.writable && socket.write(`${JSON.stringify({ id: request.id, ok: true, ...(result === undefined ? {} : { result }) } satisfies ControlReply)}\n`),
        (error: unknown) => socket.writable && socket.write(`${JSON.stringify({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies ControlReply)}\n`),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    control.once("error", reject);
    control.listen(options.controlPath, () => resolve());
  });

  const ports = await Promise.all(
    listeners.map(
      (l) =>
        new Promise<number>((resolve, reject) => {
          l.server.once("error", reject);
          l.server.listen(l.config.port, () => {
            const address = l.server.address();
            resolve(typeof address === "object" && address !== null ? address.port : l.config.port);
          });
        }),
    ),
  );
  log(`reroll-proxy for ${config.project}/${config.service}: ${config.listeners.map((l, i) => `${l.published} → :${ports[i]} → replicas:${l.targetPort} (${l.mode})`).join("; ")}`);

  return {
    ports,
    close: async () => {
      clearInterval(rechecks);
      for (const p of probing.values()) p.cancel();
      control.close();
      const outstanding = () => listeners.reduce((n, l) => n + l.pool.list().reduce((m, t) => m + t.outstanding, 0), 0);
      for (const l of listeners) {
        if (l.http !== undefined) l.http.shutdown();
        else l.server.close();
      }
      // what is in flight finishes (bounded by the caller); nothing new is accepted
      while (outstanding() > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    },
  };
}
