/**
 * The chat session of a client: finding ChatService through the binders, the name and its
 * session, the room, live delivery with the cursor (or polling an original server), sends with their keys,
 * and recovery when the server restarts or moves. It shows what happens on a {@linkcode ChatView}.
 *
 * @module
 */

import {
  ChatMessage,
  Lang,
  languageOf,
  Reason,
  reasonOf,
  Result,
  SEND_KEY_HEADER,
  SERVER,
} from "../chat/protocol.ts";
import {
  CHAT_HEADERS,
  CommandName,
  isPrivate,
  maxId,
  newMessages,
  parseInput,
  privateKey,
  roomArgument,
  sanitize,
  sessionGone,
  sleep,
  splitMessage,
  splitRecipient,
} from "./lines.ts";
import { Texts } from "../text/client.ts";
import { noticeOf } from "../text/notices.ts";
import { Fault, FaultCode, localWallClock, XmlRpcValue } from "../wire/codec.ts";
import { endpointUrl, HostPort, Unreachable, XmlRpcClient } from "../wire/http_client.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** The languages of the client's texts: the protocol's. */
export type { Lang };

/** What `entrar_na_sala` answers (`cursor` and `sala` are our extensions; the original has neither). */
interface JoinAnswer {
  /** The room's name as the server keeps it (`geral` when we asked for `Geral`). */
  sala?: string;
  usuarios: string[];
  mensagens: ChatMessage[];
  cursor?: number;
}

/** What the session shows; the terminal UI implements it. */
export interface ChatView {
  /** A chat message, from the server or our own; `history` when it is from before joining. */
  message(message: ChatMessage, history?: boolean): void;
  /** A line from the client itself: what happened, what went wrong. */
  notice(text: string, kind?: NoticeKind): void;
  /** The session is now in this room (null: in none). */
  roomChanged(room: string | null): void;
  /** The server cannot be reached (false) until it can again (true). */
  connection?(online: boolean): void;
  /** A message waits for the server's rate limit (true) until it went out (false). */
  throttled?(waiting: boolean): void;
  /** Shows the help (`/ajuda`); without it, the commands as a notice. */
  help?(): void;
}

/** How a notice is shown: `error` in red, `warn` in yellow, `info` in cyan. */
export type NoticeKind = "info" | "warn" | "error";

/** A problem the user should read (binder down, service missing...): never a stack trace. */
export class Problem extends Error {
  /** Always `Problem`. */
  override name = "Problem";
}

/** The session was closed while a call waited for the server to come back. */
export class Closed extends Error {
  /** The error's name. */
  override name = "Closed";
}

// ---------------------------------------------------------------------------
// The chat session: connection, name, room, receiving, recovery
// ---------------------------------------------------------------------------

/** What a {@linkcode ChatSession} needs: where the binders are, what shows, how patient to be. */
export interface SessionOptions {
  /** Where the binders are: asked in this order, every time the service is looked up. */
  binders: HostPort[];
  /** What shows messages and notices. */
  view: ChatView;
  /** The texts, in the user's language. */
  texts: Texts;
  /** Between attempts to reach binder and server. */
  retryMs: number;
  /** Attempts of the first connection before giving up; 0 = no limit. */
  attempts: number;
  /** How long one `aguardar_mensagens` waits on the server. */
  waitMs?: number;
  /** Between `receber_mensagens` polls, against an original server. */
  pollMs?: number;
  /** Between signs of life (`manter_sessao`) while outside any room: how soon a server gone shows (3 s). */
  keepAliveMs?: number;
  /** Timeout of an ordinary call. */
  callTimeoutMs?: number;
}

/**
 * One user's session with the chat service. The UI hands it lines
 * ({@linkcode ChatSession.handle}); it shows what happens through a
 * {@linkcode ChatView}. A single receive loop follows the current room; any
 * call that finds the server gone waits for one shared recovery (binder
 * lookup, the same name, the same room) and is then retried.
 */
