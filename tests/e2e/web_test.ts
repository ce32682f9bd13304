/**
 * The chat page in a real browser: binder and server started as the README
 * says, Debian's Chromium driven headless by a pinned puppeteer-core, the
 * page's controls found by their accessible names, and a classmate on the
 * terminal client (cliente.ts) talking to the page both ways. Without
 * Chromium these tests are skipped, with the reason.
 *
 * `UPDATE_SCREENSHOT=1` also writes the page as the journey leaves it to
 * docs/images/web-chat.png (the README shows it).
 */

import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.16.0";
import {
  count,
  ROOT,
  said,
  startBinder,
  startClient,
  startServer,
  testUnless,
  waitUntil,
} from "../helpers/programs.ts";
import type { XmlRpcClient } from "../../lib/mod.ts";

/** The page's document, as the functions that run in the page read it (this test has no DOM types). */
declare const document: {
  querySelectorAll(selector: string): Iterable<{ textContent: string | null }>;
  documentElement: { scrollWidth: number };
};

/** Debian's Chromium, where it is installed. */
function chromiumPath(): string | undefined {
  for (const path of ["/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there.
    }
  }
  return undefined;
}

const CHROMIUM = chromiumPath();
const NO_CHROMIUM = CHROMIUM
  ? undefined
  : "no Chromium at /usr/bin/chromium (Debian package chromium; .ci/run installs it)";

/** Chromium headless, with a fresh profile that reaches nothing but what the test starts. */
async function launch(): Promise<Browser & AsyncDisposable> {
  const profile = await Deno.makeTempDir({ prefix: "rpc-chat-chromium-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--lang=pt-BR",
      `--user-data-dir=${profile}`,
    ],
  });
  return Object.assign(browser, {
    [Symbol.asyncDispose]: async () => {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  });
}

/** A page that records every script error and console error it raises. */
async function openPage(
  browser: Browser | Awaited<ReturnType<Browser["createBrowserContext"]>>,
  language = "pt-BR",
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  await page.setExtraHTTPHeaders({ "accept-language": language });
  await page.setViewport({ width: 1000, height: 640 });
  return { page, errors };
}

/** The text box with this accessible name. */
function textBox(name: string): string {
  return `::-p-aria([name="${name}"][role="textbox"])`;
}

/** Types a line into the text box with this accessible name and presses Enter. */
async function enter(page: Page, box: string, line: string): Promise<void> {
  // A tab in the background has no accessibility tree to search, and takes no keys.
  await page.bringToFront();
  const handle = await page.waitForSelector(textBox(box), { visible: true, timeout: 10_000 });
  await handle!.type(line);
  await handle!.press("Enter");
}

/** The lines of the page's log (`role="log"`), as their text. */
async function logLines(page: Page): Promise<string[]> {
  return await page.$$eval('[role="log"] li', (items) => items.map((item) => item.textContent ?? ""));
}

/** Waits until a line of the log holds `text`; how long it took, in ms. */
async function waitForLog(page: Page, text: string, timeout = 10_000): Promise<number> {
  const start = performance.now();
  await page.waitForFunction(
    (wanted: string) =>
      [...document.querySelectorAll('[role="log"] li')].some((item) => item.textContent?.includes(wanted)),
    { timeout, polling: 20 },
    text,
  );
  return Math.round(performance.now() - start);
}

/** How many lines of the log hold `text`. */
async function logCount(page: Page, text: string): Promise<number> {
  return (await logLines(page)).filter((line) => line.includes(text)).length;
}

/** Opens the binder's address, registers `name` and joins `room` by typing `/entrar`. */
async function joinAs(page: Page, binderPort: number, name: string, room: string): Promise<void> {
  await page.goto(`http://127.0.0.1:${binderPort}/`);
  await enter(page, "Nome", name);
  await enter(page, "Mensagem", `/entrar ${room}`);
  await waitForLog(page, `Você está na sala ${room}.`);
}

/** Waits until the binder knows a ChatService. */
async function registered(binder: { client: XmlRpcClient }): Promise<void> {
  await waitUntil(
    async () => (await binder.client.call<[boolean]>("buscar_procedimento", ["ChatService"]))[0],
    "ChatService registered in the binder",
  );
}

/** The head of the answer to `GET /` sent with this Host header (fetch would not let the test set it). */
async function rawHead(port: number, host: string): Promise<string> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await connection.write(
      new TextEncoder().encode(`GET / HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`),
    );
    let answer = "";
    const buffer = new Uint8Array(16 * 1024);
    for (let n; (n = await connection.read(buffer)) !== null;) {
      answer += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return answer.split("\r\n\r\n", 1)[0]!;
  } finally {
    connection.close();
  }
}

/** A binder, a chat server registered in it, and a browser: disposed in the reverse order. */
async function chatAndBrowser(): Promise<
  {
    binder: Awaited<ReturnType<typeof startBinder>>;
    server: Awaited<ReturnType<typeof startServer>>;
    browser: Browser;
  } & AsyncDisposable
