import { createHash } from "node:crypto";
import { isIP } from "node:net";

/**
 * The HAProxy configuration of one door (one published port of one service): pure text from
 * settings and servers. HAProxy is the data plane; this file is the only place reroll says
 * how it forwards, so every traffic rule (timeouts, retries, headers, health checks) is here.
 */

/** where the official image reads its configuration; reroll writes its files here */
export const CONFIG_DIR = "/usr/local/etc/haproxy";
export const CONFIG_FILE = "haproxy.cfg";
/** where a door's certificate volume is mounted */
export const CERTS_DIR = `${CONFIG_DIR}/certs`;
/** the tokens of reroll's own --verify runs: added and removed at run time, empty on disk */
export const VERIFY_ACL_FILE = "verify.acl";
/** holding requests: the map reroll fills at run time to hold (empty on disk), and the script that waits */
export const HOLD_MAP_FILE = "hold.map";
export const HOLD_SCRIPT_FILE = "hold.lua";
/** held requests beyond this many get 503 at once */
export const HOLD_MAX_REQUESTS = 10_000;
/** HAProxy's runtime API, reached only by exec into the container (never a port) */
export const RUNTIME_SOCKET = "/var/lib/haproxy/reroll.sock";
/** the port HAProxy listens on inside its container; Docker publishes it */
export const DOOR_LISTEN_PORT = 10_000;
export const BACKEND = "replicas";
/** a server's weight when routed; 0 while its first probe is pending */
export const ROUTED_WEIGHT = 100;
/** how often a routed replica is checked between rollouts, and how many failures take it out */
export const ROUTED_CHECK_INTERVAL_MS = 1_000;
export const ROUTED_CHECK_FALL = 2;

/**
 * Docker's own DNS server, in every container on a user-defined network: it answers a
 * container's short id with its address now, which changes when Docker restarts it.
 */
export const DOCKER_DNS = "127.0.0.11:53";
export const RESOLVERS = "docker";

export const VERIFY_HEADER = "x-reroll-verify";
export const TARGET_HEADER = "x-reroll-target";

export interface DoorSettings {
  readonly project: string;
  readonly service: string;
  readonly mode: "http" | "tcp";
  /** the replicas' container port */
  readonly targetPort: number;
  readonly healthPath: string | undefined;
  /** how often a replica that is not up yet (a new one, or one taken out) is probed */
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly drainTimeoutMs: number;
  /** clients whose X-Forwarded-Proto/-Host are kept (other proxies in front); CIDRs or addresses */
  readonly trustedProxies: readonly string[];
  /** TLS terminated here: the PEM's path in the door and a digest of its content (a new certificate is a new configuration, so a reload) */
  readonly tls?: { readonly file: string; readonly digest: string } | undefined;
  /** a plain port that answers every request with a redirect to HTTPS on this published port */
  readonly redirectToPort?: number | undefined;
  /** HAProxy's threads */
  readonly threads: number;
}

/** routed: takes requests · probing: checked, weight 0 until its first 2xx · (draining servers are never written) */
export interface DoorServer {
  readonly name: string;
  /** an address, or a name Docker's DNS resolves (the replica's short id), which the door follows */
  readonly host: string;
  readonly state: "routed" | "probing";
}

/**
 * The hold, in Lua (HAProxy runs it; the official image has Lua): while the map holds
 * `hold = <ms>@<nonce>`, a request waits, 25 ms a look, until the map is cleared or <ms> have
 * passed since this door first saw that value (its own clock: reroll's may be another host's).
 * HAProxy enters it only while the map has the key, so a door that holds nothing pays nothing.
 */
