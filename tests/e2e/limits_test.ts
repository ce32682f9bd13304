/**
 * Connection limits, against the real programs:
 * idle connections past the file limit (`ulimit -n 256` for the child), heads
 * that never end, kept-alive connections left idle, every connection busy;
 * the system refusing a file anyway; and a rogue service answering a client
 * with hundreds of megabytes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { endpointUrl, MAX_ANSWER_BYTES, serveHttp, Unreachable, XmlRpcClient } from "../../lib/mod.ts";
import {
  BINDER_PERMISSIONS,
  Program,
  rejection,
  ROOT,
  scriptCommand,
  SERVER_PERMISSIONS,
  silentLog,
  startBinder,
  startClient,
  waitUntil,
} from "../helpers/programs.ts";

const FILE_LIMIT = 256;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `sh` arguments that run a Deno script of this repository with `ulimit -n` lowered for it alone. */
function limitedShell(script: string, permissions: string[], args: string[] = []): string[] {
  const command = scriptCommand(script, permissions, args)
    .map((word) => `'${word.replace(/'/g, "'\\''")}'`).join(" ");
  return ["-c", `ulimit -n ${FILE_LIMIT} && exec ${command}`];
}

/** A Deno script of this repository, with `ulimit -n` lowered for it alone. */
function startLimited(script: string, permissions: string[], args: string[], cwd = ROOT): Program {
  return new Program("sh", limitedShell(script, permissions, args), { cwd });
}

/** The cap a program announced: `Conexões: no máximo N abertas (...)`. */
async function announcedCap(program: Program): Promise<number> {
  const [, cap] = await program.waitForLine(/Conexões: no máximo (\d+) abertas/);
  return Number(cap);
}

/** Opens `count` TCP connections that never send a byte. */
async function idleConnections(port: number, count: number): Promise<Deno.TcpConn[]> {
  const connections: Deno.TcpConn[] = [];
  for (let i = 0; i < count; i++) connections.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  return connections;
}

function closeAll(connections: Deno.Conn[]): void {
  for (const connection of connections) {
    try {
      connection.close();
    } catch {
      // Closed by the server.
    }
  }
}

/** Reads until the peer closes (or `timeoutMs`); what it sent, and whether it closed. */
async function readToEnd(
  connection: Deno.Conn,
  timeoutMs: number,
): Promise<{ text: string; closed: boolean }> {
  let text = "";
  const buffer = new Uint8Array(4096);
  const timer = setTimeout(() => connection.close(), timeoutMs);
  try {
    for (;;) {
      const n = await connection.read(buffer);
      if (n === null) return { text, closed: true };
      text += decoder.decode(buffer.subarray(0, n));
    }
  } catch {
    return { text, closed: false };
  } finally {
    clearTimeout(timer);
  }
}

async function send(connection: Deno.Conn, text: string): Promise<void> {
  let bytes = encoder.encode(text);
  while (bytes.length) bytes = bytes.subarray(await connection.write(bytes));
}

const CALL = "<?xml version='1.0'?><methodCall><methodName>system.listMethods</methodName></methodCall>";
const REQUEST =
  `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: text/xml\r\ncontent-length: ${CALL.length}\r\n\r\n${CALL}`;