> {
  const binder = await startBinder();
  const server = await startServer(binder);
  await registered(binder);
  const browser = await launch();
  return {
    binder,
    server,
    browser,
    [Symbol.asyncDispose]: async () => {
      await browser[Symbol.asyncDispose]();
      await server[Symbol.asyncDispose]();
      await binder[Symbol.asyncDispose]();
    },
  };
}

const browserTest = { sanitizeOps: false, sanitizeResources: false };

testUnless(NO_CHROMIUM, "the chat page: a browser and a terminal classmate talk both ways", async () => {
  await using chat = await chatAndBrowser();
  const { binder, server, browser } = chat;

  // The way in: a redirect, never cached, to the server's own origin; the page with its headers.
  const entry = await fetch(`http://127.0.0.1:${binder.port}/`, { redirect: "manual" });
  assert.equal(entry.status, 302);
  assert.equal(entry.headers.get("cache-control"), "no-store");
  assert.equal(
    entry.headers.get("location"),
    `http://127.0.0.1:${server.port}/?binder=127.0.0.1%3A${binder.port}`,
  );
  // Reached by another host's address, a server registered on loopback is reached by that host.
  const elsewhere = await rawHead(binder.port, `192.168.50.7:${binder.port}`);
  assert.match(
    elsewhere,
    new RegExp(`\\r\\nlocation: http://192\\.168\\.50\\.7:${server.port}/\\?binder=192\\.168\\.50\\.7%3A`),
  );

  const { page, errors } = await openPage(browser);
  const response = await page.goto(`http://127.0.0.1:${binder.port}/`);
  assert.equal(new URL(page.url()).port, String(server.port), "the page is served by the chat server");
  const headers = response!.headers();
  assert.match(headers["content-security-policy"] ?? "", /^default-src 'self'/);
  assert.equal(headers["x-content-type-options"], "nosniff");
  assert.equal(await page.$eval("html", (html) => html.lang), "pt-BR");
  // No inline script: every script element has a source on this origin.
  assert.deepEqual(
    await page.$$eval(
      "script",
      (scripts) => scripts.map((script) => script.src.replace(location.origin, "")),
    ),
    ["/app.js"],
  );

  await enter(page, "Nome", "ana");
  await enter(page, "Mensagem", "/entrar geral");
  await waitForLog(page, "Você está na sala geral.");
  assert(await page.$('[role="log"]'), "the messages are in a role=log element");

  // The classmate on the terminal client.
  await using bia = startClient(binder, ["--name", "bia", "--room", "geral"]);
  await bia.waitForLine(/^\* Você está na sala geral\./);
  await waitForLog(page, "bia entrou na sala.");
  const figures: Record<string, number> = {};
  await bia.write("oi ana\n");
  figures["public, terminal -> page"] = await waitForLog(page, "bia: oi ana");
  await bia.write("/msg ana só entre nós\n");
  figures["private, terminal -> page"] = await waitForLog(page, "bia → ana: só entre nós");
  await bia.write("<b>x</b>\n");
  figures["markup as text"] = await waitForLog(page, "bia: <b>x</b>");
  assert.equal(await page.$('[role="log"] b'), null, "markup is shown as text, never as elements");
  console.log(`page latency (ms): ${JSON.stringify(figures)}`);

  await enter(page, "Mensagem", "olá bia, <i>daqui</i>");
  await bia.waitForLine(said("ana: olá bia, <i>daqui</i>"));
  await enter(page, "Mensagem", "/msg bia segredo");
  await bia.waitForLine(said("ana -> bia: segredo"));
  // A click on a member starts a private message to them.
  const member = await page.waitForSelector('::-p-aria([name="Mensagem privada para bia"][role="button"])');
  await member!.click();
  assert.equal(
    await page.$eval("#message", (box) => (box as unknown as { value: string }).value),
    "/msg bia ",
  );
  await page.keyboard.type("pelo clique");
  await page.keyboard.press("Enter");
  await bia.waitForLine(said("ana -> bia: pelo clique"));
  // Our own messages come back once, in order.
  await waitForLog(page, "ana → bia: pelo clique");
  assert.equal(await logCount(page, "ana: olá bia"), 1);

  if (Deno.env.get("UPDATE_SCREENSHOT") === "1") {
    await Deno.mkdir(`${ROOT}docs/images`, { recursive: true });
    await page.screenshot({ path: `${ROOT}docs/images/web-chat.png` });
  }
  // On a phone: nothing wider than the screen, the message box and its button on it.
  await page.setViewport({ width: 360, height: 740, isMobile: true, hasTouch: true });
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 360, "no sideways scrolling");
  for (const control of [textBox("Mensagem"), '::-p-aria([name="Enviar"][role="button"])']) {
    const box = await (await page.$(control))!.boundingBox();
    assert(box && box.x >= 0 && box.x + box.width <= 360, `${control} fits: ${JSON.stringify(box)}`);
  }
  assert.deepEqual(errors, []);
}, browserTest);

