// deno-lint-ignore-file no-control-regex -- these tests look for terminal escape sequences
import assert from "node:assert/strict";
import type { ChatMessage } from "../../lib/mod.ts";
import { clockOf, formatMessage, newMessages, parseInput, sanitize, splitRecipient } from "../../lib/mod.ts";
import {
  assertUsageError,
  backInRoom,
  CLIENT_PERMISSIONS,
  count,
  freePort,
  Program,
  runScript,
  said,
  scriptCommand,
  startBinder,
  startClient,
  startOriginalServer,
  startServer,
  waitUntil,
} from "../helpers/programs.ts";

async function quit(program: Program): Promise<number> {
  await program.write("/fim\n");
  return (await program.status).code;
}

// ---------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------

Deno.test("parseInput: commands in both languages, messages, // escapes a slash", () => {
  assert.deepEqual(parseInput("  "), { kind: "empty" });
  assert.deepEqual(parseInput("olá"), { kind: "text", text: "olá" });
  assert.deepEqual(parseInput("//criar"), { kind: "text", text: "/criar" });
  assert.deepEqual(parseInput("/entrar sala de estudos"), {
    kind: "command",
    command: "join",
    word: "/entrar",
    rest: "sala de estudos",
  });
  for (
    const [pt, en, command] of [
      ["/criar", "/create", "create"],
      ["/entrar", "/join", "join"],
      ["/sair", "/leave", "leave"],
      ["/salas", "/rooms", "rooms"],
      ["/usuarios", "/users", "users"],
      ["/msg", "/msg", "msg"],
      ["/excluir", "/delete", "delete"],
      ["/ajuda", "/help", "help"],
      ["/fim", "/quit", "quit"],
    ] as const
  ) {
    assert.deepEqual((parseInput(`${pt} x`) as { command: string }).command, command);
    assert.deepEqual((parseInput(`${en.toUpperCase()} x`) as { command: string }).command, command);
  }
  assert.deepEqual(parseInput("/voar"), { kind: "unknown", word: "/voar" });
  assert.deepEqual(splitRecipient("bia oi tudo bem"), { to: "bia", text: "oi tudo bem" });
  assert.deepEqual(splitRecipient('"ana maria" oi'), { to: "ana maria", text: "oi" });
  assert.deepEqual(splitRecipient("bia"), undefined);
});

