/**
 * The red team's attacks on the chat server, each
 * run against the real program (a subprocess with the documented permissions)
 * and answered: the figures in the assertions are the counts the attack got
 * before and gets now. The cores of the same rules are tested in-process in
 * chat_limits_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type ChatMessage,
  DatabaseSync,
  endpointUrl,
  Reason,
  REASONS_HEADER,
  type Result,
  XmlRpcClient,
} from "../../lib/mod.ts";
import { readAll, runScript, SERVER_PERMISSIONS, startServer, waitUntil } from "../helpers/programs.ts";

type Delivery = { mensagens: ChatMessage[]; cursor: number };
type Joined = Delivery & { usuarios: string[] };

/** A caller that asks for the reasons of refusals, with a session jar of its own. */
function clientOf(server: { port: number }): XmlRpcClient {
  return new XmlRpcClient(endpointUrl("127.0.0.1", server.port), {
    timeoutMs: 15_000,
    headers: { [REASONS_HEADER]: "1" },
  });
}

/** A caller registered as `name`. */
async function user(server: { port: number }, name: string): Promise<XmlRpcClient> {
  const client = clientOf(server);
  const registered = await client.call<Result<string>>("registrar_usuario", [name]);
  assert.equal(registered[0], true, `register ${name}: ${registered[1]}`);
  return client;
}

/** The reason of a result that must be a refusal. */
function reason(result: Result<unknown>): string | undefined {
  assert.equal(result[0], false, `expected a refusal, got ${JSON.stringify(result)}`);
  return result[2];
}

function privateOnes(messages: ChatMessage[]): ChatMessage[] {
  return messages.filter((m) => m.tipo === "unicast");
}

