/**
 * The client's session logic in-process: {@linkcode ChatSession} with a
 * {@linkcode ChatView} that records what it would show, against a real
 * {@linkcode SqliteChat} and a real {@linkcode Binder}, each served by the
 * real HTTP handler on a loopback port of this process. Fast, beside the
 * end-to-end tests of cliente_test.ts, which run the program itself.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Binder, binderMethods } from "../../lib/mod.ts";
import { type ChatMessage, Fault, FaultCode, type MethodTable } from "../../lib/mod.ts";
import {
  ChatSession,
  type ChatView,
  formatMessage,
  type NoticeKind,
  type SessionOptions,
  TEXTS,
} from "../../lib/mod.ts";
import { chatMethods } from "../../lib/mod.ts";
import { chatOn, serveMethods } from "../helpers/core.ts";
import { freePort, silentLog, waitUntil } from "../helpers/programs.ts";

/** What a session showed, line by line: messages as the terminal prints them, notices with their kind. */
class Screen implements ChatView {
  readonly lines: string[] = [];
  readonly rooms: (string | null)[] = [];

  message(message: ChatMessage): void {
    this.lines.push(formatMessage(message).replace(/^\[\d\d:\d\d:\d\d\] /, ""));
  }

  notice(text: string, kind: NoticeKind = "info"): void {
    this.lines.push(`${kind}: ${text}`);
  }

  /** Each change of the rate limit's hold, in order. */
  readonly throttles: boolean[] = [];

  throttled(waiting: boolean): void {
    if (this.throttles.at(-1) !== waiting) this.throttles.push(waiting);
  }

  roomChanged(room: string | null): void {
    this.rooms.push(room);
  }

  /** Waits until a line is shown. */
  async shows(line: string | RegExp): Promise<void> {
    const matches = (shown: string) => typeof line === "string" ? shown === line : line.test(shown);
    await waitUntil(() => this.lines.some(matches), `${line} in\n${this.lines.join("\n")}`, 5000);
  }

  count(line: string): number {
    return this.lines.filter((shown) => shown === line).length;
  }
}

/** A chat service registered in a binder, both in this process; sessions that quit on disposal. */
function chatWorld(
  options: Parameters<typeof chatOn>[0] = {},
  methods: (table: MethodTable) => MethodTable = (table) => table,
) {
  const core = chatOn(options);
  const chat = core.chat;
  const chatServer = serveMethods(methods(chatMethods(chat)));
  const binder = new Binder({
    checkIntervalMs: 3_600_000,
    dropAfterMs: 3_600_000,
    probeTimeoutMs: 1000,
    log: silentLog,
  });
  binder.register("ChatService", "127.0.0.1", chatServer.addr.port);
  const binderServer = serveMethods(binderMethods(binder));
  const sessions: ChatSession[] = [];
  return {
    chat,
    binder,
    chatServer,
    binderAddress: { host: "127.0.0.1", port: binderServer.addr.port },
    address: `127.0.0.1:${chatServer.addr.port}`,
    /** A session that connected and registered `name`, with the screen it shows on. */
    async user(name: string, options: Partial<SessionOptions> = {}): Promise<[ChatSession, Screen]> {
      const screen = new Screen();
      const session = new ChatSession({
        binders: [{ host: "127.0.0.1", port: binderServer.addr.port }],
        view: screen,
        texts: TEXTS.pt,
        retryMs: 50,
        attempts: 3,
        waitMs: 5000,
        callTimeoutMs: 5000,
        ...options,
      });
      sessions.push(session);
      await session.connect();
      assert.equal(await session.register(name), true, screen.lines.join("\n"));
      return [session, screen];
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(sessions.map((session) => session.quit()));
      // Ends the waits still on the server, so that it shuts down at once.
      chat.stop();
      await chatServer.shutdown();
      await binderServer.shutdown();
      core[Symbol.dispose]();
    },
  };
}

