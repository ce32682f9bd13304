import assert from "node:assert/strict";
import { codeGraph } from "../../tools/client_graph.ts";
import { Fault, FaultCode, XmlRpcClient } from "../../lib/mod.ts";
import { CLIENT_MODULES, TYPESCRIPT } from "../../lib/program/client_modules.ts";
import {
  assertUsageError,
  BINDER_PERMISSIONS,
  CLIENT_PERMISSIONS,
  freePort,
  listenOnFreePort,
  postRaw,
  Program,
  rejection,
  ROOT,
  runPython,
  runScript,
  startBinder,
  startClient,
  startScript,
  startServer,
  waitUntil,
} from "../helpers/programs.ts";

type Listing = [true, { nome: string; endereco: string; porta: number; estado: string; idade_s: number }[]];

Deno.test("binder --help prints usage and exits 0", async () => {
  const { code, stdout } = await runScript("binder.ts", BINDER_PERMISSIONS, ["--help"]);
  assert.deepEqual(code, 0);
  assert.match(stdout, /Uso: deno run --allow-net binder\.ts/);
  assert.match(stdout, /--port P/);
});

Deno.test("binder refuses a bad flag or value with one line and exit code 2", async () => {
  for (
    const [args, message] of [
      [["--bogus"], /opção desconhecida '--bogus'/],
      [["--port", "99999"], /--port deve ser um inteiro de 0 a 65535/],
      [["--port", "abc"], /--port deve ser um inteiro/],
      [["--drop-after=-1"], /--drop-after deve ser um número/],
      [["--drop-after", "-1"], /o valor de --drop-after começa com '-'/],
      [["sobra"], /argumento inesperado 'sobra'/],
      [["--register-key", "curta"], /--register-key: use de 8 a 200 caracteres/],
      [["--max-per-source", "0"], /--max-per-source deve ser um inteiro de 1 a/],
      [["--max-endpoints", "x"], /--max-endpoints deve ser um inteiro de 1 a/],
    ] as const
  ) {
    await assertUsageError("binder.ts", BINDER_PERMISSIONS, args, message);
  }
});

Deno.test("binder registers, looks up, re-registers and answers unknown names", async () => {
  await using binder = await startBinder();
  const { client } = binder;
  const [ok, message] = await client.call<[boolean, string]>("registrar_procedimento", [
    "ChatService",
    "127.0.0.1",
    8001,
  ]);
  assert(ok);
  assert.match(message, /ChatService/);
  assert.deepEqual(await client.call("buscar_procedimento", ["ChatService"]), [true, {
    endereco: "127.0.0.1",
    porta: 8001,
  }]);
  // A restarted server registers again: the original refused this.
  assert.deepEqual(
    (await client.call<[boolean]>("registrar_procedimento", ["ChatService", "127.0.0.1", 8001]))[0],
    true,
  );
  const [found, notFound] = await client.call<[boolean, string]>("buscar_procedimento", ["Nada"]);
  assert.deepEqual(found, false);
  assert.match(notFound, /não encontrado/);
  await binder.program.waitForLine(/Registrado: ChatService -> 127\.0\.0\.1:8001/);
  await binder.program.waitForLine(/Busca sem resultado: Nada/);
});

Deno.test("binder rotates lookups among several endpoints of one name", async () => {
  await using binder = await startBinder();
  for (const port of [9001, 9002, 9003]) {
    await binder.client.call("registrar_procedimento", ["Eco", "127.0.0.1", port]);
  }
  const seen = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const [, { porta }] = await binder.client.call<[true, { porta: number }]>("buscar_procedimento", ["Eco"]);
    seen.add(porta);
  }
  assert.deepEqual([...seen].sort(), [9001, 9002, 9003]);
});