Deno.test("name reuse: a new holder of a name reads none of the old holder's private messages and deletes none of their rooms", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-reuse-" });
  try {
    const args = ["--max-rate", "1000"];
    {
      await using server = await startServer(undefined, args, { dir });
      const ana = await user(server, "ana");
      const bia = await user(server, "bia");
      assert.equal((await bia.call<Result<string>>("criar_sala", ["da bia"]))[0], true);
      assert.equal((await ana.call<Result<string>>("criar_sala", ["geral"]))[0], true);
      await ana.call("entrar_na_sala", ["ana", "geral"]);
      await bia.call("entrar_na_sala", ["bia", "geral"]);
      const sends = Array.from(
        { length: 200 },
        (_, i) => ana.call<Result<string>>("enviar_mensagem", ["ana", "geral", `segredo ${i}`, "bia"]),
      );
      assert.ok((await Promise.all(sends)).every(([ok]) => ok));
      await ana.call("enviar_mensagem", ["ana", "geral", "público", null]);
      // The real bia reads all 200.
      assert.equal(privateOnes(await readAll(bia, "bia", "geral")).length, 200);

      // Attack 1: bia leaves the service; mallory takes the name at once.
      assert.equal((await bia.call<Result<string>>("sair_do_servico", ["bia"]))[0], true);
      const mallory = await user(server, "bia");
      const [, joined] = await mallory.call<[true, Joined]>("entrar_na_sala", ["bia", "geral"]);
      assert.equal(privateOnes(joined.mensagens).length, 0, "entrar_na_sala's history");
      assert.equal(privateOnes(await readAll(mallory, "bia", "geral")).length, 0, "aguardar_mensagens");
      const [, recent] = await mallory.call<[true, ChatMessage[]]>("receber_mensagens", ["bia", "geral"]);
      assert.equal(privateOnes(recent).length, 0, "receber_mensagens");
      assert.ok((await readAll(mallory, "bia", "geral")).some((m) => m.conteudo === "público"));
      assert.equal(reason(await mallory.call("excluir_sala", ["bia", "da bia"])), Reason.NOT_CREATOR);
      // What mallory sends privately is hers; ana's to the new bia too.
      await ana.call("enviar_mensagem", ["ana", "geral", "para a nova bia", "bia"]);
      assert.deepEqual(
        privateOnes(await readAll(mallory, "bia", "geral")).map((m) => m.conteudo),
        ["para a nova bia"],
      );
    }
    {
      // Attack 2: a restart on the same database frees every name.
      await using server = await startServer(undefined, args, { dir });
      const mallory = await user(server, "bia");
      assert.equal((await mallory.call<[true, Joined]>("entrar_na_sala", ["bia", "geral"]))[0], true);
      assert.equal(privateOnes(await readAll(mallory, "bia", "geral")).length, 0, "after a restart");
      assert.equal(reason(await mallory.call("excluir_sala", ["bia", "da bia"])), Reason.NOT_CREATOR);
    }
    const db = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
    try {
      // Stored by identity: 201 private messages, each with both ends' identities, and no two bias alike.
      const rows = db.prepare(
        "SELECT count(*) AS n, count(DISTINCT recipient_id) AS bias FROM messages WHERE kind = 'unicast'",
      ).get() as { n: number; bias: number };
      assert.deepEqual({ ...rows }, { n: 201, bias: 2 });
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("switching rooms as fast as answered stores at most the rate's notices; registrations from one address are paced", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-switch-" });
  try {
    let seconds: number;
    {
      await using server = await startServer(undefined, ["--max-rate", "10"], { dir });
      const ana = await user(server, "ana");
      for (const room of ["a", "b"]) await ana.call("criar_sala", [room]);
      const started = Date.now();
      const reasons = new Set<string>();
      // The attack: from room to room as fast as answered, for a second (it stored ~490 notices).
      for (let i = 0; Date.now() - started < 1000; i++) {
        const result = await ana.call<Result<Joined>>("entrar_na_sala", ["ana", i % 2 ? "a" : "b"]);
        if (!result[0]) reasons.add(result[2]!);
      }
      seconds = (Date.now() - started) / 1000;
      assert.deepEqual([...reasons], [Reason.RATE_LIMITED]);
      await registrationsPaced(server);
    }
    const db = new DatabaseSync(`${dir}/chat.db`, { readOnly: true });
    try {
      const { n } = db.prepare("SELECT count(*) AS n FROM messages WHERE sender = 'SERVER'").get() as {
        n: number;
      };
      // A burst of 20 changes (the two creations took 2 of them) and 10 a second: a join and a leave notice
      // each, but the first join's.
      const most = 2 * (20 - 2 + Math.ceil(10 * seconds));
      assert.ok(n <= most && n >= 20, `${n} notices in ${seconds} s (at most ${most})`);
    } finally {
      db.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Registrations from one address: 60 as fast as answered, a burst of 20 and 10 a second pass. */
async function registrationsPaced(server: { port: number }): Promise<void> {
  const started = Date.now();
  const registrations = [];
  for (let i = 0; i < 60; i++) {
    registrations.push(await clientOf(server).call<Result<string>>("registrar_usuario", [`u${i}`]));
  }
  const passed = registrations.filter(([ok]) => ok).length;
  const seconds = (Date.now() - started) / 1000;
  // ana's registration took one token of the burst.
  assert.ok(passed <= 20 - 1 + Math.ceil(10 * seconds), `${passed} registrations in ${seconds} s`);
  assert.ok(registrations.filter(([ok]) => !ok).every((r) => r[2] === Reason.RATE_LIMITED));
  assert.ok(registrations.some(([ok]) => !ok));
}

Deno.test("caps: users, rooms, rooms per creator, rooms without a session, waits per user, clipped names", async () => {
  await using server = await startServer(undefined, [
    "--max-users",
    "3",
    "--max-rooms",
    "3",
    "--max-rooms-per-user",
    "2",
    "--max-waits",
    "2",
  ]);
  const ana = await user(server, "ana");
  const bia = await user(server, "bia");
  await user(server, "caio");
  const [, full, fullWhy] = await clientOf(server).call<Result<string>>("registrar_usuario", ["dani"]);
  assert.equal(fullWhy, Reason.LIMIT_REACHED);
  assert.equal(full, "O servidor está cheio: no máximo 3 usuários. Tente mais tarde.");

  // Without --compat a room takes a session: the attack created them without one.
  assert.equal(reason(await clientOf(server).call("criar_sala", ["anônima"])), Reason.SESSION_INVALID);
  assert.equal((await ana.call<Result<string>>("criar_sala", ["a1"]))[0], true);
  assert.equal((await ana.call<Result<string>>("criar_sala", ["a2"]))[0], true);
  const [, perUser, perUserWhy] = await ana.call<Result<string>>("criar_sala", ["a3"]);
  assert.equal(perUserWhy, Reason.LIMIT_REACHED);
  assert.match(perUser, /Você já criou 2 salas/);
  assert.equal((await bia.call<Result<string>>("criar_sala", ["b1"]))[0], true);
  assert.equal(reason(await bia.call("criar_sala", ["b2"])), Reason.LIMIT_REACHED);
  // listar_salas holds at most --max-rooms names.
  assert.deepEqual(await ana.call("listar_salas"), [true, ["a1", "a2", "b1"]]);
  // A deleted room frees its place and its creator's.
  assert.equal((await ana.call<Result<string>>("excluir_sala", ["ana", "a2"]))[0], true);
  assert.equal((await ana.call<Result<string>>("criar_sala", ["a3"]))[0], true);

  // Waits: a third one ends the oldest at once, empty; the attack held 100,000.
  const [, joined] = await ana.call<[true, Joined]>("entrar_na_sala", ["ana", "a1"]);
  const waits = [0, 1].map(() =>
    ana.call<[true, Delivery]>("aguardar_mensagens", ["ana", "a1", joined.cursor, 10_000])
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  const started = Date.now();
  const third = ana.call<[true, Delivery]>("aguardar_mensagens", ["ana", "a1", joined.cursor, 10_000]);
  // The two first waits race to the server: the oldest is whichever it took first.
  const [first, oldest] = await Promise.race(
    waits.map((wait, n) => wait.then((answer) => [n, answer] as const)),
  );
  assert.ok(Date.now() - started < 2000, "the oldest wait answered at once");
  assert.deepEqual(oldest, [true, { mensagens: [], cursor: joined.cursor }]);
  await ana.call("enviar_mensagem", ["ana", "a1", "acorda", null]);
  for (const wait of [waits[1 - first]!, third]) {
    const [, batch] = await wait;
    assert.deepEqual(batch.mensagens.map((m) => m.conteudo), ["acorda"]);
  }

  // A megabyte of name is looked up and quoted clipped.
  const huge = "x".repeat(1_000_000);
  for (
    const [method, params] of [
      ["entrar_na_sala", [huge, "a1"]],
      ["entrar_na_sala", ["ana", huge]],
      ["listar_usuarios", [huge]],
      ["enviar_privada", ["ana", huge, "oi"]],
      ["registrar_usuario", [huge]],
      ["criar_sala", [huge]],
    ] as const
  ) {
    const [ok, message] = await ana.call<Result<string>>(method, [...params]);
    assert.equal(ok, false, method);
    assert.ok(message.length < 200, `${method}: ${message.length} characters`);
  }
  await waitUntil(async () => (await Deno.stat(`${server.dir}/chat_server.log`)).size > 0, "the log");
  assert.ok((await Deno.stat(`${server.dir}/chat_server.log`)).size < 10_000);
});

Deno.test("look-alike and invisible names are refused with nome_invalido; real names of every script pass", async () => {
  await using server = await startServer(undefined, ["--max-rate", "1000"]);
  const attacks: [string, RegExp][] = [
    ["S\u0395RVER", /imita um nome reservado/], // Greek Epsilon
    ["\u0405ERVER", /imita um nome reservado/], // Cyrillic Dze
    ["SERVE\u0280", /imita um nome reservado/], // small capital R
    ["\uff33\uff25\uff32\uff36\uff25\uff32", /imita um nome reservado/], // fullwidth
    ["S.E.R.V.E.R", /imita um nome reservado/],
    ["t\u043ed\u043es", /imita um nome reservado/], // Cyrillic o
    ["T0D0S", /imita um nome reservado/],
    ["ana\u200b", /invisíveis/],
    ["\u200d", /invisíveis/],
    ["\u3164", /invisíveis/], // Hangul filler
    ["a\u034fb", /invisíveis/], // combining grapheme joiner
    ["\u2800", /letras, números/], // braille blank
    ["a\u0301\u0301\u0301", /acentos/],
    ["\u0301\u0301", /acentos/],
    ["ana -> vic", /setas/],
    ["ana \u2192 vic", /setas/],
    ["ana\u2028vic", /controle/],
    ["ana  vic", /espaços simples/],
    ["ana, vic", /letras, números/],
    ["ana\u00a0vic", /letras, números/],
  ];
  const client = clientOf(server);
  for (const [name, text] of attacks) {
    const [ok, message, why] = await client.call<Result<string>>("registrar_usuario", [name]);
    assert.equal(ok, false, JSON.stringify(name));
    assert.equal(why, Reason.NAME_INVALID, JSON.stringify(name));
    assert.match(message, text, JSON.stringify(name));
  }
  assert.equal(reason(await client.call("registrar_usuario", ["Server"])), Reason.NAME_RESERVED);
  for (
    const name of [
      "João",
      "ana maria",
      "o'neil",
      "bia (casa)",
      "名前",
      "Ελένη",
      "Сергей",
      "Nguyễn",
      "d'Ávila",
    ]
  ) {
    const [ok, message] = await clientOf(server).call<Result<string>>("registrar_usuario", [name]);
    assert.equal(ok, true, `${name}: ${message}`);
  }
  // Names are kept in NFC: the same name decomposed is the same name.
  assert.equal(reason(await clientOf(server).call("registrar_usuario", ["Joa\u0303o"])), Reason.NAME_TAKEN);
  const joao = clientOf(server);
  await joao.call("registrar_usuario", ["joao"]);
  // Rooms: the same policy, with a text about rooms.
  const [, roomMessage, roomWhy] = await joao.call<Result<string>>("criar_sala", ["geral\u200b"]);
  assert.equal(roomWhy, Reason.NAME_INVALID);
  assert.match(roomMessage, /Nome de sala inválido/);
  // English callers get it in English.
  const english = new XmlRpcClient(endpointUrl("127.0.0.1", server.port), {
    headers: { "accept-language": "en" },
  });
  assert.deepEqual(await english.call("registrar_usuario", ["S\u0395RVER"]), [
    false,
    "The name 'S\u0395RVER' imitates a reserved name (SERVER, todos). Choose another.",
  ]);
});

Deno.test("the caps are flags: in --help, checked, and in the log at start", async () => {
  const help = await runScript("server.ts", SERVER_PERMISSIONS, ["--help"]);
  for (const flag of ["--max-rate", "--max-users", "--max-rooms", "--max-rooms-per-user", "--max-waits"]) {
    assert.match(help.stdout, new RegExp(`${flag} N`), flag);
  }
  for (const [flag, value] of [["--max-users", "0"], ["--max-waits", "1.5"], ["--max-rooms", "x"]]) {
    const { code, stderr } = await runScript("server.ts", SERVER_PERMISSIONS, [flag!, value!]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, new RegExp(`${flag} deve ser um inteiro`));
  }
  await using server = await startServer(undefined, ["--max-users", "7"]);
  await waitUntil(
    async () =>
      /Limites: 7 usuários, 1000 salas, 20 salas por criador, 4 esperas por usuário, 10 mensagens por segundo/
        .test(
          await Deno.readTextFile(`${server.dir}/chat_server.log`),
        ),
    "the limits in the log",
  );
});
