import assert from "node:assert/strict";
import {
  type ChatMessage,
  DatabaseSync,
  endpointUrl,
  Fault,
  KEEPS_SESSION_HEADER,
  SEND_KEY_HEADER,
  XmlRpcClient,
} from "../../lib/mod.ts";
import {
  assertUsageError,
  BINDER_PERMISSIONS,
  freePort,
  readAll,
  runPython,
  runScript,
  said,
  SERVER_PERMISSIONS,
  startBinder,
  startClient,
  startScript,
  startServer,
  testUnless,
  texts,
  waitUntil,
} from "../helpers/programs.ts";

type Ok<T> = [true, T];
type Refusal = [false, string];
type Batch = Ok<{ mensagens: ChatMessage[]; cursor: number }>;
type Joined = Ok<{ usuarios: string[]; mensagens: ChatMessage[]; cursor: number }>;

/** A user of our protocol: a client with its own session cookie. */
async function user(server: { client(): XmlRpcClient }, name: string): Promise<XmlRpcClient> {
  const client = server.client();
  assert.deepEqual((await client.call<[boolean]>("registrar_usuario", [name]))[0], true, `register ${name}`);
  return client;
}

/** Ana creates `geral` and joins, then bia joins: the two clients and bia's cursor after joining. */
async function anaAndBiaInGeral(
  server: { client(): XmlRpcClient },
): Promise<{ ana: XmlRpcClient; bia: XmlRpcClient; cursor: number }> {
  const ana = await user(server, "ana");
  const bia = await user(server, "bia");
  await ana.call("criar_sala", ["geral"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  const [, { cursor }] = await bia.call<Joined>("entrar_na_sala", ["bia", "geral"]);
  return { ana, bia, cursor };
}

async function readLog(dir: string): Promise<string> {
  return await Deno.readTextFile(`${dir}/chat_server.log`);
}

/** The log once every pattern is in it: lines reach the file in batches, at least once a second. */
async function logWith(dir: string, ...patterns: RegExp[]): Promise<string> {
  let log = "";
  await waitUntil(async () => {
    log = await readLog(dir);
    return patterns.every((pattern) => pattern.test(log));
  }, `chat_server.log with ${patterns.join(", ")}`);
  return log;
}

Deno.test("server --help prints usage and exits 0; bad flags exit 2 with one line", async () => {
  const help = await runScript("server.ts", SERVER_PERMISSIONS, ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--room-ttl S/);
  assert.match(help.stdout, /--compat/);
  // --lang en: the help and the command-line errors in English, for the binder too.
  for (
    const [script, permissions] of [["server.ts", SERVER_PERMISSIONS], [
      "binder.ts",
      BINDER_PERMISSIONS,
    ]] as const
  ) {
    const english = await runScript(script, permissions, ["--lang", "en", "--help"]);
    assert.equal(english.code, 0);
    assert.match(english.stdout, /^Usage: /m);
    assert.doesNotMatch(english.stdout, /Uso:|padrão|mostra esta ajuda/);
    await assertUsageError(script, permissions, ["--lang", "en", "--nothing"], /unknown option '--nothing'/);
    await assertUsageError(script, permissions, ["--lang", "fr"], /--lang deve ser pt ou en, não 'fr'/);
  }
  for (
    const [args, message] of [
      [["--sync", "talvez"], /--sync deve ser normal ou full/],
      [["--binder", "a:b:c"], /--binder: endereço inválido/],
      [["--room-ttl", "0"], /--room-ttl deve ser um número/],
      [["--port", "-5"], /o valor de --port começa com '-'/],
      [["--nada"], /opção desconhecida '--nada'/],
    ] as const
  ) {
    await assertUsageError("server.ts", SERVER_PERMISSIONS, args, message);
  }
});

Deno.test("the original call sequence works from Python's xmlrpc.client against --compat", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder, ["--compat", "--room-ttl", "0.5"]);
  await waitUntil(
    async () => (await binder.client.call<[boolean]>("buscar_procedimento", ["ChatService"]))[0],
    "the server registered",
  );
  const output = await runPython(
    `
import sys, datetime, time, xmlrpc.client
binder = xmlrpc.client.ServerProxy("http://" + sys.argv[1], allow_none=True)
ok, info = binder.buscar_procedimento("ChatService")
assert ok, info
def proxy():
    return xmlrpc.client.ServerProxy("http://%s:%d" % (info["endereco"], info["porta"]), allow_none=True)
ana, bia, caio = proxy(), proxy(), proxy()
for p, name in ((ana, "ana"), (bia, "bia"), (caio, "caio")):
    print("registro", name, p.registrar_usuario(name)[0])
print("repetido", ana.registrar_usuario("ana")[0])
print("sala", ana.criar_sala("geral")[0], ana.criar_sala("geral")[0], ana.criar_sala("outra")[0])
for p, name in ((ana, "ana"), (bia, "bia"), (caio, "caio")):
    ok, state = p.entrar_na_sala(name, "geral")
    print("entrou", name, ok, sorted(state["usuarios"]))
print("publica", ana.enviar_mensagem("ana", "geral", "oi, pessoal", None)[0])
print("privada", ana.enviar_mensagem("ana", "geral", "segredo", "bia")[0])
def show(p, name):
    ok, msgs = p.receber_mensagens(name, "geral")
    for m in msgs:
        datetime.datetime.strptime(str(m["timestamp"]), "%Y%m%dT%H:%M:%S")
    return [m["origem"] + ("" if m["destino"] == "todos" else " -> " + m["destino"]) + ": " + m["conteudo"] for m in msgs]
for p, name in ((ana, "ana"), (bia, "bia"), (caio, "caio")):
    print(name, "ve", show(p, name))
ok, state = caio.entrar_na_sala("caio", "outra")
print("trocou", ok, state["usuarios"], binder and ana.listar_usuarios("geral"))
print("saiu", bia.sair_da_sala("bia"), bia.sair_da_sala("bia")[0])
print("salas", ana.listar_salas())
caio.sair_da_sala("caio")
deadline = time.time() + 10
while "outra" in ana.listar_salas()[1] and time.time() < deadline:
    time.sleep(0.05)
print("limpeza", ana.listar_salas())
`,
    [binder.address],
  );
  const lines = output.trim().split("\n");
  assert.deepEqual(lines.slice(0, 4), [
    "registro ana True",
    "registro bia True",
    "registro caio True",
    "repetido False",
  ]);
  assert.equal(lines[4], "sala True False True");
  assert.equal(lines[5], "entrou ana True ['ana']");
  assert.equal(lines[7], "entrou caio True ['ana', 'bia', 'caio']");
  assert.equal(lines[8], "publica True");
  assert.equal(lines[9], "privada True");
  const notices =
    "'SERVER: ana entrou na sala.', 'SERVER: bia entrou na sala.', 'SERVER: caio entrou na sala.'";
  assert.equal(lines[10], `ana ve [${notices}, 'ana: oi, pessoal', 'ana -> bia: segredo']`);
  assert.equal(lines[11], `bia ve [${notices}, 'ana: oi, pessoal', 'ana -> bia: segredo']`);
  assert.equal(lines[12], `caio ve [${notices}, 'ana: oi, pessoal']`);
  assert.equal(lines[13], "trocou True ['caio'] [True, ['ana', 'bia']]");
  assert.match(lines[14]!, /^saiu \[True, ".*geral.*"\] False$/);
  assert.equal(lines[15], "salas [True, ['geral', 'outra']]");
  assert.equal(lines[16], "limpeza [True, ['geral']]");

  const log = await logWith(
    server.dir,
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[INFO\] Usuário registrado: ana \(de 127\.0\.0\.1\)$/m,
    /\[INFO\] Sala criada: geral$/m,
    /\[INFO\] Mensagem de ana na sala geral$/m,
    /\[INFO\] Mensagem privada de ana para bia na sala geral$/m,
    /\[INFO\] Sala removida por inatividade: outra$/m,
    /\[INFO\] Registrado no binder 127\.0\.0\.1:\d+ como ChatService em 127\.0\.0\.1:\d+$/m,
  );
  assert.doesNotMatch(log, /segredo|oi, pessoal/, "the log never carries message texts");
});

