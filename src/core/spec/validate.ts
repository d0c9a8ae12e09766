import { isAbsolute, join, normalize, resolve } from "node:path";
import { RerollError } from "../errors.js";
import { tryParseImageRef } from "../image-ref.js";
import { parseBytes, parseDuration, shellWords } from "./units.js";
import {
  DEFAULT_HISTORY,
  DEFAULT_ROLLBACK_CONFIG,
  DEFAULT_UPDATE_CONFIG,
  type BuildSpec,
  type DeploySpec,
  type HealthcheckSpec,
  type PortSpec,
  type ProxySettings,
  type ProxyTls,
  type ServiceSpec,
  type Spec,
  type UpdateConfig,
  type VolumeMount,
  type VolumeSpec,
} from "./types.js";

/**
 * Turns a parsed, interpolated Compose document into a Spec, reporting every problem at
 * once with its path (`services.web.deploy.replicas: …`). A key reroll does not support is
 * a problem, unless ignoring it is harmless (`version`, `x-*` extensions).
 */

export interface ValidateContext {
  readonly file: string;
  readonly dir: string;
  /** the project name from -p or the environment, if given */
  readonly project: string | undefined;
  /** variables for `environment: [KEY]` and `build.args: [KEY]` without a value */
  readonly vars: Readonly<Record<string, string | undefined>>;
  /** reads an env_file; returns its variables or a reason it could not */
  readonly readEnvFile: (path: string) => Record<string, string> | string;
  readonly home: string | undefined;
}

export const DEFAULT_PROXY_HEALTHCHECK_INTERVAL_MS = 100;
/** the door: HAProxy's official image, its long-term-support line */
export const DEFAULT_DOOR_IMAGE = "haproxy:lts";
/**
 * One HAProxy thread by default: the door shares its host with the replicas it serves, and
 * measured here two threads spent a fifth more CPU per request than one (they synchronise
 * on the server list and connection pools) for less throughput. One thread forwards tens of
 * thousands of requests a second; a door that needs more (much TLS) says `threads:`.
 */
export const DEFAULT_DOOR_THREADS = 1;
export const MAX_DOOR_THREADS = 64;
export const DEFAULT_PROXY_HEALTHCHECK_TIMEOUT_MS = 1_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

const PROJECT_NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** What is wrong with a project name, or undefined when Docker and Compose accept it. */
export function projectNameProblem(name: string): string | undefined {
  return PROJECT_NAME_RE.test(name) ? undefined : `"${name}" is not a valid project name (lowercase letters, digits, '-' and '_', starting with a letter or digit)`;
}
const SERVICE_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

const TOP_LEVEL_KEYS = new Set(["name", "services", "volumes", "version"]);
const SERVICE_KEYS = new Set([
  "build", "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes",
  "healthcheck", "stop_grace_period", "stop_signal", "labels", "user", "read_only", "tmpfs", "restart",
  "working_dir", "deploy", "depends_on", "logging", "extra_hosts", "init", "cap_add", "cap_drop",
]);
const HINTS: Readonly<Record<string, string>> = {
  container_name: "a fixed name cannot be shared by replicas; reroll names containers itself",
  networks: "reroll attaches every service to the project's own network",
  network_mode: "reroll attaches every service to the project's own network",
  privileged: "not supported by reroll",
};

type Obj = Record<string, unknown>;

