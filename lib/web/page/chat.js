// @ts-check
/**
 * The page's chat session: what the terminal client's session does, for a
 * browser tab. It calls the chat server it was served from (same origin, so
 * the `HttpOnly; SameSite=Strict` session cookie rides along), follows the
 * current room through the long wait (`aguardar_mensagens` with a cursor),
 * and when the server goes away or forgets the session it registers the same
 * name again, rejoins the room and carries on from its cursor. Messages go
 * out in order from an outbox, each with its send key (`X-Chat-Chave`): one
 * sent again after an answer that never came is stored once.
 *
 * Each tab posts to a path of its own (`rpc/TAB`); the server scopes the
 * session cookie to the path it was issued on, so two tabs of one browser
 * are two users. No DOM here: the page shows what happens through a
 * {@linkcode View}.
 *
 * @module
 */

import { parseInput, splitRecipient } from "../../client/commands.js";
import { decodeResponse, encodeCall, Fault } from "./xmlrpc.js";

/** @typedef {import("../../client/commands.js").CommandName} CommandName */

/**
 * A chat message as the server sends it.
 * @typedef {{ id?: number; tipo: string; origem: string; destino: string; conteudo: string; timestamp: Date }} ChatMessage
 */

/**
 * A result: `[true, payload]`, or `[false, message, reason]` (reasons asked with `X-Chat-Motivos: 1`).
 * @template T
 * @typedef {[true, T] | [false, string, string?]} Result
 */

/**
 * What the page shows.
 * @typedef {object} View
 * @property {(message: ChatMessage, history: boolean) => void} message a chat message
 * @property {(text: string, kind: "info" | "warn" | "error") => void} notice a line of the page's own
 * @property {(room: string | null) => void} roomChanged the room followed
 * @property {(users: string[]) => void} members who is in the room
 * @property {(rooms: string[]) => void} rooms the rooms
 * @property {(online: boolean) => void} connection whether the server answers
 * @property {(pending: { text: string; to?: string }[]) => void} pending the messages not sent yet
 * @property {() => void} help the list of commands
 */

/**
 * A message in the outbox.
 * @typedef {{ text: string; to?: string; key: string }} Outgoing
 */

/**
 * What survives a reload (sessionStorage) or a move to another server (the URL's fragment).
 * @typedef {{ name: string; room: string | null; cursor?: number; outbox: Outgoing[] }} Saved
 */

/** Header: ask for the reason of every refusal. */
const REASONS_HEADER = "X-Chat-Motivos";
/** Header: the key of one message sent. */
const SEND_KEY_HEADER = "X-Chat-Chave";
const SESSION_GONE = new Set(["sessao_invalida", "nao_registrado"]);
/** The server's fault code for "could do nothing now, try again" (its store away). */
const UNAVAILABLE = -32001;

/** The server did not answer (no connection, a timeout, not XML-RPC). */
export class Unreachable extends Error {}
/** The session was closed: nothing more goes out. */
class Closed extends Error {}

/**
 * A fresh random key: `crypto.randomUUID` exists only in secure contexts, and a LAN page is plain http.
 * @returns {string}
 */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** @param {Result<unknown>} result */
function reasonOf(result) {
  return result[0] ? undefined : result[2];
}

/** @param {Result<unknown>} result */
function sessionGone(result) {
  const reason = reasonOf(result);
  return reason !== undefined && SESSION_GONE.has(reason);
}

// ---------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------

/**
 * @typedef {object} SessionOptions
 * @property {string} endpoint where to post calls (this tab's path on the page's origin)
 * @property {View} view what shows
 * @property {import("./texts.js").Texts} texts the page's words
 * @property {(saved: Saved | undefined) => void} [save] keeps what survives a reload
 * @property {(saved: Saved) => void} [moveAway] takes the session to another server (through the binder)
 * @property {number} [waitMs] one long wait on the server
 * @property {number} [retryMs] between attempts to reach the server
 * @property {number} [callTimeoutMs] an ordinary call
 * @property {number} [keepAliveMs] signs of life while outside any room
 * @property {number} [moveAfterMs] unreachable this long: look for another server
 */

