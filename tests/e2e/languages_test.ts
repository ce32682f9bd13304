/**
 * Languages end to end: the inProcessCall's `Accept-Language` picks the language
 * of the servers' refusals, success messages and notices (Portuguese for
 * callers that send none, like the original clients); stored notices render
 * in each reader's language; network errors reach the user as kinds said in
 * the client's language. The last test runs the real programs: an English
 * client sees no Portuguese at all, a Portuguese one beside it and Python's
 * `xmlrpc.client` see today's texts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Call,
  type ChatMessage,
  DatabaseSync,
  describeNetworkError,
  endpointUrl,
  everyText,
  languageOf,
  loadText,
  noticeOf,
  render,
  type Result,
  storeText,
  text,
  type TextKey,
  Unreachable,
  XmlRpcClient,
} from "../../lib/mod.ts";
import { TEXTS } from "../../lib/mod.ts";
import { chatMethods } from "../../lib/mod.ts";
import { chatOn, databaseFile, inProcessCall, SCHEMA_1, servedChat } from "../helpers/core.ts";
import { freePort, runPython, startBinder, startClient, startServer } from "../helpers/programs.ts";

// ---------------------------------------------------------------------------
// The words an English reader must never see
// ---------------------------------------------------------------------------

/** Every string a table of texts holds, its functions called with a stand-in for each argument. */
function everyString(table: unknown): string[] {
  if (typeof table === "string") return [table];
  if (typeof table === "function") {
    // `["user"]` reads as "user" in a template, indexes KIND_PT as "user" and joins like a list.
    const stand = ["user"];
    return [String(table(...Array.from({ length: table.length }, () => stand)))];
  }
  if (typeof table === "object" && table !== null) return Object.values(table).flatMap(everyString);
  return [];
}

function wordsOf(texts: string[]): Set<string> {
  return new Set(texts.flatMap((one) => one.toLowerCase().match(/\p{L}+/gu) ?? []));
}

/**
 * The distinctive words of every Portuguese text (the servers' and the
 * client's): the words of the Portuguese tables that no English text uses
 * (the English help names the Portuguese commands, `/criar`...: those stay
 * allowed).
 */
const PORTUGUESE_WORDS: ReadonlySet<string> = (() => {
  const english = wordsOf([...everyString(everyText("en")), ...everyString(TEXTS.en)]);
  const portuguese = wordsOf([...everyString(everyText("pt")), ...everyString(TEXTS.pt)]);
  return new Set([...portuguese].filter((word) => !english.has(word)));
})();

/** The Portuguese a text holds: its distinctive words, and any accented letter. */
function portugueseIn(output: string): string[] {
  const found = [...wordsOf([output])].filter((word) => PORTUGUESE_WORDS.has(word));
  const accented = output.match(/[À-ÿ]/gu) ?? [];
  return [...found, ...accented];
}

Deno.test("the list of Portuguese words is the tables' own, and catches what it must", () => {
  for (
    const word of ["sala", "usuário", "não", "já", "você", "devagar", "sessão", "entrou", "saiu", "excluída"]
  ) {
    assert(PORTUGUESE_WORDS.has(word), word);
  }
  for (const word of ["encerrado", "conexão", "recusada", "servidor", "procedimento", "mensagem"]) {
    assert(PORTUGUESE_WORDS.has(word), word);
  }
  assert.deepEqual(portugueseIn("* The name 'ana' is already in use. Choose another."), []);
  assert.deepEqual(portugueseIn("* Lost the connection (conexão recusada)."), ["conexão", "recusada", "ã"]);
});

// ---------------------------------------------------------------------------
// Accept-Language, the catalogue, network errors
// ---------------------------------------------------------------------------

Deno.test("languageOf: the first language we speak by q order; Portuguese when the header names none", () => {
  const cases: [string | null, "pt" | "en"][] = [
    [null, "pt"],
    ["", "pt"],
    ["en", "en"],
    ["pt-BR", "pt"],
    ["EN-us", "en"],
    ["fr, en;q=0.5", "en"],
    ["en-GB;q=0.8, pt;q=0.9", "pt"],
    ["pt;q=0.1, en", "en"],
    ["en;q=0, pt;q=0.2", "pt"],
    ["fr, de", "pt"],
    ["*", "pt"],
    ["de;q=0.9, en-GB;q=0.9, pt;q=0.9", "en"],
    ["en;q=bogus, pt;q=0.5", "pt"],
    ["english", "pt"],
  ];
  for (const [header, lang] of cases) assert.equal(languageOf(header), lang, String(header));
});

