import { TarWriter } from "../build/tar.js";
import type { Engine } from "../engine/port.js";
import { BACKEND, CONFIG_DIR, CONFIG_FILE, HOLD_MAP_FILE, HOLD_SCRIPT, HOLD_SCRIPT_FILE, ROUTED_WEIGHT, VERIFY_ACL_FILE, renderDoorConfig, serverArguments, type DoorServer, type DoorSettings } from "./haproxy-config.js";
import { RuntimeSession, SessionEnded, parseServerStats, parseServersState, type ServerState } from "./runtime.js";

/**
 * One door: an HAProxy container publishing one port of a service, driven through its runtime
 * API. Servers are added, routed, drained and removed at run time; every change is also
 * written to the configuration file in the container, so a restarted HAProxy serves the same
 * replicas. A session that ends under a command (the door killed, Docker restarting it) is
 * opened again and the command sent once more.
 */

export interface TargetAddress {
  /** the replica's container id: unique, where a name may pass from an old replica to its replacement */
  readonly id: string;
  /** its container name, for people and for --verify's report */
  readonly name?: string;
  /** its address on the project network */
  readonly host: string;
}

/** probing: not routed until its first 2xx · down: routed, failing its checks · draining: no new request */
export type TargetStatus = "probing" | "ready" | "down" | "draining";

export interface TargetReport extends TargetAddress {
  readonly state: TargetStatus;
  /** requests (or connections, in TCP mode) it is serving now */
  readonly outstanding: number;
}

export interface DrainResult {
  /** false when the door did not route to it: nothing to wait for */
  readonly routed: boolean;
  readonly drained: boolean;
  readonly outstanding: number;
  readonly ms: number;
  /** workers a reload left serving their last connections when the drain timed out (their sessions are theirs alone to see) */
  readonly olderWorkers?: number;
}

/** a file written into a door; a secret (a private key) is readable by HAProxy's group only */
export interface DoorFile {
  readonly name: string;
  readonly text: string;
  readonly secret?: boolean;
}

/** the haproxy group of HAProxy's official image (its processes run as haproxy:haproxy, 99:99) */
const HAPROXY_GID = 99;
const ID_CHARS = 12;
const DRAIN_POLL_MS = 100;
/** how long a lost session is tried again: a door's restart takes about a second */
const REOPEN_MS = 60_000;
/** put in maintenance by reroll (a server being removed, or one HAProxy cannot remove at run time) */
const FORCED_MAINTENANCE = 0x01;
const MAINTENANCE = 0x02 | 0x04;
/** no address: Docker's DNS does not know the replica now (stopped, or restarting) */
const NO_ADDRESS = 0x20;
const DRAINING = 0x08 | 0x10;

/** The HAProxy server name of a replica: its container name (for people) and short id (its identity). */
export function serverName(target: { readonly id: string; readonly name?: string }): string {
  const id = target.id.slice(0, ID_CHARS);
  return target.name === undefined ? id : `${target.name}.${id}`;
}

/** The container name in a server name (`web-r2-1.0123456789ab` → `web-r2-1`). */
export function replicaOfServer(name: string): string {
  return name.replace(/\.[0-9a-f]{12}$/, "");
}

function idOfServer(name: string): string {
  return /([0-9a-f]{12})$/.exec(name)?.[1] ?? name;
}

/** What a server is doing, from HAProxy's own state: admin bits first, then weight, then health. */
function targetState(s: ServerState): TargetStatus {
  if ((s.admin & NO_ADDRESS) !== 0) return "down";
  if ((s.admin & (DRAINING | MAINTENANCE)) !== 0) return "draining";
  if (s.weight === 0) return "probing";
  return s.operational === 2 ? "ready" : "down";
}

