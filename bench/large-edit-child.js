// Run in a fresh process by bump.bench.js: the CPU a `reroll bump` of a large Dockerfile
// costs, first as the CLI meets it (cold: nothing compiled yet), then warm. Two figures:
// the edit itself (parse, choose the tag, plan, verify, apply) and the whole library call
// (read + edit + atomic, fsynced write).
import { writeFileSync } from "node:fs";
import { largeDockerfile } from "./bump.bench.js";

const [file, mode] = process.argv.slice(2);
const lib = await import("../dist/index.js");
const text = largeDockerfile();
const cpu = (before) => {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
};
const samples = [];
for (let i = 0; i < 12; i += 1) {
  writeFileSync(file, text);
  if (mode === "edit") {
    const before = process.cpuUsage();
    const parsed = lib.parseDockerfile(text);
    const plan = lib.planBump(parsed, lib.findBumpTargets(parsed, "golang"), { level: "patch" });
    const edited = lib.applyEdits(text, plan.edits);
    samples.push(cpu(before));
    if (plan.edits.length !== 1 || edited === text) throw new Error("the large Dockerfile's ARG was not bumped");
  } else {
    const before = process.cpuUsage();
    const result = await lib.bump({ dockerfile: file, image: "golang", level: "patch" });
    samples.push(cpu(before));
    if (result.changes.length !== 1) throw new Error("the large Dockerfile's ARG was not bumped");
  }
}
process.stdout.write(JSON.stringify({ lines: text.split("\n").length - 1, samples }));
