// Benchmarks for `reroll bump` (issue: start time within 3× of a bare `node -e 0`,
// a 5,000-line Dockerfile edited in under 50 ms of CPU).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { interleaved, limitRow, median, ratioRow } from "./lib.js";

const BIN = fileURLToPath(new URL("../bin/reroll.js", import.meta.url));
const START_TIME_TARGET_RATIO = 3;
const LARGE_EDIT_CPU_TARGET_MS = 50;
const ENV_WITHOUT_EXTRA_CA = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "NODE_EXTRA_CA_CERTS"));

const ORDINARY = `# syntax=docker/dockerfile:1
ARG NODE_VERSION=20.10.0
FROM node:\${NODE_VERSION}-alpine3.18 AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM node:\${NODE_VERSION}-alpine3.18 AS build
WORKDIR /app
COPY . .
RUN npm ci && npm run build

FROM node:\${NODE_VERSION}-alpine3.18
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
CMD ["node", "dist/server.js"]
`;

/** A 5,000-line Dockerfile: meta ARGs, 50 stages, continuation-heavy RUNs, heredocs, comments. */
export function largeDockerfile(lines = 5000) {
  // exactly `lines` lines: the loop stops short and the tail pads to the count
  const out = ["# syntax=docker/dockerfile:1", "ARG GO_VERSION=1.21.5", "ARG ALPINE=3.18"];
  let stage = 0;
  while (out.length < lines - 10) {
    if (out.length % 100 < 1 || stage === 0) {
      const base = stage % 5 === 0 ? "golang:${GO_VERSION}-alpine${ALPINE}" : stage % 5 === 1 ? "alpine:3.18" : `stage${stage - 1}`;
      out.push(`FROM ${base} AS stage${stage}`);
      stage += 1;
      continue;
    }
    const k = out.length % 7;
    if (k === 0) out.push(`# step ${out.length}: golang:1.21.5 mentioned in a comment`);
    else if (k === 1) out.push(`RUN set -eux; \\`, `    apk add --no-cache curl=8.${out.length}.0 \\`, `    && echo done-${out.length}`);
    else if (k === 2) out.push(`COPY --from=golang:1.20 /usr/local/go/VERSION /v${out.length}`);
    else if (k === 3) out.push(`RUN <<EOF`, `echo FROM nginx:1.18 ${out.length}`, `EOF`);
    else if (k === 4) out.push(`ENV V${out.length}="value ${out.length}"`);
    else out.push(`LABEL l${out.length}="golang:1.21.5"`);
  }
  out.push("FROM scratch", "COPY --from=stage1 /v10 /v");
  while (out.length < lines) out.push(`# padding ${out.length}`);
  return `${out.join("\n")}\n`;
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), "reroll-bench-bump-"));
  try {
    const ordinary = join(dir, "Dockerfile");
    const bumpOnce = () => {
      writeFileSync(ordinary, ORDINARY);
      const start = process.hrtime.bigint();
      const r = spawnSync(BIN, ["bump", "node", "--patch", "--dockerfile", ordinary], { stdio: "ignore" });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`reroll bump exited ${r.status}`);
      return ms;
    };
    const nodeOnce = (env) => () => {
      const start = process.hrtime.bigint();
      spawnSync(process.execPath, ["-e", "0"], { stdio: "ignore", env });
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    const versionOnce = () => {
      const start = process.hrtime.bigint();
      spawnSync(BIN, ["--version"], { stdio: "ignore" });
      return Number(process.hrtime.bigint() - start) / 1e6;
    };
    // Each reroll command is compared with the node start it gets: `bump` keeps
    // NODE_EXTRA_CA_CERTS (it may ask a registry over HTTPS), other commands start without it
    // (bin/reroll.js). Where the variable is unset, the two baselines are the same thing.
    const [node, nodeBare, version, bump] = interleaved([nodeOnce(process.env), nodeOnce(ENV_WITHOUT_EXTRA_CA), versionOnce, bumpOnce]);

    // CPU in fresh processes: the first call is what the CLI pays (cold); the rest are warm.
    const large = join(dir, "Dockerfile.large");
    let lineCount = 0;
    const measure = (mode) => {
      const colds = [];
      const warms = [];
      for (let i = 0; i < 7; i += 1) {
        const child = spawnSync(process.execPath, [fileURLToPath(new URL("./large-edit-child.js", import.meta.url)), large, mode], { encoding: "utf8" });
        if (child.status !== 0) throw new Error(`large-edit-child failed: ${child.stderr}`);
        const { lines, samples } = JSON.parse(child.stdout);
        lineCount = lines;
        colds.push(samples[0]);
        warms.push(...samples.slice(1));
      }
      return { cold: median(colds), warm: median(warms) };
    };
    const edit = measure("edit");
    const whole = measure("whole");

    return [
      ratioRow(
        "start: reroll --version (median wall)",
        version,
        process.env.NODE_EXTRA_CA_CERTS === undefined ? "node -e 0" : `node -e 0 without NODE_EXTRA_CA_CERTS, as the launcher starts it (${node.toFixed(1)} ms with it)`,
        nodeBare,
        START_TIME_TARGET_RATIO,
      ),
      ratioRow("start: reroll bump node --patch, 18-line file (median wall)", bump, "node -e 0", node, START_TIME_TARGET_RATIO),
      limitRow(`edit a ${lineCount}-line Dockerfile, cold as in the CLI (median CPU)`, edit.cold, LARGE_EDIT_CPU_TARGET_MS),
      limitRow(`edit a ${lineCount}-line Dockerfile, warm (median CPU)`, edit.warm, LARGE_EDIT_CPU_TARGET_MS),
      limitRow("bump() incl. read and fsynced atomic write, cold (median CPU)", whole.cold, LARGE_EDIT_CPU_TARGET_MS),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