Deno.test("a session finds the service, registers, creates and joins a room, and chats live", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana");
  assert.deepEqual(anaSees.lines, [
    `info: Conectado ao ChatService em ${world.address}.`,
    "info: Olá, ana! Digite /ajuda para ver os comandos.",
  ]);
  assert.equal(ana.live, true);
  assert.equal(ana.name, "ana");
  assert.equal(await ana.join("geral", { create: true }), true);
  assert.equal(ana.room, "geral");
  assert.deepEqual(anaSees.rooms, [null, "geral"]);
  assert.deepEqual(anaSees.lines.slice(2), [
    "info: Sala 'geral' criada com sucesso.",
    "info: Você está na sala geral. Presentes: ana.",
    "SERVER: ana entrou na sala.",
  ]);

  const [bia, biaSees] = await world.user("bia");
  const [caio, caioSees] = await world.user("caio");
  assert.equal(await bia.join("geral"), true);
  assert.equal(await caio.join("geral"), true);
  await anaSees.shows("SERVER: caio entrou na sala.");
  await ana.handle("oi, gente");
  await bia.handle("/msg ana só para você");
  await caio.handle("tchau");
  for (const sees of [anaSees, biaSees, caioSees]) await sees.shows("caio: tchau");
  await anaSees.shows("bia -> ana: só para você");
  await biaSees.shows("bia -> ana: só para você");
  for (const sees of [anaSees, biaSees, caioSees]) assert.equal(sees.count("ana: oi, gente"), 1);
  assert.equal(caioSees.count("bia -> ana: só para você"), 0);

  await caio.handle("/usuarios");
  await caioSees.shows("info: Na sala geral (3): ana, bia, caio");
  await caio.handle("/salas");
  await caioSees.shows("info: Salas (1): geral");
});

Deno.test("refusals show the server's message: a taken name, a missing room, a room of someone else", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana");
  const [bia, biaSees] = await world.user("bia");
  assert.equal(await bia.register("ana"), false);
  await biaSees.shows("error: O nome 'ana' já está em uso. Escolha outro.");
  assert.equal(await bia.join("nenhuma"), false);
  await biaSees.shows("error: A sala 'nenhuma' não existe. Crie-a antes de entrar.");
  assert.equal(bia.room, null);
  await ana.handle("/criar geral");
  await bia.handle("/excluir geral");
  await biaSees.shows("error: Só quem criou a sala 'geral' pode excluí-la.");
  await bia.handle("fora de sala");
  await biaSees.shows(
    "error: Você não está em nenhuma sala. Use /entrar SALA (ou /salas para ver as salas).",
  );
  await ana.handle("/sair");
  await anaSees.shows("error: Você não está em nenhuma sala.");
});

Deno.test("a member whose room is deleted sees the notice, is told, and is in no room", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana");
  const [bia, biaSees] = await world.user("bia", { texts: TEXTS.en });
  await ana.join("geral", { create: true });
  await bia.join("geral");
  await anaSees.shows("SERVER: bia entrou na sala.");
  await ana.handle("/excluir geral");
  await anaSees.shows("info: Sala 'geral' excluída.");
  // Each in their own language: the notice is stored once, and rendered for each reader.
  await biaSees.shows("SERVER: Room geral deleted by ana.");
  await biaSees.shows(/^warn: You are no longer in room geral: /);
  assert.equal(bia.room, null);
  assert.equal(biaSees.rooms.at(-1), null);
});

Deno.test("a session the server ended is known by its reason: registered again, and the command goes through", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana");
  // Out of every room and silent: a sweep far in the future ends the session.
  world.chat.sweep(Date.now() + 3_600_000);
  assert.equal(await ana.join("geral", { create: true }), true);
  assert.deepEqual(anaSees.lines.slice(2), [
    "warn: O servidor encerrou a sessão (Usuário 'ana' não está registrado.). Registrando de novo...",
    `info: Reconectado ao ChatService em ${world.address} como ana.`,
    "info: Sala 'geral' criada com sucesso.",
    "info: Você está na sala geral. Presentes: ana.",
    "SERVER: ana entrou na sala.",
  ]);
  await ana.handle("de volta");
  await anaSees.shows("ana: de volta");
});

