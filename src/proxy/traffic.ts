import type { EventSink } from "../core/events.js";
import type { ServiceSpec } from "../core/spec/types.js";
import type { Engine } from "../engine/port.js";
import type { ServiceDoors } from "./manage.js";

/**
 * The door's part in replacing a replica (DESIGN.md, "Traffic"): a new replica is routed
 * once it passed its gate — the proxy's own fast probe of the health path when the service
 * has one, Docker's health otherwise — and an old one is drained (no new request, in-flight
 * ones finish, bounded by drain_timeout) before reroll stops it.
 */
export interface Traffic {
  /** the proxy's probe as the readiness gate: resolves when the replica answered 2xx and is routed */
  readonly gate?: (replica: { readonly id: string; readonly name: string }) => Promise<void>;
  /** routes replicas that passed Docker's gate (nothing to do for ones the probe routed) */
  admit(replicas: readonly { readonly id: string; readonly name: string }[]): Promise<void>;
  /** stops routing to a replica and waits for what it has in flight */
  retire(replica: { readonly id: string; readonly name: string }): Promise<void>;
  /** holds new requests at the door (HTTP) while no replica can take them: a stop-first slot that replaces every replica; resolves with the release */
  readonly hold?: () => Promise<() => Promise<void>>;
}

/** the longest a stop-first replacement holds requests: the old replica's stop and the new one's start and probe fit well inside */
export const STOP_FIRST_HOLD_MS = 60_000;

export function proxyTraffic(engine: Engine, control: ServiceDoors, service: ServiceSpec, network: string, emit: EventSink): Traffic {
  const address = async (id: string): Promise<string> => {
    const details = await engine.inspectContainer(id);
    const host = details?.networks[network];
    if (host === undefined || host === "") throw new Error(`${details?.names[0] ?? id} has no address on ${network}`);
    return host;
  };
  const probed = service.proxy.healthcheckPath !== undefined;
  return {
    ...(service.proxy.mode === "http"
      ? {
          hold: async () => {
            const release = await control.hold(STOP_FIRST_HOLD_MS);
            emit({ type: "proxy-hold", service: service.name, ms: STOP_FIRST_HOLD_MS, why: "stop-first: no replica serves until the new one is routed" });
            return async () => {
              await release();
              emit({ type: "proxy-hold", service: service.name, why: "the slot is over" });
            };
          },
        }
      : {}),
    ...(probed
      ? {
          gate: async (replica) => {
            const routed = await control.add({ id: replica.id, name: replica.name, host: await address(replica.id) }, true);
            emit({ type: "proxy-route", service: service.name, name: replica.name, probes: routed.probes, ms: routed.ms });
          },
        }
      : {}),
    async admit(replicas) {
      if (probed) return;
      await Promise.all(
        replicas.map(async (replica) => {
          await control.add({ id: replica.id, name: replica.name, host: await address(replica.id) }, false);
          emit({ type: "proxy-route", service: service.name, name: replica.name, probes: 0, ms: 0 });
        }),
      );
    },
    async retire(replica) {
      const { routed, ...drained } = await control.drain(replica.id);
      if (routed) emit({ type: "proxy-drain", service: service.name, name: replica.name, ...drained });
    },
  };
}
