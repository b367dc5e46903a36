// The agent benchmark's client. Modes:
//   ttft DIRECT_URL BASE N      first-token time straight from the fake, over SSE
//                               and over Socket.IO (N sequential questions each,
//                               repeated ones with cached vectors, then new ones)
//   concurrent BASE N           N Socket.IO conversations streaming at once
//   idle BASE N                 opens N Socket.IO connections and keeps them idle
//                               until stdin closes (prints "connected N")
// Prints one JSON object with the figures (times in ms).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(process.env.FRONTEND_DIR + "/package.json");
const { io } = require("socket.io-client");
const now = () => performance.timeOrigin + performance.now();
const [mode, ...args] = process.argv.slice(2);

const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const summary = (values) => ({
  n: values.length,
  p50: +quantile(values, 0.5).toFixed(2),
  p99: +quantile(values, 0.99).toFixed(2),
});

// Time to the first byte of the first NDJSON line from the fake itself.
async function directFirstToken(url) {
  const started = now();
  const response = await fetch(url + "/api/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "bench", messages: [{ role: "user", content: "directo" }], stream: true }),
  });
  const reader = response.body.getReader();
  await reader.read();
  const elapsed = now() - started;
  await reader.cancel();
  return elapsed;
}

// The server's own account of an answer (its final event's `timings`).
const serverTimes = [];
function noteTimings(final) {
  if (final?.timings) serverTimes.push(final.timings);
}

// Time to the first `response` piece over SSE. The stream is then read to its end,
// as a customer's page does and as the Socket.IO path waits for the final event:
// cancelling it would put the server's handling of the abandoned answer (stopping
// the upstream request, storing the partial answer) into the next question's time.
async function sseFirstToken(base, question) {
  const started = now();
  const response = await fetch(base + "/api/query/text", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify({ query: question }),
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let elapsed = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (elapsed === null && text.includes("event: response")) elapsed = now() - started;
    if (text.includes("event: error")) throw new Error(text);
  }
  if (elapsed === null) throw new Error("stream ended before a piece: " + text);
  const last = text.split("\n").filter((line) => line.startsWith("data:")).pop();
  const final = last && JSON.parse(last.slice(5));
  if (!final?.complete) throw new Error("stream ended before the final event: " + text.slice(-300));
  noteTimings(final);
  return elapsed;
}

