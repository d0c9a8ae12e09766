import { type EventSink, type RerollEvent } from "../../core/events.js";
import type { CliIo } from "../io.js";
import { jsonLine, paint, type OutputMode } from "./output-mode.js";

/**
 * Renders the event stream. json: NDJSON on stdout (the machine stream). plain: one line
 * per event on stderr, for CI logs. tty: one live line per service on stderr, redrawn.
 */
export interface EventRenderer {
  readonly sink: EventSink;
  /** stops redrawing and leaves the final lines on screen */
  close(): void;
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** What a drain that timed out left: requests on the door's worker, workers from before a reload. */
function drainLeft(outstanding: number, olderWorkers: number): string {
  const parts = [...(outstanding > 0 || olderWorkers === 0 ? [`${outstanding} still open`] : []), ...(olderWorkers > 0 ? [`${olderWorkers === 1 ? "a worker" : `${olderWorkers} workers`} from before a reload still serving`] : [])];
  return parts.join(", ");
}

export function describeEvent(event: RerollEvent): string | undefined {
  switch (event.type) {
    case "build-queued":
      return `waits for ${event.after.join(", ")} (its Dockerfile builds FROM them)`;
    case "build-start":
      return `building ${event.context}`;
    case "build-context-sent":
      return `context: ${event.files} files, ${(event.bytes / 1e6).toFixed(1)} MB`;
    case "build-step":
      return `step ${event.step}/${event.total}: ${event.instruction}`;
    case "build-output":
      return `  ${event.text}`;
    case "build-progress":
      return `${event.id === undefined ? "" : `${event.id}: `}${event.status}${event.progress === undefined ? "" : ` ${event.progress}`}`;
    case "build-done":
      return `built r${event.revision} ${shortId(event.imageId)}${event.reused ? " (same image as before: revision kept)" : ""} in ${seconds(event.durationMs)}`;
    case "build-failed":
      return `FAILED${event.step === undefined ? "" : ` at ${event.step}`}: ${event.message}`;
    case "build-skipped":
      return `skipped: ${event.reason}`;
    case "image-removed":
      return `removed old revision r${event.revision} (${shortId(event.imageId)})`;
    case "image-kept":
      return `kept old revision r${event.revision}: ${event.reason}`;
    case "lock-wait":
      return `waiting for ${event.name}, held by ${event.holder}`;
    case "rollout-plan":
      return undefined;
    case "rollout-start":
      // the reason is empty exactly when the plan found nothing to change
      if (event.reason === "") return `nothing to roll: ${event.from.length === 0 ? "no replica is wanted" : `every replica runs r${event.revision}`}`;
      // "from r1" says why when the target runs already (an unhealthy replica, a changed configuration)
      return `rolling to r${event.revision}${event.from.length === 0 ? "" : ` from ${event.from.map((r) => `r${r}`).join(", ")}`}${event.from.includes(event.revision) && event.reason !== "" ? `: ${event.reason}` : ""}`;
    case "replica-start":
      return `${event.name}: starting r${event.revision}${event.replaces.length === 0 ? "" : ` (replaces ${event.replaces.join(", ")})`}`;
    case "replica-state":
      return `${event.name}: ${event.state}`;
    case "replica-watch":
      return `${event.name}: kept, watched until ready (${event.cause})`;
    case "replica-failed":
      return `${event.name}: FAILED: ${event.message}`;
    case "replica-stop":
      return `${event.name}: stopping (${event.cause})`;
    case "replica-remove":
      return `${event.name}: removed (${event.cause})`;
    case "replica-rename":
      return `${event.name}: back under its own name (was ${event.from})`;
    case "rollback-start":
      return event.to.length === 0
        ? `no replica had been replaced yet; the previous ones still serve (${event.reason})`
        : `rolling back to ${event.to.map((r) => `r${r}`).join(", ")}: ${event.reason}`;
    case "rollout-done":
      return `${event.outcome} r${event.revision} in ${seconds(event.durationMs)}`;
    case "warning":
      return `warning: ${event.message}`;
    case "proxy-ready":
      return `${event.name}: ${event.created ? "started" : "serving"}, publishing ${event.published.join(", ")}`;
    case "proxy-route":
      return `${event.name}: routed${event.probes > 0 ? ` (health path answered after ${event.probes} probe${event.probes === 1 ? "" : "s"}, ${event.ms} ms)` : ""}`;
    case "proxy-drain":
      return `${event.name}: drained in ${event.ms} ms${event.drained ? "" : ` (${drainLeft(event.outstanding, event.olderWorkers ?? 0)} at the drain timeout)`}`;
    case "proxy-removed":
      return `${event.name}: removed (${event.cause})`;
    case "proxy-hold":
      return event.ms === undefined ? `held requests go on (${event.why})` : `new requests are held at the door for up to ${seconds(event.ms)} (${event.why})`;
    case "verify-report": {
      const r = event.report;
      const failures = Object.entries(r.failures).map(([why, n]) => `${n} ${why}`).join(", ");
      const revisions = Object.entries(r.revisions).map(([rev, n]) => `${rev} ${n}`).join(", ");
      return `verify ${r.url}: ${r.sent} requests in ${(r.durationMs / 1000).toFixed(1)}s, ${r.failed} failed${failures === "" ? "" : ` (${failures})`}; p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms; answered by ${revisions || "none"}`;
    }
  }
}

function subject(event: RerollEvent): string {
  return "service" in event && event.service !== undefined ? event.service : "reroll";
}

export function createEventRenderer(mode: OutputMode, io: CliIo, now: () => number = Date.now): EventRenderer {
  if (mode === "json") {
    return {
      sink: (event) => io.stdout.write(jsonLine(event, now())),
      close: () => undefined,
    };
  }
  if (mode === "plain") {
    return {
      sink: (event) => {
        const text = describeEvent(event);
        if (text !== undefined && event.type !== "build-progress") io.stderr.write(`${subject(event)} | ${text}\n`);
      },
      close: () => undefined,
    };
  }

  // tty: a live line per subject, redrawn in place; failures' last lines printed at the end.
  const order: string[] = [];
  const lines = new Map<string, string>();
  const started = new Map<string, number>();
  const failures: string[] = [];
  let drawn = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  // a terminal that reports no size (0 columns: `script`, some CI runners) gets 100
  const width = (): number => {
    const columns = (io.stderr as { columns?: number }).columns;
    return columns !== undefined && columns > 0 ? columns : 100;
  };
  const draw = (): void => {
    let out = drawn > 0 ? `\x1b[${drawn}A` : "";
    const pad = Math.max(...order.map((s) => s.length), 4);
    for (const name of order) {
      const since = started.get(name);
      const elapsed = since === undefined ? "" : paint("tty", "2", ` ${seconds(now() - since)}`);
      const line = fitWidth(`${paint("tty", "1", name.padEnd(pad))}  ${lines.get(name) ?? ""}`, Math.max(20, width() - 8));
      out += `\x1b[2K${line}${elapsed}\n`;
    }
    // fewer lines than last time (a line went): clear what is left of the old ones below
    if (drawn > order.length) out += "\x1b[J";
    drawn = order.length;
    io.stderr.write(out);
  };
  // In a terminal, each replica gets its own line under its service: old → new, state, elapsed.
  const ttySubject = (event: RerollEvent): string =>
    event.type.startsWith("replica-") && "name" in event ? `  ${(event as { name: string }).name}` : subject(event);
  const ttyText = (event: RerollEvent): string | undefined => {
    switch (event.type) {
      case "replica-start":
        return `${event.replaces.length === 0 ? "new" : `${event.replaces.join(", ")} →`} r${event.revision}: starting`;
      case "replica-state":
        return event.state;
      case "replica-watch":
        return `kept, watching: ${event.cause}`;
      case "replica-failed":
        return `FAILED: ${event.message}`;
      case "replica-stop":
        return `stopping (${event.cause})`;
      case "replica-remove":
        return `removed (${event.cause})`;
      case "replica-rename":
        return `back under its own name (was ${event.from})`;
      default:
        return describeEvent(event);
    }
  };
  return {
    sink: (event) => {
      if (closed) return;
      const name = ttySubject(event);
      if (event.type === "replica-rename") {
        // no container goes by the aside name any more: its line goes
        const from = `  ${event.from}`;
        lines.delete(from);
        started.delete(from);
        const at = order.indexOf(from);
        if (at >= 0) order.splice(at, 1);
      }
      if (!lines.has(name)) order.push(name);
      if (event.type === "build-start" || event.type === "replica-start" || event.type === "replica-watch") started.set(name, now());
      if (
        event.type === "build-done" ||
        event.type === "build-failed" ||
        event.type === "build-skipped" ||
        event.type === "replica-failed" ||
        event.type === "replica-remove" ||
        (event.type === "replica-state" && event.state === "ready")
      ) {
        started.delete(name);
      }
      if (event.type === "build-failed") failures.push(`${name}: ${event.message}`, ...event.lastLines.map((l) => `  ${l}`));
      if (event.type === "replica-failed") failures.push(`${event.name}: ${event.message}`, ...event.logs.map((l) => `  | ${l}`));
      if (event.type === "warning") failures.push(`warning: ${event.message}`);
      if (event.type === "rollout-start") started.set(name, now());
      if (event.type === "rollout-done") started.delete(name);
      const text = ttyText(event);
      if (text === undefined) return;
      if (event.type === "image-removed" || event.type === "image-kept") {
        // a note on the service's line; its build status stays
        lines.set(name, `${lines.get(name) ?? ""}${paint("tty", "2", ` · ${event.type === "image-removed" ? `removed r${event.revision}` : `kept r${event.revision}`}`)}`);
        draw();
        return;
      }
      const colour =
        event.type === "build-failed" || event.type === "replica-failed" || (event.type === "rollout-done" && event.outcome !== "completed")
          ? "31"
          : event.type === "build-done" || event.type === "rollout-done"
            ? "32"
            : event.type === "warning" || event.type === "rollback-start"
              ? "33"
              : "0";
      if (event.type !== "build-output" || !lines.has(name)) lines.set(name, paint("tty", colour, text.trim()));
      else lines.set(name, paint("tty", "2", text.trim()));
      draw();
      timer ??= setInterval(draw, 500);
      timer.unref();
    },
    close: () => {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      if (drawn > 0) draw();
      if (failures.length > 0) io.stderr.write(`${failures.join("\n")}\n`);
    },
  };
}

/**
 * Cuts a line to `columns` visible characters. Colour escapes take no room and are kept
 * whole (a cut inside one would colour the rest of the terminal); a cut line ends with a reset.
 */
export function fitWidth(line: string, columns: number): string {
  let out = "";
  let visible = 0;
  for (let i = 0; i < line.length; ) {
    if (line[i] === "\x1b" && line[i + 1] === "[") {
      let end = i + 2;
      while (end < line.length && /[0-9;]/.test(line[end]!)) end += 1;
      if (end < line.length && /[A-Za-z]/.test(line[end]!)) {
        out += line.slice(i, end + 1);
        i = end + 1;
        continue;
      }
    }
    if (visible === columns) return `${out}\x1b[0m`;
    const ch = String.fromCodePoint(line.codePointAt(i)!);
    out += ch;
    visible += 1;
    i += ch.length;
  }
  return out;
}