Deno.test("the catalogue: every text in both languages, stored and read back, old notices recognized", () => {
  const pt = everyText("pt");
  const en = everyText("en");
  assert.deepEqual(Object.keys(en).sort(), Object.keys(pt).sort());
  for (const key of Object.keys(pt) as TextKey[]) {
    const args = Array.from({ length: pt[key].length }, () => "user") as never[];
    assert.notEqual(pt[key](...args), en[key](...args), key);
  }
  const said = text("recipientAbsent", "bob", "lobby");
  assert.equal(render(said, "pt"), "O usuário 'bob' não está na sala 'lobby'.");
  assert.equal(render(said, "en"), "User 'bob' is not in room 'lobby'.");
  assert.deepEqual(loadText(storeText(said)), said);
  assert.deepEqual(loadText(storeText(text("rateLimited", 2.5))), text("rateLimited", 2.5));
  for (const junk of [null, "", "{", "[]", '["nope"]', '["joinedNotice"]', '["joinedNotice", {}]', "7"]) {
    assert.equal(loadText(junk), undefined, String(junk));
  }
  for (
    const notice of [
      text("joinedNotice", "ana maria"),
      text("leftNotice", "bob"),
      text("roomDeletedNotice", "sala de estudos", "ana"),
      text("stoppedNotice"),
    ]
  ) {
    assert.deepEqual(noticeOf(render(notice, "pt")), notice);
  }
  assert.equal(noticeOf("Bem-vindos!"), undefined);
});

Deno.test("network errors are kinds, never the runtime's words", async () => {
  const failed = (cause: string) => new TypeError("error sending request", { cause: new Error(cause) });
  assert.equal(
    describeNetworkError(failed("tcp connect error: Connection refused (os error 111)")),
    "refused",
  );
  assert.equal(describeNetworkError(failed("Connection reset by peer (os error 104)")), "closed");
  assert.equal(describeNetworkError(failed("os error 104")), "closed");
  assert.equal(describeNetworkError(failed("connection closed before message completed")), "closed");
  assert.equal(describeNetworkError(failed("dns error: failed to lookup address information")), "notFound");
  assert.equal(describeNetworkError(failed("No route to host (os error 113)")), "unreachable");
  assert.equal(describeNetworkError(failed("something new (os error 999)")), "other");
  for (const lang of ["pt", "en"] as const) {
    assert.deepEqual(Object.keys(TEXTS[lang].network).sort(), [
      "closed",
      "notFound",
      "other",
      "refused",
      "timeout",
      "tooLarge",
      "unreachable",
    ]);
  }

  // A port nobody listens on: refused, and the error says so in a log's words, not the runtime's.
  const port = freePort();
  const error = await new XmlRpcClient(endpointUrl("127.0.0.1", port)).call("x").catch((e) => e);
  assert(error instanceof Unreachable);
  assert.equal(error.kind, "refused");
  assert.doesNotMatch(error.message, /os error/);
  assert.equal(TEXTS.en.network[error.kind], "connection refused");
});

// ---------------------------------------------------------------------------
// The method table in-process: per inProcessCall, per reader, encoded once per language
// ---------------------------------------------------------------------------

