/**
 * Helpers for the cores tested in-process (chat_core_test.ts,
 * client_core_test.ts): a real {@linkcode SqliteChat} on a database of its
 * own, and a method table served by the real HTTP handler on a loopback port.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type Call,
  DatabaseSync,
  endpointUrl,
  type Lang,
  type MethodTable,
  XmlRpcClient,
  xmlRpcHandler,
} from "../../lib/mod.ts";
import { chatMethods, type ChatOptions, MessageStore, SqliteChat, type User } from "../../lib/mod.ts";
import { silentLog } from "./programs.ts";

/** Roomy options for a chat under test: the tests narrow what they test. */
export const ROOMY: ChatOptions = {
  compat: false,
  sessionTtlMs: 60_000,
  roomTtlMs: 60_000,
  maxRate: 1000,
  log: silentLog,
};

/** A chat on a database (`:memory:` unless given), with roomy defaults; stopped and closed on disposal. */
export function chatOn(
  options: Partial<ChatOptions> = {},
  path = ":memory:",
): { chat: SqliteChat; store: MessageStore } & Disposable {
  const store = new MessageStore(path);
  const chat = new SqliteChat(store, { ...ROOMY, ...options });
  return {
    chat,
    store,
    [Symbol.dispose]() {
      chat.stop();
      store.close();
    },
  };
}

/** Registers `name` (with the token `token-NAME` unless given) and returns the user as a call proves it. */
export function userOf(chat: SqliteChat, name: string, token = `token-${name}`): User {
  assert.equal(chat.register(name, token)[0], true, `register ${name}`);
  return authorized(chat, name, token);
}

/** The user a call with this token and name proves (token `token-NAME` unless given). */
export function authorized(chat: SqliteChat, name: string, token = `token-${name}`): User {
  const user = chat.authorize(token, name);
  assert(!Array.isArray(user), `authorize ${name}: ${user}`);
  return user;
}

/** The reason of a result that must be a refusal. */
export function refusalReason(result: readonly unknown[] | User): string {
  assert(Array.isArray(result) && result[0] === false, `expected a refusal, got ${JSON.stringify(result)}`);
  return result[2] as string;
}

/** A caller of a method table as the HTTP handler makes it, in a language, keeping the session it is given. */
export function inProcessCall(language: Lang = "pt"): Call {
  const call = {
    remoteAddress: "127.0.0.1",
    session: undefined as string | undefined,
    wantsReasons: false,
    language,
    setSession(token: string) {
      call.session = token;
    },
  };
  return call;
}

/** Serves a method table with the real handler on a free loopback port of this process. */
export function serveMethods(methods: MethodTable): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    xmlRpcHandler(methods, { log: silentLog }),
  );
}

/** A chat's method table served by the real handler on a free loopback port, and clients for it. */
export interface ServedChat extends AsyncDisposable {
  /** Its address. */
  url: string;
  /** A new client (a session jar of its own) sending these headers. */
  client(headers?: Record<string, string>): XmlRpcClient;
}

/** Serves `chat`'s method table ({@linkcode chatMethods}) until disposed. */
export function servedChat(chat: SqliteChat): ServedChat {
  const server = serveMethods(chatMethods(chat));
  const url = endpointUrl("127.0.0.1", server.addr.port);
  return {
    url,
    client: (headers = {}) => new XmlRpcClient(url, { timeoutMs: 5000, headers }),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** The chat database's schema of version 1, exactly as it was: for the migrations' tests. */
export const SCHEMA_1 = `
  CREATE TABLE rooms (name TEXT PRIMARY KEY, creator TEXT, created_at INTEGER NOT NULL);
  CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, tipo TEXT NOT NULL, origem TEXT NOT NULL,
    destino TEXT NOT NULL, conteudo TEXT NOT NULL, timestamp INTEGER NOT NULL
  );
  CREATE INDEX messages_by_room ON messages (room, id);
  PRAGMA user_version = 1;
`;

/** Version 2's: version 1's with each notice's Text, and the indexes of reads by name. */
export const SCHEMA_2 = `${SCHEMA_1}
  ALTER TABLE messages ADD COLUMN notice TEXT;
  CREATE INDEX messages_public ON messages (room, tipo, id);
  CREATE INDEX messages_to ON messages (room, destino, id);
  CREATE INDEX messages_from ON messages (room, origem, id);
  PRAGMA user_version = 2;
`;

/** A database file made by `sql` (an old schema and its rows); removed, with its journals, on disposal. */
export function databaseFile(sql: string): { path: string } & AsyncDisposable {
  const path = Deno.makeTempFileSync({ prefix: "rpc-chat-old-", suffix: ".db" });
  const db = new DatabaseSync(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
    },
  };
}
