import { hostname } from "node:os";
import { RerollError } from "../core/errors.js";
import { LABEL_LOCK_HOLDER, LABEL_PROJECT } from "../core/labels.js";
import type { EventSink } from "../core/events.js";
import type { Engine } from "../engine/port.js";
import { createStateContainer } from "./state.js";

/**
 * A lock kept in Docker: a container created and never started, with a fixed name. Docker's
 * unique names make taking it atomic across processes and machines sharing the daemon; its
 * label says who holds it and since when, so a dead holder's lock can be taken over.
 */

export const LOCK_POLL_MS = 100;
/** a project lock older than this is presumed dead, whatever host holds it */
export const PROJECT_LOCK_STALE_MS = 6 * 3600_000;

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  /** milliseconds since the epoch */
  readonly since: number;
}

export interface LockOptions {
  readonly name: string;
  readonly project: string;
  readonly command: string;
  /** how long to wait for a live holder; 0 = not at all */
  readonly waitMs: number;
  /** a holder older than this is presumed dead, whatever host it is on */
  readonly staleAfterMs: number;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  readonly onEvent?: EventSink;
  /** what to tell the user when the wait ends with the lock still held */
  readonly hint?: string;
}

export interface HeldLock {
  readonly name: string;
  /** another holder had it first and was waited for: what was read before may be stale */
  readonly waited: boolean;
  /**
   * Taken over from a holder that is gone (a rollout killed half-way): the stops it had asked
   * the daemon for may still be running their grace periods, so a replica that looks running
   * may be on its way out.
   */
  readonly tookOver: boolean;
  release(): Promise<void>;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function describeHolder(holder: LockHolder | undefined): string {
  if (holder === undefined) return "an unknown holder";
  return `${holder.command} (pid ${holder.pid} on ${holder.host}, since ${new Date(holder.since).toISOString()})`;
}

/**
 * True when a lock's holder is known to be gone: its process is no longer alive on this host,
 * or it has held the lock longer than `staleAfterMs` (on another host, reroll cannot tell).
 */
export function holderGone(holder: LockHolder | undefined, now: number, staleAfterMs: number): boolean {
  return holder === undefined || (holder.host === hostname() && !processAlive(holder.pid)) || now - holder.since > staleAfterMs;
}

export function parseHolder(label: string | undefined): LockHolder | undefined {
  if (label === undefined) return undefined;
  try {
    return JSON.parse(label) as LockHolder;
  } catch {
    return undefined;
  }
}

export async function acquireLock(engine: Engine, options: LockOptions): Promise<HeldLock> {
  const me: LockHolder = { pid: process.pid, host: hostname(), command: options.command, since: options.now() };
  const deadline = options.now() + options.waitMs;
  let announced = false;
  let tookOver = false;
  for (;;) {
    if (options.signal?.aborted === true) {
      throw new RerollError("E_INTERRUPTED", `Interrupted while waiting for the lock ${options.name}.`, { kind: "interrupted" });
    }
    const created = await createStateContainer(engine, {
      name: options.name,
      cmd: ["reroll-lock"],
      labels: { [LABEL_PROJECT]: options.project, [LABEL_LOCK_HOLDER]: JSON.stringify({ ...me, since: options.now() }) },
    });
    if ("id" in created) {
      const id = created.id;
      return { name: options.name, waited: announced, tookOver, release: () => engine.removeContainer(id, { force: true }) };
    }
    const existing = await engine.inspectContainer(options.name);
    if (existing === undefined) continue; // released between our attempt and the look
    const holder = parseHolder(existing.labels[LABEL_LOCK_HOLDER]);
    if (holderGone(holder, options.now(), options.staleAfterMs)) {
      // Remove exactly the container we judged; a newer holder has another id and stays.
      await engine.removeContainer(existing.id, { force: true });
      tookOver = true;
      continue;
    }
    if (options.now() >= deadline) {
      throw new RerollError("E_LOCKED", `${options.name} is held by ${describeHolder(holder)}.`, {
        kind: "locked",
        hint: options.hint ?? "Wait for it to finish, or pass --lock-wait DURATION to wait for it.",
      });
    }
    if (!announced) {
      options.onEvent?.({ type: "lock-wait", name: options.name, holder: describeHolder(holder) });
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

/**
 * The project's lock (DESIGN.md): one rollout, teardown or proxy change at a time, held by a
 * never-started container named `<project>-reroll-lock`.
 */
export async function acquireProjectLock(
  engine: Engine,
  project: string,
  command: string,
  options: { readonly waitMs?: number; readonly now?: () => number; readonly signal?: AbortSignal; readonly onEvent?: EventSink } = {},
): Promise<HeldLock> {
  return acquireLock(engine, {
    name: `${project}-reroll-lock`,
    project,
    command,
    waitMs: options.waitMs ?? 0,
    staleAfterMs: PROJECT_LOCK_STALE_MS,
    now: options.now ?? Date.now,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
}
