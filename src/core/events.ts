/**
 * What reroll reports while it works. Core code emits these; the CLI picks a renderer
 * (tty, plain, json) at the edge. The JSON form is NDJSON, one event per line, with
 * `schema` giving the version of this vocabulary.
 */
export const EVENT_SCHEMA_VERSION = 1;

export type BuildEvent =
  | { readonly type: "build-queued"; readonly service: string; readonly after: readonly string[] }
  | { readonly type: "build-start"; readonly service: string; readonly context: string; readonly dockerfile: string }
  | { readonly type: "build-context-sent"; readonly service: string; readonly files: number; readonly bytes: number }
  | { readonly type: "build-step"; readonly service: string; readonly step: number; readonly total: number; readonly instruction: string }
  | { readonly type: "build-output"; readonly service: string; readonly text: string }
  | { readonly type: "build-progress"; readonly service: string; readonly status: string; readonly id?: string; readonly progress?: string }
  | {
      readonly type: "build-done";
      readonly service: string;
      readonly imageId: string;
      readonly revision: number;
      readonly reused: boolean;
      readonly tags: readonly string[];
      readonly durationMs: number;
    }
  | {
      readonly type: "build-failed";
      readonly service: string;
      readonly message: string;
      readonly step?: string;
      readonly lastLines: readonly string[];
    }
  | { readonly type: "build-skipped"; readonly service: string; readonly reason: string }
  | { readonly type: "image-removed"; readonly service: string; readonly revision: number; readonly imageId: string }
  | { readonly type: "image-kept"; readonly service: string; readonly revision: number; readonly imageId: string; readonly reason: string }
  | { readonly type: "lock-wait"; readonly name: string; readonly holder: string };

export type RolloutEvent =
  | { readonly type: "rollout-plan"; readonly service: string; readonly plan: string }
  | { readonly type: "rollout-start"; readonly service: string; readonly revision: number; readonly from: readonly number[]; readonly reason: string }
  | {
      readonly type: "replica-start";
      readonly service: string;
      readonly name: string;
      readonly revision: number;
      readonly slot: number;
      /** the old replicas this one replaces */
      readonly replaces: readonly string[];
    }
  | { readonly type: "replica-state"; readonly service: string; readonly name: string; readonly state: "running" | "healthy" | "ready" }
  /** a kept replica of the target that has not proven itself yet is watched through the readiness gates */
  | { readonly type: "replica-watch"; readonly service: string; readonly name: string; readonly cause: string }
  | {
      readonly type: "replica-failed";
      readonly service: string;
      readonly name: string;
      readonly reason: string;
      readonly message: string;
      readonly exitCode?: number;
      readonly logs: readonly string[];
    }
  | { readonly type: "replica-stop"; readonly service: string; readonly name: string; readonly cause: string }
  | { readonly type: "replica-remove"; readonly service: string; readonly name: string; readonly cause: string }
  /** an old replica that stepped aside (`from`) has its own name back: its replacement is gone */
  | { readonly type: "replica-rename"; readonly service: string; readonly name: string; readonly from: string }
  | { readonly type: "rollback-start"; readonly service: string; readonly to: readonly number[]; readonly reason: string }
  | {
      readonly type: "rollout-done";
      readonly service: string;
      readonly revision: number;
      readonly outcome: "completed" | "rolled-back" | "paused" | "interrupted" | "failed";
      readonly durationMs: number;
    }
  | { readonly type: "warning"; readonly service?: string; readonly message: string }
  | { readonly type: "proxy-ready"; readonly service: string; readonly name: string; readonly published: readonly string[]; readonly created: boolean }
  | { readonly type: "proxy-route"; readonly service: string; readonly name: string; readonly probes: number; readonly ms: number }
  | { readonly type: "proxy-drain"; readonly service: string; readonly name: string; readonly drained: boolean; readonly outstanding: number; readonly ms: number; readonly olderWorkers?: number }
  | { readonly type: "proxy-removed"; readonly service: string; readonly name: string; readonly cause: string }
  /** new requests are held at the service's doors (at most `ms`), or let go (`ms` absent) */
  | { readonly type: "proxy-hold"; readonly service: string; readonly ms?: number; readonly why: string }
  | { readonly type: "verify-report"; readonly service: string; readonly report: VerifyReport };

/** what `--verify` measured (src/proxy/verify.ts) */
export interface VerifyReport {
  readonly service: string;
  readonly url: string;
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
  readonly failures: Readonly<Record<string, number>>;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly revisions: Readonly<Record<string, number>>;
  readonly durationMs: number;
}

export type RerollEvent = BuildEvent | RolloutEvent;

export type EventSink = (event: RerollEvent) => void;
