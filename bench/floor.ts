/**
 * The floor of a durable send: the least `enviar_mensagem` must do, to
 * measure against a raw `Deno.serve` with an outside load generator (see the
 * README's Performance section). Not part of the chat.
 *
 * `deno run --allow-net --allow-read=floor.db --allow-write=floor.db bench/floor.ts MODE`, MODE one of:
 *
 * - `http-send`: our HTTP layer (`lib/wire/http_server.ts`); the body decoded with our
 *   codec, stored with our `MessageStore` (its schema, its group commit:
 *   answered once the commit is done), a fixed answer;
 * - `serve-send`: the same on `Deno.serve`;
 * - `http-trivial`: our HTTP layer answering at once, reading nothing but the request.
 *
 * It prints the ready line the server prints (`rpc-chat-pronto {..."porta":N}`) and stops on SIGINT.
 *
 * @module
 */

import { serveHttp } from "../lib/wire/http_server.ts";
import { encodeResponse, parseXmlRpc } from "../lib/wire/codec.ts";
import { MessageStore } from "../lib/mod.ts";

const mode = Deno.args[0] ?? "http-send";
const ANSWER = encodeResponse([true, "Mensagem enviada."]);
const HEADERS = { "content-type": "text/xml; charset=utf-8" };
const utf8 = new TextDecoder("utf-8", { fatal: true });
const quiet = { info() {}, warn() {}, error() {} };
const store = new MessageStore("floor.db");

/** Decodes a call; an `enviar_mensagem(usuario, sala, texto, destinatario)` is stored before the answer. */
async function send(bytes: Uint8Array): Promise<string> {
  const { params } = parseXmlRpc(utf8.decode(bytes), "methodCall") as { params: string[] };
  if (params.length === 4) {
    await store.addMessage({
      room: params[1]!,
      tipo: "broadcast",
      origem: params[0]!,
      destino: "TODOS",
      conteudo: params[2]!,
      timestamp: Date.now(),
      notice: undefined,
      fromId: "3f2a9c1e-8e55-4c8a-a0a4-5a5ad3e6f1b2",
      toId: undefined,
    }, () => {});
  }
  return ANSWER;
}

let port: number;
if (mode === "serve-send") {
  port = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => new Response(await send(await request.bytes()), { headers: HEADERS }),
  ).addr.port;
} else if (mode === "http-send" || mode === "http-trivial") {
  const answer = { status: 200, headers: HEADERS, body: ANSWER };
  port = serveHttp(
    { hostname: "127.0.0.1", port: 0, log: quiet },
    mode === "http-trivial"
      ? (request) => request.bytesAtHand?.() ? answer : request.bytes().then(() => answer)
      : async (request) => {
        const bytes = request.bytesAtHand?.() ?? await request.bytes();
        return { status: 200, headers: HEADERS, body: await send(bytes) };
      },
  ).addr.port;
} else {
  console.error("uso: floor.ts http-send|serve-send|http-trivial");
  Deno.exit(2);
}
console.log(`rpc-chat-pronto {"programa":"floor","host":"127.0.0.1","porta":${port}}`);
Deno.addSignalListener("SIGINT", () => {
  store.close();
  Deno.exit(0);
});