Deno.test("idle connections past the file limit: binder and server keep answering and stay up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-limits-" });
  await using binder = startLimited("binder.ts", BINDER_PERMISSIONS, ["--host", "127.0.0.1", "--port", "0"]);
  await using server = startLimited(
    "server.ts",
    SERVER_PERMISSIONS,
    ["--host", "127.0.0.1", "--port", "0", "--binder", "127.0.0.1:1", "--db", ":memory:"],
    dir,
  );
  try {
    const targets = [
      { program: binder, method: "buscar_procedimento", params: ["ChatService"] },
      { program: server, method: "listar_salas", params: [] },
    ];
    await Promise.all(targets.map(async ({ program, method, params }) => {
      const { porta: port } = await program.ready();
      // More idle connections than the process may open files: before, it died of `Too many open files`.
      const idle = await idleConnections(port, FILE_LIMIT + 150);
      try {
        // Past 64 connections it looked again at how many files it may open, and capped them below that.
        const [, cap] = await program.waitForLine(/Conexões: no máximo (\d+) abertas de agora em diante/);
        assert(Number(cap) < FILE_LIMIT - 32, `a cap of ${cap} leaves too few of ${FILE_LIMIT} files`);
        const client = new XmlRpcClient(endpointUrl("127.0.0.1", port), { timeoutMs: 3000 });
        const started = performance.now();
        const [ok] = await client.call<[boolean]>(method, params);
        assert.equal(ok, method === "listar_salas", `${method} answered`);
        assert(performance.now() - started < 2000, `${method} took ${performance.now() - started} ms`);
        // Room was made by closing the connections idle the longest; the operator is told once.
        await program.waitForLine(/Conexões no limite \(\d+\): \d+ ociosas fechadas/, 5000);
      } finally {
        closeAll(idle);
      }
    }));
    for (const { program } of targets) {
      // The cap kept it below the limit: the system never refused it a file.
      assert.doesNotMatch(
        program.output + program.stderrLines.join("\n"),
        /Too many open files|Uncaught|panicked|O sistema recusou um arquivo/,
      );
    }
    // Alive: a second call on a fresh client.
    const { porta } = await binder.ready();
    const [found] = await new XmlRpcClient(endpointUrl("127.0.0.1", porta)).call<[boolean]>(
      "buscar_procedimento",
      ["x"],
    );
    assert.equal(found, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a head that never ends gets 408; silent and kept-alive idle connections are closed", async () => {
  await using binder = await startBinder(["--request-timeout", "0.4", "--idle-timeout", "0.4"]);
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port: binder.port });
  const started = performance.now();
  const [trickled, silent, kept] = await Promise.all([connect(), connect(), connect()]);
  await send(trickled, "POST / HTTP/1.1\r\nhost: x\r\ncontent-");
  await send(kept, REQUEST);
  const [slow, quiet, idle] = await Promise.all([
    readToEnd(trickled, 5000),
    readToEnd(silent, 5000),
    readToEnd(kept, 5000),
  ]);
  const elapsed = performance.now() - started;
  assert.match(slow.text, /^HTTP\/1\.1 408 /);
  assert.equal(slow.closed, true);
  assert.deepEqual(quiet, { text: "", closed: true });
  assert.match(idle.text, /^HTTP\/1\.1 200 /);
  assert.equal(idle.closed, true, "the kept-alive connection was closed");
  // The timeouts at least, and a sweep (a quarter of them) later at most, give or take a busy machine.
  assert(elapsed >= 350 && elapsed < 1500, `closed after ${elapsed} ms`);
});

Deno.test("past the cap with every connection busy: 503 at once, then served again", async () => {
  await using binder = await startBinder(["--max-connections", "3", "--request-timeout", "0.5"]);
  assert.equal(await announcedCap(binder.program), 3);
  // Three requests whose bodies never come: their handlers hold them (busy), until the request timeout.
  const stalled = await Promise.all(Array.from({ length: 3 }, async () => {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: binder.port });
    await send(connection, "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n<methodCall>");
    return connection;
  }));
  try {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const full = await fetch(endpointUrl("127.0.0.1", binder.port), { method: "POST", body: CALL });
    assert.equal(full.status, 503);
    assert.match(await full.text(), /Servidor cheio/);
    assert.equal(full.headers.get("retry-after"), "1");
    // The stalled ones get their 408 and go; calls are served again.
    for (const connection of stalled) {
      assert.match((await readToEnd(connection, 5000)).text, /^HTTP\/1\.1 408 /);
    }
    const [ok] = await binder.client.call<[boolean]>("buscar_procedimento", ["x"]);
    assert.equal(ok, false);
  } finally {
    closeAll(stalled);
  }
});

Deno.test("when the system refuses a file anyway, the cap drops, idle connections make room, nothing dies", async () => {
  // A server whose files run out under it: it opened sockets of its own after starting.
  await using hog = new Program("sh", limitedShell("tests/testdata/file_hog_server.ts", ["--allow-net"]));
  const { porta: port } = await hog.ready();
  const free = Number((await hog.waitForLine(/^arquivos livres: (\d+)$/))[1]);
  assert(free < 20, `${free} files left free`);
  const idle = await idleConnections(port, 60);
  try {
    await hog.waitForLine(/O sistema recusou um arquivo com \d+ conexões abertas: no máximo \d+/, 5000);
    const response = await fetch(endpointUrl("127.0.0.1", port), { method: "POST", body: "oi" });
    assert.equal(await response.text(), "ok: oi");
    assert.equal(hog.stderrLines.filter((line) => /Uncaught|panicked/.test(line)).length, 0);
  } finally {
    closeAll(idle);
  }
});

