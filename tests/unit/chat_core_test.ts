/**
 * The chat's core in-process: {@linkcode SqliteChat} over an in-memory
 * {@linkcode MessageStore}, and {@linkcode chatMethods} served by the real
 * HTTP handler on a loopback port. Fast, beside the end-to-end tests of
 * server_test.ts, which run the program itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Call,
  type ChatMessage,
  DatabaseSync,
  localWallClock,
  MAX_BATCH,
  type Message,
  type Outcome,
  Reason,
  REASONS_HEADER,
  render,
  type Result,
  type Text,
} from "../../lib/mod.ts";
import {
  chatMethods,
  deliveryAfter,
  LATEST_VISIBLE,
  MessageStore,
  SqliteChat,
  type User,
  VISIBILITY_INDEXES,
  VISIBLE_AFTER,
} from "../../lib/mod.ts";
import { authorized, chatOn, inProcessCall, refusalReason, servedChat, userOf } from "../helpers/core.ts";
import { silentLog, texts, waitUntil } from "../helpers/programs.ts";

/** An outcome in Portuguese, as the original clients read it. */
function pt<T>(outcome: Outcome<T> | User): unknown {
  if (!Array.isArray(outcome)) return outcome;
  const [ok, payload] = outcome;
  if (!ok) return [false, render(payload, "pt"), outcome[2]];
  const said = payload as Text;
  return typeof said === "object" && said !== null && "key" in said ? [true, render(said, "pt")] : outcome;
}

/** Creates `geral` as ana and puts the given users in it, in order. */
async function inGeral(chat: SqliteChat, ...users: User[]): Promise<void> {
  assert.equal((await chat.createRoom("geral", users[0]!.token))[0], true);
  for (const user of users) assert.equal((await chat.join(user, "geral"))[0], true);
}

Deno.test("register: names are trimmed and unique; reserved, empty, long and control names are refused with reasons", () => {
  using chatted = chatOn();
  const { chat } = chatted;
  assert.deepEqual(pt(chat.register("  ana  ", "t1")), [true, "Usuário 'ana' registrado com sucesso."]);
  assert.deepEqual(pt(chat.register("ana", "t2")), [
    false,
    "O nome 'ana' já está em uso. Escolha outro.",
    Reason.NAME_TAKEN,
  ]);
  for (const name of ["SERVER", "server", "todos", "Todos"]) {
    assert.equal(refusalReason(chat.register(name, "t")), Reason.NAME_RESERVED, name);
  }
  for (const name of ["", "   ", "x".repeat(33), "a\u0085b", "a\u200bb", "a\u2028b"]) {
    assert.equal(refusalReason(chat.register(name, "t")), Reason.NAME_INVALID, JSON.stringify(name));
  }
  assert.equal(chat.register("x".repeat(32), "t3")[0], true);
});

Deno.test("authorize: only the session's own user; none without a session unless --compat, and not after proving one", () => {
  {
    using chatted = chatOn();
    const { chat } = chatted;
    const ana = userOf(chat, "ana");
    userOf(chat, "bia");
    assert.equal(chat.authorize("token-ana", " ana "), ana);
    assert.equal(refusalReason(chat.authorize("token-bia", "ana")), Reason.SESSION_INVALID);
    assert.equal(refusalReason(chat.authorize(undefined, "ana")), Reason.SESSION_INVALID);
    assert.deepEqual(pt(chat.authorize("token-ana", "caio")), [
      false,
      "Usuário 'caio' não está registrado.",
      Reason.NOT_REGISTERED,
    ]);
  }
  {
    using chatted = chatOn({ compat: true });
    const { chat } = chatted;
    chat.register("ana", "token-ana");
    // The original clients send no cookie: accepted, until ana's own client proves her session.
    assert(!Array.isArray(chat.authorize(undefined, "ana")));
    authorized(chat, "ana");
    assert.equal(refusalReason(chat.authorize(undefined, "ana")), Reason.SESSION_INVALID);
    assert.equal(refusalReason(chat.authorize("token-x", "ana")), Reason.SESSION_INVALID);
  }
});