Deno.test("refusals: Python's xmlrpc.client unpacks [ok, msg]; a caller sending X-Chat-Motivos: 1 also gets the reason", async () => {
  await using server = await startServer(undefined, ["--compat"]);
  const output = await runPython(
    `
import sys, xmlrpc.client
url = "http://127.0.0.1:" + sys.argv[1]
plain = xmlrpc.client.ServerProxy(url, allow_none=True)
asking = xmlrpc.client.ServerProxy(url, allow_none=True, headers=[("X-Chat-Motivos", "1")])
print(plain.registrar_usuario("ana")[0])
for result in (plain.registrar_usuario("ana"), plain.entrar_na_sala("ana", "nenhuma"),
               plain.sair_da_sala("ana"), plain.enviar_mensagem("ninguem", "geral", "oi", None)):
    ok, msg = result  # the original clients unpack exactly two
    print(ok, msg)
for result in (asking.registrar_usuario("ana"), asking.entrar_na_sala("ana", "nenhuma"),
               asking.registrar_usuario("todos")):
    ok, msg, reason = result
    print(ok, reason)
`,
    [String(server.port)],
  );
  assert.deepEqual(output.trim().split("\n"), [
    "True",
    "False O nome 'ana' já está em uso. Escolha outro.",
    "False A sala 'nenhuma' não existe. Crie-a antes de entrar.",
    "False Você não está em nenhuma sala.",
    "False Usuário 'ninguem' não está registrado.",
    "False nome_em_uso",
    "False sala_inexistente",
    "False nome_reservado",
  ]);
  // Our client asks the same way.
  const ours = new XmlRpcClient(`http://127.0.0.1:${server.port}/`, { headers: { "X-Chat-Motivos": "1" } });
  assert.deepEqual(await ours.call("sair_da_sala", ["ana"]), [
    false,
    "Você não está em nenhuma sala.",
    "fora_da_sala",
  ]);
  assert.deepEqual(await ours.call("sair_da_sala", ["bia"]), [
    false,
    "Usuário 'bia' não está registrado.",
    "nao_registrado",
  ]);
});