Deno.test("over the wire: refusals, successes and notices in each inProcessCall's language; none sent is Portuguese", async () => {
  using chatted = chatOn({ maxRate: 1000 });
  await using server = servedChat(chatted.chat);
  const ann = server.client({ "accept-language": "en-US,en;q=0.9" });
  const ana = server.client({ "accept-language": "pt-BR" });
  const plain = server.client({});
  assert.deepEqual(await ann.call("registrar_usuario", ["ann"]), [true, "User 'ann' registered."]);
  assert.deepEqual(await ana.call("registrar_usuario", ["ana"]), [
    true,
    "Usuário 'ana' registrado com sucesso.",
  ]);
  assert.deepEqual(await ann.call("registrar_usuario", ["ana"]), [
    false,
    "The name 'ana' is already in use. Choose another.",
  ]);
  assert.deepEqual(await plain.call("registrar_usuario", ["ana"]), [
    false,
    "O nome 'ana' já está em uso. Escolha outro.",
  ]);
  // The reason is the same whatever the language.
  const asking = server.client({ "accept-language": "en", "X-Chat-Motivos": "1" });
  assert.deepEqual(await asking.call("listar_usuarios", ["nowhere"]), [
    false,
    "Room 'nowhere' does not exist.",
    "sala_inexistente",
  ]);
  assert.deepEqual(await ann.call("criar_sala", ["lobby"]), [true, "Room 'lobby' created."]);
  await ann.call("entrar_na_sala", ["ann", "lobby"]);
  const [, joined] = await ana.call<[true, { mensagens: ChatMessage[] }]>("entrar_na_sala", [
    "ana",
    "lobby",
  ]);
  assert.deepEqual(joined.mensagens.map((m) => m.conteudo), ["ann entrou na sala.", "ana entrou na sala."]);
  const [, inEnglish] = await ann.call<[true, ChatMessage[]]>("receber_mensagens", ["ann", "lobby"]);
  assert.deepEqual(inEnglish.map((m) => m.conteudo), ["ann joined the room.", "ana joined the room."]);
  assert.deepEqual(await ann.call("enviar_mensagem", ["ann", "lobby", " ", null]), [
    false,
    "Empty message.",
  ]);
  assert.deepEqual(await ann.call("enviar_mensagem", ["ann", "lobby", "hi", null]), [
    true,
    "Message sent.",
  ]);
  assert.deepEqual(await ann.call("sair_da_sala", ["ann"]), [true, "You left room 'lobby'."]);
  assert.deepEqual(await ana.call("sair_do_servico", ["ana"]), [true, "Até logo, ana."]);
});

Deno.test("a message is encoded once per language: a notice once per language, any other once", async () => {
  using chatted = chatOn();
  const methods = chatMethods(chatted.chat);
  const run = (call: Call, method: string, ...params: unknown[]) => methods[method]!.run(call, params);
  const readers = {
    ann: inProcessCall("en"),
    bob: inProcessCall("en"),
    ana: inProcessCall("pt"),
    bia: inProcessCall("pt"),
  };
  for (const [name, call] of Object.entries(readers)) await run(call, "registrar_usuario", name);
  await run(readers.ann, "criar_sala", "lobby");
  for (const [name, call] of Object.entries(readers)) await run(call, "entrar_na_sala", name, "lobby");
  await run(readers.ann, "enviar_mensagem", "ann", "lobby", "hi", null);
  const seen = async (name: keyof typeof readers) => {
    const [ok, messages] = await run(readers[name], "receber_mensagens", name, "lobby") as Result<
      ChatMessage[]
    >;
    assert(ok);
    return messages as ChatMessage[];
  };
  const [ann, bob, ana, bia] = [await seen("ann"), await seen("bob"), await seen("ana"), await seen("bia")];
  // The last join notice, then the message from ann.
  const notice = (messages: ChatMessage[]) => messages.at(-2)!;
  assert.equal(notice(ann).conteudo, "bia joined the room.");
  assert.equal(notice(ana).conteudo, "bia entrou na sala.");
  assert.equal(notice(ann), notice(bob), "one English struct for every English reader");
  assert.equal(notice(ana), notice(bia), "one Portuguese struct for every Portuguese reader");
  assert(Object.isFrozen(notice(ann)) && Object.isFrozen(notice(ana)));
  for (const other of [bob, ana, bia]) {
    assert.equal(other.at(-1), ann.at(-1), "a person's message: one struct");
  }
});

// ---------------------------------------------------------------------------
// Schema 2: notices keep their Text; a schema-1 database is migrated
// ---------------------------------------------------------------------------