Deno.test("the connection layer parses what clients send: chunked bodies, pipelining, 100-continue, bad heads", async () => {
  const server = serveHttp({ hostname: "127.0.0.1", port: 0, log: silentLog }, async (request) => {
    const body = decoder.decode(await request.bytes());
    return { status: 200, headers: { "x-method": request.method }, body: `${request.method} ${body}` };
  });
  const { port } = server.addr;
  const exchange = async (text: string) => {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port });
    await send(connection, text);
    const { text: answer } = await readToEnd(connection, 2000);
    closeAll([connection]);
    return answer;
  };
  try {
    const chunked = await exchange(
      "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n" +
        "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\ntrailer: 1\r\n\r\n",
    );
    assert.match(chunked, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 10\r\n[^]*\r\n\r\nPOST abcde$/);
    const pipelined = await exchange(
      "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nA" +
        "\r\nPOST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\nconnection: close\r\n\r\nB",
    );
    assert.deepEqual(pipelined.match(/POST [AB]/g), ["POST A", "POST B"]);
    const continued = await exchange(
      "POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    );
    assert.match(continued, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
    const old = await exchange("GET / HTTP/1.0\r\n\r\n");
    assert.match(old, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n[^]*GET $/);
    for (
      const [head, status] of [
        ["POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n", 400],
        ["POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n", 501],
        ["POST / HTTP/1.1\r\ncontent-length: 1, 2\r\n\r\n", 400],
        ["POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n", 400],
        ["POST / HTTP/2.0\r\n\r\n", 505],
        ["POST /\r\n\r\n", 400],
        ["POST / HTTP/1.1\r\n folded: x\r\n\r\n", 400],
        ["POST / HTTP/1.1\r\nbad header\r\n\r\n", 400],
        ["POST / HTTP/1.1\r\nexpect: magic\r\n\r\n", 417],
        [`POST / HTTP/1.1\r\nx: ${"a".repeat(20_000)}\r\n\r\n`, 431],
      ] as const
    ) {
      assert.match(
        await exchange(head),
        new RegExp(`^HTTP/1\\.1 ${status} `),
        JSON.stringify(head.slice(0, 60)),
      );
    }
    await waitUntil(() => server.connections === 0, "the server to close every connection", 2000);
  } finally {
    await server.shutdown();
  }
});

Deno.test("one connection, heads and answers alike: each request read as sent, each answer as made", async () => {
  // A client repeating its call sends the same head again (read once, reused); a room's message answers many
  // waits with one string (encoded once): neither may blur two requests or two answers that only look alike.
  const SHARED = "ação ".repeat(3);
  const server = serveHttp({ hostname: "127.0.0.1", port: 0, log: silentLog }, async (request) => {
    const body = decoder.decode(await request.bytes());
    const who = request.headers.get("x-who");
    return { status: 200, headers: {}, body: who === "all" ? SHARED : `${who} ${body}` };
  });
  const post = (who: string, body: string, last = false) =>
    `POST / HTTP/1.1\r\nhost: x\r\nx-who: ${who}\r\ncontent-length: ${body.length}\r\n` +
    `${last ? "connection: close\r\n" : ""}\r\n${body}`;
  try {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await send(
      connection,
      post("ana", "1") + post("ana", "1") + post("ana", "3") + post("bia", "2") + post("ana", "3") +
        post("all", "") + post("all", "") + post("caio", "4") + post("all", "", true),
    );
    const other = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await send(other, post("all", "") + post("dora", "5", true));
    const answersOf = async (conn: Deno.Conn) =>
      (await readToEnd(conn, 2000)).text.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((answer) => {
        const [head, body] = answer.split("\r\n\r\n");
        assert.equal(Number(/content-length: (\d+)/.exec(head!)![1]), encoder.encode(body).length);
        return body;
      });
    const [answers, others] = [await answersOf(connection), await answersOf(other)];
    closeAll([connection, other]);
    assert.deepEqual(answers, [
      "ana 1",
      "ana 1",
      "ana 3",
      "bia 2",
      "ana 3",
      SHARED,
      SHARED,
      "caio 4",
      SHARED,
    ]);
    assert.deepEqual(others, [SHARED, "dora 5"]);
  } finally {
    await server.shutdown();
  }
});

// ---------------------------------------------------------------------------
// The client's limit on answers
// ---------------------------------------------------------------------------

