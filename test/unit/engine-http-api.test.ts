import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { writeFile } from "node:fs/promises";
import { execFileSync } from "node:child_process";
import { TarWriter } from "../../src/build/tar.js";
import { engineApi, type EngineApiError } from "../../src/engine/http-api.js";
import { tempDir } from "../support/tmp.js";

/**
 * The Engine API client's streaming calls (a build's tar body and JSON-lines answer, the event
 * subscription) against a stand-in daemon on a Unix socket: what reaches the daemon, and how
 * a daemon error, a failing body and an abort come back.
 */

let root: string;
const servers: Server[] = [];

beforeAll(async () => {
  root = await tempDir("reroll-http-api-");
});

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function daemon(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const socketPath = join(root, `d${servers.length}-${Date.now()}.sock`);
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return engineApi({ socketPath, describe: socketPath });
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function text(stream: AsyncIterable<Buffer>): Promise<string> {
  let out = "";
  for await (const chunk of stream) out += chunk.toString("utf8");
  return out;
}

describe("engineApi.stream", () => {
  it("streams the body to the daemon with the query (arrays repeated) and streams the answer back", async () => {
    let seen: { url: string; type: string | undefined; body: Buffer } | undefined;
    const api = await daemon(async (req, res) => {
      seen = { url: req.url ?? "", type: req.headers["content-type"], body: await readBody(req) };
      res.writeHead(200, { "Content-Type": "application/json" });
      res.write('{"stream":"Step 1/1"}\n');
      setTimeout(() => res.end('{"aux":{"ID":"sha256:abc"}}\n'), 20);
    });
    const body = Readable.from([Buffer.alloc(300_000, 1), Buffer.alloc(5, 2)]);
    const response = await api.stream("POST", "/build", {
      query: { dockerfile: "Dockerfile", t: ["a:1", "a:r2"], nocache: true, target: undefined },
      body,
      contentType: "application/x-tar",
    });
    expect(await text(response)).toBe('{"stream":"Step 1/1"}\n{"aux":{"ID":"sha256:abc"}}\n');
    expect(seen!.url).toBe("/build?dockerfile=Dockerfile&t=a%3A1&t=a%3Ar2&nocache=true");
    expect(seen!.type).toBe("application/x-tar");
    expect(seen!.body.length).toBe(300_005);
    expect(seen!.body.at(-1)).toBe(2);
  });

  it("with recycle, hands each chunk back once written: a slow daemon gets the archive intact from a few chunks' memory", async () => {
    let received: Buffer | undefined;
    const api = await daemon(async (req, res) => {
      const chunks: Buffer[] = [];
      // a daemon that reads slowly, so the socket is behind and chunks wait to be written
      for await (const chunk of req) {
        chunks.push(Buffer.from(chunk as Buffer));
        await new Promise((r) => setTimeout(r, 1));
      }
      received = Buffer.concat(chunks);
      res.writeHead(200);
      res.end("{}\n");
    });
    const files = Array.from({ length: 24 }, (_, i) => Buffer.alloc(400_000 + i, i + 1));
    const tar = new TarWriter();
    const pushed = new Set<ArrayBufferLike>();
    let chunks = 0;
    tar.stream.on("data", (chunk: Buffer) => {
      pushed.add(chunk.buffer);
      chunks += 1;
    });
    let given = 0;
    const recycle = (chunk: Buffer): void => {
      given += 1;
      tar.recycle(chunk);
    };
    const response = api.stream("POST", "/build", { body: tar.stream, recycle, contentType: "application/x-tar" });
    for (const [i, content] of files.entries()) {
      await writeFile(join(root, `recycled-${i}`), content);
      await tar.addFile({ name: `f${i}`, type: "file", mode: 0o644, mtime: new Date() }, join(root, `recycled-${i}`), content.length);
    }
    await tar.finish();
    expect(await text(await response)).toBe("{}\n");
    expect(given, "every chunk handed back").toBe(chunks);
    expect(pushed.size, "the chunks' memory reused").toBeLessThan(chunks / 4);
    await writeFile(join(root, "recycled.tar"), received!);
    const listing = execFileSync("tar", ["-xOf", join(root, "recycled.tar")], { maxBuffer: 64 * 1024 * 1024 });
    expect(listing.equals(Buffer.concat(files)), "the daemon got every file's bytes").toBe(true);
  });

  it("a daemon error rejects with its status code and message, as plain calls do", async () => {
    const api = await daemon(async (req, res) => {
      await readBody(req);
      res.writeHead(500, { "Content-Type": "application/json" });
      res.end('{"message":"dockerfile parse error line 1: unknown instruction: FORM"}');
    });
    const failure = api.stream("POST", "/build", { body: Readable.from([Buffer.from("tar")]) });
    await expect(failure).rejects.toMatchObject({ statusCode: 500, message: "(HTTP code 500) dockerfile parse error line 1: unknown instruction: FORM" });
    await expect(api("GET", "/nothing")).rejects.toMatchObject({ statusCode: 500 } satisfies Partial<EngineApiError>);
  });

  it("a body that fails (an unreadable context file) ends the call with that error", async () => {
    let daemonSawEnd = false;
    const api = await daemon((req, res) => {
      req.on("end", () => (daemonSawEnd = true));
      req.on("error", () => undefined);
      req.resume();
      req.on("close", () => res.destroy());
    });
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000));
    const call = api.stream("POST", "/build", { body });
    setTimeout(() => body.destroy(new Error("EACCES: permission denied, open 'secret.key'")), 20);
    await expect(call).rejects.toThrow(/EACCES: permission denied/);
    // the daemon got a cut request, never a complete (and so buildable) context
    expect(daemonSawEnd).toBe(false);
  });

  it("aborting closes the connection: before the answer the call rejects, after it the answer ends in an error", async () => {
    let closed = 0;
    const api = await daemon((req, res) => {
      req.resume();
      res.on("close", () => (closed += 1));
      if (req.url === "/events") {
        res.writeHead(200);
        res.write('{"Type":"container"}\n');
      }
      // /slow never answers
    });
    const before = new AbortController();
    const slow = api.stream("POST", "/slow", { body: Readable.from([Buffer.from("x")]), signal: before.signal });
    setTimeout(() => before.abort(), 20);
    await expect(slow).rejects.toThrow(/abort/i);

    const after = new AbortController();
    const events = await api.stream("GET", "/events", { signal: after.signal });
    const reading = text(events);
    setTimeout(() => after.abort(), 20);
    await expect(reading).rejects.toThrow(/abort/i);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(2);

    const already = new AbortController();
    already.abort();
    await expect(api.stream("GET", "/events", { signal: already.signal })).rejects.toThrow(/abort/i);
  });
});
