// Load generators for the proxy benchmarks, independent of reroll's own --verify.
import { Agent, request } from "node:http";

function once(host, port, path, agent) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request({ host, port, path, agent, headers: agent === false ? { connection: "close" } : {}, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ ok: res.statusCode === 200, reason: `HTTP ${res.statusCode}`, ms: performance.now() - t0 }));
      res.on("error", (e) => resolve({ ok: false, reason: e.code ?? "error", ms: performance.now() - t0 }));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
    req.on("error", (e) => resolve({ ok: false, reason: e.code ?? String(e), ms: performance.now() - t0 }));
    req.end();
  });
}

/**
 * `clients` loops (half keep-alive, half a new connection per request) until stop():
 * returns requests sent, failed (by reason), and the longest stretch without a success.
 */
export function continuousLoad(host, port, clients = 16, path = "/") {
  let running = true;
  let sent = 0;
  let failed = 0;
  const reasons = {};
  let lastOk = Date.now();
  let longestGapMs = 0;
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const loops = Array.from({ length: clients }, async (_, i) => {
    while (running) {
      const r = await once(host, port, path, i % 2 === 0 ? agent : false);
      sent += 1;
      if (r.ok) {
        const now = Date.now();
        longestGapMs = Math.max(longestGapMs, now - lastOk);
        lastOk = now;
      } else {
        failed += 1;
        reasons[r.reason] = (reasons[r.reason] ?? 0) + 1;
        await new Promise((res) => setTimeout(res, 5)); // a refused port fails in microseconds
      }
      await new Promise((res) => setTimeout(res, 5));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { sent, failed, reasons, longestGapMs };
    },
  };
}

/** Requests at a fixed rate over `connections` keep-alive connections for `seconds`: latency percentiles. */
export async function fixedRate(host, port, { rate = 200, seconds = 5, connections = 4, path = "/" } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  let failed = 0;
  const pending = [];
  const interval = 1000 / rate;
  const start = performance.now();
  for (let i = 0; i < rate * seconds; i += 1) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((res) => setTimeout(res, wait));
    pending.push(
      once(host, port, path, agent).then((r) => {
        if (r.ok) latencies.push(r.ms);
        else failed += 1;
      }),
    );
  }
  await Promise.all(pending);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), failed, count: latencies.length, latencies };
}

/** The `p` quantile (0..1) of unsorted samples. */
export function quantile(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}
