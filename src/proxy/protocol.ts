/**
 * What the CLI and a reroll-proxy say to each other over the proxy's control socket: one
 * JSON object per line each way, every request with an `id` its reply carries back. The CLI
 * reaches the socket only by exec into the proxy container (ctl.ts bridges stdin/stdout to
 * it); the proxy opens no admin port on any network.
 */

export const CONTROL_SOCKET = "/tmp/reroll-proxy/control.sock";
/** the proxy's configuration, JSON, in the container's environment */
export const CONFIG_ENV = "REROLL_PROXY_CONFIG";

export interface ProxyListener {
  /** the port the proxy listens on inside its container */
  readonly port: number;
  /** the replicas' container port it forwards to */
  readonly targetPort: number;
  readonly mode: "http" | "tcp";
  /** the address published on the host, as the Compose file says it ("127.0.0.1:8080") */
  readonly published: string;
}

export interface ProxyHealthcheck {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface ProxyConfig {
  readonly project: string;
  readonly service: string;
  readonly listeners: readonly ProxyListener[];
}

/** Settings that change without recreating the proxy (no port moves). */
export interface ProxySettingsMessage {
  readonly healthcheck: ProxyHealthcheck | undefined;
  readonly drainTimeoutMs: number;
}

export interface TargetAddress {
  /** the replica's container id: unique, where a name may pass from an old replica to its replacement */
  readonly id: string;
  /** its container name, for people and for --verify's report */
  readonly name?: string;
  /** its address on the project network */
  readonly host: string;
}

/** unreachable: routed, but its container has no address now (stopped, or being restarted by Docker) */
export type TargetStatus = "probing" | "ready" | "draining" | "unreachable";

export interface TargetReport extends TargetAddress {
  readonly state: TargetStatus;
  readonly outstanding: number;
}

export type ControlRequest =
  | { readonly id: number; readonly op: "status" }
  | { readonly id: number; readonly op: "configure"; readonly settings: ProxySettingsMessage }
  /** probe: true → probe the health path fast until it answers 2xx, then route; false → route now */
  | { readonly id: number; readonly op: "add"; readonly target: TargetAddress; readonly probe: boolean }
  | { readonly id: number; readonly op: "drain"; readonly target: string; readonly timeoutMs?: number }
  | { readonly id: number; readonly op: "remove"; readonly target: string }
  /** routes to exactly these targets (ready at once): after the proxy is created */
  | { readonly id: number; readonly op: "sync"; readonly targets: readonly TargetAddress[] };

export interface StatusReply {
  readonly config: ProxyConfig;
  readonly settings: ProxySettingsMessage;
  readonly targets: readonly TargetReport[];
}

export type ControlReply =
  | { readonly id: number; readonly ok: true; readonly result?: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };
