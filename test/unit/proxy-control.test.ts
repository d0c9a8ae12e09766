import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { RerollError } from "../../src/core/errors.js";
import type { ContainerDetails, Engine, ExecSession } from "../../src/engine/port.js";
import { ProxyControl } from "../../src/proxy/control-client.js";

/** How the CLI opens a proxy's control session when Docker is restarting the proxy, or has stopped it. */

const details = (state: string, restartCount: number): ContainerDetails =>
  ({ id: "c0ffee", names: ["shop-web-proxy"], imageId: "sha256:abc", labels: {}, state, running: state === "running" || state === "restarting", exitCode: 3, restartCount }) as unknown as ContainerDetails;

const notRunning = () => new RerollError("E_NOT_RUNNING", "shop-web-proxy is not running: Container c0ffee is restarting, wait until the container is running", { kind: "failed" });

/** a control session whose bridge says at once that the socket is connected (reply id 0) */
const connectedSession = (): ExecSession => ({
  output: (async function* () {
    yield Buffer.from('{"id":0,"ok":true}\n');
    await new Promise(() => undefined);
  })(),
  write: () => undefined,
  close: () => undefined,
});

describe("ProxyControl.open", () => {
  it("fails, with Docker's state and the proxy's last log lines, once Docker has restarted it twice more while reroll waits", async () => {
    let restarts = 4;
    let execs = 0;
    const engine = {
      exec: async () => {
        execs += 1;
        throw notRunning();
      },
      inspectContainer: async () => details("restarting", restarts++),
      containerLogs: async () => ["Error: Cannot find module '/opt/reroll/bin/reroll.js'", "Node.js v20.20.2"],
    } as unknown as Engine;
    const started = Date.now();
    const error = (await ProxyControl.open(engine, "shop-web-proxy").catch((e: unknown) => e)) as RerollError;
    expect(error).toBeInstanceOf(RerollError);
    expect(error.code).toBe("E_PROXY_UNREACHABLE");
    expect(error.kind).toBe("failed");
    expect(error.message).toBe("The proxy shop-web-proxy does not answer on its control socket: it is restarting, restarted 6 times by Docker, last exit code 3.");
    expect(error.problems).toEqual([notRunning().message, "log: Error: Cannot find module '/opt/reroll/bin/reroll.js'", "log: Node.js v20.20.2"]);
    expect(error.hint).toMatch(/docker logs shop-web-proxy/);
    // recreated from the same image it would exit again: the hint says how to build it anew
    expect(error.hint).toMatch(/remove that image first \(docker rmi -f abc\) and reroll proxy up builds reroll's image anew/);
    // not the 15 s deadline: three tries
    expect(execs).toBe(3);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("waits for a proxy between two of Docker's restarts that comes back", async () => {
    let execs = 0;
    const engine = {
      exec: async () => {
        execs += 1;
        if (execs <= 3) throw notRunning();
        return connectedSession();
      },
      inspectContainer: async () => details("restarting", 1),
    } as unknown as Engine;
    const control = await ProxyControl.open(engine, "shop-web-proxy");
    expect(execs).toBe(4);
    control.close();
  });

  it("an exec whose stream never answers does not hold it past its deadline: the session is closed and the error names the state", async () => {
    let closed = 0;
    // its output ends only when it is closed, as a hijacked stream does
    const silent = (): ExecSession => {
      const output = new PassThrough();
      return {
        output,
        write: () => undefined,
        close: () => {
          closed += 1;
          output.end();
        },
      };
    };
    const engine = {
      exec: async () => silent(),
      inspectContainer: async () => details("running", 7),
      containerLogs: async () => [],
    } as unknown as Engine;
    const started = Date.now();
    const error = (await ProxyControl.open(engine, "shop-web-proxy", 300).catch((e: unknown) => e)) as RerollError;
    expect(error.code).toBe("E_PROXY_UNREACHABLE");
    expect(error.problems).toContain("the control session did not answer");
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(closed).toBeGreaterThanOrEqual(1);
  });

  it("fails at once for a proxy that was stopped", async () => {
    let execs = 0;
    const engine = {
      exec: async () => {
        execs += 1;
        throw notRunning();
      },
      inspectContainer: async () => details("exited", 0),
      containerLogs: async () => [],
    } as unknown as Engine;
    const error = (await ProxyControl.open(engine, "shop-web-proxy").catch((e: unknown) => e)) as RerollError;
    expect(error.code).toBe("E_PROXY_UNREACHABLE");
    expect(error.message).toBe("The proxy shop-web-proxy does not answer on its control socket: it is exited.");
    expect(error.hint).toBe("See its log: docker logs shop-web-proxy. reroll proxy up recreates it from its image.");
    expect(execs).toBe(1);
  });

  it("passes on an error that is not about the container's state", async () => {
    const engine = {
      exec: async () => {
        throw new RerollError("E_DOCKER_UNAVAILABLE", "Docker does not answer", { kind: "failed" });
      },
    } as unknown as Engine;
    await expect(ProxyControl.open(engine, "shop-web-proxy")).rejects.toMatchObject({ code: "E_DOCKER_UNAVAILABLE" });
  });
});