Deno.test("binder unregisters and lists endpoints with age and state", async () => {
  await using binder = await startBinder();
  const { client } = binder;
  await client.call("registrar_procedimento", ["A", "127.0.0.1", 7001]);
  await client.call("registrar_procedimento", ["B", "127.0.0.1", 7002]);
  const [, listing] = await client.call<Listing>("listar_procedimentos");
  assert.deepEqual(listing.map((e) => `${e.nome}@${e.porta}`).sort(), ["A@7001", "B@7002"]);
  assert(listing.every((e) => e.idade_s >= 0 && typeof e.estado === "string"));
  assert.deepEqual((await client.call<[boolean]>("remover_procedimento", ["A", "127.0.0.1", 7001]))[0], true);
  assert.deepEqual(
    (await client.call<[boolean]>("remover_procedimento", ["A", "127.0.0.1", 7001]))[0],
    false,
  );
  assert.deepEqual((await client.call<[boolean]>("buscar_procedimento", ["A"]))[0], false);
  await binder.program.waitForLine(/Removido a pedido: A -> 127\.0\.0\.1:7001/);
});

Deno.test("binder refuses invalid names and ports with a clear message", async () => {
  await using binder = await startBinder();
  for (
    const [params, message] of [
      [["", "127.0.0.1", 8001], /Nome inválido/],
      [["X", "127.0.0.1", 0], /Porta inválida/],
      [["X", "127.0.0.1", 70000], /Porta inválida/],
      [["X", "", 8001], /Endereço inválido/],
    ] as const
  ) {
    const [ok, text] = await binder.client.call<[boolean, string]>("registrar_procedimento", [...params]);
    assert.deepEqual(ok, false);
    assert.match(text, message);
  }
});

Deno.test("binder drops an endpoint that stops answering and keeps the live one", async () => {
  await using binder = await startBinder(["--check-interval", "0.05", "--drop-after", "0.3"]);
  const live = listenOnFreePort();
  const dying = listenOnFreePort();
  const { client } = binder;
  await client.call("registrar_procedimento", ["ChatService", "127.0.0.1", live.addr.port]);
  await client.call("registrar_procedimento", ["ChatService", "127.0.0.1", dying.addr.port]);
  const states = async () => {
    const [, listing] = await client.call<Listing>("listar_procedimentos");
    return new Map(listing.map((e) => [e.porta, e.estado]));
  };
  await waitUntil(async () => (await states()).get(dying.addr.port) === "vivo", "both probed alive");
  dying.close();
  await waitUntil(async () => !(await states()).has(dying.addr.port), "the dead endpoint dropped");
  assert.deepEqual((await states()).get(live.addr.port), "vivo");
  // Lookups now return only the live one.
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await client.call("buscar_procedimento", ["ChatService"]), [true, {
      endereco: "127.0.0.1",
      porta: live.addr.port,
    }]);
  }
  await binder.program.waitForLine(
    new RegExp(`Removido \\(sem resposta há \\d+ s\\): ChatService -> 127\\.0\\.0\\.1:${dying.addr.port}`),
  );
  live.close();
});

Deno.test("binder answers protocol errors with faults and keeps serving", async () => {
  await using binder = await startBinder(["--request-timeout", "0.3"]);
  const { client, port } = binder;
  const faultOf = async (body: string) => {
    const response = await postRaw(port, body);
    assert.deepEqual(response.status, 200);
    return /<name>faultCode<\/name>\s*<value><int>(-?\d+)<\/int>/.exec(await response.text())?.[1];
  };
  assert.deepEqual(await faultOf("<methodCall><methodName>x"), String(FaultCode.PARSE_ERROR));
  assert.deepEqual(await faultOf("isto não é XML"), String(FaultCode.PARSE_ERROR));
  assert.deepEqual(
    await faultOf("<methodResponse><params/></methodResponse>"),
    String(FaultCode.INVALID_REQUEST),
  );
  assert.deepEqual(
    await faultOf(
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><methodCall><methodName>&a;</methodName></methodCall>',
    ),
    String(FaultCode.PARSE_ERROR),
  );
  const unknown = await rejection(() => client.call("nao_existe"), Fault);
  assert.deepEqual(unknown.code, FaultCode.METHOD_NOT_FOUND);
  const missing = await rejection(() => client.call("buscar_procedimento"), Fault);
  assert.deepEqual(missing.code, FaultCode.INVALID_PARAMS);
  const wrongType = await rejection(
    () => client.call("registrar_procedimento", ["X", "127.0.0.1", "8001"]),
    Fault,
  );
  assert.deepEqual(wrongType.code, FaultCode.INVALID_PARAMS);
  assert.match(wrongType.message, /porta/);

  // Oversized: refused before it is read.
  const huge = await postRaw(port, "<".repeat(2 * 1024 * 1024));
  assert.deepEqual(huge.status, 413);
  await huge.body?.cancel();

  // A client that stalls mid-body gets 408, and others are served meanwhile.
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
  await stalled.write(new TextEncoder().encode(
    "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: text/xml\r\ncontent-length: 500\r\n\r\n<methodCall>",
  ));
  assert.deepEqual((await client.call<[boolean]>("buscar_procedimento", ["X"]))[0], false);
  const reply = new Uint8Array(1024);
  const n = await stalled.read(reply);
  assert.match(new TextDecoder().decode(reply.subarray(0, n ?? 0)), /^HTTP\/1\.1 408/);
  stalled.close();
  assert.deepEqual((await client.call<[boolean]>("buscar_procedimento", ["X"]))[0], false);
});

