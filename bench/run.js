// `npm run bench`: runs every benchmark and prints one table. See bench/README.md.
import { writeFileSync } from "node:fs";
import { printTable, removeStaleBenchProjects, tableLines } from "./lib.js";

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
const summary = `${rows.filter((r) => r.ok).length} of ${rows.length} targets met; ${((Date.now() - started) / 1000).toFixed(1)} s; node ${process.version}, ${process.platform}/${process.arch}`;
console.log(`\n${summary}`);
// a run of every suite is what README's Performance section shows; a partial run is printed only
if (only.length === 0) writeFileSync(new URL("./results.md", import.meta.url), `${tableLines(rows).join("\n")}\n\n${summary}\n`);