Deno.test("without --compat a caller without proof cannot act as another user", async () => {
  await using server = await startServer(undefined);
  const ana = await user(server, "ana");
  const bia = await user(server, "bia");
  const stranger = server.client();
  assert.deepEqual((await ana.call<[boolean]>("criar_sala", ["geral"]))[0], true);
  assert.deepEqual((await ana.call<[boolean]>("entrar_na_sala", ["ana", "geral"]))[0], true);

  for (
    const [method, params] of [
      ["entrar_na_sala", ["ana", "geral"]],
      ["enviar_mensagem", ["ana", "geral", "sou a ana, juro", null]],
      ["receber_mensagens", ["ana", "geral"]],
      ["aguardar_mensagens", ["ana", "geral", 0, 0]],
      ["sair_da_sala", ["ana"]],
      ["sair_do_servico", ["ana"]],
    ] as const
  ) {
    for (const [who, client] of [["no cookie", stranger], ["bia's cookie", bia]] as const) {
      const [ok, message] = await client.call<Refusal>(method, [...params]);
      assert.equal(ok, false, `${method} with ${who}`);
      assert.match(message, /Sessão inválida/);
    }
  }
  const [taken, why] = await stranger.call<Refusal>("registrar_usuario", ["ana"]);
  assert.equal(taken, false);
  assert.match(why, /já está em uso/);
  // Ana is untouched: still in the room, and nothing was posted in her name.
  const [, members] = await stranger.call<Ok<string[]>>("listar_usuarios", ["geral"]);
  assert.deepEqual(members, ["ana"]);
  const [, seen] = await ana.call<Ok<ChatMessage[]>>("receber_mensagens", ["ana", "geral"]);
  assert.deepEqual(texts(seen), ["SERVER: ana entrou na sala."]);
});

Deno.test("with --compat a wrong cookie is refused, and a user who proved a session keeps it", async () => {
  await using server = await startServer(undefined, ["--compat"]);
  const ana = await user(server, "ana");
  await ana.call("criar_sala", ["geral"]);
  // Ana's client sends its cookie: from then on nobody acts as ana without it.
  assert.equal((await ana.call<[boolean]>("entrar_na_sala", ["ana", "geral"]))[0], true);
  const [ok, message] = await server.client().call<Refusal>("sair_da_sala", ["ana"]);
  assert.equal(ok, false);
  assert.match(message, /Sessão inválida/);
  const bia = await user(server, "bia");
  const [wrong] = await bia.call<Refusal>("sair_da_sala", ["ana"]);
  assert.equal(wrong, false);
});

Deno.test("a message reaches a receiver waiting in aguardar_mensagens in well under 100 ms", async () => {
  await using server = await startServer(undefined);
  const { ana, bia, cursor } = await anaAndBiaInGeral(server);
  const latencies: number[] = [];
  let at = cursor;
  for (let i = 0; i < 10; i++) {
    const waiting = bia.call<Batch>("aguardar_mensagens", ["bia", "geral", at, 10_000], {
      timeoutMs: 15_000,
    });
    // Let the wait reach the server before sending.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const sent = performance.now();
    await ana.call("enviar_mensagem", ["ana", "geral", `msg ${i}`, null]);
    const [, batch] = await waiting;
    latencies.push(performance.now() - sent);
    assert.deepEqual(texts(batch.mensagens), [`ana: msg ${i}`]);
    at = batch.cursor;
  }
  latencies.sort((a, b) => a - b);
  assert.ok(latencies[latencies.length - 1]! < 100, `latencies ${latencies.map((l) => l.toFixed(1))}`);
});

