import { isRerollError } from "../core/errors.js";
import { LABEL_PROJECT } from "../core/labels.js";
import type { VolumeSpec } from "../core/spec/types.js";
import type { ContainerCreateRequest, CreateResult, Engine } from "../engine/port.js";
import { TarWriter } from "../build/tar.js";

/**
 * State reroll keeps in Docker besides labels on service containers and images: which
 * revisions rolled out and how (the ledger), so that `rollback` and `history` see the same
 * thing from any machine or CI job sharing the daemon.
 *
 * Lock and ledger containers are created (never started) from `reroll-state`, an empty
 * image reroll imports once, so they never pin a service image that retention would then
 * have to keep.
 */

export const STATE_IMAGE = "reroll-state:1";
export const LABEL_LEDGER = "dev.reroll.ledger";
export const LEDGER_HISTORY_PER_SERVICE = 50;

async function importStateImage(engine: Engine): Promise<void> {
  const tar = new TarWriter();
  void tar.finish();
  const [repository, tag] = STATE_IMAGE.split(":") as [string, string];
  await engine.importImage(tar.stream, repository, tag, { "dev.reroll.state-image": "1" });
}

/**
 * Creates a never-started container (a lock, a ledger record) from the state image. The
 * image is imported only when the daemon answers that it has none: on every run after the
 * first, taking a lock is one round trip, not a look at the image and then the create.
 */
export async function createStateContainer(engine: Engine, request: Omit<ContainerCreateRequest, "image">): Promise<CreateResult> {
  try {
    return await engine.createContainer({ ...request, image: STATE_IMAGE });
  } catch (error) {
    if (!isRerollError(error) || error.code !== "E_NO_SUCH_IMAGE") throw error;
  }
  await importStateImage(engine);
  return engine.createContainer({ ...request, image: STATE_IMAGE });
}

export type Outcome = "completed" | "rolled-back" | "failed" | "paused" | "interrupted";

export interface LedgerEntry {
  readonly revision: number;
  readonly imageId: string;
  readonly outcome: Outcome;
  /** milliseconds since the epoch */
  readonly at: number;
  readonly detail?: string;
  /** set on a `reroll rollback`'s completed rollout: it went back, it did not deploy anew */
  readonly by?: "rollback";
  /** the replicas' configuration hash (dev.reroll.spec-hash); absent in records written before it was kept */
  readonly specHash?: string;
}

/**
 * What a service's replicas ran with besides their image: the Compose keys that go into a
 * replica (environment, command, volumes…), and the top-level volumes its mounts name, as
 * they were when the rollout completed. `rollback` puts them back with the image, as Swarm's
 * and Kubernetes' rollbacks do, so that undoing a change of `environment:` undoes it. The
 * door (ports, x-reroll.proxy) and the rollout's own settings (replicas, update_config,
 * rollback_config) stay the Compose file's.
 */
export interface RecordedConfig {
  /**
   * The ServiceSpec keys that go into a replica, and `resources` (deploy.resources). One
   * unset then is null, since JSON drops undefined; one the recording reroll did not know is
   * absent, and the file's value stands.
   */
  readonly service: Readonly<Record<string, unknown>>;
  readonly volumes: Readonly<Record<string, VolumeSpec>>;
}

export interface Ledger {
  readonly seq: number;
  readonly services: Readonly<Record<string, readonly LedgerEntry[]>>;
  /** per service, the configuration of each completed entry's spec hash */
  readonly configs?: Readonly<Record<string, Readonly<Record<string, RecordedConfig>>>>;
}

const EMPTY: Ledger = { seq: 0, services: {} };

function ledgerName(project: string, seq: number): string {
  return `${project}-reroll-ledger-${seq}`;
}

export async function readLedger(engine: Engine, project: string): Promise<Ledger> {
  return newestRecord(await ledgerContainers(engine, project));
}

function ledgerContainers(engine: Engine, project: string) {
  return engine.listContainers([`${LABEL_PROJECT}=${project}`, LABEL_LEDGER]);
}

