/**
 * Several server instances on one Redis (`server.ts --store redis://...`):
 * the real programs, a real `redis-server` of each test's own on a free
 * port, one binder. Skipped, with the reason, where `redis-server` is not
 * installed.
 */

import assert from "node:assert/strict";
import {
  endpointUrl,
  Fault,
  PERMISSIONS,
  Reason,
  REASONS_HEADER,
  type Result,
  SEND_KEY_HEADER,
  XmlRpcClient,
  type XmlRpcValue,
} from "../../lib/mod.ts";
import { redisCommand, redisTest } from "../helpers/redis.ts";
import {
  assertCarriesOn,
  assertUsageError,
  clientOnEach,
  count,
  freePort,
  type Program,
  readAll,
  rejection,
  runPython,
  runScript,
  said,
  say,
  startBinder,
  startClient,
  startServer,
  waitUntil,
} from "../helpers/programs.ts";

/** A server instance on a Redis, in a directory of its own (its `chat_server.log`). */
interface Instance {
  program: Program;
  port: number;
  /** Its directory (its `chat_server.log`). */
  dir: string;
  /** `127.0.0.1:PORT`. */
  address: string;
  /** A new client of this instance with a session jar of its own (or a copy of `from`'s session). */
  client(from?: XmlRpcClient): XmlRpcClient;
}

async function startInstance(
  binder: { address: string },
  store: string,
  extraArgs: string[] = [],
): Promise<Instance & AsyncDisposable> {
  const server = await startServer(binder, ["--store", store, ...extraArgs], {
    permissions: PERMISSIONS.clusterServer,
  });
  return {
    ...server,
    client: (from) =>
      new XmlRpcClient(endpointUrl("127.0.0.1", server.port), {
        timeoutMs: 10_000,
        headers: { [REASONS_HEADER]: "1" },
        cookiesFrom: from,
      }),
  };
}

/** An answer that must be a success (the tests look at its payload). */
type Ok<T> = [true, T];

type Wire = { id: number; origem: string; destino: string; conteudo: string };
type Delivery = { mensagens: Wire[]; cursor: number };

/** A client of `instance` registered as `name`, in room `room` (created first when asked), and what joining gave. */
async function member(
  instance: Instance,
  name: string,
  room: string,
  options: { create?: boolean; from?: XmlRpcClient } = {},
): Promise<{ client: XmlRpcClient; joined: Delivery }> {
  const client = instance.client(options.from);
  if (!options.from) await client.call("registrar_usuario", [name]);
  if (options.create) await client.call("criar_sala", [room]);
  const [, joined] = await client.call<Ok<Delivery>>("entrar_na_sala", [name, room]);
  return { client, joined };
}

