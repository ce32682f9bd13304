/**
 * Helpers for the cores tested in-process (chat_core_test.ts,
 * client_core_test.ts): a real {@linkcode ChatService} on a database of its
 * own, and a method table served by the real HTTP handler on a loopback port.
 *
 * @module
 */

import { type Call, type Lang, type MethodTable, xmlRpcHandler } from "../deps.ts";
import { type ChatOptions, ChatService, MessageStore } from "../server.ts";
import { silentLog } from "./test_helpers.ts";

/** A chat on a database (`:memory:` unless given), with roomy defaults; stopped and closed on disposal. */
export function chatOn(
  options: Partial<ChatOptions> = {},
  path = ":memory:",
): { chat: ChatService; store: MessageStore } & Disposable {
  const store = new MessageStore(path);
  const chat = new ChatService(store, {
    compat: false,
    sessionTtlMs: 60_000,
    roomTtlMs: 60_000,
    maxRate: 1000,
    log: silentLog,
    ...options,
  });
  return {
    chat,
    store,
    [Symbol.dispose]() {
      chat.stop();
      store.close();
    },
  };
}

/** A caller of a method table as the HTTP handler makes it, in a language, keeping the session it is given. */
export function caller(language: Lang = "pt"): Call {
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
