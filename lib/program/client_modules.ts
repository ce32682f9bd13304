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
 * tests/e2e/binder_test.ts checks this list against the client's code graph
 * (`deno info --json cliente.ts`, type-only imports left out: Deno never
 * loads them to run, so the binder never serves them).
 *
 * The one library module that names a program: it embeds the client's files
 * as text (data, not code), so that the binder serves exactly them. Only the
 * host's side (`lib/host.ts`) re-exports it: in `deps.ts`, it would put the
 * client's own source into the client's module graph.
 *
 * @module
 */

import cliente from "../../cliente.ts" with { type: "text" };
import deps from "../../deps.ts" with { type: "text" };
import chatProtocol from "../chat/protocol.ts" with { type: "text" };
import clientCommands from "../client/commands.js" with { type: "text" };
import clientLines from "../client/lines.ts" with { type: "text" };
import clientSession from "../client/session.ts" with { type: "text" };
import programFlags from "./flags.ts" with { type: "text" };
import programIo from "./io.ts" with { type: "text" };
import termEditor from "../term/editor.ts" with { type: "text" };
import termRender from "../term/render.ts" with { type: "text" };
import termUi from "../term/ui.ts" with { type: "text" };
import textClient from "../text/client.ts" with { type: "text" };
import textNetwork from "../text/network.ts" with { type: "text" };
import textNotices from "../text/notices.ts" with { type: "text" };
import wireCodec from "../wire/codec.ts" with { type: "text" };
import wireHttpClient from "../wire/http_client.ts" with { type: "text" };

/** The served paths (relative to the binder's address) and their text: the client's module graph. */
export const CLIENT_MODULES: ReadonlyMap<string, string> = new Map([
  ["cliente.ts", cliente],
  ["deps.ts", deps],
  ["lib/chat/protocol.ts", chatProtocol],
  ["lib/client/commands.js", clientCommands],
  ["lib/client/lines.ts", clientLines],
  ["lib/client/session.ts", clientSession],
  ["lib/program/flags.ts", programFlags],
  ["lib/program/io.ts", programIo],
  ["lib/term/editor.ts", termEditor],
  ["lib/term/render.ts", termRender],
  ["lib/term/ui.ts", termUi],
  ["lib/text/client.ts", textClient],
  ["lib/text/network.ts", textNetwork],
  ["lib/text/notices.ts", textNotices],
  ["lib/wire/codec.ts", wireCodec],
  ["lib/wire/http_client.ts", wireHttpClient],
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
