// The floor of a rollout: what the daemon itself needs, with no tool in between. One Node
// process talks to the Engine API (dockerode) and, per batch, creates and starts the new
// containers and waits for Docker's first healthy report of each; the old containers are
// stopped without waiting, as any start-first tool may; after the last batch it waits the
// monitor window once, which no tool that honours `monitor` can skip. Nothing of reroll's
// code is used, so the figure says what is left for a tool to win.
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";

const require = createRequire(import.meta.url);
const Docker = require("dockerode");

const docker = new Docker();

function healthcheck(intervalMs) {
  return {
    Test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"],
    Interval: intervalMs * 1e6,
    Timeout: 3e9,
    Retries: 3,
  };
}

async function createStarted(image, name, label, intervalMs) {
  const c = await docker.createContainer({
    name,
    Image: image,
    Labels: { "dev.reroll.project": label },
    Healthcheck: healthcheck(intervalMs),
    StopTimeout: 1,
  });
  await c.start();
  return c;
}

/** Resolves when every id has reported healthy (events since `sinceSec`). */
async function allHealthy(ids, sinceSec) {
  const wanted = new Set(ids);
  const stream = await docker.getEvents({ since: sinceSec, filters: JSON.stringify({ type: ["container"], event: ["health_status"], container: ids }) });
  return new Promise((resolve, reject) => {
    let buffer = "";
    stream.on("data", (chunk) => {
      buffer += chunk.toString();
      let nl;
      while ((nl = buffer.indexOf("\n")) !== -1) {
        const event = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (event.status === "health_status: healthy") wanted.delete(event.id);
        if (event.status === "health_status: unhealthy") reject(new Error(`${event.id} unhealthy`));
        if (wanted.size === 0) {
          stream.destroy();
          resolve();
        }
      }
    });
    stream.on("error", reject);
  });
}

/**
 * Rolls `replicas` containers of imageFrom to imageTo in batches of `parallelism`; returns
 * the wall time of the rollout itself (the r1 containers are up before the clock starts).
 */
export async function floorRollout({ label, replicas, parallelism, imageFrom, imageTo, intervalMs, monitorMs }) {
  const olds = [];
  const before = Math.floor(Date.now() / 1000) - 1;
  for (let i = 1; i <= replicas; i += 1) olds.push(await createStarted(imageFrom, `${label}-old-${i}`, label, intervalMs));
  await allHealthy(olds.map((c) => c.id), before);
  const start = process.hrtime.bigint();
  const stopping = [];
  for (let i = 0; i < replicas; i += parallelism) {
    const since = Math.floor(Date.now() / 1000) - 1;
    const batch = [];
    for (let j = i; j < Math.min(replicas, i + parallelism); j += 1) batch.push(await createStarted(imageTo, `${label}-new-${j + 1}`, label, intervalMs));
    await allHealthy(batch.map((c) => c.id), since);
    for (let j = i; j < Math.min(replicas, i + parallelism); j += 1) stopping.push(olds[j].stop({ t: 1 }));
  }
  await sleep(monitorMs);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await Promise.all(stopping);
  // its containers go at once, so that their healthchecks do not load the next measurement
  const mine = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${label}`] }) });
  await Promise.all(mine.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return ms;
}
