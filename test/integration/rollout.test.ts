import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { REROLL_BIN, runReroll, spawnRerollEvents } from "../support/cli.js";
import { docker, execIn, removeProject } from "../support/docker.js";
import { eventually } from "../support/net.js";
import { killReroll, rolloutFixture, type Fixture } from "../support/rollout-fixture.js";
import { tempDir } from "../support/tmp.js";

/** Rollouts against the real daemon: what a user sees in `docker ps` and in exit codes. */
describe("reroll up / rollback", async () => {
  const root = await tempDir();
  const fixtures: Fixture[] = [];
  const fixture = async (label: string, options: Parameters<typeof rolloutFixture>[2] = {}) => {
    const f = await rolloutFixture(root, label, options);
    fixtures.push(f);
    return f;
  };
  // each test's containers go when it ends: their healthchecks, left running until the end
  // of the file, slowed the later tests on two cores enough to time one out in CI
  afterEach(async () => {
    for (const f of fixtures.splice(0)) await removeProject(f.project);
  });

  const eventsOf = (stdout: string): Record<string, unknown>[] =>
    stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  /** the project's lock container, when one is held */
  const lockOf = (f: Fixture) => docker.listContainers({ all: true, filters: JSON.stringify({ name: [`${f.project}-reroll-lock`] }) });
  /** starts `reroll up` and returns it (wrapped, so awaiting this does not wait for it) once it holds the project lock */
  const upHoldingTheLock = async (f: Fixture): Promise<{ run: ReturnType<Fixture["reroll"]> }> => {
    const run = f.reroll(["up", "--output", "plain"]);
    await eventually(async () => (await lockOf(f)).length > 0, "the rollout to hold the lock", 30_000);
    return { run };
  };
  const runningOn = async (f: Fixture) => {
    const all = await f.containers();
    return {
      all,
      ready: all.filter((c) => c.state === "running" && c.health === "healthy"),
      revisions: [...new Set(all.map((c) => c.revision))].sort(),
    };
  };

  /** the log the fixture's replicas keep in the project's `data` volume, read by a container of its own */
  const volumeLog = async (f: Fixture): Promise<string> => {
    const reader = await docker.createContainer({ Image: "reroll-local/busybox:latest", Cmd: ["cat", "/data/log"], HostConfig: { Binds: [`${f.project}_data:/data`] }, Labels: { "dev.reroll.project": f.project } });
    try {
      await reader.start();
      await reader.wait();
      return (await reader.logs({ stdout: true })).toString("utf8");
    } finally {
      await reader.remove({ force: true });
    }
  };

  it("rolls 3 replicas v1 → v2: all end on v2, never fewer than replicas − parallelism ready, old ones gone", async () => {
    const f = await fixture("roll", { monitor: "3s" });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    expect((await runningOn(f)).ready).toHaveLength(3);

    await f.setVersion("v2");
    // the daemon's own record of when each replica was created and first healthy
    const daemonEvents: { name: string; status: string }[] = [];
    const stream = (await docker.getEvents({ filters: JSON.stringify({ type: ["container"], event: ["create", "health_status"], label: [`dev.reroll.project=${f.project}`] }) })) as Readable;
    stream.on("data", (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) {
        const e = JSON.parse(line) as { status: string; Actor: { Attributes: { name: string } } };
        daemonEvents.push({ name: e.Actor.Attributes.name, status: e.status });
      }
    });
    let lowest = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ready = (await runningOn(f)).ready.length;
        lowest = Math.min(lowest, ready);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const run = await f.reroll(["up", "--output", "json"]).finally(() => stream.destroy());
    sampling = false;
    await sampler;
    expect(run.code, run.stderr).toBe(0);
    // a lane creates its next replica while the one before waits for its health check, so
    // only the start is left between one slot being healthy and the next one starting
    const daemonAt = (name: RegExp, status: string): number => daemonEvents.findIndex((e) => name.test(e.name) && e.status === status);
    expect(daemonAt(/-r2-2$/, "create"), "slot 2's replica was created before slot 1's was healthy").toBeGreaterThan(-1);
    expect(daemonAt(/-r2-2$/, "create")).toBeLessThan(daemonAt(/-r2-1$/, "health_status: healthy"));
    expect(daemonAt(/-r2-3$/, "create")).toBeLessThan(daemonAt(/-r2-2$/, "health_status: healthy"));
    // Swarm's pipelining: batch 2 starts while batch 1's monitor window is still open, and
    // batch 2's old replica stops only after batch 1 was ready.
    const events = eventsOf(run.stdout);
    const at = (predicate: (e: Record<string, unknown>) => boolean): number => events.findIndex(predicate);
    const firstNew = events.find((e) => e["type"] === "replica-start")!["name"];
    const secondStart = at((e) => e["type"] === "replica-start" && e["slot"] === 2);
    const firstReady = at((e) => e["type"] === "replica-state" && e["name"] === firstNew && e["state"] === "ready");
    const secondOldStop = at((e) => e["type"] === "replica-stop" && /-r1-2$/.test(String(e["name"])));
    expect(secondStart).toBeGreaterThan(-1);
    expect(secondStart, "batch 2 started inside batch 1's monitor window").toBeLessThan(firstReady);
    expect(secondOldStop, "slot 2's old replica stopped after batch 1 was ready").toBeGreaterThan(firstReady);
    // the fixture's httpd runs as PID 1 and ignores SIGTERM: each old replica was killed when its grace period ran out, and the run says so
    const killed = events.find((e) => e["type"] === "warning" && /did not exit within web's stop_grace_period \(1s\) of its stop signal, so Docker killed them/.test(String(e["message"])));
    expect(killed, "a warning names the replicas Docker had to kill").toBeDefined();
    for (const slot of [1, 2, 3]) expect(String(killed!["message"])).toMatch(new RegExp(`-web-r1-${slot}\\b`));
    const after = await runningOn(f);
    expect(after.all).toHaveLength(3);
    expect(after.ready).toHaveLength(3);
    expect(after.revisions).toEqual([2]);
    expect(lowest, "ready replicas never dropped below replicas − parallelism").toBeGreaterThanOrEqual(2);
    const status = await f.reroll(["status", "--output", "json"]);
    expect(JSON.parse(status.stdout)).toMatchObject({ services: [{ service: "web", current: 2, ready: 3, rollout: "converged" }] });

    // a replica stopped by hand is a degraded service, not an interrupted rollout; up replaces it
    const stopped = after.all.find((c) => c.name.endsWith("-r2-2"))!;
    await docker.getContainer(stopped.id).stop({ t: 1 });
    const degraded = JSON.parse((await f.reroll(["status", "--output", "json"])).stdout) as { services: { rollout: string; ready: number }[] };
    expect(degraded.services[0]).toMatchObject({ ready: 2, rollout: `degraded: ${stopped.name} exited; reroll up replaces it` });
    const dry = await f.reroll(["up", "--no-build", "--dry-run"]);
    expect(dry.stdout).toContain(`remove  ${stopped.name}: not running: ${stopped.name} (r2, exited)`);
    expect((await f.reroll(["up", "--no-build"])).code).toBe(0);
    expect((await runningOn(f)).ready).toHaveLength(3);
    expect(JSON.parse((await f.reroll(["status", "--output", "json"])).stdout)).toMatchObject({ services: [{ ready: 3, rollout: "converged" }] });
  });

  it.each([
    ["exit-at-start", /exited with code 3/, /fatal: DATABASE_URL is not set/],
    ["never-healthy", /became unhealthy|was not healthy within/, /./],
    ["die-in-monitor", /exited with code 4/, /crashed after start/],
  ] as const)("a v2 that %s: exit 1, 3 ready replicas on v1, no v2 left", async (behaviour, message, logLine) => {
    const f = await fixture(behaviour, { monitor: behaviour === "die-in-monitor" ? "5s" : "1s" });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2", behaviour);
    const run = await f.reroll(["up", "--output", "plain", ...(behaviour === "never-healthy" ? ["--timeout", "4s"] : [])]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/E_ROLLOUT_FAILED/);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(logLine);
    const after = await runningOn(f);
    expect(after.revisions).toEqual([1]);
    expect(after.ready).toHaveLength(3);
    expect(after.all).toHaveLength(3);
    const history = JSON.parse((await f.reroll(["history", "web", "--output", "json"])).stdout) as { revisions: { revision: number; outcomes: { outcome: string }[]; current: boolean }[] };
    expect(history.revisions.find((r) => r.revision === 2)?.outcomes.at(-1)?.outcome).toBe("rolled-back");
    expect(history.revisions.find((r) => r.revision === 1)?.current).toBe(true);
    // --no-build would roll the newest build, the one just rolled back: it says so, even in a dry run
    const again = await f.reroll(["up", "--no-build", "--dry-run"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/warning: web: r2, web's newest build, was rolled back the last time \(.+\); rolling it again/);
  });

  it("up --dry-run builds nothing: a service never built is planned as 'builds it first', and a built one says which build the plan rolls", async () => {
    const f = await fixture("dry-first", { replicas: 2 });
    await f.setVersion("v1");
    const first = await f.reroll(["up", "--dry-run"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain("web: not built yet: reroll up builds it first (a dry run does not build), then starts 2 replicas of its first revision");
    expect(await docker.listImages({ filters: JSON.stringify({ label: [`dev.reroll.project=${f.project}`] }) })).toEqual([]);
    expect(await f.containers()).toEqual([]);
    // --no-build has nothing to roll: that stays an error
    const noBuild = await f.reroll(["up", "--no-build", "--dry-run"]);
    expect(noBuild.code).toBe(2);
    expect(noBuild.stderr).toMatch(/E_NO_BUILD/);

    expect((await f.reroll(["up"])).code).toBe(0);
    const planned = await f.reroll(["up", "--dry-run"]);
    expect(planned.stdout).toContain("  build   not run in a dry run: this plans r1, the newest build; reroll up builds first");
    expect(planned.stdout).toContain("nothing to do: every replica runs the target");
  });

  it("a --timeout too short for the replica: exit 1 naming --timeout and the time it gave, with a hint to give it longer", async () => {
    const f = await fixture("short-timeout", { replicas: 1 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    const run = await f.reroll(["up", "--timeout", "300ms", "--output", "plain"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/was not healthy within 0\.3s \(--timeout\)/);
    expect(run.stderr).toMatch(/hint: Fix the cause.*, then run reroll up again\. If the replica only needs longer to start, give it that: the healthcheck's start_period, or --timeout DURATION\./);
    expect((await runningOn(f)).revisions).toEqual([1]);
  });

  /** v1 running on 3 replicas; v2 built so that its first replica serves and every later one dies in its monitor window */
  const onV1ThenPartlyBrokenV2 = async (label: string, options: Parameters<typeof rolloutFixture>[2]): Promise<Fixture> => {
    const f = await fixture(label, { volume: true, monitor: "5s", ...options });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2", "first-replica-only");
    return f;
  };

  it("parallelism 2 runs two lanes: a slow replica holds up only its own lane, and never more than 2 slots are below ready", async () => {
    const f = await fixture("lanes", { volume: true, replicas: 4, parallelism: 2, startPeriod: "15s" });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2", "slow-first");
    let lowest = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        lowest = Math.min(lowest, (await runningOn(f)).ready.length);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const run = await f.reroll(["up", "--output", "json"]);
    sampling = false;
    await sampler;
    expect(run.code, run.stderr).toBe(0);
    const events = eventsOf(run.stdout);
    const at = (predicate: (e: Record<string, unknown>) => boolean): number => events.findIndex(predicate);
    const started = (slot: number) => at((e) => e["type"] === "replica-start" && e["slot"] === slot);
    const healthy = (slot: number) => at((e) => e["type"] === "replica-state" && new RegExp(`-r2-${slot}$`).test(String(e["name"])) && e["state"] === "healthy");
    // slots 1 and 2 start together; the one that got the slow start answers 8 s later (4 s
    // was not always enough for the fast lane to start slot 4 on a loaded machine)
    const slowHealthy = Math.max(healthy(1), healthy(2));
    expect(started(3), "slot 3 started before both of slots 1 and 2 were healthy").toBeLessThan(slowHealthy);
    expect(started(4), "slot 4 too: the fast lane went on alone").toBeLessThan(slowHealthy);
    const after = await runningOn(f);
    expect(after.ready).toHaveLength(4);
    expect(after.revisions).toEqual([2]);
    expect(lowest, "ready replicas never dropped below replicas − parallelism").toBeGreaterThanOrEqual(2);
  });

  it("parallelism 2: a replica failing in one lane rolls every lane back, the other lane's slots included", async () => {
    // restart "no": a replica that fails stays exited, where the default policy restarts it
    const f = await onV1ThenPartlyBrokenV2("lanes-back", { replicas: 4, parallelism: 2, monitor: "3s", extra: '    restart: "no"' });
    const before = (await f.containers()).map((c) => c.id).sort();
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/exited with code 5/);
    const after = await runningOn(f);
    expect(after.all.map((c) => c.id).sort()).toEqual(before);
    expect(after.ready).toHaveLength(4);
    expect(after.revisions).toEqual([1]);
    // the first failure halts every lane at once: no lane stops another old replica or starts
    // another new one while the failed slot is brought back
    const afterFailure = run.stderr.slice(run.stderr.search(/: FAILED: /));
    expect(afterFailure, run.stderr).not.toMatch(/: stopping \(replaced by /);
    expect(afterFailure, run.stderr).not.toMatch(/: starting r2 /);
    // the v2 replica that had passed its gates was stopped with its signal and grace period, not killed
    expect(run.stderr).toMatch(/-r2-\d: stopping \(rolled back\)/);
    expect((await volumeLog(f)).match(/v2 stopped gracefully/g)).toHaveLength(1);
    // those that failed had exited: they are removed, never reported as stopping
    const failed = [...run.stderr.matchAll(/ (\S+-r2-\d): FAILED: .*exited with code 5/g)].map((m) => m[1]!);
    expect(failed.length, run.stderr).toBeGreaterThan(0);
    for (const name of failed) {
      expect(run.stderr).toContain(`${name}: removed (rolled back)`);
      expect(run.stderr).not.toContain(`${name}: stopping`);
    }
  });

  it("a configuration-only change that fails is rolled back with the old replicas under their own names again", async () => {
    const f = await fixture("rename-back", { replicas: 2 });
    await f.setVersion("v1");
    expect((await f.reroll(["up", "--output", "plain"])).code).toBe(0);
    const before = (await f.containers()).map((c) => ({ id: c.id, name: c.name })).sort((a, b) => a.name.localeCompare(b.name));
    // same image, same revision, a new health check that never passes: replacements take the
    // old replicas' names (they step aside as <name>-replaced-<id>) and then fail
    const compose = join(f.dir, "compose.yaml");
    await writeFile(compose, (await readFile(compose, "utf8")).replace("http://127.0.0.1/health", "http://127.0.0.1/nothere"));
    const run = await f.reroll(["up", "--no-build", "--output", "plain"]);
    expect(run.code).toBe(1);
    // the replacement took its predecessor's name, which stepped aside for it, and the output
    // names each by the name it has at that moment
    expect(run.stderr).toMatch(/(\S+-web-r1-1): starting r1 \(replaces \1-replaced-[0-9a-f]{8}\)/);
    // and once the replacement is gone, the old one says it has its own name back
    expect(run.stderr).toMatch(/(\S+-web-r1-1): back under its own name \(was \1-replaced-[0-9a-f]{8}\)/);
    const after = await f.containers();
    expect(after.map((c) => ({ id: c.id, name: c.name })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(before);
    expect(after.every((c) => c.state === "running" && c.revision === 1)).toBe(true);
  });

  it("failure_action pause: stops where it is, exit 1, every slot ready on one revision or the other", async () => {
    const f = await onV1ThenPartlyBrokenV2("pause", { failureAction: "pause" });
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/E_ROLLOUT_PAUSED/);
    expect(run.stderr).toMatch(/exited with code 5/);
    const after = await runningOn(f);
    expect(after.all.map((c) => c.revision).sort()).toEqual([1, 1, 2]);
    expect(after.ready).toHaveLength(3);
    // the hint's "or reroll rollback": back to what last completed, r1 (not "nothing earlier than r1")
    expect(run.stderr).toMatch(/run reroll up again, or reroll rollback/);
    const back = await f.reroll(["rollback", "--output", "plain"]);
    expect(back.code, back.stderr).toBe(0);
    const rolled = await runningOn(f);
    expect(rolled.revisions).toEqual([1]);
    expect(rolled.ready).toHaveLength(3);
    const history = JSON.parse((await f.reroll(["history", "web", "--output", "json"])).stdout) as { revisions: { revision: number; outcomes: { outcome: string; detail?: string }[]; current: boolean }[] };
    expect(history.revisions.find((r) => r.revision === 1)).toMatchObject({ current: true });
    expect(history.revisions.find((r) => r.revision === 1)!.outcomes.at(-1)).toMatchObject({ outcome: "completed", detail: "reroll rollback from r2" });
  });

  it("failure_action continue: the failed slots keep the old revision, the rest roll, exit 0 with a warning", async () => {
    const f = await onV1ThenPartlyBrokenV2("continue", { failureAction: "continue" });
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/2 replicas failed and kept the previous revision \(slot 2, 3\)/);
    const after = await runningOn(f);
    expect(after.all.map((c) => c.revision).sort()).toEqual([1, 1, 2]);
    expect(after.ready).toHaveLength(3);
  });

  it("max_failure_ratio: one failure in three is tolerated, the second rolls everything back", async () => {
    const f = await onV1ThenPartlyBrokenV2("ratio", { maxFailureRatio: 0.34 });
    const run = await f.reroll(["up", "--output", "json"]);
    expect(run.code).toBe(1);
    const failed = eventsOf(run.stdout).filter((e) => e["type"] === "replica-failed").map((e) => e["name"]);
    expect(failed).toHaveLength(2);
    const after = await runningOn(f);
    expect(after.revisions).toEqual([1]);
    expect(after.ready).toHaveLength(3);
    expect(after.all).toHaveLength(3);
  });

  it("rollback goes to the last completed revision with the same gates; data in a named volume survives both ways", async () => {
    const f = await fixture("volume", { replicas: 2, volume: true });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    expect((await f.reroll(["up"])).code).toBe(0);
    const back = await f.reroll(["rollback", "--output", "plain"]);
    expect(back.code, back.stderr).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([1]);
    const volume = `${f.project}_data`;
    const reader = await docker.createContainer({ Image: "reroll-local/busybox:latest", Cmd: ["cat", "/data/log"], HostConfig: { Binds: [`${volume}:/data`] }, Labels: { "dev.reroll.project": f.project } });
    await reader.start();
    await reader.wait();
    const log = (await reader.logs({ stdout: true })).toString("utf8");
    await reader.remove({ force: true });
    // v1 wrote first, v2's replicas read the same volume and appended, and v1 is back on it
    expect(log.indexOf("v1 started")).toBeLessThan(log.indexOf("v2 started"));
    expect(log.lastIndexOf("v1 started")).toBeGreaterThan(log.indexOf("v2 started"));
  });

  it("a configuration change is a step of its own: one that fails comes back to the same revision as it was, and rollback undoes one that completed", async () => {
    // one replica: what is checked is each replica's environment, and CI's time is counted
    const f = await fixture("config-undo", { replicas: 1, extra: "    environment: { MODE: a }" });
    const compose = join(f.dir, "compose.yaml");
    const withMode = async (mode: string) => writeFile(compose, (await readFile(compose, "utf8")).replace(/MODE: \S+ \}/, `MODE: ${mode} }`));
    /** the revisions running, and the MODE each replica was created with, as docker inspect shows them */
    const modes = async () => {
      const all = await f.containers();
      const env = await Promise.all(all.map(async (c) => (await docker.getContainer(c.id).inspect()).Config.Env.find((e) => e.startsWith("MODE="))));
      return { revisions: [...new Set(all.map((c) => c.revision))].sort(), modes: [...new Set(env)].sort(), ready: all.filter((c) => c.health === "healthy").length };
    };
    await f.setVersion("v1", "mode");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2", "mode");
    expect((await f.reroll(["up"])).code).toBe(0);
    expect(await modes()).toEqual({ revisions: [2], modes: ["MODE=a"], ready: 1 });

    // a new environment on the same image that fails: back to r2 as it ran, not to r1
    await withMode("broken");
    const broken = await f.reroll(["up", "--output", "plain"]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/MODE=broken is not a mode/);
    expect(await modes()).toEqual({ revisions: [2], modes: ["MODE=a"], ready: 1 });

    // one that completes, then rollback: the same image with the environment it had
    await withMode("b");
    expect((await f.reroll(["up"])).code).toBe(0);
    expect(await modes()).toEqual({ revisions: [2], modes: ["MODE=b"], ready: 1 });
    expect(JSON.parse((await f.reroll(["status", "--output", "json"])).stdout)).toMatchObject({ services: [{ service: "web", rollout: "converged", fileDiffers: false }] });
    const undo = await f.reroll(["rollback", "--output", "plain"]);
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.stderr).toMatch(/rolling to r2 from r2: 1 replica of r2 with another image or configuration/);
    expect(await modes()).toEqual({ revisions: [2], modes: ["MODE=a"], ready: 1 });
    const history = JSON.parse((await f.reroll(["history", "web", "--output", "json"])).stdout) as { revisions: { revision: number; outcomes: { detail?: string }[] }[] };
    expect(history.revisions.find((r) => r.revision === 2)!.outcomes.at(-1)).toMatchObject({ detail: "reroll rollback of r2's configuration" });
    // the file still says b, and status says so: up puts it back, as it would put back a newer build
    expect(JSON.parse((await f.reroll(["status", "--output", "json"])).stdout)).toMatchObject({ services: [{ service: "web", current: 2, ready: 1, rollout: "converged", fileDiffers: true }] });
    expect((await f.reroll(["status", "--output", "plain"])).stdout).toMatch(/the Compose file configures it otherwise than it runs .*reroll up applies the file/);

    // the next rollback steps back to r1, with the environment r1 ran with
    await withMode("c");
    const dry = await f.reroll(["rollback", "--dry-run", "--output", "plain"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/-web-r1-1/);
    expect((await f.reroll(["rollback"])).code).toBe(0);
    expect(await modes()).toEqual({ revisions: [1], modes: ["MODE=a"], ready: 1 });
    expect((await f.reroll(["up"])).code).toBe(0);
    expect(await modes()).toEqual({ revisions: [2], modes: ["MODE=c"], ready: 1 });
  });

  it("a command the daemon cannot start: exit 1 in the daemon's words, the previous revision serves, nothing of the new one is left", async () => {
    const f = await fixture("no-command", { replicas: 2 });
    const compose = join(f.dir, "compose.yaml");
    const good = await readFile(compose, "utf8");
    const bad = good.replace("    build: ./web\n", '    build: ./web\n    command: ["/bin/no-such-server", "--port", "80"]\n');
    // a first deploy: there is no previous revision to speak of
    await writeFile(compose, bad);
    await f.setVersion("v1");
    const first = await f.reroll(["up", "--output", "plain"]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/Nothing of web ran before it, and nothing of r1 is left\. \[E_ROLLOUT_FAILED\]/);
    expect(await f.containers()).toEqual([]);
    await writeFile(compose, good);
    expect((await f.reroll(["up"])).code).toBe(0);
    await writeFile(compose, bad);
    await f.setVersion("v2");
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/\S+-web-r2-1: FAILED: Docker could not start \S+-web-r2-1: .*\/bin\/no-such-server.*no such file or directory/);
    expect(run.stderr).toMatch(/web's rollout to r2 failed and was rolled back: Docker could not start .* The previous revision is running\. \[E_ROLLOUT_FAILED\]/);
    const after = await runningOn(f);
    expect(after.revisions).toEqual([1]);
    expect(after.ready).toHaveLength(2);
    expect(after.all).toHaveLength(2);
  });

  it("bind mounts: a missing host directory is made, as Compose makes it; one that must exist (create_host_path: false) fails the rollout, which rolls back naming the path", async () => {
    const f = await fixture("bind", { replicas: 2, extra: "    volumes: ['./hostdata:/data']" });
    await f.setVersion("v1");
    const first = await f.reroll(["up", "--output", "plain"]);
    expect(first.code, first.stderr).toBe(0);
    // the replicas wrote into the directory the daemon made for them
    expect(await readFile(join(f.dir, "hostdata", "log"), "utf8")).toMatch(/^v1 started\nv1 started\n$/);
    const compose = join(f.dir, "compose.yaml");
    const file = await readFile(compose, "utf8");
    await writeFile(
      compose,
      file.replace("    volumes: ['./hostdata:/data']", "    volumes:\n      - ./hostdata:/data\n      - { type: bind, source: ./must-exist, target: /config, bind: { create_host_path: false } }"),
    );
    await f.setVersion("v2");
    const refused = await f.reroll(["up", "--output", "plain"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/FAILED: Docker refused to create \S+-web-r2-1: invalid mount config for type "bind": bind source path does not exist: \S+\/must-exist/);
    expect(refused.stderr).toMatch(/web's rollout to r2 failed and was rolled back: Docker refused to create .* The previous revision is running\. \[E_ROLLOUT_FAILED\]/);
    const after = await runningOn(f);
    expect(after.revisions).toEqual([1]);
    expect(after.ready).toHaveLength(2);
    expect(after.all).toHaveLength(2);
    await expect(readFile(join(f.dir, "must-exist"))).rejects.toThrow(/ENOENT/);
    // made by hand, as the file asks: the same up rolls
    await mkdir(join(f.dir, "must-exist"));
    const again = await f.reroll(["up", "--output", "plain"]);
    expect(again.code, again.stderr).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([2]);
  });

  it("a second rollout while one holds the lock exits 4 naming the holder; --lock-wait waits for it", async () => {
    const f = await fixture("lock", { replicas: 1 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    const { run: first } = await upHoldingTheLock(f);
    const second = await f.reroll(["up", "--no-build", "--output", "plain"]);
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(/E_LOCKED/);
    expect(second.stderr).toMatch(/held by reroll up \(pid \d+/);
    const waited = f.reroll(["up", "--no-build", "--lock-wait", "60s", "--output", "plain"]);
    expect((await first).code).toBe(0);
    expect((await waited).code).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([2]);
  });

  it("down and proxy down while a rollout holds the lock: exit 4 naming it, or with --lock-wait they wait and then act", async () => {
    const f = await fixture("down-lock", { replicas: 1 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    const { run: first } = await upHoldingTheLock(f);
    for (const command of [["down"], ["proxy", "down"]]) {
      const refused = await f.reroll(command);
      expect(refused.code, command.join(" ")).toBe(4);
      expect(refused.stderr).toMatch(/held by reroll up \(pid \d+/);
      expect(refused.stderr).toMatch(/--lock-wait DURATION/);
    }
    // the hint is one these commands take
    const proxyWaited = f.reroll(["proxy", "down", "--lock-wait", "60s", "--output", "plain"]);
    const downWaited = f.reroll(["down", "--lock-wait", "60s"]);
    expect((await first).code).toBe(0);
    const proxy = await proxyWaited;
    expect(proxy.code, proxy.stderr).toBe(0);
    expect(proxy.stderr).toMatch(/waiting for \S+-reroll-lock, held by reroll up/);
    const down = await downWaited;
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toMatch(/waiting for \S+-reroll-lock, held by reroll up/);
    // it took down what the rollout it waited for left: v2's replica
    expect(down.stdout).toMatch(/removed .*-web-r2-1/);
    expect(await f.containers()).toEqual([]);
    expect(await lockOf(f)).toEqual([]);
  });

  it("two rollbacks in a row step back two revisions, never forward to the one the first left", async () => {
    const f = await fixture("undo", { replicas: 1 });
    for (const v of ["v1", "v2", "v3"]) {
      await f.setVersion(v);
      expect((await f.reroll(["up"])).code).toBe(0);
    }
    const first = await f.reroll(["rollback", "--output", "plain"]);
    expect(first.code, first.stderr).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([2]);
    const second = await f.reroll(["rollback", "--output", "plain"]);
    expect(second.code, second.stderr).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([1]);
    // nothing before r1: refused, naming the revisions --to can still roll out
    const third = await f.reroll(["rollback", "--output", "plain"]);
    expect(third.code).toBe(2);
    expect(third.stderr).toMatch(/E_NO_PREVIOUS/);
    expect(third.stderr).toMatch(/Earlier rollbacks left r2, r3; to roll one out again, pass --to REVISION/);
    expect((await runningOn(f)).revisions).toEqual([1]);
    const history = JSON.parse((await f.reroll(["history", "web", "--output", "json"])).stdout) as { revisions: { revision: number; outcomes: { outcome: string; detail?: string }[]; current: boolean }[] };
    const r1 = history.revisions.find((r) => r.revision === 1)!;
    expect(r1.current).toBe(true);
    expect(r1.outcomes.at(-1)).toMatchObject({ outcome: "completed", detail: "reroll rollback from r2" });
    expect(history.revisions.find((r) => r.revision === 2)!.outcomes.at(-1)).toMatchObject({ outcome: "completed", detail: "reroll rollback from r3" });
    // the same for a person: a header naming each column, the current revision marked
    const table = (await f.reroll(["history", "web", "--output", "plain"])).stdout.split("\n");
    expect(table[0]).toMatch(/^ +REV +IMAGE +BUILT +OUTCOME +AT +BASE IMAGES$/);
    const stampRe = "\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ";
    expect(table.find((l) => /^\* +r1 /.test(l))).toMatch(new RegExp(`^\\* +r1 +[0-9a-f]{12} +${stampRe} +completed +${stampRe} +.+ +— reroll rollback from r2$`));
    expect(table.filter((l) => l.startsWith("*"))).toHaveLength(1);
    // --to still goes anywhere, and a rollback from there steps back to where it came from
    expect((await f.reroll(["rollback", "--to", "3"])).code).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([3]);
    expect((await f.reroll(["rollback"])).code).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([1]);
  });

  it("rollback with nothing to go back to exits 2 and leaves no lock; one that waited for the lock goes back from what its holder completed", async () => {
    const f = await fixture("rollback-lock", { replicas: 1 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    const nothing = await f.reroll(["rollback", "--output", "plain"]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/E_NO_PREVIOUS/);
    expect(await lockOf(f)).toEqual([]);
    expect((await runningOn(f)).revisions).toEqual([1]);

    // read before the lock was free, the ledger had r1 alone: the rollback must read it again
    await f.setVersion("v2");
    const { run: first } = await upHoldingTheLock(f);
    const back = f.reroll(["rollback", "--lock-wait", "60s", "--output", "plain"]);
    expect((await first).code).toBe(0);
    const done = await back;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/waiting for \S+-reroll-lock, held by reroll up/);
    expect((await runningOn(f)).revisions).toEqual([1]);
  });

  it("SIGKILL half-way from r2 to r3, then reroll rollback: back to r2, the last completed, not two steps to r1", async () => {
    const f = await fixture("kill-back", { replicas: 2 });
    for (const v of ["v1", "v2"]) {
      await f.setVersion(v);
      expect((await f.reroll(["up"])).code).toBe(0);
    }
    await f.setVersion("v3");
    // killed as it asks the daemon to stop r2's first replica, which then runs out its grace period
    const { killed } = await killReroll(f, ["up"], (e) => e["type"] === "replica-stop");
    expect(killed).toBe(true);
    expect((await runningOn(f)).revisions).toEqual([2, 3]);
    // The kill races the stop request it was sending: the test sends that request (the
    // service's 1 s grace) as the rollback starts, so the replica is always stopping.
    const stopping = (await f.containers()).find((c) => c.name.endsWith("-web-r2-1"))!;
    const stopped = docker.getContainer(stopping.id).stop({ t: 1 }).catch(() => undefined);
    const back = await f.reroll(["rollback", "--output", "plain"]);
    await stopped;
    expect(back.code, back.stderr).toBe(0);
    expect(back.stderr).toMatch(/rolling to r2 from r3, r2/);
    // The r2 replica the killed run was stopping is not kept as it looks (running): it is
    // watched, and replaced once it exits. Kept, it left 1 of 2 ready below.
    expect(back.stderr).toMatch(/kept, watched until ready \(the rollout that stopped half-way may have been stopping it\)/);
    // told as the stop it was (its grace period ran out: a kill), not as a failure of its own
    expect(back.stderr).toMatch(/-web-r2-1: removed \(stopped while watched \(signal (\d+, then )*9, exit code 137\), not by this rollout; its slot gets a new replica\)/);
    expect(back.stderr).not.toMatch(/FAILED/);
    const after = await runningOn(f);
    expect(after.revisions).toEqual([2]);
    expect(after.ready).toHaveLength(2);
    expect(after.all).toHaveLength(2);
    // and the next one steps back from there
    expect((await f.reroll(["rollback"])).code).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([1]);
  });

  it("a new replica removed by hand after it proved ready: the rollout completes and says it is one short, status says degraded", async () => {
    const f = await fixture("lost", { replicas: 2 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    let removed: Promise<void> | undefined;
    const run = await spawnRerollEvents(["up", "-p", f.project], {
      cwd: f.dir,
      onEvent: (e) => {
        if (removed === undefined && e["type"] === "replica-state" && e["state"] === "ready" && String(e["name"]).endsWith("-web-r2-1")) {
          removed = docker.getContainer(String(e["name"])).remove({ force: true });
        }
      },
    });
    await removed;
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/web completed on r2, but \S+-web-r2-1 removed since it proved ready, outside the rollout: 1 of 2 replicas serve; reroll up replaces it/);
    expect(JSON.parse((await f.reroll(["status", "--output", "json"])).stdout)).toMatchObject({ services: [{ ready: 1, rollout: "degraded: 1 of 2 replicas ready" }] });
  });

  it.each([
    ["the first new replica was created", (e: Record<string, unknown>) => e["type"] === "replica-start"],
    ["a new replica turned healthy", (e: Record<string, unknown>) => e["type"] === "replica-state" && e["state"] === "healthy"],
    ["an old replica was being stopped", (e: Record<string, unknown>) => e["type"] === "replica-stop"],
    ["the last batch was done, old replicas not yet removed", (e: Record<string, unknown>) => e["type"] === "rollout-done"],
  ])("SIGKILL when %s, then reroll up again: converged, no orphans", async (_point, when) => {
    const f = await fixture("kill", { replicas: 2 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    const { killed } = await killReroll(f, ["up"], when);
    expect(killed).toBe(true);
    // the lock it left says which rollout stopped halfway, not that one is still going
    const left = JSON.parse((await f.reroll(["status", "--output", "json"])).stdout) as { lock?: string; staleLock?: string; services: { rollout: string }[] };
    expect(left.lock).toBeUndefined();
    expect(left.staleLock).toMatch(/^reroll up \(pid \d+ on /);
    expect(left.services[0]!.rollout).toMatch(/^interrupted: its rollout's process is gone/);
    const again = await f.reroll(["up", "--no-build", "--output", "plain"]);
    expect(again.code, again.stderr).toBe(0);
    const after = await runningOn(f);
    expect(after.all.map((c) => c.state)).toEqual(["running", "running"]);
    expect(after.revisions).toEqual([2]);
    expect(after.ready).toHaveLength(2);
    expect(await lockOf(f)).toEqual([]);
  });

  it("SIGKILL during an automatic rollback, then reroll up again: every replica on one revision and ready", async () => {
    const f = await fixture("kill-rollback", { replicas: 2, volume: true, monitor: "5s" });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    // v2: slot 1 is replaced and ready, slot 2 dies in its monitor window, so slot 1 is being
    // rolled back when the kill lands
    await f.setVersion("v2", "first-replica-only");
    const { killed } = await killReroll(f, ["up"], (e) => e["type"] === "rollback-start" && (e["to"] as unknown[]).length > 0);
    expect(killed).toBe(true);
    const again = await f.reroll(["up", "--no-build", "--output", "plain"]);
    expect([0, 1]).toContain(again.code);
    const after = await runningOn(f);
    expect(after.all).toHaveLength(2);
    expect(after.revisions).toHaveLength(1);
    expect(after.ready).toHaveLength(2);
    // three rollouts with 5 s monitor windows (v1, the killed v2, the rerun): 42 s in a quiet CI run
  }, 120_000);

  it("a kept replica in a crash loop under its restart policy is watched, fails, and its slot gets a new replica", async () => {
    const f = await fixture("crash-loop", { replicas: 2, monitor: "8s" });
    await f.setVersion("v1", "crash-loop-when-marked");
    expect((await f.reroll(["up"])).code).toBe(0);
    const [first, second] = (await f.containers()).sort((a, b) => a.name.localeCompare(b.name));
    expect(await execIn(second!.id, ["touch", "/crash"])).toBe(0);
    // Docker restarted it once and it runs again, between two crashes: what `docker ps` shows as "Up"
    await eventually(
      async () => {
        const state = (await docker.getContainer(second!.id).inspect()) as { RestartCount: number; State: { Running: boolean; Restarting: boolean; StartedAt: string } };
        return state.RestartCount >= 1 && state.State.Running && !state.State.Restarting && Date.now() - Date.parse(state.State.StartedAt) < 1_000;
      },
      "the marked replica to be restarted by its restart policy",
      30_000,
    );
    const run = await f.reroll(["up", "--no-build", "--output", "json"]);
    expect(run.code, run.stderr).toBe(0);
    const events = eventsOf(run.stdout);
    expect(events.find((e) => e["type"] === "replica-watch")?.["name"]).toBe(second!.name);
    expect(events.some((e) => e["type"] === "replica-failed" && e["name"] === second!.name)).toBe(true);
    const after = await runningOn(f);
    const ids = after.all.map((c) => c.id);
    expect(ids).toContain(first!.id);
    expect(ids).not.toContain(second!.id);
    expect(after.ready).toHaveLength(2);
    expect(after.revisions).toEqual([1]);
  });

  it("an unhealthy replica of the current revision keeps running until its replacement is ready, then goes", async () => {
    const f = await fixture("unhealthy", { replicas: 2 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    const [first, second] = (await f.containers()).sort((a, b) => a.name.localeCompare(b.name));
    expect(await execIn(second!.id, ["rm", "/www/health"])).toBe(0);
    await eventually(async () => (await f.containers()).find((c) => c.id === second!.id)?.health === "unhealthy", "the replica to turn unhealthy", 30_000);

    const run = await f.reroll(["up", "--no-build", "--output", "json"]);
    expect(run.code, run.stderr).toBe(0);
    const events = eventsOf(run.stdout);
    expect(events.find((e) => e["type"] === "rollout-start")).toMatchObject({ revision: 1, from: [1], reason: "1 replica of r1 unhealthy" });
    const at = (predicate: (e: Record<string, unknown>) => boolean): number => events.findIndex(predicate);
    // its replacement takes its name, and it steps aside: the events name it so from then on
    const aside = `${second!.name}-replaced-${second!.id.slice(0, 8)}`;
    const started = at((e) => e["type"] === "replica-start" && e["name"] === second!.name && JSON.stringify(e["replaces"]) === JSON.stringify([aside]));
    const healthy = at((e) => e["type"] === "replica-state" && e["name"] === second!.name && e["state"] === "healthy");
    const stopped = at((e) => e["type"] === "replica-stop" && e["name"] === aside);
    expect(at((e) => e["type"] === "replica-stop" && e["name"] === second!.name), "the replacement itself was not stopped").toBe(-1);
    expect(started, JSON.stringify(events)).toBeGreaterThan(-1);
    expect(healthy).toBeGreaterThan(started);
    expect(stopped, "the unhealthy replica stopped only once its replacement was healthy").toBeGreaterThan(healthy);
    expect(events.some((e) => e["type"] === "replica-remove" && at((x) => x === e) < healthy), "nothing was removed before the replacement was healthy").toBe(false);

    const after = await runningOn(f);
    expect(after.all.map((c) => c.name).sort()).toEqual([first!.name, second!.name]);
    expect(after.all.map((c) => c.id)).toContain(first!.id);
    expect(after.all.map((c) => c.id)).not.toContain(second!.id);
    expect(after.ready).toHaveLength(2);
    expect(after.revisions).toEqual([1]);
  });

  it("a rollout that replaces unhealthy replicas and fails keeps the healthy twin it made, not the sick one it replaced", async () => {
    const f = await fixture("unhealthy-fail", { replicas: 3, volume: true });
    await f.setVersion("v1", "refuse-when-marked");
    expect((await f.reroll(["up"])).code).toBe(0);
    const [one, two, three] = (await f.containers()).sort((a, b) => a.name.localeCompare(b.name));
    for (const c of [one!, two!]) expect(await execIn(c.id, ["rm", "/www/health"])).toBe(0);
    await eventually(async () => (await f.containers()).filter((c) => c.health === "unhealthy").length === 2, "two replicas to turn unhealthy", 30_000);
    // slot 1's replacement starts and serves; slot 2's refuses to start
    expect(await execIn(three!.id, ["sh", "-c", "touch /data/once /data/refuse"])).toBe(0);

    const run = await f.reroll(["up", "--no-build", "--output", "plain"]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/rolling to r1 from r1: 2 replicas of r1 unhealthy/);
    expect(run.stderr).toMatch(/exited with code 7/);
    const after = await f.containers();
    const ids = after.map((c) => c.id);
    // slot 1: its healthy replacement stays (putting the sick one back would fail its gates again)
    expect(ids).not.toContain(one!.id);
    expect(after.find((c) => c.name === one!.name)).toMatchObject({ state: "running", health: "healthy", revision: 1 });
    // slot 2: its replacement never became ready, so the replica it was to replace still runs, untouched
    expect(ids).toContain(two!.id);
    expect(ids).toContain(three!.id);
    expect(after).toHaveLength(3);
    expect(after.map((c) => c.name).sort()).toEqual([one!.name, two!.name, three!.name].sort());
  });

  it("Ctrl-C: starts nothing new, takes the batch in flight back, exits 130; the next up finishes", async () => {
    const f = await fixture("sigint", { replicas: 2 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    const compose = join(f.dir, "compose.yaml");
    const original = await readFile(compose, "utf8");
    await writeFile(compose, original.replace("monitor: 1s", "monitor: 20s"));
    const child = spawn(process.execPath, [REROLL_BIN, "up", "-p", f.project, "--output", "json"], { cwd: f.dir, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    await eventually(async () => /"state":"healthy"/.test(out), "the first new replica to be healthy (inside its 20s monitor window)", 60_000);
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(130);
    const after = await runningOn(f);
    expect(after.all.map((c) => c.revision)).toEqual([1, 1]);
    expect(after.ready).toHaveLength(2);
    const status = JSON.parse((await f.reroll(["status", "--output", "json"])).stdout) as { services: { rollout: string }[] };
    expect(status.services[0]!.rollout).toBe("converged");
    await writeFile(compose, original);
    expect((await f.reroll(["up", "--no-build"])).code).toBe(0);
    expect((await runningOn(f)).revisions).toEqual([2]);
  });

  it("--bump to an image that is nowhere is an input error (exit 2) that leaves the Dockerfile byte-identical and the containers as they were", async () => {
    const f = await fixture("bump", { replicas: 1 });
    await f.setVersion("v1");
    const dockerfile = join(f.dir, "web", "Dockerfile");
    await writeFile(dockerfile, (await readFile(dockerfile, "utf8")).replace("reroll-local/busybox:latest", "reroll-local/busybox:latest"));
    expect((await f.reroll(["up"])).code).toBe(0);
    const before = await readFile(dockerfile);
    const run = await f.reroll(["up", "--bump", "reroll-local/busybox:0.0-does-not-exist", "--output", "plain"]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/reroll-local\/busybox:0\.0-does-not-exist is not on the Docker daemon and could not be pulled\. .* The Dockerfile edit was reverted\. \[E_IMAGE_NOT_FOUND\]/);
    expect((await readFile(dockerfile)).equals(before)).toBe(true);
    expect((await runningOn(f)).revisions).toEqual([1]);
  });

  it("--dry-run prints the plan and changes nothing", async () => {
    const f = await fixture("dry", { replicas: 2 });
    await f.setVersion("v1");
    expect((await f.reroll(["up"])).code).toBe(0);
    await f.setVersion("v2");
    expect((await f.reroll(["build"])).code).toBe(0);
    const before = await f.containers();
    const run = await f.reroll(["up", "--dry-run", "--no-build"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/batch 1\/2\n {4}start {3}\S+-web-r2-1 and wait until ready: replaces \S+-web-r1-1: r1 → r2/);
    expect((await f.containers()).map((c) => c.id).sort()).toEqual(before.map((c) => c.id).sort());
  });

  it("refuses a service that would lose data (an anonymous volume): exit 2, nothing started", async () => {
    const f = await fixture("anon", { replicas: 1, extra: "    volumes: ['/var/cache/app']" });
    await f.setVersion("v1");
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/E_DATA_LOSS/);
    expect(run.stderr).toMatch(/anonymous volume/);
    expect(await f.containers()).toEqual([]);
  });

  it("a rollout that changed the configuration and failed leaves the old replicas with their old configuration: exit 1, not 3", async () => {
    const f = await fixture("config-back", { replicas: 2, extra: '    environment: { MODE: "${MODE:-ok}" }' });
    // every version of this app refuses MODE=broken; the old image under the new configuration too
    const script = 'if [ "$MODE" = broken ]; then echo "bad MODE" >&2; exit 3; fi; exec httpd -f -p 80 -h /www';
    await f.setVersion("v1");
    await writeFile(join(f.dir, "web", "start.sh"), `${script}\n`);
    expect((await f.reroll(["up"], { MODE: "ok" })).code).toBe(0);
    const before = (await f.containers()).map((c) => c.id).sort();
    await f.setVersion("v2");
    await writeFile(join(f.dir, "web", "start.sh"), `VERSION=v2\n${script}\n`);
    const run = await f.reroll(["up", "--output", "plain"], { MODE: "broken" });
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toMatch(/E_ROLLOUT_FAILED/);
    // the replicas the rollback started again are the previous state; none was replaced to fit MODE=broken
    const after = await runningOn(f);
    expect(after.all.map((c) => c.id).sort()).toEqual(before);
    expect(after.ready).toHaveLength(2);
  });

  it("logging, extra_hosts, init and cap_drop reach the replicas; changing one rolls them, and a replica resolves the extra host", async () => {
    const extra = [
      "    logging: { driver: json-file, options: { max-size: 1m, max-file: \"2\" } }",
      '    extra_hosts: ["reroll-extra.test:127.0.0.7", "reroll-v6.test=::1"]',
      "    init: true",
      "    cap_drop: [NET_RAW]",
    ].join("\n");
    const f = await fixture("host-config", { replicas: 1, extra });
    await f.setVersion("v1");
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code, run.stderr).toBe(0);
    const [replica] = await f.containers();
    const info = await docker.getContainer(replica!.id).inspect();
    expect(info.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "1m", "max-file": "2" } });
    expect(info.HostConfig.ExtraHosts).toEqual(["reroll-extra.test:127.0.0.7", "reroll-v6.test:::1"]);
    expect(info.HostConfig.Init).toBe(true);
    expect(info.HostConfig.CapDrop).toEqual(["NET_RAW"]);
    expect(await execIn(replica!.id, ["sh", "-c", "grep -E '^127\\.0\\.0\\.7[[:space:]]+reroll-extra\\.test' /etc/hosts"])).toBe(0);
    expect(await execIn(replica!.id, ["sh", "-c", "grep -E '^127\\.0\\.0\\.8[[:space:]]+reroll-extra\\.test' /etc/hosts"])).not.toBe(0);
    // a configuration change of these alone replaces the replica
    const compose = join(f.dir, "compose.yaml");
    await writeFile(compose, (await readFile(compose, "utf8")).replace("max-size: 1m", "max-size: 2m"));
    const again = await f.reroll(["up", "--output", "plain"]);
    expect(again.code, again.stderr).toBe(0);
    const [next] = await f.containers();
    expect(next!.id).not.toBe(replica!.id);
    // same revision, same name: the old replica stepped aside, and the output says which one
    // stopped and went, not "r1-1: stopping (replaced by r1-1)"
    const aside = `${next!.name}-replaced-${replica!.id.slice(0, 8)}`;
    expect(again.stderr).toContain(`${next!.name}: starting r1 (replaces ${aside})`);
    expect(again.stderr).toContain(`${aside}: stopping (replaced by ${next!.name})`);
    expect(again.stderr).toMatch(new RegExp(`${aside}: removed \\(`));
    expect(again.stderr).not.toContain(`${next!.name}: stopping`);
    expect((await docker.getContainer(next!.id).inspect()).HostConfig.LogConfig?.Config).toEqual({ "max-size": "2m", "max-file": "2" });
  });

  it("healthcheck disable: true turns the image's HEALTHCHECK off in the replicas too, and says so", async () => {
    const f = await fixture("no-health", { replicas: 1 });
    await f.setVersion("v1");
    // an image whose own check always fails
    const dockerfile = join(f.dir, "web", "Dockerfile");
    await writeFile(dockerfile, `${await readFile(dockerfile, "utf8")}HEALTHCHECK --interval=1s --retries=1 CMD false\n`);
    const compose = join(f.dir, "compose.yaml");
    await writeFile(compose, (await readFile(compose, "utf8")).replace(/ {4}healthcheck:\n( {6}.*\n)+/, "    healthcheck: { disable: true }\n"));
    const run = await f.reroll(["up", "--output", "plain"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/web has no healthcheck/);
    const [replica] = await f.containers();
    const info = await docker.getContainer(replica!.id).inspect();
    expect(info.Config.Healthcheck?.Test).toEqual(["NONE"]);
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await docker.getContainer(replica!.id).inspect()).State.Health).toBeUndefined();
  });

  it("an external volume is mounted by its own name, and one that is missing is refused before anything changes", async () => {
    const f = await fixture("external", { replicas: 1, volume: true });
    await f.setVersion("v1");
    const volume = `${f.project}-ext`;
    const compose = join(f.dir, "compose.yaml");
    await writeFile(compose, (await readFile(compose, "utf8")).replace("  data: {}", `  data: { external: true, name: ${volume} }`));
    const missing = await f.reroll(["up", "--output", "plain"]);
    expect(missing.code, missing.stderr).toBe(2);
    expect(missing.stderr).toContain(`The external volume ${volume} does not exist; nothing was changed.`);
    expect(await f.containers()).toEqual([]);
    expect((await docker.listVolumes({ filters: JSON.stringify({ name: [f.project] }) })).Volumes ?? []).toEqual([]);

    // the volume made outside reroll, with data in it: the replica mounts that one
    await docker.createVolume({ Name: volume, Labels: { "dev.reroll.project": f.project } });
    const writer = await docker.createContainer({ Image: "reroll-local/busybox:latest", Cmd: ["sh", "-c", "echo kept > /data/marker"], HostConfig: { Binds: [`${volume}:/data`] }, Labels: { "dev.reroll.project": f.project } });
    await writer.start();
    await writer.wait();
    await writer.remove();
    const up = await f.reroll(["up", "--output", "plain"]);
    expect(up.code, up.stderr).toBe(0);
    const [replica] = await f.containers();
    expect(await execIn(replica!.id, ["grep", "-q", "kept", "/data/marker"])).toBe(0);
    expect((await docker.listVolumes({ filters: JSON.stringify({ name: [`${f.project}_data`] }) })).Volumes ?? []).toEqual([]);
  });

  it("scaling down stops the surplus replica gracefully (its stop signal and grace period), the others untouched", async () => {
    const f = await fixture("scale-down", { replicas: 3, volume: true });
    await f.setVersion("v1", "graceful");
    expect((await f.reroll(["up"])).code).toBe(0);
    const before = await runningOn(f);
    const compose = join(f.dir, "compose.yaml");
    await writeFile(compose, (await readFile(compose, "utf8")).replace("replicas: 3", "replicas: 2"));
    const run = await f.reroll(["up", "--no-build", "--output", "plain"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/-r1-3: stopping \(surplus replica/);
    // it exits on SIGTERM: no word of a kill
    expect(run.stderr).not.toMatch(/did not exit within/);
    const after = await runningOn(f);
    expect(after.all.map((c) => c.name).sort()).toEqual(before.all.map((c) => c.name).filter((n) => !n.endsWith("-r1-3")).sort());
    expect(after.all.map((c) => c.id).sort()).toEqual(before.all.filter((c) => !c.name.endsWith("-r1-3")).map((c) => c.id).sort());
    // the surplus one wrote its last line on SIGTERM: it was not killed outright
    expect((await volumeLog(f)).match(/v1 stopped gracefully/g)).toHaveLength(1);
  });

  it("down stops the replicas gracefully, removes them and the network, and named volumes only with --volumes", async () => {
    const f = await fixture("down", { replicas: 2, volume: true });
    await f.setVersion("v1", "graceful");
    expect((await f.reroll(["up"])).code).toBe(0);
    // from a directory without the Compose file: -p names the project, labels find the rest
    const elsewhere = await tempDir();
    const badName = await runReroll(["down", "-p", "Not A Project"], { cwd: elsewhere });
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/"Not A Project" is not a valid project name/);
    // --volumes with some services would take a volume another service mounts: refused, nothing removed
    const partial = await runReroll(["down", "web", "--volumes", "-p", f.project], { cwd: elsewhere });
    expect(partial.code).toBe(2);
    expect(partial.stderr).toMatch(/--volumes removes the project's named volumes/);
    expect(await f.containers()).toHaveLength(2);
    const down = await runReroll(["down", "-p", f.project], { cwd: elsewhere });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/removed .*-web-r1-1/);
    expect(await f.containers()).toEqual([]);
    // each replica got its stop signal and its grace period, not a SIGKILL
    expect((await volumeLog(f)).match(/v1 stopped gracefully/g)).toHaveLength(2);
    expect((await docker.listNetworks({ filters: JSON.stringify({ name: [`${f.project}_default`] }) })).length).toBe(0);
    expect((await docker.listVolumes({ filters: JSON.stringify({ name: [`${f.project}_data`] }) })).Volumes?.length).toBe(1);
    expect((await f.reroll(["down", "--volumes"])).code).toBe(0);
    expect((await docker.listVolumes({ filters: JSON.stringify({ name: [`${f.project}_data`] }) })).Volumes ?? []).toEqual([]);
  });
});