function connect(base, options = {}) {
  return new Promise((resolve, reject) => {
    const socket = io(base, { reconnection: false, ...options });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

// Asks on `socket`; resolves with the first-piece time and every piece.
function ask(socket, question) {
  return new Promise((resolve, reject) => {
    const started = now();
    let first = null;
    const pieces = [];
    const onResponse = (data) => {
      if (!data.complete) {
        if (first === null) first = now() - started;
        pieces.push({ at: now(), chat_id: data.chat_id, chunk: data.chunk });
        return;
      }
      socket.off("response", onResponse);
      socket.off("error", onError);
      noteTimings(data);
      resolve({ first, pieces, final: data });
    };
    const onError = (error) => {
      socket.off("response", onResponse);
      socket.off("error", onError);
      reject(new Error(JSON.stringify(error)));
    };
    socket.on("response", onResponse);
    socket.on("error", onError);
    socket.emit("query_text", { query: question });
  });
}

const questions = ["taladro inalámbrico", "licuadora de vaso de vidrio", "zapatillas para correr", "sofá de tres puestos", "audífonos bluetooth"];

// Questions the server has not seen, so their vectors are not cached: the query's
// embedding is in their time. Made from the demo shop's product names.
function newQuestions(count) {
  const csv = readFileSync(new URL("../../demo/productos.csv", import.meta.url), "utf8");
  const names = csv.split("\n").slice(1).map((row) => row.split(",")[1]?.replaceAll('"', "").trim()).filter(Boolean);
  const words = names.map((name) => name.split(/\s+/).slice(0, 3).join(" ").toLowerCase());
  const made = new Set();
  for (const template of ["¿tienen {}?", "precio de {} por favor", "busco {} para regalar", "¿hay {} en stock?"]) {
    for (const w of words) made.add(template.replace("{}", w));
  }
  const list = [...made];
  if (list.length < count) throw new Error(`only ${list.length} new questions for ${count}`);
  return list.slice(0, count);
}

if (mode === "ttft") {
  // Each question through Tendero is paired with a request straight to the fake
  // made just before it; the overhead is the distribution of those differences
  // (not one distribution's percentile minus the other's).
  const [direct, base, count] = args;
  const n = Number(count);
  const fresh = newQuestions(2 * n);
  const paths = { sse: [], socketio: [], sse_new: [], socketio_new: [] };
  const straight = { sse: [], socketio: [], sse_new: [], socketio_new: [] };
  const paired = async (path, measure) => {
    const d = await directFirstToken(direct);
    const t = await measure();
    straight[path].push(d);
    paths[path].push(t);
  };
  for (let i = 0; i < 5; i++) await sseFirstToken(base, questions[i % questions.length]); // warm-up
  for (let i = 0; i < n; i++) await paired("sse", () => sseFirstToken(base, questions[i % questions.length]));
  serverTimes.length = 0;
  for (let i = 0; i < n; i++) await paired("sse_new", () => sseFirstToken(base, fresh[2 * i]));
  const server = (times) => Object.fromEntries(["embed_ms", "search_ms", "first_token_ms"]
    .map((key) => [key, summary(times.map((t) => t[key]))]));
  const serverSseNew = server(serverTimes);
  const socket = await connect(base);
  for (let i = 0; i < n; i++) {
    await paired("socketio", async () => (await ask(socket, questions[i % questions.length])).first);
  }
  serverTimes.length = 0;
  for (let i = 0; i < n; i++) await paired("socketio_new", async () => (await ask(socket, fresh[2 * i + 1])).first);
  const serverSocketNew = server(serverTimes);
  socket.disconnect();
  const report = {};
  for (const path of Object.keys(paths)) {
    report[path] = {
      tendero: summary(paths[path]),
      straight: summary(straight[path]),
      overhead: summary(paths[path].map((t, i) => t - straight[path][i])),
    };
  }
  console.log(JSON.stringify({
    ...report,
    // The server's timings of the new questions, from the question's arrival.
    server_sse_new: serverSseNew, server_socketio_new: serverSocketNew,
  }));
} else if (mode === "concurrent") {
  const [base, count] = args;
  const n = Number(count);
  const sockets = await Promise.all(Array.from({ length: n }, () => connect(base, { transports: ["websocket"] })));
  const started = now();
  const ended = new Array(n);
  const results = await Promise.allSettled(sockets.map((socket, i) => ask(socket, `c${i} ${questions[i % questions.length]}`)
    .finally(() => { ended[i] = now() - started; })));
  const wall = now() - started;
  let completed = 0, mixed = 0;
  const relay = [], answeredAfter = [], refusals = {}, refusedAfter = {};
  results.forEach((result, i) => {
    if (result.status !== "fulfilled") {
      let code = "other";
      try { code = JSON.parse(result.reason.message).code ?? code; } catch {}
      refusals[code] = (refusals[code] ?? 0) + 1;
      (refusedAfter[code] ??= []).push(ended[i]);
      return;
    }
    const { pieces, final } = result.value;
    const joined = pieces.map((p) => p.chunk).join("");
    const own = pieces.every((p) => p.chat_id === final.chat_id && p.chunk.startsWith(`c${i}@`));
    if (!own || joined !== final.response) mixed += 1;
    else completed += 1;
    answeredAfter.push(ended[i]);
    for (const piece of pieces) {
      const sent = Number(piece.chunk.split("@")[1]);
      if (Number.isFinite(sent)) relay.push(piece.at - sent);
    }
  });
  sockets.forEach((s) => s.disconnect());
  console.log(JSON.stringify({
    conversations: n, completed, mixed: mixed,
    refused: refusals,
    // How long after the burst began the answers ended, and the refusals came.
    answered_after_ms: answeredAfter.length ? summary(answeredAfter) : null,
    refused_after_ms: Object.fromEntries(Object.entries(refusedAfter).map(([c, t]) => [c, summary(t)])),
    relay_delay: relay.length ? summary(relay) : null, wall_ms: +wall.toFixed(0),
  }));
} else if (mode === "idle") {
  const [base, count] = args;
  const n = Number(count);
  const sockets = [];
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, () => connect(base, { transports: ["websocket"] }));
    sockets.push(...(await Promise.all(batch)));
  }
  console.log(`connected ${sockets.length}`);
  process.stdin.resume();
  process.stdin.on("end", () => {
    sockets.forEach((s) => s.disconnect());
    process.exit(0);
  });
} else {
  console.error("usage: client.mjs ttft|concurrent|idle …");
  process.exit(2);
}