redisTest(
  "two instances on one Redis are one chat: sessions, names, rooms, members and live delivery",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url);
    await using two = await startInstance(binder, redis.url);

    const anaOnOne = one.client();
    assert.deepEqual((await anaOnOne.call<Result<string>>("registrar_usuario", ["ana"]))[0], true);
    // The name is the cluster's: the other instance refuses it.
    const [taken, , reason] = await two.client().call<[boolean, string, string]>("registrar_usuario", [
      "ana",
    ]);
    assert.deepEqual([taken, reason], [false, Reason.NAME_TAKEN]);
    // The session made on one works on the other.
    const anaOnTwo = two.client(anaOnOne);
    assert.deepEqual((await anaOnTwo.call<Result<string>>("manter_sessao", ["ana"]))[0], true);
    assert.deepEqual((await anaOnTwo.call<Result<string>>("criar_sala", ["geral"]))[0], true);
    assert.deepEqual((await anaOnOne.call<Result<string>>("criar_sala", ["geral"]))[2], Reason.ROOM_EXISTS);
    assert.deepEqual((await anaOnOne.call<Result<unknown>>("entrar_na_sala", ["ana", "geral"]))[0], true);

    const bia = two.client();
    await bia.call("registrar_usuario", ["bia"]);
    const [, joined] = await bia.call<Ok<{ usuarios: string[]; cursor: number }>>("entrar_na_sala", [
      "bia",
      "geral",
    ]);
    assert.deepEqual(joined.usuarios, ["ana", "bia"]);

    // bia waits on two; ana says something through one: the wait ends with it, long before its 20 s.
    const started = performance.now();
    const waiting = bia.call<Ok<Delivery>>("aguardar_mensagens", ["bia", "geral", joined.cursor, 20_000]);
    await waitUntil(() => performance.now() - started > 200, "the wait to be on its way");
    assert.deepEqual(await anaOnOne.call("enviar_mensagem", ["ana", "geral", "olá de um", null]), [
      true,
      "Mensagem enviada.",
    ]);
    const [, delivery] = await waiting;
    assert(performance.now() - started < 10_000, "woken by the message, not by its deadline");
    assert.deepEqual(delivery.mensagens.map((m) => `${m.origem}: ${m.conteudo}`), ["ana: olá de um"]);

    // A private message, through two, for bia only.
    await anaOnTwo.call("enviar_mensagem", ["ana", "geral", "psiu", "bia"]);
    const { client: caio } = await member(one, "caio", "geral");
    const seenByCaio = (await readAll(caio, "caio", "geral")).map((m) => m.conteudo);
    assert(!seenByCaio.includes("psiu") && seenByCaio.includes("olá de um"), String(seenByCaio));
    assert((await readAll(bia, "bia", "geral")).some((m) => m.conteudo === "psiu" && m.destino === "bia"));
    // Live, through the messages each instance keeps: caio's wait on one is not woken by a private message
    // for bia (it waits on), and ends with the public one after it; bia's wait on two gets the private one.
    const [, now] = await caio.call<Ok<Delivery>>("aguardar_mensagens", ["caio", "geral", 1 << 30, 0]);
    const caioWaits = caio.call<Ok<Delivery>>("aguardar_mensagens", ["caio", "geral", now.cursor, 20_000]);
    const biaWaits = bia.call<Ok<Delivery>>("aguardar_mensagens", ["bia", "geral", now.cursor, 20_000]);
    await anaOnTwo.call("enviar_mensagem", ["ana", "geral", "só para a bia", "bia"]);
    assert.deepEqual((await biaWaits)[1].mensagens.map((m) => m.conteudo), ["só para a bia"]);
    await anaOnTwo.call("enviar_mensagem", ["ana", "geral", "para todos", null]);
    assert.deepEqual((await caioWaits)[1].mensagens.map((m) => m.conteudo), ["para todos"]);

    // Every instance gives the same lists.
    for (const client of [one.client(), two.client()]) {
      assert.deepEqual(await client.call("listar_salas", []), [true, ["geral"]]);
      assert.deepEqual(await client.call("listar_usuarios", ["geral"]), [true, ["ana", "bia", "caio"]]);
    }

    // Leaving through one ends the name everywhere; the other instance can give it to someone new.
    await anaOnOne.call("sair_do_servico", ["ana"]);
    const [, , gone] = await anaOnTwo.call<[boolean, string, string]>("manter_sessao", ["ana"]);
    assert.deepEqual(gone, Reason.NOT_REGISTERED);
    assert.deepEqual((await two.client().call<Result<string>>("registrar_usuario", ["ana"]))[0], true);
  },
);

redisTest(
  "the rate limit is the cluster's: a user's burst spent on one instance is spent on the other",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url, ["--max-rate", "1"]);
    await using two = await startInstance(binder, redis.url, ["--max-rate", "1"]);
    const onOne = one.client();
    await onOne.call("registrar_usuario", ["ana"]);
    await onOne.call("criar_sala", ["geral"]);
    const onTwo = two.client(onOne);
    await onTwo.call("entrar_na_sala", ["ana", "geral"]);
    // A burst of twice the rate: two messages, one through each instance; the third is slowed on either.
    assert.deepEqual(
      (await onOne.call<Result<string>>("enviar_mensagem", ["ana", "geral", "um", null]))[0],
      true,
    );
    assert.deepEqual(
      (await onTwo.call<Result<string>>("enviar_mensagem", ["ana", "geral", "dois", null]))[0],
      true,
    );
    const [ok, , reason] = await onOne.call<[boolean, string, string]>("enviar_mensagem", [
      "ana",
      "geral",
      "três",
      null,
    ]);
    assert.deepEqual([ok, reason], [false, Reason.RATE_LIMITED]);
  },
);