Deno.test("formatMessage: [HH:MM:SS] origem: texto, private with an arrow, no colour unless asked", () => {
  const at = new Date(Date.UTC(2026, 10, 24, 15, 28, 12));
  const base: ChatMessage = {
    tipo: "broadcast",
    origem: "ana",
    destino: "todos",
    conteudo: "oi",
    timestamp: at,
  };
  assert.deepEqual(formatMessage(base), "[15:28:12] ana: oi");
  assert.deepEqual(
    formatMessage({ ...base, tipo: "unicast", destino: "bia", conteudo: "psiu" }),
    "[15:28:12] ana -> bia: psiu",
  );
  assert.deepEqual(clockOf("20261124T09:05:07"), "09:05:07");
  assert.match(formatMessage({ ...base, tipo: "unicast", destino: "bia" }, true), /\x1b\[35m/);
  assert.doesNotMatch(formatMessage(base), /\x1b/);
});

Deno.test("sanitize: invisible characters dropped, combining stacks cut to two marks, emoji kept whole", () => {
  assert.equal(sanitize("a\u200bn\u2060a\ufeff\u200c"), "ana");
  assert.equal(sanitize("bia\u3164"), "bia");
  assert.equal(sanitize("Z\u0301\u0302\u0303\u0304\u0305al\u0300go"), "Z\u0301\u0302al\u0300go");
  assert.equal(sanitize("João"), "João");
  assert.equal(sanitize("👨\u200d👩\u200d👧 oi"), "👨\u200d👩\u200d👧 oi");
});

Deno.test("sanitize: escape sequences dropped, control and reordering characters neutralized", () => {
  const hostile = "\x1b[2J\x1b]0;pwned\x07oi\x1b[5mpisca\u202eabc\x9b1m\n[00:00:00] SERVER: falso\r\x08";
  const safe = sanitize(hostile);
  assert.doesNotMatch(safe, /[\x00-\x1f\x7f-\x9f\u202e]/);
  assert.deepEqual(safe, "oipisca\ufffdabc [00:00:00] SERVER: falso \ufffd");
});

Deno.test("newMessages: polling windows overlap, each message counted once", () => {
  const m = (conteudo: string, second = 0): ChatMessage => ({
    tipo: "broadcast",
    origem: "ana",
    destino: "todos",
    conteudo,
    timestamp: new Date(2026, 0, 1, 12, 0, second),
  });
  const a = m("a"), b = m("b"), c = m("c"), d = m("d");
  assert.deepEqual(newMessages([], [a, b]), [a, b]);
  assert.deepEqual(newMessages([a, b], [a, b]), []);
  assert.deepEqual(newMessages([a, b], [a, b, c]), [c]);
  // The window slid: the oldest fell off.
  assert.deepEqual(newMessages([a, b, c], [b, c, d]), [d]);
  // The same text twice is two messages.
  assert.deepEqual(newMessages([a, b], [a, b, b]), [b]);
  // With ids, ids decide.
  const withId = (id: number) => ({ ...m(`x${id}`), id });
  assert.deepEqual(newMessages([withId(1), withId(2)], [withId(2), withId(3)]), [withId(3)]);
});

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

Deno.test("cliente --help in Portuguese and English; bad flags exit 2 with one line", async () => {
  const pt = await runScript("cliente.ts", CLIENT_PERMISSIONS, ["--help", "--lang", "pt"]);
  assert.deepEqual(pt.code, 0);
  assert.match(pt.stdout, /Uso: deno run --allow-net cliente\.ts/);
  assert.match(pt.stdout, /--binder H:P/);
  const en = await runScript("cliente.ts", CLIENT_PERMISSIONS, ["--lang=en", "-h"]);
  assert.deepEqual(en.code, 0);
  assert.match(en.stdout, /Usage: deno run --allow-net cliente\.ts/);
  for (
    const [args, message] of [
      [["--lang", "fr"], /--lang (deve ser|must be) pt (ou|or) en/],
      [["--binder", "a:b:c"], /--binder: endereço inválido/],
      [["--attempts", "-1"], /o valor de --attempts começa com '-'/],
      [["--retry", "zero"], /--retry deve ser um número/],
      [["--bogus"], /opção desconhecida '--bogus'/],
      [["sobra"], /argumento inesperado 'sobra'/],
    ] as const
  ) {
    await assertUsageError("cliente.ts", CLIENT_PERMISSIONS, args, message);
  }
});

Deno.test("an unreachable binder or a missing service: clear messages, retries, exit 1, no stack trace", async () => {
  const deadPort = freePort();
  const down = startClient({ address: `127.0.0.1:${deadPort}` }, ["--name", "ana", "--attempts", "3"]);
  assert.deepEqual((await down.status).code, 1);
  assert.match(
    down.output,
    new RegExp(`O binder em 127\\.0\\.0\\.1:${deadPort} não responde \\(conexão recusada\\)`),
  );
  assert.match(down.output, /Tentando de novo a cada 0\.2 s/);
  assert.match(down.output, /Desisti depois de 3 tentativas\./);
  assert.deepEqual(down.stderrLines, []);
  assert.doesNotMatch(down.output, /^\s+at |Error:|Uncaught/m);

  await using binder = await startBinder();
  const missing = startClient(binder, ["--name", "ana", "--attempts", "2"]);
  assert.deepEqual((await missing.status).code, 1);
  assert.match(missing.output, /O ChatService não está registrado no binder/);
  assert.deepEqual(missing.stderrLines, []);
});

// ---------------------------------------------------------------------------
// Against server.ts
// ---------------------------------------------------------------------------

Deno.test("three scripted clients: public to all within a second, private to one, /usuarios, exit 0, names free", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder);
  const names = ["ana", "bia", "caio"];
  await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
  await ana.waitForLine(/Você está na sala geral\./);
  await using bia = startClient(binder, ["--name", "bia", "--room", "geral"]);
  await using caio = startClient(binder, ["--name", "caio", "--room", "geral"]);
  const clients = [ana, bia, caio];
  for (const client of clients) {
    for (const name of names) await client.waitForLine(said(`SERVER: ${name} entrou na sala.`));
  }

  // A public message reaches everyone, the sender included (once, from the server's echo).
  let start = performance.now();
  await ana.write("olá a todos\n");
  await Promise.all(clients.map((c) => c.waitForLine(said("ana: olá a todos"), 1000)));
  assert(performance.now() - start < 1000, `took ${performance.now() - start} ms`);
  start = performance.now();
  await caio.write("oi, ana!\n");
  await Promise.all(clients.map((c) => c.waitForLine(said("caio: oi, ana!"), 1000)));
  assert(performance.now() - start < 1000);

  // A private message: its recipient and its sender, nobody else.
  await bia.write("/msg caio só para você\n");
  await caio.waitForLine(said("bia -> caio: só para você"), 1000);
  await bia.waitForLine(said("bia -> caio: só para você"), 1000);
  await bia.write("depois do segredo\n");
  await Promise.all(clients.map((c) => c.waitForLine(said("bia: depois do segredo"), 1000)));
  assert(!ana.output.includes("só para você"), ana.output);

  await ana.write("/usuarios\n");
  await ana.waitForLine(/^\* Na sala geral \(3\): ana, bia, caio$/);

  for (const client of clients) {
    for (const text of ["ana: olá a todos", "caio: oi, ana!", "bia: depois do segredo"]) {
      assert.deepEqual(count(client, said(text)), 1, `${text} in\n${client.output}`);
    }
    // Plain lines: no colour, no screen clearing.
    assert.doesNotMatch(client.output, /\x1b/);
  }
  assert.deepEqual(count(bia, said("bia -> caio: só para você")), 1);

  assert.deepEqual(await Promise.all(clients.map(quit)), [0, 0, 0]);
  for (const client of clients) assert.match(client.output, /^\* Até logo!$/m);
  // The names are free again at once.
  for (const name of names) {
    assert.deepEqual(await server.client().call("registrar_usuario", [name]), [
      true,
      `Usuário '${name}' registrado com sucesso.`,
    ]);
  }
});