function newestRecord(containers: Awaited<ReturnType<typeof ledgerContainers>>): Ledger {
  let best = EMPTY;
  for (const c of containers) {
    try {
      const ledger = JSON.parse(c.labels[LABEL_LEDGER] ?? "") as Ledger;
      if (ledger.seq > best.seq) best = ledger;
    } catch {
      // a damaged record is ignored; the newest readable one stands
    }
  }
  return best;
}

/**
 * Appends entries. The new record is a new container (seq + 1) created before the old ones
 * are removed, so a crash in between leaves two records and the newer one wins.
 * Callers hold the project lock.
 */
export async function appendLedger(
  engine: Engine,
  project: string,
  entries: Readonly<Record<string, LedgerEntry>>,
  configs: Readonly<Record<string, RecordedConfig>> = {},
): Promise<Ledger> {
  const records = await ledgerContainers(engine, project);
  const current = newestRecord(records);
  const services: Record<string, readonly LedgerEntry[]> = { ...current.services };
  const kept: Record<string, Readonly<Record<string, RecordedConfig>>> = { ...current.configs };
  for (const [service, entry] of Object.entries(entries)) {
    const list = [...(services[service] ?? []), entry].slice(-LEDGER_HISTORY_PER_SERVICE);
    services[service] = list;
    // the configurations a kept completed entry names, and no other: rollback can go only there
    const named = { ...kept[service], ...(entry.specHash !== undefined && configs[service] !== undefined ? { [entry.specHash]: configs[service] } : {}) };
    const wanted = new Set(list.filter((e) => e.outcome === "completed" && e.specHash !== undefined).map((e) => e.specHash));
    kept[service] = Object.fromEntries(Object.entries(named).filter(([hash]) => wanted.has(hash)));
  }
  const next: Ledger = { seq: current.seq + 1, services, configs: kept };
  const created = await createStateContainer(engine, {
    name: ledgerName(project, next.seq),
    cmd: ["reroll-ledger"],
    labels: { [LABEL_PROJECT]: project, [LABEL_LEDGER]: JSON.stringify(next) },
  });
  if ("conflict" in created) throw new Error(`the ledger record ${ledgerName(project, next.seq)} already exists`);
  // the records read above are all there are: every writer holds the project lock
  await Promise.all(records.map((c) => engine.removeContainer(c.id, { force: true })));
  return next;
}

/** The revision the last completed rollout of a service put in place, and the one before it. */
export function completedRevisions(ledger: Ledger, service: string): number[] {
  const seen: number[] = [];
  for (const entry of [...(ledger.services[service] ?? [])].reverse()) {
    if (entry.outcome === "completed" && !seen.includes(entry.revision)) seen.push(entry.revision);
  }
  return seen;
}

/** A place `rollback` can go: a revision, as one completed rollout configured it. */
export interface Step {
  readonly revision: number;
  readonly specHash?: string;
}

/** The same step: one revision and configuration (a record without the hash matches any). */
function sameStep(a: Step, b: Step): boolean {
  return a.revision === b.revision && (a.specHash === undefined || b.specHash === undefined || a.specHash === b.specHash);
}

/**
 * The steps `rollback` goes back through, oldest first; the last is the one in place. Every
 * completed rollout puts its step on top, a new configuration of the same revision too; a
 * completed rollback takes off what lay above the step it went back to. So two rollbacks in
 * a row go back two steps, as undo does, and never forward to the step the first one left
 * (Kubernetes' `rollout undo` toggles between the last two, which at 3 a.m. means rolling
 * the bad one out again).
 */
export function rollbackStack(ledger: Ledger, service: string): Step[] {
  const stack: Step[] = [];
  for (const entry of ledger.services[service] ?? []) {
    if (entry.outcome !== "completed") continue;
    const step: Step = { revision: entry.revision, ...(entry.specHash === undefined ? {} : { specHash: entry.specHash }) };
    const at = stack.findLastIndex((s) => sameStep(s, step));
    if (entry.by === "rollback" && at >= 0) stack.length = at + 1;
    else if (stack.length === 0 || !sameStep(stack.at(-1)!, step)) stack.push(step);
  }
  return stack;
}

/** The configuration a step ran with, when the ledger kept it. */
export function recordedConfig(ledger: Ledger, service: string, step: Step): RecordedConfig | undefined {
  return step.specHash === undefined ? undefined : ledger.configs?.[service]?.[step.specHash];
}