testUnless(NO_CHROMIUM, "the chat page: two users in two browser contexts, and two tabs of one", async () => {
  await using chat = await chatAndBrowser();
  const { binder, browser } = chat;
  const first = await browser.createBrowserContext();
  const second = await browser.createBrowserContext();
  const carla = await openPage(first);
  const davi = await openPage(second);
  // A second tab of carla's browser: the same cookie jar, a user of its own.
  const eva = await openPage(first);
  await joinAs(carla.page, binder.port, "carla", "sala2");
  await joinAs(davi.page, binder.port, "davi", "sala2");
  await joinAs(eva.page, binder.port, "eva", "sala2");

  await enter(carla.page, "Mensagem", "oi de carla");
  await enter(davi.page, "Mensagem", "oi de davi");
  await enter(eva.page, "Mensagem", "/msg carla oi só pra carla");
  for (const { page } of [carla, davi, eva]) {
    await waitForLog(page, "carla: oi de carla");
    await waitForLog(page, "davi: oi de davi");
  }
  await waitForLog(carla.page, "eva → carla: oi só pra carla");
  await waitForLog(eva.page, "eva → carla: oi só pra carla");
  assert.equal(await logCount(davi.page, "só pra carla"), 0, "a private message reaches only its two ends");
  // carla's tab still acts as carla after eva registered in the same browser.
  await enter(carla.page, "Mensagem", "ainda sou carla");
  await waitForLog(eva.page, "carla: ainda sou carla");
  for (const { errors } of [carla, davi, eva]) assert.deepEqual(errors, []);
}, browserTest);

testUnless(NO_CHROMIUM, "the chat page: English from Accept-Language", async () => {
  await using chat = await chatAndBrowser();
  const { binder, browser } = chat;
  const { page, errors } = await openPage(browser, "en-US,en;q=0.9");
  await page.goto(`http://127.0.0.1:${binder.port}/`);
  assert.equal(await page.$eval("html", (html) => html.lang), "en");
  await enter(page, "Name", "fred");
  await enter(page, "Message", "/join lobby");
  await waitForLog(page, "You are in the room lobby.");
  await enter(page, "Message", "/nope");
  await waitForLog(page, "Unknown command: /nope.");
  assert.deepEqual(errors, []);
}, browserTest);

testUnless(
  NO_CHROMIUM,
  "the chat page: the server killed and restarted mid-chat loses nothing, repeats nothing",
  async () => {
    await using binder = await startBinder();
    const dir = await Deno.makeTempDir({ prefix: "rpc-chat-web-restart-" });
    try {
      const first = await startServer(binder, [], { dir });
      const port = first.port;
      await registered(binder);
      await using browser = await launch();
      const { page, errors } = await openPage(browser);
      await joinAs(page, binder.port, "fabio", "geral");
      await using gil = startClient(binder, ["--name", "gil", "--room", "geral"]);
      await gil.waitForLine(/^\* Você está na sala geral\./);
      await gil.write("antes, de gil\n");
      await waitForLog(page, "gil: antes, de gil");
      await enter(page, "Mensagem", "antes, de fabio");
      await gil.waitForLine(said("fabio: antes, de fabio"));

      await first.program.stop("SIGKILL");
      // Typed while the server is down: it waits, shown as pending, and goes out once.
      await enter(page, "Mensagem", "durante a queda, de fabio");
      await page.waitForSelector("#pending li", { timeout: 10_000 });
      await using _second = await startServer(binder, [], { dir, port });
      await gil.waitForLine(said("fabio: durante a queda, de fabio"), 20_000);
      await waitForLog(page, "fabio: durante a queda, de fabio", 20_000);
      await gil.write("depois, de gil\n");
      await waitForLog(page, "gil: depois, de gil", 20_000);
      await enter(page, "Mensagem", "depois, de fabio");
      await gil.waitForLine(said("fabio: depois, de fabio"));
      await waitForLog(page, "fabio: depois, de fabio");

      for (
        const line of [
          "gil: antes, de gil",
          "fabio: antes, de fabio",
          "fabio: durante a queda",
          "gil: depois, de gil",
        ]
      ) {
        assert.equal(await logCount(page, line), 1, `${line} once in\n${(await logLines(page)).join("\n")}`);
      }
      for (
        const line of [
          "fabio: antes, de fabio",
          "fabio: durante a queda, de fabio",
          "fabio: depois, de fabio",
        ]
      ) {
        assert.equal(count(gil, said(line)), 1, `${line} once in\n${gil.output}`);
      }
      assert.equal(await page.$$eval("#pending li", (items) => items.length), 0, "nothing left pending");
      assert.deepEqual(
        errors.filter((error) => !/Failed to load resource|ERR_CONNECTION_REFUSED/.test(error)),
        [],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  browserTest,
);