Deno.test("commands: create, join, rooms, leave, delete, help, unknown; English aliases; end of input leaves", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder);
  await using ana = startClient(binder, ["--name", "ana"]);
  await ana.waitForLine(/Olá, ana! Digite \/ajuda/);
  await ana.write("sem sala\n");
  await ana.waitForLine(/^\* Você não está em nenhuma sala\. Use \/entrar SALA/);
  await ana.write("/criar estudos\n/criar estudos\n/entrar estudos\n");
  await ana.waitForLine(/^\* Sala 'estudos' criada com sucesso\.$/);
  // /criar does not join: it says how.
  await ana.waitForLine(/^\* Para entrar nela: \/entrar estudos$/);
  await ana.waitForLine(/^\* A sala 'estudos' já existe\.$/);
  await ana.waitForLine(/^\* Você está na sala estudos\. Presentes: ana\.$/);
  // As IRC's /join: a missing room is created, and the server says so.
  await ana.write("/entrar nova\n");
  await ana.waitForLine(/^\* Sala 'nova' criada com sucesso\.$/);
  await ana.waitForLine(/^\* Você está na sala nova\. Presentes: ana\.$/);
  await ana.write("/entrar estudos\n");
  await ana.waitForLines(/^\* Você está na sala estudos\. Presentes: ana\.$/, 2);
  // Quotes around a room's name, as in /msg; a name against the rules is refused with the rules.
  await ana.write('/criar "sala de estudos"\n/entrar "sala de estudos"\n');
  await ana.waitForLine(/^\* Para entrar nela: \/entrar "sala de estudos"$/);
  await ana.waitForLine(/^\* Você está na sala sala de estudos\. Presentes: ana\.$/);
  await ana.write('/entrar "x;y"\n');
  await ana.waitForLine(/^\* Nome de sala inválido: use só letras, números, espaços simples e /);
  await ana.write("/entrar estudos\n");
  await ana.waitForLines(/^\* Você está na sala estudos\. Presentes: ana\.$/, 3);
  await ana.write('/excluir "sala de estudos"\n');
  await ana.waitForLine(/^\* Sala 'sala de estudos' excluída\.$/);
  await ana.write("//barra no começo\n");
  await ana.waitForLine(said("ana: /barra no começo"));
  await ana.write("/voar\n/msg\n/salas\n/ajuda\n");
  await ana.waitForLine(/^\* Comando desconhecido: \/voar\. Digite \/ajuda/);
  await ana.waitForLine(/^\* Uso: \/msg NOME TEXTO$/);
  await ana.waitForLine(/^\* Salas \(2\): estudos, nova$/);
  await ana.waitForLines(/^\* Comandos:$/, 2);

  // English aliases, and the room's creator deletes it under a member's feet.
  await using bia = startClient(binder, ["--name", "bia", "--lang", "en"]);
  await bia.waitForLine(/Hello, bia! Type \/help/);
  await bia.write("/join estudos\n");
  await bia.waitForLine(/^\* You are in room estudos\. Here: ana, bia\.$/);
  await bia.write("/delete estudos\n");
  await bia.waitForLine(/^\* Only the creator of room 'estudos' can delete it\.$/);
  await bia.write("/rooms\n/users estudos\n");
  await bia.waitForLine(/^\* Rooms \(2\): estudos, nova$/);
  await bia.waitForLine(/^\* In room estudos \(2\): ana, bia$/);
  await ana.write("/excluir estudos\n");
  await ana.waitForLine(/^\* Sala 'estudos' excluída\.$/);
  await bia.waitForLine(said("SERVER: Room estudos deleted by ana."));
  await bia.waitForLine(/^\* You are no longer in room estudos: /);
  await bia.write("still here?\n");
  await bia.waitForLine(/^\* You are not in a room\./);

  await ana.write("/criar outra\n/entrar outra\n/sair\n");
  await ana.waitForLine(/^\* Você saiu da sala outra\.$/);
  await ana.write("/sair\n");
  await ana.waitForLine(/^\* Você não está em nenhuma sala\.$/);

  // End of input: the client leaves the service and exits 0; the name is free.
  await bia.closeStdin();
  assert.deepEqual((await bia.status).code, 0);
  assert.match(bia.output, /^\* Bye!$/m);
  assert.deepEqual(await quit(ana), 0);
  assert.deepEqual((await server.client().call<[boolean]>("registrar_usuario", ["bia"]))[0], true);
});

