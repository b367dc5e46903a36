// A Socket.IO client driven by a test: the official socket.io-client v4, connected
// to the URL given as the first argument (with `auth: {token}` when a second one is
// given). Commands arrive on stdin as JSON lines; everything the client sees is
// printed on stdout as JSON lines, so that the Rust tests can assert on it.
//
//   {"cmd": "emit", "event": "query_text", "data": {...}}
//   {"cmd": "emit", "event": "query_voice", "data": {...}, "binary": {"path", "as"}}
//     sends the file at `path` as a binary attachment: as the `audio` field of
//     `data` ("as": "field") or as a second argument ("as": "argument")
//   {"cmd": "emit_ack", "event", "data"}
//     emits and waits (10 s at most) for the server's acknowledgement; prints
//     {"type": "ack", "event", "data"} or {"type": "ack_timeout", "event"}
//   {"cmd": "disconnect"}
//   {"cmd": "burst", "count", "event", "data", "reply"}
//     opens `count` more clients at once; each emits `event` with `data` the
//     moment it is connected (as the chat page emits `history`) and waits for a
//     `reply` event, for 10 s at most; prints {"type": "burst", "answered", "count"}
//
// Output: {"type": "connect"}, {"type": "connect_error", "message"},
// {"type": "event", "event", "data"}, {"type": "disconnect", "reason"}.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, token] = process.argv.slice(2);
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const socket = io(url, {
  auth: token ? { token } : undefined,
  reconnection: false,
});
socket.on("connect", () => out({ type: "connect", id: socket.id }));
socket.on("connect_error", (err) => out({ type: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.onAny((event, data) => out({ type: "event", event, data }));

const commands = createInterface({ input: process.stdin });
commands.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "emit" && command.binary) {
    const bytes = readFileSync(command.binary.path);
    if (command.binary.as === "argument") {
      socket.emit(command.event, command.data, bytes);
    } else {
      socket.emit(command.event, { ...command.data, audio: bytes });
    }
  } else if (command.cmd === "emit") {
    socket.emit(command.event, command.data);
  } else if (command.cmd === "emit_ack") {
    socket
      .timeout(10_000)
      .emitWithAck(command.event, command.data)
      .then((data) => out({ type: "ack", event: command.event, data }))
      .catch(() => out({ type: "ack_timeout", event: command.event }));
  } else if (command.cmd === "disconnect") {
    socket.disconnect();
  } else if (command.cmd === "burst") {
    burst(command);
  }
});

async function burst({ count, event, data, reply }) {
  const clients = [];
  const answers = [];
  for (let i = 0; i < count; i++) {
    const client = io(url, { auth: token ? { token } : undefined, reconnection: false, forceNew: true });
    clients.push(client);
    answers.push(
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), 10_000);
        client.on(reply, () => {
          clearTimeout(timer);
          resolve(true);
        });
        client.on("connect", () => client.emit(event, data));
      }),
    );
  }
  const answered = (await Promise.all(answers)).filter(Boolean).length;
  clients.forEach((client) => client.disconnect());
  out({ type: "burst", answered, count });
}
commands.on("close", () => {
  socket.disconnect();
  process.exit(0);
});