/** The servers of a door's backend with their state and what they serve now; `run` sends one runtime API command. */
export async function readTargets(run: (command: string) => Promise<string>): Promise<TargetReport[]> {
  const [states, stats] = await Promise.all([run(`show servers state ${BACKEND}`), run("show stat -1 4 -1")]);
  const byName = new Map(parseServerStats(stats, BACKEND).map((s) => [s.name, s]));
  // a server reroll took out stays listed while HAProxy cannot remove it: it serves nothing
  return parseServersState(states).filter((s) => (s.admin & FORCED_MAINTENANCE) === 0).map((s) => {
    const stat = byName.get(s.name);
    return { id: idOfServer(s.name), name: replicaOfServer(s.name), host: s.address, state: targetState(s), outstanding: (stat?.sessions ?? 0) + (stat?.queued ?? 0) };
  });
}

/**
 * The bound of the hold a door is under (`reroll proxy pause`, or a stop-first slot), in ms
 * counted from when the door first saw it, or undefined when it holds nothing. A TCP door has
 * no hold map: the runtime API says so, and it holds nothing.
 */
export async function readHold(run: (command: string) => Promise<string>): Promise<number | undefined> {
  const entries = await run(`show map ${CONFIG_DIR}/${HOLD_MAP_FILE}`).catch(() => "");
  const value = /^\S+ hold (\d+)@/m.exec(entries);
  return value === null ? undefined : Number(value[1]);
}

interface Known {
  host: string;
  state: "routed" | "probing" | "draining";
}

export class Door {
  readonly #servers = new Map<string, Known>();
  readonly #probes = new Map<string, AbortController>();
  /** servers taken out that HAProxy could not remove at run time: in maintenance until a reload */
  readonly #retired = new Set<string>();
  /** workers from before a reload that one drain already waited for until its timeout */
  readonly #waitedOut = new Set<string>();
  #session: RuntimeSession;
  #settings: DoorSettings;
  #queue: Promise<unknown> = Promise.resolve();
  #reopening: Promise<void> | undefined;

  private constructor(
    private readonly engine: Engine,
    readonly container: string,
    settings: DoorSettings,
    session: RuntimeSession,
    private readonly onReopen: () => Promise<void>,
  ) {
    this.#settings = settings;
    this.#session = session;
  }

  /** Opens the door's runtime API and learns the servers it has. `onReopen` runs before a lost session is opened again (to start a stopped door). */
  static async open(engine: Engine, container: string, settings: DoorSettings, onReopen: () => Promise<void> = async () => undefined, timeoutMs?: number): Promise<Door> {
    const door = new Door(engine, container, settings, await RuntimeSession.open(engine, container, timeoutMs), onReopen);
    await door.#learn();
    return door;
  }

  /** The content of a door's configuration file, the way the initial one is written before its first start. */
  static initialFiles(settings: DoorSettings, servers: readonly DoorServer[]): DoorFile[] {
    return [
      { name: CONFIG_FILE, text: renderDoorConfig(settings, servers) },
      { name: HOLD_SCRIPT_FILE, text: HOLD_SCRIPT },
      { name: VERIFY_ACL_FILE, text: "" },
      { name: HOLD_MAP_FILE, text: "" },
    ];
  }

  /** Writes files into a door's directory (its configuration by default), created or running; a secret is readable by HAProxy's group only. */
  static async writeFiles(engine: Engine, container: string, files: readonly DoorFile[], dir = CONFIG_DIR): Promise<void> {
    const tar = new TarWriter();
    const put = engine.putArchive(container, dir, tar.stream);
    const mtime = new Date();
    for (const file of files) await tar.add({ name: file.name, type: "file", mtime, ...(file.secret === true ? { mode: 0o640, uid: 0, gid: HAPROXY_GID } : { mode: 0o644 }) }, file.text);
    await tar.finish();
    await put;
  }

