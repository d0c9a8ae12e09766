// Runs the reroll CLI in this process and, at exit, reports the process's peak resident
// memory on stderr as `REROLL_MAX_RSS_KB=<n>` (process.resourceUsage().maxRSS is in KiB).
process.on("exit", () => {
  process.stderr.write(`\nREROLL_MAX_RSS_KB=${process.resourceUsage().maxRSS}\n`);
});
const cli = await import("../dist/bundle/reroll.mjs");
await cli.run();
