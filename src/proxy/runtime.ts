import { Readable } from "node:stream";
import { RerollError, isRerollError } from "../core/errors.js";
import type { ContainerDetails, Engine, ExecSession } from "../engine/port.js";
import { RUNTIME_SOCKET } from "./haproxy-config.js";

/**
 * A session with one door's HAProxy runtime API, through the Docker API alone: one exec into
 * the door container runs a small bridge in perl (perl-base is in HAProxy's Debian-based
 * image) that sends each line it reads to the runtime socket on a connection of its own and
 * prints the answer followed by an end mark. Commands are answered in order.
 */

const END = "\x1e";
/** a line starting with this asks the bridge for a file's content instead */
const READ_FILE = "\x1f";

const BRIDGE = [
  "use IO::Socket::UNIX; $| = 1; my $path = shift;",
  "while (defined(my $line = <STDIN>)) {",
  "  my $out = '';",
  `  if ($line =~ s/^\\x1f//) { chomp $line; if (open(my $f, '<', $line)) { local $/; $out = <$f> // ''; close $f } else { $out = "${END}! $line: $!\\n" } }`,
  `  else { my $s = IO::Socket::UNIX->new(Peer => $path); if (!$s) { $out = "${END}! $!\\n" } else { print $s $line; local $/; $out = <$s> // ''; close $s } }`,
  `  $out .= "\\n" if $out ne '' && $out !~ /\\n\\z/; print $out, "${END}\\n";`,
  "}",
].join("\n");

export const BRIDGE_COMMAND = ["perl", "-e", BRIDGE, RUNTIME_SOCKET] as const;

/** One try of `open` in flight: its session once the daemon gave one, and whether `open` gave up on it. */
interface Pending {
  cancelled: boolean;
  session?: ExecSession;
}

export class RuntimeSession {
  readonly #session: ExecSession;
  readonly #waiting: { resolve: (answer: string) => void; reject: (error: Error) => void }[] = [];
  #ended: Error | undefined;
  #lines: string[] = [];

