/**
 * A server on the connection layer whose files run out under it: once it
 * listens, it opens sockets of its own until the system refuses one, then
 * frees ten. Clients past that make the system refuse the server a file when
 * it accepts: limits_test.ts checks it survives that and keeps answering.
 *
 * @module
 */

import { announceReady, type Logger, serveHttp } from "../../lib/mod.ts";

const log: Logger = { info: console.log, warn: console.log, error: console.log };
const decoder = new TextDecoder();
const server = serveHttp({ hostname: "127.0.0.1", port: 0, log }, async (request) => ({
  status: 200,
  headers: { "content-type": "text/plain; charset=utf-8" },
  body: `ok: ${decoder.decode(await request.bytes())}`,
}));
const held: Deno.Listener[] = [];
try {
  for (;;) held.push(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
} catch {
  // Out of files.
}
for (const listener of held.splice(0, 10)) listener.close();
console.log("arquivos livres: 10");
announceReady({ programa: "hog", host: "127.0.0.1", porta: server.addr.port });
