/**
 * The chat page as the chat server serves it, on its own origin: every call
 * the page makes is then same-origin, with the session cookie and no CORS.
 *
 * The page's files are embedded when the server loads (`import ... with
 * { type: "text" }`), so the server reads no file for them and its
 * permissions stay as they are. Each answer carries
 * `Content-Security-Policy: default-src 'self'` (no inline script, nothing
 * from another origin: the page works on a LAN with no internet) and
 * `X-Content-Type-Options: nosniff`. Exactly the page's files are served;
 * any other path is 404.
 *
 * Only server.ts imports this module: through `deps.ts` it would put the
 * page into the terminal client's module graph.
 *
 * @module
 */

import { languageOf } from "../chat/protocol.ts";
import type { IncomingRequest } from "../wire/http_server.ts";
// The page's modules as text, by a specifier of their own (`?text`): as plain `./page/app.js` the text
// import would be the same module that `deno check` checks with the DOM types of lib/web/page/deno.json, and
// it would be checked here, without them.
import app from "./page/app.js" with { type: "text" };
import chat from "./page/chat.js" with { type: "text" };
import favicon from "./page/favicon.svg" with { type: "text" };
import index from "./page/index.html" with { type: "text" };
import style from "./page/style.css" with { type: "text" };
import texts from "./page/texts.js" with { type: "text" };
import xmlrpc from "./page/xmlrpc.js" with { type: "text" };
import commands from "../client/commands.js" with { type: "text" };

/** The headers every answer of the page carries. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Whoever opens the page gets the server's version of the moment.
  "cache-control": "no-cache",
};

const HTML = "text/html; charset=utf-8";
const JAVASCRIPT = "text/javascript; charset=utf-8";

/** The served paths and their files: the page, its style, its modules, its icon. */
export const PAGE_FILES: ReadonlyMap<string, { readonly type: string; readonly text: string }> = new Map([
  ["/", { type: HTML, text: index }],
  ["/style.css", { type: "text/css; charset=utf-8", text: style }],
  ["/app.js", { type: JAVASCRIPT, text: app }],
  ["/chat.js", { type: JAVASCRIPT, text: chat }],
  ["/texts.js", { type: JAVASCRIPT, text: texts }],
  ["/xmlrpc.js", { type: JAVASCRIPT, text: xmlrpc }],
  // The commands, the terminal client's own module: chat.js imports it as ../../client/commands.js (so Deno
  // checks it where it is), which a browser resolves from / to /client/commands.js.
  ["/client/commands.js", { type: JAVASCRIPT, text: commands }],
  ["/favicon.svg", { type: "image/svg+xml", text: favicon }],
]);

const encoder = new TextEncoder();
const BODIES = new Map([...PAGE_FILES].map(([path, { text }]) => [path, encoder.encode(text)]));
/** The page in English: the same file with `lang="en"`, which its script reads to choose its words. */
const INDEX_EN = encoder.encode(index.replace('<html lang="pt-BR">', '<html lang="en">'));

/**
 * Answers a GET or HEAD for the page: one of {@linkcode PAGE_FILES} when the
 * path, exactly as sent and without its query, is one of them; else 404. The
 * page itself comes in the language `Accept-Language` asks for (Portuguese
 * unless English comes first).
 */
export function servePage(request: IncomingRequest): Response {
  const afterScheme = request.url.indexOf("//") + 2;
  const slash = request.url.indexOf("/", afterScheme);
  const target = slash < 0 ? "" : request.url.slice(slash);
  const path = target.split("?", 1)[0]!;
  const file = PAGE_FILES.get(path);
  if (!file) {
    return new Response("Não encontrado: este servidor serve a página do chat em /.\n", {
      status: 404,
      headers: { ...PAGE_HEADERS, "content-type": "text/plain; charset=utf-8" },
    });
  }
  const headers: Record<string, string> = { ...PAGE_HEADERS, "content-type": file.type };
  let body = BODIES.get(path)!;
  if (path === "/") {
    headers["vary"] = "Accept-Language";
    if (languageOf(request.headers.get("accept-language")) === "en") body = INDEX_EN;
  }
  return new Response(request.method === "HEAD" ? null : body, { headers });
}