  private constructor(session: ExecSession, readonly container: string) {
    this.#session = session;
    void this.#read();
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  /**
   * Opens a session once the runtime socket answers; retries while HAProxy is starting or
   * between two of Docker's restarts, up to `timeoutMs`. A door that keeps exiting (restarted
   * twice more while reroll waits) or has stopped fails early, with its state and last log lines.
   */
  static async open(engine: Engine, container: string, timeoutMs = 15_000): Promise<RuntimeSession> {
    const deadline = Date.now() + timeoutMs;
    let lastError = "";
    let restartsBefore: number | undefined;
    for (;;) {
      const pending: Pending = { cancelled: false };
      const attempt = RuntimeSession.#attempt(engine, container, pending);
      // an exec into a container that dies as it starts can leave its stream open with no answer
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), undefined)));
      const result = await Promise.race([attempt, late]).finally(() => clearTimeout(timer));
      if (result === undefined) {
        pending.cancelled = true;
        pending.session?.close();
        attempt.then((r) => ("session" in r ? r.session.close() : undefined)).catch(() => undefined);
        lastError ||= "the runtime API did not answer";
      } else if ("session" in result) {
        return result.session;
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

  static async #attempt(engine: Engine, container: string, pending: Pending): Promise<{ session: RuntimeSession } | { error: string }> {
    let exec: ExecSession;
    try {
      exec = await engine.exec(container, BRIDGE_COMMAND);
    } catch (error) {
      if (!isRerollError(error) || error.code !== "E_NOT_RUNNING") throw error;
      return { error: error.message };
    }
    pending.session = exec;
    if (pending.cancelled) {
      exec.close();
      return { error: "the runtime API did not answer" };
    }
    const session = new RuntimeSession(exec, container);
    try {
      await session.command("show info");
      return { session };
    } catch (error) {
      session.close();
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  async #read(): Promise<void> {
    let failure: string | undefined;
    try {
      const { createInterface } = await import("node:readline");
      for await (const line of createInterface({ input: Readable.from(this.#session.output), crlfDelay: Infinity })) {
        if (line.startsWith(`${END}!`)) {
          failure = line.slice(2).trim() || "the runtime socket is not there";
          continue;
        }
        if (line !== END) {
          this.#lines.push(line);
          continue;
        }
        const answer = this.#lines.join("\n");
        this.#lines = [];
        const waiter = this.#waiting.shift();
        if (failure !== undefined) waiter?.reject(new Error(`${this.container}: ${failure}`));
        else waiter?.resolve(answer);
        failure = undefined;
      }
      this.#ended = new Error("the session with its runtime API ended");
    } catch (error) {
      this.#ended = error instanceof Error ? error : new Error(String(error));
    }
    for (const waiter of this.#waiting.splice(0)) waiter.reject(new SessionEnded(`${this.container}: ${this.#ended.message}`));
  }

  /** Sends one runtime API command (several may be joined with ";") and resolves with its answer. */
  command(command: string): Promise<string> {
    if (this.#ended !== undefined) return Promise.reject(new SessionEnded(`${this.container}: ${this.#ended.message}`));
    if (/[\r\n]/.test(command)) return Promise.reject(new Error(`a runtime API command is one line: ${JSON.stringify(command)}`));
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#session.write(`${command}\n`);
    });
  }

  /** The content of a file in the container (the configuration reroll wrote). */
  readFile(path: string): Promise<string> {
    return this.command(`${READ_FILE}${path}`);
  }

  close(): void {
    this.#session.close();
  }
}

/** The session ended under a command: the door stopped or is being restarted. */
export class SessionEnded extends Error {}

/** Why a door does not answer, in Docker's words and its own: its state and last log lines. */
async function unreachable(engine: Engine, container: string, details: ContainerDetails | undefined, lastError: string): Promise<RerollError> {
  const name = details?.names[0] ?? container;
  if (details === undefined) return new RerollError("E_PROXY_UNREACHABLE", `The proxy ${name} is gone.`, { kind: "failed", hint: "reroll proxy up creates it again." });
  const exiting = details.state === "restarting" || details.restartCount > 0;
  const state = exiting ? `it is ${details.state}, restarted ${details.restartCount} time${details.restartCount === 1 ? "" : "s"} by Docker, last exit code ${details.exitCode}` : `it is ${details.state}`;
  const log = await engine.containerLogs(details.id, 10).catch(() => []);
  return new RerollError("E_PROXY_UNREACHABLE", `The proxy ${name} does not answer on its runtime API: ${state}.`, {
    kind: "failed",
    problems: [...(lastError === "" ? [] : [lastError]), ...log.map((line) => `log: ${line}`)],
    hint: `See its log: docker logs ${name}. reroll proxy up recreates it${exiting ? "; if the log says its configuration or image is broken, fix that first" : ""}.`,
  });
}

/** `show servers state BACKEND` as records by server name. */
export interface ServerState {
  readonly name: string;
  readonly address: string;
  /** 0 stopped (down), 1 starting, 2 running (up), 3 stopping */
  readonly operational: number;
  /** bits: 0x01/0x02/0x04/0x20 maintenance, 0x08/0x10 drain */
  readonly admin: number;
  readonly weight: number;
  /** the last check's result: 0 none yet, 2 failed, 3 passed, 4 passed with conditions */
  readonly checkResult: number;
}

export function parseServersState(text: string): ServerState[] {
  const lines = text.split("\n").map((l) => l.trim());
  const header = lines.find((l) => l.startsWith("# be_id"));
  if (header === undefined) return [];
  const columns = header.slice(2).split(" ");
  const at = (name: string): number => columns.indexOf(name);
  return lines
    .filter((l) => !l.startsWith("#"))
    .map((l) => l.split(" "))
    // the first line is the format's version alone
    .filter((f) => f.length >= columns.length)
    .map((f) => ({
      name: f[at("srv_name")] ?? "",
      address: f[at("srv_addr")] ?? "",
      operational: Number(f[at("srv_op_state")]),
      admin: Number(f[at("srv_admin_state")]),
      weight: Number(f[at("srv_uweight")]),
      checkResult: Number(f[at("srv_check_result")]),
    }));
}

/** `show stat` (CSV) as records by server name: current sessions and queue, status, last check. */
export interface ServerStat {
  readonly name: string;
  readonly sessions: number;
  readonly queued: number;
  readonly status: string;
  readonly check: string;
}

export function parseServerStats(text: string, backend: string): ServerStat[] {
  const lines = text.split("\n");
  const header = lines.find((l) => l.startsWith("# pxname"));
  if (header === undefined) return [];
  const columns = header.slice(2).split(",");
  const at = (name: string): number => columns.indexOf(name);
  return lines
    .filter((l) => !l.startsWith("#") && l.trim() !== "")
    .map((l) => l.split(","))
    .filter((f) => f[at("pxname")] === backend && f[at("svname")] !== "BACKEND" && f[at("svname")] !== "FRONTEND")
    .map((f) => ({
      name: f[at("svname")] ?? "",
      sessions: Number(f[at("scur")]) || 0,
      queued: Number(f[at("qcur")]) || 0,
      status: f[at("status")] ?? "",
      check: f[at("check_status")] ?? "",
    }));
}
