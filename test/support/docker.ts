import Docker from "dockerode";
import { demuxLogs } from "../../src/engine/docker-engine.js";

/** Tests talk to the daemon directly for setup and checks; reroll's own code goes through its port. */
export const docker = new Docker();

/**
 * Test resources are named `reroll-test-<epoch seconds>-<random>`, so a later run can tell an
 * abandoned one (from a crashed run) by its age and remove it, without touching a run in progress.
 */
export function testName(label: string): string {
  return `reroll-test-${Math.floor(Date.now() / 1000)}-${Math.random().toString(36).slice(2, 8)}-${label}`;
}

const STALE_AFTER_SECONDS = 3600;

/** Removes image tags left by test runs that ended more than an hour ago (crash-safe cleanup). */
export async function removeStaleTestTags(): Promise<void> {
  const now = Date.now() / 1000;
  for (const image of await docker.listImages()) {
    for (const tag of image.RepoTags ?? []) {
      const started = /^reroll-test-(\d+)-/.exec(tag)?.[1];
      if (started !== undefined && now - Number(started) > STALE_AFTER_SECONDS) {
        await docker.getImage(tag).remove({ noprune: true }).catch(() => undefined);
      }
    }
  }
}

/** Removes every tag of `repository` (what one test created). */
export async function removeRepositoryTags(repository: string): Promise<void> {
  for (const image of await docker.listImages()) {
    for (const tag of image.RepoTags ?? []) {
      if (tag.startsWith(`${repository}:`)) await docker.getImage(tag).remove({ noprune: true }).catch(() => undefined);
    }
  }
}

/** Runs `cmd` in a throwaway container of `image` and returns its output. */
export async function runInImage(image: string, cmd: string[]): Promise<string> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: cmd,
    Labels: { "dev.reroll.test": testName("run") },
  });
  try {
    await container.start();
    await container.wait();
    const logs = await container.logs({ stdout: true, stderr: true });
    return demuxLogs(logs);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** Runs `cmd` inside a running container (docker exec, as `user` when given) and waits for it to end; returns its exit code. */
export async function execIn(id: string, cmd: string[], user?: string): Promise<number> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, ...(user === undefined ? {} : { User: user }) });
  const stream = await exec.start({ hijack: true, stdin: false });
  await new Promise<void>((resolve, reject) => {
    stream.on("end", resolve);
    stream.on("error", reject);
    stream.resume();
  });
  return ((await exec.inspect()) as { ExitCode: number | null }).ExitCode ?? -1;
}

/** Removes everything of one test project: containers (with volumes), then images. */
export async function removeProject(project: string): Promise<void> {
  const filters = JSON.stringify({ label: [`dev.reroll.project=${project}`] });
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
  }
  for (let pass = 0; pass < 3; pass += 1) {
    const images = await docker.listImages({ all: true, filters });
    if (images.length === 0) break;
    for (const image of images) {
      for (const tag of image.RepoTags ?? []) if (tag !== "<none>:<none>") await docker.getImage(tag).remove().catch(() => undefined);
      await docker.getImage(image.Id).remove({ force: true }).catch(() => undefined);
    }
  }
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => undefined);
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
}

/** Removes what test runs that ended over an hour ago left behind (their project names carry the time). */
export async function removeStaleTestProjects(): Promise<void> {
  const now = Date.now() / 1000;
  const projects = new Set<string>();
  const filters = JSON.stringify({ label: ["dev.reroll.project"] });
  for (const c of await docker.listContainers({ all: true, filters })) projects.add(c.Labels["dev.reroll.project"] ?? "");
  for (const i of await docker.listImages({ filters })) projects.add(i.Labels?.["dev.reroll.project"] ?? "");
  for (const project of projects) {
    const started = /^reroll-test-(\d+)-/.exec(project)?.[1];
    if (started !== undefined && now - Number(started) > 3600) await removeProject(project);
  }
}