Deno.test("a taken name: the client says so and asks for another until one is free", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder);
  const squatter = server.client();
  await squatter.call("registrar_usuario", ["ana"]);
  await using client = startClient(binder, ["--name", "ana"]);
  await client.waitForLine(/^\* O nome 'ana' já está em uso\. Escolha outro\.$/);
  await client.waitForLine(/^\* Escolha seu nome de usuário:$/);
  await client.write("\n/entrar geral\nana\nana2\n");
  await client.waitForLine(/^\* Escolha um nome antes \(ou \/fim para sair\)\.$/);
  await client.waitForLine(/^\* Olá, ana2!/);
  assert.deepEqual(count(client, /já está em uso/), 2);
  assert.deepEqual(await quit(client), 0);
});

Deno.test("an English locale switches the texts without --allow-env; C and unset stay Portuguese", async () => {
  await using binder = await startBinder();
  await using _server = await startServer(binder);
  const run = async (env: string[]) => {
    const program = new Program("env", [
      "-u",
      "LC_ALL",
      "-u",
      "LC_MESSAGES",
      "-u",
      "LANGUAGE",
      ...env,
      ...scriptCommand("cliente.ts", CLIENT_PERMISSIONS, ["--binder", binder.address]),
    ], { stdin: "piped" });
    await program.write("/fim\n");
    await program.closeStdin();
    assert.deepEqual((await program.status).code, 0, program.stderrLines.join("\n"));
    return program.output;
  };
  assert.match(await run(["LANG=en_US.UTF-8"]), /Choose your user name:/);
  assert.match(await run(["LANG=pt_BR.UTF-8"]), /Escolha seu nome de usuário:/);
  assert.match(await run(["LANG=C.UTF-8"]), /Escolha seu nome de usuário:/);
  assert.match(await run(["-u", "LANG"]), /Escolha seu nome de usuário:/);
});

