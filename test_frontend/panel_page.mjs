// Drives the staff panel in a real headless Chromium (Debian's, through
// playwright-core) for the Rust tests: commands arrive on stdin as JSON lines, and
// each prints one JSON line with what the page shows.
//
//   node panel_page.mjs BASE_URL SCREENSHOT_DIR
//
//   {"cmd": "open"}                        load BASE_URL/panel; when the tab still
//                                          holds a session, wait for its first load
//                                          -> signed_in, error (string or null)
//   {"cmd": "login", "email", "password"}  sign in (signing out first if signed in);
//                                          wait for the first full load or an error
//                                          -> signed_in, error (string or null)
//   {"cmd": "filters", "desde"?, "hasta"?, "por"?}
//                                          set them, press «Actualizar», wait for the
//                                          load -> ok, or ok false with the error shown
//                                          (and signed_in, false when the session ended)
//   {"cmd": "figures"}                     -> figures {name: text}, tables {id: [[cells]]},
//                                          charts (canvases Chart.js drew), pedidos [ids],
//                                          nuevos, en_vivo, cargado
//   {"cmd": "wait_order", "id"}            wait (30 s) until the order shows, no reload
//                                          -> pedidos [ids], nuevos, reloaded
//   {"cmd": "wait_live"}                   wait until «En vivo» -> en_vivo
//   {"cmd": "wait_signed_out"}             wait until the sign-in form is back
//                                          -> error (its message)
//   {"cmd": "download", "reporte"}         press a report button, catch the file
//                                          -> filename, bytes, first_line; or ok false
//                                          with the error shown and signed_in
//   {"cmd": "wide"} / {"cmd": "narrow"}    viewport 1280x900 / 390x844
//   {"cmd": "screenshot", "name"}          full page to SCREENSHOT_DIR/NAME.png -> path
//   {"cmd": "overflow"}                    -> overflow (the page scrolls sideways)
//   {"cmd": "close"}                       exit
//
// Every answer carries `errors`: the page's uncaught errors and console errors
// (CSP violations among them) so far. Chromium's own «Failed to load resource: the
// server responded with a status of N» lines for /api/ requests are left out: the
// page shows those answers itself (a wrong password, an invalid range, a failed
// export: `error` and `data-error` carry them); for any other file they count.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [base, screenshots] = process.argv.slice(2);
if (!base || !screenshots) {
  process.stderr.write("usage: node panel_page.mjs BASE_URL SCREENSHOT_DIR\n");
  process.exit(2);
}
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const WAIT = 30_000;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
mkdirSync(screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
// Reduced motion: the page draws its charts without animation, so a screenshot shows
// them finished.
const context = await browser.newContext({
  viewport: PHONE,
  locale: "es-CO",
  acceptDownloads: true,
  reducedMotion: "reduce",
});
const page = await context.newPage();
const errors = [];
page.on("pageerror", (err) => errors.push(err.message));
page.on("console", (message) => {
  if (message.type() !== "error") return;
  const text = message.text();
  const api = new URL(message.location().url || "about:blank", base).pathname.startsWith("/api/");
  if (api && /^Failed to load resource: the server responded with a status of \d+/.test(text)) return;
  errors.push(text);
});

const REPORTS = ["clientes-csv", "productos-csv", "pedidos-csv", "pedidos-json", "eventos-jsonl"];
const TABLES = ["consultas-populares", "consultas-sin-resultados", "consultas-sin-clics", "productos-top", "valoraciones"];

const loaded = () => page.evaluate(() => Number(document.body.dataset.cargado || 0));
const signedIn = () => page.evaluate(() => !document.getElementById("panel").hidden);
const accessError = () =>
  page.evaluate(() => document.getElementById("acceso-error").textContent.trim() || null);
const pageError = () => page.evaluate(() => document.body.dataset.error ?? null);
const orderIds = () =>
  page.evaluate(() => [...document.querySelectorAll("#pedidos li[data-pedido]")].map((li) => Number(li.dataset.pedido)));
const newCounter = () => page.evaluate(() => document.getElementById("nuevos").textContent);

/** Marks the loaded document, so a reload (a new document) can be told. */
const markDocument = () => page.evaluate(() => { window.__panelDocument = true; });

/** Waits until a load started after `before` loads has finished or failed (an
 * error shown, or the sign-in form back with its message). */
async function waitLoad(before) {
  await page.waitForFunction(
    (before) => {
      const body = document.body;
      if (Number(body.dataset.cargado || 0) > before) return true;
      if (body.dataset.error !== undefined) return true;
      return document.getElementById("panel").hidden &&
        document.getElementById("acceso-error").textContent.trim() !== "";
    },
    before,
    { timeout: WAIT },
  );
}

/** The error the page shows now: the panel's, or the sign-in form's once signed out. */
const shownError = async () => ((await signedIn()) ? pageError() : accessError());

const commands = {
  async open() {
    await page.goto(base + "/panel");
    await page.waitForLoadState("load");
    await markDocument();
    // A session kept in the tab loads at once: wait for that load (or its error).
    if (await signedIn()) await waitLoad(0);
    return { signed_in: await signedIn(), error: await shownError() };
  },

  async login({ email, password }) {
    if (await signedIn()) {
      await page.click("#salir");
      await page.waitForSelector("#acceso", { state: "visible", timeout: WAIT });
    }
    const before = await loaded();
    await page.fill("#email", email ?? "");
    await page.fill("#password", password ?? "");
    // The submit handler clears the old message before it asks the server.
    await page.click("#entrar");
    await waitLoad(before);
    return { signed_in: await signedIn(), error: await shownError() };
  },

  async filters({ desde, hasta, por }) {
    if (desde !== undefined) await page.fill("#desde", desde);
    if (hasta !== undefined) await page.fill("#hasta", hasta);
    if (por !== undefined) await page.selectOption("#por", por);
    const before = await loaded();
    await page.click("#actualizar");
    await waitLoad(before);
    const error = await shownError();
    if (error !== null) return { ok: false, error, signed_in: await signedIn() };
    return {};
  },

  async figures() {
    return page.evaluate((tables) => {
      const text = (node) => node.textContent.replace(/\s+/g, " ").trim();
      const figures = {};
      for (const node of document.querySelectorAll("[data-cifra]")) figures[node.dataset.cifra] = text(node);
      const rows = {};
      for (const id of tables) {
        rows[id] = [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) =>
          [...tr.querySelectorAll("th, td")].map(text),
        );
      }
      const charts = [...document.querySelectorAll("canvas")].filter(
        (canvas) => window.Chart && Chart.getChart(canvas) && canvas.width > 0 && canvas.height > 0,
      ).length;
      return {
        figures,
        tables: rows,
        charts,
        pedidos: [...document.querySelectorAll("#pedidos li[data-pedido]")].map((li) => Number(li.dataset.pedido)),
        nuevos: document.getElementById("nuevos").textContent,
        en_vivo: document.getElementById("en-vivo").textContent,
        cargado: Number(document.body.dataset.cargado || 0),
      };
    }, TABLES);
  },

  async wait_order({ id }) {
    await page.waitForSelector(`#pedidos li[data-pedido="${id}"]`, { state: "attached", timeout: WAIT });
    const reloaded = !(await page.evaluate(() => window.__panelDocument === true));
    return { pedidos: await orderIds(), nuevos: await newCounter(), reloaded };
  },

  async wait_live() {
    await page.waitForFunction(() => document.getElementById("en-vivo").textContent === "En vivo", null, {
      timeout: WAIT,
    });
    return { en_vivo: "En vivo" };
  },

  async wait_signed_out() {
    await page.waitForSelector("#acceso", { state: "visible", timeout: WAIT });
    return { signed_in: await signedIn(), error: await accessError() };
  },

  async download({ reporte }) {
    if (!REPORTS.includes(reporte)) throw new Error(`unknown report ${reporte}`);
    const download = page.waitForEvent("download", { timeout: WAIT });
    // The click clears the last error before it asks the server.
    await page.click(`[data-reporte="${reporte}"]`);
    const failed = page
      .waitForFunction(
        () => document.body.dataset.error !== undefined || document.getElementById("panel").hidden,
        null,
        { timeout: WAIT },
      )
      .then(() => null);
    const file = await Promise.race([download, failed]);
    if (!file) {
      download.catch(() => {});
      return { ok: false, error: await shownError(), signed_in: await signedIn() };
    }
    failed.catch(() => {});
    const saved = await file.path();
    const bytes = readFileSync(saved);
    const text = bytes.toString("utf8");
    const end = text.indexOf("\n");
    return {
      filename: file.suggestedFilename(),
      bytes: bytes.length,
      first_line: (end === -1 ? text : text.slice(0, end)).replace(/\r$/, ""),
    };
  },

  async wide() {
    await page.setViewportSize(DESKTOP);
    return { viewport: DESKTOP };
  },

  async narrow() {
    await page.setViewportSize(PHONE);
    return { viewport: PHONE };
  },

  async screenshot({ name }) {
    // Let the charts follow a new viewport: their resize runs before the next frames.
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    const path = join(screenshots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return { path };
  },

  async overflow() {
    return {
      overflow: await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth),
    };
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let command;
  try {
    command = JSON.parse(line);
  } catch (err) {
    out({ ok: false, error: `bad command: ${err.message}`, errors });
    continue;
  }
  if (command.cmd === "close") {
    out({ ok: true, errors });
    break;
  }
  const run = commands[command.cmd];
  try {
    if (!run) throw new Error(`unknown command ${command.cmd}`);
    out({ ok: true, ...(await run(command)), errors });
  } catch (err) {
    out({ ok: false, error: err.message, errors });
  }
}
await browser.close();