Deno.test("a schema-1 database becomes schema 2: its notices render in English, nothing else changes", async () => {
  // The schema of version 1, with a notice of each kind and a message.
  await using file = databaseFile(`${SCHEMA_1} INSERT INTO rooms VALUES ('lobby', 'ana', 1);`);
  const { path } = file;
  {
    const db = new DatabaseSync(path);
    const insert = db.prepare(
      "INSERT INTO messages (room, tipo, origem, destino, conteudo, timestamp) VALUES ('lobby', 'broadcast', ?, 'todos', ?, 1)",
    );
    for (
      const [from, said] of [
        ["SERVER", "ana maria entrou na sala."],
        ["ana maria", "oi, entrou na sala."],
        ["SERVER", "bob saiu da sala."],
        ["SERVER", "Sala den excluída por ana."],
        ["SERVER", "O servidor de chat foi encerrado."],
        ["SERVER", "Bem-vindos!"],
      ]
    ) insert.run(from!, said!);
    db.close();
  }
  {
    using chatted = chatOn({}, path);
    const methods = chatMethods(chatted.chat);
    const ann = inProcessCall("en");
    const ana = inProcessCall("pt");
    await methods.registrar_usuario!.run(ann, ["ann"]);
    await methods.registrar_usuario!.run(ana, ["ana"]);
    const contents = async (call: Call, name: string) => {
      const [, { mensagens }] = await methods.entrar_na_sala!.run(call, [name, "lobby"]) as [
        true,
        { mensagens: ChatMessage[] },
      ];
      return mensagens.map((m) => `${m.origem}: ${m.conteudo}`).slice(0, 6);
    };
    assert.deepEqual(await contents(ann, "ann"), [
      "SERVER: ana maria joined the room.",
      "ana maria: oi, entrou na sala.",
      "SERVER: bob left the room.",
      "SERVER: Room den deleted by ana.",
      "SERVER: The chat server has stopped.",
      // Not a notice of ours: it stays as it was written.
      "SERVER: Bem-vindos!",
    ]);
    assert.deepEqual(await contents(ana, "ana"), [
      "SERVER: ana maria entrou na sala.",
      "ana maria: oi, entrou na sala.",
      "SERVER: bob saiu da sala.",
      "SERVER: Sala den excluída por ana.",
      "SERVER: O servidor de chat foi encerrado.",
      "SERVER: Bem-vindos!",
    ]);
  }
  const db = new DatabaseSync(path);
  try {
    // Schema 2, then 3 (identities: chat_limits_test.ts).
    assert.equal((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, 5);
    const rows = db.prepare("SELECT body, notice FROM messages ORDER BY id LIMIT 2").all();
    assert.deepEqual(rows.map((row) => ({ ...row })), [
      { body: "ana maria entrou na sala.", notice: '["joinedNotice","ana maria"]' },
      { body: "oi, entrou na sala.", notice: null },
    ]);
  } finally {
    db.close();
  }
});

// ---------------------------------------------------------------------------
// The real programs
// ---------------------------------------------------------------------------

Deno.test({
  name:
    "an English client sees no Portuguese whatever is refused or noticed; Portuguese and Python unchanged",
  async fn() {
    await using binder = await startBinder();
    // --compat for the Python client; a low rate to be refused; short sessions to lose one.
    await using server = await startServer(binder, ["--compat", "--max-rate", "2", "--session-ttl", "2"]);
    await using ana = startClient(binder, ["--name", "ana", "--room", "lobby"]);
    await ana.waitForLine(/^\* Você está na sala lobby\. Presentes: ana\.$/);

    // A taken name, a reserved one, an invalid one, then a free one.
    await using eve = startClient(binder, ["--name", "ana", "--lang", "en"]);
    await eve.write(`server\n${"n".repeat(40)}\neve\n`);
    await eve.waitForLine(/^\* The name 'ana' is already in use\. Choose another\.$/);
    await eve.waitForLine(/^\* The name 'server' is reserved\.$/);
    await eve.waitForLine(/^\* Invalid user name: use 1 to 32 characters\.$/);
    await eve.waitForLine(/^\* Hello, eve!/);

    // Rooms missing (/join creates it, as IRC's does), existing, invalid, of someone else; in no room.
    await eve.write(
      `/join nowhere\n/create lobby\n/create ${"r".repeat(40)}\n/leave\n/leave\n/users elsewhere\n`,
    );
    await eve.write("/delete lobby\n");
    await eve.waitForLine(/^\* Room 'nowhere' created\.$/);
    await eve.waitForLine(/^\* Room 'lobby' already exists\.$/);
    await eve.waitForLine(/^\* Invalid room name: use 1 to 32 characters\.$/);
    await eve.waitForLine(/^\* You are not in any room\.$/);
    await eve.waitForLine(/^\* Room 'elsewhere' does not exist\.$/);
    await eve.waitForLine(/^\* Only the creator of room 'lobby' can delete it\.$/);

    // In the room: the history's notices in English, a recipient absent, texts refused, a flood slowed.
    await eve.write("/join lobby\n");
    await eve.waitForLine(/^\[\d\d:\d\d:\d\d\] SERVER: eve joined the room\.$/);
    await eve.waitForLine(/^\[\d\d:\d\d:\d\d\] SERVER: ana joined the room\.$/);
    await ana.waitForLine(/^\[\d\d:\d\d:\d\d\] SERVER: eve entrou na sala\.$/);
    // A C1 control character: XML carries it, the server refuses it.
    // A line of 2001 characters goes out in two parts: the client never sends one the server refuses as long.
    await eve.write(`/msg nobody hi\n${"y".repeat(2001)}\na\u009bb\n`);
    // Private messages go to anyone online (enviar_privada): nobody by that name is.
    await eve.waitForLine(/^\* User 'nobody' is not online\.$/);
    await eve.waitForLine(/^\[\d\d:\d\d:\d\d\] eve: y$/);
    await eve.waitForLine(/^\* Messages with control characters are not accepted\.$/);
    // A flood is slowed: the client waits out the refusals (devagar) and every line goes, in order.
    await eve.write("one\ntwo\nthree\nfour\nfive\nsix\nseven\n");
    await eve.waitForLine(/^\[\d\d:\d\d:\d\d\] eve: seven$/);
    assert.deepEqual(
      eve.lines.filter((line) => /^\S+ eve: (?!y)\w+$/.test(line)).map((line) => line.slice(16)),
      [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
      ],
    );

    // Leaves, joins and a deletion, each as a notice.
    await ana.write("/criar den\n/entrar den\n");
    await eve.waitForLine(/SERVER: ana left the room\.$/);
    await eve.write("/join den\n");
    await eve.waitForLine(/^\* You are in room den\. Here: ana, eve\.$/);
    await ana.write("/excluir den\n");
    await ana.waitForLine(/^\* Sala 'den' excluída\.$/);
    await eve.waitForLine(/SERVER: Room den deleted by ana\.$/);
    await eve.waitForLine(/^\* You are no longer in room den: Room 'den' does not exist\.$/);
    await ana.write("/entrar lobby\n");
    await ana.waitForLines(/^\* Você está na sala lobby\./, 2);
    await eve.write("/join lobby\n");
    await eve.waitForLines(/^\* You are in room lobby\. Here: ana, eve\.$/, 2);

    // A session the server ended: out of any room, silent for longer than --session-ttl.
    await eve.write("/leave\n");
    await eve.waitForLine(/^\* You left room lobby\.$/);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await eve.write("/join lobby\n");
    await eve.waitForLine(
      /^\* The server ended the session \(User 'eve' is not registered\.\)\. Registering again/,
    );
    await eve.waitForLine(/^\* Reconnected to ChatService at .* as eve\.$/);
    await eve.waitForLines(/^\* You are in room lobby\./, 3);

    // The original client: no header, today's Portuguese, the notices stored by an English user included.
    const python = await runPython(
      `
import sys, xmlrpc.client
chat = xmlrpc.client.ServerProxy(sys.argv[1], allow_none=True)
print(chat.registrar_usuario("eve"))
print(chat.registrar_usuario("py"))
ok, joined = chat.entrar_na_sala("py", "lobby")
print([m["conteudo"] for m in joined["mensagens"] if m["origem"] == "SERVER"][-2:])
print(chat.enviar_mensagem("py", "lobby", "   ", None))
`,
      [`http://${server.address}/`],
    );
    assert.deepEqual(python.trim().split("\n"), [
      `[False, "O nome 'eve' já está em uso. Escolha outro."]`,
      `[True, "Usuário 'py' registrado com sucesso."]`,
      `['eve entrou na sala.', 'py entrou na sala.']`,
      `[False, 'Mensagem vazia.']`,
    ]);
    await eve.waitForLine(/SERVER: py joined the room\.$/);

    // The service stops: a notice, then the server is gone.
    await server.program.stop("SIGTERM");
    await eve.waitForLine(/SERVER: The chat server has stopped\.$/);
    await ana.waitForLine(/SERVER: O servidor de chat foi encerrado\.$/);
    await eve.waitForLine(/^\* Lost the connection to the server \(connection (refused|closed)\)\./);
    await eve.waitForLine(/^\* ChatService is not registered at the binder/);
    await eve.closeStdin();
    assert.equal((await eve.status).code, 0);
    assert.match(eve.output, /^\* Bye!$/m);

    assert.deepEqual(portugueseIn(eve.output), [], eve.output);
    assert.doesNotMatch(eve.output, /os error|error sending request/i);
    // The Portuguese client beside it: today's texts.
    assert.match(ana.output, /^\* Olá, ana! Digite \/ajuda/m);
    assert.match(ana.output, /SERVER: eve entrou na sala\.$/m);
    assert.match(ana.output, /^\* Sala 'den' criada com sucesso\.$/m);
    assert.match(ana.output, /^\* Conexão com o servidor perdida \(conexão (recusada|encerrada)\)\./m);
    await ana.closeStdin();
    assert.equal((await ana.status).code, 0);
  },
});