Deno.test("rooms: create, list, join (leaving the last one), leave, members, and the refusals' reasons", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  const bia = userOf(chat, "bia");
  assert.deepEqual(pt(await chat.createRoom(" b ", ana.token)), [true, "Sala 'b' criada com sucesso."]);
  assert.deepEqual(pt(await chat.createRoom("b", bia.token)), [
    false,
    "A sala 'b' já existe.",
    Reason.ROOM_EXISTS,
  ]);
  assert.equal(refusalReason(await chat.createRoom("x".repeat(33), ana.token)), Reason.NAME_INVALID);
  // Without a session, only with --compat.
  assert.equal(refusalReason(await chat.createRoom("a", undefined)), Reason.SESSION_INVALID);
  await chat.createRoom("a", bia.token);
  assert.deepEqual(chat.listRooms(), [true, ["a", "b"]]);
  assert.equal(chat.roomCount, 2);

  assert.equal(refusalReason(await chat.join(ana, "c")), Reason.ROOM_MISSING);
  const joined = await chat.join(ana, "a");
  assert(joined[0]);
  assert.deepEqual(joined[1].usuarios, ["ana"]);
  assert.deepEqual(texts(joined[1].mensagens), ["SERVER: ana entrou na sala."]);
  assert.equal(joined[1].cursor, joined[1].mensagens[0]!.id);
  await chat.join(bia, "a");
  // Joining again the room one is in changes nothing.
  assert.equal((await chat.join(bia, "a"))[0], true);
  assert.deepEqual(chat.listMembers("a"), [true, ["ana", "bia"]]);

  const moved = await chat.join(bia, "b");
  assert(moved[0]);
  assert.deepEqual(texts(moved[1].mensagens), ["SERVER: bia entrou na sala."]);
  const inA = chat.recentMessages(ana, "a");
  assert(inA[0]);
  assert.deepEqual(texts(inA[1]).slice(-2), ["SERVER: bia entrou na sala.", "SERVER: bia saiu da sala."]);

  assert.deepEqual(pt(await chat.leave(bia)), [true, "Você saiu da sala 'b'."]);
  assert.deepEqual(pt(await chat.leave(bia)), [false, "Você não está em nenhuma sala.", Reason.NOT_IN_ROOM]);
  assert.deepEqual(chat.listMembers("b"), [true, []]);
  assert.equal(refusalReason(chat.listMembers("c")), Reason.ROOM_MISSING);
  assert.equal(refusalReason(chat.recentMessages(bia, "a")), Reason.NOT_IN_ROOM);
  assert.equal(refusalReason(chat.recentMessages(bia, "c")), Reason.ROOM_MISSING);
});

Deno.test("only the creator deletes a room: members get the notice and are out; their waits end", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  const bia = userOf(chat, "bia");
  await inGeral(chat, ana, bia);
  assert.equal(refusalReason(await chat.deleteRoom(bia, "geral")), Reason.NOT_CREATOR);
  assert.equal(refusalReason(await chat.deleteRoom(ana, "nenhuma")), Reason.ROOM_MISSING);
  const joined = await chat.join(bia, "geral");
  assert(joined[0]);
  const waiting = chat.waitMessages(bia, "geral", joined[1].cursor, 10_000);
  assert.deepEqual(pt(await chat.deleteRoom(ana, "geral")), [true, "Sala 'geral' excluída."]);
  const woken = await waiting;
  assert(woken[0]);
  assert.deepEqual(texts(woken[1].mensagens), ["SERVER: Sala geral excluída por ana."]);
  assert.deepEqual(chat.listRooms(), [true, []]);
  assert.equal(refusalReason(await chat.leave(bia)), Reason.NOT_IN_ROOM);
  // Out of the room, bia may join another.
  await chat.createRoom("outra", bia.token);
  assert.equal((await chat.join(bia, "outra"))[0], true);
});