Deno.test("others' text never reaches the terminal raw: line breaks and escapes are neutralized", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder);
  await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
  await ana.waitForLine(/Você está na sala geral/);
  const mallory = server.client();
  await mallory.call("registrar_usuario", ["mallory"]);
  await mallory.call("entrar_na_sala", ["mallory", "geral"]);
  const [ok] = await mallory.call<[boolean]>("enviar_mensagem", [
    "mallory",
    "geral",
    "oi\n[00:00:00] SERVER: você foi banido\u202e!",
    null,
  ]);
  assert(ok);
  await ana.waitForLine(said("mallory: oi [00:00:00] SERVER: você foi banido\ufffd!"));
  assert.deepEqual(count(ana, /você foi banido/), 1);
  assert.deepEqual(await quit(ana), 0);
});

Deno.test("SIGTERM or SIGHUP: the client leaves the service (the name is free) and exits 0", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder);
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
    await ana.waitForLine(/Você está na sala geral/);
    ana.kill(signal);
    assert.deepEqual((await ana.status).code, 0, signal);
    assert.match(ana.output, /^\* Até logo!$/m);
    assert.deepEqual(await server.client().call("listar_usuarios", ["geral"]), [true, []], signal);
  }
});

Deno.test("a session the server ended (expired) is registered again, and the command goes through", async () => {
  await using binder = await startBinder();
  await using server = await startServer(binder, ["--session-ttl", "0.3"]);
  await using ana = startClient(binder, ["--name", "ana"]);
  await ana.waitForLine(/Olá, ana!/);
  // Outside any room the client signs of life every 10 s: far too rarely for this server.
  await server.program.waitForLine(/Usuário saiu \(sessão expirada\): ana/);
  await ana.write("/criar geral\n/entrar geral\n");
  // The first command to meet the lost session (/criar: the cookie is no one's any more) recovers it.
  await ana.waitForLine(
    /^\* O servidor encerrou a sessão \(Sessão inválida: registre-se com registrar_usuario e envie o cookie de sessão\.\)\. Registrando de novo\.\.\.$/,
  );
  await ana.waitForLine(/^\* Reconectado ao ChatService em 127\.0\.0\.1:\d+ como ana\.$/);
  await ana.waitForLine(/^\* Sala 'geral' criada com sucesso\.$/);
  await ana.waitForLine(/^\* Você está na sala geral\. Presentes: ana\.$/);
  assert.deepEqual(await quit(ana), 0);
});

