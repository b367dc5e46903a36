// A fake Ollama for the agent benchmark: /api/chat streams NDJSON, one token every
// TOKEN_MS milliseconds (the first one too), TOKENS tokens, then the final line.
// Each token carries the moment it was written and the question's tag, so the
// client can measure relay delay and check that answers never mix:
//   "<tag>@<epoch ms with fractions> "
// where <tag> is the first word of the last user message.
// Usage: node fake_ollama.mjs PORT [TOKEN_MS=20] [TOKENS=30]
import http from "node:http";

const port = Number(process.argv[2]);
const tokenMs = Number(process.argv[3] ?? 20);
const tokens = Number(process.argv[4] ?? 30);
const now = () => performance.timeOrigin + performance.now();
const line = (value) => JSON.stringify(value) + "\n";
const piece = (content) => ({
  model: "bench", created_at: "2026-01-01T00:00:00Z",
  message: { role: "assistant", content }, done: false,
});
const done = {
  model: "bench", created_at: "2026-01-01T00:00:00Z",
  message: { role: "assistant", content: "" }, done: true, done_reason: "stop",
  total_duration: 1, load_duration: 1, prompt_eval_count: 1,
  prompt_eval_duration: 1, eval_count: tokens, eval_duration: 1,
};

http.createServer((req, res) => {
  if (req.url === "/api/tags") {
    res.setHeader("content-type", "application/json");
    // As Ollama lists a model: ollama-rs (Tendero's client) needs modified_at and size.
    res.end(JSON.stringify({ models: [{ name: "bench", model: "bench", modified_at: "2026-01-01T00:00:00Z", size: 1 }] }));
    return;
  }
  if (req.url !== "/api/chat") {
    res.statusCode = 404;
    res.end(JSON.stringify({ error: "not found" }));
    return;
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const messages = JSON.parse(body).messages ?? [];
    const question = [...messages].reverse().find((m) => m.role === "user")?.content ?? "";
    const tag = question.split(/\s+/)[0] || "x";
    res.writeHead(200, { "content-type": "application/x-ndjson" });
    let sent = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (sent === tokens) {
        res.end(line(done));
        return;
      }
      res.write(line(piece(`${tag}@${now().toFixed(3)} `)));
      sent += 1;
      setTimeout(tick, tokenMs);
    };
    setTimeout(tick, tokenMs);
  });
}).listen(port, "127.0.0.1", () => console.log(`fake ollama on ${port}`));
