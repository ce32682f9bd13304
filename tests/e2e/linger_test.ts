/**
 * Refusals a client still sending can read: after a 413, 431 or 408 the
 * connection layer stops writing and reads and drops the rest of the
 * request (a lingering close, RFC 9112, 9.6) within a byte and a time limit,
 * so a client that reads only once it has sent everything (Python's
 * `http.client`) gets its answer instead of a reset. Against the real
 * binder and server, and in-process for the limits. And no request is taken
 * for a silent connection because the event loop was held when it came.
 *
 * @module
 */

import assert from "node:assert/strict";
import { serveHttp } from "../../lib/mod.ts";
import {
  pythonUnavailable,
  runPython,
  silentLog,
  startBinder,
  startServer,
  testUnless,
  waitUntil,
} from "../helpers/programs.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Python's http.client sends 20 MB to each `kind port` of argv, and prints what it reads, one JSON a line. */
const SEND_20_MB = `
import http.client, json, sys
MB20 = b"<" * (20 * 1024 * 1024)
for kind, port in zip(sys.argv[1::2], sys.argv[2::2]):
    connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    headers = {"Content-Type": "text/xml"}
    body = MB20
    if kind == "chunked":
        body = (MB20[i:i + 65536] for i in range(0, len(MB20), 65536))
    elif kind == "head":
        headers["X-Big"] = "a" * 40000
    try:
        connection.request("POST", "/", body=body, headers=headers, encode_chunked=kind == "chunked")
        response = connection.getresponse()
        print(json.dumps({"kind": kind, "status": response.status, "text": response.read().decode()}))
    except OSError as error:
        print(json.dumps({"kind": kind, "error": repr(error)}))
    finally:
        connection.close()
`;

testUnless(
  pythonUnavailable(),
  "20 MB to binder and server through Python's http.client: each reads its refusal, both still serve",
  async () => {
    await using binder = await startBinder();
    await using server = await startServer(binder);
    const output = await runPython(SEND_20_MB, [
      "length",
      String(binder.port),
      "length",
      String(server.port),
      "chunked",
      String(server.port),
      "head",
      String(binder.port),
    ]);
    const answers = output.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(answers.map((answer) => [answer.kind, answer.status ?? answer.error]), [
      ["length", 413],
      ["length", 413],
      ["chunked", 413],
      ["head", 431],
    ]);
    for (const answer of answers.slice(0, 3)) assert.match(answer.text, /grande demais \(máximo \d+ bytes\)/);
    // Both still serve.
    const [found] = await binder.client.call<[boolean]>("buscar_procedimento", ["ChatService"]);
    assert.equal(found, true);
    const [listed] = await server.client().call<[boolean]>("listar_salas");
    assert.equal(listed, true);
  },
);

/** Writes `bytes` until done or the connection fails; how many went out, and the error if one came. */
async function writeAll(connection: Deno.Conn, bytes: Uint8Array): Promise<{ sent: number; error?: Error }> {
  let sent = 0;
  try {
    while (sent < bytes.length) sent += await connection.write(bytes.subarray(sent, sent + 65536));
    return { sent };
  } catch (error) {
    return { sent, error: error as Error };
  }
}

/** Reads until the peer closes or the connection fails; the text that came. */
async function readAll(connection: Deno.Conn): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await connection.read(buffer);
      if (n === null) return text;
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    return text;
  }
}

function closeQuietly(connection: Deno.Conn): void {
  try {
    connection.close();
  } catch {
    // Closed.
  }
}

Deno.test("the lingering close stops at its byte limit and at its time limit", async () => {
  const server = serveHttp(
    {
      hostname: "127.0.0.1",
      port: 0,
      log: silentLog,
      headerTimeoutMs: 400,
      lingerBytes: 1 << 20,
      lingerMs: 600,
    },
    () => ({ status: 413, headers: {}, body: "grande demais\n" }),
  );
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    // Past the byte limit the server closes without reading on: the sender fails, long before 256 MiB.
    const flooding = await connect();
    await flooding.write(
      encoder.encode(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${256 << 20}\r\n\r\n`),
    );
    const [flood, floodAnswer] = await Promise.all([
      writeAll(flooding, new Uint8Array(256 << 20)),
      readAll(flooding),
    ]);
    closeQuietly(flooding);
    assert.match(floodAnswer, /^HTTP\/1\.1 413 /);
    assert(flood.error, "the flood was read to its end");
    assert(flood.sent < 64 << 20, `${flood.sent} bytes were taken`);

    // A client that trickles its body on is closed at the time limit.
    const trickling = await connect();
    await trickling.write(encoder.encode(`POST / HTTP/1.1\r\nhost: x\r\ncontent-length: ${1 << 20}\r\n\r\n`));
    const started = performance.now();
    const answer = readAll(trickling);
    const timer = setInterval(() => trickling.write(new Uint8Array(10)).catch(() => {}), 50);
    try {
      await waitUntil(() => server.connections === 0, "the trickling connection to close", 5000);
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    assert.match(await answer, /^HTTP\/1\.1 413 /);
    closeQuietly(trickling);
    assert(elapsed >= 550, `closed after ${elapsed} ms, before the time limit`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a head that comes too slowly gets 408, readable while the client still sends", async () => {
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, log: silentLog, headerTimeoutMs: 300 },
    () => ({ status: 200, headers: {}, body: "ok\n" }),
  );
  try {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await connection.write(encoder.encode("POST / HTTP/1.1\r\nhost: x\r\n"));
    const answer = readAll(connection);
    // Still sending its head, slowly, past the 408: nothing it sends is refused with a reset.
    const sent: Error[] = [];
    for (let i = 0; i < 12; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const result = await writeAll(connection, encoder.encode(`x-line-${i}: ${"a".repeat(500)}\r\n`));
      if (result.error) sent.push(result.error);
    }
    // And then a lot at once: the server reads it all and drops it.
    const rest = await writeAll(connection, encoder.encode(`x-rest: ${"a".repeat(4 << 20)}\r\n`));
    if (rest.error) sent.push(rest.error);
    await connection.closeWrite();
    assert.match(await answer, /^HTTP\/1\.1 408 /);
    assert.deepEqual(sent, []);
    closeQuietly(connection);
    await waitUntil(() => server.connections === 0, "the connection to close", 5000);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a request that came while the event loop was held is answered, not taken for a silent connection", async () => {
  const server = serveHttp(
    { hostname: "127.0.0.1", port: 0, log: silentLog, headerTimeoutMs: 100 },
    () => ({ status: 200, headers: {}, body: "ok\n" }),
  );
  try {
    for (let i = 0; i < 5; i++) {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      await new Promise((resolve) => setTimeout(resolve, 10)); // Accepted, its header timeout running.
      await connection.write(encoder.encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
      // The loop held past the header timeout (a big body being parsed, say), the request already here.
      const until = Date.now() + 250;
      while (Date.now() < until) {
        // Busy.
      }
      assert.match(await readAll(connection), /^HTTP\/1\.1 200 /, `request ${i}`);
      closeQuietly(connection);
    }
  } finally {
    await server.shutdown();
  }
});
