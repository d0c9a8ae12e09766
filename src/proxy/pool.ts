/**
 * The targets of one proxied service and the choice between them: least outstanding
 * requests among the ready targets, ties broken in turn. A draining target takes no new
 * request; its in-flight ones (and open upgraded connections) are counted until they end,
 * so the drain can wait for exactly them.
 */

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
}

interface Target {
  readonly id: string;
  readonly name: string;
  readonly host: string;
  readonly port: number;
  state: TargetState;
  outstanding: number;
  /** when outstanding reaches 0 while draining */
  idle: (() => void)[];
}

export class TargetPool {
  readonly #targets = new Map<string, Target>();
  #turn = 0;

  /** Adds a target, or brings a draining one back to ready. */
  add(id: string, host: string, port: number, name = id): void {
    const existing = this.#targets.get(id);
    if (existing !== undefined && existing.host === host && existing.port === port) {
      existing.state = "ready";
      return;
    }
    this.#targets.set(id, { id, name, host, port, state: "ready", outstanding: existing?.outstanding ?? 0, idle: existing?.idle ?? [] });
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

  /** The ready target with the fewest outstanding requests, skipping `exclude`; undefined when none. Ties take turns. */
  pick(exclude?: ReadonlySet<string>): { id: string; name: string; host: string; port: number } | undefined {
    let least = Infinity;
    let tied = 0;
    for (const t of this.#targets.values()) {
      if (t.state !== "ready" || exclude?.has(t.id) === true) continue;
      if (t.outstanding < least) {
        least = t.outstanding;
        tied = 1;
      } else if (t.outstanding === least) tied += 1;
    }
    if (tied === 0) return undefined;
    let turn = this.#turn++ % tied;
    for (const t of this.#targets.values()) {
      if (t.state !== "ready" || exclude?.has(t.id) === true || t.outstanding !== least) continue;
      if (turn-- === 0) return { id: t.id, name: t.name, host: t.host, port: t.port };
    }
    return undefined;
  }

  /** true while `id` takes new requests */
  isReady(id: string): boolean {
    return this.#targets.get(id)?.state === "ready";
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
    return [...this.#targets.values()].map(({ id, name, host, port, state, outstanding }) => ({ id, name, host, port, state, outstanding }));
  }
}