redisTest("Python's xmlrpc.client registers on one instance and reads on the other", async (redis) => {
  await using binder = await startBinder();
  await using one = await startInstance(binder, redis.url, ["--compat"]);
  await using two = await startInstance(binder, redis.url, ["--compat"]);
  const ports = [String(one.port), String(two.port)];
  assert.deepEqual((await runPython(PYTHON_ACROSS, ports)).trim().split("\n"), [
    "True Usuário 'py' registrado com sucesso.",
    "False O nome 'py' já está em uso. Escolha outro.",
    "True ['py']",
    "olá do python",
  ]);
  // As the original client does it, with no cookie at all (--compat): one call on each instance in turn.
  assert.deepEqual((await runPython(PYTHON_ORIGINAL, ports)).trim().split("\n"), [
    "True Usuário 'orig' registrado com sucesso.",
    "True Sala 'antiga' criada com sucesso.",
    "True",
    "True Mensagem enviada.",
    "orig: do cliente original",
  ]);
});

/** The original client's calls, with no session, alternating between the two instances. */
const PYTHON_ORIGINAL = `
import sys, xmlrpc.client
one, two = (xmlrpc.client.ServerProxy("http://127.0.0.1:%s" % port, allow_none=True) for port in sys.argv[1:3])
print(*one.registrar_usuario("orig"))
print(*two.criar_sala("antiga"))
print(two.entrar_na_sala("orig", "antiga")[0])
print(*one.enviar_mensagem("orig", "antiga", "do cliente original", None))
last = two.receber_mensagens("orig", "antiga")[1][-1]
print("%s: %s" % (last["origem"], last["conteudo"]))
`;

/** Python's stdlib client, its session cookie carried from one instance to the other as a browser would. */
const PYTHON_ACROSS = `
import sys, xmlrpc.client
class Jar(xmlrpc.client.Transport):
    cookie = None
    def send_headers(self, connection, headers):
        if Jar.cookie: connection.putheader("Cookie", Jar.cookie)
        super().send_headers(connection, headers)
    def parse_response(self, response):
        if response.getheader("Set-Cookie"): Jar.cookie = response.getheader("Set-Cookie").split(";")[0]
        return super().parse_response(response)
one = xmlrpc.client.ServerProxy("http://127.0.0.1:%s" % sys.argv[1], transport=Jar(), allow_none=True)
two = xmlrpc.client.ServerProxy("http://127.0.0.1:%s" % sys.argv[2], transport=Jar(), allow_none=True)
print(*one.registrar_usuario("py"))
print(*xmlrpc.client.ServerProxy("http://127.0.0.1:%s" % sys.argv[2]).registrar_usuario("py"))
two.criar_sala("sala")
two.entrar_na_sala("py", "sala")
print(*one.listar_usuarios("sala"))
one.enviar_mensagem("py", "sala", "olá do python", None)
print(two.receber_mensagens("py", "sala")[1][-1]["conteudo"])
`;