Deno.test("send: to the room or to one member; private messages only to their two ends; checked text", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  const [ana, bia, caio] = ["ana", "bia", "caio"].map((name) => userOf(chat, name)) as [User, User, User];
  await inGeral(chat, ana, bia, caio);
  const cursor = (await chat.join(caio, "geral"))[1] as { cursor: number };
  assert.deepEqual(pt(await chat.send(ana, "geral", "para todos", null)), [true, "Mensagem enviada."]);
  assert.deepEqual(pt(await chat.send(ana, "geral", "só para a bia", " bia ")), [true, "Mensagem enviada."]);
  assert.deepEqual(pt(await chat.send(caio, "geral", "oi", "todos")), [true, "Mensagem enviada."]);
  assert.deepEqual(pt(await chat.send(caio, "geral", "de novo", "")), [true, "Mensagem enviada."]);
  const after = ["ana: para todos", "ana -> bia: só para a bia", "caio: oi", "caio: de novo"];
  for (
    const [user, expected] of [[ana, after], [bia, after], [caio, [after[0], after[2], after[3]]]] as const
  ) {
    const recent = chat.recentMessages(user, "geral");
    assert(recent[0]);
    assert.deepEqual(texts(recent[1]).slice(-expected.length), expected, user.name);
    const batch = await chat.waitMessages(user, "geral", cursor.cursor, 0);
    assert(batch[0]);
    assert.deepEqual(texts(batch[1].mensagens), expected, user.name);
    assert.equal(batch[1].cursor, batch[1].mensagens.at(-1)!.id);
  }

  assert.deepEqual(pt(await chat.send(ana, "geral", "x", "ninguem")), [
    false,
    "O usuário 'ninguem' não está na sala 'geral'.",
    Reason.RECIPIENT_ABSENT,
  ]);
  await chat.createRoom("outra", bia.token);
  assert.equal(refusalReason(await chat.send(ana, "outra", "x", null)), Reason.NOT_IN_ROOM);
  assert.equal(refusalReason(await chat.send(ana, "nenhuma", "x", null)), Reason.ROOM_MISSING);
  assert.equal(refusalReason(await chat.send(ana, "geral", "  \n ", null)), Reason.TEXT_EMPTY);
  assert.equal(refusalReason(await chat.send(ana, "geral", "x".repeat(2001), null)), Reason.TEXT_TOO_LONG);
  assert.equal(refusalReason(await chat.send(ana, "geral", "a\u009bb", null)), Reason.TEXT_INVALID);
  assert.equal(refusalReason(await chat.send(ana, "geral", "a\ud800b", null)), Reason.TEXT_INVALID);
  assert.equal((await chat.send(ana, "geral", "x".repeat(2000), null))[0], true);
  assert.equal((await chat.send(ana, "geral", "tab\te\nlinhas\r\n", null))[0], true);
});

Deno.test("a long wait returns the moment a message it may see arrives, not for one it may not", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  const [ana, bia, caio] = ["ana", "bia", "caio"].map((name) => userOf(chat, name)) as [User, User, User];
  await inGeral(chat, ana, bia, caio);
  const joined = await chat.join(caio, "geral");
  assert(joined[0]);
  const started = performance.now();
  let settled = false;
  const waiting = chat.waitMessages(caio, "geral", joined[1].cursor, 10_000).finally(() => settled = true);
  // A private message between the others does not wake caio.
  await chat.send(ana, "geral", "segredo", "bia");
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(settled, false);
  await chat.send(bia, "geral", "para todos", null);
  const batch = await waiting;
  assert(batch[0]);
  assert.deepEqual(texts(batch[1].mensagens), ["bia: para todos"]);
  assert(performance.now() - started < 1000);

  // Nothing new: the wait times out empty, the cursor unchanged.
  const empty = await chat.waitMessages(caio, "geral", batch[1].cursor, 50);
  assert.deepEqual(empty, [true, { mensagens: [], cursor: batch[1].cursor }]);
  // A cursor from the future (a server that lost its database) starts from now.
  const future = await chat.waitMessages(caio, "geral", batch[1].cursor + 1000, 0);
  assert.deepEqual(future, [true, { mensagens: [], cursor: batch[1].cursor }]);

  // Stopping ends waits at once, and later ones do not wait.
  const pending = chat.waitMessages(caio, "geral", batch[1].cursor, 10_000);
  chat.stop();
  assert.deepEqual(await pending, [true, { mensagens: [], cursor: batch[1].cursor }]);
  const at = performance.now();
  await chat.waitMessages(caio, "geral", batch[1].cursor, 10_000);
  assert(performance.now() - at < 100);
});