export class ChatSession {
  /** @param {SessionOptions} options */
  constructor(options) {
    this.endpoint = options.endpoint;
    this.view = options.view;
    this.t = options.texts;
    this.saveState = options.save ?? (() => {});
    this.moveAway = options.moveAway;
    this.waitMs = options.waitMs ?? 20_000;
    this.retryMs = options.retryMs ?? 1000;
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.keepAliveMs = options.keepAliveMs ?? 10_000;
    this.moveAfterMs = options.moveAfterMs ?? 20_000;
    /** @type {string | undefined} */
    this.name = undefined;
    /** @type {string | null} */
    this.room = null;
    /** @type {number | undefined} the id of the newest message shown */
    this.cursor = undefined;
    /** @type {Outgoing[]} */
    this.outbox = [];
    /** @type {string[]} */
    this.members = [];
    this.epoch = 0;
    this.wake = new AbortController();
    this.closing = new AbortController();
    /** @type {Promise<void> | undefined} */
    this.recovering = undefined;
    /** @type {Promise<void> | undefined} */
    this.receiving = undefined;
    /** @type {Promise<void> | undefined} */
    this.sending = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.membersTimer = undefined;
    /** A page just loaded that resumes a session: its log is empty, the history shows again. */
    this.freshPage = false;
  }

  get closed() {
    return this.closing.signal.aborted;
  }

  // --- calls ------------------------------------------------------------------

