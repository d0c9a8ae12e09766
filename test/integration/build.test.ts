import { execFile, execFileSync, spawn } from "node:child_process";
import { chmod, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { build } from "../../src/build/build.js";
import { dockerConnectionFromEnv } from "../../src/engine/connection.js";
import { createDockerEngine } from "../../src/engine/docker-engine.js";
import { loadSpec } from "../../src/spec/load.js";
import { REROLL_BIN, runReroll } from "../support/cli.js";
import { docker, removeProject, runInImage, testName } from "../support/docker.js";
import { eventually, freePort } from "../support/net.js";
import { tempDir } from "../support/tmp.js";

/** Real builds through the daemon; base images are made locally by the setup script. */
const BASE = "reroll-local/busybox:latest";

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

interface Events {
  events: Record<string, unknown>[];
  result: { images: { service: string; imageId: string; revision: number; reused: boolean; tags: string[] }[] } | undefined;
}

function parseJsonLines(stdout: string): Events {
  const lines = stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    events: lines.filter((l) => l["type"] !== "result"),
    result: lines.find((l) => l["type"] === "result") as Events["result"],
  };
}

describe("reroll build against the real daemon", async () => {
  const root = await tempDir();
  const projects: string[] = [];
  const newProject = async (label: string, files: Record<string, string>): Promise<{ dir: string; project: string }> => {
    const project = testName(label);
    projects.push(project);
    const dir = join(root, project);
    await writeTree(dir, files);
    return { dir, project };
  };
  afterAll(async () => {
    for (const project of projects) await removeProject(project);
  });

  it(".dockerignore is honoured as Docker does: secrets and node_modules absent, exceptions present", async () => {
    const { dir, project } = await newProject("ignore", {
      "compose.yaml": "services:\n  app:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nCOPY . /ctx\nCMD ["true"]\n`,
      ".dockerignore": [
        "# secrets and dependencies stay out",
        ".env",
        "node_modules",
        "!node_modules/keep",
        "**/*.log",
        "!important.log",
        "docs/**",
        "!docs/README.md",
        "Dockerfile",
        "",
      ].join("\n"),
      ".env": "API_TOKEN=s3cret\n",
      "src/app.js": "console.log('app')\n",
      "src/debug.log": "noise\n",
      "important.log": "keep me\n",
      "node_modules/left-pad/index.js": "module.exports = 1\n",
      "node_modules/keep/keep.js": "kept\n",
      "docs/guide/intro.md": "# intro\n",
      "docs/README.md": "# readme\n",
    });
    await chmod(join(dir, "src/app.js"), 0o750);
    await symlink("src/app.js", join(dir, "app-link.js"));

    const run = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const imageId = run.stdout.split(" ")[2]!;
    const listing = await runInImage(imageId, ["sh", "-c", "cd /ctx && find . | sort && stat -c '%a %n' src/app.js && readlink app-link.js"]);
    const files = listing.trim().split("\n");
    expect(files).toEqual([
      ".",
      "./.dockerignore",
      "./app-link.js",
      "./compose.yaml",
      "./docs",
      "./docs/README.md",
      "./important.log",
      "./node_modules",
      "./node_modules/keep",
      "./node_modules/keep/keep.js",
      "./src",
      "./src/app.js",
      "750 src/app.js",
      "src/app.js",
    ]);
    expect(listing).not.toContain(".env");
    expect(listing).not.toContain("left-pad");
    expect(listing).not.toContain("debug.log");
  });

  it("sends the same context as `docker build` (same files in the image)", async () => {
    const { dir, project } = await newProject("parity", {
      "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      dockerfile: build/app.Dockerfile\n",
      "build/app.Dockerfile": `FROM ${BASE}\nCOPY . /ctx\n`,
      ".dockerignore": "*.tmp\n**/cache\n!keep/cache\ntmp*\n/abs\n",
      "a.tmp": "x",
      "keep/cache/x": "x",
      "other/cache/y": "y",
      "tmpdir/z": "z",
      "abs/q": "q",
      "sub/abs/q": "q",
      "sub/b.tmp": "b",
    });
    const run = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const ours = await runInImage(run.stdout.split(" ")[2]!, ["sh", "-c", "cd /ctx && find . | sort"]);

    const cliTag = `${project}-cli:parity`;
    await new Promise<void>((resolve, reject) => {
      const child = spawn("docker", ["build", "-q", "-f", "build/app.Dockerfile", "-t", cliTag, "--label", `dev.reroll.project=${project}`, "."], {
        cwd: dir,
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
        stdio: "ignore",
      });
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`docker build exited ${code}`))));
    });
    const theirs = await runInImage(cliTag, ["sh", "-c", "cd /ctx && find . | sort"]);
    expect(ours).toBe(theirs);
    expect(ours).toContain("./keep/cache/x");
    expect(ours).not.toContain("./other/cache");
  });

  it("a failing RUN: exit 1 naming the service, the step and its last output; nothing tagged", async () => {
    const { dir, project } = await newProject("fail", {
      "compose.yaml": "services:\n  broken:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nRUN echo preparing-the-thing && echo it-went-wrong-marker >&2 && exit 3\n`,
    });
    const run = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/E_BUILD_FAILED/);
    expect(run.stderr).toMatch(/Building broken failed at step 2\/\d+: RUN echo preparing/);
    expect(run.stderr).toMatch(/returned a non-zero code: 3/);
    expect(run.stderr).toContain("it-went-wrong-marker");
    expect(run.stderr).toMatch(/hint: Fix the Dockerfile or the context/);
    const tagged = await docker.listImages({ filters: JSON.stringify({ reference: [`${project}-broken`] }) });
    expect(tagged).toEqual([]);
  });

  it.each([
    ["an unknown instruction", "FROMM reroll-local/busybox:latest\n", /line 1: unknown instruction: FROMM/],
    ["a COPY without its arguments", `FROM ${BASE}\nCOPY\n`, /line 2: COPY requires at least two arguments/],
    ["an empty file", "", /cannot be empty/],
  ])("a Dockerfile the daemon cannot parse (%s) is an input error naming the file and the line: exit 2, nothing built", async (_what, dockerfile, said) => {
    const { dir, project } = await newProject("unparsable", { "compose.yaml": "services:\n  app:\n    build: .\n", Dockerfile: dockerfile });
    const run = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(`app's Dockerfile ${join(dir, "Dockerfile")} cannot be built`);
    expect(run.stderr).toMatch(said);
    expect(run.stderr).toContain("[E_DOCKERFILE_INVALID]");
    expect(run.stderr).not.toMatch(/bug in reroll/);
    expect(await docker.listImages({ filters: JSON.stringify({ label: [`dev.reroll.project=${project}`] }) })).toEqual([]);
  });

  it("a base image that cannot be pulled: exit 1 with a hint about the registry, and about --pull when it asked", async () => {
    // a registry on a closed loopback port: the daemon's pull is refused at once, and goes nowhere else
    const registry = `127.0.0.1:${await freePort()}`;
    const repository = `${registry}/${testName("pull")}/busybox`;
    await docker.getImage(BASE).tag({ repo: repository, tag: "1" });
    try {
      const { dir, project } = await newProject("pull", {
        "compose.yaml": "services:\n  app:\n    build: .\n  gone:\n    build: { context: ., dockerfile: Gone.Dockerfile }\n",
        Dockerfile: `FROM ${repository}:1\nRUN true\n`,
        "Gone.Dockerfile": `FROM ${repository}:absent\nRUN true\n`,
      });
      // the daemon has it: built without asking the registry
      const local = await runReroll(["build", "app", "-p", project, "--output", "plain"], { cwd: dir });
      expect(local.code, local.stderr).toBe(0);
      const pulled = await runReroll(["build", "app", "--pull", "-p", project, "--output", "plain"], { cwd: dir });
      expect(pulled.code).toBe(1);
      expect(pulled.stderr).toMatch(/Building app failed at step 1\/2: FROM /);
      expect(pulled.stderr).toMatch(/hint: --pull asks the registry for every base image, .*: build without --pull/);
      const absent = await runReroll(["build", "gone", "-p", project, "--output", "plain"], { cwd: dir });
      expect(absent.code).toBe(1);
      expect(absent.stderr).toMatch(/hint: The daemon does not have that base image and could not pull it/);
    } finally {
      await docker.getImage(`${repository}:1`).remove();
    }
  });

  it("build args come from Compose interpolation, .env and the shell, shell first", async () => {
    const { dir, project } = await newProject("args", {
      "compose.yaml": [
        "services:",
        "  worker:",
        "    build:",
        "      context: ./worker",
        "      args:",
        "        GREETING: ${GREETING:-hello}",
        "        TARGET_NAME: $${literal}",
        "",
      ].join("\n"),
      ".env": "GREETING=from-dotenv\n",
      "worker/Dockerfile": `FROM ${BASE}\nARG GREETING\nARG TARGET_NAME\nRUN echo "$GREETING $TARGET_NAME" > /greeting\n`,
    });
    const fromDotEnv = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(fromDotEnv.code, fromDotEnv.stderr).toBe(0);
    expect(await runInImage(fromDotEnv.stdout.split(" ")[2]!, ["cat", "/greeting"])).toBe("from-dotenv ${literal}\n");

    const fromShell = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir, env: { GREETING: "from-shell" } });
    expect(fromShell.code, fromShell.stderr).toBe(0);
    expect(await runInImage(fromShell.stdout.split(" ")[2]!, ["cat", "/greeting"])).toBe("from-shell ${literal}\n");
  });

  it("a multi-stage target builds that stage only, and a Dockerfile outside the context works", async () => {
    const { dir, project } = await newProject("target", {
      "compose.yaml": "services:\n  api:\n    build:\n      context: ./app\n      dockerfile: ../docker/api.Dockerfile\n      target: runtime\n",
      "app/main.txt": "main\n",
      "docker/api.Dockerfile": `FROM ${BASE} AS runtime\nCOPY main.txt /main.txt\nRUN ls -a / > /listing\n\nFROM runtime AS broken\nRUN exit 7\n`,
    });
    const run = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const image = run.stdout.split(" ")[2]!;
    expect(await runInImage(image, ["cat", "/main.txt"])).toBe("main\n");
    // the random name the outside Dockerfile travels under is dropped from the context by the daemon
    expect(await runInImage(image, ["sh", "-c", "ls -a / | grep -c dockerfile || true"])).toBe("0\n");
  });

  it("builds two services in parallel, and numbers revisions: +1 on change, kept on a cache hit", async () => {
    const { dir, project } = await newProject("revs", {
      "compose.yaml": "services:\n  one:\n    build: ./one\n  two:\n    build: ./two\n",
      "one/Dockerfile": `FROM ${BASE}\nCOPY v.txt /v.txt\nRUN sleep 1\n`,
      "one/v.txt": "1\n",
      "two/Dockerfile": `FROM ${BASE}\nRUN sleep 1\n`,
    });
    const first = await runReroll(["build", "-p", project, "--output", "json"], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    const { events, result } = parseJsonLines(first.stdout);
    const starts = events.filter((e) => e["type"] === "build-start").map((e) => events.indexOf(e));
    const firstDone = events.findIndex((e) => e["type"] === "build-done");
    expect(starts).toHaveLength(2);
    expect(Math.max(...starts), "both builds started before either finished").toBeLessThan(firstDone);
    expect(events.every((e) => e["schema"] === 1 && typeof e["time"] === "string")).toBe(true);
    expect(result!.images.map((i) => [i.service, i.revision, i.reused])).toEqual([
      ["one", 1, false],
      ["two", 1, false],
    ]);

    const again = parseJsonLines((await runReroll(["build", "one", "-p", project, "--output", "json"], { cwd: dir })).stdout).result!;
    expect(again.images[0]).toMatchObject({ service: "one", revision: 1, reused: true, imageId: result!.images[0]!.imageId });

    await writeFile(join(dir, "one/v.txt"), "2\n");
    const changed = parseJsonLines((await runReroll(["build", "one", "-p", project, "--output", "json"], { cwd: dir })).stdout).result!;
    expect(changed.images[0]).toMatchObject({ service: "one", revision: 2, reused: false });
    expect(changed.images[0]!.tags).toEqual([`${project}-one:latest`, `${project}-one:r2`]);
    const labels = (await docker.getImage(changed.images[0]!.imageId).inspect()).Config.Labels;
    expect(labels).toMatchObject({ "dev.reroll.project": project, "dev.reroll.service": "one", "dev.reroll.revision": "2" });
    expect(JSON.parse(labels["dev.reroll.base-images"]!)).toEqual([{ ref: BASE, id: (await docker.getImage(BASE).inspect()).Id }]);
  });

  it("labels keep the image as built: same command and config; an image with no command is labelled too", async () => {
    const { dir, project } = await newProject("label", {
      "compose.yaml": "services:\n  app:\n    build: ./app\n  data:\n    build: ./data\n",
      "app/Dockerfile": `FROM ${BASE}\nENV MODE=prod\nWORKDIR /srv\nCMD ["httpd", "-f", "-p", "80"]\n`,
      // FROM scratch with no CMD: no container can be made from it as it is
      "data/Dockerfile": "FROM scratch\nCOPY seed.txt /seed.txt\n",
      "data/seed.txt": "seed\n",
    });
    const run = await runReroll(["build", "-p", project, "--output", "json"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    for (const image of parseJsonLines(run.stdout).result!.images) {
      const labelled = await docker.getImage(image.imageId).inspect();
      const built = await docker.getImage(labelled.Config.Labels["dev.reroll.build-id"]!).inspect();
      expect(labelled.Config.Labels).toMatchObject({ "dev.reroll.service": image.service, "dev.reroll.revision": "1" });
      // the labelled image is the built one plus labels: the same command, environment and filesystem
      expect(labelled.Config.Cmd ?? null).toEqual(built.Config.Cmd ?? null);
      expect(labelled.Config.Env ?? null).toEqual(built.Config.Env ?? null);
      expect(labelled.Config.WorkingDir).toEqual(built.Config.WorkingDir);
      expect(labelled.RootFS.Layers?.at(-1)).toBe(built.RootFS.Layers?.at(-1));
    }
    // no work container is left behind
    expect(await docker.listContainers({ all: true, filters: JSON.stringify({ name: [`${project}-`] }) })).toEqual([]);
  });

  it("leaves no labeller container, and removes a labeller a dead build left, only of its own service", async () => {
    const { dir, project } = await newProject("labeller", {
      "compose.yaml": "services:\n  app:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nCOPY v.txt /v.txt\nCMD ["cat", "/v.txt"]\n`,
      "v.txt": "1\n",
    });
    const labellers = async (): Promise<string[]> =>
      (await docker.listContainers({ all: true, filters: { name: [`${project}-`] } })).flatMap((c) => c.Names.map((n) => n.slice(1))).filter((n) => n.includes("-reroll-labeller-")).sort();
    // what a build killed between making its labeller and removing it leaves, for two services
    const strays = [`${project}-app-reroll-labeller-dead1`, `${project}-other-reroll-labeller-dead2`];
    for (const name of strays) await docker.createContainer({ name, Image: BASE, Cmd: ["true"] });
    try {
      const engine = await createDockerEngine(dockerConnectionFromEnv(process.env));
      const spec = await loadSpec({ cwd: dir, project, env: {} });
      // a few minutes old: still possibly a live build's, left alone
      await build(spec, engine, { now: () => Date.now() + 60_000 });
      expect(await labellers()).toEqual(strays);
      // older than any live build's: the next build of `app` removes app's, not other's
      await writeFile(join(dir, "v.txt"), "2\n");
      const { images } = await build(spec, engine, { now: () => Date.now() + 11 * 60_000 });
      expect(images[0]).toMatchObject({ revision: 2, reused: false });
      expect(await labellers()).toEqual([`${project}-other-reroll-labeller-dead2`]);
    } finally {
      for (const name of strays) await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
    }
  });

  it("a service whose Dockerfile builds FROM another service's image waits for it", async () => {
    const { dir, project } = await newProject("deps", {
      "base/Dockerfile": `FROM ${BASE}\nRUN sleep 1 && echo base > /base.txt\n`,
      "app/Dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN cat /base.txt > /app.txt\n",
    });
    // The app's FROM names the base service's image through a build arg; app is listed first.
    await writeFile(
      join(dir, "compose.yaml"),
      `services:\n  app:\n    build:\n      context: ./app\n      args: { BASE_IMAGE: "${project}-base:latest" }\n  base:\n    build: ./base\n`,
    );
    const run = await runReroll(["build", "-p", project, "--output", "json"], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const { events, result } = parseJsonLines(run.stdout);
    expect(events).toContainEqual(expect.objectContaining({ type: "build-queued", service: "app", after: ["base"] }));
    const baseDone = events.findIndex((e) => e["type"] === "build-done" && e["service"] === "base");
    const appStart = events.findIndex((e) => e["type"] === "build-start" && e["service"] === "app");
    expect(baseDone).toBeLessThan(appStart);
    const app = result!.images.find((i) => i.service === "app")!;
    expect(await runInImage(app.imageId, ["cat", "/app.txt"])).toBe("base\n");
  });

  it("retention keeps x-reroll.history revisions and never removes one a container uses", async () => {
    const { dir, project } = await newProject("keep", {
      "compose.yaml": "x-reroll:\n  history: 2\nservices:\n  svc:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nCOPY v.txt /v.txt\n`,
      "v.txt": "1\n",
    });
    const buildRevision = async (content: string) => {
      await writeFile(join(dir, "v.txt"), content);
      const run = await runReroll(["build", "-p", project, "--output", "json"], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      return parseJsonLines(run.stdout);
    };
    const r1 = (await buildRevision("1\n")).result!.images[0]!;
    const user = await docker.createContainer({ Image: r1.imageId, Cmd: ["true"], Labels: { "dev.reroll.project": project } });
    await buildRevision("2\n");
    const third = await buildRevision("3\n");
    expect(third.events).toContainEqual(expect.objectContaining({ type: "image-kept", revision: 1, reason: "a container uses it" }));
    expect(await docker.getImage(r1.imageId).inspect()).toBeTruthy();

    await user.remove({ force: true });
    const fourth = await buildRevision("4\n");
    expect(fourth.events.filter((e) => e["type"] === "image-removed").map((e) => e["revision"]).sort()).toEqual([1, 2]);
    const revisions = (await docker.listImages({ filters: JSON.stringify({ label: [`dev.reroll.project=${project}`, "dev.reroll.revision"] }) }))
      .map((i) => Number(i.Labels["dev.reroll.revision"]))
      .sort();
    expect(revisions).toEqual([3, 4]);
  });

  it("history 1: each build removes the one before, and :latest always names the new image", async () => {
    const { dir, project } = await newProject("one", {
      "compose.yaml": "x-reroll:\n  history: 1\nservices:\n  svc:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nCOPY v.txt /v.txt\n`,
      "v.txt": "1\n",
    });
    for (const [n, content] of ["1\n", "2\n", "3\n"].entries()) {
      await writeFile(join(dir, "v.txt"), content);
      const run = await runReroll(["build", "-p", project, "--output", "json"], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      const { result, events } = parseJsonLines(run.stdout);
      const image = result!.images[0]!;
      expect(image.revision).toBe(n + 1);
      if (n > 0) expect(events).toContainEqual(expect.objectContaining({ type: "image-removed", revision: n }));
      const latest = await docker.getImage(`${project}-svc:latest`).inspect();
      expect(latest.Id).toBe(image.imageId);
      expect(latest.RepoTags.sort()).toEqual([`${project}-svc:latest`, `${project}-svc:r${n + 1}`]);
      expect(await runInImage(image.imageId, ["cat", "/v.txt"])).toBe(content);
      const left = await docker.listImages({ filters: JSON.stringify({ label: [`dev.reroll.project=${project}`, "dev.reroll.revision"] }) });
      expect(left.map((i) => i.Id)).toEqual([image.imageId]);
    }
  });

  it("a daemon that lost reroll's state image (pruned): the next build imports it again and takes its lock", async () => {
    const { dir, project } = await newProject("stateimage", {
      "compose.yaml": "services:\n  app:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nCMD ["true"]\n`,
    });
    const first = await runReroll(["build", "-p", project, "--output", "plain"], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    // Untagged, not deleted: a second tag keeps the image that other tests' locks were made from.
    const keep = { repo: "reroll-test-state-kept", tag: project };
    await docker.getImage("reroll-state:1").tag(keep);
    await docker.getImage("reroll-state:1").remove();
    try {
      await expect(docker.getImage("reroll-state:1").inspect()).rejects.toMatchObject({ statusCode: 404 });
      const run = await runReroll(["build", "-p", project, "--no-cache", "--output", "plain"], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^app r2 sha256:/);
      const state = await docker.getImage("reroll-state:1").inspect();
      expect(state.Config.Labels?.["dev.reroll.state-image"]).toBe("1");
      expect(await docker.listContainers({ all: true, filters: JSON.stringify({ name: [`${project}-app-revision-lock`] }) })).toEqual([]);
    } finally {
      // The old state image now has only this tag, and other projects' never-started lock and
      // ledger containers may still name it: without force the tag could not go. Those
      // containers are only ever read and removed, which works without their image.
      await docker.getImage(`${keep.repo}:${keep.tag}`).remove({ force: true }).catch(() => undefined);
    }
  });

  it("run as `reroll`, with NODE_EXTRA_CA_CERTS set: node starts without it, the processes it starts get it back", async () => {
    const { dir, project } = await newProject("launcher", {
      "compose.yaml": "services:\n  app:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nCMD ["true"]\n`,
    });
    // a `git` first on PATH (the build asks it for the context's commit) that records its own
    // environment and that of its parent, the reroll process
    const fakeBin = join(dir, "fake-bin");
    await mkdir(fakeBin);
    const realGit = execFileSync("sh", ["-c", "command -v git"], { encoding: "utf8" }).trim();
    await writeFile(
      join(fakeBin, "git"),
      `#!/bin/sh\nenv > "${dir}/git.env"\ntr '\\0' '\\n' < /proc/$PPID/environ > "${dir}/reroll.env"\nexec ${realGit} "$@"\n`,
    );
    await chmod(join(fakeBin, "git"), 0o755);
    const bundle = "/etc/ssl/certs/ca-certificates.crt";
    const run = await promisify(execFile)(REROLL_BIN, ["build", "-p", project, "--output", "plain"], {
      cwd: dir,
      env: { ...process.env, PATH: `${fakeBin}:${process.env["PATH"]}`, NODE_EXTRA_CA_CERTS: bundle },
    });
    expect(run.stdout).toMatch(/^app r1 sha256:/);
    const lines = async (file: string) => (await readFile(join(dir, file), "utf8")).split("\n");
    expect((await lines("reroll.env")).filter((l) => l.startsWith("NODE_EXTRA_CA_CERTS="))).toEqual([]);
    expect(await lines("git.env")).toContain(`NODE_EXTRA_CA_CERTS=${bundle}`);
    expect((await lines("git.env")).filter((l) => l.startsWith("REROLL_DEFERRED_CA_CERTS="))).toEqual([]);
  });

  it("an invalid Compose file: exit 2 listing every problem with its path, nothing built", async () => {
    const { dir, project } = await newProject("invalid", {
      "compose.yaml": [
        "services:",
        "  web:",
        "    build: .",
        "    privileged: true",
        "    deploy:",
        "      replicas: three",
        "      update_config:",
        "        order: sideways",
        "    ports: ['80-90:80']",
        "  api:",
        "    image: ${API_IMAGE?set API_IMAGE to the image to run}",
        "",
      ].join("\n"),
      Dockerfile: `FROM ${BASE}\n`,
    });
    const run = await runReroll(["build", "-p", project], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/E_SPEC_INVALID/);
    for (const path of [
      "services.web.privileged",
      "services.web.deploy.replicas",
      "services.web.deploy.update_config.order",
      "services.web.ports[0]",
      "services.api.image: required variable API_IMAGE is missing a value: set API_IMAGE",
    ]) {
      expect(run.stderr).toContain(path);
    }
    expect(await docker.listImages({ filters: JSON.stringify({ label: [`dev.reroll.project=${project}`] }) })).toEqual([]);
  });

  it("no Compose file: exit 2 saying where it looked", async () => {
    const run = await runReroll(["build"], { cwd: root });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`No Compose file in ${root}`);
    expect(run.stderr).toContain("compose.yaml, compose.yml, docker-compose.yml, docker-compose.yaml");
  });

  it("Ctrl-C cancels the build in flight and exits 130, leaving no build container", async () => {
    const { dir, project } = await newProject("interrupt", {
      "compose.yaml": "services:\n  slow:\n    build: .\n",
      Dockerfile: `FROM ${BASE}\nRUN echo started-slow-step && sleep 60\n`,
    });
    const child = spawn(process.execPath, [REROLL_BIN, "build", "-p", project, "--output", "plain"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    await eventually(async () => stderr.includes("started-slow-step"), "the slow step to start", 30_000);
    const started = Date.now();
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(130);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(stderr).toMatch(/interrupted/i);
    await eventually(
      async () => (await docker.listContainers({ all: true })).every((c) => !(c.Command ?? "").includes("started-slow-step")),
      "the build's intermediate container to go",
      20_000,
    );
  });
});