redisTest(
  "kill -9 of an instance during a burst: every acknowledged message once, in order; clients move on",
  async (redis) => {
    await using binder = await startBinder(["--check-interval", "0.1", "--drop-after", "0.5"]);
    const one = await startInstance(binder, redis.url);
    try {
      await using two = await startInstance(binder, redis.url);
      const setup = two.client();
      await setup.call("registrar_usuario", ["sala-dona"]);
      await setup.call("criar_sala", ["geral"]);

      // Terminal clients: one on each instance (the binder hands them out in turn).
      await using clients = await clientOnEach(
        (name) => startClient(binder, ["--name", name, "--room", "geral"]),
        [one.address, two.address],
        "geral",
      );
      const moving = clients.on.get(one.address)!;
      const staying = clients.on.get(two.address)!;
      await say(moving, staying, "antes da queda");

      // Four senders, two on each instance, each numbering its messages; a sender whose instance dies goes on
      // through the other with the same session.
      const acknowledged = new Map(["s0", "s1", "s2", "s3"].map((name) => [name, [] as number[]]));
      let stop = false;
      const senders = [0, 1, 2, 3].map(async (n) => {
        const name = `s${n}`;
        let client = (n % 2 ? two : one).client();
        await client.call("registrar_usuario", [name]);
        await client.call("entrar_na_sala", [name, "geral"]);
        for (let i = 0; !stop; i++) {
          try {
            const [ok] = await client.call<Result<string>>("enviar_mensagem", [
              name,
              "geral",
              `${name} ${i}`,
              null,
            ]);
            if (ok) acknowledged.get(name)!.push(i);
          } catch {
            client = two.client(client);
          }
        }
      });
      await waitUntil(
        () => [...acknowledged.values()].every((sent) => sent.length >= 20),
        "a burst under way",
      );
      await one.program.stop("SIGKILL");
      const killedAt = Math.min(...[...acknowledged.values()].map((sent) => sent.length));
      await waitUntil(
        () => [...acknowledged.values()].every((sent) => sent.length >= killedAt + 20),
        "the burst to go on through the other instance",
        15_000,
      );
      stop = true;
      await Promise.all(senders);

      // In Redis: every acknowledged message, once, ids growing, each sender's in its order.
      const { client: reader } = await member(two, "leitor", "geral");
      const stored = await readAll<Wire>(reader, "leitor", "geral");
      const ids = stored.map((m) => m.id);
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
      assert.equal(new Set(ids).size, ids.length);
      for (const [name, sent] of acknowledged) {
        const numbers = stored.filter((m) => m.origem === name).map((m) => Number(m.conteudo.split(" ")[1]));
        // Each acknowledged one is there once; a send whose answer died with the instance may be there too.
        for (const i of sent) assert.equal(numbers.filter((n) => n === i).length, 1, `${name} ${i}`);
        assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `${name} in order`);
      }

      // The binder hands out only the live instance.
      const lookup = new XmlRpcClient(endpointUrl("127.0.0.1", binder.port));
      await waitUntil(async () => {
        const answers = await Promise.all(
          [0, 1, 2].map(() => lookup.call<Result<{ porta: number }>>("buscar_procedimento", ["ChatService"])),
        );
        return answers.every(([ok, where]) => ok && where.porta === two.port);
      }, "the binder to drop the dead instance");

      // The terminal client of the dead instance carries on through the other, same session (it never
      // registers again: its session lives in Redis), and sees what was said meanwhile, once.
      await assertCarriesOn(moving, staying, [[moving, "antes da queda"]]);
    } finally {
      // Its directory goes too (killed already, unless the test failed before).
      await one[Symbol.asyncDispose]();
    }
  },
);

