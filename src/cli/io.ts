/** What a command may touch of the outside world; main() passes the real process, tests a fake. */
export interface CliIo {
  readonly argv: readonly string[];
  readonly cwd: string;
  /** aborted on Ctrl-C (SIGINT) or SIGTERM: commands stop starting work and bring things back */
  readonly signal: AbortSignal;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readStdin(): Promise<string>;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString("utf8");
}