Deno.test("the rate limit: a burst of twice the rate passes, then `devagar`", async () => {
  using chatted = chatOn({ maxRate: 5 });
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  await inGeral(chat, ana);
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => chat.send(ana, "geral", `flood ${i}`, null)),
  );
  assert(results.slice(0, 10).every(([ok]) => ok));
  assert.deepEqual(pt(results[10]!), [
    false,
    "Devagar: no máximo 5 mensagens por segundo.",
    Reason.RATE_LIMITED,
  ]);
});

Deno.test("the sweep (start's interval): silent sessions end with a notice, waiting ones stay, idle empty rooms go", async () => {
  using chatted = chatOn({ sessionTtlMs: 80, roomTtlMs: 80 });
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  const bia = userOf(chat, "bia");
  await inGeral(chat, ana, bia);
  await chat.createRoom("vazia", bia.token);
  const joined = await chat.join(ana, "geral");
  assert(joined[0]);
  chat.start(10);
  // Ana waits (a sign of life) until bia's silent session ends.
  const seen: string[] = [];
  let cursor = joined[1].cursor;
  while (!seen.includes("SERVER: bia saiu da sala.")) {
    const batch = await chat.waitMessages(ana, "geral", cursor, 1000);
    assert(batch[0]);
    seen.push(...texts(batch[1].mensagens));
    cursor = batch[1].cursor;
  }
  assert.equal(refusalReason(chat.authorize("token-bia", "bia")), Reason.NOT_REGISTERED);
  assert.deepEqual(chat.listMembers("geral"), [true, ["ana"]]);
  await waitUntil(() => chat.roomCount === 1, "the empty room removed");
  assert.deepEqual(chat.listRooms(), [true, ["geral"]]);
  // The name is free again.
  assert.equal(chat.register("bia", "token-bia2")[0], true);
});

Deno.test("rooms and messages outlive the service on the same database; ids go on growing", async () => {
  const path = Deno.makeTempFileSync({ prefix: "rpc-chat-core-", suffix: ".db" });
  try {
    let last: number;
    {
      using first = chatOn({}, path);
      const ana = userOf(first.chat, "ana");
      await inGeral(first.chat, ana);
      await first.chat.send(ana, "geral", "guardada", null);
      last = first.store.lastId();
    }
    using again = chatOn({}, path);
    assert.deepEqual(again.chat.listRooms(), [true, ["geral"]]);
    const joined = await again.chat.join(userOf(again.chat, "ana"), "geral");
    assert(joined[0]);
    // ana was in the room when the service stopped: back in it with no new notice.
    assert.deepEqual(texts(joined[1].mensagens), ["SERVER: ana entrou na sala.", "ana: guardada"]);
    assert.equal(joined[1].cursor, last);
    await again.chat.send(authorized(again.chat, "ana"), "geral", "nova", null);
    assert.equal(again.store.lastId(), last + 1);
  } finally {
    Deno.removeSync(path);
  }
});

// ---------------------------------------------------------------------------
// The method table over HTTP, in-process
// ---------------------------------------------------------------------------

Deno.test("over the wire: refusals carry their reason only for a inProcessCall that sends X-Chat-Motivos: 1", async () => {
  using chatted = chatOn();
  await using server = servedChat(chatted.chat);
  const plain = server.client();
  const asking = server.client({ [REASONS_HEADER]: "1" });
  assert.deepEqual(await plain.call("registrar_usuario", ["ana"]), [
    true,
    "Usuário 'ana' registrado com sucesso.",
  ]);
  assert.deepEqual(await plain.call("registrar_usuario", ["ana"]), [
    false,
    "O nome 'ana' já está em uso. Escolha outro.",
  ]);
  assert.deepEqual(await asking.call("registrar_usuario", ["ana"]), [
    false,
    "O nome 'ana' já está em uso. Escolha outro.",
    "nome_em_uso",
  ]);
  // The session refusals, the ones a client must act on.
  assert.deepEqual((await asking.call<Result<never>>("sair_da_sala", ["ana"]))[2], "sessao_invalida");
  assert.deepEqual((await asking.call<Result<never>>("sair_da_sala", ["caio"]))[2], "nao_registrado");
  assert.equal((await plain.call<Result<never>>("sair_da_sala", ["caio"])).length, 2);
  // With a session of its own.
  await asking.call("registrar_usuario", ["bia"]);
  assert.deepEqual(await asking.call("entrar_na_sala", ["bia", "nenhuma"]), [
    false,
    "A sala 'nenhuma' não existe. Crie-a antes de entrar.",
    "sala_inexistente",
  ]);
  assert.deepEqual(await asking.call("listar_usuarios", ["nenhuma"]), [
    false,
    "A sala 'nenhuma' não existe.",
    "sala_inexistente",
  ]);
  assert.deepEqual(await plain.call("listar_usuarios", ["nenhuma"]), [false, "A sala 'nenhuma' não existe."]);
  // Inside system.multicall too, each call answered as its inProcessCall asked.
  const calls = [{ methodName: "criar_sala", params: [""] }, { methodName: "listar_salas", params: [] }];
  assert.deepEqual(await asking.call("system.multicall", [calls]), [
    [[false, "Nome de sala inválido: use de 1 a 32 caracteres.", "nome_invalido"]],
    [[true, []]],
  ]);
  assert.deepEqual(await plain.call("system.multicall", [calls]), [
    [[false, "Nome de sala inválido: use de 1 a 32 caracteres."]],
    [[true, []]],
  ]);
});

