import type { ErrorKind } from "../core/errors.js";

/** The exit-code contract (DESIGN.md). Only src/cli/main.ts turns outcomes into these. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_INPUT = 2;
export const EXIT_INCONSISTENT = 3;
export const EXIT_LOCKED = 4;
export const EXIT_INTERRUPTED = 130;

export const EXIT_CODE_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  failed: EXIT_FAILED,
  input: EXIT_INPUT,
  inconsistent: EXIT_INCONSISTENT,
  locked: EXIT_LOCKED,
  interrupted: EXIT_INTERRUPTED,
};