Deno.test("aguardar_mensagens never resends, shows private messages only to their two ends, and times out empty", async () => {
  await using server = await startServer(undefined);
  const [ana, bia, caio] = [await user(server, "ana"), await user(server, "bia"), await user(server, "caio")];
  await ana.call("criar_sala", ["geral"]);
  const cursors = new Map<string, number>();
  for (const [name, client] of [["ana", ana], ["bia", bia], ["caio", caio]] as const) {
    const [, joined] = await client.call<Joined>("entrar_na_sala", [name, "geral"]);
    cursors.set(name, joined.cursor);
  }
  await ana.call("enviar_mensagem", ["ana", "geral", "para todos", null]);
  await ana.call("enviar_mensagem", ["ana", "geral", "só para a bia", "bia"]);
  await caio.call("enviar_mensagem", ["caio", "geral", "oi", ""]);
  const seen = new Map<string, string[]>();
  for (const [name, client] of [["ana", ana], ["bia", bia], ["caio", caio]] as const) {
    const [, batch] = await client.call<Batch>("aguardar_mensagens", [
      name,
      "geral",
      cursors.get(name)!,
      1000,
    ]);
    seen.set(name, texts(batch.mensagens));
    // Nothing new: the same cursor waits and comes back empty, never resending.
    const started = performance.now();
    const [, again] = await client.call<Batch>("aguardar_mensagens", [name, "geral", batch.cursor, 150]);
    assert.deepEqual(again.mensagens, []);
    assert.equal(again.cursor, batch.cursor);
    assert.ok(performance.now() - started >= 140);
  }
  const after = ["ana: para todos", "ana -> bia: só para a bia", "caio: oi"];
  assert.deepEqual(seen.get("ana"), [
    "SERVER: bia entrou na sala.",
    "SERVER: caio entrou na sala.",
    ...after,
  ]);
  assert.deepEqual(seen.get("bia"), ["SERVER: caio entrou na sala.", ...after]);
  assert.deepEqual(seen.get("caio"), ["ana: para todos", "caio: oi"]);
  const [ok, why] = await caio.call<Refusal>("enviar_mensagem", ["caio", "geral", "x", "ninguem"]);
  assert.equal(ok, false);
  assert.match(why, /não está na sala/);
});

Deno.test("joining another room leaves the current one, with notices in both", async () => {
  await using server = await startServer(undefined);
  const ana = await user(server, "ana");
  const bia = await user(server, "bia");
  await ana.call("criar_sala", ["a"]);
  await ana.call("criar_sala", ["b"]);
  await ana.call("entrar_na_sala", ["ana", "a"]);
  const [, inA] = await bia.call<Joined>("entrar_na_sala", ["bia", "a"]);
  const [, inB] = await bia.call<Joined>("entrar_na_sala", ["bia", "b"]);
  assert.deepEqual(inB.usuarios, ["bia"]);
  assert.deepEqual(texts(inB.mensagens), ["SERVER: bia entrou na sala."]);
  const [, batch] = await ana.call<Batch>("aguardar_mensagens", ["ana", "a", inA.cursor, 1000]);
  assert.deepEqual(texts(batch.mensagens), ["SERVER: bia saiu da sala."]);
  assert.deepEqual(await ana.call("listar_usuarios", ["a"]), [true, ["ana"]]);
  const [ok, why] = await bia.call<Refusal>("enviar_mensagem", ["bia", "a", "ainda aqui?", null]);
  assert.equal(ok, false);
  assert.match(why, /não está na sala 'a'/);
});

Deno.test("a silent session ends with a notice and frees the name; a waiting one stays", async () => {
  await using server = await startServer(undefined, ["--session-ttl", "0.4"]);
  const ana = await user(server, "ana");
  const bia = await user(server, "bia");
  await ana.call("criar_sala", ["geral"]);
  const [, { cursor }] = await ana.call<Joined>("entrar_na_sala", ["ana", "geral"]);
  await bia.call("entrar_na_sala", ["bia", "geral"]);
  // Ana keeps waiting (a sign of life); bia goes silent.
  let at = cursor;
  const received: string[] = [];
  while (!received.includes("SERVER: bia saiu da sala.")) {
    const [, batch] = await ana.call<Batch>("aguardar_mensagens", ["ana", "geral", at, 1000]);
    received.push(...texts(batch.mensagens));
    at = batch.cursor;
  }
  assert.deepEqual(await ana.call("listar_usuarios", ["geral"]), [true, ["ana"]]);
  assert.equal((await server.client().call<[boolean]>("registrar_usuario", ["bia"]))[0], true);
  await logWith(server.dir, /Usuário saiu \(sessão expirada\): bia/);
});

