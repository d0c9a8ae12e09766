// `npm run bench`: runs every benchmark and prints one table. See bench/README.md.
import { printTable, removeStaleBenchProjects } from "./lib.js";

const suites = [
  ["bump", () => import("./bump.bench.js")],
  ["build", () => import("./build.bench.js")],
  ["rollout", () => import("./rollout.bench.js")],
  ["proxy", () => import("./proxy.bench.js")],
];
const only = process.argv.slice(2);
const rows = [];
const started = Date.now();
removeStaleBenchProjects();
for (const [name, load] of suites) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stderr.write(`[bench] ${name}…\n`);
  rows.push(...(await (await load()).run()));
}
printTable(rows);
console.log(`\n${rows.filter((r) => r.ok).length} of ${rows.length} targets met; ${((Date.now() - started) / 1000).toFixed(1)} s; node ${process.version}, ${process.platform}/${process.arch}`);
