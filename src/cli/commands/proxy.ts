import { RerollError } from "../../core/errors.js";
import type { EventSink } from "../../core/events.js";
import type { ServiceSpec, Spec } from "../../core/spec/types.js";
import type { Engine } from "../../engine/port.js";
import { LABEL_PROJECT } from "../../core/labels.js";
import { ensureServiceProxy, listProxies, proxied, proxyStatuses, removeServiceProxy, type ProxyStatus, type ServiceDoors } from "../../proxy/manage.js";
import { networkName } from "../../rollout/container-spec.js";
import { acquireProjectLock } from "../../rollout/lock.js";
import { selectServices } from "../../rollout/up.js";
import { connectEngine } from "../engine.js";
import type { CliIo } from "../io.js";
import type { ProxyCommandOptions } from "../program.js";
import { createEventRenderer } from "../render/events.js";
import { paint, resolveOutputMode, type OutputMode } from "../render/output-mode.js";
import { specFor } from "../spec.js";
import { holdLine } from "./inspect.js";

function statusLines(mode: OutputMode, proxies: readonly ProxyStatus[]): string[] {
  const lines: string[] = [];
  for (const p of proxies) {
    const where = p.published.join(", ") || "no published port";
    lines.push(`${paint(mode, "1", p.service)}  ${p.name}  ${where}  ${p.image}${p.error === undefined ? "" : paint(mode, "33", `  ${p.error}`)}`);
    if (p.holdMs !== undefined) lines.push(`  ${paint(mode, "33", holdLine(p.holdMs))}`);
    for (const t of p.targets) lines.push(`  → ${t.name ?? t.id} (${t.host})  ${t.state === "ready" ? paint(mode, "32", t.state) : paint(mode, "33", t.state)}  ${t.outstanding} in flight`);
    if (p.error === undefined && !p.targets.some((t) => t.state === "ready")) lines.push(paint(mode, "33", "  no ready replica: requests get 503"));
  }
  return lines;
}

/**
 * Makes a service's doors route to exactly the replicas that serve now, settles them (a
 * reload drops servers HAProxy kept in maintenance; before `then`, since a reload empties
 * the runtime hold map), runs `then` on them, and closes their control sessions.
 */
async function withDoors(engine: Engine, spec: Spec, service: ServiceSpec, emit: EventSink, then: (doors: ServiceDoors) => Promise<unknown> = async () => undefined): Promise<void> {
  const doors = (await ensureServiceProxy(engine, spec, service, emit)).control;
  try {
    await doors.settle();
    await then(doors);
  } finally {
    doors.close();
  }
}

/** the default bound of `reroll proxy pause` */
const DEFAULT_PAUSE_MS = 30_000;

/** `reroll proxy pause|resume`: every HTTP door of the chosen services holds new requests, or lets them go. */
async function holdDoors(engine: Engine, spec: Spec, chosen: readonly ServiceSpec[], options: ProxyCommandOptions, emit: EventSink): Promise<void> {
  const services = chosen.filter((s) => proxied(s));
  const tcp = services.filter((s) => s.proxy.mode === "tcp");
  if (tcp.length > 0 && options.action === "pause") {
    throw new RerollError("E_USAGE", `${tcp.map((s) => s.name).join(", ")} ${tcp.length === 1 ? "is" : "are"} proxied as plain TCP, which cannot be held: a connection is not a request.`, {
      hint: "Pause only HTTP services (name them), or stop the TCP service's clients another way.",
    });
  }
  const holdMs = options.holdMs ?? DEFAULT_PAUSE_MS;
  for (const service of services) {
    await withDoors(engine, spec, service, emit, (doors) => (options.action === "pause" ? doors.hold(holdMs) : doors.release()));
    emit(options.action === "pause" ? { type: "proxy-hold", service: service.name, ms: holdMs, why: "reroll proxy pause; reroll proxy resume lets them go" } : { type: "proxy-hold", service: service.name, why: "reroll proxy resume" });
  }
}

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
    const lines = statusLines(mode, proxies);
    io.stdout.write(`${lines.length === 0 ? "no door: no service of this project publishes a port" : lines.join("\n")}\n`);
    return;
  }

  // up and down change what the doors route: not while a rollout does the same
  const renderer = createEventRenderer(mode, io);
  const emit: EventSink = renderer.sink;
  const lock = await acquireProjectLock(engine, spec.project, `reroll proxy ${options.action}`, {
    waitMs: options.lockWaitMs ?? 0,
    signal: io.signal,
    onEvent: emit,
  });
  try {
    const named = (service: string): boolean => options.services.length === 0 || options.services.includes(service);
    if (options.action === "pause" || options.action === "resume") {
      await holdDoors(engine, spec, chosen, options, emit);
      return;
    }
    if (options.action === "down") {
      for (const service of new Set((await listProxies(engine, spec.project)).map((p) => p.service))) if (named(service)) await removeServiceProxy(engine, spec.project, service, "reroll proxy down", emit);
      return;
    }
    await engine.ensureNetwork(networkName(spec.project), { [LABEL_PROJECT]: spec.project });
    // each door is made to route to exactly the replicas that serve now
    for (const service of chosen) if (proxied(service)) await withDoors(engine, spec, service, emit);
    for (const name of new Set((await listProxies(engine, spec.project)).map((p) => p.service))) {
      const service = spec.services.find((s) => s.name === name);
      if (!named(name)) continue;
      if (service === undefined || !proxied(service)) await removeServiceProxy(engine, spec.project, name, service === undefined ? "the service is gone from the Compose file" : "the service publishes no port", emit);
    }
  } finally {
    renderer.close();
    await lock.release();
  }
}
