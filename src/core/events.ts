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

export type RerollEvent = BuildEvent;

export type EventSink = (event: RerollEvent) => void;
