import type { Spec } from "../core/spec/types.js";
import { loadSpec } from "../spec/load.js";
import type { CliIo } from "./io.js";
import type { GlobalOptions } from "./program.js";

/** The Compose spec a command works on: -f/-p from the global options, the environment, the cwd. */
export function specFor(global: GlobalOptions, io: CliIo): Promise<Spec> {
  return loadSpec({
    cwd: io.cwd,
    env: io.env,
    ...(global.file === undefined ? {} : { file: global.file }),
    ...(global.project === undefined ? {} : { project: global.project }),
  });
}
