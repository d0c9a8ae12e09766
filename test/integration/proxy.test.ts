import { cp, readFile, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { runReroll, spawnRerollEvents, type CliRun, type TimedEvent } from "../support/cli.js";
import { createDockerEngine } from "../../src/engine/docker-engine.js";
import { dockerConnectionFromEnv } from "../../src/engine/connection.js";
import { LABEL_PACKAGE_HASH, pruneProxyImages } from "../../src/proxy/image.js";
import { docker, execIn, removeProject, testName } from "../support/docker.js";
import { get, startLoad, type Load } from "../support/load.js";
import { eventually, freePort } from "../support/net.js";
import { tempDir } from "../support/tmp.js";

/**
 * reroll-proxy against the real daemon, with real traffic on 127.0.0.1: rollouts and an
 * automatic rollback under 16 concurrent clients lose no request, in-flight requests and
 * WebSockets survive their replica's drain, the proxy keeps its routes when Docker restarts
 * it, and one service's port changes never touch another's traffic.
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
    reroll: (args) => runReroll([...args, "-p", name], { cwd: dir }),
    rerollTimed: (args, onEvent) => spawnRerollEvents([...args, "-p", name], { cwd: dir, ...(onEvent === undefined ? {} : { onEvent }) }),
  };
}

/** 16 clients on the port from 300 ms before `during` to 300 ms after it. */
async function underLoad(port: number, during: () => Promise<void>): Promise<Load> {
  const load = startLoad(port, 16);
  try {
    await new Promise((r) => setTimeout(r, 300));
    await during();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await load.stop();
  }
  return load;
}

async function proxyContainer(projectName: string, service = "web") {
  return docker.getContainer(`${projectName}-${service}-proxy`).inspect();
}

/** The replicas that answered `count` requests through the proxy on `port`, each of which must be a 200. */
async function targetsAnswering(port: number, count: number): Promise<Set<string>> {
  const answered = new Set<string>();
  for (let i = 0; i < count; i++) {
    const res = await get(port, "/", false, { "x-reroll-verify": "1" });
    expect(res.status).toBe(200);
    answered.add(String(res.headers["x-reroll-target"]));
  }
  return answered;
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
    const proxy = await proxyContainer(p.project);
    expect(proxy.HostConfig.PortBindings?.["10000/tcp"]).toEqual([{ HostIp: "127.0.0.1", HostPort: String(port) }]);
    expect(proxy.Config.User).toBe("node");
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
    const before = await proxyContainer(p.project);
    process.kill(before.State.Pid, "SIGKILL");
    await eventually(async () => {
      const now = await proxyContainer(p.project);
      return now.RestartCount > before.RestartCount && now.State.Running;
    }, "Docker to restart the proxy", 20_000);
    await eventually(async () => (await get(port)).status === 200, "the restarted proxy to answer", 10_000);
    expect((await targetsAnswering(port, 20)).size).toBe(2);
    const status = await p.reroll(["status", "--output", "json"]);
    const web = (JSON.parse(status.stdout) as { services: { proxy: { targets: { state: string }[] } }[] }).services[0]!;
    expect(web.proxy.targets.map((t) => t.state)).toEqual(["ready", "ready"]);
  });

  it("a proxy that keeps exiting is made anew by up, which says what its log said; the replicas keep serving through the new one", async () => {
    const p = await project("crashloop");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const before = await proxyContainer(p.project);
    // damaged in place: its entry point gone from the container's own layer, so that every
    // one of Docker's restarts exits at once (Docker lists it "restarting", or "running" for
    // the moment between two of them: up must recreate it either way)
    expect(await execIn(before.Id, ["rm", "/opt/reroll/bin/reroll.js"], "root")).toBe(0);
    process.kill(before.State.Pid, "SIGKILL");
    await eventually(async () => (await proxyContainer(p.project)).RestartCount >= 2, "Docker to restart the broken proxy twice", 20_000);
    expect((await get(port).catch(() => ({ status: 0 }))).status).not.toBe(200);
    const run = await p.rerollTimed(["up"]);
    expect(run.code, run.output).toBe(0);
    const warning = run.events.find((e) => e.event["type"] === "warning" && /keeps exiting/.test(String(e.event["message"])));
    expect(String(warning?.event["message"])).toMatch(/^\S+-web-proxy is recreated: it keeps exiting \(exit code 1, restarted \d+ times by Docker\); its log said: Error: Cannot find module '\/opt\/reroll\/bin\/reroll.js'/);
    expect(run.events.find((e) => e.event["type"] === "proxy-removed")?.event["cause"]).toBe("kept exiting");
    const after = await proxyContainer(p.project);
    expect(after.Id).not.toBe(before.Id);
    expect(after.RestartCount).toBe(0);
    expect((await targetsAnswering(port, 10)).size).toBe(2);
  });

  it("follows a replica that Docker restarted at another address; the address it left, now another container's, gets no request", async () => {
    const p = await project("moved");
    const port = await freePort();
    await p.write({ version: "v1", port, replicas: 2 });
    expect((await p.reroll(["up"])).code).toBe(0);
    const proxyTargets = async () => {
      const status = await p.reroll(["proxy", "status", "--output", "json"]);
      return (JSON.parse(status.stdout) as { proxies: { targets: { id: string; name: string; state: string; host: string }[] }[] }).proxies[0]!.targets;
    };
    const [moved, kept] = await proxyTargets();
    const replica = docker.getContainer(moved!.id);
    const inspected = await replica.inspect();
    const network = Object.keys(inspected.NetworkSettings.Networks)[0]!;
    const left = inspected.NetworkSettings.Networks[network]!.IPAddress;
    expect(moved!.host).toBe(left);

    const load = startLoad(port, 16);
    let stopped = Infinity;
    try {
      await new Promise((r) => setTimeout(r, 300));
      await replica.stop({ t: 2 });
      stopped = Date.now();
      await eventually(async () => (await proxyTargets()).find((t) => t.id === moved!.id)?.state === "unreachable", "the proxy to see the stopped replica as unreachable", 10_000);
      // Docker gives the lowest free address to the next container: the one the replica left
      const filler = await docker.createContainer({
        Image: inspected.Image,
        Env: ["VERSION=filler"],
        Labels: { "dev.reroll.project": p.project, "dev.reroll.test": "filler" },
        HostConfig: { NetworkMode: network },
      });
      await filler.start();
      expect((await filler.inspect()).NetworkSettings.Networks[network]!.IPAddress).toBe(left);
      await replica.start();
      const now = (await replica.inspect()).NetworkSettings.Networks[network]!.IPAddress;
      expect(now).not.toBe(left);
      await eventually(
        async () => {
          const targets = await proxyTargets();
          return targets.find((t) => t.id === moved!.id)?.host === now && targets.every((t) => t.state === "ready");
        },
        "the proxy to follow the replica to its new address",
        10_000,
      );
      // Docker's DNS has the new address as soon as the container starts, maybe before its
      // app listens: a connect refused there is retried on the other replica and passes the
      // moved one over for FAILED_BACKOFF_MS, so it answers again within about a second.
      const answered = new Set<string>();
      const bodies = new Set<string>();
      await eventually(
        async () => {
          const res = await get(port, "/", false, { "x-reroll-verify": "1" });
          bodies.add(res.body.trim());
          answered.add(String(res.headers["x-reroll-target"]));
          return answered.size === 2;
        },
        "both replicas to answer through the proxy",
        10_000,
        20,
      );
      expect(answered).toEqual(new Set([moved!.name, kept!.name]));
      expect(bodies).toEqual(new Set(["v1"]));
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await load.stop();
    }
    // Requests in flight when a replica is stopped by hand, without a drain, may fail (a
    // drain is what reroll does before it stops one); none may fail once it is down.
    expect(load.failures.filter((f) => f.at >= stopped)).toEqual([]);
    expect(load.answers.filter((a) => a.body !== "v1")).toEqual([]);
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
    const firstProxy = (await proxyContainer(p.project)).Id;
    const load = await underLoad(port, async () => {
      await p.write({ version: "v1", port, replicas: 2 }, { name: "api", version: "a1", port: port2, replicas: 1, mode: "tcp", healthPath: null });
      const run = await p.reroll(["up"]);
      expect(run.code, run.stderr).toBe(0);
    });
    expect(load.failures).toEqual([]);
    expect(load.answers.length).toBeGreaterThan(50);
    expect((await proxyContainer(p.project)).Id).toBe(firstProxy);
    // the second service answers through its own proxy, in plain TCP mode
    expect((await get(port2)).body.trim()).toBe("a1");
    const api = await proxyContainer(p.project, "api");
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

  it("a rebuilt reroll image does not leave the old one behind, unless a container still runs it", async () => {
    const label = testName("img");
    const make = async (tag: string): Promise<string> => {
      const c = await docker.createContainer({ Image: "reroll-local/busybox:latest", Cmd: ["true"], Labels: { "dev.reroll.test": label } });
      try {
        const committed = (await c.commit({ repo: label, tag, changes: [`LABEL ${LABEL_PACKAGE_HASH}=${tag}`, `LABEL dev.reroll.test=${label}`] })) as { Id: string };
        return committed.Id;
      } finally {
        await c.remove({ force: true });
      }
    };
    const current = await make("current");
    const unused = await make("unused");
    const inUse = await make("inuse");
    const user = await docker.createContainer({ Image: inUse, Cmd: ["true"], Labels: { "dev.reroll.test": label } });
    try {
      // narrowed to this test's images: the daemon is shared
      await pruneProxyImages(await createDockerEngine(dockerConnectionFromEnv(process.env)), current, [`dev.reroll.test=${label}`]);
      const left = (await docker.listImages({ filters: JSON.stringify({ reference: [`${label}:*`] }) })).map((i) => i.RepoTags?.[0]);
      expect(left.sort()).toEqual([`${label}:current`, `${label}:inuse`]);
      expect(unused).not.toBe(current);
    } finally {
      await user.remove({ force: true });
      for (const tag of ["current", "unused", "inuse"]) await docker.getImage(`${label}:${tag}`).remove().catch(() => undefined);
    }
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
      await expect(proxyContainer(p.project)).rejects.toThrow();
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
    const before = (await proxyContainer(p.project)).Id;
    const plan = await p.reroll(["up", "--dry-run"]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`  proxy   recreate ${p.project}-web-proxy, publishing 127.0.0.1:${other}: its ports or image changed`);
    expect(plan.stdout).toMatch(/no replica to change: every replica runs the target/);
    // a dry run: the proxy is the same container, on the old port
    expect((await proxyContainer(p.project)).Id).toBe(before);
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
    await expect(proxyContainer(p.project)).rejects.toThrow();
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
    expect(refused.stderr).toContain(`${p.project}-web-r1-1, ${p.project}-web-proxy belong to web, which the Compose file no longer has`);
    expect(refused.stderr).toContain(`${p.project}-web-proxy is the proxy of web, which the Compose file no longer has: reroll up --remove-orphans`);
    expect((await get(port)).body.trim()).toBe("v1");
    const status = JSON.parse((await p.reroll(["status", "--output", "json"])).stdout) as { orphans: { name: string; service: string }[] };
    expect(status.orphans.map((o) => o.name).sort()).toEqual([`${p.project}-web-proxy`, `${p.project}-web-r1-1`]);

    const moved = await p.reroll(["up", "--remove-orphans", "--output", "plain"]);
    expect(moved.code, moved.stderr).toBe(0);
    expect((await get(port)).body.trim()).toBe("v1");
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${p.project}`, "dev.reroll.service=web"] }) });
    expect(left).toEqual([]);
    await expect(proxyContainer(p.project)).rejects.toThrow();
    expect((await proxyContainer(p.project, "site")).State.Running).toBe(true);
  });
});
