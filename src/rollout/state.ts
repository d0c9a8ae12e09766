import { isRerollError } from "../core/errors.js";
import { LABEL_PROJECT } from "../core/labels.js";
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
}

export interface Ledger {
  readonly seq: number;
  readonly services: Readonly<Record<string, readonly LedgerEntry[]>>;
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
export async function appendLedger(engine: Engine, project: string, entries: Readonly<Record<string, LedgerEntry>>): Promise<Ledger> {
  const records = await ledgerContainers(engine, project);
  const current = newestRecord(records);
  const services: Record<string, readonly LedgerEntry[]> = { ...current.services };
  for (const [service, entry] of Object.entries(entries)) {
    services[service] = [...(services[service] ?? []), entry].slice(-LEDGER_HISTORY_PER_SERVICE);
  }
  const next: Ledger = { seq: current.seq + 1, services };
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

/**
 * The revisions `rollback` steps back through, oldest first; the last is the one in place.
 * Every completed rollout puts its revision on top; a completed rollback takes off what lay
 * above the revision it went back to. So two rollbacks in a row go back two revisions, as
 * undo does, and never forward to the revision the first one left (Kubernetes' `rollout
 * undo` toggles between the last two, which at 3 a.m. means rolling the bad one out again).
 */
export function rollbackStack(ledger: Ledger, service: string): number[] {
  const stack: number[] = [];
  for (const entry of ledger.services[service] ?? []) {
    if (entry.outcome !== "completed") continue;
    const at = stack.lastIndexOf(entry.revision);
    if (entry.by === "rollback" && at >= 0) stack.length = at + 1;
    else if (stack.at(-1) !== entry.revision) stack.push(entry.revision);
  }
  return stack;
}
