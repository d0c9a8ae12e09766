import { Readable } from "node:stream";
import { RerollError, isRerollError } from "../core/errors.js";
import type { ContainerDetails, Engine, ExecSession } from "../engine/port.js";
import type { ControlReply, ControlRequest, StatusReply, TargetAddress } from "./protocol.js";

/** The bridge in reroll's image that connects an exec's stdin/stdout to the control socket. */
export const CTL_COMMAND = ["node", "/opt/reroll/dist/proxy/ctl.js"] as const;

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** One try of `open` in flight: its session once the daemon gave one, and whether `open` gave up on it. */
interface Pending {
  cancelled: boolean;
  session?: ExecSession;
}

/**
 * The CLI's side of a proxy's control socket, reached by one exec into the proxy container
 * (the Docker API is the only door). Requests are pipelined: a drain in progress does not
 * hold up a route.
 */
export class ProxyControl {
  readonly #session: ExecSession;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #next = 1;
  #ended: Error | undefined;

  private constructor(session: ExecSession, readonly container: string) {
    this.#session = session;
  }

  /**
   * Opens a session; retries while the proxy is still starting (no socket yet) or between two
   * of Docker's restarts, up to `timeoutMs`. A proxy that keeps exiting (restarted twice more
   * while reroll waits) or has stopped fails at once, with its state and its last log lines.
   */
  static async open(engine: Engine, container: string, timeoutMs = 15_000): Promise<ProxyControl> {
    const deadline = Date.now() + timeoutMs;
    let lastError = "";
    let restartsBefore: number | undefined;
    for (;;) {
      const pending: Pending = { cancelled: false };
      const attempt = ProxyControl.#attempt(engine, container, pending);
      // An exec into a container that dies as it starts can leave its stream open with no
      // answer (seen once in a test of a proxy that keeps exiting: 45 s and more), so a try
      // gets the time left, and one that answers after it is closed.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), undefined)));
      const result = await Promise.race([attempt, late]).finally(() => clearTimeout(timer));
      if (result === undefined) {
        pending.cancelled = true;
        pending.session?.close();
        attempt.then((r) => ("control" in r ? r.control.close() : undefined)).catch(() => undefined);
        lastError = lastError === "" ? "the control session did not answer" : lastError;
      } else if ("control" in result) {
        return result.control;
      } else {
        lastError = result.error;
      }
      const details = await engine.inspectContainer(container);
      restartsBefore ??= details?.restartCount ?? 0;
      const stopped = details === undefined || (!details.running && details.state !== "restarting");
      const crashing = details !== undefined && details.restartCount - restartsBefore >= 2;
      if (stopped || crashing || Date.now() > deadline) throw await unreachable(engine, container, details, lastError);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** One try: a connected session, or why there is none yet (the container not running, the socket not there). */
  static async #attempt(engine: Engine, container: string, pending: Pending): Promise<{ control: ProxyControl } | { error: string }> {
    let session: ExecSession;
    try {
      session = await engine.exec(container, CTL_COMMAND);
    } catch (error) {
      if (!isRerollError(error) || error.code !== "E_NOT_RUNNING") throw error;
      return { error: error.message };
    }
    pending.session = session;
    if (pending.cancelled) {
      session.close();
      return { error: "the control session did not answer" };
    }
    const control = new ProxyControl(session, container);
    if (await control.#listen()) return { control };
    session.close();
    return { error: control.#ended?.message ?? "" };
  }

  /** Reads replies; resolves true once the bridge reports the socket connected, false if it ends first. */
  #listen(): Promise<boolean> {
    return new Promise<boolean>((resolveConnected) => {
      let connected = false;
      const onLine = (line: string): void => {
        let reply: ControlReply;
        try {
          reply = JSON.parse(line) as ControlReply;
        } catch {
          return;
        }
        if (reply.id === 0) {
          connected = true;
          resolveConnected(true);
          return;
        }
        const waiter = this.#pending.get(reply.id);
        if (waiter === undefined) return;
        this.#pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.result);
        else waiter.reject(new Error(reply.error));
      };
      void (async () => {
        try {
          // loaded here, not at the top: `up` imports this module for any project, and a
          // project without published ports never opens a control session (readline: ~1 ms)
          const { createInterface } = await import("node:readline");
          for await (const line of createInterface({ input: Readable.from(this.#session.output), crlfDelay: Infinity })) if (line.trim() !== "") onLine(line);
          this.#ended = new Error(connected ? "the control session ended" : "the control socket is not there yet");
        } catch (error) {
          this.#ended = error instanceof Error ? error : new Error(String(error));
        }
        for (const waiter of this.#pending.values()) waiter.reject(new Error(`${this.container}: ${this.#ended.message}`));
        this.#pending.clear();
        resolveConnected(connected);
      })();
    });
  }

  request(request: WithoutId<ControlRequest>): Promise<unknown> {
    if (this.#ended !== undefined) return Promise.reject(new Error(`${this.container}: ${this.#ended.message}`));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#session.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  status(): Promise<StatusReply> {
    return this.request({ op: "status" }) as Promise<StatusReply>;
  }

  add(target: TargetAddress, probe: boolean): Promise<{ probes: number; ms: number }> {
    return this.request({ op: "add", target, probe }) as Promise<{ probes: number; ms: number }>;
  }

  /** `routed: false` when the proxy did not route to it (nothing to wait for) */
  drain(target: string, timeoutMs?: number): Promise<{ routed: boolean; drained: boolean; outstanding: number; ms: number }> {
    return this.request({ op: "drain", target, ...(timeoutMs === undefined ? {} : { timeoutMs }) }) as Promise<{ routed: boolean; drained: boolean; outstanding: number; ms: number }>;
  }

  close(): void {
    this.#session.close();
  }
}

/** Why a proxy does not answer, in Docker's words and its own: its state and last log lines. */
async function unreachable(engine: Engine, container: string, details: ContainerDetails | undefined, lastError: string): Promise<RerollError> {
  const name = details?.names[0] ?? container;
  if (details === undefined) {
    return new RerollError("E_PROXY_UNREACHABLE", `The proxy ${name} is gone.`, { kind: "failed", hint: "reroll proxy up creates it again." });
  }
  const state =
    details.state === "restarting" || details.restartCount > 0
      ? `it is ${details.state}, restarted ${details.restartCount} time${details.restartCount === 1 ? "" : "s"} by Docker, last exit code ${details.exitCode}`
      : `it is ${details.state}`;
  const log = await engine.containerLogs(details.id, 10).catch(() => []);
  // one that keeps exiting may be running a broken image, which recreating it would run again
  const exiting = details.state === "restarting" || details.restartCount > 0;
  const image = details.imageId.replace(/^sha256:/, "").slice(0, 12);
  return new RerollError("E_PROXY_UNREACHABLE", `The proxy ${name} does not answer on its control socket: ${state}.`, {
    kind: "failed",
    problems: [...(lastError === "" ? [] : [lastError]), ...log.map((line) => `log: ${line}`)],
    hint: `See its log: docker logs ${name}. reroll proxy up recreates it from its image${exiting ? `; if the log says the image itself is broken (a file or library missing), remove that image first (docker rmi -f ${image}) and reroll proxy up builds reroll's image anew` : ""}.`,
  });
}
