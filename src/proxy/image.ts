import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { RerollError } from "../core/errors.js";
import type { EventSink } from "../core/events.js";
import type { Engine } from "../engine/port.js";
import { VERSION } from "../cli/version.js";

/**
 * reroll's own image, which the proxy containers run: built from the installed package
 * (package.json, bin/, dist/ and the production dependencies only) with the top-level
 * Dockerfile, when the daemon does not have it yet. It is tagged `reroll:<version>` and
 * labelled with a hash of the package's code, so a changed build of the same version (a
 * checkout) is rebuilt rather than run stale.
 */

export const PROXY_IMAGE_REPOSITORY = "reroll";
export const LABEL_VERSION = "dev.reroll.version";
export const LABEL_PACKAGE_HASH = "dev.reroll.package-hash";
/** on the Dockerfile's first stage, which the classic builder leaves behind untagged */
export const LABEL_BUILD_STAGE = "dev.reroll.image-stage";

/** the package's root: dist/proxy/image.js → ../.. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..");
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else if (entry.isFile()) out.push(path);
  }
  return out.sort();
}

const hashes = new Map<string, string>();

/**
 * A hash of what the image is made of, apart from the dependencies (pinned by package.json).
 * Read once per process: every proxied service of every `up` asks for it (~25 ms cold).
 */
export function packageHash(root = packageRoot()): string {
  const known = hashes.get(root);
  if (known !== undefined) return known;
  const hash = createHash("sha256");
  for (const path of [join(root, "package.json"), join(root, "Dockerfile"), ...filesUnder(join(root, "bin")), ...filesUnder(join(root, "dist"))]) {
    hash.update(relative(root, path)).update("\0").update(readFileSync(path)).update("\0");
  }
  const digest = hash.digest("hex").slice(0, 16);
  hashes.set(root, digest);
  return digest;
}

