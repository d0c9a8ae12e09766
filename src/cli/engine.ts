import { createDockerEngine } from "../engine/docker-engine.js";
import { dockerConnectionFromEnv } from "../engine/connection.js";
import type { Engine } from "../engine/port.js";
import type { CliIo } from "./io.js";

/**
 * The Docker engine for a command, found from the environment as the docker CLI finds it.
 * No separate ping: the first real call reports an unreachable daemon as E_DOCKER_UNAVAILABLE.
 */
export async function connectEngine(io: CliIo): Promise<Engine> {
  return createDockerEngine(dockerConnectionFromEnv(io.env));
}