Deno.test("lookups with absurd or endless names cannot flood the binder's log", async () => {
  await using binder = await startBinder();
  const before = binder.program.lines.length;
  // Before: a 1 MB name was logged whole, +20 MB of log in 0.3 s.
  const absurd = await binder.client.call<[boolean, string]>("buscar_procedimento", ["x".repeat(1_000_000)]);
  assert.match(absurd[1], /^Nome inválido/);
  const forged = "a\n2026-11-24 15:28:12 [INFO] Registrado: ChatService -> 6.6.6.6:80";
  assert.match(
    (await binder.client.call<[boolean, string]>("buscar_procedimento", [forged]))[1],
    /^Nome inválido/,
  );
  for (let batch = 0; batch < 5; batch++) {
    const calls = Array.from({ length: 100 }, (_, i) => ({
      methodName: "buscar_procedimento",
      params: [`nada-${batch}-${i}-${"z".repeat(95)}`],
    }));
    await binder.client.call("system.multicall", [calls]);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  const lines = binder.program.lines.slice(before);
  assert.equal(lines.filter((line) => line.includes("Busca sem resultado")).length, 20, lines.join("\n"));
  assert(
    lines.every((line) => line.length < 160),
    `a long log line: ${lines.find((line) => line.length >= 160)}`,
  );
  assert(!lines.some((line) => line.includes("6.6.6.6")), "a forged log line");
});

Deno.test("binder has introspection and multicall", async () => {
  await using binder = await startBinder();
  const methods = await binder.client.call<string[]>("system.listMethods");
  for (
    const name of [
      "registrar_procedimento",
      "buscar_procedimento",
      "remover_procedimento",
      "listar_procedimentos",
      "system.multicall",
    ]
  ) assert(methods.includes(name), name);
  assert.match(
    await binder.client.call<string>("system.methodHelp", ["buscar_procedimento"]),
    /nome: string/,
  );
  const results = await binder.client.call("system.multicall", [[
    { methodName: "registrar_procedimento", params: ["M", "127.0.0.1", 1234] },
    { methodName: "buscar_procedimento", params: ["M"] },
    { methodName: "nao_existe", params: [] },
  ]]);
  assert.deepEqual((results as unknown[])[1], [[true, { endereco: "127.0.0.1", porta: 1234 }]]);
  assert.deepEqual((results as { faultCode: number }[])[2]!.faultCode, FaultCode.METHOD_NOT_FOUND);
});

Deno.test("Python's xmlrpc.client drives the binder as the original programs did", async () => {
  await using binder = await startBinder();
  const output = await runPython(
    `
import sys, xmlrpc.client
binder = xmlrpc.client.ServerProxy("http://" + sys.argv[1], allow_none=True)
print(binder.registrar_procedimento("ChatService", "127.0.0.1", 8001))
print(binder.buscar_procedimento("ChatService"))
print(binder.registrar_procedimento("ChatService", "127.0.0.1", 8001))
ok, info = binder.buscar_procedimento("ChatService")
print(ok, info["endereco"], info["porta"], type(info["porta"]).__name__)
print(binder.buscar_procedimento("Desconhecido"))
try:
    binder.nao_existe()
except xmlrpc.client.Fault as fault:
    print("fault", fault.faultCode)
`,
    [binder.address],
  );
  const lines = output.trim().split("\n");
  assert.match(lines[0]!, /^\[True, ".*ChatService.*"\]$/);
  assert.deepEqual(lines[1], "[True, {'endereco': '127.0.0.1', 'porta': 8001}]");
  assert.match(lines[2]!, /^\[True, /);
  assert.deepEqual(lines[3], "True 127.0.0.1 8001 int");
  assert.match(lines[4]!, /^\[False, ".*Desconhecido.*não encontrado.*"\]$/);
  assert.deepEqual(lines[5], `fault ${FaultCode.METHOD_NOT_FOUND}`);
});

Deno.test("binder stops cleanly on SIGTERM", async () => {
  await using binder = await startBinder();
  const status = await binder.program.stop("SIGTERM");
  assert.deepEqual(status.code, 0);
  assert.match(binder.program.output, /Binder encerrado\./);
});

// The client library talks to a binder that is not there: a clear error, not a hang.
Deno.test("a call to a binder that is down fails fast and says so", async () => {
  const port = freePort();
  const client = new XmlRpcClient(`http://127.0.0.1:${port}/`, { timeoutMs: 2000 });
  const error = await rejection(() => client.call("buscar_procedimento", ["ChatService"]));
  assert.match(String(error), /conexão recusada/);
});

// ---------------------------------------------------------------------------
// The client, served over HTTP GET
// ---------------------------------------------------------------------------

Deno.test("the binder serves exactly the client's code graph: no host-side module, under 200 KB, no npm", async () => {
  const graph = await codeGraph(`${ROOT}cliente.ts`);
  const root = new URL("../..", import.meta.url).href;
  const local = graph.map(({ specifier }) => specifier).filter((s) => s.startsWith("file:"));
  // Everything else is the runtime's own (`node:`): nothing to serve, nothing to download.
  assert.deepEqual(graph.map(({ specifier }) => specifier).filter((s) => !/^(file|node):/.test(s)), []);
  assert(local.every((s) => s.startsWith(root)), `modules outside the checkout: ${local}`);
  const paths = local.map((s) => s.slice(root.length)).sort();
  assert.deepEqual([...CLIENT_MODULES.keys()].sort(), paths);
  for (const [path, text] of CLIENT_MODULES) {
    assert.deepEqual(text, await Deno.readTextFile(`${ROOT}${path}`), `${path} as embedded`);
  }
  // The host's side stays out: no listener, no dispatcher, no engine, no SQLite, no Redis, no page.
  const hostSide = paths.filter((path) =>
    /^lib\/(rpc|binder|web|chat\/(rules|names|methods|engines))|http_server|program\/(log|child)/.test(path)
  );
  assert.deepEqual(hostSide, []);
  assert(!graph.some(({ specifier }) => specifier === "node:sqlite"), "node:sqlite in the client's graph");
  const size = graph.reduce((sum, { size }) => sum + size, 0);
  assert(size <= 200_000, `the client's graph is ${size} bytes`);
});

Deno.test("binder serves the client's modules over GET as TypeScript, and nothing else", async () => {
  // Its working directory holds what must never be served.
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-binder-" });
  await Deno.writeTextFile(`${dir}/chat.db`, "segredo");
  await Deno.writeTextFile(`${dir}/binder.log`, "segredo");
  const program = startScript("binder.ts", BINDER_PERMISSIONS, ["--host", "127.0.0.1", "--port", "0"], {
    cwd: dir,
  });
  try {
    const { porta: port } = await program.ready();
    const base = `http://127.0.0.1:${port}`;
    for (const [path, text] of CLIENT_MODULES) {
      const response = await fetch(`${base}/${path}`);
      assert.deepEqual(response.status, 200, path);
      assert.deepEqual(response.headers.get("content-type"), TYPESCRIPT);
      assert.deepEqual(await response.text(), text);
    }
    const head = await fetch(`${base}/cliente.ts`, { method: "HEAD" });
    assert.deepEqual([head.status, head.headers.get("content-type")], [200, TYPESCRIPT]);

    // Raw requests, so no client tidies the path first.
    const get = async (target: string) => {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await connection.write(
          new TextEncoder().encode(`GET ${target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`),
        );
        let answer = "";
        const buffer = new Uint8Array(64 * 1024);
        for (let n; (n = await connection.read(buffer)) !== null;) {
          answer += new TextDecoder().decode(buffer.subarray(0, n));
        }
        return answer;
      } finally {
        connection.close();
      }
    };
    assert.match(await get("/cliente.ts"), /^HTTP\/1\.1 200 /);
    // `/` is the browser's way in: with no ChatService registered, a page that says so (tests/e2e/web_test.ts).
    assert.match(await get("/"), /^HTTP\/1\.1 503 /);
    for (
      const target of [
        "/chat.db",
        "/binder.log",
        "/binder.ts",
        "/server.ts",
        "/deno.json",
        "/lib/program/client_modules.ts",
        "/lib/",
        "/tests/helpers/programs.ts",
        "/../cliente.ts",
        "/lib/../cliente.ts",
        "/lib/../chat.db",
        "/./cliente.ts",
        "/%2e%2e/chat.db",
        "/lib/%2e%2e/cliente.ts",
        "/%63liente.ts",
        "/deps%2fcodec.ts",
        "//cliente.ts",
        `/${dir}/chat.db`,
        "/etc/passwd",
        "/cliente.ts?x=1",
        "/cliente.ts/",
        "/CLIENTE.TS",
      ]
    ) {
      const answer = await get(target);
      assert.match(answer, /^HTTP\/1\.1 404 /, `GET ${target}`);
      assert.doesNotMatch(answer, /segredo|import /, `GET ${target}`);
    }
    // Other verbs: not a file server.
    const put = await fetch(`${base}/cliente.ts`, { method: "PUT", body: "x" });
    assert.deepEqual(put.status, 405);
    await put.body?.cancel();
    // And XML-RPC keeps working on the same port.
    const client = new XmlRpcClient(`${base}/`, { timeoutMs: 5000 });
    assert.deepEqual(await client.call("listar_procedimentos"), [true, []]);
  } finally {
    await program.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a client loaded from the binder's address needs no --binder and no --allow-import", async () => {
  await using binder = await startBinder();
  await using _server = await startServer(binder);
  // Far from the repository (no deno.json, no import map, no lock), with a cache of its own.
  const elsewhere = await Deno.makeTempDir({ prefix: "rpc-chat-url-" });
  try {
    // The line a classmate types, as the README gives it.
    await using remote = new Program(Deno.execPath(), [
      "run",
      "--no-prompt",
      ...CLIENT_PERMISSIONS,
      `http://${binder.address}/cliente.ts`,
      "--lang",
      "pt",
      "--name",
      "remota",
      "--room",
      "geral",
    ], { stdin: "piped", cwd: elsewhere, env: { DENO_DIR: `${elsewhere}/cache` } });
    await remote.waitForLine(
      new RegExp(`^\\* Procurando o ChatService no binder ${binder.address}\\.\\.\\.$`),
      30_000,
    );
    await remote.waitForLine(/^\* Você está na sala geral\./, 30_000);
    await using local = startClient(binder, ["--name", "local", "--room", "geral"]);
    await remote.waitForLine(/\] SERVER: local entrou na sala\.$/);
    await local.write("oi, remota\n");
    await remote.waitForLine(/\] local: oi, remota$/);
    await remote.write("oi, local\n");
    await local.waitForLine(/\] remota: oi, local$/);
    await remote.write("/fim\n");
    assert.deepEqual((await remote.status).code, 0);
    // Nothing but the served modules was fetched.
    const fetched = remote.stderrLines.join("\n").match(/http:\/\/\S+/g) ?? [];
    assert.deepEqual(
      [...new Set(fetched)].sort(),
      [...CLIENT_MODULES.keys()].map((path) => `http://${binder.address}/${path}`).sort(),
    );
  } finally {
    await Deno.remove(elsewhere, { recursive: true });
  }
});