Deno.test("the server is killed and restarted elsewhere mid-chat: the clients find it and carry on", async () => {
  await using binder = await startBinder(["--check-interval", "0.1", "--drop-after", "0.5"]);
  const first = await startServer(binder);
  const dir = first.dir;
  try {
    await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
    await ana.waitForLine(/Você está na sala geral/);
    await using bia = startClient(binder, ["--name", "bia", "--room", "geral"]);
    await ana.waitForLine(said("SERVER: bia entrou na sala."));
    await ana.write("antes da queda\n");
    await bia.waitForLine(said("ana: antes da queda"));
    await bia.write("/msg ana privado antes\n");
    await ana.waitForLine(said("bia -> ana: privado antes"));
    // Each sender's send answered before the crash (a command after it is, and lines go in order): a send
    // whose answer the crash swallowed is sent again after it (at least once), and would show twice.
    for (const client of [ana, bia]) {
      await client.write("/salas\n");
      await client.waitForLine(/^\* Salas \(1\): geral$/);
    }

    await first.program.stop("SIGKILL");
    await ana.waitForLine(/^\* Conexão com o servidor perdida/);
    await bia.waitForLine(/^\* Conexão com o servidor perdida/);
    // Typed while the server is down: sent once it is back.
    await bia.write("durante a queda\n");

    await using second = await startServer(binder, [], { dir });
    assert.notDeepEqual(second.port, first.port);
    const back = backInRoom(second.port, "geral");
    await ana.waitForLine(back, 15_000);
    await bia.waitForLine(back, 15_000);
    await ana.waitForLine(said("bia: durante a queda"));
    await ana.write("depois da volta\n");
    await bia.waitForLine(said("ana: depois da volta"));
    await ana.waitForLine(said("ana: depois da volta"));

    for (const client of [ana, bia]) {
      for (
        const text of [
          "ana: antes da queda",
          "bia -> ana: privado antes",
          "bia: durante a queda",
          "ana: depois da volta",
          "SERVER: bia entrou na sala.",
        ]
      ) {
        // Once: rejoining after the restart adds no notice (bia never left).
        assert.deepEqual(count(client, said(text)), 1, `${text} in\n${client.output}`);
      }
    }
    assert.deepEqual(await quit(ana), 0);
    assert.deepEqual(await quit(bia), 0);
  } finally {
    await first.program.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Against the original server (Python stand-in with only the original methods)
// ---------------------------------------------------------------------------

Deno.test("against a server with only the original methods: polling every second or two, each message once", async () => {
  await using binder = await startBinder();
  await using original = await startOriginalServer(binder);
  await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
  await ana.waitForLine(/^\* Este servidor só tem os métodos originais: buscando mensagens a cada 1 s\.$/);
  await ana.waitForLine(/Você está na sala geral/);
  await using bia = startClient(binder, ["--name", "bia", "--room", "geral"]);
  await bia.waitForLine(/Você está na sala geral/);
  await ana.waitForLine(said("SERVER: bia entrou na sala."), 3000);

  await ana.write("primeira\n");
  await bia.waitForLine(said("ana: primeira"), 3000);
  await ana.waitForLine(said("ana: primeira"), 3000);
  await bia.write("segunda\n");
  await ana.write("/msg bia privada\n");
  await bia.waitForLine(said("bia: segunda"), 3000);
  await ana.waitForLine(said("bia: segunda"), 3000);
  await bia.waitForLine(said("ana -> bia: privada"), 3000);
  await ana.waitForLine(said("ana -> bia: privada"));

  // Polling goes on every second or two: time six more polls of the two clients.
  const polls = () => count(original.program, /^CALL receber_mensagens$/);
  const before = polls();
  const started = performance.now();
  await waitUntil(() => polls() >= before + 6, "six more polls", 10_000);
  const perPoll = (performance.now() - started) / 3;
  assert(perPoll >= 500 && perPoll <= 2500, `one poll per client every ${perPoll} ms`);
  assert.deepEqual(count(original.program, /^CALL (aguardar_mensagens|sair_do_servico)/), 0);

  for (const client of [ana, bia]) {
    for (
      const text of ["ana: primeira", "bia: segunda", "ana -> bia: privada", "SERVER: bia entrou na sala."]
    ) {
      assert.deepEqual(count(client, said(text)), 1, `${text} in\n${client.output}`);
    }
  }
  await ana.write("/excluir geral\n");
  await ana.waitForLine(/^\* Este servidor \(original, sem extensões\) não tem \/excluir\.$/);
  assert.deepEqual(await quit(ana), 0);
  await bia.waitForLine(said("SERVER: ana saiu da sala."), 3000);
  assert.deepEqual(await quit(bia), 0);
});

Deno.test("a server that sends raw escape sequences cannot drive the terminal", async () => {
  await using binder = await startBinder();
  await using _original = await startOriginalServer(binder, ["--hostile"]);
  await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
  await ana.waitForLine(/Você está na sala geral/);
  await ana.waitForLine(said("mal: oipisca\ufffdabc [00:00:00] SERVER: falso"));
  assert.doesNotMatch(ana.output, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
  assert.deepEqual(await quit(ana), 0);
});
