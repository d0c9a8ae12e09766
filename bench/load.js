// Load generators for the proxy benchmarks, independent of reroll's own --verify.
import { Agent, request } from "node:http";
import { connect as netConnect } from "node:net";

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

/**
 * A keep-alive HTTP/1.1 connection on a raw socket, one request at a time: the request's
 * bytes are made once, and a response is read only as far as its length. A client built on
 * http.Agent allocates a request and a response object per request, and its own collector
 * pauses (seen here at the same offsets into every run, on every side alike) made up much
 * of the slowest 1% it measured.
 */
/** where a chunked body that begins at `from` ends (no trailers), or undefined while incomplete */
function chunkedEnd(buffer, from) {
  let at = from;
  for (;;) {
    const eol = buffer.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = parseInt(buffer.toString("latin1", at, eol), 16);
    if (size === 0) return buffer.length >= eol + 4 ? eol + 4 : undefined;
    at = eol + 2 + size + 2;
    if (at > buffer.length) return undefined;
  }
}

function rawConnection(host, port, path) {
  const bytes = Buffer.from(`GET ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\n\r\n`, "latin1");
  let socket;
  let buffer = Buffer.alloc(0);
  let waiting; // { resolve, t0 }
  let open = false;
  const fail = (reason) => {
    open = false;
    socket?.destroy();
    const w = waiting;
    waiting = undefined;
    w?.resolve({ ok: false, reason, ms: performance.now() - w.t0 });
  };
  const onData = (chunk) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0 || waiting === undefined) return;
    const head = buffer.toString("latin1", 0, end);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
    let bodyEnd;
    if (length !== undefined) bodyEnd = end + 4 + Number(length);
    else if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) bodyEnd = chunkedEnd(buffer, end + 4);
    else return fail("neither content-length nor chunked");
    if (bodyEnd === undefined || buffer.length < bodyEnd) return;
    buffer = buffer.subarray(bodyEnd);
    const w = waiting;
    waiting = undefined;
    w.resolve({ ok: head.startsWith("HTTP/1.1 200"), reason: head.slice(9, 12), ms: performance.now() - w.t0 });
  };
  const connect = () =>
    new Promise((resolve) => {
      socket = netConnect({ host, port, noDelay: true }, () => {
        open = true;
        resolve();
      });
      socket.on("data", onData);
      socket.on("error", (e) => fail(e.code ?? "error"));
      socket.on("close", () => fail("closed"));
    });
  return {
    /** sends one request; `t0` is when it was due */
    async send(t0) {
      if (!open) await connect();
      return new Promise((resolve) => {
        waiting = { resolve, t0 };
        socket.write(bytes);
      });
    },
    close: () => {
      open = false;
      socket?.destroy();
    },
  };
}

/**
 * Requests at a fixed rate over `connections` keep-alive connections for `seconds`: latency
 * percentiles, each from the moment the request was due (a request waits for a free
 * connection as it would behind a pool). The first `warmupSeconds` at the same rate, on the
 * same connections, are not recorded: what is measured is the steady state, not the opening
 * of this client's connections (and, through a proxy, of its pooled ones).
 */
export async function fixedRate(host, port, { rate = 200, seconds = 5, connections = 4, path = "/", warmupSeconds = 1 } = {}) {
  const pool = Array.from({ length: connections }, () => rawConnection(host, port, path));
  const free = [...pool];
  const queue = [];
  const run = async (t0) => {
    const connection = free.pop() ?? (await new Promise((resolve) => queue.push(resolve)));
    const result = await connection.send(t0);
    const next = queue.shift();
    if (next !== undefined) next(connection);
    else free.push(connection);
    return result;
  };
  const paced = async (count, record) => {
    const pending = [];
    const interval = 1000 / rate;
    const start = performance.now();
    for (let i = 0; i < count; i += 1) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((res) => setTimeout(res, wait));
      pending.push(run(performance.now()).then(record));
    }
    await Promise.all(pending);
  };
  await paced(Math.round(rate * warmupSeconds), () => undefined);
  const latencies = [];
  let failed = 0;
  await paced(rate * seconds, (r) => {
    if (r.ok) latencies.push(r.ms);
    else failed += 1;
  });
  for (const c of pool) c.close();
  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), failed, count: latencies.length, latencies };
}

/**
 * `fixedRate` against several targets at the same time, each at `rate`, their requests
 * spread evenly between each other's. Whatever slows the machine for a moment (another
 * process's burst, the hypervisor taking the CPU) then falls on every target alike, where
 * targets measured one after another each get the noise of their own few seconds: in runs
 * of that kind here, nginx "added" 3.5 ms at p99 to one round and 0.2 ms to the next.
 */
export async function fixedRateTogether(targets, options = {}) {
  const rate = options.rate ?? 200;
  return Promise.all(
    targets.map(async ([host, port], k) => {
      await new Promise((resolve) => setTimeout(resolve, (k * 1000) / rate / targets.length));
      return fixedRate(host, port, options);
    }),
  );
}

export function quantile(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}
