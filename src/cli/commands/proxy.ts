import { RerollError } from "../../core/errors.js";
import type { EventSink } from "../../core/events.js";
import { LABEL_PROJECT } from "../../core/labels.js";
import { DEFAULT_DRAIN_TIMEOUT_MS } from "../../core/spec/validate.js";
import { ensureServiceProxy, listProxies, proxied, proxyStatuses, removeServiceProxy } from "../../proxy/manage.js";
import { CONFIG_ENV, type ProxyConfig, type ProxySettingsMessage } from "../../proxy/protocol.js";
import { runProxy } from "../../proxy/server.js";
import { networkName } from "../../rollout/container-spec.js";
import { acquireProjectLock } from "../../rollout/lock.js";
import { selectServices } from "../../rollout/up.js";
import { connectEngine } from "../engine.js";
import type { CliIo } from "../io.js";
import type { ProxyCommandOptions, ProxyRunCommandOptions } from "../program.js";
import { createEventRenderer } from "../render/events.js";
import { paint, resolveOutputMode } from "../render/output-mode.js";
import { specFor } from "../spec.js";

export async function runProxyCommand(options: ProxyCommandOptions, io: CliIo): Promise<void> {
  const mode = resolveOutputMode(options.global.output, io);
  const spec = await specFor(options.global, io);
  const engine = await connectEngine(io);
  const chosen = selectServices(spec, options.services);

  if (options.action === "status") {
    const proxies = await proxyStatuses(engine, spec.project, options.services);
    if (mode === "json") {
      io.stdout.write(`${JSON.stringify({ project: spec.project, proxies })}\n`);
      return;
    }
    const lines: string[] = [];
    for (const p of proxies) {
      lines.push(`${paint(mode, "1", p.service)}  ${p.name}  ${p.published.join(", ") || "no published port"}${p.error === undefined ? "" : paint(mode, "33", `  ${p.error}`)}`);
      for (const t of p.targets) lines.push(`  → ${t.name ?? t.id} (${t.host})  ${t.state === "ready" ? paint(mode, "32", t.state) : paint(mode, "33", t.state)}  ${t.outstanding} in flight`);
      if (p.targets.length === 0 && p.error === undefined) lines.push(paint(mode, "33", "  no target: requests get 503"));
    }
    io.stdout.write(`${lines.length === 0 ? "no proxy: no service of this project publishes a port" : lines.join("\n")}\n`);
    return;
  }

  // up and down change what the proxies route: not while a rollout does the same
  const renderer = createEventRenderer(mode, io);
  const emit: EventSink = renderer.sink;
  const lock = await acquireProjectLock(engine, spec.project, `reroll proxy ${options.action}`, {
    waitMs: options.lockWaitMs ?? 0,
    signal: io.signal,
    onEvent: emit,
  });
  try {
    if (options.action === "down") {
      for (const p of await listProxies(engine, spec.project)) {
        if (options.services.length > 0 && !options.services.includes(p.service)) continue;
        await removeServiceProxy(engine, spec.project, p.service, "reroll proxy down", emit);
      }
      return;
    }
    await engine.ensureNetwork(networkName(spec.project), { [LABEL_PROJECT]: spec.project });
    // each proxy is made to route to exactly the replicas that serve now
    for (const service of chosen) if (proxied(service)) (await ensureServiceProxy(engine, spec, service, emit)).control.close();
    for (const p of await listProxies(engine, spec.project)) {
      const service = spec.services.find((s) => s.name === p.service);
      if (options.services.length > 0 && !options.services.includes(p.service)) continue;
      if (service === undefined || !proxied(service)) await removeServiceProxy(engine, spec.project, p.service, service === undefined ? "the service is gone from the Compose file" : "the service publishes no port", emit);
    }
  } finally {
    renderer.close();
    await lock.release();
  }
}

/** `reroll proxy run`: the proxy process, configured by its container's environment; ends on SIGTERM after in-flight work. */
export async function runProxyProcess(options: ProxyRunCommandOptions, io: CliIo): Promise<number> {
  const raw = io.env[CONFIG_ENV];
  if (raw === undefined || raw === "") {
    throw new RerollError("E_USAGE", `reroll proxy run needs its configuration in ${CONFIG_ENV}.`, {
      hint: "reroll proxy up (or reroll up) creates the proxy containers with it; this command is what they run.",
    });
  }
  let config: ProxyConfig;
  let settings: ProxySettingsMessage = { healthcheck: undefined, drainTimeoutMs: DEFAULT_DRAIN_TIMEOUT_MS };
  try {
    config = JSON.parse(raw) as ProxyConfig;
    if (io.env["REROLL_PROXY_SETTINGS"] !== undefined) settings = JSON.parse(io.env["REROLL_PROXY_SETTINGS"]) as ProxySettingsMessage;
  } catch (error) {
    throw new RerollError("E_USAGE", `${CONFIG_ENV} is not valid JSON: ${(error as Error).message}.`, { hint: "Recreate the proxy with reroll proxy up." });
  }
  const proxy = await runProxy(config, { controlPath: options.control, settings, log: (line) => io.stderr.write(`${new Date().toISOString()} ${line}\n`) });
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    io.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  io.stderr.write(`${new Date().toISOString()} reroll-proxy: stopping: no new connection; finishing what is in flight\n`);
  await Promise.race([proxy.close(), new Promise((resolve) => setTimeout(resolve, 8_000))]);
  // client sockets still open (a WebSocket past the bound) must not hold the process: Docker would wait for its stop timeout
  setTimeout(() => process.exit(0), 50).unref();
  return 0;
}
