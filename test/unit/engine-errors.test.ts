import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RerollError } from "../../src/core/errors.js";
import { createDockerEngine } from "../../src/engine/docker-engine.js";
import type { Engine } from "../../src/engine/port.js";
import { tempDir } from "../support/tmp.js";

/**
 * What the engine adapter makes of the daemon's refusals: each is a RerollError with the
 * daemon's own words and a kind the CLI maps to an exit code, never an "unexpected error".
 * A stand-in daemon on a Unix socket answers each route with the error the real one gives.
 */

const ANSWERS: Record<string, [number, string]> = {
  "POST /containers/create": [400, 'invalid mount config for type "bind": bind source path does not exist: /srv/app/config'],
  "POST /containers/c1/start": [400, 'failed to create shim task: OCI runtime create failed: exec: "/bin/no-such-server": stat /bin/no-such-server: no such file or directory: unknown'],
  "POST /containers/c2/exec": [409, "Container c2 is restarting, wait until the container is running"],
  "POST /networks/create": [400, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"],
  "POST /volumes/create": [404, 'create shop_data: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found'],
};

let server: Server;
let engine: Engine;

beforeAll(async () => {
  const socketPath = join(await tempDir("reroll-engine-errors-"), "docker.sock");
  server = createServer((req, res) => {
    const route = `${req.method} ${(req.url ?? "").replace(/\?.*$/, "").replace(/^\/v[\d.]+/, "")}`;
    req.resume();
    req.on("end", () => {
      if (route === "GET /networks" || route === "GET /volumes/shop_data") {
        res.writeHead(route === "GET /networks" ? 200 : 404, { "Content-Type": "application/json" });
        res.end(route === "GET /networks" ? "[]" : '{"message":"no such volume"}');
        return;
      }
      const missingImage = route === "POST /containers/create" && /name=shop-reroll-lock/.test(req.url ?? "");
      const [status, message] = missingImage ? [404, "No such image: reroll-state:1"] : (ANSWERS[route] ?? [500, `no stand-in for ${route}`]);
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  engine = await createDockerEngine({ socketPath, describe: socketPath });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const refusal = async (call: () => Promise<unknown>): Promise<RerollError> => {
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RerollError);
  return error as RerollError;
};

describe("the daemon's refusals", () => {
  it("a create: E_CREATE_REFUSED, naming the container", async () => {
    const error = await refusal(() => engine.createContainer({ name: "shop-web-r2-1", image: "sha256:abc", labels: {} }));
    expect(error).toMatchObject({ code: "E_CREATE_REFUSED", kind: "failed" });
    expect(error.message).toBe('Docker refused to create shop-web-r2-1: invalid mount config for type "bind": bind source path does not exist: /srv/app/config');
  });

  it("a create of an image the daemon lacks: E_NO_SUCH_IMAGE, which a caller may mend (the state image is imported, then the create tried again)", async () => {
    const error = await refusal(() => engine.createContainer({ name: "shop-reroll-lock", image: "reroll-state:1", labels: {} }));
    expect(error).toMatchObject({ code: "E_NO_SUCH_IMAGE", kind: "failed", message: "Docker refused to create shop-reroll-lock: No such image: reroll-state:1" });
  });

  it("a start: E_START_REFUSED", async () => {
    const error = await refusal(() => engine.startContainer("c1"));
    expect(error).toMatchObject({ code: "E_START_REFUSED", kind: "failed" });
    expect(error.message).toMatch(/^Docker could not start c1: failed to create shim task: .*no-such-server/);
  });

  it("an exec into a container between two restarts: E_NOT_RUNNING", async () => {
    const error = await refusal(() => engine.exec("c2", ["true"]));
    expect(error).toMatchObject({ code: "E_NOT_RUNNING", kind: "failed" });
    expect(error.message).toBe("c2 is not running: Container c2 is restarting, wait until the container is running");
  });

  it("a network: E_NETWORK_REFUSED, with what to do when the address pools ran out", async () => {
    const error = await refusal(() => engine.ensureNetwork("shop_default", {}));
    expect(error).toMatchObject({ code: "E_NETWORK_REFUSED", kind: "failed" });
    expect(error.message).toMatch(/^Docker could not create the network shop_default: could not find an available, non-overlapping IPv4 address pool/);
    expect(error.hint).toMatch(/docker network prune/);
  });

  it("a volume: E_VOLUME_REFUSED, naming its driver's problem", async () => {
    const error = await refusal(() => engine.ensureVolume("shop_data", {}, "nosuchdriver"));
    expect(error).toMatchObject({ code: "E_VOLUME_REFUSED", kind: "failed" });
    expect(error.message).toBe('Docker could not create the volume shop_data: create shop_data: error looking up volume plugin nosuchdriver: plugin "nosuchdriver" not found');
  });
});
