import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import type { Spec } from "../../src/core/spec/types.js";
import type { ContainerSummary, Engine } from "../../src/engine/port.js";
import { down, movedReplicas, status } from "../../src/rollout/inspect.js";

/** What `status` says of a service, from the containers a daemon lists. */
const PROJECT = "shop";
const spec = { project: PROJECT, services: [{ name: "web", ports: [], deploy: { replicas: 3 } }] } as unknown as Spec;

const replica = (revision: number, slot: number, state = "running", hash = `h${revision}`): ContainerSummary => ({
  id: `id-${revision}-${slot}-${state}`,
  names: [`shop-web-r${revision}-${slot}`],
  imageId: `sha256:${revision}`,
  state,
  health: state === "running" ? "healthy" : undefined,
  labels: { "dev.reroll.project": PROJECT, "dev.reroll.service": "web", "dev.reroll.revision": String(revision), "dev.reroll.slot": String(slot), "dev.reroll.spec-hash": hash },
});

const lock = (pid: number): ContainerSummary => ({
  id: "lock",
  names: [`${PROJECT}-reroll-lock`],
  imageId: "sha256:state",
  state: "created",
  labels: { "dev.reroll.project": PROJECT, "dev.reroll.lock-holder": JSON.stringify({ pid, host: hostname(), command: "reroll up", since: Date.now() - 1000 }) },
});

/** the ledger's record that r2 of web completed */
const ledger: ContainerSummary = {
  id: "ledger",
  names: [`${PROJECT}-reroll-ledger-1`],
  imageId: "sha256:state",
  state: "created",
  labels: { "dev.reroll.project": PROJECT, "dev.reroll.ledger": JSON.stringify({ seq: 1, services: { web: [{ revision: 2, imageId: "sha256:2", outcome: "completed", at: 0 }] } }) },
};

const said = async (containers: ContainerSummary[]) => {
  const engine = { listContainers: async () => containers, listImages: async () => [], inspectImage: async () => undefined } as unknown as Engine;
  const result = await status(spec, engine);
  return { rollout: result.services[0]!.rollout, lock: result.lock, staleLock: result.staleLock };
};

/** a pid that no process has: one past the kernel's limit */
const DEAD_PID = 4_194_304 + 1;

describe("status", () => {
  it("tells a service that is down from a rollout that stopped halfway", async () => {
    expect((await said([replica(2, 1), replica(2, 2), replica(2, 3)])).rollout).toBe("converged");
    // stopped by hand or exited: degraded, and up replaces it
    expect((await said([replica(2, 1), replica(2, 2, "exited"), replica(2, 3)])).rollout).toBe("degraded: shop-web-r2-2 exited; reroll up replaces it");
    expect((await said([replica(2, 1, "exited"), replica(2, 2, "exited"), replica(2, 3, "exited")])).rollout).toBe(
      "degraded: shop-web-r2-1 exited, shop-web-r2-2 exited, shop-web-r2-3 exited; reroll up replaces them",
    );
    expect((await said([replica(2, 1), replica(2, 2)])).rollout).toBe("degraded: 2 of 3 replicas ready");
    // with the last completed rollout on record: nothing running is down, not drifted; r1 running is drifted
    expect((await said([ledger, replica(2, 1, "exited"), replica(2, 2, "exited"), replica(2, 3, "exited")])).rollout).toMatch(/^degraded: shop-web-r2-1 exited, /);
    expect((await said([ledger, replica(1, 1), replica(1, 2), replica(1, 3)])).rollout).toBe("drifted: r1 runs, the last completed rollout was r2");
    expect((await said([])).rollout).toBe("not deployed");
    // what only a halted rollout leaves
    const interrupted = "interrupted: run reroll up to finish or reroll rollback";
    expect((await said([replica(2, 1), replica(1, 2), replica(1, 3)])).rollout).toBe(interrupted);
    expect((await said([replica(2, 1), replica(2, 2), replica(2, 3), replica(1, 1, "exited")])).rollout).toBe(interrupted);
    expect((await said([replica(2, 1), replica(2, 2), replica(2, 3, "created")])).rollout).toBe(interrupted);
    expect((await said([replica(2, 1), replica(2, 2), replica(2, 3, "running", "h2-changed")])).rollout).toBe(interrupted);
  });

  it("a service scaled to 0 after a completed rollout is converged, not 'not deployed'", async () => {
    const scaledToZero = { ...spec, services: [{ name: "web", ports: [], deploy: { replicas: 0 } }] } as unknown as Spec;
    const engine = { listContainers: async () => [ledger], listImages: async () => [], inspectImage: async () => undefined } as unknown as Engine;
    expect((await status(scaledToZero, engine)).services[0]!.rollout).toBe("converged");
  });

  it("a service with ports whose door is gone, stopped or crashing is degraded, though every replica is ready", async () => {
    const withPorts = { ...spec, services: [{ name: "web", ports: [{ target: 80, published: 8080 }], deploy: { replicas: 3 } }] } as unknown as Spec;
    const engine = { listContainers: async () => [replica(2, 1), replica(2, 2), replica(2, 3)], listImages: async () => [], inspectImage: async () => undefined } as unknown as Engine;
    expect((await status(withPorts, engine)).services[0]!.rollout).toBe("degraded: no door publishes its ports (reroll proxy down, or it was removed); reroll up or reroll proxy up starts one");
    // one that keeps exiting is there, and Docker lists it "restarting": up makes it anew
    const proxy = (state: string): ContainerSummary => ({ id: "proxy", names: ["shop-web-proxy-8080"], imageId: "sha256:haproxy", state, labels: { "dev.reroll.project": PROJECT, "dev.reroll.proxy-for": "web" } });
    const withProxy = (state: string) => ({ listContainers: async () => [replica(2, 1), replica(2, 2), replica(2, 3), proxy(state)], listImages: async () => [], inspectImage: async () => undefined }) as unknown as Engine;
    expect((await status(withPorts, withProxy("restarting"))).services[0]!.rollout).toBe(
      "degraded: its door keeps exiting and Docker restarts it (docker logs says why); reroll up or reroll proxy up recreates it",
    );
    // one killed by hand (docker kill): Docker does not restart it, and its port is closed
    expect((await status(withPorts, withProxy("exited"))).services[0]!.rollout).toBe("degraded: its door shop-web-proxy-8080 is exited, so that port is closed; reroll up or reroll proxy up starts it");
    expect((await status(withPorts, withProxy("running"))).services[0]!.rollout).toBe("converged");
  });

  it("lists the replicas and proxies of services the Compose file no longer has, apart from its own", async () => {
    const renamed = { ...replica(1, 1), id: "old", names: ["shop-api-r1-1"], labels: { ...replica(1, 1).labels, "dev.reroll.service": "api" } };
    const proxy: ContainerSummary = { id: "p", names: ["shop-api-proxy"], imageId: "sha256:proxy", state: "running", labels: { "dev.reroll.project": PROJECT, "dev.reroll.proxy-for": "api" } };
    const engine = { listContainers: async () => [replica(2, 1), replica(2, 2), replica(2, 3), renamed, proxy], listImages: async () => [], inspectImage: async () => undefined } as unknown as Engine;
    const result = await status(spec, engine);
    expect(result.services[0]!.rollout).toBe("converged");
    expect(result.orphans).toEqual([
      { name: "shop-api-r1-1", service: "api", state: "running" },
      { name: "shop-api-proxy", service: "api", state: "running" },
    ]);
  });

  it("a lock whose holder's process is gone is an interrupted rollout; a live holder's is one in progress", async () => {
    const gone = await said([replica(2, 1), replica(1, 2), replica(1, 3), lock(DEAD_PID)]);
    expect(gone.lock).toBeUndefined();
    expect(gone.staleLock).toMatch(new RegExp(`^reroll up \\(pid ${DEAD_PID} on `));
    expect(gone.rollout).toBe("interrupted: its rollout's process is gone; run reroll up to finish or reroll rollback");
    const live = await said([replica(2, 1), replica(1, 2), replica(1, 3), lock(process.pid)]);
    expect(live.lock).toMatch(new RegExp(`^reroll up \\(pid ${process.pid} on `));
    expect(live.staleLock).toBeUndefined();
    expect(live.rollout).toBe("rollout in progress");
  });
});

