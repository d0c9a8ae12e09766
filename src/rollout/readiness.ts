import type { Engine, EngineEvent } from "../engine/port.js";

/**
 * Readiness, noticed from Docker's event stream rather than by polling `inspect`: a new
 * replica is ready when it has been healthy (or, without a healthcheck, running) for the
 * whole monitor window. It fails at once when it exits (with its exit code and last log
 * lines) or turns unhealthy, and when it is not healthy by its deadline. Events are read
 * `since` the moment before the replicas started, so none is missed.
 */

export const FAILURE_LOG_LINES = 20;

/** 0.5s, 2s, 1.5s, 90s: a deadline as it was set, not rounded to a whole second */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))}s`;
}

export interface WatchedReplica {
  readonly id: string;
  readonly name: string;
  readonly hasHealthcheck: boolean;
  /** how long after its start it may take to become healthy */
  readonly deadlineMs: number;
  /** where deadlineMs comes from: `--timeout`, or else the healthcheck's own settings */
  readonly deadlineFromFlag?: boolean;
  /**
   * A replica that runs already and passed its first gate at this moment (epoch ms): only
   * its monitor window is left to hold (a kept replica that restarted recently).
   */
  readonly passedAtMs?: number;
}

/** `refused`: the daemon would not create or start the replica (its configuration, as the daemon says) */
export type ReadinessFailureReason = "exited" | "unhealthy" | "timeout" | "interrupted" | "refused";

/** What `ReadinessOptions.start` throws for a replica the daemon would not start: that replica fails ("refused"). */
export class StartRefused extends Error {
  constructor(
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ReadinessFailure {
  readonly id: string;
  readonly name: string;
  readonly reason: ReadinessFailureReason;
  readonly message: string;
  readonly exitCode?: number;
  readonly logs: readonly string[];
  /**
   * The signals Docker was asked to send it before it exited (its `kill` events since it
   * last started): a `docker stop` or `docker kill` that was not this rollout's, or a stop
   * the rollout that stopped half-way had asked for. Absent for an exit of its own.
   */
  readonly stopSignals?: readonly string[];
}

export interface ReadinessOptions {
  readonly monitorMs: number;
  /** epoch ms just before the replicas were started */
  readonly sinceMs: number;
  /**
   * Starts the replicas once the event subscription is on its way. The daemon replays only
   * its last 256 events to a `since` subscription, and a busy daemon (healthcheck execs of
   * many containers) fills that in seconds: subscribing first leaves no gap.
   */
  readonly start?: () => Promise<void>;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  /** a replica passed a gate: "healthy" (or "running" without a healthcheck), then "ready" */
  readonly onProgress?: (replica: WatchedReplica, state: "running" | "healthy" | "ready") => void;
  /** every replica passed its first gate (healthy, or running without a healthcheck); the monitor windows go on */
  readonly onAllHealthy?: () => void;
  /**
   * A gate that replaces Docker's first one (reroll-proxy's probe of the health path): the
   * replica passes when it resolves, fails ("unhealthy") when it rejects. Docker can still
   * veto: an exit or an `unhealthy` report fails the replica as before.
   */
  readonly gate?: (replica: WatchedReplica) => Promise<void>;
}

type Next = IteratorResult<EngineEvent> | "timer" | "aborted";

export async function waitUntilReady(engine: Engine, replicas: readonly WatchedReplica[], options: ReadinessOptions): Promise<ReadinessFailure | undefined> {
  if (replicas.length === 0) return undefined;
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const byId = new Map(replicas.map((r) => [r.id, r]));
  const readySince = new Map<string, number>();
  const ready = new Set<string>();
  /** when the deadlines start: the start's answer (a loaded daemon took 2-22 s to give it in bench runs), not the request */
  let startedAt = options.sinceMs;
  let allHealthyTold = false;
  const passedGate = (replica: WatchedReplica, state: "running" | "healthy", at = options.now()): void => {
    readySince.set(replica.id, at);
    options.onProgress?.(replica, state);
    if (!allHealthyTold && readySince.size === replicas.length) {
      allHealthyTold = true;
      options.onAllHealthy?.();
    }
  };

  const fail = async (replica: WatchedReplica, reason: ReadinessFailureReason, message: string, exitCode?: number, stopSignals?: readonly string[]): Promise<ReadinessFailure> => {
    const logs = await engine.containerLogs(replica.id, FAILURE_LOG_LINES).catch(() => []);
    return { id: replica.id, name: replica.name, reason, message, logs, ...(exitCode === undefined ? {} : { exitCode }), ...(stopSignals === undefined ? {} : { stopSignals }) };
  };
  /** the signals Docker was asked to send each replica since it last started (its `kill` events) */
  const signalled = new Map<string, string[]>();

  const stream = engine.events(
    { type: ["container"], container: replicas.map((r) => r.id), event: ["start", "die", "kill", "health_status"] },
    stop.signal,
    options.sinceMs - 1000,
  );
  const iterator = stream[Symbol.asyncIterator]();
  let pendingEvent: Promise<IteratorResult<EngineEvent>> | undefined = iterator.next();
  pendingEvent.catch(() => undefined);
  const aborted = new Promise<"aborted">((resolve) => stop.signal.addEventListener("abort", () => resolve("aborted"), { once: true }));
  /** gate outcomes not yet applied, and a wake-up for the loop when one arrives */
  const gated: { replica: WatchedReplica; error?: unknown }[] = [];
  let wakeGate: () => void = () => undefined;
  let gateArrived = new Promise<"gate">((resolve) => (wakeGate = () => resolve("gate")));
  try {
    if (options.start !== undefined) {
      try {
        await options.start();
      } catch (error) {
        if (!(error instanceof StartRefused) || !byId.has(error.id)) throw error;
        return await fail(byId.get(error.id)!, "refused", error.message);
      }
      startedAt = options.now();
    }
    for (const r of replicas) if (r.passedAtMs !== undefined) passedGate(r, r.hasHealthcheck ? "healthy" : "running", r.passedAtMs);
    if (options.gate !== undefined) {
      for (const r of replicas.filter((x) => x.passedAtMs === undefined)) {
        options.gate(r).then(
          () => {
            gated.push({ replica: r });
            wakeGate();
          },
          (error: unknown) => {
            gated.push({ replica: r, error: error ?? new Error("the gate failed") });
            wakeGate();
          },
        );
      }
    }
    for (;;) {
      for (const g of gated.splice(0)) {
        if (readySince.has(g.replica.id) || ready.has(g.replica.id)) continue;
        if (g.error !== undefined) {
          if (stop.signal.aborted) continue;
          return await fail(g.replica, "unhealthy", `${g.replica.name} did not pass the proxy's health check: ${g.error instanceof Error ? g.error.message : String(g.error)}`);
        }
        passedGate(g.replica, "healthy");
      }
      const now = options.now();
      // settle what the clock decides: monitor windows that ended, deadlines that passed
      for (const r of replicas) {
        if (ready.has(r.id)) continue;
        const since = readySince.get(r.id);
        if (since !== undefined && now - since >= options.monitorMs) {
          ready.add(r.id);
          options.onProgress?.(r, "ready");
        } else if (since === undefined && now - startedAt >= r.deadlineMs) {
          return await fail(
            r,
            "timeout",
            `${r.name} was not ${r.hasHealthcheck ? "healthy" : "running"} within ${seconds(r.deadlineMs)} (${
              r.deadlineFromFlag === true ? "--timeout" : "its healthcheck's start period, interval × retries and timeout, plus the monitor window"
            })`,
          );
        }
      }
      if (ready.size === replicas.length) return undefined;
      if (options.signal?.aborted === true) {
        const r = replicas.find((x) => !ready.has(x.id))!;
        return { id: r.id, name: r.name, reason: "interrupted", message: "interrupted before it was ready", logs: [] };
      }

      let wake = Infinity;
      for (const r of replicas) {
        if (ready.has(r.id)) continue;
        const since = readySince.get(r.id);
        wake = Math.min(wake, since !== undefined ? since + options.monitorMs : startedAt + r.deadlineMs);
      }
      pendingEvent ??= iterator.next();
      let timer: NodeJS.Timeout | undefined;
      const next: Next | "gate" = await Promise.race([
        pendingEvent,
        gateArrived,
        new Promise<"timer">((resolve) => (timer = setTimeout(() => resolve("timer"), Math.max(0, wake - now) + 5))),
        aborted,
      ]);
      clearTimeout(timer);
      if (next === "gate") {
        gateArrived = new Promise<"gate">((resolve) => (wakeGate = () => resolve("gate")));
        continue;
      }
      if (next === "timer" || next === "aborted") continue;
      pendingEvent = undefined;
      if (next.done === true) throw new Error("the Docker event stream ended unexpectedly");
      const event = next.value;
      // A stop asked for just before the watch began (within the replay's second) is still
      // about this run of the replica: only a start after it makes it history.
      if (event.action === "kill") signalled.set(event.id, [...(signalled.get(event.id) ?? []), event.attributes["signal"] ?? "?"]);
      if (event.action === "start") signalled.delete(event.id);
      // The subscription starts a little early (clock granularity); what happened before the
      // start (an old replica's own graceful stop, before a rollback starts it again) is not
      // about this start.
      if (event.timeNano > 0 && event.timeNano / 1e6 < options.sinceMs) continue;
      const replica = byId.get(event.id);
      if (replica === undefined || ready.has(replica.id)) continue;
      if (event.action === "die") {
        const exitCode = Number(event.attributes["exitCode"] ?? NaN);
        const code = Number.isNaN(exitCode) ? undefined : exitCode;
        const signals = signalled.get(replica.id);
        const exited = `${replica.name} exited with code ${code ?? "?"}`;
        return signals === undefined
          ? await fail(replica, "exited", exited, code)
          : await fail(replica, "exited", `${exited} after Docker was asked to stop it (signal ${signals.join(", then ")}), not by this rollout: a docker stop or kill, or a rollout that stopped half-way`, code, signals);
      }
      if (event.action === "health_status: unhealthy") {
        return await fail(replica, "unhealthy", `${replica.name} became unhealthy`);
      }
      if (options.gate !== undefined) continue; // the gate decides when it passes
      if (event.action === "health_status: healthy" && replica.hasHealthcheck && !readySince.has(replica.id)) passedGate(replica, "healthy");
      if (event.action === "start" && !replica.hasHealthcheck && !readySince.has(replica.id)) passedGate(replica, "running");
    }
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    stop.abort();
    await iterator.return?.(undefined).catch(() => undefined);
  }
}
