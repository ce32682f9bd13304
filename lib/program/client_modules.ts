/**
 * The client's modules as the binder serves them over HTTP GET, so a
 * classmate needs nothing but Deno and the binder's address:
 * `deno run --allow-net http://192.168.0.10:5000/cliente.ts`.
 *
 * Exactly `cliente.ts` and the modules it imports, and nothing else: no
 * database, no log, no listing, no other path. Their text is embedded when
 * the binder loads (`import ... with { type: "text" }`, stable since Deno
 * 2.8: no flag, no `deno.json`), so the binder reads no file and keeps
 * `--allow-net` as its only permission, whether it runs from the checkout,
 * from a URL or as a binary (`deno compile` embeds them with its graph).
 * tests/e2e/binder_test.ts checks this list against `deno info cliente.ts`.
 *
 * Only binder.ts imports this module: re-exported from `deps.ts`, it would
 * put the client's own source into the client's module graph.
 *
 * @module
 */

import cliente from "../../cliente.ts" with { type: "text" };
import deps from "../../deps.ts" with { type: "text" };
import chat from "../chat/rules.ts" with { type: "text" };
import chatService from "../chat/methods.ts" with { type: "text" };
import child from "./child.ts" with { type: "text" };
import cli from "./flags.ts" with { type: "text" };
import client from "../wire/http_client.ts" with { type: "text" };
import codec from "../wire/codec.ts" with { type: "text" };
import deadlines from "../wire/deadlines.ts" with { type: "text" };
import http from "../wire/http_server.ts" with { type: "text" };
import log from "./log.ts" with { type: "text" };
import names from "../chat/names.ts" with { type: "text" };
import protocol from "../chat/protocol.ts" with { type: "text" };
import redisChat from "../chat/engines/redis.ts" with { type: "text" };
import rpc from "../rpc/dispatcher.ts" with { type: "text" };
import sqliteChat from "../chat/engines/sqlite.ts" with { type: "text" };
import texts from "../text/catalogue.ts" with { type: "text" };
import unicodeNamesData from "../chat/unicode_names_data.ts" with { type: "text" };

/** The served paths (relative to the binder's address) and their text: the client's module graph. */
export const CLIENT_MODULES: ReadonlyMap<string, string> = new Map([
  ["cliente.ts", cliente],
  ["deps.ts", deps],
  ["lib/chat/rules.ts", chat],
  ["lib/chat/methods.ts", chatService],
  ["lib/program/child.ts", child],
  ["lib/program/flags.ts", cli],
  ["lib/wire/http_client.ts", client],
  ["lib/wire/codec.ts", codec],
  ["lib/wire/deadlines.ts", deadlines],
  ["lib/wire/http_server.ts", http],
  ["lib/program/log.ts", log],
  ["lib/chat/names.ts", names],
  ["lib/chat/protocol.ts", protocol],
  ["lib/chat/engines/redis.ts", redisChat],
  ["lib/rpc/dispatcher.ts", rpc],
  ["lib/chat/engines/sqlite.ts", sqliteChat],
  ["lib/text/catalogue.ts", texts],
  ["lib/chat/unicode_names_data.ts", unicodeNamesData],
]);

/** The content type they are served with: Deno runs a module sent so as TypeScript. */
export const TYPESCRIPT = "application/typescript; charset=utf-8";

const encoder = new TextEncoder();
const BODIES = new Map([...CLIENT_MODULES].map(([path, text]) => [`/${path}`, encoder.encode(text)]));

/**
 * Answers a GET or HEAD: one of {@linkcode CLIENT_MODULES} when the request's
 * path, exactly as sent, is `/` and its name; anything else (`..`, encoded
 * characters, a query, a second slash, another file) is 404.
 */
export function serveClientModule(request: { readonly url: string; readonly method: string }): Response {
  // The path exactly as sent: `new URL()` would resolve `..` and `.` segments before we could see them.
  const afterScheme = request.url.indexOf("//") + 2;
  const slash = request.url.indexOf("/", afterScheme);
  const body = slash < 0 ? undefined : BODIES.get(request.url.slice(slash));
  if (!body) {
    return new Response("Não encontrado: este binder serve só o cliente (/cliente.ts) e seus módulos.\n", {
      status: 404,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  return new Response(request.method === "HEAD" ? null : body, {
    headers: {
      "content-type": TYPESCRIPT,
      // Whoever loads the client gets the binder's version of the moment, not a stale copy in between.
      "cache-control": "no-cache",
    },
  });
}