Deno.test("over the wire: a message is the original struct plus id, its timestamp a date", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  await using server = servedChat(chat);
  const ana = server.client({ [REASONS_HEADER]: "1" });
  const bia = server.client({ [REASONS_HEADER]: "1" });
  await ana.call("registrar_usuario", ["ana"]);
  await bia.call("registrar_usuario", ["bia"]);
  await ana.call("criar_sala", ["geral"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  await bia.call("entrar_na_sala", ["bia", "geral"]);
  await ana.call("enviar_mensagem", ["ana", "geral", "oi", null]);
  const [, received] = await bia.call<[true, ChatMessage[]]>("receber_mensagens", ["bia", "geral"]);
  const last = received.at(-1)!;
  assert.deepEqual(Object.keys(last).sort(), ["conteudo", "destino", "id", "origem", "timestamp", "tipo"]);
  assert.equal(last.tipo, "broadcast");
  assert.equal(last.destino, "todos");
  assert(last.timestamp instanceof Date);
  // The server's wall clock, as a naive dateTime carries it.
  assert(Math.abs(last.timestamp.getTime() - localWallClock(Date.now()).getTime()) < 5000);
});

Deno.test("the method table hands the very same frozen struct to every member who receives a message", async () => {
  using chatted = chatOn();
  const methods = chatMethods(chatted.chat);
  const run = (call: Call, method: string, ...params: unknown[]) => methods[method]!.run(call, params);
  const [ana, bia] = [inProcessCall(), inProcessCall()];
  await run(ana, "registrar_usuario", "ana");
  await run(bia, "registrar_usuario", "bia");
  await run(ana, "criar_sala", "geral");
  await run(ana, "entrar_na_sala", "ana", "geral");
  await run(bia, "entrar_na_sala", "bia", "geral");
  await run(ana, "enviar_mensagem", "ana", "geral", "oi", null);
  const last = async (call: Call, name: string) => {
    const [ok, messages] = await run(call, "receber_mensagens", name, "geral") as [boolean, ChatMessage[]];
    assert(ok);
    return messages.at(-1)!;
  };
  const forAna = await last(ana, "ana");
  assert.equal(forAna.conteudo, "oi");
  assert(Object.isFrozen(forAna));
  assert.equal(await last(bia, "bia"), forAna);
  const [, delivered] = await run(bia, "aguardar_mensagens", "bia", "geral", forAna.id! - 1, 0) as [
    boolean,
    { mensagens: ChatMessage[] },
  ];
  assert.equal(delivered.mensagens[0], forAna);
});

Deno.test("reads from the database: what a reader may see, by identity and index, however many private messages others have", async () => {
  const store = new MessageStore(":memory:");
  try {
    // Each end by its identity: `id-NAME`; a private message to or from bia is seen by the identity id-bia.
    const post = (origem: string, destino: string, conteudo: string) =>
      store.addMessage({
        room: "geral",
        tipo: destino === "todos" ? "broadcast" : "unicast",
        origem,
        destino,
        conteudo,
        timestamp: 0,
        fromId: `id-${origem}`,
        toId: destino === "todos" ? undefined : `id-${destino}`,
      }, () => {});
    const writes = [
      post("ana", "todos", "1 público"),
      post("ana", "caio", "2 ana para caio"),
      post("bia", "caio", "3 bia para caio"),
      post("caio", "bia", "4 caio para bia"),
      post("bia", "bia", "5 bia para si"),
      post("caio", "todos", "6 público"),
      post("ana", "caio", "7 ana para caio"),
    ];
    store.commit();
    await Promise.all(writes);
    const seen = (messages: { conteudo: string }[]) => messages.map((m) => m.conteudo);
    assert.deepEqual(seen(store.visibleAfter("geral", "id-bia", 0, 100)), [
      "1 público",
      "3 bia para caio",
      "4 caio para bia",
      "5 bia para si",
      "6 público",
    ]);
    assert.deepEqual(seen(store.visibleAfter("geral", "id-bia", 3, 2)), ["4 caio para bia", "5 bia para si"]);
    assert.deepEqual(seen(store.latestVisible("geral", "id-bia", 3)), [
      "4 caio para bia",
      "5 bia para si",
      "6 público",
    ]);
    assert.deepEqual(seen(store.latestVisible("geral", "id-ana", 10)), [
      "1 público",
      "2 ana para caio",
      "6 público",
      "7 ana para caio",
    ]);
    // The name is not the identity: whoever holds "bia" now, under another identity, sees only what is public.
    assert.deepEqual(seen(store.visibleAfter("geral", "bia", 0, 100)), ["1 público", "6 público"]);
    assert.deepEqual(seen(store.latestVisible("geral", "id-bia-2", 10)), ["1 público", "6 público"]);
  } finally {
    store.close();
  }
  // How SQLite runs those reads: each part through its index, never a scan of the room's messages.
  const db = new DatabaseSync(":memory:");
  try {
    db.exec(`CREATE TABLE messages (id INTEGER PRIMARY KEY, room TEXT, kind TEXT, sender TEXT, recipient TEXT,
      body TEXT, timestamp INTEGER, sender_id TEXT, recipient_id TEXT)`);
    db.exec(VISIBILITY_INDEXES);
    for (const sql of [VISIBLE_AFTER, LATEST_VISIBLE]) {
      const plan =
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all("geral", 0, "bia", 50) as { detail: string }[])
          .map((row) => row.detail);
      assert.ok(plan.some((d) => /USING (COVERING )?INDEX messages_public/.test(d)), plan.join("\n"));
      assert.ok(plan.some((d) => /USING (COVERING )?INDEX messages_to_identity/.test(d)), plan.join("\n"));
      assert.ok(plan.some((d) => /USING (COVERING )?INDEX messages_from_identity/.test(d)), plan.join("\n"));
      assert.ok(!plan.some((d) => /^SCAN messages\b/.test(d)), plan.join("\n"));
    }
  } finally {
    db.close();
  }
});