Deno.test("sair_do_servico frees the name at once", async () => {
  await using server = await startServer(undefined);
  const ana = await user(server, "ana");
  await ana.call("criar_sala", ["geral"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  assert.equal((await ana.call<[boolean]>("sair_do_servico", ["ana"]))[0], true);
  assert.deepEqual(await ana.call("listar_usuarios", ["geral"]), [true, []]);
  assert.equal((await server.client().call<[boolean]>("registrar_usuario", ["ana"]))[0], true);
});

Deno.test("only the creator deletes a room; its members get a notice and are out", async () => {
  await using server = await startServer(undefined);
  const { ana, bia, cursor } = await anaAndBiaInGeral(server);
  const [refused, why] = await bia.call<Refusal>("excluir_sala", ["bia", "geral"]);
  assert.equal(refused, false);
  assert.match(why, /Só quem criou/);
  const waiting = bia.call<Batch>("aguardar_mensagens", ["bia", "geral", cursor, 10_000], {
    timeoutMs: 15_000,
  });
  assert.equal((await ana.call<[boolean]>("excluir_sala", ["ana", "geral"]))[0], true);
  const [, batch] = await waiting;
  assert.deepEqual(texts(batch.mensagens), ["SERVER: Sala geral excluída por ana."]);
  assert.deepEqual(await bia.call("listar_salas"), [true, []]);
  assert.equal(
    (await bia.call<[boolean]>("aguardar_mensagens", ["bia", "geral", batch.cursor, 0]))[0],
    false,
  );
  await logWith(server.dir, /Sala excluída: geral \(por ana\)/);
});

Deno.test("names and messages are checked, and a flood is slowed", async () => {
  await using server = await startServer(undefined, ["--max-rate", "5"]);
  const client = server.client();
  for (const name of ["", "   ", "x".repeat(33), "a\u0085b", "a\u200bb", "SERVER", "todos"]) {
    const [ok, why] = await client.call<Refusal>("registrar_usuario", [name]);
    assert.equal(ok, false, JSON.stringify(name));
    assert.ok(why.length > 10, why);
  }
  const ana = await user(server, "  ana  ");
  assert.equal((await ana.call<[boolean]>("criar_sala", ["x".repeat(40)]))[0], false);
  await ana.call("criar_sala", ["geral"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  for (
    const [text, pattern] of [["", /vazia/], ["x".repeat(2001), /2000/], ["a\u009bb", /controle/]] as const
  ) {
    const [ok, why] = await ana.call<Refusal>("enviar_mensagem", ["ana", "geral", text, null]);
    assert.equal(ok, false);
    assert.match(why, pattern);
  }
  assert.equal(
    (await ana.call<[boolean]>("enviar_mensagem", ["ana", "geral", "x".repeat(2000), null]))[0],
    true,
  );
  const results: boolean[] = [];
  for (let i = 0; i < 30; i++) {
    results.push((await ana.call<[boolean]>("enviar_mensagem", ["ana", "geral", `flood ${i}`, null]))[0]);
  }
  assert.ok(results.slice(0, 5).every((ok) => ok), "a burst within the rate passes");
  assert.ok(results.includes(false), "a flood is refused");
  const [, slow] = await ana.call<Refusal>("enviar_mensagem", ["ana", "geral", "mais", null]);
  assert.match(slow, /Devagar: no máximo 5 mensagens por segundo/);
});

Deno.test("server registers its real port, re-registers after a binder restart, and unregisters on SIGTERM", async () => {
  const binder = await startBinder();
  await using server = await startServer(binder);
  const lookup = async (client: XmlRpcClient) => {
    try {
      return await client.call<[boolean, { porta: number }]>("buscar_procedimento", ["ChatService"]);
    } catch {
      return [false, { porta: 0 }] as const;
    }
  };
  await waitUntil(async () => (await lookup(binder.client))[0], "registered");
  assert.equal((await lookup(binder.client))[1].porta, server.port);
  // The binder restarts on the same port: the server registers again by itself.
  await binder.program.stop("SIGKILL");
  await using again = await startBinder(["--port", String(binder.port)]).catch(async () => {
    // The port may linger briefly; wait for it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return await startBinder(["--port", String(binder.port)]);
  });
  await waitUntil(async () => (await lookup(again.client))[0], "registered again");
  const status = await server.program.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.equal((await lookup(again.client))[0], false, "unregistered on the way out");
  const log = await readLog(server.dir);
  assert.match(log, /Removido do binder/);
  assert.match(log, /Servidor encerrado\./);
});

Deno.test("a server started while the binder is down keeps serving and registers when it appears", async () => {
  const binderPort = freePort();
  await using server = await startServer({ address: `127.0.0.1:${binderPort}` });
  await server.program.waitForLine(/Binder indisponível em 127\.0\.0\.1:\d+/);
  assert.equal((await server.client().call<[boolean]>("registrar_usuario", ["ana"]))[0], true);
  await using binder = await startBinder(["--port", String(binderPort)]);
  await waitUntil(
    async () => (await binder.client.call<[boolean]>("buscar_procedimento", ["ChatService"]))[0],
    "registered once the binder came up",
  );
});

Deno.test("after kill -9 and a restart every acknowledged message and room is there, ids continue", async () => {
  await using binder = await startBinder();
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-kill-" });
  try {
    const first = await startServer(binder, ["--max-rate", "100000"], { dir });
    const ana = await user(first, "ana");
    await ana.call("criar_sala", ["geral"]);
    await ana.call("criar_sala", ["vazia"]);
    await ana.call("entrar_na_sala", ["ana", "geral"]);
    let acknowledged = 0;
    for (let i = 1; i <= 500; i++) {
      const [ok] = await ana.call<[boolean]>("enviar_mensagem", ["ana", "geral", `mensagem ${i}`, null]);
      if (ok) acknowledged++;
    }
    assert.equal(acknowledged, 500);
    const [, { cursor: before }] = await ana.call<Joined>("entrar_na_sala", ["ana", "geral"]);
    await first.program.stop("SIGKILL");

    await using second = await startServer(binder, [], { dir });
    // Found through the same binder.
    await waitUntil(async () => {
      const [ok, found] = await binder.client.call<[boolean, { porta: number }]>("buscar_procedimento", [
        "ChatService",
      ]);
      return ok && found.porta === second.port;
    }, "the restarted server registered");
    const again = await user(second, "ana");
    assert.deepEqual(await again.call("listar_salas"), [true, ["geral", "vazia"]]);
    // A cursor from before the crash: what came after is delivered, nothing twice.
    const [, joined] = await again.call<Joined>("entrar_na_sala", ["ana", "geral"]);
    assert.ok(joined.cursor > before);
    const [, batch] = await again.call<Batch>("aguardar_mensagens", ["ana", "geral", before, 0]);
    assert.deepEqual(texts(batch.mensagens), ["SERVER: ana entrou na sala."]);
    // All 500 are in the history, in order, read in batches.
    const sent = (await readAll(again, "ana", "geral")).filter((m) => m.origem === "ana").map((m) =>
      m.conteudo
    );
    assert.deepEqual(sent, Array.from({ length: 500 }, (_, i) => `mensagem ${i + 1}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a send key: the same message sent again (its answer lost) is stored once, after a kill -9 too", async () => {
  await using binder = await startBinder();
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-key-" });
  try {
    const first = await startServer(binder, [], { dir });
    const ana = await user(first, "ana");
    await ana.call("criar_sala", ["geral"]);
    await ana.call("entrar_na_sala", ["ana", "geral"]);
    const keyed = (key: string) => ({ headers: { [SEND_KEY_HEADER]: key } });
    const send = (client: XmlRpcClient, text: string, key: string) =>
      client.call<[boolean, string]>("enviar_mensagem", ["ana", "geral", text, null], keyed(key));
    // Twice at once, and once more after: one message. Another key is another message.
    assert.deepEqual(
      await Promise.all([send(ana, "uma vez", "k-1"), send(ana, "uma vez", "k-1")]),
      [[true, "Mensagem enviada."], [true, "Mensagem enviada."]],
    );
    assert.deepEqual(await send(ana, "uma vez", "k-1"), [true, "Mensagem enviada."]);
    await send(ana, "outra", "k-2");
    await ana.call("enviar_privada", ["ana", "ana", "psiu"], keyed("k-3"));
    await ana.call("enviar_privada", ["ana", "ana", "psiu"], keyed("k-3"));
    const [, before] = await ana.call<Batch>("aguardar_mensagens", ["ana", "geral", 0, 0]);
    assert.deepEqual(
      before.mensagens.filter((m) => m.origem === "ana").map((m) => m.conteudo),
      ["uma vez", "outra", "psiu"],
    );
    await first.program.stop("SIGKILL");

    // The answer to the last send was lost in the crash, say: the client sends it again, same key.
    await using second = await startServer(binder, [], { dir });
    const again = await user(second, "ana");
    await again.call("entrar_na_sala", ["ana", "geral"]);
    assert.deepEqual(await send(again, "outra", "k-2"), [true, "Mensagem enviada."]);
    const [, page] = await again.call<Batch>("aguardar_mensagens", ["ana", "geral", 0, 0]);
    assert.deepEqual(
      page.mensagens.filter((m) => m.origem === "ana").map((m) => m.conteudo),
      // The private one was the identity's before the restart (see Identities): not this one's.
      ["uma vez", "outra"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kill -9 during a burst from 20 concurrent senders: every acknowledged message is in the database", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-burst-" });
  try {
    const server = await startServer(undefined, ["--max-rate", "100000"], { dir });
    const senders = await Promise.all(Array.from({ length: 20 }, (_, i) => user(server, `u${i}`)));
    await senders[0]!.call("criar_sala", ["geral"]);
    for (const [i, sender] of senders.entries()) await sender.call("entrar_na_sala", [`u${i}`, "geral"]);
    // Each sender sends as fast as its answers come; the group commits put many of them in one transaction.
    const acknowledged: string[] = [];
    let killed = false;
    const sending = senders.map(async (sender, i) => {
      for (let n = 0; !killed; n++) {
        const text = `u${i} mensagem ${n}`;
        try {
          const [ok] = await sender.call<[boolean]>("enviar_mensagem", [`u${i}`, "geral", text, null]);
          if (ok) acknowledged.push(text);
        } catch {
          return; // The server is gone: this one was not acknowledged.
        }
      }
    });
    await waitUntil(() => acknowledged.length >= 2000, "2,000 acknowledged messages");
    server.program.kill("SIGKILL");
    killed = true;
    await server.program.status;
    await Promise.all(sending);
    // The database file as the dead server left it, read by SQLite itself.
    const db = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
    const stored = new Set(
      (db.prepare("SELECT body FROM messages WHERE sender != 'SERVER'").all() as { body: string }[])
        .map((row) => row.body),
    );
    db.close();
    const lost = acknowledged.filter((text) => !stored.has(text));
    assert.deepEqual(lost, [], `${lost.length} of ${acknowledged.length} acknowledged messages lost`);
    assert.ok(stored.size >= acknowledged.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one server per database: a second on the same file is refused; a file deleted under it stops it", async () => {
  await using first = await startServer(undefined);
  // The second, on the same chat.db (its working directory), stops at once with one line.
  const second = startScript("server.ts", SERVER_PERMISSIONS, ["--port", "0", "--binder", "127.0.0.1:1"], {
    cwd: first.dir,
  });
  const { code } = await second.status;
  assert.equal(code, 1);
  assert.deepEqual(second.stderrLines, [
    "server.ts: o banco chat.db está em uso por outro servidor (um banco, um servidor); use outro --db",
  ]);
  // The first serves on; then its database file is deleted: it says so and stops, exit code 1.
  const ana = await user(first, "ana");
  assert.equal((await ana.call<[boolean]>("criar_sala", ["geral"]))[0], true);
  await Deno.remove(`${first.dir}/chat.db`);
  const status = await first.program.status;
  assert.equal(status.code, 1);
  assert.match(
    first.program.stderrLines.join("\n"),
    /o banco chat\.db foi apagado ou trocado enquanto o servidor rodava/,
  );
});

/** Mounts a tiny filesystem of its own (tmpfs) on `dir`: as root only. */
async function tinyFilesystem(dir: string, size: string): Promise<void> {
  const { success, stderr } = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
  }).output();
  assert(success, `mount failed: ${new TextDecoder().decode(stderr).trim()}`);
}

testUnless(
  Deno.uid() === 0 ? undefined : "not root: cannot mount a tmpfs",
  "a full disk: sends are refused with a clear fault, nothing half-stored, and the server lives on",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "rpc-chat-full-" });
    try {
      await tinyFilesystem(dir, "512k");
      // Room to give back later.
      await Deno.writeFile(`${dir}/filler`, new Uint8Array(160 * 1024));
      const server = await startServer(undefined, ["--max-rate", "100000", "--session-ttl", "0.5"], { dir });
      try {
        const ana = await user(server, "ana");
        const bia = await user(server, "bia");
        await ana.call("criar_sala", ["geral"]);
        await ana.call("entrar_na_sala", ["ana", "geral"]);
        await bia.call("entrar_na_sala", ["bia", "geral"]);
        // Fill the disk with messages until one is refused.
        let refused: unknown;
        let sent = 0;
        while (!refused && sent < 5000) {
          try {
            await ana.call("enviar_mensagem", ["ana", "geral", `${sent} ${"x".repeat(1900)}`, null]);
            sent++;
          } catch (error) {
            refused = error;
          }
        }
        assert.ok(refused instanceof Fault, `a fault, not ${refused}`);
        assert.equal(refused.code, -32001);
        assert.match(refused.message, /não conseguiu gravar no banco .*nada foi gravado/);
        // Timers keep running on a full disk: bia's silent session ends (its notice cannot be stored), no crash.
        await waitUntil(async () => {
          await ana.call("manter_sessao", ["ana"]); // Ana stays.
          const [, members] = await ana.call<[boolean, string[]]>("listar_usuarios", ["geral"]);
          return !members.includes("bia");
        }, "bia's silent session to end");
        // Space again: sends are stored again, and what was refused never shows.
        await Deno.remove(`${dir}/filler`);
        assert.deepEqual(
          await ana.call("enviar_mensagem", ["ana", "geral", "de volta", null]),
          [true, "Mensagem enviada."],
        );
        const seen = (await readAll(ana, "ana", "geral")).filter((m) => m.origem === "ana")
          .map((m) => m.conteudo.split(" ")[0]!);
        assert.deepEqual(seen, [...Array.from({ length: sent }, (_, i) => String(i)), "de"]);
      } finally {
        await server.program.stop("SIGKILL");
      }
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("a database from a newer schema or a corrupt file stops the server with one clear line", async () => {
  for (
    const [setup, pattern] of [
      [(dir: string) => {
        // A newer schema: user_version 99, written by sqlite itself.
        const db = new DatabaseSync(`${dir}/chat.db`);
        db.exec("PRAGMA user_version = 99");
        db.close();
        return Promise.resolve();
      }, /esquema 99, mais novo/],
      [
        (dir: string) => Deno.writeTextFile(`${dir}/chat.db`, "isto não é um banco ".repeat(100)),
        /não é um banco SQLite válido/,
      ],
    ] as const
  ) {
    const dir = await Deno.makeTempDir({ prefix: "rpc-chat-db-" });
    try {
      await setup(dir);
      const program = startScript("server.ts", SERVER_PERMISSIONS, ["--port", "0", "--host", "127.0.0.1"], {
        cwd: dir,
      });
      const status = await program.status;
      assert.equal(status.code, 1);
      assert.equal(program.stderrLines.filter((l) => l.trim()).length, 1, program.stderrLines.join("\n"));
      assert.match(program.stderrLines.join("\n"), pattern);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("--db :memory: runs a throwaway server, and a server without write permission for its log says so", async () => {
  await using server = await startServer(undefined, ["--db", ":memory:"]);
  assert.equal((await server.client().call<[boolean]>("registrar_usuario", ["ana"]))[0], true);
  assert.equal(await Deno.stat(`${server.dir}/chat.db`).then(() => true, () => false), false);

  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-perm-" });
  try {
    const program = startScript("server.ts", ["--allow-net"], ["--port", "0"], { cwd: dir });
    assert.equal((await program.status).code, 2);
    assert.deepEqual(program.stderrLines, [
      "server.ts: falta a permissão --allow-write=chat_server.log,chat.db: rode de novo com ela (deno run " +
      "--allow-net --allow-sys=networkInterfaces --allow-read=chat.db --allow-write=chat_server.log,chat.db " +
      "server.ts)",
    ]);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with --compat a user registered by our client is bound to its cookie from registration on", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder, ["--compat"]);
  await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
  await ana.waitForLine(/^\* Você está na sala geral\./);
  // Registered and nothing else yet: bia by a client that says it keeps the cookie, caio by one that does not.
  const url = endpointUrl("127.0.0.1", server.port);
  await new XmlRpcClient(url, { headers: { [KEEPS_SESSION_HEADER]: "1" } }).call("registrar_usuario", [
    "bia",
  ]);
  await new XmlRpcClient(url).call("registrar_usuario", ["caio"]);
  // Python's xmlrpc.client keeps no cookie: as the original clients, it acts as the users no cookie binds.
  const output = await runPython(
    `
import sys, xmlrpc.client
chat = xmlrpc.client.ServerProxy("http://127.0.0.1:" + sys.argv[1], allow_none=True)
for call in ("manter_sessao", "sair_da_sala", "sair_do_servico"):
    print(call, getattr(chat, call)("ana")[0])
print("entrar", chat.entrar_na_sala("ana", "geral")[0])
print("enviar", chat.enviar_mensagem("ana", "geral", "sou a ana?", None)[0])
print("bia", chat.manter_sessao("bia")[0], chat.sair_do_servico("bia")[0])
print("caio", chat.manter_sessao("caio")[0])
print("registro", chat.registrar_usuario("zeca")[0], chat.manter_sessao("zeca")[0])
`,
    [String(server.port)],
  );
  assert.equal(
    output.trim(),
    [
      "manter_sessao False",
      "sair_da_sala False",
      "sair_do_servico False",
      "entrar False",
      "enviar False",
      "bia False False",
      "caio True",
      "registro True True",
    ].join("\n"),
  );
  await ana.write("ainda sou eu\n");
  await ana.waitForLine(said("ana: ainda sou eu"));
});

Deno.test("one line of 10,000 characters from cliente.ts goes out in parts, nothing refused, nothing lost", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder);
  const bia = await user(server, "bia");
  await bia.call("criar_sala", ["geral"]);
  await bia.call("entrar_na_sala", ["bia", "geral"]);
  await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
  await ana.waitForLine(/^\* Você está na sala geral\./);
  const words = Array.from({ length: 1200 }, (_, i) => `w${i}`).join(" ").padEnd(10_000, ".");
  await ana.write(`${words}\n`);
  await waitUntil(
    async () => (await readAll(bia, "bia", "geral")).filter((m) => m.origem === "ana").length >= 5,
    "five parts stored",
  );
  const parts = (await readAll(bia, "bia", "geral")).filter((m) => m.origem === "ana").map((m) => m.conteudo);
  assert.equal(parts.join(""), words);
  assert(parts.every((part) => part.length <= 2000));
  assert(!ana.lines.some((line) => /longa demais/.test(line)), "no refusal shown");
});

Deno.test("the operator's log: each registration with the caller's address, each refusal with its reason", async () => {
  await using server = await startServer(undefined, ["--max-rate", "1"]);
  const ana = await user(server, "ana");
  await server.client().call("registrar_usuario", ["ana"]);
  await ana.call("criar_sala", ["geral"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  await ana.call("enviar_mensagem", ["ana", "geral", "x".repeat(2001), null]);
  const log = () => Deno.readTextFile(`${server.dir}/chat_server.log`);
  await waitUntil(async () => /Recusado \(mensagem_longa\)/.test(await log()), "the refusal on disk", 5000);
  const text = await log();
  assert.match(text, /\[INFO\] Usuário registrado: ana \(de 127\.0\.0\.1\)\n/);
  assert.match(
    text,
    /\[INFO\] Recusado \(nome_em_uso\) a 127\.0\.0\.1: O nome 'ana' já está em uso\. Escolha outro\.\n/,
  );
  assert.match(text, /\[INFO\] Recusado \(mensagem_longa\) a 127\.0\.0\.1: Mensagem longa demais/);
});