/** Where Node would find `name` from `dir`: its node_modules, then each parent's. */
function resolvePackageDir(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * The production dependency closure of the package at `root`, as directories to copy and
 * where they go under the image's node_modules: nested where npm nested them, flat for a
 * global install whose dependencies were hoisted above the package.
 */
export function productionDependencies(root = packageRoot()): { from: string; to: string }[] {
  const found = new Map<string, string>();
  const missing: string[] = [];
  const walk = (dir: string): void => {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
    for (const name of new Set([...Object.keys(manifest.dependencies ?? {}), ...optional])) {
      const at = resolvePackageDir(name, dir);
      if (at === undefined) {
        if (!optional.has(name)) missing.push(`${name} (needed by ${relative(root, dir) || "reroll"})`);
        continue;
      }
      if (found.has(at)) continue;
      const inside = at.startsWith(join(root, "node_modules") + sep);
      found.set(at, inside ? relative(root, at) : join("node_modules", at.slice(at.lastIndexOf(`${sep}node_modules${sep}`) + `${sep}node_modules${sep}`.length)));
      walk(at);
    }
  };
  walk(root);
  if (missing.length > 0) {
    throw new RerollError("E_PACKAGE_INCOMPLETE", "reroll's own dependencies are not all installed, so its image cannot be built.", {
      kind: "input",
      problems: missing,
      hint: "Run npm ci (in a checkout) or reinstall reroll.",
    });
  }
  return [...found].map(([from, to]) => ({ from, to }));
}

/**
 * The `node_modules/.bin` links npm makes for packages with a `bin`, made in the staged
 * copy: without them, npm prune takes the packages for incomplete and wants a registry.
 */
function linkBins(stage: string, packages: readonly string[]): void {
  for (const rel of packages) {
    const manifest = JSON.parse(readFileSync(join(stage, rel, "package.json"), "utf8")) as { name?: string; bin?: string | Record<string, string> };
    if (manifest.bin === undefined) continue;
    const bins = typeof manifest.bin === "string" ? { [(manifest.name ?? "").replace(/^@[^/]+\//, "")]: manifest.bin } : manifest.bin;
    // the node_modules directory the package sits in: …/node_modules/name or …/node_modules/@scope/name
    const depth = (manifest.name ?? "").startsWith("@") ? 2 : 1;
    let modules = join(stage, rel);
    for (let i = 0; i < depth; i++) modules = dirname(modules);
    mkdirSync(join(modules, ".bin"), { recursive: true });
    for (const [name, target] of Object.entries(bins)) {
      const link = join(modules, ".bin", name);
      if (!existsSync(link)) symlinkSync(join("..", relative(modules, join(stage, rel)), target), link);
    }
  }
}

/**
 * Removes reroll's own images other than `keep` that no container uses, and the first stages
 * its builds left untagged: each rebuild (a new version, a changed checkout) would otherwise
 * leave ~260 MB behind. `only` narrows it to images with these labels as well. One that a
 * proxy still runs is refused by the daemon and stays until that proxy is replaced.
 */
export async function pruneProxyImages(engine: Engine, keep: string, only: readonly string[] = []): Promise<void> {
  const stale = [...(await engine.listImages([LABEL_PACKAGE_HASH, ...only])), ...(await engine.listImages([LABEL_BUILD_STAGE, ...only]))];
  for (const image of stale) {
    if (image.id === keep) continue;
    await engine.removeImage(image.id).catch(() => undefined);
  }
}

export function proxyImageRef(): string {
  return `${PROXY_IMAGE_REPOSITORY}:${VERSION}`;
}

/** The id of reroll's image for this package when the daemon has it (not stale); nothing is built. */
export async function currentProxyImage(engine: Engine): Promise<string | undefined> {
  const existing = await engine.inspectImage(proxyImageRef());
  return existing !== undefined && existing.labels[LABEL_PACKAGE_HASH] === packageHash(packageRoot()) ? existing.id : undefined;
}

/** The id of reroll's image for this package, built now if the daemon lacks it or has a stale one. */
export async function ensureProxyImage(engine: Engine, emit: EventSink = () => undefined): Promise<string> {
  const current = await currentProxyImage(engine);
  if (current !== undefined) return current;
  const root = packageRoot();
  const hash = packageHash(root);

  emit({ type: "build-start", service: "reroll-proxy", context: root, dockerfile: join(root, "Dockerfile") });
  const stage = mkdtempSync(join(tmpdir(), "reroll-image-"));
  try {
    cpSync(join(root, "Dockerfile"), join(stage, "Dockerfile"));
    // the manifest as the image needs it: without devDependencies, which are not sent (npm
    // prune in the Dockerfile would otherwise look for them in a registry) and without scripts
    const { devDependencies: _dev, scripts: _scripts, ...manifest } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(stage, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    for (const dir of ["bin", "dist"]) cpSync(join(root, dir), join(stage, dir), { recursive: true });
    const dependencies = productionDependencies(root);
    for (const dep of dependencies) {
      // a package's own nested node_modules are copied when they are found as dependencies
      cpSync(dep.from, join(stage, dep.to), { recursive: true, filter: (src) => src === dep.from || !relative(dep.from, src).split(sep).includes("node_modules") });
    }
    linkBins(stage, dependencies.map((d) => d.to));
    const { createBuildContext } = await import("../build/context.js");
    const { followBuild } = await import("../build/build.js");
    const context = await createBuildContext({ context: stage, dockerfile: join(stage, "Dockerfile") });
    const outcome = await followBuild(
      "reroll-proxy",
      engine.build({
        context: context.stream,
        dockerfile: context.dockerfile,
        tags: [proxyImageRef()],
        buildArgs: { NODE_VERSION: process.versions.node.split(".")[0]! },
        labels: { [LABEL_VERSION]: VERSION, [LABEL_PACKAGE_HASH]: hash },
        noCache: false,
        pull: false,
      }),
      emit,
    );
    if (outcome.error !== undefined || outcome.imageId === undefined) {
      throw new RerollError("E_BUILD_FAILED", `Building reroll's own image (${proxyImageRef()}) failed: ${outcome.error ?? "no image id"}`, {
        kind: "failed",
        problems: outcome.lastLines.map((l) => `  | ${l}`),
        hint: `It builds FROM node:${process.versions.node.split(".")[0]}-slim: pull it (docker pull node:${process.versions.node.split(".")[0]}-slim), or run npm run setup, which makes a local stand-in where no registry is reachable.`,
      });
    }
    const image = await engine.inspectImage(proxyImageRef());
    await pruneProxyImages(engine, image?.id ?? outcome.imageId);
    return image?.id ?? outcome.imageId;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
