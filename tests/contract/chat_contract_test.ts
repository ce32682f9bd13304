/**
 * The chat's contract: one table of behaviours, each case run in-process on
 * both engines, the SQLite one (a temporary file) and the Redis one (a real
 * `redis-server` of the case's own on a free port, durable:
 * `--appendonly yes --appendfsync always`). Every case asserts the same
 * answers on both; where an engine keeps less by design (Redis and its
 * history bound) the case states the bound and checks it on both. Without
 * `redis-server` the Redis half is skipped, its reason in the test's name.
 *
 * This is what binds a rule written twice (in TypeScript for SQLite and in
 * Lua for Redis): the send keys, the rate limits, the caps, the history
 * bound, the visibility of private messages, the sweep.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type ChatEngine,
  type ChatOptions,
  type Delivery,
  HISTORY,
  HISTORY_SLACK,
  type Joined,
  MAX_BATCH,
  MAX_TEXT,
  type Message,
  type Outcome,
  Reason,
  RedisChat,
  type Refusal,
  render,
  SqliteChat,
  type Text,
} from "../../lib/mod.ts";
import { REDIS_UNAVAILABLE, RedisServer } from "../helpers/redis.ts";
import { refusalReason, ROOMY } from "../helpers/core.ts";
import { testUnless, texts, waitUntil } from "../helpers/programs.ts";

/** A chat engine as the cases drive it: whom a call acts as is opaque to them. */
type Engine = ChatEngine<unknown>;

/** How an engine is made for a case, and what it keeps by design. */
interface EngineKind {
  readonly name: "sqlite" | "redis";
  /** Why it cannot run here, if it cannot. */
  readonly unavailable: string | undefined;
  /** Whether it keeps a room's whole history (SQLite), or the latest `historyKept` (+ slack) only (Redis). */
  readonly keepsWholeHistory: boolean;
  /**
   * Opens engines, closed at the end: on one Redis, several servers of one chat; on SQLite, each in a
   * file of its own (one database, one server).
   */
  store(): Promise<{ open(options: ChatOptions): Promise<Engine> } & AsyncDisposable>;
}