export class ChatSession {
  readonly #options: Required<SessionOptions>;
  /** One client per binder, so lookups reuse its connection. */
  readonly #binders: { address: string; client: XmlRpcClient }[];
  /** What the binders asked before the one that answered said, as last shown. */
  #binderTrouble = "";
  readonly #view: ChatView;
  readonly #t: Texts;
  /** The language of the texts the server sends us (its notices among them). */
  readonly #lang: Lang;
  #client: XmlRpcClient | undefined;
  #address = "";
  #methods = new Set<string>();
  #name: string | undefined;
  #room: string | null = null;
  /** Live delivery: the id of the newest message shown. */
  #cursor: number | undefined;
  /** Polling: the last window `receber_mensagens` returned. */
  #window: ChatMessage[] = [];
  /** Polling: private messages we sent and showed ourselves, to skip if the server echoes them. */
  #ownPrivate: string[] = [];
  /** Who is in the room, as the join and the notices since tell: for completing names. */
  readonly #members = new Set<string>();
  /** Whoever we exchanged private messages with. */
  readonly #partners = new Set<string>();
  /** The rooms, as last listed. */
  #rooms: string[] = [];
  /** Bumped on every room change: answers for an older epoch are dropped. */
  #epoch = 0;
  #wake = new AbortController();
  readonly #closing = new AbortController();
  #recovering: Promise<void> | undefined;
  /** What the server said when it last could do nothing (a -32001 fault), until a call succeeds again. */
  #trouble: string | undefined;
  #receiving: Promise<void> | undefined;
  #quitting: Promise<void> | undefined;