describe("a replica its door routes at an old address", () => {
  it("is named when Docker restarted it at another address, and not when it is where the door routes it", () => {
    const running = (id: string, address: string): ContainerSummary => ({ id, names: [`shop-web-r1-${id.slice(-1)}`], imageId: "sha256:web", state: "running", labels: {}, addresses: { shop_default: address } });
    const door = (targets: { id: string; host: string }[]) => ({ service: "web", name: "shop-web-proxy-8080", running: true, state: "running", image: "haproxy:lts", published: [], targets: targets.map((t) => ({ ...t, state: "ready" as const, outstanding: 0 })) });
    const replicas = [running("aaaaaaaaaaaa0001", "172.18.0.3"), running("bbbbbbbbbbbb0002", "172.18.0.9")];
    expect(movedReplicas(replicas, [door([{ id: "aaaaaaaaaaaa", host: "172.18.0.3" }, { id: "bbbbbbbbbbbb", host: "172.18.0.4" }])], "shop_default")).toEqual(["shop-web-r1-2"]);
    expect(movedReplicas(replicas, [door([{ id: "aaaaaaaaaaaa", host: "172.18.0.3" }, { id: "bbbbbbbbbbbb", host: "172.18.0.9" }])], "shop_default")).toEqual([]);
  });
});

describe("down of a service nobody has", () => {
  it("is refused before anything is touched, naming the project's services; an orphan still running can be named", async () => {
    const orphan = { ...replica(1, 1), id: "old", names: ["shop-api-r1-1"], labels: { ...replica(1, 1).labels, "dev.reroll.service": "api" } };
    const touched: string[] = [];
    const engine = {
      listContainers: async () => [replica(2, 1), orphan],
      createContainer: async () => {
        touched.push("create");
        throw new Error("not expected");
      },
    } as unknown as Engine;
    await expect(down({ ...spec, file: "/p/compose.yaml" }, engine, { services: ["wbe"] })).rejects.toMatchObject({ code: "E_SERVICE_UNKNOWN", kind: "input", message: "No such service in project shop: wbe.", hint: "Its services: api, web." });
    expect(touched).toEqual([]);
    // api is not in the file, but its replica runs: down takes the lock to remove it
    await expect(down({ ...spec, file: "/p/compose.yaml" }, engine, { services: ["api"] })).rejects.toThrow("not expected");
    expect(touched).toEqual(["create"]);
  });
});