Deno.test("outside any room the signs of life notice a lost session and register again", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana", { keepAliveMs: 20 });
  world.chat.sweep(Date.now() + 3_600_000);
  await anaSees.shows(`info: Reconectado ao ChatService em ${world.address} como ana.`);
  assert.equal(
    anaSees.count(
      "warn: O servidor encerrou a sessão (Usuário 'ana' não está registrado.). Registrando de novo...",
    ),
    1,
  );
  assert.equal(ana.name, "ana");
  assert.equal(await ana.join("geral", { create: true }), true);
});

Deno.test("quit leaves the service: the others see the notice and the name is free at once", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana");
  const [bia, biaSees] = await world.user("bia");
  await ana.join("geral", { create: true });
  await bia.join("geral");
  assert.equal(await bia.handle("/fim"), "quit");
  await bia.quit();
  assert.equal(bia.closed, true);
  await biaSees.shows("info: Até logo!");
  await anaSees.shows("SERVER: bia saiu da sala.");
  assert.equal(world.chat.register("bia", "outra")[0], true);
});

Deno.test("nothing is dropped by the rate limit: lines past it wait, shown as held, and go out in order", async () => {
  // Twice the burst the rate allows (2 s of it), however fast the calls go.
  await using world = chatWorld({ maxRate: 10 });
  const [ana, anaSees] = await world.user("ana");
  const [bia, biaSees] = await world.user("bia");
  await ana.join("geral", { create: true });
  await bia.join("geral");
  // One after another, as typed or pasted: past the burst the server allows (twice the rate).
  const lines = Array.from({ length: 40 }, (_, i) => `linha ${i + 1}`);
  for (const line of lines) await ana.say(line);
  await biaSees.shows("ana: linha 40");
  assert.deepEqual(
    biaSees.lines.filter((line) => line.startsWith("ana: linha")),
    lines.map((l) => `ana: ${l}`),
  );
  assert.equal(anaSees.throttles[0], true);
  assert.equal(anaSees.throttles.at(-1), false);
  assert.equal(anaSees.lines.some((line) => /Devagar/.test(line)), false);
});

Deno.test("private messages reach anyone online, in another room or none; /entrar creates a missing room", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana");
  const [bia, biaSees] = await world.user("bia");
  const [caio, caioSees] = await world.user("caio");
  await ana.handle("/entrar geral");
  await anaSees.shows("info: Sala 'geral' criada com sucesso.");
  await anaSees.shows("info: Você está na sala geral. Presentes: ana.");
  await bia.handle("/entrar estudos");
  await ana.handle("/msg bia oi, de outra sala");
  await biaSees.shows("ana -> bia: oi, de outra sala");
  await anaSees.shows("ana -> bia: oi, de outra sala");
  // Outside any room: sent all the same, and shown by the sender itself.
  await caio.handle("/msg ana de fora");
  await anaSees.shows("caio -> ana: de fora");
  await caioSees.shows("caio -> ana: de fora");
  await caio.handle("/msg zeca alguém?");
  await caioSees.shows("error: O usuário 'zeca' não está online.");
  // Who the session knows, for Tab: members and private partners, not itself; the rooms.
  await bia.handle("/entrar geral");
  await anaSees.shows("SERVER: bia entrou na sala.");
  assert.deepEqual(ana.people.sort(), ["bia", "caio"]);
  await ana.refreshRooms();
  assert.deepEqual(ana.rooms, ["estudos", "geral"]);
});