  /** A session not yet connected: {@linkcode ChatSession.connect} finds the service. */
  constructor(options: SessionOptions) {
    this.#options = { waitMs: 20_000, pollMs: 1000, keepAliveMs: 3_000, callTimeoutMs: 10_000, ...options };
    this.#view = options.view;
    this.#t = options.texts;
    this.#lang = languageOf(options.texts.language);
    this.#binders = options.binders.map(({ host, port }) => ({
      address: `${host}:${port}`,
      client: new XmlRpcClient(endpointUrl(host, port), {
        timeoutMs: this.#options.callTimeoutMs,
        headers: { "accept-language": this.#t.language },
      }),
    }));
  }

  /** The registered name, once registered. */
  get name(): string | undefined {
    return this.#name;
  }

  /** The room the session follows (null: none). */
  get room(): string | null {
    return this.#room;
  }

  /** The people the user may address: the room's members and private partners, not the user. */
  get people(): string[] {
    return [...new Set([...this.#members, ...this.#partners])].filter((name) => name !== this.#name);
  }

  /** The rooms, as last listed (by /salas, on joining, or {@linkcode ChatSession.refreshRooms}). */
  get rooms(): string[] {
    return this.#rooms;
  }

  /** The server has live delivery (our extensions); false against an original server. */
  get live(): boolean {
    return this.#methods.has("aguardar_mensagens");
  }

  /** Where the chat service is (`host:port`), once found. */
  get address(): string {
    return this.#address;
  }

  /** The session was closed ({@linkcode ChatSession.quit}): nothing more goes out. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Finds ChatService through the binder, retrying; throws a {@linkcode Problem} when it gives up. */
  async connect(): Promise<void> {
    await this.#retrying(() => this.#locate(), this.#options.attempts);
    this.#view.notice(this.#t.connected(this.#address));
    if (!this.live) this.#view.notice(this.#t.polling(this.#options.pollMs / 1000));
  }

  /** Registers a name; false (and the server's reason shown) when refused. */
  async register(name: string): Promise<boolean> {
    const [ok, message] = await this.#call<Result<string>>("registrar_usuario", [name]);
    if (!ok) {
      this.#view.notice(sanitize(message), "error");
      return false;
    }
    this.#name = name;
    this.#view.notice(this.#t.welcome(sanitize(name)));
    this.#receiving ??= this.#receive();
    this.refreshRooms().catch(() => {});
    return true;
  }

  /** Lists the rooms again, quietly (for completing room names). */
  async refreshRooms(): Promise<void> {
    const [ok, rooms] = await this.#call<Result<string[]>>("listar_salas", []);
    if (ok) this.#rooms = rooms;
  }

  /** Runs one line typed by the user; `"quit"` when the user is done. */
  async handle(line: string): Promise<"quit" | undefined> {
    const input = parseInput(line);
    try {
      switch (input.kind) {
        case "empty":
          return;
        case "text":
          await this.say(input.text);
          return;
        case "unknown":
          this.#view.notice(this.#t.unknownCommand(sanitize(input.word)), "error");
          return;
        case "command":
          return await this.#command(input.command, input.rest);
      }
    } catch (error) {
      if (error instanceof Closed) return "quit";
      if (error instanceof Fault) {
        this.#view.notice(this.#t.fault(sanitize(error.message)), "error");
        return;
      }
      throw error;
    }
  }

  async #command(command: CommandName, rest: string): Promise<"quit" | undefined> {
    const t = this.#t;
    const needs = (syntax: string) => {
      if (rest) return true;
      this.#view.notice(t.usageOf(syntax), "error");
      return false;
    };
    switch (command) {
      case "create":
        if (needs(t.syntax.create)) {
          const room = roomArgument(rest);
          if (await this.create(room)) this.#view.notice(t.joinHint(sanitize(room)));
        }
        return;
      case "join":
        // As IRC's /join: a room that does not exist is created (and the server says so).
        if (needs(t.syntax.join)) await this.join(roomArgument(rest), { create: true });
        return;
      case "leave":
        await this.leave();
        return;
      case "rooms":
        await this.listRooms();
        return;
      case "users":
        await this.listUsers(roomArgument(rest) || undefined);
        return;
      case "msg": {
        const parsed = splitRecipient(rest);
        if (!parsed) this.#view.notice(t.usageOf(t.syntax.msg), "error");
        else await this.say(parsed.text, parsed.to);
        return;
      }
      case "delete":
        if (needs(t.syntax.delete)) await this.deleteRoom(roomArgument(rest));
        return;
      case "help":
        if (this.#view.help) this.#view.help();
        else this.#view.notice(t.help);
        return;
      case "quit":
        return "quit";
    }
  }

  /** Creates a room, and says how it went; true when created. */
  async create(room: string): Promise<boolean> {
    const [ok, message] = await this.#userCall<Result<string>>("criar_sala", [room]);
    this.#view.notice(sanitize(message), ok ? "info" : "error");
    return ok;
  }

  /**
   * Joins a room (with `create`, creating it first if it does not exist):
   * shows who is there and the recent history, then follows it live. False
   * (and the reason shown) when refused.
   */
  async join(room: string, options: { create?: boolean } = {}): Promise<boolean> {
    const previous = this.#room;
    // Out of the old room first, so its receive loop does not take the move for an eviction.
    this.#setRoom(null);
    let result: Result<JoinAnswer>;
    try {
      result = await this.#userCall<Result<JoinAnswer>>("entrar_na_sala", [this.#name!, room]);
      if (!result[0] && options.create && await this.#roomMissing(result, room)) {
        await this.create(room);
        result = await this.#userCall<Result<JoinAnswer>>("entrar_na_sala", [this.#name!, room]);
      }
    } catch (error) {
      // The server did not move us: keep following the room we are in.
      this.#setRoom(previous);
      throw error;
    }
    if (!result[0]) {
      this.#setRoom(previous);
      this.#view.notice(sanitize(result[1]), "error");
      return false;
    }
    const { usuarios, mensagens, cursor, sala } = result[1];
    const name = typeof sala === "string" ? sala : room.trim();
    this.#members.clear();
    for (const user of usuarios) this.#members.add(user);
    if (!this.#rooms.includes(name)) this.#rooms = [...this.#rooms, name];
    this.#setRoom(name);
    this.#view.notice(this.#t.joined(sanitize(name), usuarios.map(sanitize)));
    for (const message of mensagens) this.#show(message, true);
    this.#window = mensagens;
    this.#ownPrivate = [];
    this.#cursor = typeof cursor === "number" ? cursor : maxId(mensagens);
    return true;
  }

  /** Leaves the current room. */
  async leave(): Promise<void> {
    const room = this.#room;
    this.#setRoom(null);
    const [ok, message] = await this.#userCall<Result<string>>("sair_da_sala", [this.#name!]);
    if (ok && room) this.#view.notice(this.#t.left(sanitize(room)));
    else this.#view.notice(sanitize(message), ok ? "info" : "error");
  }

  /** Shows the rooms. */
  async listRooms(): Promise<void> {
    const [ok, rooms] = await this.#call<Result<string[]>>("listar_salas", []);
    if (!ok) return this.#view.notice(sanitize(rooms), "error");
    this.#rooms = rooms;
    this.#view.notice(rooms.length ? this.#t.rooms(rooms.map(sanitize)) : this.#t.noRooms);
  }

  /** Shows who is in a room (by default the current one). */
  async listUsers(room = this.#room ?? undefined): Promise<void> {
    if (room === undefined) return this.#view.notice(this.#t.notInRoom, "error");
    const [ok, users] = await this.#call<Result<string[]>>("listar_usuarios", [room]);
    if (!ok) return this.#view.notice(sanitize(users), "error");
    const name = sanitize(room.trim());
    this.#view.notice(users.length ? this.#t.users(name, users.map(sanitize)) : this.#t.emptyRoom(name));
  }

  /**
   * Sends to the current room, or privately to `to` (anyone online, with our
   * extension `enviar_privada`; else a member of the room). Our own message
   * shows when the server echoes it. A text over the server's limit goes in
   * parts; while the server says `devagar`, it waits and tries again:
   * nothing typed is dropped by the rate limit.
   */
  async say(text: string, to?: string): Promise<void> {
    const anywhere = to !== undefined && this.#methods.has("enviar_privada");
    if (this.#room === null && !anywhere) return this.#view.notice(this.#t.notInRoom, "error");
    if (to !== undefined) this.#partners.add(to);
    for (const part of splitMessage(text)) {
      // One key per message, however many times it is sent: a server stores it once.
      const keyed = { [SEND_KEY_HEADER]: crypto.randomUUID() };
      const [ok, message] = await this.#patiently(() => {
        if (anywhere) return this.#userCall<Result<string>>("enviar_privada", [this.#name!, to, part], keyed);
        if (this.#room === null) return Promise.resolve<Result<string>>([false, this.#t.notInRoom]);
        return this.#userCall<Result<string>>(
          "enviar_mensagem",
          [this.#name!, this.#room, part, to ?? null],
          keyed,
        );
      });
      if (!ok) return this.#view.notice(sanitize(message), "error");
      if (to !== undefined && (!this.live || this.#room === null)) {
        // The original server never echoes a private message to its sender, and outside any room
        // there is no echo to follow: show it now.
        const own: ChatMessage = {
          tipo: "unicast",
          origem: this.#name!,
          destino: to,
          conteudo: part,
          timestamp: localWallClock(new Date()),
        };
        this.#ownPrivate.push(privateKey(own));
        this.#view.message(own);
      }
    }
  }

  /** Sends, and while the server answers `devagar` waits (longer each time, up to a second) and sends again. */
  async #patiently(send: () => Promise<Result<string>>): Promise<Result<string>> {
    let delayMs = 100;
    let held = false;
    try {
      for (;;) {
        const result = await send();
        if (reasonOf(result) !== Reason.RATE_LIMITED) return result;
        if (!held) this.#view.throttled?.(held = true);
        await sleep(delayMs, this.#closing.signal);
        if (this.closed) throw new Closed();
        delayMs = Math.min(delayMs * 2, 1000);
      }
    } finally {
      if (held) this.#view.throttled?.(false);
    }
  }

  /** Deletes a room this user created (a server with our extensions only). */
  async deleteRoom(room: string): Promise<void> {
    if (!this.#methods.has("excluir_sala")) {
      return this.#view.notice(this.#t.notSupported("/excluir"), "error");
    }
    const [ok, message] = await this.#userCall<Result<string>>("excluir_sala", [this.#name!, room]);
    this.#view.notice(sanitize(message), ok ? "info" : "error");
  }

  /** Leaves the service (the name is free again at once) and stops everything. Safe to call twice. */
  quit(): Promise<void> {
    this.#quitting ??= (async () => {
      this.#closing.abort();
      this.#wake.abort();
      const client = this.#client;
      const name = this.#name;
      if (client && name !== undefined) {
        try {
          const timeoutMs = Math.min(3000, this.#options.callTimeoutMs);
          if (this.#methods.has("sair_do_servico")) {
            await client.call("sair_do_servico", [name], { timeoutMs });
          } else if (this.#room !== null) await client.call("sair_da_sala", [name], { timeoutMs });
        } catch (error) {
          this.#view.notice(this.#t.couldNotLeave(this.#problemOf(error)), "warn");
        }
      }
      this.#view.notice(this.#t.bye);
    })();
    return this.#quitting;
  }

  // --- receiving --------------------------------------------------------------

  /** The one receive loop: follows whatever room the session is in, until it closes. */
  async #receive(): Promise<void> {
    while (!this.closed) {
      await this.#recovering?.catch(() => {});
      const epoch = this.#epoch;
      const room = this.#room;
      const wake = this.#wake.signal;
      const client = this.#client!;
      try {
        if (room === null) {
          await this.#idle(wake);
        } else if (this.live) {
          const { waitMs, callTimeoutMs } = this.#options;
          const result = await client.call<Result<{ mensagens: ChatMessage[]; cursor: number }>>(
            "aguardar_mensagens",
            [this.#name!, room, this.#cursor ?? 0, waitMs],
            { timeoutMs: waitMs + callTimeoutMs, signal: wake },
          );
          if (epoch !== this.#epoch || this.#recovering) continue;
          if (!result[0]) {
            await this.#lostRoom(room, result);
            continue;
          }
          for (const message of result[1].mensagens) {
            if (typeof message.id === "number" && this.#cursor !== undefined && message.id <= this.#cursor) {
              continue;
            }
            this.#show(message);
            if (typeof message.id === "number") this.#cursor = Math.max(this.#cursor ?? 0, message.id);
          }
          this.#cursor = Math.max(this.#cursor ?? 0, result[1].cursor);
        } else {
          const result = await client.call<Result<ChatMessage[]>>("receber_mensagens", [this.#name!, room], {
            signal: wake,
          });
          if (epoch !== this.#epoch || this.#recovering) continue;
          if (!result[0]) {
            await this.#lostRoom(room, result);
            continue;
          }
          this.#showPolled(result[1]);
          await sleep(this.#options.pollMs, wake);
        }
      } catch (error) {
        if (wake.aborted || this.closed) continue;
        if (error instanceof Unreachable) {
          await this.#recover(this.#t.network[error.kind]).catch(() => {});
          continue;
        }
        this.#view.notice(this.#t.receiveFailed(sanitize((error as Error).message)), "error");
        await sleep(this.#options.retryMs, wake);
      }
    }
  }

  /** Outside any room: a sign of life now and then, so the server keeps the name. */
  async #idle(wake: AbortSignal): Promise<void> {
    await sleep(this.#options.keepAliveMs, wake);
    if (wake.aborted || this.closed || !this.#methods.has("manter_sessao")) return;
    const result = await this.#client!.call<Result<string>>("manter_sessao", [this.#name!]);
    if (sessionGone(result)) await this.#recover(result[1], "session").catch(() => {});
  }

  #showPolled(messages: ChatMessage[]): void {
    const fresh = newMessages(this.#window, messages);
    this.#window = messages;
    for (const message of fresh) {
      const own = isPrivate(message) ? this.#ownPrivate.indexOf(privateKey(message)) : -1;
      if (own >= 0) {
        this.#ownPrivate.splice(own, 1);
        continue;
      }
      this.#show(message);
    }
  }

  /** Shows a message, and keeps track of who is in the room and who writes privately. */
  #show(message: ChatMessage, history = false): void {
    if (message.origem === SERVER) {
      // Notices come in our language: read them back in it.
      const notice = noticeOf(message.conteudo, this.#lang);
      if (notice?.key === "joinedNotice") this.#members.add(String(notice.args[0]));
      else if (notice?.key === "leftNotice") this.#members.delete(String(notice.args[0]));
    } else if (isPrivate(message)) {
      this.#partners.add(message.origem === this.#name ? message.destino : message.origem);
    } else {
      this.#members.add(message.origem);
    }
    this.#view.message(message, history);
  }

  /** The server says we are not in the room we follow: our session is gone, or the room is. */
  async #lostRoom(room: string, refusal: Result<unknown>): Promise<void> {
    const message = String(refusal[1]);
    if (sessionGone(refusal)) {
      await this.#recover(message, "session").catch(() => {});
      return;
    }
    if (this.#room !== room) return;
    this.#setRoom(null);
    this.#view.notice(this.#t.lostRoom(sanitize(room), sanitize(message)), "warn");
  }

  /**
   * Whether a refusal to join means the room does not exist: by its reason,
   * or, from an original server (which gives none), by the list of rooms.
   */
  async #roomMissing(refusal: Result<unknown>, room: string): Promise<boolean> {
    const reason = reasonOf(refusal);
    if (reason !== undefined) return reason === Reason.ROOM_MISSING;
    const [, rooms] = await this.#call<Result<string[]>>("listar_salas", []);
    return Array.isArray(rooms) && !rooms.includes(room.trim());
  }

  #setRoom(room: string | null): void {
    this.#room = room;
    this.#epoch++;
    this.#wake.abort();
    this.#wake = new AbortController();
    this.#view.roomChanged(room);
  }

  // --- calls and recovery -----------------------------------------------------

  /** A call that, when the server is gone, waits for the recovery and tries again. */
  async #call<T>(method: string, params: XmlRpcValue[], headers?: Record<string, string>): Promise<T> {
    for (;;) {
      if (this.closed) throw new Closed();
      await this.#recovering?.catch(() => {});
      try {
        const result = await this.#client!.call<T>(method, params, { signal: this.#closing.signal, headers });
        if (this.#trouble !== undefined) {
          this.#trouble = undefined;
          this.#view.connection?.(true);
          this.#view.notice(this.#t.troubleOver);
        }
        return result;
      } catch (error) {
        if (this.closed) throw new Closed();
        if (error instanceof Unreachable) await this.#recover(this.#t.network[error.kind]);
        // The server is there but cannot use its store (a failed commit, Redis away) and did nothing:
        // what we asked is kept and asked again, every --retry seconds, once the server can take it.
        // A message with its send key may be sent again whatever became of it: the server stores it once.
        else if (
          error instanceof Fault &&
          (error.code === FaultCode.UNAVAILABLE ||
            (error.code === FaultCode.INTERNAL_ERROR && headers?.[SEND_KEY_HEADER] !== undefined))
        ) {
          await this.#troubled(sanitize(error.message));
        } else throw error;
      }
    }
  }

  /** The server said it can do nothing now: said once (until it can again), then a pause before trying again. */
  async #troubled(reason: string): Promise<void> {
    if (this.#trouble !== reason) {
      this.#view.notice(this.#t.serverTrouble(reason, this.#options.retryMs / 1000), "warn");
    }
    if (this.#trouble === undefined) this.#view.connection?.(false);
    this.#trouble = reason;
    await sleep(this.#options.retryMs, this.#closing.signal).catch(() => {});
  }

  /** A call naming our user: when the server has forgotten our session, register again and retry once. */
  async #userCall<T extends Result<unknown>>(
    method: string,
    params: XmlRpcValue[],
    headers?: Record<string, string>,
  ): Promise<T> {
    const result = await this.#call<T>(method, params, headers);
    if (!sessionGone(result)) return result;
    await this.#recover(String(result[1]), "session");
    return await this.#call<T>(method, params, headers);
  }

  /** One recovery at a time, shared by every caller that found the server gone. */
  #recover(reason: string, why: "network" | "session" = "network"): Promise<void> {
    this.#recovering ??= this.#reconnect(sanitize(reason), why).finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async #reconnect(reason: string, why: "network" | "session"): Promise<void> {
    const t = this.#t;
    const sessionOnly = why === "session";
    this.#view.notice(sessionOnly ? t.sessionLost(reason) : t.connectionLost(reason), "warn");
    if (!sessionOnly) this.#view.connection?.(false);
    await this.#retrying(async (attempt) => {
      if (!sessionOnly || attempt > 1) await this.#locate();
      if (this.#name !== undefined) await this.#restore();
    }, 0);
    this.#view.connection?.(true);
    this.#view.notice(t.reconnected(this.#address, sanitize(this.#name ?? ""), this.#room));
  }

  /**
   * Runs `action` until it succeeds, every `--retry` seconds, saying what is wrong each time
   * it changes; gives up after `attempts` (0: never) or when the session is closed.
   */
  async #retrying(action: (attempt: number) => Promise<void>, attempts: number): Promise<void> {
    const { retryMs } = this.#options;
    let reported = "";
    for (let attempt = 1;; attempt++) {
      if (this.closed) throw new Closed();
      try {
        return await action(attempt);
      } catch (error) {
        // Closing aborts what is on its way: that is no problem to report.
        if (this.closed) throw new Closed();
        const problem = this.#problemOf(error);
        if (attempts > 0 && attempt >= attempts) throw new Problem(this.#t.giveUp(problem, attempt));
        if (problem !== reported) this.#view.notice(this.#t.retrying(problem, retryMs / 1000), "warn");
        reported = problem;
        await sleep(retryMs, this.#closing.signal);
      }
    }
  }

  /** The same name again, and the same room; then receiving carries on from our cursor. */
  async #restore(): Promise<void> {
    const client = this.#client!;
    const name = this.#name!;
    // The same server with our session still alive (a network hiccup): nothing to register.
    const alive = this.#methods.has("manter_sessao") &&
      (await client.call<Result<string>>("manter_sessao", [name]))[0];
    if (!alive) {
      const registration = await client.call<Result<string>>("registrar_usuario", [name]);
      // An original server never frees a name, gives no reasons and has no sessions: a refusal
      // there is our old self.
      if (reasonOf(registration) !== undefined) {
        throw new Problem(this.#t.nameStillTaken(sanitize(name), sanitize(registration[1])));
      }
    }
    const room = this.#room;
    if (room === null) return;
    let joined = await client.call<Result<JoinAnswer>>("entrar_na_sala", [name, room]);
    const refused = reasonOf(joined);
    if (!joined[0] && (refused === Reason.ROOM_MISSING || refused === undefined)) {
      // The room went with the server (or was removed meanwhile): make it again. An original
      // server gives no reason: try.
      await client.call("criar_sala", [room]);
      joined = await client.call<Result<JoinAnswer>>("entrar_na_sala", [name, room]);
    }
    if (!joined[0]) {
      this.#setRoom(null);
      this.#view.notice(this.#t.rejoinFailed(sanitize(room), sanitize(joined[1])), "error");
      return;
    }
    const serverCursor = joined[1].cursor;
    if (typeof serverCursor === "number" && (this.#cursor === undefined || serverCursor < this.#cursor)) {
      // A server that lost its history: what we hold is from another life. Start from now.
      this.#cursor = serverCursor;
    }
    // Same room, new epoch: the receive loop starts over from our cursor (or window).
    this.#setRoom(room);
  }

  /**
   * Asks the binders in turn where ChatService is, until one says; then asks
   * the service what it offers.
   */
  async #locate(): Promise<void> {
    const problems: string[] = [];
    let found: { endereco: string; porta: number } | undefined;
    for (const binder of this.#binders) {
      try {
        found = await this.#lookUp(binder);
        break;
      } catch (error) {
        if (!(error instanceof Problem)) throw error;
        problems.push(error.message);
      }
    }
    const trouble = problems.join(" ");
    if (!found) throw new Problem(trouble);
    // Found past binders that failed: said once, not at every lookup.
    if (trouble && trouble !== this.#binderTrouble) this.#view.notice(trouble, "warn");
    this.#binderTrouble = trouble;
    const { endereco, porta } = found;
    const address = sanitize(`${endereco}:${porta}`);
    const url = endpointUrl(String(endereco), Number(porta));
    // The same address keeps its client. Another starts with its cookies: our session, which another
    // instance sharing the sessions knows (one that does not refuses it, and #restore registers again).
    const client = this.#client?.url === url ? this.#client : new XmlRpcClient(url, {
      timeoutMs: this.#options.callTimeoutMs,
      headers: { ...CHAT_HEADERS, "accept-language": this.#t.language },
      cookiesFrom: this.#client,
    });
    let methods: string[] = [];
    try {
      methods = await client.call<string[]>("system.listMethods", [], { signal: this.#closing.signal });
    } catch (error) {
      if (error instanceof Unreachable) {
        throw new Problem(this.#t.serviceUnreachable(address, this.#t.network[error.kind]));
      }
      // A fault: an original server, with no introspection and no extensions.
      if (!(error instanceof Fault)) throw error;
    }
    this.#client = client;
    this.#address = address;
    this.#methods = new Set(Array.isArray(methods) ? methods : []);
  }

  /** Where one binder says ChatService is; a {@linkcode Problem} naming the binder when it cannot say. */
  async #lookUp({ address, client }: { address: string; client: XmlRpcClient }): Promise<
    { endereco: string; porta: number }
  > {
    let found: Result<{ endereco: string; porta: number }>;
    try {
      found = await client.call("buscar_procedimento", ["ChatService"], { signal: this.#closing.signal });
    } catch (error) {
      if (error instanceof Unreachable) {
        throw new Problem(this.#t.binderUnreachable(address, this.#t.network[error.kind]));
      }
      if (error instanceof Fault) throw new Problem(this.#t.binderFault(address, sanitize(error.message)));
      throw error;
    }
    if (!found[0]) throw new Problem(this.#t.notRegistered(address));
    return found[1];
  }

  #problemOf(error: unknown): string {
    if (error instanceof Problem) return error.message;
    if (error instanceof Unreachable) {
      return this.#t.serviceUnreachable(this.#address, this.#t.network[error.kind]);
    }
    if (error instanceof Fault) return this.#t.fault(sanitize(error.message));
    if (error instanceof Closed) return error.message;
    return sanitize(String((error as Error)?.message ?? error));
  }
}
