import { createDockerEngine } from "../engine/docker-engine.js";
import { dockerConnectionFromEnv } from "../engine/connection.js";
import type { Engine } from "../engine/port.js";
import type { CliIo } from "./io.js";

/** The Docker engine for a command, found from the environment as the docker CLI finds it. */
export async function connectEngine(io: CliIo): Promise<Engine> {
  const engine = await createDockerEngine(dockerConnectionFromEnv(io.env));
  await engine.ping();
  return engine;
}