redisTest(
  "Redis stopped under the servers: calls refused with a clear fault, then service again, nothing lost",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url);
    const { client: ana } = await member(one, "ana", "geral", { create: true });
    for (let i = 0; i < 20; i++) await ana.call("enviar_mensagem", ["ana", "geral", `antes ${i}`, null]);
    await using caio = startClient(binder, ["--name", "caio", "--room", "geral"]);
    await caio.waitForLine(/Você está na sala geral/);

    await redis.stop();
    // Once the server knows (a call on its way when Redis went may not know whether it was done: -32603).
    await one.program.waitForLine(/Redis indisponível em/);
    // A line typed while Redis is away is kept, and sent once the server can store it.
    await caio.write("durante a queda\n");
    await caio.waitForLine(/^\* O servidor não pôde atender: O servidor perdeu o contato com o Redis/);
    const fault = await rejection(
      () => ana.call("enviar_mensagem", ["ana", "geral", "durante", null]),
      Fault,
    );
    assert.equal(fault.code, -32001);
    assert.match(fault.message, /Redis/);
    assert.match(fault.message, /nada foi feito/);
    assert.equal((await rejection(() => one.client().call("listar_salas", []), Fault)).code, -32001);

    await redis.restart();
    // The server reconnects by itself.
    await waitUntil(async () => {
      try {
        return (await ana.call<Result<string>>("enviar_mensagem", ["ana", "geral", "depois", null]))[0];
      } catch {
        return false;
      }
    }, "the server to reach Redis again");
    await caio.waitForLine(said("caio: durante a queda"), 15_000);
    const texts = (await readAll(ana, "ana", "geral")).map((m) => m.conteudo);
    const spoken = texts.filter((t) => !t.endsWith("entrou na sala."));
    assert.deepEqual(spoken.slice(0, 20), Array.from({ length: 20 }, (_, i) => `antes ${i}`));
    assert.deepEqual(spoken.slice(20).sort(), ["depois", "durante a queda"]);
    assert.equal(count(caio, said("caio: durante a queda")), 1, caio.output);
    // Said once, however many times it asked again, and said when it was over.
    assert.equal(count(caio, /^\* O servidor não pôde atender/), 1, caio.output);
    await caio.waitForLine(/^\* O servidor voltou a atender\.$/);
  },
);

