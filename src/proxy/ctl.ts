import { connect } from "node:net";
import { CONTROL_SOCKET } from "./protocol.js";

/**
 * The bridge the CLI execs inside a proxy container: stdin to the control socket, the
 * socket's replies to stdout. It is how the control socket is reached through the Docker
 * API alone; one exec carries every request of a rollout.
 *
 *   node /opt/reroll/dist/proxy/ctl.js [SOCKET]
 */
const path = process.argv[2] ?? CONTROL_SOCKET;
const socket = connect(path);
socket.on("error", (error: NodeJS.ErrnoException) => {
  process.stderr.write(`reroll-proxy control socket ${path}: ${error.message}\n`);
  process.exit(1);
});
socket.on("connect", () => {
  // a marker the CLI waits for: the socket answers
  process.stdout.write(`${JSON.stringify({ id: 0, ok: true, result: "connected" })}\n`);
  process.stdin.pipe(socket);
  socket.pipe(process.stdout);
});
process.stdin.on("end", () => socket.end());
socket.on("close", () => process.exit(0));
