// reroll as a library, from TypeScript: the same operations as the CLI, as typed functions.
// A deploy script of your own: load the Compose file, roll with traffic verification, print
// what happened, and decide the exit code. Typechecked in CI; a test runs deploy() against
// examples/web.
//
//   npm run build && node --experimental-strip-types examples/library-usage.ts   (Node ≥ 22.6)
//   or import { deploy } from it in your own code.
import { createDockerEngine, dockerConnectionFromEnv, history, isRerollError, loadSpec, status, up, type RerollEvent, type VerifyReport } from "reroll";

export interface DeployOutcome {
  readonly ok: boolean;
  /** the revision each service runs now */
  readonly running: Readonly<Record<string, number | undefined>>;
  readonly verify: readonly VerifyReport[];
  /** one line per event, as a log would keep them */
  readonly log: readonly string[];
  readonly error?: string;
}

export async function deploy(dir: string, options: { project?: string; bump?: string; env?: Record<string, string | undefined> } = {}): Promise<DeployOutcome> {
  const env = options.env ?? process.env;
  const spec = await loadSpec({ cwd: dir, env, ...(options.project === undefined ? {} : { project: options.project }) });
  const engine = await createDockerEngine(dockerConnectionFromEnv(env));
  const log: string[] = [];
  const onEvent = (event: RerollEvent): void => {
    if (event.type === "replica-failed") log.push(`${event.name} failed: ${event.message}`);
    else if (event.type === "rollout-done") log.push(`${event.service}: ${event.outcome} r${event.revision} in ${event.durationMs} ms`);
    else if (event.type === "verify-report") log.push(`${event.service}: ${event.report.sent} requests, ${event.report.failed} failed`);
  };
  let verify: readonly VerifyReport[] = [];
  let error: string | undefined;
  try {
    const result = await up(spec, engine, { onEvent, verify: { path: "/" }, ...(options.bump === undefined ? {} : { bump: options.bump }) });
    verify = result.verify ?? [];
  } catch (caught) {
    // a failed rollout has already put the previous revision back (error.kind "failed")
    if (!isRerollError(caught)) throw caught;
    error = `${caught.code}: ${caught.message}`;
  }
  const now = await status(spec, engine);
  const running = Object.fromEntries(now.services.map((s) => [s.service, s.current]));
  for (const s of now.services) {
    const revisions = await history(spec, engine, s.service);
    log.push(`${s.service}: ${revisions.length} revision(s) kept, current r${s.current ?? "?"}`);
  }
  return { ok: error === undefined && verify.every((r) => r.failed === 0), running, verify, log, ...(error === undefined ? {} : { error }) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outcome = await deploy(process.argv[2] ?? process.cwd(), { ...(process.argv[3] === undefined ? {} : { bump: process.argv[3] }) });
  for (const line of outcome.log) console.log(line);
  if (outcome.error !== undefined) console.error(outcome.error);
  process.exitCode = outcome.ok ? 0 : 1;
}
