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
 * - `http-trivial`: our HTTP layer answering at once, reading nothing but the request;
 * - `serve-fanout`, `http-fanout`: the least a long-poll chat does, on `Deno.serve` and on our HTTP layer, for
 *   `deno task bench --server` to drive: the calls decoded and answered with our codec, rooms and waiters in
 *   memory, a send woken to its room's waiters; no checks, no sessions, nothing stored, no log. Its delivery
 *   p99 and CPU per delivery are the floor of the benchmark's own on this machine.
 *
 * It prints the ready line the server prints (`rpc-chat-pronto {..."porta":N}`) and stops on SIGINT.
 *
 * @module
 */

import { serveHttp } from "../lib/wire/http_server.ts";
import { encodeOnce, encodeResponse, parseXmlRpc } from "../lib/wire/codec.ts";
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

/** The fan-out floor's chat: each room's messages and the waits on it. */
const rooms = new Map<
  string,
  { messages: object[]; waiters: Set<() => void>; answered?: { cursor: number; newest: object; xml: string } }
>();
let lastId = 0;
const roomOf = (name: string) => {
  let room = rooms.get(name);
  if (!room) rooms.set(name, room = { messages: [], waiters: new Set() });
  return room;
};

/** A call of the benchmark's, answered as the chat would (in shape) and as little else as can be. */
async function fanout(bytes: Uint8Array): Promise<string> {
  const { method, params } = parseXmlRpc(utf8.decode(bytes), "methodCall") as {
    method: string;
    params: unknown[];
  };
  switch (method) {
    case "registrar_usuario":
    case "criar_sala":
      return encodeResponse([true, "ok"]);
    case "entrar_na_sala":
      roomOf(params[1] as string);
      return encodeResponse([true, { sala: params[1], usuarios: [], mensagens: [], cursor: lastId }]);
    case "enviar_mensagem": {
      const room = roomOf(params[1] as string);
      const message = encodeOnce({
        id: ++lastId,
        tipo: "broadcast",
        origem: params[0],
        destino: "TODOS",
        conteudo: params[2],
        timestamp: "2026-12-03 00:00:00",
      });
      room.messages.push(message);
      if (room.messages.length > 200) room.messages.shift();
      const waiters = [...room.waiters];
      room.waiters.clear();
      for (const wake of waiters) wake();
      return encodeResponse([true, "Mensagem enviada."]);
    }
    case "aguardar_mensagens": {
      const room = roomOf(params[1] as string);
      const cursor = params[2] as number;
      const after = () => room.messages.filter((message) => (message as { id: number }).id > cursor);
      let found = after();
      if (found.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            room.waiters.delete(wake);
            resolve();
          }, params[3] as number);
          const wake = () => {
            clearTimeout(timer);
            resolve();
          };
          room.waiters.add(wake);
        });
        found = after();
      }
      // Every waiter woken by the same message gets the same answer: made once, as ours is.
      const newest = room.messages.at(-1)!;
      const shared = room.answered;
      if (shared && shared.cursor === cursor && shared.newest === newest) return shared.xml;
      const xml = encodeResponse([true, {
        mensagens: found,
        cursor: (found.at(-1) as { id: number } | undefined)?.id ?? cursor,
      }]);
      if (found.length) room.answered = { cursor, newest, xml };
      return xml;
    }
    default:
      return encodeResponse([false, "?"]);
  }
}

let port: number;
if (mode === "serve-fanout") {
  port = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => new Response(await fanout(await request.bytes()), { headers: HEADERS }),
  ).addr.port;
} else if (mode === "http-fanout") {
  port = serveHttp(
    { hostname: "127.0.0.1", port: 0, log: quiet },
    async (request) => {
      const bytes = request.bytesAtHand?.() ?? await request.bytes();
      return { status: 200, headers: HEADERS, body: await fanout(bytes) };
    },
  ).addr.port;
} else if (mode === "serve-send") {
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
  console.error("uso: floor.ts http-send|serve-send|http-trivial|serve-fanout|http-fanout");
  Deno.exit(2);
}
console.log(`rpc-chat-pronto {"programa":"floor","host":"127.0.0.1","porta":${port}}`);
Deno.addSignalListener("SIGINT", () => {
  store.close();
  Deno.exit(0);
});