export const HOLD_SCRIPT = `-- reroll's hold of new requests (reroll proxy pause, a stop-first replacement); written by reroll
local hold = Map.new("${CONFIG_DIR}/${HOLD_MAP_FILE}", Map._str)
local waiting, seen, deadline = 0, nil, 0
local function now_ms() local t = core.now(); return t.sec * 1000 + math.floor(t.usec / 1000) end
local function held()
  local value = hold:lookup("hold")
  if value == nil then return false end
  if value ~= seen then seen = value; deadline = now_ms() + (tonumber(value:match("^(%d+)")) or 0) end
  return now_ms() < deadline
end
core.register_action("reroll_hold", { "http-req" }, function(txn)
  if not held() then return end
  if waiting >= ${HOLD_MAX_REQUESTS} then txn:set_var("txn.reroll_held", "full") return end
  waiting = waiting + 1
  while held() do core.msleep(25) end
  waiting = waiting - 1
end)
`;

const ms = (value: number): string => `${Math.max(1, Math.round(value))}ms`;

/**
 * The arguments of a server, the same in the file and in the runtime API's `add server`. A
 * host that is a name (the file's servers) is resolved at start and every second after by
 * Docker's DNS, so a replica Docker restarts at another address is followed; HAProxy 2.6
 * takes no `resolvers` on a server added at run time, which is added by address.
 */
export function serverArguments(settings: DoorSettings, host: string, weight: number): string {
  return [
    `${host}:${settings.targetPort}`,
    ...(isIP(host) === 0 ? [`resolvers ${RESOLVERS}`, "init-addr libc,none", "resolve-prefer ipv4"] : []),
    "check",
    `inter ${ms(ROUTED_CHECK_INTERVAL_MS)}`,
    `downinter ${ms(settings.probeIntervalMs)}`,
    `fall ${ROUTED_CHECK_FALL}`,
    "rise 1",
    `weight ${weight}`,
    // a server added at run time keeps no idle connection unless told (HAProxy 2.6 gives it
    // pool-max-conn 0 and pool-purge-delay 0, not the file's defaults): without these every
    // request after a rollout opened a new connection to its replica: a quarter to two fifths
    // of the throughput
    "pool-max-conn -1",
    "pool-purge-delay 5s",
  ].join(" ");
}

function serverLine(settings: DoorSettings, server: DoorServer): string {
  return `  server ${server.name} ${serverArguments(settings, server.host, server.state === "routed" ? ROUTED_WEIGHT : 0)}`;
}

function httpFrontendRules(settings: DoorSettings): string[] {
  const trusted = settings.trustedProxies.length > 0;
  const unlessTrusted = trusted ? " unless from_trusted_proxy" : "";
  return [
    ...(trusted ? [`  acl from_trusted_proxy src ${settings.trustedProxies.join(" ")}`] : []),
    // a slow body counts against `timeout http-request` too, as a slow head does
    "  option http-buffer-request",
    // held while reroll holds the door (the native map lookup keeps Lua off the path otherwise)
    `  http-request lua.reroll_hold if { str(hold),map(${CONFIG_DIR}/${HOLD_MAP_FILE}) -m found }`,
    `  http-request return status 503 content-type text/plain string "${settings.service} is paused and too many requests wait" hdr retry-after 1 if { var(txn.reroll_held) -m found }`,
    // the client's word about the original scheme and host is taken only from another proxy
    `  http-request del-header x-forwarded-proto${unlessTrusted}`,
    `  http-request del-header x-forwarded-host${unlessTrusted}`,
    "  http-request set-header x-forwarded-proto https if { ssl_fc } !{ req.hdr(x-forwarded-proto) -m found }",
    "  http-request set-header x-forwarded-proto http if !{ ssl_fc } !{ req.hdr(x-forwarded-proto) -m found }",
    "  http-request set-header x-forwarded-host %[req.hdr(host)] if { req.hdr(host) -m found } !{ req.hdr(x-forwarded-host) -m found }",
    "  option forwardfor",
    // which replica answered is told only to reroll's own --verify traffic (a token it adds at run time)
    `  http-request set-var(txn.reroll_verify) bool(true) if { req.hdr(${VERIFY_HEADER}) -f ${CONFIG_DIR}/${VERIFY_ACL_FILE} }`,
    `  http-request del-header ${VERIFY_HEADER}`,
    `  http-response del-header ${TARGET_HEADER}`,
    `  http-response set-header ${TARGET_HEADER} %[srv_name] if { var(txn.reroll_verify) -m bool }`,
  ];
}

