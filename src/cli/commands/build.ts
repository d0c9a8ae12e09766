import { build } from "../../build/build.js";
import { connectEngine } from "../engine.js";
import { specFor } from "../spec.js";
import type { CliIo } from "../io.js";
import type { BuildCommandOptions } from "../program.js";
import { createEventRenderer } from "../render/events.js";
import { resolveOutputMode } from "../render/output-mode.js";

/** Flags → library call → rendered result: events while building, then one line per image. */
export async function runBuild(options: BuildCommandOptions, io: CliIo): Promise<void> {
  const mode = resolveOutputMode(options.global.output, io);
  const spec = await specFor(options.global, io);
  const engine = await connectEngine(io);
  const renderer = createEventRenderer(mode, io);
  try {
    const result = await build(spec, engine, {
      services: options.services,
      ...(options.parallel === undefined ? {} : { parallel: options.parallel }),
      noCache: options.noCache,
      pull: options.pull,
      signal: io.signal,
      onEvent: renderer.sink,
    });
    // Progress is finished before results go to stdout, so the two never interleave on a terminal.
    renderer.close();
    if (mode === "json") {
      io.stdout.write(`${JSON.stringify({ type: "result", project: spec.project, images: result.images })}\n`);
    } else {
      for (const image of result.images) {
        io.stdout.write(`${image.service} r${image.revision} ${image.imageId} ${image.tags.join(" ")}\n`);
      }
    }
  } finally {
    renderer.close();
  }
}
