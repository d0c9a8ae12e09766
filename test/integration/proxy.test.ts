import { execFileSync, spawn as spawnChild } from "node:child_process";
import { cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { Agent as HttpAgent, get as httpGet } from "node:http";
import { connect } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { runReroll, spawnRerollEvents, type CliRun, type TimedEvent } from "../support/cli.js";
import { docker, execIn, removeProject, testName } from "../support/docker.js";
import { get, startLoad, type Load } from "../support/load.js";
import { eventually, freePort } from "../support/net.js";
import { tempDir } from "../support/tmp.js";

/**
 * The doors (HAProxy) against the real daemon, with real traffic on 127.0.0.1: rollouts and an
 * automatic rollback under 16 concurrent clients lose no request, in-flight requests and
 * WebSockets survive their replica's drain, a door keeps its routes when Docker restarts it,
 * and one port's changes never touch another's traffic.
 */

const APP = fileURLToPath(new URL("../fixtures/proxy-app", import.meta.url));

interface ServiceOptions {
  readonly name?: string;
  readonly version: string;
  readonly broken?: boolean;
  readonly port: number;
  readonly replicas?: number;
  readonly drainTimeout?: string;
  readonly mode?: "http" | "tcp";
  readonly healthPath?: string | null;
  /** the Docker healthcheck's interval, when not the image's (1 s) */
  readonly healthInterval?: string;
}

function serviceYaml(o: ServiceOptions): string[] {
  const name = o.name ?? "web";
  return [
    `  ${name}:`,
    "    build:",
    "      context: ./app",
    "      args:",
    `        VERSION: ${o.version}`,
    `        BROKEN: "${o.broken === true ? 1 : 0}"`,
    `    ports: ["127.0.0.1:${o.port}:8080"]`,
    ...(o.healthInterval === undefined ? [] : [`    healthcheck: { interval: ${o.healthInterval} }`]),
    "    stop_grace_period: 2s",
    "    deploy:",
    `      replicas: ${o.replicas ?? 3}`,
    "      update_config:",
    "        monitor: 1s",
    "      rollback_config:",
    "        monitor: 500ms",
    "    x-reroll:",
    "      proxy:",
    ...(o.mode === undefined ? [] : [`        mode: ${o.mode}`]),
    ...(o.healthPath === null ? [] : ["        healthcheck:", `          path: ${o.healthPath ?? "/health"}`]),
    `        drain_timeout: ${o.drainTimeout ?? "10s"}`,
  ];
}

interface Project {
  readonly dir: string;
  readonly project: string;
  write(...services: ServiceOptions[]): Promise<void>;
  /** adds one line under the (only) service's x-reroll.proxy */
  proxySetting(line: string): Promise<void>;
  reroll(args: readonly string[]): Promise<CliRun>;
  /** runs reroll with --output json and records when each event arrived */
  rerollTimed(args: readonly string[], onEvent?: (event: Record<string, unknown>, kill: () => void) => void): Promise<{ code: number; events: TimedEvent[]; output: string }>;
}

const projects: string[] = [];
let root: string;

async function project(label: string): Promise<Project> {
  const name = testName(label);
  projects.push(name);
  const dir = join(root, name);
  await cp(APP, join(dir, "app"), { recursive: true });
  return {
    dir,
    project: name,
    async write(...services) {
      await writeFile(join(dir, "compose.yaml"), ["services:", ...services.flatMap(serviceYaml), ""].join("\n"));
    },
    async proxySetting(line) {
      const compose = join(dir, "compose.yaml");
      await writeFile(compose, (await readFile(compose, "utf8")).replace("      proxy:\n", `      proxy:\n        ${line}\n`));
    },
    reroll: (args) => runReroll([...args, "-p", name], { cwd: dir }),
    rerollTimed: (args, onEvent) => spawnRerollEvents([...args, "-p", name], { cwd: dir, ...(onEvent === undefined ? {} : { onEvent }) }),
  };
}

/** 16 clients on the port from 300 ms before `during` to 300 ms after it. */
function underLoad(port: number, during: () => Promise<void>): Promise<Load> {
  return underLoadOn(port, false, during);
}

/** The same, over HTTPS when `secure`. */
async function underLoadOn(port: number, secure: boolean, during: () => Promise<void>): Promise<Load> {
  const load = startLoad(port, 16, "/", secure);
  try {
    await new Promise((r) => setTimeout(r, 300));
    await during();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await load.stop();
  }
  return load;
}

/** No replica and no door of the project exists: an input error changed nothing. */
async function expectNothingMade(projectName: string): Promise<void> {
  const made = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${projectName}`] }) });
  expect(made.filter((c) => c.Labels["dev.reroll.slot"] !== undefined || c.Labels["dev.reroll.proxy-for"] !== undefined)).toEqual([]);
}

function doorName(projectName: string, port: number, service = "web"): string {
  return `${projectName}-${service}-proxy-127.0.0.1-${port}`;
}

async function proxyContainer(projectName: string, port: number, service = "web") {
  return docker.getContainer(doorName(projectName, port, service)).inspect();
}

/** The replicas (container hostnames) that answered `count` requests through the door on `port`, each of which must be a 200. */
async function targetsAnswering(port: number, count: number): Promise<Set<string>> {
  const answered = new Set<string>();
  for (let i = 0; i < count; i++) {
    const res = await get(port, "/");
    expect(res.status).toBe(200);
    answered.add(String(res.headers["x-replica"]));
  }
  return answered;
}

/** What a replica answers at `path`, asked straight at its address on the project network. */
async function askReplica(id: string, path: string): Promise<string> {
  const networks = (await docker.getContainer(id).inspect()).NetworkSettings.Networks;
  const address = Object.values(networks)[0]!.IPAddress;
  return new Promise((resolve, reject) => {
    httpGet({ host: address, port: 8080, path, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

/** How many connections the door opened to the project's replicas so far (each replica counts its own). */
async function connectionsToReplicas(projectName: string): Promise<number> {
  const replicas = await docker.listContainers({ filters: JSON.stringify({ label: [`dev.reroll.project=${projectName}`, "dev.reroll.slot"] }) });
  const counts = await Promise.all(replicas.map(async (c) => Number(await askReplica(c.Id, "/connections"))));
  return counts.reduce((a, b) => a + b, 0);
}

describe("reroll-proxy (real daemon, real traffic on 127.0.0.1)", () => {
  beforeAll(async () => {
    root = await tempDir("reroll-proxy-");
  });
  // each test's replicas (a node healthcheck each second apiece) and proxy go when it ends
  afterEach(async () => {
    for (const p of projects.splice(0)) await removeProject(p);
  });

  it("rolls 3 replicas v1 → v2 and rolls a broken v3 back under 16 clients without a failed request", async () => {
    const p = await project("load");
    const port = await freePort();
    await p.write({ version: "v1", port });
    const first = await p.reroll(["up"]);
    expect(first.code, first.stderr).toBe(0);
    // the replicas publish nothing; the proxy publishes the declared host address and port
    const proxy = await proxyContainer(p.project, port);
    expect(proxy.HostConfig.PortBindings?.["10000/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: String(port) }]);
    expect(proxy.Config.Image).toBe("haproxy:lts");
    // nothing of reroll's version or checkout is in the door: upgrading reroll cannot make it anew
    const imageLabels = (await docker.getImage(proxy.Image).inspect()).Config.Labels ?? {};
    const own = Object.keys(proxy.Config.Labels).filter((k) => !(k in imageLabels));
    expect(own.sort()).toEqual(["dev.reroll.project", "dev.reroll.proxy-for", "dev.reroll.proxy-image", "dev.reroll.proxy-port", "dev.reroll.proxy-signature"]);
    for (const c of await docker.listContainers({ filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) })) {
      expect(c.Ports.filter((x) => x.PublicPort !== undefined)).toEqual([]);
    }
    expect((await get(port)).body.trim()).toBe("v1");

    const load = startLoad(port, 16);
    try {
      await new Promise((r) => setTimeout(r, 500));
      await p.write({ version: "v2", port });
      const rolled = await p.reroll(["up"]);
      expect(rolled.code, rolled.stderr).toBe(0);
      const switched = Date.now();
      await new Promise((r) => setTimeout(r, 500));

      await p.write({ version: "v3", broken: true, port });
      const broken = await p.reroll(["up", "--timeout", "10s"]);
      expect(broken.code, broken.stdout + broken.stderr).toBe(1);
      expect(broken.stderr).toMatch(/rolled back/);
      await new Promise((r) => setTimeout(r, 500));
      await load.stop();

      expect(load.failures).toEqual([]);
      expect(load.answers.length).toBeGreaterThan(200);
      const bodies = new Set(load.answers.map((a) => a.body));
      expect(bodies).toEqual(new Set(["v1", "v2"]));
      // only v2 once the switch was over
      expect(load.answers.filter((a) => a.at > switched + 100 && a.body !== "v2")).toEqual([]);
    } finally {
      await load.stop();
    }
    const after = await Promise.all(Array.from({ length: 20 }, () => get(port)));
    expect(new Set(after.map((a) => a.body.trim()))).toEqual(new Set(["v2"]));
    // the door keeps its connections to replicas it was given during the rollout, as to those
    // in its file: 60 requests on one keep-alive connection open about one per replica, not 60
    const opened = await connectionsToReplicas(p.project);
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 60; i++) expect((await get(port, "/", agent)).status).toBe(200);
    agent.destroy();
    expect((await connectionsToReplicas(p.project)) - opened).toBeLessThanOrEqual(6);
    const status = await p.reroll(["proxy", "status", "--output", "json"]);
    const targets = (JSON.parse(status.stdout) as { proxies: { targets: { name: string; state: string }[] }[] }).proxies[0]!.targets;
    expect(targets.map((t) => t.state)).toEqual(["ready", "ready", "ready"]);
    expect(targets.every((t) => /-r2-\d$/.test(t.name))).toBe(true);
  });

  it("--verify reports the traffic it sent and which revisions answered; a request in flight for 8 s survives its replica's drain", async () => {
    const p = await project("drain");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    await p.write({ version: "v2", port, replicas: 2 });
    expect((await p.reroll(["build"])).code).toBe(0);

    // 8 s: on a loaded CI machine the first replacement took 3.8 s to reach its drain, so 4 s
    // requests had nearly finished before it began and the drain had nothing left to wait for.
    // The drain timeout is 10 s, so the drain still ends because the requests did.
    const slow = Array.from({ length: 6 }, () => get(port, "/slow?ms=8000"));
    await new Promise((r) => setTimeout(r, 200));
    const run = await p.rerollTimed(["up", "--verify"]);
    expect(run.code, run.output).toBe(0);
    const answers = await Promise.all(slow);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(answers.map((a) => a.body.trim()))).toEqual(new Set(["v1 slow"]));
    // the drain waited for them
    const drains = run.events.filter((e) => e.event["type"] === "proxy-drain").map((e) => e.event);
    expect(drains.length).toBe(2);
    expect(drains.every((d) => d["drained"] === true)).toBe(true);
    expect(Math.max(...drains.map((d) => d["ms"] as number))).toBeGreaterThan(300);
    const report = run.events.find((e) => e.event["type"] === "verify-report")?.event["report"] as { sent: number; failed: number; revisions: Record<string, number> };
    expect(report.failed).toBe(0);
    expect(report.sent).toBeGreaterThan(50);
    expect(Object.keys(report.revisions).sort()).toEqual(["r1", "r2"]);
  });

  it("a drain just after a reload of the door waits for the worker the reload left: the request in flight on it finishes", async () => {
    const p = await project("reload-drain");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    await p.write({ version: "v2", port, replicas: 1 });
    expect((await p.reroll(["build"])).code).toBe(0);
    // the request is on the worker serving now; a reload hands the port to a new worker, and
    // HAProxy's runtime API is the new worker's, which never saw the request
    const slow = get(port, "/slow?ms=6000");
    await new Promise((r) => setTimeout(r, 300));
    await docker.getContainer(doorName(p.project, port)).kill({ signal: "SIGUSR2" });
    const run = await p.rerollTimed(["up", "--no-build"]);
    expect(run.code, run.output).toBe(0);
    const answer = await slow;
    expect([answer.status, answer.body.trim()]).toEqual([200, "v1 slow"]);
    const drain = run.events.find((e) => e.event["type"] === "proxy-drain")?.event;
    expect(drain?.["drained"]).toBe(true);
    expect(drain?.["ms"]).toBeGreaterThan(1_000);
  });

  it("keeps a WebSocket open across its replica's replacement until the drain timeout", async () => {
    const p = await project("ws");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1, drainTimeout: "4s" });
    expect((await p.reroll(["up"])).code).toBe(0);
    await p.write({ version: "v2", port, replicas: 1, drainTimeout: "4s" });
    expect((await p.reroll(["build"])).code).toBe(0);

    const socket = connect(port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    let received = "";
    socket.on("data", (c: Buffer) => (received += c.toString()));
    let closedAt = 0;
    socket.on("close", () => (closedAt = Date.now()));
    await eventually(async () => received.includes("101 Switching Protocols"), "the upgrade");
    const echoes: number[] = [];
    const ping = setInterval(() => {
      if (socket.destroyed) return;
      const before = received.length;
      socket.write("ping\n");
      setTimeout(() => received.length > before && echoes.push(Date.now()), 100);
    }, 250);
    try {
      const run = await p.rerollTimed(["up"]);
      expect(run.code, run.output).toBe(0);
      const routed = run.events.find((e) => e.event["type"] === "proxy-route")!.at;
      const drain = run.events.find((e) => e.event["type"] === "proxy-drain")!;
      // the drain waited out its timeout for the open connection, which kept working meanwhile
      expect(drain.event["drained"]).toBe(false);
      expect(drain.event["outstanding"]).toBe(1);
      expect(drain.event["ms"] as number).toBeGreaterThanOrEqual(3_900);
      expect(echoes.filter((t) => t > routed + 3_000).length).toBeGreaterThan(0);
      await eventually(async () => closedAt > 0, "the old replica's stop to close the WebSocket", 10_000);
      expect(closedAt).toBeGreaterThanOrEqual(routed + 3_900);
    } finally {
      clearInterval(ping);
      socket.destroy();
    }
    // new connections go to v2
    expect((await get(port)).body.trim()).toBe("v2");
  });

  it("keeps its routes when its process is killed and Docker restarts it", async () => {
    const p = await project("restart");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const before = await proxyContainer(p.project, port);
    process.kill(before.State.Pid, "SIGKILL");
    await eventually(async () => {
      const now = await proxyContainer(p.project, port);
      return now.RestartCount > before.RestartCount && now.State.Running;
    }, "Docker to restart the proxy", 20_000);
    await eventually(async () => (await get(port)).status === 200, "the restarted proxy to answer", 10_000);
    expect((await targetsAnswering(port, 20)).size).toBe(2);
    const status = await p.reroll(["status", "--output", "json"]);
    const web = (JSON.parse(status.stdout) as { services: { proxies: { targets: { state: string }[] }[] }[] }).services[0]!;
    expect(web.proxies.map((door) => door.targets.map((t) => t.state))).toEqual([["ready", "ready"]]);
  });

  it("a door that keeps exiting is made anew by up, which says what its log said; the replicas keep serving through the new one", async () => {
    const p = await project("crashloop");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const before = await proxyContainer(p.project, port);
    // damaged in place: its configuration made unreadable to HAProxy in the container's own
    // layer, so that every one of Docker's restarts exits at once
    expect(await execIn(before.Id, ["sh", "-c", "echo 'this is no haproxy configuration' > /usr/local/etc/haproxy/haproxy.cfg"], "root")).toBe(0);
    process.kill(before.State.Pid, "SIGKILL");
    await eventually(async () => (await proxyContainer(p.project, port)).RestartCount >= 2, "Docker to restart the broken door twice", 20_000);
    expect((await get(port).catch(() => ({ status: 0 }))).status).not.toBe(200);
    const run = await p.rerollTimed(["up"]);
    expect(run.code, run.output).toBe(0);
    const warning = run.events.find((e) => e.event["type"] === "warning" && /keeps exiting/.test(String(e.event["message"])));
    expect(String(warning?.event["message"])).toMatch(/-web-proxy-127\.0\.0\.1-\d+ is recreated: it keeps exiting \(exit code \d+, restarted \d+ times by Docker\); its log said: .*ALERT/);
    expect(run.events.find((e) => e.event["type"] === "proxy-removed")?.event["cause"]).toBe("kept exiting");
    const after = await proxyContainer(p.project, port);
    expect(after.Id).not.toBe(before.Id);
    expect(after.RestartCount).toBe(0);
    expect((await targetsAnswering(port, 10)).size).toBe(2);
  });

  it("reroll up again while Docker's first health check is pending keeps routing the replicas: no failed request", async () => {
    const p = await project("pending");
    const port = await freePort();
    // Docker reports the replicas `starting` for 30 s; the proxy's probe admitted them at once
    await p.write({ version: "v1", port, healthInterval: "30s" });
    expect((await p.reroll(["up"])).code).toBe(0);
    const replicas = await docker.listContainers({ filters: { label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] } });
    expect(replicas.map((c) => c.Status).every((s) => s.includes("health: starting")), "Docker's first check still pending").toBe(true);
    const load = await underLoad(port, async () => {
      for (let i = 0; i < 3; i += 1) {
        const run = await p.reroll(["up"]);
        expect(run.code, run.stderr).toBe(0);
      }
    });
    expect(load.failures).toEqual([]);
    expect(load.answers.length).toBeGreaterThan(50);
  });

  it("adds a second service with ports while the first is under load: no failed request on the first", async () => {
    const p = await project("second");
    const port = await freePort();
    const port2 = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const firstProxy = (await proxyContainer(p.project, port)).Id;
    const load = await underLoad(port, async () => {
      await p.write({ version: "v1", port, replicas: 2 }, { name: "api", version: "a1", port: port2, replicas: 1, mode: "tcp", healthPath: null });
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(0);
    });
    expect(load.failures).toEqual([]);
    expect(load.answers.length).toBeGreaterThan(50);
    expect((await proxyContainer(p.project, port)).Id).toBe(firstProxy);
    // the second service answers through its own door, in plain TCP mode
    expect((await get(port2)).body.trim()).toBe("a1");
    const api = await proxyContainer(p.project, port2, "api");
    expect(api.HostConfig.PortBindings?.["10000/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: String(port2) }]);
  });

  it("SIGKILL in the middle of a proxied rollout under load, then reroll up again: converged, routes on v2 only, no failed request", async () => {
    const p = await project("kill");
    const port = await freePort();
    await p.write({ version: "v1", port });
    expect((await p.reroll(["up"])).code).toBe(0);
    await p.write({ version: "v2", port });
    expect((await p.reroll(["build"])).code).toBe(0);
    const load = startLoad(port, 16);
    try {
      let killed = false;
      // killed while the second new replica is being probed: one slot done, one in flight
      await p.rerollTimed(["up"], (event, kill) => {
        if (!killed && event["type"] === "replica-start" && String(event["name"]).endsWith("-r2-2")) {
          killed = true;
          kill();
        }
      });
      expect(killed).toBe(true);
      const again = await p.reroll(["up"]);
      expect(again.code, again.stderr).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    const status = await p.reroll(["proxy", "status", "--output", "json"]);
    const targets = (JSON.parse(status.stdout) as { proxies: { targets: { name: string; state: string }[] }[] }).proxies[0]!.targets;
    expect(targets.map((t) => t.state)).toEqual(["ready", "ready", "ready"]);
    expect(targets.every((t) => /-r2-\d$/.test(t.name))).toBe(true);
    const replicas = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) });
    expect(replicas.map((c) => c.State)).toEqual(["running", "running", "running"]);
  });

  it("a configuration-only change (same image, same revision) rolls under load without a failed request", async () => {
    const p = await project("config");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    // the environment overrides the image's VERSION: new replicas of the same revision, whose names the old ones hold
    const compose = join(p.dir, "compose.yaml");
    const text = await readFile(compose, "utf8");
    await writeFile(compose, text.replace("    stop_grace_period: 2s", "    environment: { VERSION: v1-tuned }\n    stop_grace_period: 2s"));
    // slow requests in flight on both old replicas: they must be drained, not cut
    const slow = Array.from({ length: 4 }, () => get(port, "/slow?ms=3000"));
    const load = await underLoad(port, async () => {
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(0);
    });
    expect(load.failures).toEqual([]);
    expect((await Promise.allSettled(slow)).map((r) => (r.status === "fulfilled" ? r.value.body.trim() : String(r.reason)))).toEqual(["v1 slow", "v1 slow", "v1 slow", "v1 slow"]);
    expect(new Set(load.answers.map((a) => a.body))).toEqual(new Set(["v1", "v1-tuned"]));
    const after = await Promise.all(Array.from({ length: 10 }, () => get(port)));
    expect(new Set(after.map((a) => a.body.trim()))).toEqual(new Set(["v1-tuned"]));
    const replicas = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) });
    expect(replicas.map((c) => c.State)).toEqual(["running", "running"]);
  });

  it("refuses a port another process holds, naming it, and starts nothing", async () => {
    const p = await project("busy");
    const { createServer } = await import("node:net");
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()));
    const port = (holder.address() as { port: number }).port;
    try {
      await p.write({ version: "v1", port, replicas: 1 });
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`127.0.0.1:${port}`);
      expect(run.stderr).toMatch(/a process on this host/);
      const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) });
      expect(left).toEqual([]);
      await expect(proxyContainer(p.project, port)).rejects.toThrow();
    } finally {
      holder.close();
    }
  });

  it("a changed port: --dry-run names the proxy's recreation and changes nothing; up moves the service and says there was nothing to roll", async () => {
    const p = await project("port-change");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const unchanged = await p.reroll(["up", "--dry-run"]);
    expect(unchanged.stdout).not.toMatch(/^ {2}proxy/m);
    expect(unchanged.stdout).toMatch(/nothing to do: every replica runs the target/);

    let other = await freePort();
    while (other === port) other = await freePort();
    await p.write({ version: "v1", port: other, replicas: 1 });
    const before = (await proxyContainer(p.project, port)).Id;
    const plan = await p.reroll(["up", "--dry-run"]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`  proxy   create  ${doorName(p.project, other)}, publishing 127.0.0.1:${other}; remove  ${doorName(p.project, port)} (127.0.0.1:${port} is no longer published), after the new doors serve`);
    expect(plan.stdout).toMatch(/no replica to change: every replica runs the target/);
    // a dry run: the door is the same container, on the old port, and no new one was made
    expect((await proxyContainer(p.project, port)).Id).toBe(before);
    await expect(proxyContainer(p.project, other)).rejects.toThrow();
    expect((await get(port)).body.trim()).toBe("v1");

    const moved = await p.reroll(["up", "--output", "plain"]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stderr).toMatch(/web \| nothing to roll: every replica runs r1/);
    expect(moved.stderr).not.toMatch(/rolling to/);
    expect((await get(other)).body.trim()).toBe("v1");
    await expect(get(port)).rejects.toThrow();
    const again = await p.reroll(["up", "--dry-run"]);
    expect(again.stdout).not.toMatch(/^ {2}proxy/m);
  });

  it("a port held by docker compose's container of the same service: refused, saying how to hand the service over, and Compose's container keeps serving", async () => {
    const p = await project("from-compose");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    // what `docker compose up` left: its labels, the port published by the container itself
    const compose = await docker.createContainer({
      name: `${p.project}-web-1`,
      Image: "reroll-local/busybox:latest",
      Cmd: ["httpd", "-f", "-p", "8080", "-h", "/"],
      Labels: { "com.docker.compose.project": p.project, "com.docker.compose.service": "web", "dev.reroll.project": p.project },
      ExposedPorts: { "8080/tcp": {} },
      HostConfig: { PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: String(port) }] } },
    });
    await compose.start();
    const run = await p.reroll(["up"]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(`${p.project}-web-1 was started by docker compose (project ${p.project}). To hand the service to reroll, take Compose's containers down first (docker compose -p ${p.project} down`);
    expect((await compose.inspect()).State.Running).toBe(true);
    await expect(proxyContainer(p.project, port)).rejects.toThrow();
    const replicas = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) });
    expect(replicas).toEqual([]);
  });

  it("a renamed service: up names the orphans and leaves them serving; --remove-orphans frees the port for the new name", async () => {
    const p = await project("rename");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    await p.write({ name: "site", version: "v1", port, replicas: 1 });
    // the old proxy holds the port: refused, naming the way out, and the old service still answers
    const refused = await p.reroll(["up", "--output", "plain"]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(`${p.project}-web-r1-1, ${doorName(p.project, port)} belong to web, which the Compose file no longer has`);
    expect(refused.stderr).toContain(`${doorName(p.project, port)} is the door of web, which the Compose file no longer has: reroll up --remove-orphans`);
    expect((await get(port)).body.trim()).toBe("v1");
    const status = JSON.parse((await p.reroll(["status", "--output", "json"])).stdout) as { orphans: { name: string; service: string }[] };
    expect(status.orphans.map((o) => o.name).sort()).toEqual([doorName(p.project, port), `${p.project}-web-r1-1`]);

    const moved = await p.reroll(["up", "--remove-orphans", "--output", "plain"]);
    expect(moved.code, moved.stderr).toBe(0);
    expect((await get(port)).body.trim()).toBe("v1");
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.service=web"] }) });
    expect(left).toEqual([]);
    await expect(proxyContainer(p.project, port)).rejects.toThrow();
    expect((await proxyContainer(p.project, port, "site")).State.Running).toBe(true);
  });

  it("hostile clients smuggle nothing through the door and forge nothing it tells a replica: the replica receives exactly what was framed", async () => {
    const p = await project("hostile");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    /** sends raw bytes on one connection and returns what came back once the door closed it (or after 1.5 s) */
    const raw = (bytes: string): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect(port, "127.0.0.1");
        let got = "";
        socket.on("data", (c: Buffer) => (got += c.toString("latin1")));
        socket.on("close", () => resolve(got));
        socket.on("error", () => resolve(got));
        socket.write(bytes);
        setTimeout(() => socket.destroy(), 1_500);
      });
    const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    // (1) the replica answers an upload before reading its body: the body must not become a request
    expect(await raw(`POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`)).toMatch(/^HTTP\/1\.1 401/);
    // (2) Connection naming Content-Length must not unframe the body
    await raw(`POST /conn HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`);
    // (3) a GET with a body keeps its framing
    await raw(`GET /get-body HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`);
    // (4) both lengths: one framing only ever reaches the replica
    await raw(`POST /both HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX`);
    // (5) a head over the limit is refused at the door
    expect(await raw(`GET /huge HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(70_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.[01] (400|431)/);
    // other clients' requests go on, on the same replica
    for (let i = 0; i < 5; i++) expect((await get(port)).status).toBe(200);

    // forwarded headers are the door's, not the client's; the verify header is not honoured for a client
    const forged = await get(port, "/headers", false, { "x-forwarded-proto": "https", "x-forwarded-host": "evil.example", "x-forwarded-for": "1.2.3.4", "x-reroll-verify": "1" });
    const seen = JSON.parse(forged.body) as Record<string, string>;
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen["x-forwarded-host"]).toBe(`127.0.0.1:${port}`);
    expect(seen["x-forwarded-for"]).toMatch(/^1\.2\.3\.4, \d+\.\d+\.\d+\.\d+$/);
    expect(seen["x-reroll-verify"]).toBeUndefined();
    expect(forged.headers["x-reroll-target"]).toBeUndefined();

    const received = JSON.parse((await get(port, "/received")).body) as { method: string; url: string; headers: Record<string, string>; body: string }[];
    expect(received.map((r) => r.url)).not.toContain("/smuggled");
    expect(received.map((r) => r.url)).not.toContain("/huge");
    const byUrl = (url: string) => received.filter((r) => r.url === url);
    expect(byUrl("/early").map((r) => r.method)).toEqual(["POST"]);
    expect(byUrl("/conn")).toHaveLength(1);
    expect(byUrl("/conn")[0]!.body).toBe(smuggled);
    expect(byUrl("/get-body")).toHaveLength(1);
    expect(byUrl("/get-body")[0]!.body).toBe(smuggled);
    for (const r of byUrl("/both")) expect(r.headers["content-length"] !== undefined && r.headers["transfer-encoding"] !== undefined).toBe(false);
  });

  it("hostile clients and a broken replica: a refused upgrade is no tunnel, a slow head gets 408, a client that pipelines and never reads holds no unbounded memory, a malformed status line is a 502 and the door serves on", async () => {
    const p = await project("hostile2");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const open = (): Promise<import("node:net").Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, "127.0.0.1", () => resolve(socket));
        socket.on("error", reject);
      });
    // a refused upgrade: what the client sends next is an HTTP request the door parses, never raw bytes to the replica
    const refused = await open();
    let answer = "";
    refused.on("data", (c: Buffer) => (answer += c.toString("latin1")));
    refused.write("GET /no-upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    await eventually(async () => answer.includes("403 Forbidden"), "the refusal");
    refused.write("GET /after-refused HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => setTimeout(r, 500));
    refused.destroy();

    // a slow head: 408 when the door's request timeout (10 s) ends, and the connection closed
    const slow = await open();
    let slowAnswer = "";
    slow.on("data", (c: Buffer) => (slowAnswer += c.toString("latin1")));
    const slowClosed = new Promise<number>((r) => slow.on("close", () => r(Date.now())));
    const slowStart = Date.now();
    slow.write("GET /slow-head HTTP/1.1\r\nHost: x\r\n");

    // a client that pipelines 20,000 requests and never reads its answers
    const greedy = await open();
    greedy.pause();
    greedy.write("GET /pipelined HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20_000));
    await new Promise((r) => setTimeout(r, 3_000));
    // others are served meanwhile, and a replica answering garbage is a 502 for that request only
    for (let i = 0; i < 5; i++) expect((await get(port)).status).toBe(200);
    expect((await get(port, "/malformed")).status).toBe(502);
    expect((await get(port)).status).toBe(200);
    const door = docker.getContainer(doorName(p.project, port));
    const stats = (await door.stats({ stream: false })) as { memory_stats: { usage: number } };
    expect(stats.memory_stats.usage).toBeLessThan(128 * 1024 * 1024);
    greedy.destroy();

    const closedAt = await slowClosed;
    expect(slowAnswer).toMatch(/^HTTP\/1\.[01] 408/);
    expect(closedAt - slowStart).toBeGreaterThanOrEqual(9_500);
    expect(closedAt - slowStart).toBeLessThan(15_000);

    const received = JSON.parse((await get(port, "/received")).body) as { method: string; url: string; headers: Record<string, string> }[];
    expect(received.filter((r) => r.method === "RAW")).toEqual([]);
    const after = received.filter((r) => r.url === "/after-refused");
    expect(after).toHaveLength(1);
    // parsed and forwarded by the door as a request of its own, with the door's headers
    expect(after[0]!.headers["x-forwarded-proto"]).toBe("http");
    expect(received.map((r) => r.url)).not.toContain("/slow-head");
    // the greedy client got only what fits in the buffers between it and the door (its answers
    // are 64 KiB each): far from all of it
    expect(received.filter((r) => r.url === "/pipelined").length).toBeLessThan(2_000);
  });

  it("an upgrade of reroll (another version of the package runs up) leaves the door as it is: same container, no failed request", async () => {
    const p = await project("upgrade");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const before = (await proxyContainer(p.project, port)).Id;
    // the installed package of a newer reroll: its own bin, dist and version
    const repo = fileURLToPath(new URL("../..", import.meta.url));
    const upgraded = join(root, `${p.project}-reroll-next`);
    await mkdir(upgraded);
    for (const part of ["bin", "dist"]) await cp(join(repo, part), join(upgraded, part), { recursive: true });
    const manifest = JSON.parse(await readFile(join(repo, "package.json"), "utf8")) as { version: string };
    await writeFile(join(upgraded, "package.json"), JSON.stringify({ ...manifest, version: "99.0.0" }));
    await symlink(join(repo, "node_modules"), join(upgraded, "node_modules"));
    const load = await underLoad(port, async () => {
      const run = await new Promise<number>((resolve) => {
        const child = spawnChild(process.execPath, [join(upgraded, "bin", "reroll.js"), "up", "-p", p.project], { cwd: p.dir, stdio: "ignore" });
        child.on("close", (code) => resolve(code ?? -1));
      });
      expect(run).toBe(0);
    });
    expect(load.failures).toEqual([]);
    expect((await proxyContainer(p.project, port)).Id).toBe(before);
  });

  it("a routed replica that fails its health path between rollouts stops getting requests within seconds, and gets them again once it answers", async () => {
    const p = await project("health");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    expect((await targetsAnswering(port, 10)).size).toBe(2);
    const toggled = await get(port, "/health/toggle");
    const sick = String(toggled.headers["x-replica"]);
    const since = Date.now();
    const answers: { at: number; replica: string; status: number }[] = [];
    while (Date.now() - since < 6_000) {
      const res = await get(port);
      answers.push({ at: Date.now() - since, replica: String(res.headers["x-replica"]), status: res.status });
    }
    expect(answers.every((a) => a.status === 200)).toBe(true);
    // out of rotation within a couple of seconds (two failed checks, one a second)
    expect(answers.filter((a) => a.at > 3_500 && a.replica === sick)).toEqual([]);
    const status = JSON.parse((await p.reroll(["proxy", "status", "--output", "json"])).stdout) as { proxies: { targets: { state: string }[] }[] };
    expect(status.proxies[0]!.targets.map((t) => t.state).sort()).toEqual(["down", "ready"]);
    // the sick replica is reached directly (not through the door) to heal it
    expect(await execIn(`${sick}`, ["node", "-e", "require('http').get('http://127.0.0.1:8080/health/toggle', r => process.exit(0))"])).toBe(0);
    await eventually(async () => (await targetsAnswering(port, 10)).has(sick), "the healed replica to be routed again", 10_000);
  });

  it("a replica that comes back at another address is named by status and routed again by proxy up; after a restart of the door a rollout leaves no server behind, and a replica that moves is followed by the door itself", async () => {
    const p = await project("moved");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const network = docker.getNetwork(`${p.project}_default`);
    const [replica] = await docker.listContainers({ filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) });
    // Docker gives a replica it restarts whatever address is free then: here another container
    // takes the replica's address while the replica is off the network
    const move = async (id: string): Promise<void> => {
      await network.disconnect({ Container: id });
      const squatter = await docker.createContainer({ Image: "reroll-local/busybox:latest", Cmd: ["sleep", "600"], Labels: { "dev.reroll.project": p.project }, HostConfig: { NetworkMode: `${p.project}_default` } });
      await squatter.start();
      await network.connect({ Container: id });
    };
    await move(replica!.Id);
    // the door's checks take the old address (now the squatter's) out: no replica is left
    await eventually(async () => (await get(port)).status === 503, "the door to take the old address out", 10_000);
    const status = JSON.parse((await p.reroll(["status", "--output", "json"])).stdout) as { services: { rollout: string }[] };
    expect(status.services[0]!.rollout).toBe(`degraded: ${replica!.Names[0]!.slice(1)} came back at another address after a restart, and its door still routes the old one; reroll proxy up routes it again`);
    expect((await p.reroll(["proxy", "up"])).code).toBe(0);
    expect((await get(port)).body.trim()).toBe("v1");
    const rollout = async (): Promise<string> => (JSON.parse((await p.reroll(["status", "--output", "json"])).stdout) as { services: { rollout: string }[] }).services[0]!.rollout;
    expect(await rollout()).toBe("converged");

    // a restarted door (Docker restarted it, or the daemon) has the replicas from its file, by
    // name, which HAProxy 2.6 cannot remove at run time: a rollout takes them out and the
    // door reloads at its end; no request fails and no server is left behind
    await docker.getContainer(doorName(p.project, port)).restart({ t: 10 });
    await eventually(async () => (await get(port).catch(() => ({ status: 0 }))).status === 200, "the restarted door to answer", 20_000);
    await p.write({ version: "v2", port, replicas: 1 });
    const load = await underLoad(port, async () => {
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(0);
    });
    expect(load.failures).toEqual([]);
    const doors = JSON.parse((await p.reroll(["proxy", "status", "--output", "json"])).stdout) as { proxies: { targets: { name: string; state: string }[] }[] };
    expect(doors.proxies[0]!.targets.map((t) => [t.name, t.state])).toEqual([[`${p.project}-web-r2-1`, "ready"]]);
    expect((await get(port)).body.trim()).toBe("v2");

    // that reload made the new replica one of the file's servers, by name: the door follows it
    // to another address by itself, with nobody running reroll
    const [v2] = await docker.listContainers({ filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.slot"] }) });
    await move(v2!.Id);
    await eventually(async () => (await get(port).catch(() => ({ status: 0, body: "" }))).body.trim() === "v2", "the door to follow the replica to its new address", 15_000);
    expect(await rollout()).toBe("converged");
  });

  it.each([["docker kill", "kill"], ["SIGKILL of its process", "sigkill"]] as const)("the door killed in the middle of a rollout (%s) is back and the rollout completes: every replica on the new revision", async (_how, how) => {
    const p = await project(`door-${how}`);
    const port = await freePort();
    await p.write({ version: "v1", port });
    expect((await p.reroll(["up"])).code).toBe(0);
    await p.write({ version: "v2", port });
    expect((await p.reroll(["build"])).code).toBe(0);
    const load = startLoad(port, 8);
    let killedAt = 0;
    try {
      const run = await p.rerollTimed(["up"], (event) => {
        if (killedAt === 0 && event["type"] === "proxy-route") {
          killedAt = Date.now();
          const door = docker.getContainer(doorName(p.project, port));
          // docker kill: Docker does not restart it (reroll must); SIGKILL of the process: Docker restarts it
          void (how === "kill" ? door.kill() : door.inspect().then((d) => process.kill(d.State.Pid, "SIGKILL")));
        }
      });
      expect(run.code, run.output).toBe(0);
      if (how === "kill") expect(run.events.some((e) => e.event["type"] === "warning" && /started again/.test(String(e.event["message"])))).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await load.stop();
    }
    expect(killedAt).toBeGreaterThan(0);
    // requests were lost only while the door was down
    expect(load.failures.filter((f) => f.at > killedAt + 15_000)).toEqual([]);
    expect(new Set(load.answers.filter((a) => a.at > Date.now() - 200).map((a) => a.body))).toEqual(new Set(["v2"]));
    const status = JSON.parse((await p.reroll(["proxy", "status", "--output", "json"])).stdout) as { proxies: { targets: { name: string; state: string }[] }[] };
    expect(status.proxies[0]!.targets.map((t) => t.state)).toEqual(["ready", "ready", "ready"]);
    expect(status.proxies[0]!.targets.every((t) => /-r2-\d$/.test(t.name))).toBe(true);
  });

  it("a port added to a service does not touch its existing port under load; a port changed to a taken one keeps the old one serving, exit 1", async () => {
    const p = await project("ports");
    const port = await freePort();
    let added = await freePort();
    while (added === port) added = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const first = (await proxyContainer(p.project, port)).Id;
    const compose = join(p.dir, "compose.yaml");
    const text = await readFile(compose, "utf8");
    const load = await underLoad(port, async () => {
      await writeFile(compose, text.replace(`ports: ["127.0.0.1:${port}:8080"]`, `ports: ["127.0.0.1:${port}:8080", "127.0.0.1:${added}:8080"]`));
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(0);
    });
    expect(load.failures).toEqual([]);
    expect((await proxyContainer(p.project, port)).Id).toBe(first);
    expect((await get(added)).body.trim()).toBe("v1");
    // status names every door of the service, each with its replicas
    const status = await p.reroll(["status"]);
    expect(status.stdout).toContain(`proxy ${doorName(p.project, port)}  127.0.0.1:${port}`);
    expect(status.stdout).toContain(`proxy ${doorName(p.project, added)}  127.0.0.1:${added}`);
    expect(status.stdout.match(/→ .* ready {2}\d+ in flight/g)).toHaveLength(4);

    const { createServer } = await import("node:net");
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()));
    const taken = (holder.address() as { port: number }).port;
    try {
      const held = await underLoad(port, async () => {
        await writeFile(compose, text.replace(`ports: ["127.0.0.1:${port}:8080"]`, `ports: ["127.0.0.1:${taken}:8080"]`));
        const run = await p.reroll(["up"]);
        expect(run.code, run.stderr).toBe(1);
        expect(run.stderr).toContain(`127.0.0.1:${taken} is held by a process on this host`);
      });
      expect(held.failures).toEqual([]);
      expect((await proxyContainer(p.project, port)).Id).toBe(first);
      await expect(proxyContainer(p.project, taken)).rejects.toThrow();
    } finally {
      holder.close();
    }
  });

  it("a door image the daemon lacks is an input error before anything changes: exit 2, no container made", async () => {
    const p = await project("no-image");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    await p.proxySetting("image: haproxy:not-on-this-daemon");
    const run = await p.reroll(["up"]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain("The door's image haproxy:not-on-this-daemon is not on this Docker daemon");
    expect(run.stderr).toContain("docker pull haproxy:not-on-this-daemon");
    await expectNothingMade(p.project);
  });

  it("terminates TLS with the user's certificate (HTTP/2 too), redirects its plain port, and takes a new certificate under load without a failed request", async () => {
    const p = await project("tls");
    const https = await freePort();
    let plain = await freePort();
    while (plain === https) plain = await freePort();
    const certs = join(p.dir, "certs");
    await mkdir(certs);
    /** a self-signed certificate and its key in one PEM, as HAProxy's `crt` takes them */
    const selfSigned = (name: string): string => {
      execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", join(certs, `${name}.key`), "-out", join(certs, `${name}.crt`)], { stdio: "ignore" });
      return execFileSync("cat", [join(certs, `${name}.crt`), join(certs, `${name}.key`)], { encoding: "utf8" });
    };
    await writeFile(join(certs, "site.pem"), selfSigned("cert-one"));
    const second = selfSigned("cert-two");
    await p.write({ version: "v1", port: https, replicas: 2 });
    const compose = join(p.dir, "compose.yaml");
    await writeFile(
      compose,
      (await readFile(compose, "utf8"))
        .replace(`ports: ["127.0.0.1:${https}:8080"]`, `ports: ["127.0.0.1:${https}:8080", "127.0.0.1:${plain}:8080"]`)
        .replace("      proxy:\n", `      proxy:\n        tls: { certificate: ./certs/site.pem, redirect_from: [${plain}] }\n`),
    );
    const up = await p.reroll(["up"]);
    expect(up.code, up.stderr).toBe(0);
    const peer = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: "127.0.0.1", port: https, rejectUnauthorized: false, ALPNProtocols: ["h2", "http/1.1"] }, () => {
          resolve(`${socket.getPeerCertificate().subject?.CN} ${socket.alpnProtocol}`);
          socket.end();
        });
        socket.on("error", reject);
      });
    expect(await peer()).toBe("cert-one h2");
    const seen = JSON.parse((await get(https, "/headers", false, {}, true)).body) as Record<string, string>;
    expect(seen["x-forwarded-proto"]).toBe("https");
    const redirected = await get(plain, "/some/path?q=1");
    expect(redirected.status).toBe(301);
    expect(redirected.headers["location"]).toBe(`https://127.0.0.1:${https}/some/path?q=1`);
    // the key is in the door's volume, in no label
    const door = await proxyContainer(p.project, https);
    expect(JSON.stringify(door.Config.Labels)).not.toMatch(/PRIVATE KEY|BEGIN CERT/);
    expect(door.Mounts.map((m) => m.Name)).toEqual([`${doorName(p.project, https)}-certs`]);

    const before = door.Id;
    await writeFile(join(certs, "site.pem"), second);
    const plan = await p.reroll(["up", "--dry-run"]);
    expect(plan.stdout).toContain(`reload  ${doorName(p.project, https)}: its configuration changed (a seamless reload: no request fails)`);
    expect(plan.stdout).not.toContain(`reload  ${doorName(p.project, plain)}`);
    expect(await peer()).toBe("cert-one h2");
    const load = await underLoadOn(https, true, async () => {
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(0);
    });
    expect(load.failures).toEqual([]);
    expect(load.answers.length).toBeGreaterThan(50);
    expect(await peer()).toBe("cert-two h2");
    expect((await proxyContainer(p.project, https)).Id).toBe(before);
  });

  it("refuses a certificate without its key before anything changes: exit 2, naming the file", async () => {
    const p = await project("tls-bad");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    await mkdir(join(p.dir, "certs"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=x", "-keyout", join(p.dir, "certs", "x.key"), "-out", join(p.dir, "certs", "cert-only.pem")], { stdio: "ignore" });
    await p.proxySetting("tls: { certificate: ./certs/cert-only.pem }");
    const run = await p.reroll(["up"]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain("services.web.x-reroll.proxy.tls.certificate");
    expect(run.stderr).toContain("cert-only.pem is not a certificate with its private key");
    await expectNothingMade(p.project);
  });

  it("reroll proxy pause holds new requests (none fails) until resume, or until its bound; a stop-first one-replica service with a volume rolls under load with no failed request", async () => {
    const p = await project("hold");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 1 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const paused = await p.reroll(["proxy", "pause", "--for", "20s", "--output", "plain"]);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stderr).toMatch(/new requests are held at the door for up to 20\.0s/);
    const sent = Date.now();
    const held = Array.from({ length: 6 }, () => get(port).then((r) => ({ ...r, at: Date.now() - sent })));
    await new Promise((r) => setTimeout(r, 1_500));
    // while it holds, status and proxy status say so and how to end it
    for (const args of [["status"], ["proxy", "status"]]) {
      expect((await p.reroll([...args, "--output", "plain"])).stdout).toContain("holding new requests (at most 20 s from when the hold began; reroll proxy resume lets them go)");
    }
    expect((await p.reroll(["proxy", "resume"])).code).toBe(0);
    expect((await p.reroll(["status", "--output", "plain"])).stdout).not.toContain("holding new requests");
    const answers = await Promise.all(held);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(Math.min(...answers.map((a) => a.at))).toBeGreaterThanOrEqual(1_400);
    // a pause that nobody resumes ends by itself
    expect((await p.reroll(["proxy", "pause", "--for", "1s"])).code).toBe(0);
    const t0 = Date.now();
    expect((await get(port)).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);

    // stop-first: the one replica goes before its replacement starts (as a database-like app
    // on a read-write volume must); the door holds what arrives in the gap
    const compose = join(p.dir, "compose.yaml");
    const text = (await readFile(compose, "utf8")).replace("        monitor: 1s\n", "        monitor: 1s\n        order: stop-first\n").replace("    stop_grace_period: 2s\n", "    stop_grace_period: 2s\n    volumes: [\"data:/data\"]\n");
    // start-first on such a service: --dry-run says what that means and how to choose
    await writeFile(compose, `${text.replace("        order: stop-first\n", "")}volumes:\n  data: {}\n`);
    const dry = await p.reroll(["up", "--dry-run", "--output", "plain"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain("web has one replica writing to");
    expect(dry.stderr).toContain("set services.web.deploy.update_config.order: stop-first (its door holds the requests that arrive in the gap, so none fails)");
    await writeFile(compose, `${text}volumes:\n  data: {}\n`);
    expect((await p.reroll(["up"])).code).toBe(0);
    await writeFile(compose, `${text.replace("VERSION: v1", "VERSION: v2")}volumes:\n  data: {}\n`);
    const load = await underLoad(port, async () => {
      const run = await p.reroll(["up", "--output", "plain"]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/new requests are held at the door .*stop-first/);
    });
    expect(load.failures).toEqual([]);
    expect(new Set(load.answers.map((a) => a.body))).toEqual(new Set(["v1", "v2"]));
    expect(load.answers.at(-1)?.body).toBe("v2");
  });
});
