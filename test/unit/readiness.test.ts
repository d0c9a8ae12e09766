import { describe, expect, it } from "vitest";
import type { Engine, EngineEvent } from "../../src/engine/port.js";
import { StartRefused, waitUntilReady } from "../../src/rollout/readiness.js";

/** An engine whose event stream is fed by the test, and whose start takes as long as told. */
function fakeEngine(startMs: number) {
  const queue: EngineEvent[] = [];
  let wake: () => void = () => undefined;
  const engine = {
    events(_filters: unknown, signal: AbortSignal): AsyncIterable<EngineEvent> {
      return {
        async *[Symbol.asyncIterator]() {
          while (!signal.aborted) {
            const next = queue.shift();
            if (next !== undefined) {
              yield next;
              continue;
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
              signal.addEventListener("abort", () => resolve(), { once: true });
            });
          }
        },
      };
    },
    async startContainer() {
      await new Promise((resolve) => setTimeout(resolve, startMs));
    },
    async containerLogs() {
      return [];
    },
  } as unknown as Engine;
  const emit = (id: string, action: string, attributes: Record<string, string> = {}, atMs = Date.now()) => {
    queue.push({ type: "container", action, id, attributes, timeNano: atMs * 1e6 });
    wake();
  };
  return { engine, emit };
}

describe("readiness", () => {
  it("tells an exit that followed a stop request (kill events, one from just before the watch) from an exit of the replica's own", async () => {
    const watch = (events: (emit: ReturnType<typeof fakeEngine>["emit"], since: number) => void) => {
      const { engine, emit } = fakeEngine(0);
      const sinceMs = Date.now();
      // the die ends the watch at once; a long monitor window only keeps a loaded machine (CI
      // once took over 2 s to reach the events) from ending it first, as "ready"
      const failure = waitUntilReady(engine, [{ id: "a", name: "web-r2-1", hasHealthcheck: true, deadlineMs: 30_000, passedAtMs: sinceMs }], { monitorMs: 20_000, sinceMs, now: Date.now });
      events(emit, sinceMs);
      return failure;
    };
    const stopped = await watch((emit, since) => {
      emit("a", "kill", { signal: "15" }, since - 500);
      emit("a", "kill", { signal: "9" });
      emit("a", "die", { exitCode: "137" });
    });
    expect(stopped).toMatchObject({ reason: "exited", exitCode: 137, stopSignals: ["15", "9"] });
    expect(stopped?.message).toBe("web-r2-1 exited with code 137 after Docker was asked to stop it (signal 15, then 9), not by this rollout: a docker stop or kill, or a rollout that stopped half-way");
    // a stop before its last start is history: this exit is its own
    const crashed = await watch((emit, since) => {
      emit("a", "kill", { signal: "15" }, since - 800);
      emit("a", "start", {}, since - 300);
      emit("a", "die", { exitCode: "1" });
    });
    expect(crashed).toMatchObject({ reason: "exited", exitCode: 1, message: "web-r2-1 exited with code 1" });
    expect(crashed).not.toHaveProperty("stopSignals");
  });

  it("counts a replica's deadline from its start, not from a start request the daemon took long to answer", async () => {
    // a loaded daemon answered `start` after 300 ms; the healthcheck allows 200 ms from the start
    const { engine, emit } = fakeEngine(300);
    const sinceMs = Date.now();
    const result = waitUntilReady(engine, [{ id: "a", name: "web-r2-1", hasHealthcheck: true, deadlineMs: 200 }], {
      monitorMs: 50,
      sinceMs,
      now: Date.now,
      start: async () => {
        await engine.startContainer("a");
        setTimeout(() => emit("a", "health_status: healthy"), 100);
      },
    });
    expect(await result).toBeUndefined();
  });

  it("still fails a replica that is not healthy within its deadline after it started", async () => {
    const { engine } = fakeEngine(10);
    const started = Date.now();
    const failure = await waitUntilReady(engine, [{ id: "a", name: "web-r2-1", hasHealthcheck: true, deadlineMs: 200 }], {
      monitorMs: 50,
      sinceMs: started,
      now: Date.now,
      start: () => engine.startContainer("a"),
    });
    expect(failure).toMatchObject({ reason: "timeout", name: "web-r2-1" });
    expect(failure?.message).toBe("web-r2-1 was not healthy within 0.2s (its healthcheck's start period, interval × retries and timeout, plus the monitor window)");
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it("a deadline that --timeout set is named as such, to the tenth of a second", async () => {
    const { engine } = fakeEngine(10);
    const failure = await waitUntilReady(engine, [{ id: "a", name: "web-r2-1", hasHealthcheck: true, deadlineMs: 500, deadlineFromFlag: true }], {
      monitorMs: 50,
      sinceMs: Date.now(),
      now: Date.now,
      start: () => engine.startContainer("a"),
    });
    expect(failure?.message).toBe("web-r2-1 was not healthy within 0.5s (--timeout)");
  });

  it("a replica the daemon would not start fails at once, as refused, in the daemon's words; any other error is thrown", async () => {
    const { engine } = fakeEngine(10);
    const replicas = [
      { id: "a", name: "web-r2-1", hasHealthcheck: true, deadlineMs: 60_000 },
      { id: "b", name: "web-r2-2", hasHealthcheck: true, deadlineMs: 60_000 },
    ];
    const started = Date.now();
    const failure = await waitUntilReady(engine, replicas, {
      monitorMs: 50,
      sinceMs: started,
      now: Date.now,
      start: async () => {
        throw new StartRefused("b", 'Docker could not start web-r2-2: exec: "/bin/no-such-server": no such file or directory');
      },
    });
    expect(failure).toMatchObject({ id: "b", name: "web-r2-2", reason: "refused", message: 'Docker could not start web-r2-2: exec: "/bin/no-such-server": no such file or directory' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(
      waitUntilReady(engine, replicas, {
        monitorMs: 50,
        sinceMs: Date.now(),
        now: Date.now,
        start: async () => {
          throw new Error("connect ENOENT /var/run/docker.sock");
        },
      }),
    ).rejects.toThrow(/ENOENT/);
  });
});