  async #learn(): Promise<void> {
    this.#servers.clear();
    for (const s of parseServersState(await this.#session.command(`show servers state ${BACKEND}`))) {
      if ((s.admin & FORCED_MAINTENANCE) !== 0) {
        this.#retired.add(s.name);
        continue;
      }
      const state = targetState(s);
      this.#servers.set(s.name, { host: s.address, state: state === "ready" || state === "down" ? "routed" : state });
    }
  }

  /** Runs one command; a session lost under it (the door restarted) is opened again and the command sent once more. */
  async #run(command: string): Promise<string> {
    try {
      return await this.#session.command(command);
    } catch (error) {
      if (!(error instanceof SessionEnded)) throw error;
      this.#reopening ??= this.#reopen().finally(() => (this.#reopening = undefined));
      await this.#reopening;
      return this.#session.command(command);
    }
  }

  /**
   * A new session once the door answers again: Docker restarts a door whose process died, and
   * `onReopen` starts one that was stopped (`docker kill`). Docker may still call a killed
   * container running for a moment, so this tries again until REOPEN_MS have passed.
   */
  async #reopen(): Promise<void> {
    this.#session.close();
    const deadline = Date.now() + REOPEN_MS;
    for (;;) {
      try {
        await this.onReopen();
        this.#session = await RuntimeSession.open(this.engine, this.container, 5_000);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    // a restarted HAProxy knows what its file says: servers being drained are gone from it
    await this.#learn();
  }

  /** One change at a time: the file written is the state after the change. */
  #serial<T>(change: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(change, change);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #writeConfig(): Promise<void> {
    const servers: DoorServer[] = [];
    // by the replica's short id, which Docker's DNS resolves: a restarted door follows a
    // replica that came back at another address
    for (const [name, s] of this.#servers) if (s.state !== "draining") servers.push({ name, host: /^[0-9a-f]{12}$/.test(idOfServer(name)) ? idOfServer(name) : s.host, state: s.state });
    await Door.writeFiles(this.engine, this.container, [{ name: CONFIG_FILE, text: renderDoorConfig(this.#settings, servers) }]);
  }

  #find(id: string): string | undefined {
    const short = id.slice(0, ID_CHARS);
    for (const name of this.#servers.keys()) if (idOfServer(name) === short) return name;
    return undefined;
  }

  /** The servers HAProxy has, with what each is doing now. */
  status(): Promise<TargetReport[]> {
    return readTargets((command) => this.#run(command));
  }

  /**
   * Adds a replica. With `probe`, it takes no request (weight 0) until HAProxy's check of the
   * health path answers 2xx (probed every `probeIntervalMs`), then it is routed; resolves then.
   * Without, it is routed at once (Docker's health was its gate).
   */
  add(target: TargetAddress, probe: boolean): Promise<{ probes: number; ms: number }> {
    const name = serverName(target);
    const started = Date.now();
    const abort = new AbortController();
    return this.#serial(async () => {
      const known = this.#servers.get(name);
      const server = `${BACKEND}/${name}`;
      if (known !== undefined && known.state === "routed") {
        // routed at another address (Docker restarted it): moved in place, as the file's
        // servers cannot be removed at run time
        if (known.host !== target.host) {
          // up at once, as a replica added unprobed is: its checks at the old address had failed
          await this.#run(`set server ${server} addr ${target.host}; set server ${server} health up`);
          known.host = target.host;
        }
        return;
      }
      if (known !== undefined) await this.#delete(name);
      const weight = probe ? 0 : ROUTED_WEIGHT;
      this.#servers.set(name, { host: target.host, state: probe ? "probing" : "routed" });
      await this.#writeConfig();
      if (this.#retired.delete(name)) {
        // taken out earlier and kept (HAProxy 2.6 cannot remove it), now wanted again (a
        // rollback brings its replica back): put back in place
        await this.#run([`set server ${server} addr ${target.host}`, `set weight ${server} ${weight}`, `set server ${server} state ready`].join("; "));
      } else {
        // added in maintenance, then checked; a probed one takes no request (weight 0) until a check passed
        await this.#run([`add server ${server} ${serverArguments(this.#settings, target.host, weight)}`, `enable health ${server}`, `enable server ${server}`].join("; "));
      }
      if (probe) this.#probes.set(name, abort);
    }).then(async () => {
      if (!probe || !this.#probes.has(name)) return { probes: 0, ms: Date.now() - started };
      try {
        await this.#untilUp(name, abort.signal);
      } finally {
        this.#probes.delete(name);
      }
      await this.#serial(async () => {
        const known = this.#servers.get(name);
        if (known === undefined || known.state !== "probing") return;
        await this.#run(`set weight ${BACKEND}/${name} ${ROUTED_WEIGHT}`);
        known.state = "routed";
        await this.#writeConfig();
      });
      const ms = Date.now() - started;
      return { probes: Math.max(1, Math.round(ms / this.#settings.probeIntervalMs)), ms };
    });
  }

  async #untilUp(name: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new Error(`${replicaOfServer(name)} was taken out of ${this.container} before it answered its health path`);
      const state = parseServersState(await this.#run(`show servers state ${BACKEND}`)).find((s) => s.name === name);
      if (state === undefined) throw new Error(`${replicaOfServer(name)} is no longer a server of ${this.container}`);
      // a server is called up before its first check: only a check that passed counts
      if (state.operational === 2 && (state.checkResult === 3 || state.checkResult === 4)) return;
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.#settings.probeIntervalMs, 250)));
    }
  }

  /**
   * Stops sending new requests to a replica, waits until HAProxy reports nothing in flight on it
   * (bounded by the drain timeout), then removes it. A probe in progress is cancelled.
   */
  async drain(id: string, timeoutMs = this.#settings.drainTimeoutMs): Promise<DrainResult> {
    const started = Date.now();
    const name = this.#find(id);
    if (name === undefined) return { routed: false, drained: true, outstanding: 0, ms: 0 };
    const probing = this.#probes.get(name);
    const wasRouted = this.#servers.get(name)?.state === "routed";
    if (probing !== undefined || !wasRouted) {
      probing?.abort();
      await this.remove(id);
      return { routed: false, drained: true, outstanding: 0, ms: Date.now() - started };
    }
    await this.#serial(async () => {
      const known = this.#servers.get(name);
      if (known !== undefined) known.state = "draining";
      await this.#writeConfig();
      await this.#run(`set server ${BACKEND}/${name} state drain`).catch(() => undefined);
    });
    let outstanding = 0;
    let olderWorkers: readonly string[] = [];
    for (;;) {
      const stat = parseServerStats(await this.#run("show stat -1 4 -1"), BACKEND).find((s) => s.name === name);
      outstanding = stat === undefined ? 0 : stat.sessions + stat.queued;
      // The runtime API is the newest worker's: a worker an earlier reload left may still carry
      // requests to this replica, unseen, so the drain also waits for such workers to end.
      olderWorkers = outstanding === 0 ? await this.#workersBeforeReload() : olderWorkers;
      if ((outstanding === 0 && olderWorkers.length === 0) || Date.now() - started >= timeoutMs) break;
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    // one drain timeout is all such a worker is waited for (a WebSocket may keep it until
    // HAProxy's hard-stop-after): the next replicas' drains do not wait for it again
    for (const pid of olderWorkers) this.#waitedOut.add(pid);
    await this.#serial(() => this.#delete(name));
    return { routed: true, drained: outstanding === 0 && olderWorkers.length === 0, outstanding, ms: Date.now() - started, ...(olderWorkers.length > 0 ? { olderWorkers: olderWorkers.length } : {}) };
  }

  /**
   * The workers a reload left finishing their connections, but those already waited out:
   * HAProxy's master is the container's first process and its children are the workers, the
   * newest (the one the runtime API answers for) last.
   */
  async #workersBeforeReload(): Promise<readonly string[]> {
    const children = (await this.#run("\x1f/proc/1/task/1/children").catch(() => "")).split(/\s+/).filter((pid) => pid !== "");
    return children.slice(0, -1).filter((pid) => !this.#waitedOut.has(pid));
  }

  /** Takes a replica out at once (in-flight requests are cut). */
  remove(id: string): Promise<void> {
    return this.#serial(async () => {
      const name = this.#find(id);
      if (name === undefined) return;
      this.#probes.get(name)?.abort();
      await this.#delete(name);
    });
  }

  /** maintenance, its sessions shut, deleted; out of the file. Inside #serial. */
  async #delete(name: string): Promise<void> {
    this.#servers.delete(name);
    await this.#writeConfig();
    await this.#run(`set server ${BACKEND}/${name} state maint; shutdown sessions server ${BACKEND}/${name}`).catch(() => undefined);
    // idle connections to it are closed asynchronously: deletion is tried again for a moment
    for (let i = 0; i < 20; i++) {
      const answer = await this.#run(`del server ${BACKEND}/${name}`).catch((error: Error) => error.message);
      if (/deleted|no such server/i.test(answer)) return;
      // one from the file (resolved by name) stays, in maintenance, until `settle` reloads
      if (/cannot be removed at runtime/i.test(answer)) {
        this.#retired.add(name);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Reloads the door when servers HAProxy could not remove at run time are left in
   * maintenance (2.6 cannot remove a server that resolves its name): the new worker has
   * only the file's servers. Called once a command's changes are done.
   */
  async settle(): Promise<void> {
    if (this.#retired.size === 0) return;
    await this.reconfigure(this.#settings);
    this.#retired.clear();
  }

  /** Routes to exactly these replicas (routed at once): the others are removed. */
  async sync(targets: readonly TargetAddress[]): Promise<void> {
    const wanted = new Set(targets.map(serverName));
    for (const name of [...this.#servers.keys()]) if (!wanted.has(name)) await this.#serial(() => this.#delete(name));
    for (const target of targets) await this.add(target, false);
  }

  /** Registers a token that makes the door name the replica that answered (--verify's own traffic); returns its removal. */
  async allowVerify(token: string): Promise<() => Promise<void>> {
    await this.#run(`add acl ${CONFIG_DIR}/${VERIFY_ACL_FILE} ${token}`);
    return async () => {
      await this.#run(`del acl ${CONFIG_DIR}/${VERIFY_ACL_FILE} ${token}`).catch(() => undefined);
    };
  }

  /** The configuration file as the door has it now. */
  currentConfig(): Promise<string> {
    return this.#run(`\x1f${CONFIG_DIR}/${CONFIG_FILE}`).catch(() => "");
  }

  /**
   * Holds new requests (they wait, up to `ms`, then go on as usual) until `release`; HTTP doors
   * only. The bound is the door's own: a reroll that dies holding never holds for longer.
   */
  async hold(ms: number): Promise<void> {
    const map = `${CONFIG_DIR}/${HOLD_MAP_FILE}`;
    // a new value each time: the door counts `ms` from when it first sees it
    await this.#run(`clear map ${map}; add map ${map} hold ${Math.round(ms)}@${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`);
  }

  async release(): Promise<void> {
    await this.#run(`clear map ${CONFIG_DIR}/${HOLD_MAP_FILE}`);
  }

  /** New settings: written, then HAProxy reloads seamlessly (its master hands the listening socket to a new worker). */
  async reconfigure(settings: DoorSettings): Promise<void> {
    await this.#serial(async () => {
      this.#settings = settings;
      await Door.writeFiles(this.engine, this.container, [{ name: HOLD_SCRIPT_FILE, text: HOLD_SCRIPT }]);
      await this.#writeConfig();
      await this.engine.signalContainer(this.container, "SIGUSR2");
    });
  }

  close(): void {
    for (const probe of this.#probes.values()) probe.abort();
    this.#session.close();
  }
}