function isObject(value: unknown): value is Obj {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

class Checker {
  readonly problems: string[] = [];

  add(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }

  keys(value: Obj, path: string, allowed: ReadonlySet<string>, hints: Readonly<Record<string, string>> = {}): void {
    for (const key of Object.keys(value)) {
      if (allowed.has(key) || key.startsWith("x-")) continue;
      this.add(`${path}.${key}`, hints[key] ?? HINTS[key] ?? "not supported by reroll (remove it, or see README for the keys reroll honours)");
    }
  }

  object(value: unknown, path: string): Obj | undefined {
    if (value === undefined || value === null) return undefined;
    if (!isObject(value)) {
      this.add(path, `must be a mapping, got ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  string(value: unknown, path: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    this.add(path, `must be a string, got ${describe(value)}`);
    return undefined;
  }

  boolean(value: unknown, path: string): boolean | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "boolean") return value;
    if (value === "true" || value === "false") return value === "true";
    this.add(path, `must be true or false, got ${describe(value)}`);
    return undefined;
  }

  integer(value: unknown, path: string, min: number): number | undefined {
    if (value === undefined || value === null) return undefined;
    const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n) || n < min) {
      this.add(path, `must be a whole number ≥ ${min}, got ${describe(value)}`);
      return undefined;
    }
    return n;
  }

  duration(value: unknown, path: string): number | undefined {
    if (value === undefined || value === null) return undefined;
    const ms = parseDuration(value);
    if (ms === undefined) this.add(path, `must be a duration such as 10s, 1m30s or 500ms, got ${describe(value)}`);
    return ms;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string" && (allowed as readonly string[]).includes(value)) return value as T;
    this.add(path, `must be one of ${allowed.join(", ")}, got ${describe(value)}`);
    return undefined;
  }

  /** a mapping or a list of KEY=VALUE; KEY alone takes its value from `vars` (or is dropped) */
  dictionary(value: unknown, path: string, vars: Readonly<Record<string, string | undefined>>): Record<string, string> {
    const out: Record<string, string> = {};
    if (value === undefined || value === null) return out;
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        const text = this.string(item, `${path}[${i}]`);
        if (text === undefined) return;
        const eq = text.indexOf("=");
        if (eq === -1) {
          const fromVars = vars[text];
          if (fromVars !== undefined) out[text] = fromVars;
        } else out[text.slice(0, eq)] = text.slice(eq + 1);
      });
      return out;
    }
    if (isObject(value)) {
      for (const [key, v] of Object.entries(value)) {
        if (v === null || v === undefined) {
          const fromVars = vars[key];
          if (fromVars !== undefined) out[key] = fromVars;
        } else {
          const text = this.string(v, `${path}.${key}`);
          if (text !== undefined) out[key] = text;
        }
      }
      return out;
    }
    this.add(path, `must be a mapping or a list of KEY=VALUE, got ${describe(value)}`);
    return out;
  }

  stringList(value: unknown, path: string): string[] {
    if (value === undefined || value === null) return [];
    if (typeof value === "string") return [value];
    if (Array.isArray(value)) {
      return value.flatMap((item, i) => {
        const s = this.string(item, `${path}[${i}]`);
        return s === undefined ? [] : [s];
      });
    }
    this.add(path, `must be a string or a list of strings, got ${describe(value)}`);
    return [];
  }

  command(value: unknown, path: string): string[] | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") {
      const words = shellWords(value);
      if (words === undefined) this.add(path, `has an unterminated quote: ${value}`);
      return words;
    }
    if (Array.isArray(value)) return this.stringList(value, path);
    this.add(path, `must be a string or a list of strings, got ${describe(value)}`);
    return undefined;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return JSON.stringify(value);
}

export function normaliseProjectName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, "").replace(/^[^a-z0-9]+/, "");
}

function expandHome(path: string, home: string | undefined): string {
  return home !== undefined && (path === "~" || path.startsWith("~/")) ? join(home, path.slice(1)) : path;
}

export function validateSpec(doc: unknown, ctx: ValidateContext): Spec {
  const c = new Checker();
  const top = isObject(doc) ? doc : undefined;
  if (top === undefined) {
    throw new RerollError("E_SPEC_INVALID", `${ctx.file} is not a Compose file: its top level must be a mapping.`, {
      hint: "A Compose file starts with `services:`.",
    });
  }
  c.keys(top, "(top level)", TOP_LEVEL_KEYS);

  const declaredName = c.string(top["name"], "name");
  let project = ctx.project ?? declaredName ?? normaliseProjectName(ctx.dir.split("/").pop() ?? "");
  if (ctx.project === undefined && declaredName === undefined) project = normaliseProjectName(project);
  const nameProblem = projectNameProblem(project);
  if (nameProblem !== undefined) c.add(ctx.project !== undefined ? "--project" : "name", nameProblem);

  const reroll = c.object(top["x-reroll"], "x-reroll") ?? {};
  c.keys(reroll, "x-reroll", new Set(["history"]), {
    proxy: "set per service: move it under services.NAME.x-reroll.proxy",
    allow_data_loss: "set per service: move it under services.NAME.x-reroll.allow_data_loss",
  });
  const history = c.integer(reroll["history"], "x-reroll.history", 1) ?? DEFAULT_HISTORY;

  const volumes: Record<string, VolumeSpec> = {};
  const topVolumes = c.object(top["volumes"], "volumes") ?? {};
  for (const [name, raw] of Object.entries(topVolumes)) {
    const path = `volumes.${name}`;
    const v = raw === null ? {} : c.object(raw, path);
    if (v === undefined) continue;
    c.keys(v, path, new Set(["driver", "driver_opts", "external", "labels", "name"]));
    const external = c.boolean(v["external"], `${path}.external`) ?? false;
    volumes[name] = {
      // as in Compose: a volume reroll creates is the project's; an external one is named by its key
      name: c.string(v["name"], `${path}.name`) ?? (external ? name : `${project}_${name}`),
      external,
      driver: c.string(v["driver"], `${path}.driver`),
      driverOpts: c.dictionary(v["driver_opts"], `${path}.driver_opts`, {}),
      labels: c.dictionary(v["labels"], `${path}.labels`, {}),
    };
  }

  const rawServices = c.object(top["services"], "services");
  if (rawServices === undefined || Object.keys(rawServices).length === 0) c.add("services", "at least one service is required");
  const services: ServiceSpec[] = [];
  for (const [name, raw] of Object.entries(rawServices ?? {})) {
    const path = `services.${name}`;
    if (!SERVICE_NAME_RE.test(name)) c.add(path, "service names use letters, digits, '.', '-' and '_'");
    const s = raw === null ? {} : c.object(raw, path);
    if (s === undefined) continue;
    const service = validateService(c, name, s, path, project, ctx, volumes);
    if (service !== undefined) services.push(service);
  }
  const names = new Set(services.map((s) => s.name));
  for (const service of services) {
    for (const dep of service.dependsOn) {
      if (!names.has(dep)) c.add(`services.${service.name}.depends_on`, `names "${dep}", which is not a service in this file`);
    }
  }

  if (c.problems.length > 0) {
    throw new RerollError(
      "E_SPEC_INVALID",
      `${ctx.file} has ${c.problems.length === 1 ? "a problem" : `${c.problems.length} problems`}; nothing was changed.`,
      { problems: c.problems, hint: "Fix each key listed above; README lists the Compose keys reroll honours." },
    );
  }
  return { project, file: ctx.file, dir: ctx.dir, services, volumes, reroll: { history } };
}

function validateService(
  c: Checker,
  name: string,
  s: Obj,
  path: string,
  project: string,
  ctx: ValidateContext,
  volumes: Readonly<Record<string, VolumeSpec>>,
): ServiceSpec | undefined {
  c.keys(s, path, SERVICE_KEYS);
  const declaredImage = c.string(s["image"], `${path}.image`);
  if (declaredImage !== undefined) {
    const ref = tryParseImageRef(declaredImage);
    if (typeof ref === "string") c.add(`${path}.image`, ref);
  }
  const build = validateBuild(c, s["build"], `${path}.build`, ctx);
  if (build === undefined && declaredImage === undefined && s["build"] === undefined) {
    c.add(path, "needs `build:` or `image:`");
  }

  let environment: Record<string, string> = {};
  for (const [i, envFile] of envFiles(c, s["env_file"], `${path}.env_file`).entries()) {
    const file = resolve(ctx.dir, envFile.path);
    const read = ctx.readEnvFile(file);
    if (typeof read === "string") {
      if (envFile.required) c.add(`${path}.env_file[${i}]`, read);
    } else environment = { ...environment, ...read };
  }
  environment = { ...environment, ...c.dictionary(s["environment"], `${path}.environment`, ctx.vars) };

  const ports = validatePorts(c, s["ports"], `${path}.ports`);
  const expose = c.stringList(
    Array.isArray(s["expose"]) ? s["expose"].map((e) => (typeof e === "number" ? String(e) : e)) : s["expose"],
    `${path}.expose`,
  );
  const mounts = validateVolumes(c, s["volumes"], `${path}.volumes`, ctx, volumes);
  const healthcheck = validateHealthcheck(c, s["healthcheck"], `${path}.healthcheck`);
  const deploy = validateDeploy(c, s["deploy"], `${path}.deploy`);

  const restart = c.string(s["restart"], `${path}.restart`) ?? "unless-stopped";
  if (!/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(restart)) {
    c.add(`${path}.restart`, `must be no, always, unless-stopped or on-failure[:N], got "${restart}"`);
  }
  const dependsOn = Array.isArray(s["depends_on"])
    ? c.stringList(s["depends_on"], `${path}.depends_on`)
    : Object.keys(c.object(s["depends_on"], `${path}.depends_on`) ?? {});

  const x = c.object(s["x-reroll"], `${path}.x-reroll`) ?? {};
  c.keys(x, `${path}.x-reroll`, new Set(["allow_data_loss", "proxy"]), {
    history: "set once for the project: move it to the top level of the file (x-reroll: { history: N }), which keeps N revisions of every service",
  });
  const proxy = validateProxy(c, x["proxy"], `${path}.x-reroll.proxy`, ctx);
  if (proxy.tls !== undefined) {
    const published = new Set(ports.map((p) => p.published));
    for (const [i, port] of proxy.tls.redirectFrom.entries()) {
      if (!published.has(port)) c.add(`${path}.x-reroll.proxy.tls.redirect_from[${i}]`, `${port} is not one of the service's published ports`);
    }
    if (ports.length > 0 && ports.every((p) => p.published !== undefined && proxy.tls!.redirectFrom.includes(p.published))) {
      c.add(`${path}.x-reroll.proxy.tls.redirect_from`, "leaves no port to serve HTTPS on: list only the plain ports that redirect");
    }
  }

  return {
    name,
    image: declaredImage ?? `${project}-${name}`,
    imageDeclared: declaredImage !== undefined,
    build,
    command: c.command(s["command"], `${path}.command`),
    entrypoint: c.command(s["entrypoint"], `${path}.entrypoint`),
    environment,
    ports,
    expose,
    volumes: mounts,
    healthcheck,
    stopGracePeriodMs: c.duration(s["stop_grace_period"], `${path}.stop_grace_period`),
    stopSignal: c.string(s["stop_signal"], `${path}.stop_signal`),
    labels: c.dictionary(s["labels"], `${path}.labels`, {}),
    user: c.string(s["user"], `${path}.user`),
    readOnly: c.boolean(s["read_only"], `${path}.read_only`) ?? false,
    tmpfs: c.stringList(s["tmpfs"], `${path}.tmpfs`),
    restart,
    workingDir: c.string(s["working_dir"], `${path}.working_dir`),
    logging: validateLogging(c, s["logging"], `${path}.logging`),
    extraHosts: given(s["extra_hosts"], (v) => extraHosts(c, v, `${path}.extra_hosts`)),
    init: c.boolean(s["init"], `${path}.init`),
    capAdd: given(s["cap_add"], (v) => c.stringList(v, `${path}.cap_add`)),
    capDrop: given(s["cap_drop"], (v) => c.stringList(v, `${path}.cap_drop`)),
    dependsOn,
    deploy,
    allowDataLoss: c.boolean(x["allow_data_loss"], `${path}.x-reroll.allow_data_loss`) ?? false,
    proxy,
  };
}

/** undefined for a key the file leaves out (or sets to null), so that it adds nothing to a replica's hash */
function given<T>(value: unknown, read: (value: unknown) => T): T | undefined {
  return value === undefined || value === null ? undefined : read(value);
}

function validateLogging(c: Checker, value: unknown, path: string): ServiceSpec["logging"] {
  const o = c.object(value, path);
  if (o === undefined) return undefined;
  c.keys(o, path, new Set(["driver", "options"]));
  const options = c.object(o["options"], `${path}.options`) ?? {};
  return { driver: c.string(o["driver"], `${path}.driver`), options: c.dictionary(options, `${path}.options`, {}) };
}

/**
 * `extra_hosts:` as Docker takes it, "host:ip". Compose accepts a list of "host:ip" or
 * "host=ip" (the form an IPv6 address needs, also written "[::1]"), or a mapping.
 */
function extraHosts(c: Checker, value: unknown, path: string): string[] {
  const entry = (host: string, ip: string, at: string): string[] => {
    const address = ip.trim().replace(/^\[(.*)\]$/, "$1");
    if (host.trim() === "" || address === "") {
      c.add(at, `must be HOST:IP or HOST=IP, got "${host}${ip === "" ? "" : `:${ip}`}"`);
      return [];
    }
    return [`${host.trim()}:${address}`];
  };
  if (isObject(value)) {
    return Object.entries(value).flatMap(([host, ip]) => {
      const text = c.string(ip, `${path}.${host}`);
      return text === undefined ? [] : entry(host, text, `${path}.${host}`);
    });
  }
  if (!Array.isArray(value) && typeof value !== "string") {
    c.add(path, `must be a list of HOST:IP or a mapping of host to address, got ${describe(value)}`);
    return [];
  }
  return c.stringList(value, path).flatMap((text, i) => {
    const eq = text.indexOf("=");
    const colon = text.indexOf(":");
    const cut = eq !== -1 ? eq : colon;
    return cut === -1 ? entry(text, "", `${path}[${i}]`) : entry(text.slice(0, cut), text.slice(cut + 1), `${path}[${i}]`);
  });
}

function envFiles(c: Checker, value: unknown, path: string): { path: string; required: boolean }[] {
  if (value === undefined || value === null) return [];
  const items = Array.isArray(value) ? value : [value];
  return items.flatMap((item, i) => {
    if (typeof item === "string") return [{ path: item, required: true }];
    const o = c.object(item, `${path}[${i}]`);
    if (o === undefined) return [];
    const p = c.string(o["path"], `${path}[${i}].path`);
    if (p === undefined) {
      c.add(`${path}[${i}].path`, "is required");
      return [];
    }
    return [{ path: p, required: c.boolean(o["required"], `${path}[${i}].required`) ?? true }];
  });
}

function validateBuild(c: Checker, value: unknown, path: string, ctx: ValidateContext): BuildSpec | undefined {
  if (value === undefined || value === null) return undefined;
  const b: Obj | undefined = typeof value === "string" ? { context: value } : c.object(value, path);
  if (b === undefined) return undefined;
  c.keys(b, path, new Set(["context", "dockerfile", "args", "target", "labels"]));
  const contextText = c.string(b["context"], `${path}.context`) ?? ".";
  if (/^[a-z]+:\/\//.test(contextText) || contextText.startsWith("git@")) {
    c.add(`${path}.context`, "remote build contexts (URLs, git) are not supported; use a local directory");
    return undefined;
  }
  const context = resolve(ctx.dir, expandHome(contextText, ctx.home));
  const dockerfileText = c.string(b["dockerfile"], `${path}.dockerfile`) ?? "Dockerfile";
  return {
    context,
    dockerfile: isAbsolute(dockerfileText) ? normalize(dockerfileText) : resolve(context, dockerfileText),
    args: c.dictionary(b["args"], `${path}.args`, ctx.vars),
    target: c.string(b["target"], `${path}.target`),
    labels: c.dictionary(b["labels"], `${path}.labels`, {}),
  };
}

function validatePorts(c: Checker, value: unknown, path: string): PortSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    c.add(path, `must be a list, got ${describe(value)}`);
    return [];
  }
  const ports: PortSpec[] = [];
  value.forEach((item, i) => {
    const p = `${path}[${i}]`;
    if (typeof item === "number") item = String(item);
    if (typeof item === "string") {
      const match = /^(?:(\[[0-9a-fA-F:]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:(\d*):)?(\d+)(?:\/(tcp|udp))?$/.exec(item.trim());
      if (match === null) {
        c.add(p, /-/.test(item) ? `port ranges are not supported ("${item}")` : `"${item}" is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`);
        return;
      }
      // `IP::PORT` publishes on IP with a port Docker chooses
      const port = portSpec(c, p, (match[1] ?? "").replace(/^\[|\]$/g, ""), match[2] === "" ? undefined : match[2], match[3]!, match[4] ?? "tcp");
      if (port !== undefined) ports.push(port);
      return;
    }
    const o = c.object(item, p);
    if (o === undefined) return;
    c.keys(o, p, new Set(["target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"]));
    if (o["target"] === undefined) {
      c.add(`${p}.target`, "is required");
      return;
    }
    const port = portSpec(c, p, c.string(o["host_ip"], `${p}.host_ip`) ?? "", o["published"] === undefined ? undefined : String(o["published"]), String(o["target"]), c.string(o["protocol"], `${p}.protocol`) ?? "tcp");
    if (port !== undefined) ports.push(port);
  });
  return ports;
}

function portSpec(c: Checker, path: string, hostIp: string, published: string | undefined, target: string, protocol: string): PortSpec | undefined {
  const t = Number(target);
  const pub = published === undefined ? undefined : Number(published);
  if (!Number.isInteger(t) || t < 1 || t > 65535) return void c.add(path, `container port ${target} is not 1-65535`);
  if (pub !== undefined && (!Number.isInteger(pub) || pub < 1 || pub > 65535)) return void c.add(path, `host port ${published} is not 1-65535`);
  if (protocol !== "tcp" && protocol !== "udp") return void c.add(path, `protocol must be tcp or udp, got "${protocol}"`);
  return { hostIp, published: pub, target: t, protocol };
}

function validateVolumes(c: Checker, value: unknown, path: string, ctx: ValidateContext, named: Readonly<Record<string, VolumeSpec>>): VolumeMount[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    c.add(path, `must be a list, got ${describe(value)}`);
    return [];
  }
  const mounts: VolumeMount[] = [];
  value.forEach((item, i) => {
    const p = `${path}[${i}]`;
    const isPath = (s: string) => s.startsWith("/") || s.startsWith(".") || s.startsWith("~");
    if (typeof item === "string") {
      const parts = item.split(":");
      if (parts.length === 1) {
        mounts.push({ type: "anonymous", target: parts[0]!, readOnly: false });
        return;
      }
      const [source, target, mode] = parts as [string, string, string | undefined];
      if (parts.length > 3 || target === "" || !target.startsWith("/")) return void c.add(p, `"${item}" is not SOURCE:/CONTAINER_PATH[:ro|rw]`);
      const modes = (mode ?? "").split(",").filter((m) => m !== "");
      const bad = modes.find((m) => !["ro", "rw", "z", "Z", "nocopy", "cached", "delegated", "consistent"].includes(m));
      if (bad !== undefined) return void c.add(p, `unknown volume mode "${bad}"`);
      const readOnly = modes.includes("ro");
      if (isPath(source)) {
        mounts.push({ type: "bind", source: resolve(ctx.dir, expandHome(source, ctx.home)), target, readOnly, createHostPath: true });
      } else {
        if (named[source] === undefined) c.add(p, `names the volume "${source}", which is not declared under top-level volumes:`);
        mounts.push({ type: "volume", source, target, readOnly, nocopy: modes.includes("nocopy") });
      }
      return;
    }
    const o = c.object(item, p);
    if (o === undefined) return;
    c.keys(o, p, new Set(["type", "source", "target", "read_only", "volume", "bind", "tmpfs", "consistency"]));
    const type = c.oneOf(o["type"], `${p}.type`, ["volume", "bind", "tmpfs"] as const);
    const target = c.string(o["target"], `${p}.target`);
    const source = c.string(o["source"], `${p}.source`);
    const readOnly = c.boolean(o["read_only"], `${p}.read_only`) ?? false;
    if (type === undefined || target === undefined) {
      if (type === undefined && o["type"] === undefined) c.add(`${p}.type`, "is required (volume, bind or tmpfs)");
      if (target === undefined) c.add(`${p}.target`, "is required");
      return;
    }
    if (type === "tmpfs") mounts.push({ type: "tmpfs", target });
    else if (type === "bind") {
      if (source === undefined) return void c.add(`${p}.source`, "is required for a bind mount");
      const bind = c.object(o["bind"], `${p}.bind`) ?? {};
      mounts.push({ type: "bind", source: resolve(ctx.dir, expandHome(source, ctx.home)), target, readOnly, createHostPath: c.boolean(bind["create_host_path"], `${p}.bind.create_host_path`) ?? true });
    } else if (source === undefined) mounts.push({ type: "anonymous", target, readOnly });
    else {
      if (named[source] === undefined) c.add(`${p}.source`, `names the volume "${source}", which is not declared under top-level volumes:`);
      const volume = c.object(o["volume"], `${p}.volume`) ?? {};
      mounts.push({ type: "volume", source, target, readOnly, nocopy: c.boolean(volume["nocopy"], `${p}.volume.nocopy`) ?? false });
    }
  });
  return mounts;
}

function validateHealthcheck(c: Checker, value: unknown, path: string): HealthcheckSpec | undefined {
  const h = c.object(value, path);
  if (h === undefined) return undefined;
  c.keys(h, path, new Set(["test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"]));
  let test: string[] | undefined;
  const rawTest = h["test"];
  if (typeof rawTest === "string") test = ["CMD-SHELL", rawTest];
  else if (Array.isArray(rawTest)) {
    test = c.stringList(rawTest, `${path}.test`);
    if (!["CMD", "CMD-SHELL", "NONE"].includes(test[0] ?? "")) c.add(`${path}.test`, 'a list must start with "CMD", "CMD-SHELL" or "NONE"');
  } else if (rawTest !== undefined && rawTest !== null) c.add(`${path}.test`, `must be a string or a list, got ${describe(rawTest)}`);
  return {
    test,
    intervalMs: c.duration(h["interval"], `${path}.interval`),
    timeoutMs: c.duration(h["timeout"], `${path}.timeout`),
    retries: c.integer(h["retries"], `${path}.retries`, 0),
    startPeriodMs: c.duration(h["start_period"], `${path}.start_period`),
    startIntervalMs: c.duration(h["start_interval"], `${path}.start_interval`),
    disable: c.boolean(h["disable"], `${path}.disable`) ?? false,
  };
}

function validateUpdateConfig(c: Checker, value: unknown, path: string, defaults: UpdateConfig): UpdateConfig {
  const u = c.object(value, path);
  if (u === undefined) return defaults;
  c.keys(u, path, new Set(["parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order"]));
  const ratio = u["max_failure_ratio"];
  let maxFailureRatio = defaults.maxFailureRatio;
  if (ratio !== undefined && ratio !== null) {
    const n = Number(ratio);
    if (!Number.isFinite(n) || n < 0 || n > 1) c.add(`${path}.max_failure_ratio`, `must be a number from 0 to 1, got ${describe(ratio)}`);
    else maxFailureRatio = n;
  }
  return {
    parallelism: c.integer(u["parallelism"], `${path}.parallelism`, 0) ?? defaults.parallelism,
    delayMs: c.duration(u["delay"], `${path}.delay`) ?? defaults.delayMs,
    failureAction: c.oneOf(u["failure_action"], `${path}.failure_action`, ["rollback", "pause", "continue"] as const) ?? defaults.failureAction,
    monitorMs: c.duration(u["monitor"], `${path}.monitor`) ?? defaults.monitorMs,
    maxFailureRatio,
    order: c.oneOf(u["order"], `${path}.order`, ["start-first", "stop-first"] as const) ?? defaults.order,
  };
}

function validateDeploy(c: Checker, value: unknown, path: string): DeploySpec {
  const d = c.object(value, path) ?? {};
  c.keys(d, path, new Set(["replicas", "update_config", "rollback_config", "resources", "mode"]));
  if (d["mode"] !== undefined && d["mode"] !== "replicated") c.add(`${path}.mode`, 'only "replicated" is supported');
  const resources = c.object(d["resources"], `${path}.resources`) ?? {};
  c.keys(resources, `${path}.resources`, new Set(["limits"]));
  const limits = c.object(resources["limits"], `${path}.resources.limits`) ?? {};
  c.keys(limits, `${path}.resources.limits`, new Set(["cpus", "memory"]));
  let cpus: number | undefined;
  if (limits["cpus"] !== undefined) {
    cpus = Number(limits["cpus"]);
    if (!Number.isFinite(cpus) || cpus <= 0) {
      c.add(`${path}.resources.limits.cpus`, `must be a positive number, got ${describe(limits["cpus"])}`);
      cpus = undefined;
    }
  }
  const memoryBytes = limits["memory"] === undefined ? undefined : parseBytes(limits["memory"]);
  if (limits["memory"] !== undefined && memoryBytes === undefined) c.add(`${path}.resources.limits.memory`, `must be a size such as 512m or 1g, got ${describe(limits["memory"])}`);
  const update = validateUpdateConfig(c, d["update_config"], `${path}.update_config`, DEFAULT_UPDATE_CONFIG);
  return {
    replicas: c.integer(d["replicas"], `${path}.replicas`, 0) ?? 1,
    update,
    rollback: validateUpdateConfig(c, d["rollback_config"], `${path}.rollback_config`, { ...DEFAULT_ROLLBACK_CONFIG, parallelism: update.parallelism, order: update.order }),
    resources: { cpus, memoryBytes },
  };
}

function validateTls(c: Checker, value: unknown, path: string, ctx: ValidateContext): ProxyTls | undefined {
  if (value === undefined) return undefined;
  const t = c.object(value, path) ?? {};
  c.keys(t, path, new Set(["certificate", "redirect_from"]));
  const certificate = c.string(t["certificate"], `${path}.certificate`);
  if (certificate === undefined) c.add(`${path}.certificate`, "is required: a PEM file with the certificate and its private key");
  const redirect = t["redirect_from"] === undefined ? [] : Array.isArray(t["redirect_from"]) ? t["redirect_from"] : undefined;
  if (redirect === undefined) c.add(`${path}.redirect_from`, "must be a list of published ports, such as [80]");
  const redirectFrom = (redirect ?? []).filter((port, i): port is number => {
    const ok = Number.isInteger(port) && (port as number) > 0 && (port as number) < 65_536;
    if (!ok) c.add(`${path}.redirect_from[${i}]`, `must be a port number, got ${JSON.stringify(port)}`);
    return ok;
  });
  return certificate === undefined ? undefined : { certificate: resolve(ctx.dir, expandHome(certificate, ctx.home)), redirectFrom };
}

function validateProxy(c: Checker, value: unknown, path: string, ctx: ValidateContext): ProxySettings {
  const p = c.object(value, path) ?? {};
  c.keys(p, path, new Set(["mode", "healthcheck", "drain_timeout", "image", "trusted_proxies", "tls", "threads"]));
  const tls = validateTls(c, p["tls"], `${path}.tls`, ctx);
  if (p["tls"] !== undefined && p["mode"] === "tcp") c.add(`${path}.tls`, "needs mode: http (a TCP door forwards bytes as they come; terminate TLS in the service instead)");
  const trusted = p["trusted_proxies"] === undefined ? [] : Array.isArray(p["trusted_proxies"]) ? p["trusted_proxies"] : undefined;
  if (trusted === undefined) c.add(`${path}.trusted_proxies`, "must be a list of addresses or CIDRs, such as [10.0.0.0/8]");
  const trustedProxies = (trusted ?? []).filter((t, i): t is string => {
    const ok = typeof t === "string" && /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(t);
    if (!ok) c.add(`${path}.trusted_proxies[${i}]`, `must be an IP address or CIDR, got ${JSON.stringify(t)}`);
    return ok;
  });
  const threads = p["threads"] ?? DEFAULT_DOOR_THREADS;
  const threadsOk = Number.isInteger(threads) && (threads as number) >= 1 && (threads as number) <= MAX_DOOR_THREADS;
  if (!threadsOk) c.add(`${path}.threads`, `must be a whole number from 1 to ${MAX_DOOR_THREADS} (HAProxy's threads), got ${JSON.stringify(threads)}`);
  const image = c.string(p["image"], `${path}.image`);
  if (image !== undefined && !/^[a-z0-9][a-z0-9._\-/:@]*$/i.test(image)) c.add(`${path}.image`, `must be an image reference such as haproxy:3.2, got "${image}"`);
  const h = c.object(p["healthcheck"], `${path}.healthcheck`) ?? {};
  c.keys(h, `${path}.healthcheck`, new Set(["path", "interval", "timeout"]));
  const healthPath = c.string(h["path"], `${path}.healthcheck.path`);
  if (healthPath !== undefined && !healthPath.startsWith("/")) c.add(`${path}.healthcheck.path`, `must start with "/", got "${healthPath}"`);
  return {
    mode: c.oneOf(p["mode"], `${path}.mode`, ["http", "tcp"] as const) ?? "http",
    healthcheckPath: healthPath,
    healthcheckIntervalMs: c.duration(h["interval"], `${path}.healthcheck.interval`) ?? DEFAULT_PROXY_HEALTHCHECK_INTERVAL_MS,
    healthcheckTimeoutMs: c.duration(h["timeout"], `${path}.healthcheck.timeout`) ?? DEFAULT_PROXY_HEALTHCHECK_TIMEOUT_MS,
    drainTimeoutMs: c.duration(p["drain_timeout"], `${path}.drain_timeout`) ?? DEFAULT_DRAIN_TIMEOUT_MS,
    image: image ?? DEFAULT_DOOR_IMAGE,
    trustedProxies,
    tls,
    threads: threadsOk ? (threads as number) : DEFAULT_DOOR_THREADS,
  };
}
