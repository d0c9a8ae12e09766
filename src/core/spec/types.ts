/**
 * The resolved spec: a Compose file after `.env`, interpolation and validation, with every
 * relative path made absolute and every default applied. Durations are milliseconds.
 */

export interface Spec {
  readonly project: string;
  /** absolute path of the Compose file */
  readonly file: string;
  /** directory relative paths resolve against */
  readonly dir: string;
  /** services in file order */
  readonly services: readonly ServiceSpec[];
  readonly volumes: Readonly<Record<string, VolumeSpec>>;
  readonly reroll: RerollSettings;
}

export interface RerollSettings {
  /** revision images kept per service (`x-reroll.history`) */
  readonly history: number;
}

export const DEFAULT_HISTORY = 5;

export interface BuildSpec {
  /** absolute context directory */
  readonly context: string;
  /** absolute path of the Dockerfile */
  readonly dockerfile: string;
  readonly args: Readonly<Record<string, string>>;
  readonly target: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PortSpec {
  /** host address to publish on ("" = all interfaces) */
  readonly hostIp: string;
  readonly published: number | undefined;
  readonly target: number;
  readonly protocol: "tcp" | "udp";
}

export type VolumeMount =
  | { readonly type: "volume"; readonly source: string; readonly target: string; readonly readOnly: boolean; readonly nocopy: boolean }
  | { readonly type: "anonymous"; readonly target: string; readonly readOnly: boolean }
  | { readonly type: "bind"; readonly source: string; readonly target: string; readonly readOnly: boolean; readonly createHostPath: boolean }
  | { readonly type: "tmpfs"; readonly target: string };

export interface HealthcheckSpec {
  /** Docker's form: ["CMD", …], ["CMD-SHELL", "…"] or ["NONE"] */
  readonly test: readonly string[] | undefined;
  readonly intervalMs: number | undefined;
  readonly timeoutMs: number | undefined;
  readonly retries: number | undefined;
  readonly startPeriodMs: number | undefined;
  readonly startIntervalMs: number | undefined;
  readonly disable: boolean;
}

export type FailureAction = "rollback" | "pause" | "continue";
export type UpdateOrder = "start-first" | "stop-first";

export interface UpdateConfig {
  /** replicas replaced at once; 0 means all */
  readonly parallelism: number;
  readonly delayMs: number;
  readonly failureAction: FailureAction;
  readonly monitorMs: number;
  readonly maxFailureRatio: number;
  readonly order: UpdateOrder;
}

/** reroll's defaults differ from Swarm's where Swarm's are unsafe for this job (docs/architecture.md). */
export const DEFAULT_UPDATE_CONFIG: UpdateConfig = {
  parallelism: 1,
  delayMs: 0,
  failureAction: "rollback",
  monitorMs: 5_000,
  maxFailureRatio: 0,
  order: "start-first",
};

export const DEFAULT_ROLLBACK_CONFIG: UpdateConfig = { ...DEFAULT_UPDATE_CONFIG, failureAction: "pause" };

export interface DeploySpec {
  readonly replicas: number;
  readonly update: UpdateConfig;
  readonly rollback: UpdateConfig;
  readonly resources: { readonly cpus: number | undefined; readonly memoryBytes: number | undefined };
}

export interface ProxySettings {
  readonly mode: "http" | "tcp";
  readonly healthcheckPath: string | undefined;
  readonly healthcheckIntervalMs: number;
  readonly healthcheckTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** the door's image: HAProxy's official one unless the file names another */
  readonly image: string;
  /** clients (other proxies in front) whose X-Forwarded-Proto/-Host are kept: addresses or CIDRs */
  readonly trustedProxies: readonly string[];
  /** TLS terminated at the door, when the file asks for it */
  readonly tls: ProxyTls | undefined;
  /** HAProxy's threads in the door (its `nbthread`) */
  readonly threads: number;
}

export interface ProxyTls {
  /** absolute path of a PEM file with the certificate (chain) and its private key */
  readonly certificate: string;
  /** published ports that answer plain HTTP with a redirect to HTTPS instead of TLS */
  readonly redirectFrom: readonly number[];
}

export interface ServiceSpec {
  readonly name: string;
  /** the image name reroll tags builds with: `image:` or `<project>-<service>` */
  readonly image: string;
  /** whether `image:` was written (an image to use as is when there is no build) */
  readonly imageDeclared: boolean;
  readonly build: BuildSpec | undefined;
  readonly command: readonly string[] | undefined;
  readonly entrypoint: readonly string[] | undefined;
  readonly environment: Readonly<Record<string, string>>;
  readonly ports: readonly PortSpec[];
  readonly expose: readonly string[];
  readonly volumes: readonly VolumeMount[];
  readonly healthcheck: HealthcheckSpec | undefined;
  readonly stopGracePeriodMs: number | undefined;
  readonly stopSignal: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly user: string | undefined;
  readonly readOnly: boolean;
  readonly tmpfs: readonly string[];
  readonly restart: string;
  readonly workingDir: string | undefined;
  /** `logging:` as the daemon takes it (LogConfig); undefined keeps the daemon's default */
  readonly logging: { readonly driver: string | undefined; readonly options: Readonly<Record<string, string>> } | undefined;
  /** `extra_hosts:` as "host:ip" entries; undefined when the file has none */
  readonly extraHosts: readonly string[] | undefined;
  readonly init: boolean | undefined;
  readonly capAdd: readonly string[] | undefined;
  readonly capDrop: readonly string[] | undefined;
  readonly dependsOn: readonly string[];
  readonly deploy: DeploySpec;
  readonly allowDataLoss: boolean;
  readonly proxy: ProxySettings;
}

export interface VolumeSpec {
  readonly name: string;
  readonly external: boolean;
  readonly driver: string | undefined;
  readonly driverOpts: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
}
