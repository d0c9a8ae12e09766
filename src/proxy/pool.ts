/**
 * The targets of one proxied service and the choice between them: least outstanding
 * requests among the ready targets, ties broken in turn. A draining target takes no new
 * request; its in-flight ones (and open upgraded connections) are counted until they end,
 * so the drain can wait for exactly them.
 *
 * A target can move or vanish between rollouts: Docker restarts a crashed replica, and it may
 * come back at another address (the old one may even be handed to another container). The
 * proxy re-resolves its targets (server.ts): `readdress` moves one, `unreachable` takes one
 * whose container has no address out of the choice until it has one again. A target whose
 * connect just failed is passed over for FAILED_BACKOFF_MS while another can take the request.
 */

/** the error code of a connect that completed to an address its target has left (`reaches`) */
export const MOVED = "E_TARGET_MOVED";

/** how long a target whose connect failed is passed over, when another ready target exists */
export const FAILED_BACKOFF_MS = 1_000;

export type TargetState = "ready" | "draining";

export interface TargetInfo {
  /** the replica's key (reroll uses its container id) */
  readonly id: string;
  /** what to call it (its container name) */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly state: TargetState;
  /** requests in flight plus upgraded connections open */
  readonly outstanding: number;
  /** false while its container has no address */
  readonly reachable: boolean;
}

interface Target {
  readonly id: string;
  readonly name: string;
  host: string;
  readonly port: number;
  state: TargetState;
  outstanding: number;
  /** when outstanding reaches 0 while draining */
  idle: (() => void)[];
  /** false while its container has no address (stopped, restarting) */
  reachable: boolean;
  /** Date.now() until which a failed connect passes it over */
  failedUntil: number;
}

export class TargetPool {
  readonly #targets = new Map<string, Target>();
  #turn = 0;
  readonly #onFailure: ((id: string) => void) | undefined;

  /** `onFailure`: told when a connect to a target failed, so its address can be checked at once */
  constructor(options: { onFailure?: (id: string) => void } = {}) {
    this.#onFailure = options.onFailure;
  }

  /** Adds a target, or brings a draining (or unreachable) one back to ready. */
  add(id: string, host: string, port: number, name = id): void {
    const existing = this.#targets.get(id);
    if (existing !== undefined && existing.host === host && existing.port === port) {
      existing.state = "ready";
      existing.reachable = true;
      return;
    }
    this.#targets.set(id, { id, name, host, port, state: "ready", outstanding: existing?.outstanding ?? 0, idle: existing?.idle ?? [], reachable: true, failedUntil: 0 });
  }

  /** The target's container answers at `host` now; true when that moved it. */
  readdress(id: string, host: string): boolean {
    const target = this.#targets.get(id);
    if (target === undefined) return false;
    const moved = target.host !== host;
    target.host = host;
    target.reachable = true;
    if (moved) target.failedUntil = 0;
    return moved;
  }

  /** The target's container has no address (not running): no request goes to it until readdress. */
  unreachable(id: string): void {
    const target = this.#targets.get(id);
    if (target !== undefined) target.reachable = false;
  }

  /**
   * true while `host` is still where the target is. A connect begun before the target moved
   * or lost its address must not be used when it completes: the address may be another
   * container's by then.
   */
  reaches(id: string, host: string): boolean {
    const target = this.#targets.get(id);
    return target !== undefined && target.reachable && target.host === host;
  }

  /** A connect to the target failed before any byte was sent. */
  failed(id: string): void {
    const target = this.#targets.get(id);
    if (target === undefined) return;
    target.failedUntil = Date.now() + FAILED_BACKOFF_MS;
    this.#onFailure?.(id);
  }

  /** Stops routing new requests to `id`; resolves when its last in-flight request ended, or after `timeoutMs`. */
  async drain(id: string, timeoutMs: number): Promise<{ drained: boolean; outstanding: number }> {
    const target = this.#targets.get(id);
    if (target === undefined) return { drained: true, outstanding: 0 };
    target.state = "draining";
    if (target.outstanding > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => target.idle.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    return { drained: target.outstanding === 0, outstanding: target.outstanding };
  }

  remove(id: string): void {
    const target = this.#targets.get(id);
    if (target === undefined) return;
    this.#targets.delete(id);
    for (const resolve of target.idle.splice(0)) resolve();
  }

  /**
   * The ready target with the fewest outstanding requests, skipping `exclude`; undefined when none.
   * Ties take turns. A target whose connect failed recently is chosen only when no other can be.
   */
  pick(exclude?: ReadonlySet<string>): { id: string; name: string; host: string; port: number } | undefined {
    const now = Date.now();
    return this.#choose(exclude, now, false) ?? this.#choose(exclude, now, true);
  }

  #choose(exclude: ReadonlySet<string> | undefined, now: number, failing: boolean): { id: string; name: string; host: string; port: number } | undefined {
    const eligible = (t: Target): boolean => t.state === "ready" && t.reachable && t.failedUntil > now === failing && exclude?.has(t.id) !== true;
    let least = Infinity;
    let tied = 0;
    for (const t of this.#targets.values()) {
      if (!eligible(t)) continue;
      if (t.outstanding < least) {
        least = t.outstanding;
        tied = 1;
      } else if (t.outstanding === least) tied += 1;
    }
    if (tied === 0) return undefined;
    let turn = this.#turn++ % tied;
    for (const t of this.#targets.values()) {
      if (!eligible(t) || t.outstanding !== least) continue;
      if (turn-- === 0) return { id: t.id, name: t.name, host: t.host, port: t.port };
    }
    return undefined;
  }

  /** true while `id` takes new requests (at `host`, when given) */
  isReady(id: string, host?: string): boolean {
    const target = this.#targets.get(id);
    return target?.state === "ready" && target.reachable && (host === undefined || target.host === host);
  }

  /** Counts one request (or upgraded connection) on `id` until the returned function is called. */
  hold(id: string): () => void {
    const target = this.#targets.get(id);
    if (target === undefined) return () => undefined;
    target.outstanding += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      target.outstanding -= 1;
      if (target.outstanding === 0) for (const resolve of target.idle.splice(0)) resolve();
    };
  }

  list(): TargetInfo[] {
    return [...this.#targets.values()].map(({ id, name, host, port, state, outstanding, reachable }) => ({ id, name, host, port, state, outstanding, reachable }));
  }
}