/** A service that answers every POST with `bytes` of XML, with or without a declared length. */
function rogueService(bytes: number, declared: boolean) {
  const chunk = encoder.encode("<".repeat(64 * 1024));
  let served = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    await request.body?.cancel();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= bytes) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
        served += chunk.length;
      },
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: declared ? { "content-length": String(Math.ceil(bytes / chunk.length) * chunk.length) } : {},
    });
  });
  return { server, served: () => served };
}

Deno.test("XmlRpcClient refuses an answer past its limit, declared or streamed, and reads no further", async () => {
  for (const declared of [true, false]) {
    await using rogue = rogueService(64 * 1024 * 1024, declared).server;
    const client = new XmlRpcClient(endpointUrl("127.0.0.1", rogue.addr.port), { maxAnswerBytes: 100_000 });
    const error = await rejection(() => client.call("listar_salas"), Unreachable);
    assert.equal(error.kind, "tooLarge");
    assert.equal(error.detail, "resposta grande demais (mais de 100000 bytes)");
  }
  assert.equal(new XmlRpcClient("http://127.0.0.1:1/").maxAnswerBytes, MAX_ANSWER_BYTES);
});

Deno.test("a rogue binder answering 300 MB: the client says so and its memory stays bounded", async () => {
  const rogue = rogueService(300 * 1024 * 1024, false);
  await using server = rogue.server;
  const client = startClient({ address: `127.0.0.1:${server.addr.port}` }, [
    "--name",
    "ana",
    "--attempts",
    "2",
  ]);
  let peakKiB = 0;
  const watch = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${client.pid}/status`);
      peakKiB = Math.max(peakKiB, Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0));
    } catch {
      // Gone.
    }
  }, 20);
  try {
    assert.equal((await client.status).code, 1, client.tail());
  } finally {
    clearInterval(watch);
  }
  assert.match(
    client.output,
    /O binder em 127\.0\.0\.1:\d+ não responde \(resposta grande demais\)/,
  );
  assert.deepEqual(client.stderrLines, []);
  // Two attempts read at most 2 x 8 MiB (and what is in flight); the whole answer would be 300 MB.
  assert(rogue.served() < 100 * 1024 * 1024, `the rogue sent ${rogue.served() >> 20} MiB`);
  assert(peakKiB > 0 && peakKiB < 200 * 1024, `the client peaked at ${peakKiB >> 10} MiB`);
  console.log(`client peak RSS ${peakKiB >> 10} MiB; the rogue sent ${rogue.served() >> 20} MiB in all`);
});

Deno.test("1,200 registrations pointing at the chat server: capped, probed once a round, the server stays up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-limits-" });
  await using binder = await startBinder(["--check-interval", "0.1"]);
  await using server = startLimited(
    "server.ts",
    SERVER_PERMISSIONS,
    [
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--binder",
      binder.address,
      "--db",
      ":memory:",
      "--register-interval",
      "0.2",
    ],
    dir,
  );
  try {
    const { porta: port } = await server.ready();
    await server.waitForLine(/Registrado no binder .* como ChatService/);
    // Before: the next probe round opened all 1,200 at once, and the server ran out of files and died.
    const outcomes = new Map<string, number>();
    for (let batch = 0; batch < 12; batch++) {
      const calls = Array.from({ length: 100 }, (_, i) => ({
        methodName: "registrar_procedimento",
        params: [`Falso${batch * 100 + i}`, "127.0.0.1", port],
      }));
      for (
        const [[ok, message]] of await binder.client.call<[[boolean, string]][]>("system.multicall", [calls])
      ) {
        const kind = ok ? "registrado" : message.replace(/^.*\(limite (--[\w-]+)\)\.$/, "$1");
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
      }
    }
    // 64 per source: the server's own ChatService and 63 of these; all from loopback.
    assert.deepEqual(Object.fromEntries(outcomes), { registrado: 63, "--max-per-source": 1137 });
    // Some rounds of probes: every one of them is one connection to the server's port.
    await new Promise((resolve) => setTimeout(resolve, 400));
    const [, listed] = await binder.client.call<[boolean, { estado: string }[]]>("listar_procedimentos");
    assert.equal(listed.length, 64);
    assert(listed.every((endpoint) => endpoint.estado === "vivo"), JSON.stringify(listed.slice(0, 3)));
    const client = new XmlRpcClient(endpointUrl("127.0.0.1", port), { timeoutMs: 3000 });
    assert.deepEqual(await client.call("listar_salas"), [true, []]);
    assert.doesNotMatch(server.output + server.stderrLines.join("\n"), /Too many open files|Uncaught/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