const ENGINES: readonly EngineKind[] = [
  {
    name: "sqlite",
    unavailable: undefined,
    keepsWholeHistory: true,
    async store() {
      const dir = await Deno.makeTempDir({ prefix: "rpc-chat-contract-" });
      const opened: Engine[] = [];
      return {
        async open(options) {
          const engine = await SqliteChat.open(`${dir}/chat${opened.length}.db`, options);
          opened.push(engine);
          return engine;
        },
        async [Symbol.asyncDispose]() {
          for (const engine of opened) await engine.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "redis",
    unavailable: REDIS_UNAVAILABLE,
    keepsWholeHistory: false,
    async store() {
      const redis = await RedisServer.start();
      const opened: Engine[] = [];
      return {
        async open(options) {
          const engine = await RedisChat.open(redis.url, options);
          opened.push(engine);
          return engine;
        },
        async [Symbol.asyncDispose]() {
          for (const engine of opened) await engine.close();
          await redis.close();
        },
      };
    },
  },
];

/** A chat of a case, with the calls as a client makes them (acting as a user goes through `authorize`). */
class Driver {
  constructor(readonly chat: Engine, readonly kind: EngineKind) {}

  /** Registers `name` with the session `token-NAME`: the answer, in Portuguese. */
  async register(name: string, source?: string): Promise<Said> {
    return said(await this.chat.register(name, `token-${name}`, source));
  }

  /** Registers every name, each of which must be accepted. */
  async users(...names: string[]): Promise<void> {
    for (const name of names) assert.deepEqual((await this.register(name)).slice(0, 1), [true], name);
  }

  /** Runs `action` as `name` with a session (`token-NAME` unless given; null: none), as the method table does. */
  async as<T>(
    name: string,
    action: (user: unknown) => Promise<Outcome<T>> | Outcome<T>,
    session: string | null = `token-${name}`,
  ): Promise<Outcome<T>> {
    const user = this.chat.authorize(session ?? undefined, name);
    if (Array.isArray(user)) return user as Refusal;
    return await action(user);
  }

  create(name: string, room: string): Promise<Said> {
    return this.chat.createRoom(room, `token-${name}`).then(said);
  }

  async join(name: string, room: string): Promise<Outcome<Joined>> {
    return await this.as(name, (user) => this.chat.join(user, room));
  }

  /** Joins, which must be accepted. */
  async enter(room: string, ...names: string[]): Promise<void> {
    for (const name of names) assert.equal((await this.join(name, room))[0], true, `${name} joins ${room}`);
  }

  async leave(name: string): Promise<Said> {
    return said(await this.as(name, (user) => this.chat.leave(user)));
  }

  async send(
    name: string,
    room: string,
    text: string,
    to: string | null = null,
    key?: string,
  ): Promise<Said> {
    return said(await this.as(name, (user) => this.chat.send(user, room, text, to, key)));
  }

  async sendPrivate(name: string, to: string, text: string, key?: string): Promise<Said> {
    return said(await this.as(name, (user) => this.chat.sendPrivate(user, to, text, key)));
  }

  wait(name: string, room: string, cursor: number, waitMs: number): Promise<Outcome<Delivery>> {
    return this.as(name, (user) => this.chat.waitMessages(user, room, cursor, waitMs));
  }

  /** Everything `name` may read in `room` after `cursor`, page by page: each line `origem: conteudo`. */
  async readAll(name: string, room: string, cursor = 0): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const answer = await this.wait(name, room, cursor, 0);
      assert.equal(answer[0], true, `${name} reads ${room}: ${JSON.stringify(answer)}`);
      const { mensagens, cursor: next } = answer[1] as Delivery;
      assert(mensagens.length <= MAX_BATCH);
      if (mensagens.length === 0) return lines;
      lines.push(...texts(mensagens));
      cursor = next;
    }
  }

  /** The latest messages `name` may see in `room`, as `receber_mensagens` gives them. */
  async recent(name: string, room: string): Promise<string[]> {
    const answer = await this.as(name, (user) => this.chat.recentMessages(user, room));
    assert.equal(answer[0], true, JSON.stringify(answer));
    return texts(answer[1] as Message[]);
  }

  async members(room: string): Promise<Outcome<string[]>> {
    return await this.chat.listMembers(room);
  }

  async rooms(): Promise<readonly string[]> {
    const answer = await this.chat.listRooms();
    assert.equal(answer[0], true);
    return answer[1] as readonly string[];
  }
}

/** An answer as the cases compare it: texts rendered in Portuguese, a refusal with its reason. */
type Said = [true, unknown] | [false, string, string];

function said<T>(outcome: Outcome<T>): Said {
  if (!outcome[0]) return [false, render(outcome[1], "pt"), outcome[2]];
  const payload = outcome[1] as unknown;
  const isText = typeof payload === "object" && payload !== null && "key" in payload && "args" in payload;
  return [true, isText ? render(payload as Text, "pt") : payload];
}

/** One case of the contract, run on each engine with its own store. */
function contract(
  name: string,
  options: Partial<ChatOptions>,
  body: (chat: Driver, open: (more?: Partial<ChatOptions>) => Promise<Driver>) => Promise<void>,
): void {
  for (const kind of ENGINES) {
    testUnless(kind.unavailable, `contract (${kind.name}): ${name}`, async () => {
      await using store = await kind.store();
      const open = async (more: Partial<ChatOptions> = {}) =>
        new Driver(await store.open({ ...ROOMY, ...options, ...more }), kind);
      await body(await open(), open);
    });
  }
}

// --- registration, names and sessions -----------------------------------------------------------

contract(
  "a name is registered once; invalid, reserved and look-alike names are refused",
  {},
  async (chat) => {
    assert.deepEqual(await chat.register("ana"), [true, "Usuário 'ana' registrado com sucesso."]);
    assert.equal(refusalReason(await chat.register("ana")), Reason.NAME_TAKEN);
    assert.equal(refusalReason(await chat.register("  ana ")), Reason.NAME_TAKEN);
    assert.equal(refusalReason(await chat.register("")), Reason.NAME_INVALID);
    assert.equal(refusalReason(await chat.register("x".repeat(33))), Reason.NAME_INVALID);
    assert.equal(refusalReason(await chat.register("a\u0000b")), Reason.NAME_INVALID);
    assert.equal(refusalReason(await chat.register("SERVER")), Reason.NAME_RESERVED);
    assert.equal(refusalReason(await chat.register("todos")), Reason.NAME_RESERVED);
    assert.equal(refusalReason(await chat.register("SΕRVER")), Reason.NAME_INVALID); // a Greek Epsilon
    assert.deepEqual((await chat.register("João")).slice(0, 1), [true]);
  },
);

contract("at most --max-users are registered, and counted; a freed name and place are taken again", {
  maxUsers: 2,
}, async (chat) => {
  await chat.users("ana", "bia");
  assert.equal(await chat.chat.countUsers(), 2);
  const full = await chat.register("caio");
  assert.equal(refusalReason(full), Reason.LIMIT_REACHED);
  assert.match(full[1] as string, /2/);
  assert.equal((await chat.as("ana", (user) => chat.chat.unregister(user, "test")))[0], true);
  await chat.users("caio");
  assert.equal(refusalReason(await chat.register("ana")), Reason.LIMIT_REACHED);
});

contract("registrations from one address share a rate limit; other addresses have their own", {
  maxRate: 1,
}, async (chat) => {
  assert.equal((await chat.register("ana", "10.0.0.1"))[0], true);
  assert.equal((await chat.register("bia", "10.0.0.1"))[0], true);
  assert.equal(refusalReason(await chat.register("caio", "10.0.0.1")), Reason.RATE_LIMITED);
  assert.equal((await chat.register("caio", "10.0.0.2"))[0], true);
});

contract("a call acts only as the user its session proves", {}, async (chat) => {
  await chat.users("ana");
  const alive = (session: string | null, name = "ana") =>
    chat.as(name, (user) => chat.chat.keepAlive(user), session).then(said);
  assert.deepEqual((await alive("token-ana")).slice(0, 1), [true]);
  assert.equal(refusalReason(await alive("token-bia")), Reason.SESSION_INVALID);
  assert.equal(refusalReason(await alive(null)), Reason.SESSION_INVALID);
  assert.equal(refusalReason(await alive("token-ninguem", "ninguem")), Reason.NOT_REGISTERED);
});

contract("with --compat a call with no session is accepted until the user's own session shows up", {
  compat: true,
}, async (chat) => {
  await chat.users("ana", "bia");
  const alive = (name: string, session: string | null) =>
    chat.as(name, (user) => chat.chat.keepAlive(user), session).then(said);
  assert.equal((await alive("ana", null))[0], true);
  assert.equal((await alive("ana", "token-ana"))[0], true);
  assert.equal(refusalReason(await alive("ana", null)), Reason.SESSION_INVALID);
  assert.equal(refusalReason(await alive("bia", "token-ana")), Reason.SESSION_INVALID);
  assert.equal((await alive("bia", null))[0], true);
});

contract(
  "a freed name reveals nothing of its old holder: private messages, rooms to delete",
  {},
  async (chat) => {
    await chat.users("ana", "bia");
    assert.equal((await chat.create("ana", "geral"))[0], true);
    await chat.enter("geral", "ana", "bia");
    assert.equal((await chat.send("bia", "geral", "só pra ana", "ana"))[0], true);
    assert.equal((await chat.as("ana", (user) => chat.chat.unregister(user, "test")))[0], true);
    await chat.users("ana");
    await chat.enter("geral", "ana");
    const seen = await chat.readAll("ana", "geral");
    assert(!seen.some((said) => said.includes("só pra ana")), seen.join("\n"));
    assert(!(await chat.recent("ana", "geral")).some((said) => said.includes("só pra ana")));
    assert.equal(
      refusalReason(await chat.as("ana", (user) => chat.chat.deleteRoom(user, "geral"))),
      Reason.NOT_CREATOR,
    );
  },
);

// --- rooms -------------------------------------------------------------------------------------

contract("rooms: created once, listed sorted, their members listed sorted", {}, async (chat) => {
  await chat.users("ana", "bia");
  assert.deepEqual(await chat.create("ana", "geral"), [true, "Sala 'geral' criada com sucesso."]);
  assert.equal(refusalReason(await chat.create("bia", "geral")), Reason.ROOM_EXISTS);
  assert.equal(refusalReason(await chat.create("bia", " ")), Reason.NAME_INVALID);
  assert.equal((await chat.create("bia", "Álgebra"))[0], true);
  assert.equal((await chat.create("bia", "zoo"))[0], true);
  assert.deepEqual(await chat.rooms(), ["Álgebra", "geral", "zoo"]);
  await chat.enter("geral", "bia", "ana");
  assert.deepEqual(await chat.members("geral"), [true, ["ana", "bia"]]);
  assert.deepEqual(await chat.members("zoo"), [true, []]);
  assert.equal(refusalReason(await chat.members("nenhuma")), Reason.ROOM_MISSING);
});

contract("a room needs a session to be created, but with --compat", {}, async (chat, open) => {
  assert.equal(refusalReason(said(await chat.chat.createRoom("geral", undefined))), Reason.SESSION_INVALID);
  const compat = await open({ compat: true });
  assert.equal((said(await compat.chat.createRoom("livre", undefined)))[0], true);
});

contract("at most --max-rooms rooms, and --max-rooms-per-user by one creator", {
  maxRooms: 3,
  maxRoomsPerUser: 2,
}, async (chat) => {
  await chat.users("ana", "bia");
  assert.equal((await chat.create("ana", "a1"))[0], true);
  assert.equal((await chat.create("ana", "a2"))[0], true);
  assert.equal(refusalReason(await chat.create("ana", "a3")), Reason.LIMIT_REACHED);
  assert.equal((await chat.create("bia", "b1"))[0], true);
  assert.equal(refusalReason(await chat.create("bia", "b2")), Reason.LIMIT_REACHED);
  assert.equal((await chat.as("ana", (user) => chat.chat.deleteRoom(user, "a1")))[0], true);
  assert.equal((await chat.create("bia", "b2"))[0], true);
});

contract(
  "joining tells the room and gives members, history and a cursor; joining another leaves",
  {},
  async (chat) => {
    await chat.users("ana", "bia");
    await chat.create("ana", "geral");
    await chat.create("ana", "outra");
    const first = await chat.join("ana", "geral");
    assert(first[0]);
    assert.deepEqual(first[1].usuarios, ["ana"]);
    assert.deepEqual(texts(first[1].mensagens), ["SERVER: ana entrou na sala."]);
    await chat.enter("geral", "bia");
    assert.equal((await chat.send("bia", "geral", "oi"))[0], true);
    const again = await chat.join("ana", "geral");
    assert(again[0]);
    assert.deepEqual(texts(again[1].mensagens), [
      "SERVER: ana entrou na sala.",
      "SERVER: bia entrou na sala.",
      "bia: oi",
    ]);
    await chat.enter("outra", "ana");
    assert.deepEqual((await chat.readAll("bia", "geral")).slice(-1), ["SERVER: ana saiu da sala."]);
    assert.deepEqual(await chat.members("geral"), [true, ["bia"]]);
    assert.equal(refusalReason(await chat.join("ana", "nenhuma")), Reason.ROOM_MISSING);
  },
);

contract("leaving tells the room; leaving from no room is refused", {}, async (chat) => {
  await chat.users("ana", "bia");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana", "bia");
  assert.deepEqual(await chat.leave("ana"), [true, "Você saiu da sala 'geral'."]);
  assert.deepEqual((await chat.readAll("bia", "geral")).slice(-1), ["SERVER: ana saiu da sala."]);
  assert.equal(refusalReason(await chat.leave("ana")), Reason.NOT_IN_ROOM);
  assert.equal(refusalReason(await chat.send("ana", "geral", "oi")), Reason.NOT_IN_ROOM);
});

contract("a join hands out the latest 50 messages the user may see", {}, async (chat) => {
  await chat.users("ana", "bia");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana");
  for (let i = 1; i <= 60; i++) assert.equal((await chat.send("ana", "geral", `m${i}`))[0], true);
  const joined = await chat.join("bia", "geral");
  assert(joined[0]);
  const lines = texts(joined[1].mensagens);
  assert.equal(lines.length, HISTORY);
  assert.deepEqual(lines.slice(-2), ["ana: m60", "SERVER: bia entrou na sala."]);
  assert.deepEqual((await chat.recent("bia", "geral")).slice(-2), lines.slice(-2));
});

contract(
  "only its creator deletes a room; its members read the notice once, then it is gone",
  {},
  async (chat) => {
    await chat.users("ana", "bia");
    await chat.create("ana", "geral");
    await chat.enter("geral", "ana", "bia");
    const cursor = (await chat.wait("bia", "geral", 0, 0) as [true, Delivery])[1].cursor;
    assert.equal(
      refusalReason(await chat.as("bia", (user) => chat.chat.deleteRoom(user, "geral"))),
      Reason.NOT_CREATOR,
    );
    assert.equal(
      refusalReason(await chat.as("ana", (user) => chat.chat.deleteRoom(user, "nenhuma"))),
      Reason.ROOM_MISSING,
    );
    const deleted = said(await chat.as("ana", (user) => chat.chat.deleteRoom(user, "geral")));
    assert.deepEqual(deleted, [true, "Sala 'geral' excluída."]);
    const last = await chat.wait("bia", "geral", cursor, 0);
    assert(last[0], JSON.stringify(last));
    assert.deepEqual(texts(last[1].mensagens), ["SERVER: Sala geral excluída por ana."]);
    assert.equal(refusalReason(await chat.wait("bia", "geral", last[1].cursor, 0)), Reason.ROOM_MISSING);
    assert.deepEqual(await chat.rooms(), []);
    assert.equal(refusalReason(await chat.leave("bia")), Reason.NOT_IN_ROOM);
  },
);

// --- messages ----------------------------------------------------------------------------------

contract("a private message is seen by its two ends only, live and in the history", {}, async (chat) => {
  await chat.users("ana", "bia", "caio");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana", "bia", "caio");
  assert.deepEqual(await chat.send("ana", "geral", "segredo", "bia"), [true, "Mensagem enviada."]);
  assert.equal((await chat.send("caio", "geral", "público"))[0], true);
  const tail = (lines: string[]) => lines.filter((said) => !said.startsWith("SERVER"));
  assert.deepEqual(tail(await chat.readAll("bia", "geral")), ["ana -> bia: segredo", "caio: público"]);
  assert.deepEqual(tail(await chat.readAll("ana", "geral")), ["ana -> bia: segredo", "caio: público"]);
  assert.deepEqual(tail(await chat.readAll("caio", "geral")), ["caio: público"]);
  assert.deepEqual(tail(await chat.recent("caio", "geral")), ["caio: público"]);
  assert.deepEqual(tail(await chat.recent("bia", "geral")), ["ana -> bia: segredo", "caio: público"]);
});

contract("a send is refused for its room, its recipient or its text, with the reason", {}, async (chat) => {
  await chat.users("ana", "bia", "caio");
  await chat.create("ana", "geral");
  await chat.create("ana", "outra");
  await chat.enter("geral", "ana", "bia");
  await chat.enter("outra", "caio");
  assert.equal(refusalReason(await chat.send("ana", "nenhuma", "oi")), Reason.ROOM_MISSING);
  assert.equal(refusalReason(await chat.send("ana", "outra", "oi")), Reason.NOT_IN_ROOM);
  assert.equal(refusalReason(await chat.send("ana", "geral", "oi", "caio")), Reason.RECIPIENT_ABSENT);
  assert.equal(refusalReason(await chat.send("ana", "geral", "oi", "ninguem")), Reason.RECIPIENT_ABSENT);
  assert.equal(refusalReason(await chat.send("ana", "geral", "   ")), Reason.TEXT_EMPTY);
  assert.equal(
    refusalReason(await chat.send("ana", "geral", "x".repeat(MAX_TEXT + 1))),
    Reason.TEXT_TOO_LONG,
  );
  assert.equal(refusalReason(await chat.send("ana", "geral", "a\u001bb")), Reason.TEXT_INVALID);
  assert.equal((await chat.send("ana", "geral", "x".repeat(MAX_TEXT)))[0], true);
  assert.equal((await chat.send("ana", "geral", "linha 1\nlinha 2\tcom tab"))[0], true);
});

contract("a private message to anyone online lands in both their rooms", {}, async (chat) => {
  await chat.users("ana", "bia", "caio");
  await chat.create("ana", "geral");
  await chat.create("ana", "outra");
  await chat.enter("geral", "ana");
  await chat.enter("outra", "bia");
  assert.deepEqual(await chat.sendPrivate("ana", "bia", "oi de longe"), [true, "Mensagem enviada."]);
  const own = (lines: string[]) => lines.filter((said) => !said.startsWith("SERVER"));
  assert.deepEqual(own(await chat.readAll("bia", "outra")), ["ana -> bia: oi de longe"]);
  assert.deepEqual(own(await chat.readAll("ana", "geral")), ["ana -> bia: oi de longe"]);
  assert.equal(refusalReason(await chat.sendPrivate("ana", "ninguem", "oi")), Reason.RECIPIENT_ABSENT);
  assert.equal(refusalReason(await chat.sendPrivate("ana", "caio", "oi")), Reason.RECIPIENT_ABSENT);
  assert.equal(refusalReason(await chat.sendPrivate("ana", "bia", "")), Reason.TEXT_EMPTY);
});

contract("the same send key is stored once, on send and on sendPrivate", {}, async (chat) => {
  await chat.users("ana", "bia");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana", "bia");
  for (let i = 0; i < 3; i++) assert.equal((await chat.send("ana", "geral", "uma vez", null, "k1"))[0], true);
  for (let i = 0; i < 3; i++) assert.equal((await chat.sendPrivate("ana", "bia", "só uma", "k2"))[0], true);
  // Keys are the sender's own: bia's k1 is another message.
  assert.equal((await chat.send("bia", "geral", "minha", null, "k1"))[0], true);
  const lines = (await chat.readAll("bia", "geral")).filter((said) => !said.startsWith("SERVER"));
  assert.deepEqual(lines, ["ana: uma vez", "ana -> bia: só uma", "bia: minha"]);
});

contract("40 sends, each retried with its key through rate-limit refusals: 40 stored, once each", {
  maxRate: 10,
}, async (chat) => {
  await chat.users("ana", "bia");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana", "bia");
  let refused = 0;
  for (let i = 1; i <= 40; i++) {
    const send = i % 2
      ? () => chat.send("ana", "geral", `m${i}`, null, `key-${i}`)
      : () => chat.sendPrivate("ana", "bia", `m${i}`, `key-${i}`);
    for (;;) {
      const answer = await send();
      if (answer[0]) break;
      assert.equal(answer[2], Reason.RATE_LIMITED, JSON.stringify(answer));
      refused++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  assert(refused > 0, "the rate limit refused none: the case tests nothing");
  const lines = (await chat.readAll("bia", "geral")).filter((said) => !said.startsWith("SERVER"));
  const expected = Array.from({ length: 40 }, (_, i) => i % 2 ? `ana -> bia: m${i + 1}` : `ana: m${i + 1}`);
  assert.deepEqual(lines, expected);
});

contract("the rate limit: a burst of twice --max-rate, then refused; other changes counted apart", {
  maxRate: 2,
}, async (chat) => {
  await chat.users("ana");
  await chat.create("ana", "geral");
  await chat.create("ana", "outra");
  await chat.enter("geral", "ana");
  for (let i = 0; i < 4; i++) assert.equal((await chat.send("ana", "geral", `m${i}`))[0], true, `m${i}`);
  const slowed = await chat.send("ana", "geral", "demais");
  assert.equal(refusalReason(slowed), Reason.RATE_LIMITED);
  assert.match(slowed[1] as string, /2/);
  // Creating two rooms and one join took three of the four tokens for changes: a join and then no more.
  await chat.enter("outra", "ana");
  assert.equal(refusalReason(await chat.join("ana", "geral")), Reason.RATE_LIMITED);
});

// --- live delivery -----------------------------------------------------------------------------

contract(
  "a wait ends with the first message for its reader; a wait with none ends at its time",
  {},
  async (chat) => {
    await chat.users("ana", "bia", "caio");
    await chat.create("ana", "geral");
    await chat.enter("geral", "ana", "bia", "caio");
    const start = (await chat.wait("bia", "geral", 0, 0) as [true, Delivery])[1].cursor;
    const bia = chat.wait("bia", "geral", start, 10_000);
    const caio = chat.wait("caio", "geral", start, 300);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal((await chat.send("ana", "geral", "pra bia", "bia"))[0], true);
    const woken = await bia;
    assert(woken[0]);
    assert.deepEqual(texts(woken[1].mensagens), ["ana -> bia: pra bia"]);
    assert(woken[1].cursor > start);
    // caio may not see it: his wait goes on to its end, empty, its cursor past what he may not see or where it was.
    const quiet = await caio;
    assert(quiet[0]);
    assert.deepEqual(quiet[1].mensagens, []);
    const after = await chat.wait("caio", "geral", quiet[1].cursor, 0);
    assert(after[0]);
    assert.deepEqual(after[1].mensagens, []);
  },
);

contract("every wait in a room is woken by a message to the room", {}, async (chat) => {
  await chat.users("ana", "bia", "caio");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana", "bia", "caio");
  const cursor = (await chat.wait("ana", "geral", 0, 0) as [true, Delivery])[1].cursor;
  const waits = ["bia", "caio", "bia"].map((name) => chat.wait(name, "geral", cursor, 10_000));
  await new Promise((resolve) => setTimeout(resolve, 50));
  await chat.send("ana", "geral", "todos acordem");
  for (const wait of waits) {
    const answer = await wait;
    assert(answer[0]);
    assert.deepEqual(texts(answer[1].mensagens), ["ana: todos acordem"]);
  }
});

contract("one wait too many ends the user's oldest at once", { maxWaits: 2 }, async (chat) => {
  await chat.users("ana", "bia");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana", "bia");
  const cursor = (await chat.wait("bia", "geral", 0, 0) as [true, Delivery])[1].cursor;
  const started = Date.now();
  const oldest = chat.wait("bia", "geral", cursor, 20_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const second = chat.wait("bia", "geral", cursor, 20_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const third = chat.wait("bia", "geral", cursor, 20_000);
  const ended = await oldest;
  assert(ended[0]);
  assert.deepEqual(ended[1].mensagens, []);
  assert(Date.now() - started < 10_000, "the oldest wait was not ended");
  await chat.send("ana", "geral", "fim");
  for (const wait of [second, third]) {
    assert.deepEqual((await wait as [true, Delivery])[1].mensagens.length, 1);
  }
});

contract(
  "cursors: only what comes after; at most 500 at a time; a cursor from the future starts now",
  {},
  async (chat) => {
    await chat.users("ana", "bia");
    await chat.create("ana", "geral");
    await chat.enter("geral", "ana", "bia");
    const sends = Array.from({ length: MAX_BATCH + 20 }, (_, i) => chat.send("ana", "geral", `m${i}`));
    for (const answer of await Promise.all(sends)) assert.equal(answer[0], true);
    const first = await chat.wait("bia", "geral", 0, 0);
    assert(first[0]);
    assert.equal(first[1].mensagens.length, MAX_BATCH);
    const rest = await chat.readAll("bia", "geral", first[1].cursor);
    assert.equal(first[1].mensagens.length + rest.length, MAX_BATCH + 20 + 2); // and the two join notices
    const future = await chat.wait("bia", "geral", 1_000_000_000, 0);
    assert(future[0]);
    assert.deepEqual(future[1].mensagens, []);
    assert(future[1].cursor < 1_000_000_000);
    const next = chat.wait("bia", "geral", future[1].cursor, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await chat.send("ana", "geral", "depois");
    assert.deepEqual(texts((await next as [true, Delivery])[1].mensagens), ["ana: depois"]);
  },
);

contract("stopping ends every wait at once", {}, async (chat) => {
  await chat.users("ana");
  await chat.create("ana", "geral");
  await chat.enter("geral", "ana");
  const cursor = (await chat.wait("ana", "geral", 0, 0) as [true, Delivery])[1].cursor;
  const started = Date.now();
  const wait = chat.wait("ana", "geral", cursor, 20_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await chat.chat.announceStop();
  chat.chat.stop();
  assert.equal((await wait)[0], true);
  assert(Date.now() - started < 5_000, "a wait outlived the stop");
});

contract(
  "a wait after its user moved, left or went is refused; on Redis, on every instance of the chat",
  {},
  async (chat, open) => {
    // On Redis a second instance of the same chat, which hears of a change by its event; SQLite is one server.
    const other = chat.kind.name === "redis" ? await open() : chat;
    const refused = async (driver: Driver, name: string, room: string, why: string) => {
      const answer = async () => await driver.wait(name, room, 0, 0);
      await waitUntil(async () => !(await answer())[0], `${name}'s wait in ${room} refused`);
      assert.equal(refusalReason(await answer()), why);
    };
    await chat.users("ana", "bia");
    await chat.create("ana", "geral");
    await chat.create("ana", "outra");
    await chat.enter("geral", "ana", "bia");
    // Each instance has answered bia's waits in geral (and may answer the next ones without asking Redis).
    for (const driver of [chat, other]) assert.equal((await driver.wait("bia", "geral", 0, 0))[0], true);
    await chat.enter("outra", "bia");
    assert.equal(refusalReason(await chat.wait("bia", "geral", 0, 0)), Reason.NOT_IN_ROOM);
    await refused(other, "bia", "geral", Reason.NOT_IN_ROOM);
    for (const driver of [chat, other]) assert.equal((await driver.wait("bia", "outra", 0, 0))[0], true);
    // A wait held on the other instance when bia leaves: it ends, and sees nothing said after she left.
    const start = (await other.wait("bia", "outra", 0, 0) as [true, Delivery])[1].cursor;
    const held = other.wait("bia", "outra", start, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(await chat.leave("bia"), [true, "Você saiu da sala 'outra'."]);
    await chat.enter("outra", "ana");
    assert.equal((await chat.send("ana", "outra", "depois que bia saiu"))[0], true);
    const ended = await held;
    if (ended[0]) assert(!texts(ended[1].mensagens).includes("ana: depois que bia saiu"));
    assert.equal(refusalReason(await chat.wait("bia", "outra", 0, 0)), Reason.NOT_IN_ROOM);
    await refused(other, "bia", "outra", Reason.NOT_IN_ROOM);
    await chat.enter("geral", "bia");
    for (const driver of [chat, other]) assert.equal((await driver.wait("bia", "geral", 0, 0))[0], true);
    assert.equal((await chat.as("bia", (user) => chat.chat.unregister(user, "test")))[0], true);
    assert.equal(refusalReason(await chat.wait("bia", "geral", 0, 0)), Reason.NOT_REGISTERED);
    await refused(other, "bia", "geral", Reason.NOT_REGISTERED);
  },
);

// --- housekeeping and bounds -------------------------------------------------------------------

contract("silent sessions end and free their names; empty idle rooms go, rooms with members stay", {
  sessionTtlMs: 400,
  roomTtlMs: 400,
}, async (chat) => {
  await chat.users("ana", "bia");
  await chat.create("ana", "vazia");
  await chat.create("ana", "ocupada");
  await chat.enter("ocupada", "bia");
  chat.chat.start(50);
  // bia stays alive by waiting; ana says nothing.
  let alive = true;
  const living = (async () => {
    while (alive) await chat.wait("bia", "ocupada", 1_000_000_000, 100);
  })();
  try {
    await waitUntil(async () => (await chat.register("ana"))[0] === true, "ana's name freed by the sweep");
    await waitUntil(async () => !(await chat.rooms()).includes("vazia"), "the empty idle room removed");
    assert.deepEqual(await chat.rooms(), ["ocupada"]);
    assert.equal(refusalReason(await chat.register("bia")), Reason.NAME_TAKEN);
  } finally {
    alive = false;
    await living;
  }
});

/** Private sends alternating between users in two rooms (each send stored in both rooms). */
async function alternatePrivates(chat: Driver, sends: number): Promise<void> {
  await chat.users("ana", "bia");
  await chat.create("ana", "a");
  await chat.create("ana", "b");
  await chat.enter("a", "ana");
  await chat.enter("b", "bia");
  for (let i = 0; i < sends; i += 50) {
    const batch = Array.from(
      { length: Math.min(50, sends - i) },
      (_, j) =>
        (i + j) % 2
          ? chat.sendPrivate("ana", "bia", `p${i + j}`)
          : chat.sendPrivate("bia", "ana", `p${i + j}`),
    );
    for (const answer of await Promise.all(batch)) assert.equal(answer[0], true, JSON.stringify(answer));
  }
}

contract("every room keeps at least its latest --history-kept messages; Redis at most 100 more", {
  historyKept: 200,
}, async (chat) => {
  const sends = 700;
  await alternatePrivates(chat, sends);
  for (const [name, room] of [["ana", "a"], ["bia", "b"]] as const) {
    const kept = await chat.readAll(name, room);
    // Each room holds its join notice and every private send.
    const all = sends + 1;
    if (chat.kind.keepsWholeHistory) assert.equal(kept.length, all, room);
    else assert(kept.length >= 200 && kept.length <= 200 + HISTORY_SLACK, `${room}: ${kept.length}`);
    assert.equal(kept.at(-1)!.endsWith(`p${sends - 1}`), true, `${room} ends with the latest`);
  }
});

// --- look-alike names (UTS #39) ----------------------------------------------------------------

contract(
  "a user's name has no look-alike: case, compatibility forms, confusables and mixed scripts",
  {},
  async (chat) => {
    await chat.users("ana");
    for (const lookalike of ["Ana", "ANA", "ａｎａ", "𝐚𝐧𝐚", "ɑna", " ana"]) {
      const refused = await chat.register(lookalike);
      assert.equal(refusalReason(refused), Reason.NAME_TAKEN, lookalike);
      assert.match(refused[1] as string, /'ana'/, `${lookalike}: the refusal names what it resembles`);
    }
    // A Cyrillic а among Latin letters: ana's look-alike, and a mix UTS #39 calls unsafe: the refusal names ana.
    const mixed = await chat.register("аna");
    assert.equal(refusalReason(mixed), Reason.NAME_TAKEN);
    assert.match(mixed[1] as string, /'ana'/);
    // A mix that resembles nobody in use is refused for the mix.
    const alone = await chat.register("bоb"); // a Cyrillic о
    assert.equal(refusalReason(alone), Reason.NAME_INVALID);
    assert.match(alone[1] as string, /alfabetos/);
    for (
      const ordinary of ["anabela", "bia", "ana2", "João", "Joao", "Ελένη", "Маша", "李雷", "Tanaka 田中"]
    ) {
      assert.equal((await chat.register(ordinary))[0], true, ordinary);
    }
    // A name freed frees its look-alikes too.
    assert.equal((await chat.as("ana", (user) => chat.chat.unregister(user, "test")))[0], true);
    assert.equal((await chat.register("Ana"))[0], true);
  },
);

contract("a room's name has no look-alike, and a variant of it names the room", {}, async (chat) => {
  await chat.users("ana", "bia");
  assert.equal((await chat.create("ana", "geral"))[0], true);
  for (const lookalike of ["Geral", "ｇeral", "gerɑl"]) {
    const refused = await chat.create("bia", lookalike);
    assert.equal(refusalReason(refused), Reason.ROOM_EXISTS, lookalike);
    assert.match(refused[1] as string, /'geral'/, lookalike);
  }
  const cyrillic = await chat.create("bia", "gеral"); // a Cyrillic е
  assert.equal(refusalReason(cyrillic), Reason.ROOM_EXISTS);
  assert.match(cyrillic[1] as string, /'geral'/);
  assert.equal(refusalReason(await chat.create("bia", "sаla")), Reason.NAME_INVALID); // a Cyrillic а, no look-alike
  assert.equal((await chat.create("ana", "minha sala"))[0], true);
  const joined = await chat.join("bia", "Minha Sala");
  assert(joined[0], JSON.stringify(joined));
  assert.equal(joined[1].sala, "minha sala");
  await chat.enter("GERAL", "ana");
  await chat.enter("geral", "bia");
  assert.deepEqual(await chat.members("Geral"), [true, ["ana", "bia"]]);
  assert.equal((await chat.send("ana", "GERAL", "oi"))[0], true);
  assert.deepEqual((await chat.readAll("bia", "Geral")).slice(-1), ["ana: oi"]);
  assert.deepEqual((await chat.recent("bia", "gEral")).slice(-1), ["ana: oi"]);
  const cursor = (await chat.wait("bia", "geral", 0, 0) as [true, Delivery])[1].cursor;
  const waiting = chat.wait("bia", "Geral", cursor, 10_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await chat.send("ana", "geral", "acorda");
  assert.deepEqual(texts((await waiting as [true, Delivery])[1].mensagens), ["ana: acorda"]);
  assert.deepEqual(await chat.rooms(), ["geral", "minha sala"]);
  const deleted = said(await chat.as("ana", (user) => chat.chat.deleteRoom(user, "Geral")));
  assert.deepEqual(deleted, [true, "Sala 'geral' excluída."]);
  assert.deepEqual(await chat.rooms(), ["minha sala"]);
  assert.equal((await chat.create("bia", "Geral"))[0], true);
});

contract("a name held by a silent session says when it frees; one held by a live session does not", {
  sessionTtlMs: 2000,
}, async (chat) => {
  await chat.users("ana");
  const alive = await chat.register("ana");
  assert.deepEqual(alive, [false, "O nome 'ana' já está em uso. Escolha outro.", Reason.NAME_TAKEN]);
  await new Promise((resolve) => setTimeout(resolve, 700));
  const silent = await chat.register("ana");
  assert.equal(refusalReason(silent), Reason.NAME_TAKEN);
  assert.match(silent[1] as string, /fica livre em até [12] s\.$/);
  assert.equal((await chat.as("ana", (user) => chat.chat.keepAlive(user)))[0], true);
  assert.deepEqual((await chat.register("ana"))[1], "O nome 'ana' já está em uso. Escolha outro.");
});