redisTest("the sweep runs once for the cluster: a silent session leaves with one notice", async (redis) => {
  await using binder = await startBinder();
  const flags = ["--session-ttl", "1", "--room-ttl", "1"];
  await using one = await startInstance(binder, redis.url, flags);
  await using two = await startInstance(binder, redis.url, flags);
  const ana = one.client();
  await ana.call("registrar_usuario", ["ana"]);
  await ana.call("criar_sala", ["geral"]);
  await ana.call("criar_sala", ["vazia"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  const { client: bia, joined } = await member(two, "bia", "geral");
  // bia keeps waiting (a wait is a sign of life); ana says nothing more.
  let cursor = joined.cursor;
  const notices: string[] = [];
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && !notices.includes("ana saiu da sala.")) {
    const [, page] = await bia.call<Ok<Delivery>>("aguardar_mensagens", ["bia", "geral", cursor, 500]);
    notices.push(...page.mensagens.map((m) => m.conteudo));
    cursor = page.cursor;
  }
  assert.deepEqual(notices, ["ana saiu da sala."]);
  // Two more sweeps' time: no second notice, and the empty room is gone everywhere.
  await waitUntil(
    async () => (await two.client().call<Result<string[]>>("listar_salas", []))[1].length === 1,
    "the idle room to go",
  );
  const [, later] = await bia.call<Ok<Delivery>>("aguardar_mensagens", ["bia", "geral", cursor, 1500]);
  assert.deepEqual(later.mensagens, []);
  assert.deepEqual(await one.client().call("listar_salas", []), [true, ["geral"]]);
  assert.deepEqual(await one.client().call("listar_usuarios", ["geral"]), [true, ["bia"]]);
});

Deno.test("server --store: a bad URL, or --store with --db, is one usage line; an unreachable Redis one line, exit 1", async () => {
  const permissions = [...PERMISSIONS.clusterServer];
  await assertUsageError(
    "server.ts",
    permissions,
    ["--store", "http://x"],
    /--store deve ser redis:\/\/HOST:PORTA/,
  );
  await assertUsageError(
    "server.ts",
    permissions,
    ["--store", "redis://127.0.0.1:1", "--db", "x.db"],
    /--store e --db/,
  );
  const dir = await Deno.makeTempDir();
  try {
    const port = freePort();
    const log = `${dir}/chat_server.log`;
    const { code, stderr } = await runScript(
      "server.ts",
      ["--allow-net", "--allow-env=REDIS_DEBUG_MAINTENANCE", `--allow-write=${log}`],
      ["--store", `redis://127.0.0.1:${port}`, "--port", "0", "--log", log],
    );
    assert.equal(code, 1, stderr);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.match(stderr, /não foi possível conectar ao Redis em redis:\/\/127\.0\.0\.1:\d+/);
    // Without the one variable the Redis client reads: said before anything, exit 2.
    const denied = await runScript("server.ts", ["--allow-net", `--allow-write=${log}`], [
      "--store",
      `redis://127.0.0.1:${port}`,
      "--port",
      "0",
      "--log",
      log,
    ]);
    assert.equal(denied.code, 2, denied.stderr);
    assert.match(denied.stderr, /^server\.ts: falta a permissão --allow-env=REDIS_DEBUG_MAINTENANCE: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// What a review of the cluster found, kept found
// ---------------------------------------------------------------------------

redisTest(
  "a member waiting on another instance gets a room's deletion notice at once, and once",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url);
    await using two = await startInstance(binder, redis.url);
    const { client: ana } = await member(one, "ana", "geral", { create: true });
    const { client: bia, joined } = await member(two, "bia", "geral");
    const started = performance.now();
    const waiting = bia.call<Ok<Delivery>>("aguardar_mensagens", ["bia", "geral", joined.cursor, 20_000]);
    await waitUntil(() => performance.now() - started > 200, "the wait to be on its way");
    await ana.call("excluir_sala", ["ana", "geral"]);
    const [, delivery] = await waiting;
    assert(performance.now() - started < 10_000, "woken by the deletion, not by its deadline");
    assert.deepEqual(delivery.mensagens.map((m) => m.conteudo), ["Sala geral excluída por ana."]);
    const [ok, , reason] = await bia.call<[boolean, unknown, string]>("aguardar_mensagens", [
      "bia",
      "geral",
      delivery.cursor,
      0,
    ]);
    assert.deepEqual([ok, reason], [false, Reason.ROOM_MISSING]);
  },
);

redisTest(
  "--max-waits: counted once the session is proved, and held for waits that come together",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url, ["--max-waits", "2"]);
    const { client: bia, joined } = await member(one, "bia", "geral", { create: true });
    const started = performance.now();
    let ended = 0;
    const waits = Array.from(
      { length: 12 },
      () =>
        one.client(bia).call("aguardar_mensagens", ["bia", "geral", joined.cursor, 4000]).then(() => ended++),
    );
    // Ten of twelve are ended (answered empty) as newer ones come: two stay.
    await waitUntil(() => ended === 10, "all but two waits to end");
    // Someone with no session asks as bia: refused, and her two waits go on.
    const [ok, , reason] = await one.client().call<[boolean, unknown, string]>("aguardar_mensagens", [
      "bia",
      "geral",
      0,
      4000,
    ]);
    assert.deepEqual([ok, reason], [false, Reason.SESSION_INVALID]);
    await Promise.all(waits);
    assert(performance.now() - started > 3000, "the last two waited their time");
    assert.equal(ended, 12);
  },
);

redisTest("the Redis password never shows: not in faults, not in the log", async (redis) => {
  await redisCommand(redis.url, "CONFIG", "SET", "requirepass", "SEGREDO-123");
  const url = redis.url.replace("redis://", "redis://:SEGREDO-123@");
  await using binder = await startBinder();
  await using one = await startInstance(binder, url);
  const ana = one.client();
  await ana.call("registrar_usuario", ["ana"]);
  await redis.stop();
  await one.program.waitForLine(/Redis indisponível em/);
  const fault = await rejection(() => ana.call("manter_sessao", ["ana"]), Fault);
  assert.match(fault.message, /Redis em redis:\/\/127\.0\.0\.1:\d+;/);
  assert.equal(one.program.lines.filter((line) => line.includes("SEGREDO")).length, 0, one.program.output);
  const log = await Deno.readTextFile(`${one.dir}/chat_server.log`).catch(() => "");
  assert(!log.includes("SEGREDO"), log);
});

redisTest(
  "a Redis that stops answering: a call ends within 5 s with a fault that says the outcome is unknown",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url);
    const ana = one.client();
    await ana.call("registrar_usuario", ["ana"]);
    Deno.kill(redis.pid, "SIGSTOP");
    try {
      const started = performance.now();
      const fault = await rejection(() => ana.call("manter_sessao", ["ana"]), Fault);
      assert(performance.now() - started < 8000, "answered by the server's own timeout");
      assert.equal(fault.code, -32603);
      assert.match(fault.message, /não se sabe se foi feito/);
    } finally {
      Deno.kill(redis.pid, "SIGCONT");
    }
    await waitUntil(
      async () => (await ana.call<Result<string>>("manter_sessao", ["ana"]))[0],
      "service again",
    );
  },
);

