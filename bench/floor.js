// The floor of a rollout: what the daemon itself needs, with no tool in between. One Node
// process talks to the Engine API (dockerode) and, in `parallelism` lanes, creates and starts
// a new container and waits for Docker's first healthy report of it; the old containers are
// stopped without waiting, as any start-first tool may; after the last slot it waits the
// monitor window once, which no tool that honours `monitor` can skip. Nothing of reroll's
// code is used, so the figure says what is left for a tool to win. The containers are the
// ones any Compose-like tool runs: on a user-defined network (service names resolve) with
// a restart policy. Starting one there costs the daemon ~0.1 s more than on the default
// bridge (its DNS and iptables setup), measured here: a floor on the default bridge would
// not be a floor for such a tool.
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

async function createStarted(image, name, label, intervalMs, init) {
  const c = await docker.createContainer({
    name,
    Image: image,
    Labels: { "dev.reroll.project": label },
    Healthcheck: healthcheck(intervalMs),
    StopTimeout: 1,
    HostConfig: { NetworkMode: `${label}-net`, RestartPolicy: { Name: "unless-stopped" }, Init: init },
  });
  await c.start();
  return c;
}

/**
 * Docker's healthy reports for one label, from a subscription opened before anything is
 * created (the daemon replays only its last 256 events, and 30 containers' healthcheck
 * execs fill that in seconds). `healthy(ids)` resolves when each of them has reported.
 */
async function healthReports(label) {
  const seen = new Set();
  const waiters = [];
  const stream = await docker.getEvents({ filters: JSON.stringify({ type: ["container"], event: ["health_status"], label: [`dev.reroll.project=${label}`] }) });
  let buffer = "";
  stream.on("data", (chunk) => {
    buffer += chunk.toString();
    let nl;
    while ((nl = buffer.indexOf("\n")) !== -1) {
      const event = JSON.parse(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
      if (event.status === "health_status: healthy") seen.add(event.id);
      for (const w of [...waiters]) {
        if (w.ids.every((id) => seen.has(id))) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    }
  });
  return {
    healthy: (ids) => (ids.every((id) => seen.has(id)) ? Promise.resolve() : new Promise((resolve) => waiters.push({ ids, resolve }))),
    close: () => stream.destroy(),
  };
}

/**
 * Rolls `replicas` containers of imageFrom to imageTo in `parallelism` lanes; returns
 * the wall time of the rollout itself (the r1 containers are up before the clock starts).
 */
export async function floorRollout({ label, replicas, parallelism, imageFrom, imageTo, intervalMs, monitorMs, init = true }) {
  await docker.createNetwork({ Name: `${label}-net`, Labels: { "dev.reroll.project": label } });
  const reports = await healthReports(label);
  // the first replicas start all at once, as Swarm's and reroll's do: only the update is measured
  const olds = await Promise.all(Array.from({ length: replicas }, (_, i) => createStarted(imageFrom, `${label}-old-${i + 1}`, label, intervalMs, init)));
  await reports.healthy(olds.map((c) => c.id));
  const start = process.hrtime.bigint();
  const stopping = [];
  // `parallelism` lanes, each taking the next slot as soon as its own is healthy, as Swarm's
  // updater and reroll do: a batch that waits for its slowest replica is no floor for them
  let next = 0;
  const lane = async () => {
    for (let j = next++; j < replicas; j = next++) {
      const fresh = await createStarted(imageTo, `${label}-new-${j + 1}`, label, intervalMs, init);
      await reports.healthy([fresh.id]);
      stopping.push(olds[j].stop({ t: 1 }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallelism, replicas) }, lane));
  await sleep(monitorMs);
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await Promise.all(stopping);
  reports.close();
  // its containers go at once, so that their healthchecks do not load the next measurement
  const mine = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`dev.reroll.project=${label}`] }) });
  await Promise.all(mine.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  // The daemon can still be releasing the removed containers' endpoints, and Docker 20.10
  // sometimes keeps a stale one for good ("has active endpoints" with no container left):
  // a few tries, then the network is left to the next run's sweep of stale bench projects.
  for (let attempt = 1; ; attempt += 1) {
    try {
      await docker.getNetwork(`${label}-net`).remove();
      break;
    } catch (error) {
      if (!/active endpoints/.test(String(error?.message))) throw error;
      if (attempt >= 20) {
        process.stderr.write(`[bench] left the network ${label}-net: ${error.message}\n`);
        break;
      }
      await sleep(100);
    }
  }
  return ms;
}