  /**
   * One call, as it goes: the value, a thrown {@linkcode Fault}, or {@linkcode Unreachable}.
   * @template T
   * @param {string} method
   * @param {unknown[]} params
   * @param {{ signal?: AbortSignal; timeoutMs?: number; headers?: Record<string, string> }} [options]
   * @returns {Promise<T>}
   */
  async rawCall(method, params, options = {}) {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.callTimeoutMs);
    const signal = AbortSignal.any([
      timeout,
      this.closing.signal,
      ...(options.signal ? [options.signal] : []),
    ]);
    let text;
    try {
      const response = await fetch(this.endpoint, {
        method: "POST",
        headers: { "content-type": "text/xml", [REASONS_HEADER]: "1", ...options.headers },
        body: encodeCall(method, params),
        credentials: "same-origin",
        cache: "no-store",
        signal,
      });
      text = await response.text();
      if (!response.ok) throw new Unreachable(`HTTP ${response.status}`);
    } catch (error) {
      if (this.closed) throw new Closed();
      if (options.signal?.aborted) throw options.signal.reason;
      if (error instanceof Unreachable) throw error;
      throw new Unreachable(
        timeout.aborted ? "timeout" : String(/** @type {Error} */ (error)?.message ?? error),
      );
    }
    return /** @type {T} */ (decodeResponse(text));
  }

  /**
   * A call that, when the server is gone, waits for the recovery and tries again.
   * @template T
   * @param {string} method
   * @param {unknown[]} params
   * @param {Record<string, string>} [headers]
   * @returns {Promise<T>}
   */
  async call(method, params, headers) {
    for (;;) {
      if (this.closed) throw new Closed();
      await this.recovering?.catch(() => {});
      try {
        return await this.rawCall(method, params, { headers });
      } catch (error) {
        if (error instanceof Unreachable) await this.recover(this.t.unreachable).catch(() => {});
        else if (
          error instanceof Fault &&
          (error.code === UNAVAILABLE || (headers?.[SEND_KEY_HEADER] && error.code === -32603))
        ) {
          await sleep(this.retryMs, this.closing.signal);
        } else throw error;
      }
    }
  }

  /**
   * A call naming our user: when the server forgot our session, register again and retry once.
   * @template {Result<unknown>} T
   * @param {string} method
   * @param {unknown[]} params
   * @param {Record<string, string>} [headers]
   * @returns {Promise<T>}
   */
  async userCall(method, params, headers) {
    const result = /** @type {T} */ (await this.call(method, params, headers));
    if (!sessionGone(result)) return result;
    await this.recover(String(result[1]), "session");
    return /** @type {T} */ (await this.call(method, params, headers));
  }

  // --- what the user does -------------------------------------------------------

  /**
   * Registers a name; false (the server's reason shown) when refused.
   * @param {string} name
   */
  async register(name) {
    const result = /** @type {Result<string>} */ (await this.call("registrar_usuario", [name]));
    if (!result[0]) {
      this.view.notice(result[1], "error");
      return false;
    }
    this.name = name.trim();
    this.start();
    this.refreshRooms();
    return true;
  }

  /**
   * Carries on a session saved before a reload or a move: the same name (registered again if the
   * server forgot it), the same room, the messages not sent yet; then the messages after the cursor.
   * @param {Saved} saved
   */
  async resume(saved) {
    this.name = saved.name;
    this.room = saved.room;
    this.cursor = saved.cursor;
    this.outbox = saved.outbox ?? [];
    this.freshPage = true;
    this.view.pending(this.outbox);
    await this.recover(this.t.connecting, "resume");
    this.start();
    this.refreshRooms();
  }

  start() {
    this.receiving ??= this.receive();
    this.flush();
  }

  /**
   * Runs one line typed in the message box.
   * @param {string} line
   * @returns {Promise<"quit" | undefined>}
   */
  async handle(line) {
    const input = parseInput(line);
    try {
      switch (input.kind) {
        case "empty":
          return;
        case "text":
          this.say(input.text);
          return;
        case "unknown":
          this.view.notice(this.t.unknownCommand(input.word), "error");
          return;
        case "command":
          return await this.command(input.command, input.rest);
      }
    } catch (error) {
      if (error instanceof Closed) return "quit";
      if (error instanceof Fault) {
        this.view.notice(this.t.fault(error.message), "error");
        return;
      }
      throw error;
    }
  }

  /**
   * @param {CommandName} command
   * @param {string} rest
   * @returns {Promise<"quit" | undefined>}
   */
  async command(command, rest) {
    const t = this.t;
    /** @param {string} syntax */
    const needs = (syntax) => {
      if (rest) return true;
      this.view.notice(t.usageOf(syntax), "error");
      return false;
    };
    switch (command) {
      case "create":
        if (needs(t.syntax.create)) await this.create(rest);
        return;
      case "join":
        if (needs(t.syntax.join)) await this.join(rest, { create: true });
        return;
      case "leave":
        await this.leave();
        return;
      case "rooms":
        await this.listRooms();
        return;
      case "users":
        await this.listUsers(rest || this.room || undefined);
        return;
      case "msg": {
        const parsed = splitRecipient(rest);
        if (!parsed) this.view.notice(t.usageOf(t.syntax.msg), "error");
        else this.say(parsed.text, parsed.to);
        return;
      }
      case "delete":
        if (needs(t.syntax.delete)) await this.deleteRoom(rest);
        return;
      case "help":
        this.view.help();
        return;
      case "quit":
        await this.quit();
        return "quit";
    }
  }

  /** @param {string} room */
  async create(room) {
    const [ok, message] = /** @type {Result<string>} */ (await this.userCall("criar_sala", [room]));
    this.view.notice(String(message), ok ? "info" : "error");
    this.refreshRooms();
    return ok;
  }

  /**
   * Joins a room (with `create`, creating it first when missing): who is there, the recent history,
   * then live delivery from the server's cursor.
   * @param {string} room
   * @param {{ create?: boolean }} [options]
   */
  async join(room, options = {}) {
    const previous = this.room;
    this.setRoom(null);
    /** @type {Result<{ usuarios: string[]; mensagens: ChatMessage[]; cursor?: number }>} */
    let result;
    try {
      result = await this.userCall("entrar_na_sala", [this.name, room]);
      if (!result[0] && options.create && reasonOf(result) === "sala_inexistente") {
        await this.create(room);
        result = await this.userCall("entrar_na_sala", [this.name, room]);
      }
    } catch (error) {
      this.setRoom(previous);
      throw error;
    }
    if (!result[0]) {
      this.setRoom(previous);
      this.view.notice(result[1], "error");
      return false;
    }
    const { usuarios, mensagens, cursor } = result[1];
    const name = room.trim();
    this.view.notice(this.t.joined(name, usuarios), "info");
    this.showMembers(usuarios);
    for (const message of mensagens) this.view.message(message, true);
    this.cursor = typeof cursor === "number" ? cursor : maxId(mensagens);
    this.setRoom(name);
    this.refreshRooms();
    return true;
  }

  async leave() {
    const room = this.room;
    this.setRoom(null);
    const [ok, message] = /** @type {Result<string>} */ (await this.userCall("sair_da_sala", [this.name]));
    if (ok && room) this.view.notice(this.t.left(room), "info");
    else this.view.notice(String(message), ok ? "info" : "error");
    this.showMembers([]);
  }

  async listRooms() {
    const [ok, rooms] = /** @type {Result<string[]>} */ (await this.call("listar_salas", []));
    if (!ok) return this.view.notice(String(rooms), "error");
    this.view.rooms(rooms);
    this.view.notice(rooms.length ? this.t.roomList(rooms) : this.t.noRooms, "info");
  }

  /** @param {string | undefined} room */
  async listUsers(room) {
    if (room === undefined) return this.view.notice(this.t.notInRoom, "error");
    const [ok, users] = /** @type {Result<string[]>} */ (await this.call("listar_usuarios", [room]));
    if (!ok) return this.view.notice(String(users), "error");
    const name = room.trim();
    this.view.notice(users.length ? this.t.userList(name, users) : this.t.emptyRoom(name), "info");
  }

  /** @param {string} room */
  async deleteRoom(room) {
    const [ok, message] =
      /** @type {Result<string>} */ (await this.userCall("excluir_sala", [this.name, room]));
    this.view.notice(String(message), ok ? "info" : "error");
    this.refreshRooms();
  }

  /** The rooms again, quietly. */
  refreshRooms() {
    this.call("listar_salas", []).then((result) => {
      const [ok, rooms] = /** @type {Result<string[]>} */ (result);
      if (ok) this.view.rooms(rooms);
    }, () => {});
  }

  /**
   * Queues a message to the current room, or a private one to `to` (anyone online); it goes out in
   * order, and shows when the server echoes it back.
   * @param {string} text
   * @param {string} [to]
   */
  say(text, to) {
    if (this.room === null && to === undefined) return this.view.notice(this.t.notInRoom, "error");
    this.outbox.push(to === undefined ? { text, key: randomKey() } : { text, to, key: randomKey() });
    this.changed();
    this.flush();
  }

  flush() {
    this.sending ??= this.send().finally(() => {
      this.sending = undefined;
      if (this.outbox.length && !this.closed) this.flush();
    });
  }

  /** Sends the outbox in order; each message once, however many times it has to go. */
  async send() {
    let delayMs = 100;
    while (this.outbox.length && !this.closed) {
      const next = /** @type {Outgoing} */ (this.outbox[0]);
      const headers = { [SEND_KEY_HEADER]: next.key };
      let result;
      try {
        if (next.to !== undefined) {
          result = /** @type {Result<string>} */ (
            await this.userCall("enviar_privada", [this.name, next.to, next.text], headers)
          );
        } else if (this.room === null) result = /** @type {Result<string>} */ ([false, this.t.notInRoom]);
        else {
          result = /** @type {Result<string>} */ (
            await this.userCall("enviar_mensagem", [this.name, this.room, next.text, null], headers)
          );
        }
      } catch (error) {
        if (error instanceof Closed) return;
        result =
          /** @type {Result<string>} */ ([false, this.t.fault(String(/** @type {Error} */ (error).message))]);
      }
      if (reasonOf(result) === "devagar") {
        if (delayMs === 100) this.view.notice(this.t.slow, "warn");
        await sleep(delayMs, this.closing.signal);
        delayMs = Math.min(2 * delayMs, 1000);
        continue;
      }
      delayMs = 100;
      this.outbox.shift();
      this.changed();
      if (!result[0]) this.view.notice(result[1], "error");
      else if (next.to !== undefined && this.room === null) {
        // Outside any room no echo comes back: shown now.
        this.view.message({
          tipo: "unicast",
          origem: String(this.name),
          destino: next.to,
          conteudo: next.text,
          timestamp: new Date(),
        }, false);
      }
    }
  }

  /** Leaves the service: the name is free at once. */
  async quit() {
    const name = this.name;
    this.closing.abort();
    this.wake.abort();
    if (name !== undefined) {
      const quitting = new ChatSession({ endpoint: this.endpoint, view: this.view, texts: this.t });
      await quitting.rawCall("sair_do_servico", [name], { timeoutMs: 3000 }).catch(() => {});
    }
    this.saveState(undefined);
    this.view.notice(this.t.bye, "info");
  }

  // --- receiving --------------------------------------------------------------

  /** The one receive loop: follows whatever room the session is in, until it closes. */
  async receive() {
    while (!this.closed) {
      await this.recovering?.catch(() => {});
      const epoch = this.epoch;
      const room = this.room;
      const wake = this.wake.signal;
      try {
        if (room === null) {
          await sleep(this.keepAliveMs, wake);
          if (wake.aborted || this.closed) continue;
          const result = /** @type {Result<string>} */ (await this.rawCall("manter_sessao", [this.name]));
          if (sessionGone(result)) await this.recover(result[1], "session").catch(() => {});
          continue;
        }
        /** @type {Result<{ mensagens: ChatMessage[]; cursor: number }>} */
        const result = await this.rawCall("aguardar_mensagens", [
          this.name,
          room,
          this.cursor ?? 0,
          this.waitMs,
        ], {
          signal: wake,
          timeoutMs: this.waitMs + this.callTimeoutMs,
        });
        if (epoch !== this.epoch || this.recovering) continue;
        if (!result[0]) {
          await this.lostRoom(room, result);
          continue;
        }
        let notices = false;
        for (const message of result[1].mensagens) {
          if (typeof message.id === "number" && this.cursor !== undefined && message.id <= this.cursor) {
            continue;
          }
          this.view.message(message, false);
          if (message.origem === "SERVER") notices = true;
          if (typeof message.id === "number") this.cursor = Math.max(this.cursor ?? 0, message.id);
        }
        this.cursor = Math.max(this.cursor ?? 0, result[1].cursor);
        this.changed();
        if (notices) this.refreshMembers();
      } catch (error) {
        if (wake.aborted || this.closed) continue;
        if (error instanceof Unreachable) {
          await this.recover(this.t.unreachable).catch(() => {});
          continue;
        }
        this.view.notice(this.t.fault(String(/** @type {Error} */ (error)?.message ?? error)), "error");
        await sleep(this.retryMs, wake);
      }
    }
  }

  /** Who is in the room, asked again (after a join or leave notice), at most once in a moment. */
  refreshMembers() {
    if (this.membersTimer !== undefined) return;
    this.membersTimer = setTimeout(() => {
      this.membersTimer = undefined;
      const room = this.room;
      if (room === null) return;
      this.call("listar_usuarios", [room]).then((result) => {
        const [ok, users] = /** @type {Result<string[]>} */ (result);
        if (ok && this.room === room) this.showMembers(users);
      }, () => {});
    }, 100);
  }

  /** @param {string[]} users */
  showMembers(users) {
    this.members = users;
    this.view.members(users);
  }

  /**
   * The server says we are not in the room we follow: our session is gone, or the room is.
   * @param {string} room
   * @param {Result<unknown>} refusal
   */
  async lostRoom(room, refusal) {
    const message = String(refusal[1]);
    if (sessionGone(refusal)) {
      await this.recover(message, "session").catch(() => {});
      return;
    }
    if (this.room !== room) return;
    this.setRoom(null);
    this.showMembers([]);
    this.view.notice(this.t.lostRoom(room, message), "warn");
    this.refreshRooms();
  }

  /** @param {string | null} room */
  setRoom(room) {
    this.room = room;
    this.epoch++;
    this.wake.abort();
    this.wake = new AbortController();
    this.view.roomChanged(room);
    this.changed();
  }

  /** Keeps what survives a reload. */
  changed() {
    if (this.name === undefined || this.closed) return;
    this.saveState(this.saved());
    this.view.pending(this.outbox);
  }

  /** @returns {Saved} */
  saved() {
    return {
      name: String(this.name),
      room: this.room,
      ...(this.cursor === undefined ? {} : { cursor: this.cursor }),
      outbox: this.outbox,
    };
  }

  // --- recovery ---------------------------------------------------------------

  /**
   * One recovery at a time, shared by every caller that found the server gone.
   * @param {string} reason
   * @param {"network" | "session" | "resume"} [why]
   */
  recover(reason, why = "network") {
    this.recovering ??= this.reconnect(reason, why).finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  /**
   * Until the server answers: the same name, the same room.
   * @param {string} reason
   * @param {"network" | "session" | "resume"} why
   */
  async reconnect(reason, why) {
    const t = this.t;
    if (why === "network") {
      this.view.connection(false);
      this.view.notice(t.connectionLost(reason), "warn");
    } else if (why === "session") this.view.notice(t.sessionLost(reason), "warn");
    const since = Date.now();
    let reported = "";
    for (;;) {
      if (this.closed) throw new Closed();
      try {
        await this.restore();
        break;
      } catch (error) {
        if (this.closed) throw new Closed();
        const problem = error instanceof Unreachable
          ? t.unreachable
          : String(/** @type {Error} */ (error).message);
        if (problem !== reported && why !== "network") this.view.notice(problem, "warn");
        reported = problem;
        if (error instanceof Unreachable && this.moveAway && Date.now() - since > this.moveAfterMs) {
          this.view.notice(t.elsewhere, "warn");
          this.moveAway(this.saved());
          // The page is leaving: nothing more to do here.
          await new Promise(() => {});
        }
        await sleep(this.retryMs, this.closing.signal);
      }
    }
    this.view.connection(true);
    if (why !== "resume") this.view.notice(t.reconnected(String(this.name), this.room), "info");
  }

  /** The same name again (unless the server still knows our session), and the same room. */
  async restore() {
    if (this.name === undefined) {
      // No name yet: the server answering is all there is to restore.
      await this.rawCall("system.listMethods", []);
      return;
    }
    const name = this.name;
    const alive = /** @type {Result<string>} */ (await this.rawCall("manter_sessao", [name]));
    if (!alive[0]) {
      const registration = /** @type {Result<string>} */ (await this.rawCall("registrar_usuario", [name]));
      if (!registration[0]) throw new Error(this.t.nameStillTaken(name, registration[1]));
    }
    const room = this.room;
    if (room === null) return;
    /** @type {Result<{ usuarios: string[]; mensagens: ChatMessage[]; cursor?: number }>} */
    let joined = await this.rawCall("entrar_na_sala", [name, room]);
    if (!joined[0] && reasonOf(joined) === "sala_inexistente") {
      await this.rawCall("criar_sala", [room]);
      joined = await this.rawCall("entrar_na_sala", [name, room]);
    }
    if (!joined[0]) {
      this.setRoom(null);
      this.view.notice(this.t.rejoinFailed(room, joined[1]), "error");
      return;
    }
    const { usuarios, mensagens, cursor } = joined[1];
    this.showMembers(usuarios);
    if (this.freshPage) {
      // A page just loaded: the history up to our cursor shows again; live delivery brings the rest.
      this.freshPage = false;
      const upTo = this.cursor;
      for (const message of mensagens) {
        if (upTo === undefined || typeof message.id !== "number" || message.id <= upTo) {
          this.view.message(message, true);
        }
      }
      if (upTo === undefined) this.cursor = typeof cursor === "number" ? cursor : maxId(mensagens);
    }
    if (typeof cursor === "number" && this.cursor !== undefined && cursor < this.cursor) {
      // A server that lost its history: what we hold is from another life. Start from now.
      this.cursor = cursor;
    }
    // Same room, new epoch: the receive loop starts over from our cursor.
    this.setRoom(room);
  }
}

/** @param {ChatMessage[]} messages */
function maxId(messages) {
  const ids = messages.map((m) => m.id).filter((id) => typeof id === "number");
  return ids.length ? Math.max(.../** @type {number[]} */ (ids)) : undefined;
}