Deno.test("several binders: a dead one is said once, by its address, and the next one finds the service", async () => {
  await using world = chatWorld();
  const deadPort = freePort();
  const [ana, anaSees] = await world.user("ana", {
    binders: [{ host: "127.0.0.1", port: deadPort }, world.binderAddress],
  });
  assert.deepEqual(anaSees.lines, [
    `warn: O binder em 127.0.0.1:${deadPort} não responde (conexão recusada).`,
    `info: Conectado ao ChatService em ${world.address}.`,
    "info: Olá, ana! Digite /ajuda para ver os comandos.",
  ]);
  assert.equal(await ana.join("geral", { create: true }), true);
});

Deno.test("moving to another instance that shares the sessions keeps the session: no second registration", async () => {
  await using world = chatWorld();
  // A second instance of the same service: another listener on the same core, as servers sharing one store.
  const other = serveMethods(chatMethods(world.chat));
  try {
    const [ana, anaSees] = await world.user("ana", { waitMs: 100 });
    const [bia, biaSees] = await world.user("bia", { waitMs: 100 });
    assert.equal(await ana.join("geral", { create: true }), true);
    assert.equal(await bia.join("geral"), true);
    await anaSees.shows("SERVER: bia entrou na sala.");

    // The first instance goes away and the binder knows only the second.
    world.binder.unregister("ChatService", "127.0.0.1", world.chatServer.addr.port);
    world.binder.register("ChatService", "127.0.0.1", other.addr.port);
    await world.chatServer.shutdown();
    const back = (name: string) =>
      `info: Reconectado ao ChatService em 127.0.0.1:${other.addr.port} como ${name}, de volta à sala geral.`;
    await anaSees.shows(back("ana"));
    await biaSees.shows(back("bia"));
    // Registering again would have been refused (the name is still ours there): the session came along.
    for (const sees of [anaSees, biaSees]) {
      assert(
        !sees.lines.some((line) => /Registrando de novo|ainda está em uso/.test(line)),
        sees.lines.join("\n"),
      );
    }
    await ana.handle("depois da mudança");
    await biaSees.shows("ana: depois da mudança");
    assert.equal(biaSees.count("SERVER: bia entrou na sala."), 1);
    // While the second instance still serves: the world's disposal quits them again, harmlessly.
    await Promise.all([ana.quit(), bia.quit()]);
  } finally {
    await other.shutdown();
  }
});

Deno.test("a message whose answer was lost after it was stored is sent again with its key, and shows once", async () => {
  let lost = 0;
  await using world = chatWorld({}, (table) => ({
    ...table,
    enviar_mensagem: {
      ...table.enviar_mensagem!,
      // Stored, then the answer lost on its way (as a -32603 says): the first two times.
      async run(call, args) {
        const stored = await table.enviar_mensagem!.run(call, args);
        if (lost++ < 2) {
          throw new Fault(FaultCode.INTERNAL_ERROR, "resposta perdida; não se sabe se foi feito.");
        }
        return stored;
      },
    },
  }));
  const [ana, anaSees] = await world.user("ana");
  await ana.join("geral", { create: true });
  await ana.say("uma vez só");
  await anaSees.shows("ana: uma vez só");
  await anaSees.shows("info: O servidor voltou a atender.");
  assert.equal(lost, 3);
  assert.equal(anaSees.count("ana: uma vez só"), 1, anaSees.lines.join("\n"));
  // Stored once: whoever joins later reads it once in the history.
  const [bia, biaSees] = await world.user("bia");
  await bia.join("geral");
  await biaSees.shows("ana: uma vez só");
  assert.equal(biaSees.count("ana: uma vez só"), 1, biaSees.lines.join("\n"));
});

Deno.test("a session in English follows who comes and goes from the notices in English", async () => {
  await using world = chatWorld();
  const [ana, anaSees] = await world.user("ana", { texts: TEXTS.en });
  await ana.join("geral", { create: true });
  const [bia] = await world.user("bia");
  await bia.join("geral");
  await anaSees.shows("SERVER: bia joined the room.");
  assert.deepEqual(ana.people, ["bia"]);
  await bia.leave();
  await anaSees.shows("SERVER: bia left the room.");
  assert.deepEqual(ana.people, []);
});