redisTest(
  "refusals come in the SQLite chat's order (the session, the room, the recipient, then the text)",
  async (redis) => {
    await using binder = await startBinder();
    await using sqlite = await startServer(binder, ["--compat"]);
    await using one = await startInstance(binder, redis.url, ["--compat"]);
    const cases: [string, XmlRpcValue[]][] = [
      ["enviar_mensagem", ["ninguem", "geral", " ", null]],
      ["enviar_mensagem", ["ana", "nao-existe", " ", null]],
      ["enviar_privada", ["ana", "fantasma", " "]],
      ["enviar_privada", ["ninguem", "ana", ""]],
      ["criar_sala", ["x".repeat(40)]],
    ];
    const answers = async (port: number) => {
      const client = new XmlRpcClient(endpointUrl("127.0.0.1", port), { headers: { [REASONS_HEADER]: "1" } });
      await client.call("registrar_usuario", ["ana"]);
      const stale = new XmlRpcClient(endpointUrl("127.0.0.1", port), {
        headers: { [REASONS_HEADER]: "1", cookie: "sessao=velha" },
      });
      const said = [];
      for (const [method, params] of cases) said.push(await client.call(method, params));
      said.push(await stale.call("criar_sala", ["x".repeat(40)]));
      return said;
    };
    assert.deepEqual(await answers(one.port), await answers(sqlite.port));
  },
);

redisTest(
  "a send key is the cluster's: the same message sent again through another instance is stored once",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url);
    await using two = await startInstance(binder, redis.url);
    const { client: onOne } = await member(one, "ana", "geral", { create: true });
    const onTwo = two.client(onOne);
    const keyed = { headers: { [SEND_KEY_HEADER]: "chave-1" } };
    for (const client of [onOne, onTwo, onOne]) {
      assert.deepEqual(await client.call("enviar_mensagem", ["ana", "geral", "uma vez", null], keyed), [
        true,
        "Mensagem enviada.",
      ]);
    }
    await onTwo.call("enviar_privada", ["ana", "ana", "psiu"], { headers: { [SEND_KEY_HEADER]: "chave-2" } });
    await onOne.call("enviar_privada", ["ana", "ana", "psiu"], { headers: { [SEND_KEY_HEADER]: "chave-2" } });
    const said = (await readAll(onTwo, "ana", "geral")).filter((m) => m.origem === "ana").map((m) =>
      m.conteudo
    );
    assert.deepEqual(said, ["uma vez", "psiu"]);
  },
);

redisTest(
  "40 lines pasted into cliente.ts on a Redis-backed server: past the rate limit, all 40 stored, once each",
  async (redis) => {
    await using binder = await startBinder();
    await using one = await startInstance(binder, redis.url);
    const { client: bia } = await member(one, "bia", "geral", { create: true });
    await using ana = startClient(binder, ["--name", "ana", "--room", "geral"]);
    await ana.waitForLine(/^\* Você está na sala geral\./);
    // One write, as a paste arrives: four times the burst the default rate (10/s) allows.
    const lines = Array.from({ length: 40 }, (_, i) => `linha ${i + 1}`);
    await ana.write(lines.map((line) => `${line}\n`).join(""));
    await ana.waitForLine(said("ana: linha 40"), 20_000);
    const stored = (await readAll(bia, "bia", "geral")).filter((m) => m.origem === "ana").map((m) =>
      m.conteudo
    );
    assert.deepEqual(stored, lines);
  },
);
