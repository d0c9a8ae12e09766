import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runReroll, spawnRerollEvents, type CliRun } from "./cli.js";
import { docker, testName } from "./docker.js";

/**
 * A small web service for rollout tests: busybox httpd, a healthcheck on /health, a start
 * script whose behaviour is chosen per version.
 */
export type Behaviour =
  | "serve"
  | "graceful"
  | "exit-at-start"
  | "never-healthy"
  | "die-in-monitor"
  | "first-replica-only"
  | "slow-first"
  | "crash-loop-when-marked"
  | "refuse-when-marked"
  | "mode";

const START_SCRIPTS: Readonly<Record<Behaviour, string>> = {
  serve: 'echo "$VERSION started" >> /data/log 2>/dev/null; exec httpd -f -p 80 -h /www',
  // serves, and on SIGTERM writes its last line to the volume before it exits (needs the volume)
  graceful: 'trap \'echo "$VERSION stopped gracefully" >> /data/log; exit 0\' TERM; echo "$VERSION started" >> /data/log; httpd -p 80 -h /www; while :; do sleep 0.2; done',
  "exit-at-start": "echo fatal: DATABASE_URL is not set >&2; exit 3",
  "never-healthy": "rm -f /www/health; exec httpd -f -p 80 -h /www",
  "die-in-monitor": "httpd -p 80 -h /www; sleep 2; echo crashed after start >&2; exit 4",
  // the first replica of this version to start serves (and on SIGTERM writes its last line, as
  // `graceful` does); later ones die in their monitor window (needs the volume)
  "first-replica-only":
    'if mkdir "/data/first-$VERSION" 2>/dev/null; then trap \'echo "$VERSION stopped gracefully" >> /data/log; exit 0\' TERM; httpd -p 80 -h /www; while :; do sleep 0.2; done; fi; httpd -p 80 -h /www; sleep 2; echo not the first >&2; exit 5',
  // the first replica of this version to start takes 8 s before it serves; the others serve at once (needs the volume and a start_period)
  "slow-first": 'if mkdir "/data/slow-$VERSION" 2>/dev/null; then sleep 8; fi; exec httpd -f -p 80 -h /www',
  // serves until /crash exists, then exits; from then on (a file in its own filesystem, which
  // a restart keeps) it dies 6 s after every start: a crash loop under the restart policy
  "crash-loop-when-marked":
    "httpd -p 80 -h /www; if [ -e /crash ]; then sleep 6; echo crashed again >&2; exit 6; fi; while [ ! -e /crash ]; do sleep 0.2; done; exit 6",
  // serves, unless /data/refuse exists when it starts (needs the volume); /data/once lets one more start serve
  "refuse-when-marked": 'if [ -e /data/once ]; then rm -f /data/once; elif [ -e /data/refuse ]; then echo refusing to start >&2; exit 7; fi; exec httpd -f -p 80 -h /www',
  // serves in the MODE its environment names, and exits at start when that is "broken"
  mode: 'if [ "$MODE" = broken ]; then echo "MODE=broken is not a mode" >&2; exit 3; fi; echo "$MODE" > /www/mode; exec httpd -f -p 80 -h /www',
};

export interface FixtureOptions {
  readonly replicas?: number;
  readonly parallelism?: number;
  readonly monitor?: string;
  readonly order?: "start-first" | "stop-first";
  readonly failureAction?: "rollback" | "pause" | "continue";
  readonly maxFailureRatio?: number;
  readonly volume?: boolean;
  /** the healthcheck's start_period: failures inside it do not count */
  readonly startPeriod?: string;
  readonly extra?: string;
}

export interface Fixture {
  readonly dir: string;
  readonly project: string;
  setVersion(version: string, behaviour?: Behaviour): Promise<void>;
  reroll(args: readonly string[], env?: Record<string, string>): Promise<CliRun>;
  /** this project's service containers (not the lock or ledger) */
  containers(): Promise<{ name: string; revision: number; state: string; health: string | undefined; id: string }[]>;
}

export async function rolloutFixture(root: string, label: string, options: FixtureOptions = {}): Promise<Fixture> {
  const project = testName(label);
  const dir = join(root, project);
  await mkdir(join(dir, "web", "www"), { recursive: true });
  const compose = [
    "services:",
    "  web:",
    "    build: ./web",
    "    stop_grace_period: 1s",
    "    healthcheck:",
    '      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/health"]',
    "      interval: 500ms",
    "      timeout: 3s",
    "      retries: 2",
    ...(options.startPeriod === undefined ? [] : [`      start_period: ${options.startPeriod}`]),
    "    deploy:",
    `      replicas: ${options.replicas ?? 3}`,
    "      update_config:",
    `        parallelism: ${options.parallelism ?? 1}`,
    `        monitor: ${options.monitor ?? "1s"}`,
    `        order: ${options.order ?? "start-first"}`,
    ...(options.failureAction === undefined ? [] : [`        failure_action: ${options.failureAction}`]),
    ...(options.maxFailureRatio === undefined ? [] : [`        max_failure_ratio: ${options.maxFailureRatio}`]),
    "      rollback_config:",
    "        monitor: 500ms",
    ...(options.volume === true ? ["    volumes: ['data:/data']"] : []),
    ...(options.extra === undefined ? [] : [options.extra]),
    ...(options.volume === true ? ["volumes:", "  data: {}"] : []),
    "",
  ].join("\n");
  await writeFile(join(dir, "compose.yaml"), compose);
  await writeFile(join(dir, "web", "Dockerfile"), "FROM reroll-local/busybox:latest\nCOPY www /www\nCOPY start.sh /start.sh\nCMD [\"sh\", \"/start.sh\"]\n");

  return {
    dir,
    project,
    async setVersion(version, behaviour = "serve") {
      await writeFile(join(dir, "web", "www", "index.html"), `${version}\n`);
      await writeFile(join(dir, "web", "www", "health"), "ok\n");
      await writeFile(join(dir, "web", "start.sh"), `VERSION=${version}\n${START_SCRIPTS[behaviour]}\n`);
    },
    reroll: (args, env) => runReroll([...args, "-p", project], { cwd: dir, ...(env === undefined ? {} : { env }) }),
    async containers() {
      const list = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${project}`, "dev.reroll.slot"] }) });
      return list.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? "").replace(/^\//, ""),
        revision: Number(c.Labels["dev.reroll.revision"]),
        state: c.State,
        health: /\((healthy|unhealthy)\)/.exec(c.Status)?.[1] ?? (/health: starting/.test(c.Status) ? "starting" : undefined),
      }));
    },
  };
}

/** Starts `reroll` and kills it with SIGKILL as soon as an NDJSON event matches `when`. */
export async function killReroll(fixture: Fixture, args: readonly string[], when: (event: Record<string, unknown>) => boolean): Promise<{ killed: boolean; output: string }> {
  let killed = false;
  const run = await spawnRerollEvents([...args, "-p", fixture.project], {
    cwd: fixture.dir,
    onEvent: (event, kill) => {
      if (!killed && when(event)) {
        killed = true;
        kill();
      }
    },
  });
  return { killed, output: run.output };
}
