import { Agent, request } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

/**
 * Continuous load for the proxy tests, independent of reroll's own --verify: `clients`
 * loops, half on keep-alive connections and half on a new connection per request. Every
 * answer is recorded with its time and body (the app answers its version).
 */
export interface Answer {
  readonly at: number;
  readonly status: number;
  readonly body: string;
}

export interface Load {
  readonly answers: Answer[];
  readonly failures: { at: number; reason: string }[];
  stop(): Promise<void>;
}

/** One request to 127.0.0.1; `secure` speaks HTTPS and accepts the test's own self-signed certificate. */
export function get(port: number, path = "/", agent: Agent | false = false, headers: Record<string, string> = {}, secure = false): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const send = secure ? httpsRequest : request;
    const req = send({ host: "127.0.0.1", port, path, agent, headers: agent === false ? { connection: "close", ...headers } : headers, timeout: 30_000, ...(secure ? { rejectUnauthorized: false } : {}) }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

export function startLoad(port: number, clients = 16, path = "/", secure = false): Load {
  const answers: Answer[] = [];
  const failures: { at: number; reason: string }[] = [];
  let running = true;
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: clients, rejectUnauthorized: false }) : new Agent({ keepAlive: true, maxSockets: clients });
  const loops = Array.from({ length: clients }, async (_, i) => {
    while (running) {
      try {
        const res = await get(port, path, i % 2 === 0 ? agent : false, {}, secure);
        if (res.status !== 200) failures.push({ at: Date.now(), reason: `HTTP ${res.status}: ${res.body.trim()}` });
        else answers.push({ at: Date.now(), status: res.status, body: res.body.trim() });
      } catch (error) {
        failures.push({ at: Date.now(), reason: (error as NodeJS.ErrnoException).code ?? String(error) });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  });
  return {
    answers,
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}
