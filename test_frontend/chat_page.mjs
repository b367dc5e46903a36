// Drives the customer chat page in a real headless Chromium (Debian's, through
// playwright-core) for the Rust tests: commands arrive on stdin as JSON lines, and
// each prints one JSON line with what the page shows.
//
//   node chat_page.mjs BASE_URL MICROPHONE_WAV SCREENSHOT_DIR
//
//   {"cmd": "open"}                       load the page, wait until connected
//   {"cmd": "ask", "text"}                type and send; wait for the whole answer
//   {"cmd": "send", "text"}               type and send; wait for the first piece
//   {"cmd": "ask_and_cancel", "text"}     send, press «Detener» at the first piece
//   {"cmd": "click_card", "index"}        click a product card of the last answer
//   {"cmd": "rate", "util", "comentario"?} press a thumb under the last answer and,
//                                         when given, send a comment after it
//   {"cmd": "reload"}                     reload; wait for the conversation again
//   {"cmd": "speak", "ms"}                record from the fake microphone, send
//   {"cmd": "wait_offline"}               wait until the page has lost the server
//   {"cmd": "wait_online"}                wait until it is back and has re-rendered
//                                         the conversation from the server
//   {"cmd": "screenshot", "name"}         save SCREENSHOT_DIR/NAME.png
//   {"cmd": "open_tab"}                   open the page in a second tab (same
//                                         browser, same storage), wait until connected
//   {"cmd": "wait_messages", "count"}     wait until the tab shows `count` messages,
//                                         the last one a finished answer
//
// Every command may name `"tab": N` (0, the first, unless named).
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [base, microphone, screenshots] = process.argv.slice(2);
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const WAIT = 30_000;
mkdirSync(screenshots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${microphone}`,
  ],
});
const context = await browser.newContext({
  viewport: { width: 390, height: 844 },
  locale: "es-CO",
  permissions: ["microphone"],
});
const pageErrors = [];
async function newTab() {
  const tab = await context.newPage();
  tab.on("pageerror", (err) => pageErrors.push(err.message));
  return tab;
}
const tabs = [await newTab()];
/** The tab the current command works on. */
let page = tabs[0];

/** What the conversation shows now. */
async function snapshot() {
  return page.evaluate(() => ({
    chat_id: localStorage.getItem("tendero.chat_id"),
    status: document.getElementById("estado").textContent,
    notice: document.getElementById("aviso").hidden ? "" : document.getElementById("aviso").textContent,
    messages: [...document.querySelectorAll("#mensajes > li")].map((item) => ({
      role: item.classList.contains("cliente") ? "cliente" : "agente",
      text: item.querySelector(".texto").textContent,
      cards: [...item.querySelectorAll(".tarjeta")].map((card) => ({
        sku: card.dataset.sku,
        text: card.textContent,
        pressed: card.getAttribute("aria-pressed") === "true",
      })),
      suggestions_title: item.querySelector(".sugerencias")?.textContent || "",
      rating: item.querySelector(".valoracion")
        ? {
            text: item.querySelector(".valoracion > span").textContent,
            pressed: [...item.querySelectorAll(".pulgar")]
              .filter((b) => b.getAttribute("aria-pressed") === "true")
              .map((b) => b.getAttribute("aria-label")),
            comment_open: !item.querySelector(".comentario").hidden,
          }
        : null,
      suggested: [...item.querySelectorAll('ul[aria-label="También te puede interesar"] .tarjeta')].map(
        (card) => card.dataset.sku,
      ),
    })),
  }));
}

async function connected() {
  await page.waitForFunction(() => document.getElementById("estado").textContent === "Conectado", null, {
    timeout: WAIT,
  });
}

/** Records every text the last answer shows, to prove it arrived in pieces. */
async function watchAnswer() {
  await page.evaluate(() => {
    window.__shown = [];
    const list = document.getElementById("mensajes");
    new MutationObserver(() => {
      const answers = list.querySelectorAll("li.agente .texto");
      const last = answers[answers.length - 1];
      if (last && last.textContent && window.__shown[window.__shown.length - 1] !== last.textContent) {
        window.__shown.push(last.textContent);
      }
    }).observe(list, { subtree: true, childList: true, characterData: true });
  });
}

async function send(text) {
  await page.fill("#pregunta", text);
  await page.press("#pregunta", "Enter");
}

/** Waits until the answer being written shows its first piece. */
const firstPiece = () =>
  page.waitForFunction(
    () => {
      const typing = document.querySelector(".escribiendo .texto");
      return typing && typing.textContent.length > 0;
    },
    null,
    { timeout: WAIT },
  );

const idle = () =>
  page.waitForFunction(() => !document.querySelector(".escribiendo") && document.getElementById("detener").hidden, null, {
    timeout: WAIT,
  });

const commands = {
  async open() {
    await page.goto(base + "/");
    await connected();
    return snapshot();
  },
  async ask({ text }) {
    await watchAnswer();
    // Sending adds the question and an empty answer at once; then wait for its end.
    await send(text);
    await idle();
    return { ...(await snapshot()), shown: await page.evaluate(() => window.__shown) };
  },
  async send({ text }) {
    await send(text);
    await firstPiece();
    return snapshot();
  },
  async ask_and_cancel({ text }) {
    await send(text);
    await firstPiece();
    await page.click("#detener");
    await idle();
    return snapshot();
  },
  async click_card({ index }) {
    const cards = page.locator("li.agente").last().locator(".tarjeta");
    await cards.nth(index).click();
    return snapshot();
  },
  async rate({ util, comentario }) {
    const answer = page.locator("li.agente").last();
    await answer.locator(".pulgar").nth(util ? 0 : 1).click();
    if (comentario) {
      await answer.locator(".comentario input").fill(comentario);
      await answer.locator(".comentario button").click();
      await answer.locator(".comentario", { hasText: "Comentario enviado." }).waitFor({ timeout: WAIT });
    }
    return snapshot();
  },
  async reload() {
    await page.reload();
    await connected();
    await page.waitForFunction(() => document.querySelectorAll("#mensajes > li").length > 0, null, {
      timeout: WAIT,
    });
    return snapshot();
  },
  async speak({ ms }) {
    await page.click("#microfono");
    await page.waitForFunction(() => document.getElementById("microfono").getAttribute("aria-pressed") === "true", null, {
      timeout: WAIT,
    });
    // The recording itself lasts this long: the fake microphone plays in real time.
    await page.waitForTimeout(ms);
    await page.click("#microfono");
    await page.waitForFunction(
      () => !document.getElementById("aviso").hidden || document.querySelector("li.agente:last-child .texto")?.textContent,
      null,
      { timeout: WAIT },
    );
    await idle();
    return snapshot();
  },
  async wait_offline() {
    await page.waitForFunction(() => document.getElementById("estado").textContent !== "Conectado", null, {
      timeout: WAIT,
    });
    // From now on, note when the conversation is rendered anew (from `history`).
    await page.evaluate(() => {
      window.__rendered = false;
      new MutationObserver((changes) => {
        if (changes.some((change) => change.removedNodes.length > 0)) window.__rendered = true;
      }).observe(document.getElementById("mensajes"), { childList: true });
    });
    return snapshot();
  },
  async wait_online() {
    await connected();
    await page.waitForFunction(() => window.__rendered === true, null, { timeout: WAIT });
    return snapshot();
  },
  async open_tab() {
    page = await newTab();
    tabs.push(page);
    await page.goto(base + "/");
    await connected();
    // Once its conversation is shown, the tab follows it (the server joins before
    // it reads the history it sends).
    await page.waitForFunction(
      () => !localStorage.getItem("tendero.chat_id") || document.querySelectorAll("#mensajes > li").length > 0,
      null,
      { timeout: WAIT },
    );
    return snapshot();
  },
  async wait_messages({ count }) {
    await page.waitForFunction(
      (count) => {
        const items = document.querySelectorAll("#mensajes > li");
        const last = items[items.length - 1];
        return (
          items.length === count &&
          last.classList.contains("agente") &&
          !last.classList.contains("escribiendo") &&
          document.getElementById("detener").hidden
        );
      },
      count,
      { timeout: WAIT },
    );
    return snapshot();
  },
  async screenshot({ name }) {
    const path = join(screenshots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    return { path };
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const command = JSON.parse(line);
  page = tabs[command.tab ?? 0];
  try {
    const result = await commands[command.cmd](command);
    out({ ok: true, ...result, page_errors: pageErrors });
  } catch (err) {
    out({ ok: false, error: err.message, page_errors: pageErrors, ...(await snapshot().catch(() => ({}))) });
  }
}
await browser.close();