Deno.test("a member between two waits when the room is deleted still reads the deletion notice, once", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  const bia = userOf(chat, "bia");
  await inGeral(chat, ana, bia);
  const joined = await chat.join(bia, "geral");
  assert(joined[0]);
  // Bia is not waiting when ana deletes the room; her next wait comes after.
  assert.equal((await chat.deleteRoom(ana, "geral"))[0], true);
  const late = await chat.waitMessages(bia, "geral", joined[1].cursor, 0);
  assert(late[0], "the last words, not a refusal");
  assert.deepEqual(texts(late[1].mensagens), ["SERVER: Sala geral excluída por ana."]);
  assert.equal(refusalReason(await chat.waitMessages(bia, "geral", late[1].cursor, 0)), Reason.ROOM_MISSING);
});

Deno.test("a database made by the release before the look-alike rule: its rooms that collide keep working", async () => {
  // tests/testdata/chat_schema4.db: made by that release's server.ts (schema 4) driven by Python's xmlrpc.client:
  // rooms geral, Geral (by bia) and estudos; in geral a message and a private one from bia to ana.
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-release-" });
  try {
    await Deno.copyFile(new URL("../testdata/chat_schema4.db", import.meta.url), `${dir}/chat.db`);
    await using chat = await SqliteChat.open(`${dir}/chat.db`, {
      compat: false,
      sessionTtlMs: 60_000,
      roomTtlMs: 60_000,
      maxRate: 1000,
      log: silentLog,
    });
    assert.deepEqual(chat.listRooms(), [true, ["estudos", "geral", "Geral"]]);
    const ana = userOf(chat, "ana");
    const caio = userOf(chat, "caio");
    // Each by its exact name; a variant reaches the first of them (geral, older).
    const inGeral = await chat.join(ana, "geral");
    assert(inGeral[0]);
    assert.equal(inGeral[1].sala, "geral");
    assert(inGeral[1].mensagens.some((m) => m.conteudo === "olá, turma"));
    // The private message's ends were that release's registrations: nobody's now.
    assert(!inGeral[1].mensagens.some((m) => m.conteudo === "psiu, ana"));
    const inUpper = await chat.join(caio, "Geral");
    assert(inUpper[0]);
    assert.equal(inUpper[1].sala, "Geral");
    assert(inUpper[1].mensagens.some((m) => m.conteudo === "sala com G maiúsculo"));
    const variant = await chat.join(caio, "GERAL");
    assert(variant[0]);
    assert.equal(variant[1].sala, "geral");
    // New names follow the rule.
    assert.equal(refusalReason(await chat.createRoom("gERAL", "token-ana")), Reason.ROOM_EXISTS);
    assert.equal((await chat.createRoom("Estudos 2", "token-ana"))[0], true);
    await chat.close();
    // Its columns in English now (schema 5), its rows the same.
    const db = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
    try {
      const columns = (db.prepare("PRAGMA table_info(messages)").all() as { name: string }[]).map((c) =>
        c.name
      );
      assert.deepEqual(
        columns.filter((name) => !["id", "room", "timestamp", "notice"].includes(name)).sort(),
        [
          "body",
          "kind",
          "recipient",
          "recipient_id",
          "send_key",
          "sender",
          "sender_id",
        ],
      );
      // Its nine rows, and the join notices of this test's three joins.
      assert.equal((db.prepare("SELECT count(*) AS n FROM messages").get() as { n: number }).n, 12);
    } catch (error) {
      db.close();
      throw error;
    }
    db.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deliveryAfter: one frozen delivery for every reader while all is public; a private message is its readers' alone", () => {
  const message = (id: number, toId?: string): Message => ({
    id,
    room: "geral",
    tipo: toId ? "unicast" : "broadcast",
    origem: "ana",
    destino: toId ?? "TODOS",
    conteudo: `m${id}`,
    timestamp: 0,
    fromId: "id-ana",
    toId,
  });
  const recent = [message(1), message(2), message(3)];
  const forBia = deliveryAfter(recent, "id-bia", 1);
  assert.deepEqual(forBia, { mensagens: [recent[1], recent[2]], cursor: 3 });
  assert.equal(deliveryAfter(recent, "id-caio", 1), forBia, "the same object for another reader");
  assert(Object.isFrozen(forBia) && Object.isFrozen(forBia.mensagens));
  assert.deepEqual(deliveryAfter(recent, "id-bia", 3), { mensagens: [], cursor: 3 });
  recent.push(message(4));
  const later = deliveryAfter(recent, "id-bia", 1);
  assert.notEqual(later, forBia, "a new message: a new delivery");
  assert.deepEqual(later.mensagens.map((m) => m.id), [2, 3, 4]);
  recent.push(message(5, "id-caio"), message(6));
  const forCaio = deliveryAfter(recent, "id-caio", 4);
  assert.deepEqual(forCaio.mensagens.map((m) => m.id), [5, 6]);
  assert(!Object.isFrozen(forCaio), "a private message in it: this reader's own");
  assert.deepEqual(deliveryAfter(recent, "id-bia", 4), { mensagens: [recent[5]], cursor: 6 });
  assert.equal(deliveryAfter(recent, "id-bia", 5), deliveryAfter(recent, "id-dora", 5));
  const many = Array.from({ length: MAX_BATCH + 10 }, (_, i) => message(i + 1));
  const first = deliveryAfter(many, "id-bia", 0);
  assert.equal(first.mensagens.length, MAX_BATCH);
  assert.equal(first.cursor, MAX_BATCH);
  assert.equal(deliveryAfter(many, "id-caio", 0), first);
});
