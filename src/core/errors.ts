/**
 * Every failure reroll reports is a RerollError: a stable `code` scripts can match on,
 * a short message, a hint saying what to do, and the underlying cause.
 *
 * `kind` says what state the failure left behind; the CLI maps it to an exit code
 * (src/cli/exit-codes.ts) and nothing else does.
 */
export type ErrorKind =
  /** usage, config or input error: nothing was changed (exit 2) */
  | "input"
  /** the operation failed and the previous state stands (exit 1) */
  | "failed"
  /** a rollback failed or state is inconsistent: a person must act (exit 3) */
  | "inconsistent"
  /** another rollout holds the lock (exit 4) */
  | "locked"
  /** interrupted, after bringing things back to a consistent state (exit 130) */
  | "interrupted";

export interface RerollErrorOptions {
  kind?: ErrorKind;
  hint?: string;
  cause?: unknown;
  /** several problems reported at once (config validation), each with its path */
  problems?: readonly string[];
}

export class RerollError extends Error {
  override readonly name = "RerollError";
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly problems: readonly string[];

  constructor(code: string, message: string, options: RerollErrorOptions = {}) {
    super(redactSecrets(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.kind = options.kind ?? "input";
    this.hint = options.hint === undefined ? undefined : redactSecrets(options.hint);
    this.problems = (options.problems ?? []).map(redactSecrets);
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      kind: this.kind,
      message: this.message,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.problems.length === 0 ? {} : { problems: this.problems }),
      ...(this.cause === undefined ? {} : { cause: describeCause(this.cause) }),
    };
  }
}

export function isRerollError(value: unknown): value is RerollError {
  return value instanceof RerollError;
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    // Node's own file errors begin with their code already ("ENOENT: no such file…")
    return redactSecrets(code === undefined || cause.message.startsWith(code) ? cause.message : `${code}: ${cause.message}`);
  }
  return redactSecrets(String(cause));
}

const SECRET_PATTERNS: readonly RegExp[] = [
  // credentials inside URLs: https://user:secret@host
  /(?<=\/\/[^/\s:@]+:)[^/\s@]+(?=@)/g,
  // Authorization headers and bearer tokens
  /(?<=\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}/g,
  // password=..., token=..., secret=...
  /(?<=\b(?:password|passwd|token|secret)=)[^\s&]+/gi,
];

/** Removes credentials from text that may end up in a terminal or a CI log. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) out = out.replace(pattern, "***");
  return out;
}