/** The redirect of a plain port to HTTPS, keeping the host (without its port) and the path. */
function redirectRules(port: number | undefined): string[] {
  if (port === undefined) return [];
  if (port === 443) return ["  http-request redirect scheme https code 301"];
  return [`  http-request redirect location https://%[req.hdr(host),field(1,:)]:${port}%[capture.req.uri] code 301`];
}

function bindLine(settings: DoorSettings): string[] {
  if (settings.tls === undefined) return [`  bind :${DOOR_LISTEN_PORT}`];
  return [`  # certificate ${settings.tls.digest}`, `  bind :${DOOR_LISTEN_PORT} ssl crt ${settings.tls.file} alpn h2,http/1.1`];
}

function healthCheck(settings: DoorSettings): string[] {
  if (settings.healthPath === undefined) return [];
  return [
    "  option httpchk",
    `  http-check send meth GET uri ${settings.healthPath} ver HTTP/1.1 hdr host localhost hdr user-agent reroll-door`,
    "  http-check expect rstatus ^2",
  ];
}

/** The whole configuration file of a door. */
export function renderDoorConfig(settings: DoorSettings, servers: readonly DoorServer[]): string {
  const http = settings.mode === "http";
  return [
    `# reroll's door for ${settings.project}/${settings.service} (port ${settings.targetPort}), written by reroll: changes made here are replaced`,
    "global",
    `  nbthread ${settings.threads}`,
    `  stats socket ${RUNTIME_SOCKET} mode 600 level admin`,
    "  stats timeout 2m",
    "  log stdout format raw daemon notice",
    ...(http ? [`  lua-load ${CONFIG_DIR}/${HOLD_SCRIPT_FILE}`, `  # hold script ${createHash("sha256").update(HOLD_SCRIPT).digest("hex").slice(0, 12)}`] : []),
    // a worker left by a reload finishes its connections (a WebSocket included) for this long at most
    `  hard-stop-after ${ms(Math.max(30_000, settings.drainTimeoutMs + 10_000))}`,
    "",
    `resolvers ${RESOLVERS}`,
    `  nameserver docker ${DOCKER_DNS}`,
    // asked every second; a name Docker no longer knows (a replica stopped) leaves its server
    // without an address, out of rotation, until it is known again
    "  timeout resolve 1s",
    "  timeout retry 1s",
    "  resolve_retries 2",
    "  hold valid 1s",
    "  hold nx 1s",
    "  hold obsolete 1s",
    "",
    "defaults",
    `  mode ${settings.mode}`,
    "  log global",
    "  option dontlognull",
    "  timeout connect 2s",
    "  timeout client 60s",
    "  timeout server 60s",
    "  timeout client-fin 10s",
    "  timeout server-fin 10s",
    "  timeout tunnel 1h",
    "  timeout queue 10s",
    `  timeout check ${ms(settings.probeTimeoutMs)}`,
    ...(http ? ["  timeout http-request 10s", "  timeout http-keep-alive 10s"] : []),
    // a reload's old worker answers an idle keep-alive connection's next request with
    // `connection: close` instead of closing it under a client about to write (no reset)
    ...(http ? ["  option idle-close-on-response"] : []),
    // only a connection that failed before any byte was sent is tried again, on another replica
    "  retries 3",
    ...(http ? ["  retry-on conn-failure"] : []),
    "  option redispatch 1",
    ...(http ? [`  http-error status 503 content-type text/plain string "no replica of ${settings.service} is ready" hdr retry-after 1`] : []),
    "",
    "frontend door",
    ...bindLine(settings),
    ...(http ? httpFrontendRules(settings) : []),
    ...redirectRules(settings.redirectToPort),
    `  default_backend ${BACKEND}`,
    "",
    `backend ${BACKEND}`,
    // least outstanding requests first
    "  balance leastconn",
    ...healthCheck(settings),
    ...servers.map((s) => serverLine(settings, s)),
    "",
  ].join("\n");
}
