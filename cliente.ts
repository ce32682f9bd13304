#!/usr/bin/env -S deno run --allow-net
/**
 * The rpc-chat terminal client: finds `ChatService` through the binder,
 * registers a unique name, and chats in rooms, live.
 *
 * ```sh
 * deno run --allow-net cliente.ts                          # binder at 127.0.0.1:5000
 * deno run --allow-net cliente.ts --binder 192.168.0.10:5000 --name ana --room geral
 * deno run --allow-net https://example.org/rpc-chat/cliente.ts --lang en
 * ```
 *
 * Commands are listed by `/ajuda` (`/help`); any other line goes to the
 * current room. Messages arrive through the server's long wait
 * (`aguardar_mensagens` with a cursor), or, against a server with only the
 * original methods, by polling `receber_mensagens`. When the server restarts
 * or moves, the client finds it again through the binder, registers the same
 * name, rejoins the room and carries on, with no message shown twice.
 *
 * On a terminal it edits the line in raw mode, so arriving messages never
 * mangle what is being typed; otherwise it reads commands line by line and
 * prints plain lines, so it can be scripted.
 *
 * Needs `--allow-net` only: it reads no environment variable unless allowed
 * (the locale comes from `navigator.language`) and never prompts.
 *
 * @module
 */

import {
  type ChatMessage,
  endpointUrl,
  EVERYONE,
  Fault,
  NETWORK_ERRORS_PT,
  numberFlag,
  onTerminate,
  parseFlags,
  parseHostPort,
  readLines,
  Reason,
  reasonOf,
  REASONS_HEADER,
  type Result,
  secondsFlag,
  SERVER,
  Unreachable,
  usageError,
  writeStdout,
  XmlRpcClient,
  type XmlRpcValue,
} from "./deps.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** The languages of the client's texts. */
export type Lang = "pt" | "en";

/** What `entrar_na_sala` answers (`cursor` is our extension; the original has none). */
interface Joined {
  usuarios: string[];
  mensagens: ChatMessage[];
  cursor?: number;
}

/** What the session shows; the terminal UI implements it. */
export interface ChatView {
  /** A chat message, from the server or our own. */
  message(message: ChatMessage): void;
  /** A line from the client itself: what happened, what went wrong. */
  notice(text: string, kind?: NoticeKind): void;
  /** Clears the screen (on a terminal only). */
  clear(): void;
  /** The session is now in this room (null: in none). */
  roomChanged(room: string | null): void;
}

/** How a notice is shown: `error` in red, `warn` in yellow, `info` in cyan. */
export type NoticeKind = "info" | "warn" | "error";

/** A problem the user should read (binder down, service missing...): never a stack trace. */
export class Problem extends Error {
  /** Always `Problem`. */
  override name = "Problem";
}

/** The session was closed while a call waited for the server to come back. */
class Closed extends Error {
  override name = "Closed";
}

// ---------------------------------------------------------------------------
// Texts: every user-facing string, in Portuguese and English
// ---------------------------------------------------------------------------

/** The Portuguese texts, the default (their shape is {@linkcode Texts}). */
export const PT = {
  /** The `Accept-Language` this client sends: the servers answer in it. */
  language: "pt-BR",
  usage: `cliente.ts: o cliente de terminal do rpc-chat

Uso: deno run --allow-net cliente.ts [opções]

Opções:
  --binder H:P         onde está o binder (padrão: 127.0.0.1:5000, ou o de onde veio este cliente)
  --name NOME          seu nome de usuário (sem ele, o cliente pergunta)
  --room SALA          entra na sala ao conectar (e a cria se não existir)
  --lang pt|en         idioma (padrão: pt; en com um locale inglês)
  --retry S            segundos entre tentativas de alcançar binder e servidor (padrão: 2)
  --attempts N         tentativas ao iniciar antes de desistir (padrão: 10; 0 = sem limite)
  -h, --help           mostra esta ajuda

Comandos: /criar /entrar /sair /salas /usuarios /msg /excluir /ajuda /fim (veja /ajuda)`,
  help: `Comandos:
  /criar SALA          cria uma sala
  /entrar SALA         entra na sala (saindo da atual)
  /sair                sai da sala atual
  /salas               lista as salas
  /usuarios [SALA]     lista quem está na sala
  /msg NOME TEXTO      mensagem privada para NOME, na sala atual
  /excluir SALA        exclui uma sala que você criou
  /ajuda               mostra esta ajuda
  /fim                 sai do chat
Qualquer outra linha vai para a sala atual (comece com // para enviar uma linha que começa com /).
Também em inglês: /create /join /leave /rooms /users /msg /delete /help /quit`,
  badLang: (value: string) => `--lang deve ser pt ou en, não '${value}'`,
  badBinder: (value: string) => `--binder: endereço inválido '${value}' (use HOST:PORTA)`,
  looking: (binder: string) => `Procurando o ChatService no binder ${binder}...`,
  binderUnreachable: (binder: string, reason: string) => `O binder em ${binder} não responde (${reason}).`,
  binderFault: (binder: string, message: string) => `O binder em ${binder} respondeu com erro: ${message}.`,
  notRegistered: (binder: string) =>
    `O ChatService não está registrado no binder ${binder} (o servidor está rodando?).`,
  serviceUnreachable: (address: string, reason: string) =>
    `O servidor de chat em ${address} não responde (${reason}).`,
  retrying: (problem: string, seconds: number) => `${problem} Tentando de novo a cada ${seconds} s...`,
  giveUp: (problem: string, attempts: number) =>
    `${problem} Desisti depois de ${attempts} tentativa${attempts === 1 ? "" : "s"}.`,
  connected: (address: string) => `Conectado ao ChatService em ${address}.`,
  polling: (seconds: number) =>
    `Este servidor só tem os métodos originais: buscando mensagens a cada ${seconds} s.`,
  askName: "Escolha seu nome de usuário:",
  namePrompt: "nome: ",
  nameFirst: "Escolha um nome antes (ou /fim para sair).",
  welcome: (name: string) => `Olá, ${name}! Digite /ajuda para ver os comandos.`,
  connectionLost: (reason: string) =>
    `Conexão com o servidor perdida (${reason}). Procurando o ChatService de novo...`,
  sessionLost: (reason: string) => `O servidor encerrou a sessão (${reason}). Registrando de novo...`,
  nameStillTaken: (name: string, message: string) =>
    `O nome ${name} ainda está em uso no servidor (${message}).`,
  reconnected: (address: string, name: string, room: string | null) =>
    `Reconectado ao ChatService em ${address} como ${name}${room ? `, de volta à sala ${room}` : ""}.`,
  rejoinFailed: (room: string, message: string) => `Não foi possível voltar à sala ${room}: ${message}`,
  joined: (room: string, users: string[]) => `Você está na sala ${room}. Presentes: ${users.join(", ")}.`,
  left: (room: string) => `Você saiu da sala ${room}.`,
  lostRoom: (room: string, message: string) => `Você não está mais na sala ${room}: ${message}`,
  notInRoom: "Você não está em nenhuma sala. Use /entrar SALA (ou /salas para ver as salas).",
  rooms: (rooms: string[]) => `Salas (${rooms.length}): ${rooms.join(", ")}`,
  noRooms: "Nenhuma sala ainda. Crie uma com /criar SALA.",
  users: (room: string, users: string[]) => `Na sala ${room} (${users.length}): ${users.join(", ")}`,
  emptyRoom: (room: string) => `A sala ${room} está vazia.`,
  unknownCommand: (command: string) =>
    `Comando desconhecido: ${command}. Digite /ajuda para ver os comandos.`,
  usageOf: (syntax: string) => `Uso: ${syntax}`,
  notSupported: (command: string) => `Este servidor (original, sem extensões) não tem ${command}.`,
  fault: (message: string) => `Erro do servidor: ${message}`,
  receiveFailed: (message: string) => `Erro ao receber mensagens: ${message}`,
  unexpected: (message: string) => `Erro inesperado: ${message}`,
  couldNotLeave: (problem: string) => `Não foi possível avisar o servidor da saída: ${problem}`,
  bye: "Até logo!",
  /** Why the binder or the server did not answer (the library's words). */
  network: NETWORK_ERRORS_PT,
  syntax: {
    create: "/criar SALA",
    join: "/entrar SALA",
    msg: "/msg NOME TEXTO",
    delete: "/excluir SALA",
  },
};

/** Every text the client shows, in one language. */
export type Texts = typeof PT;

const EN: Texts = {
  language: "en",
  usage: `cliente.ts: the rpc-chat terminal client

Usage: deno run --allow-net cliente.ts [options]

Options:
  --binder H:P         where the binder is (default: 127.0.0.1:5000, or the one this client came from)
  --name NAME          your user name (without it, the client asks)
  --room ROOM          joins the room on connecting (creating it if missing)
  --lang pt|en         language (default: pt; en with an English locale)
  --retry S            seconds between attempts to reach binder and server (default: 2)
  --attempts N         attempts on start before giving up (default: 10; 0 = no limit)
  -h, --help           shows this help

Commands: /create /join /leave /rooms /users /msg /delete /help /quit (see /help)`,
  help: `Commands:
  /create ROOM         creates a room
  /join ROOM           joins the room (leaving the current one)
  /leave               leaves the current room
  /rooms               lists the rooms
  /users [ROOM]        lists who is in the room
  /msg NAME TEXT       private message to NAME, in the current room
  /delete ROOM         deletes a room you created
  /help                shows this help
  /quit                leaves the chat
Any other line goes to the current room (start it with // to send a line that begins with /).
Also in Portuguese: /criar /entrar /sair /salas /usuarios /msg /excluir /ajuda /fim`,
  badLang: (value) => `--lang must be pt or en, not '${value}'`,
  badBinder: (value) => `--binder: invalid address '${value}' (use HOST:PORT)`,
  looking: (binder) => `Looking for ChatService at the binder ${binder}...`,
  binderUnreachable: (binder, reason) => `The binder at ${binder} does not answer (${reason}).`,
  binderFault: (binder, message) => `The binder at ${binder} answered with an error: ${message}.`,
  notRegistered: (binder) =>
    `ChatService is not registered at the binder ${binder} (is the server running?).`,
  serviceUnreachable: (address, reason) => `The chat server at ${address} does not answer (${reason}).`,
  retrying: (problem, seconds) => `${problem} Trying again every ${seconds} s...`,
  giveUp: (problem, attempts) => `${problem} Gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}.`,
  connected: (address) => `Connected to ChatService at ${address}.`,
  polling: (seconds) => `This server has only the original methods: fetching messages every ${seconds} s.`,
  askName: "Choose your user name:",
  namePrompt: "name: ",
  nameFirst: "Choose a name first (or /quit to leave).",
  welcome: (name) => `Hello, ${name}! Type /help to see the commands.`,
  connectionLost: (reason) =>
    `Lost the connection to the server (${reason}). Looking for ChatService again...`,
  sessionLost: (reason) => `The server ended the session (${reason}). Registering again...`,
  nameStillTaken: (name, message) => `The name ${name} is still in use on the server (${message}).`,
  reconnected: (address, name, room) =>
    `Reconnected to ChatService at ${address} as ${name}${room ? `, back in room ${room}` : ""}.`,
  rejoinFailed: (room, message) => `Could not get back into room ${room}: ${message}`,
  joined: (room, users) => `You are in room ${room}. Here: ${users.join(", ")}.`,
  left: (room) => `You left room ${room}.`,
  lostRoom: (room, message) => `You are no longer in room ${room}: ${message}`,
  notInRoom: "You are not in a room. Use /join ROOM (or /rooms to see the rooms).",
  rooms: (rooms) => `Rooms (${rooms.length}): ${rooms.join(", ")}`,
  noRooms: "No rooms yet. Create one with /create ROOM.",
  users: (room, users) => `In room ${room} (${users.length}): ${users.join(", ")}`,
  emptyRoom: (room) => `Room ${room} is empty.`,
  unknownCommand: (command) => `Unknown command: ${command}. Type /help to see the commands.`,
  usageOf: (syntax) => `Usage: ${syntax}`,
  notSupported: (command) => `This server (an original one, without extensions) has no ${command}.`,
  fault: (message) => `Server error: ${message}`,
  receiveFailed: (message) => `Error receiving messages: ${message}`,
  unexpected: (message) => `Unexpected error: ${message}`,
  couldNotLeave: (problem) => `Could not tell the server you left: ${problem}`,
  bye: "Bye!",
  network: {
    refused: "connection refused",
    timeout: "timed out",
    notFound: "address not found",
    closed: "connection closed",
    unreachable: "address unreachable",
    other: "network error",
  },
  syntax: {
    create: "/create ROOM",
    join: "/join ROOM",
    msg: "/msg NAME TEXT",
    delete: "/delete ROOM",
  },
};

/** The client's texts by language. */
export const TEXTS: Record<Lang, Texts> = { pt: PT, en: EN };

/**
 * The language: the flag if given; else LC_ALL, LC_MESSAGES or LANG when the
 * environment may be read (never prompting); else the runtime's locale.
 * English only when the locale is English; Portuguese otherwise.
 */
export function detectLang(flag?: string): Lang {
  if (flag === "pt" || flag === "en") return flag;
  for (const variable of ["LC_ALL", "LC_MESSAGES", "LANG"]) {
    try {
      if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") continue;
      const value = Deno.env.get(variable);
      if (value) return /^en([_.@-]|$)/i.test(value) ? "en" : "pt";
    } catch {
      // No permission API (or no such variable): ask the runtime below.
    }
  }
  const locale = navigator.language ?? "";
  // `C` and `POSIX` show up as en-US-u-va-posix: not a choice of English.
  return /^en\b/i.test(locale) && !/posix/i.test(locale) ? "en" : "pt";
}

// ---------------------------------------------------------------------------
// Pure helpers: input parsing, message formatting, safe text
// ---------------------------------------------------------------------------

/** The commands, whatever language they are typed in. */
export type CommandName =
  | "create"
  | "join"
  | "leave"
  | "rooms"
  | "users"
  | "msg"
  | "delete"
  | "help"
  | "quit";

const COMMANDS: Record<string, CommandName> = {
  "/criar": "create",
  "/create": "create",
  "/entrar": "join",
  "/join": "join",
  "/sair": "leave",
  "/leave": "leave",
  "/salas": "rooms",
  "/rooms": "rooms",
  "/usuarios": "users",
  "/usuários": "users",
  "/users": "users",
  "/msg": "msg",
  "/excluir": "delete",
  "/delete": "delete",
  "/ajuda": "help",
  "/help": "help",
  "/fim": "quit",
  "/quit": "quit",
};

/** A line typed by the user, as {@linkcode parseInput} understands it. */
export type Input =
  | { kind: "empty" }
  | { kind: "text"; text: string }
  | { kind: "command"; command: CommandName; word: string; rest: string }
  | { kind: "unknown"; word: string };

/** A line typed by the user: a command, a message, or nothing. `//x` sends `/x`. */
export function parseInput(line: string): Input {
  const trimmed = line.trim();
  if (!trimmed) return { kind: "empty" };
  if (trimmed.startsWith("//")) return { kind: "text", text: trimmed.slice(1) };
  if (!trimmed.startsWith("/")) return { kind: "text", text: trimmed };
  const space = trimmed.search(/\s/);
  const word = space < 0 ? trimmed : trimmed.slice(0, space);
  const rest = space < 0 ? "" : trimmed.slice(space).trim();
  const command = COMMANDS[word.toLowerCase()];
  return command ? { kind: "command", command, word, rest } : { kind: "unknown", word };
}

/** `NOME TEXTO` or `"NOME COM ESPAÇO" TEXTO`. */
export function splitRecipient(rest: string): { to: string; text: string } | undefined {
  const match = /^(?:"([^"]+)"|(\S+))\s+([\s\S]+)$/.exec(rest);
  if (!match) return undefined;
  return { to: (match[1] ?? match[2])!.trim(), text: match[3]!.trim() };
}

const ESCAPES =
  // deno-lint-ignore no-control-regex -- matching terminal escape sequences is the point
  /\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.)?|\x9b[0-?]*[ -/]*[@-~]?/gs;
// Control characters, and the format characters that reorder or hide text.
const UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\u061c]/gu;
const UNSAFE_CHAR = new RegExp(UNSAFE.source, "u");

/**
 * Text from others made safe for a terminal: escape sequences are dropped,
 * line breaks and tabs become spaces, other control characters become `�`.
 */
export function sanitize(text: string): string {
  return String(text).replace(ESCAPES, "").replace(
    UNSAFE,
    (c) => /[\t\n\r\u2028\u2029]/.test(c) ? " " : "\ufffd",
  );
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** `HH:MM:SS` of a message's timestamp (a Date, or the original `YYYYMMDDTHH:MM:SS` text). */
export function clockOf(timestamp: Date | string): string {
  if (timestamp instanceof Date && !Number.isNaN(timestamp.getTime())) {
    return `${pad2(timestamp.getHours())}:${pad2(timestamp.getMinutes())}:${pad2(timestamp.getSeconds())}`;
  }
  const match = /T(\d\d):?(\d\d):?(\d\d)/.exec(String(timestamp));
  if (match) return `${match[1]}:${match[2]}:${match[3]}`;
  return clockOf(new Date());
}

/** A private message: `unicast`, or (from a lax server) addressed to anyone but everyone. */
export function isPrivate(message: ChatMessage): boolean {
  return message.tipo === "unicast" || (message.destino !== EVERYONE && message.destino !== "" &&
    message.destino !== null && message.destino !== undefined);
}

type Style = "bold" | "dim" | "red" | "yellow" | "cyan" | "magenta" | number;
const STYLES: Record<Exclude<Style, number>, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  magenta: [35, 39],
};
const NAME_COLOURS = [32, 33, 34, 36, 92, 93, 94, 96];

function paint(colour: boolean, style: Style, text: string): string {
  if (!colour) return text;
  const [on, off] = typeof style === "number" ? [style, 39] : STYLES[style];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

function nameColour(name: string): number {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)!) >>> 0;
  return NAME_COLOURS[hash % NAME_COLOURS.length]!;
}

/**
 * `[HH:MM:SS] origem: texto`, or `[HH:MM:SS] origem -> destino: texto` for a
 * private message; every field from the server made safe. With `colour`,
 * private messages stand out and server notices are dimmed.
 */
export function formatMessage(message: ChatMessage, colour = false): string {
  const time = `[${clockOf(message.timestamp)}]`;
  const from = sanitize(message.origem);
  const text = sanitize(message.conteudo);
  if (isPrivate(message)) {
    const line = `${time} ${from} -> ${sanitize(message.destino)}: ${text}`;
    return paint(colour, "magenta", paint(colour, "bold", line));
  }
  if (from === SERVER) return paint(colour, "dim", `${time} ${from}: ${text}`);
  return `${paint(colour, "dim", time)} ${paint(colour, nameColour(from), from)}: ${text}`;
}

/** A private message we showed ourselves, whatever time the server stamps on its copy. */
function privateKey(message: ChatMessage): string {
  return JSON.stringify([message.origem, message.destino, message.conteudo]);
}

function messageKey(message: ChatMessage): string {
  return JSON.stringify([
    message.tipo,
    message.origem,
    message.destino,
    message.conteudo,
    clockOf(message.timestamp),
  ]);
}

/**
 * The messages of `current` not already in `previous`, for polling a server
 * whose `receber_mensagens` returns a window of the latest messages: by id
 * when there are ids, else by the longest overlap of the old window's end
 * with the new window's start.
 */
export function newMessages(previous: ChatMessage[], current: ChatMessage[]): ChatMessage[] {
  if (current.every((m) => typeof m.id === "number") && previous.every((m) => typeof m.id === "number")) {
    const seen = previous.reduce((max, m) => Math.max(max, m.id!), -Infinity);
    return current.filter((m) => m.id! > seen);
  }
  const before = previous.map(messageKey);
  const now = current.map(messageKey);
  for (let k = Math.min(before.length, now.length); k > 0; k--) {
    let overlaps = true;
    for (let i = 0; i < k && overlaps; i++) overlaps = before[before.length - k + i] === now[i];
    if (overlaps) return current.slice(k);
  }
  return current;
}

/** Refusals that mean our session is gone (expired, or the server restarted and forgot us). */
const SESSION_GONE: ReadonlySet<string> = new Set([Reason.SESSION_INVALID, Reason.NOT_REGISTERED]);

function sessionGone(result: Result<unknown>): boolean {
  return SESSION_GONE.has(reasonOf(result) ?? "");
}

/** Every call to the chat service asks for the reason of refusals. */
const ASK_REASONS = { [REASONS_HEADER]: "1" };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

// ---------------------------------------------------------------------------
// The chat session: connection, name, room, receiving, recovery
// ---------------------------------------------------------------------------

/** What a {@linkcode ChatSession} needs: where the binder is, what shows, how patient to be. */
export interface SessionOptions {
  /** Where the binder is. */
  binder: { host: string; port: number };
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
  /** Between signs of life (`manter_sessao`) while outside any room. */
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
  /** One client for the binder, so lookups reuse its connection. */
  readonly #binder: XmlRpcClient;
  readonly #view: ChatView;
  readonly #t: Texts;
  readonly #binderAddress: string;
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
  /** Bumped on every room change: answers for an older epoch are dropped. */
  #epoch = 0;
  #wake = new AbortController();
  readonly #closing = new AbortController();
  #recovering: Promise<void> | undefined;
  #receiving: Promise<void> | undefined;
  #quitting: Promise<void> | undefined;

  /** A session not yet connected: {@linkcode ChatSession.connect} finds the service. */
  constructor(options: SessionOptions) {
    this.#options = { waitMs: 20_000, pollMs: 1000, keepAliveMs: 10_000, callTimeoutMs: 10_000, ...options };
    this.#view = options.view;
    this.#t = options.texts;
    this.#binderAddress = `${options.binder.host}:${options.binder.port}`;
    this.#binder = new XmlRpcClient(endpointUrl(options.binder.host, options.binder.port), {
      timeoutMs: this.#options.callTimeoutMs,
      headers: { "accept-language": this.#t.language },
    });
  }

  /** The registered name, once registered. */
  get name(): string | undefined {
    return this.#name;
  }

  /** The room the session follows (null: none). */
  get room(): string | null {
    return this.#room;
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
    return true;
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
        if (needs(t.syntax.create)) await this.create(rest);
        return;
      case "join":
        if (needs(t.syntax.join)) await this.join(rest);
        return;
      case "leave":
        await this.leave();
        return;
      case "rooms":
        await this.listRooms();
        return;
      case "users":
        await this.listUsers(rest || undefined);
        return;
      case "msg": {
        const parsed = splitRecipient(rest);
        if (!parsed) this.#view.notice(t.usageOf(t.syntax.msg), "error");
        else await this.say(parsed.text, parsed.to);
        return;
      }
      case "delete":
        if (needs(t.syntax.delete)) await this.deleteRoom(rest);
        return;
      case "help":
        this.#view.notice(t.help);
        return;
      case "quit":
        return "quit";
    }
  }

  /** Creates a room, and says how it went; true when created. */
  async create(room: string): Promise<boolean> {
    const [ok, message] = await this.#call<Result<string>>("criar_sala", [room]);
    this.#view.notice(sanitize(message), ok ? "info" : "error");
    return ok;
  }

  /**
   * Joins a room (with `create`, creating it first if it does not exist):
   * clears the screen, shows who is there and the recent history, then
   * follows it live. False (and the reason shown) when refused.
   */
  async join(room: string, options: { create?: boolean } = {}): Promise<boolean> {
    const previous = this.#room;
    // Out of the old room first, so its receive loop does not take the move for an eviction.
    this.#setRoom(null);
    let result: Result<Joined>;
    try {
      result = await this.#userCall<Result<Joined>>("entrar_na_sala", [this.#name!, room]);
      if (!result[0] && options.create && await this.#roomMissing(result, room)) {
        await this.create(room);
        result = await this.#userCall<Result<Joined>>("entrar_na_sala", [this.#name!, room]);
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
    const { usuarios, mensagens, cursor } = result[1];
    const name = room.trim();
    this.#view.clear();
    this.#setRoom(name);
    this.#view.notice(this.#t.joined(sanitize(name), usuarios.map(sanitize)));
    for (const message of mensagens) this.#view.message(message);
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
    this.#view.clear();
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

  /** Sends to the current room, or privately to `to`. Our own message shows when the server echoes it. */
  async say(text: string, to?: string): Promise<void> {
    const room = this.#room;
    if (room === null) return this.#view.notice(this.#t.notInRoom, "error");
    const [ok, message] = await this.#userCall<Result<string>>("enviar_mensagem", [
      this.#name!,
      room,
      text,
      to ?? null,
    ]);
    if (!ok) return this.#view.notice(sanitize(message), "error");
    if (to !== undefined && !this.live) {
      // The original server never echoes a private message to its sender: show it now.
      const own: ChatMessage = {
        tipo: "unicast",
        origem: this.#name!,
        destino: to,
        conteudo: text,
        timestamp: new Date(),
      };
      this.#ownPrivate.push(privateKey(own));
      this.#view.message(own);
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
            this.#view.message(message);
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
    if (sessionGone(result)) await this.#recover(result[1], true).catch(() => {});
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
      this.#view.message(message);
    }
  }

  /** The server says we are not in the room we follow: our session is gone, or the room is. */
  async #lostRoom(room: string, refusal: Result<unknown>): Promise<void> {
    const message = String(refusal[1]);
    if (sessionGone(refusal)) {
      await this.#recover(message, true).catch(() => {});
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
  async #call<T>(method: string, params: XmlRpcValue[]): Promise<T> {
    for (;;) {
      if (this.closed) throw new Closed();
      await this.#recovering?.catch(() => {});
      try {
        return await this.#client!.call<T>(method, params, { signal: this.#closing.signal });
      } catch (error) {
        if (this.closed) throw new Closed();
        if (!(error instanceof Unreachable)) throw error;
        await this.#recover(this.#t.network[error.kind]);
      }
    }
  }

  /** A call naming our user: when the server has forgotten our session, register again and retry once. */
  async #userCall<T extends Result<unknown>>(method: string, params: XmlRpcValue[]): Promise<T> {
    const result = await this.#call<T>(method, params);
    if (!sessionGone(result)) return result;
    await this.#recover(String(result[1]), true);
    return await this.#call<T>(method, params);
  }

  /** One recovery at a time, shared by every caller that found the server gone. */
  #recover(reason: string, sessionOnly = false): Promise<void> {
    this.#recovering ??= this.#reconnect(sanitize(reason), sessionOnly).finally(() => {
      this.#recovering = undefined;
    });
    return this.#recovering;
  }

  async #reconnect(reason: string, sessionOnly: boolean): Promise<void> {
    const t = this.#t;
    this.#view.notice(sessionOnly ? t.sessionLost(reason) : t.connectionLost(reason), "warn");
    await this.#retrying(async (attempt) => {
      if (!sessionOnly || attempt > 1) await this.#locate();
      if (this.#name !== undefined) await this.#restore();
    }, 0);
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
    let joined = await client.call<Result<Joined>>("entrar_na_sala", [name, room]);
    const refused = reasonOf(joined);
    if (!joined[0] && (refused === Reason.ROOM_MISSING || refused === undefined)) {
      // The room went with the server (or was removed meanwhile): make it again. An original
      // server gives no reason: try.
      await client.call("criar_sala", [room]);
      joined = await client.call<Result<Joined>>("entrar_na_sala", [name, room]);
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

  /** Asks the binder where ChatService is and what it offers. */
  async #locate(): Promise<void> {
    let found: Result<{ endereco: string; porta: number }>;
    try {
      found = await this.#binder.call("buscar_procedimento", ["ChatService"], {
        signal: this.#closing.signal,
      });
    } catch (error) {
      if (error instanceof Unreachable) {
        throw new Problem(this.#t.binderUnreachable(this.#binderAddress, this.#t.network[error.kind]));
      }
      if (error instanceof Fault) {
        throw new Problem(this.#t.binderFault(this.#binderAddress, sanitize(error.message)));
      }
      throw error;
    }
    if (!found[0]) throw new Problem(this.#t.notRegistered(this.#binderAddress));
    const { endereco, porta } = found[1];
    const address = sanitize(`${endereco}:${porta}`);
    const url = endpointUrl(String(endereco), Number(porta));
    // The same address keeps its client, and with it our session cookie.
    const client = this.#client?.url === url ? this.#client : new XmlRpcClient(url, {
      timeoutMs: this.#options.callTimeoutMs,
      headers: { ...ASK_REASONS, "accept-language": this.#t.language },
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

function maxId(messages: ChatMessage[]): number | undefined {
  const ids = messages.map((m) => m.id).filter((id): id is number => typeof id === "number");
  return ids.length ? Math.max(...ids) : undefined;
}

// ---------------------------------------------------------------------------
// The terminal UI
// ---------------------------------------------------------------------------

/** Where lines are read from and written to. */
interface Screen {
  start(): void;
  /** Writes a line (which may hold line breaks) without disturbing the line being typed. */
  print(text: string): void;
  clear(): void;
  setPrompt(prompt: string): void;
  /** The next line typed, or null at the end of input (Ctrl-D, Ctrl-C, end of the pipe). */
  readLine(): Promise<string | null>;
  close(): void;
}

/** Not a terminal: lines in, plain lines out. */
class PlainScreen implements Screen {
  #lines: ReadableStreamDefaultReader<string> | undefined;

  start(): void {
    this.#lines = readLines(Deno.stdin.readable).getReader();
  }

  print(text: string): void {
    writeStdout(`${text}\n`);
  }

  clear(): void {}

  setPrompt(): void {}

  async readLine(): Promise<string | null> {
    const next = await this.#lines!.read();
    return next.done ? null : next.value;
  }

  close(): void {}
}

/** Columns a character takes on a terminal (East Asian wide and emoji take two). */
function charWidth(char: string): number {
  const cp = char.codePointAt(0)!;
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfe0f) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

function widthOf(chars: string[]): number {
  return chars.reduce((sum, char) => sum + charWidth(char), 0);
}

// deno-lint-ignore no-control-regex -- the escape sequences a terminal sends for keys
const KEY_SEQUENCE = /^\x1b(?:\[([0-9;]*)([~A-Za-z])|O([A-Za-z]))/;
// deno-lint-ignore no-control-regex -- the start of one, split across reads
const PARTIAL_SEQUENCE = /^\x1b(?:\[[0-9;]*|O)?$/;

/**
 * A terminal in raw mode with a one-line editor at the bottom: arriving
 * lines are written above it and the line being typed is drawn again, intact.
 */
class TerminalScreen implements Screen {
  #buffer: string[] = [];
  #cursor = 0;
  #scroll = 0;
  #prompt = "> ";
  #promptWidth = 2;
  readonly #colour: boolean;
  readonly #history: string[] = [];
  #historyIndex = 0;
  readonly #queue: string[] = [];
  #waiter: ((line: string | null) => void) | undefined;
  #ended = false;
  #pending = "";
  readonly #onResize = () => this.#redraw();

  constructor(colour: boolean) {
    this.#colour = colour;
  }

  start(): void {
    Deno.stdin.setRaw(true);
    try {
      Deno.addSignalListener("SIGWINCH", this.#onResize);
    } catch {
      // No SIGWINCH here (Windows): the next keystroke redraws.
    }
    this.#redraw();
    this.#readKeys();
  }

  print(text: string): void {
    writeStdout(`\r\x1b[2K${text.replaceAll("\n", "\r\n")}\r\n`);
    this.#redraw();
  }

  clear(): void {
    writeStdout("\x1b[2J\x1b[H");
    this.#redraw();
  }

  setPrompt(prompt: string): void {
    this.#promptWidth = widthOf([...prompt]);
    this.#prompt = paint(this.#colour, "bold", prompt);
    this.#redraw();
  }

  readLine(): Promise<string | null> {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift()!);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiter = resolve);
  }

  close(): void {
    writeStdout("\r\x1b[2K");
    try {
      Deno.removeSignalListener("SIGWINCH", this.#onResize);
    } catch {
      // Never added.
    }
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Not a terminal any more.
    }
  }

  async #readKeys(): Promise<void> {
    const decoder = new TextDecoder();
    const bytes = new Uint8Array(4096);
    for (;;) {
      let read: number | null;
      try {
        read = await Deno.stdin.read(bytes);
      } catch {
        read = null;
      }
      if (read === null) return this.#end();
      this.#keys(decoder.decode(bytes.subarray(0, read), { stream: true }));
    }
  }

  #keys(text: string): void {
    text = this.#pending + text;
    this.#pending = "";
    let i = 0;
    while (i < text.length) {
      const char = String.fromCodePoint(text.codePointAt(i)!);
      if (char === "\x1b") {
        const rest = text.slice(i);
        const sequence = KEY_SEQUENCE.exec(rest);
        if (sequence) {
          this.#sequence(sequence[1] ?? "", sequence[2] ?? sequence[3] ?? "");
          i += sequence[0].length;
          continue;
        }
        if (PARTIAL_SEQUENCE.test(rest)) {
          this.#pending = rest;
          return;
        }
        i += 1; // A lone Escape (or Alt+key): ignored.
        continue;
      }
      i += char.length;
      this.#key(char);
      if (char === "\r" && text[i] === "\n") i++;
    }
  }

  #key(char: string): void {
    switch (char) {
      case "\r":
      case "\n":
        return this.#submit();
      case "\x7f":
      case "\b":
        if (this.#cursor > 0) this.#buffer.splice(--this.#cursor, 1);
        break;
      case "\x03": // Ctrl-C: leave, as /fim does.
        this.#buffer = [];
        this.#cursor = 0;
        return this.#end();
      case "\x04": // Ctrl-D: leave on an empty line, else delete.
        if (this.#buffer.length === 0) return this.#end();
        this.#buffer.splice(this.#cursor, 1);
        break;
      case "\x01":
        this.#cursor = 0;
        break;
      case "\x05":
        this.#cursor = this.#buffer.length;
        break;
      case "\x02":
        this.#cursor = Math.max(0, this.#cursor - 1);
        break;
      case "\x06":
        this.#cursor = Math.min(this.#buffer.length, this.#cursor + 1);
        break;
      case "\x15": // Ctrl-U
        this.#buffer.splice(0, this.#cursor);
        this.#cursor = 0;
        break;
      case "\x0b": // Ctrl-K
        this.#buffer.length = this.#cursor;
        break;
      case "\x17": { // Ctrl-W
        let start = this.#cursor;
        while (start > 0 && this.#buffer[start - 1] === " ") start--;
        while (start > 0 && this.#buffer[start - 1] !== " ") start--;
        this.#buffer.splice(start, this.#cursor - start);
        this.#cursor = start;
        break;
      }
      case "\x0c": // Ctrl-L
        return this.clear();
      default:
        if (UNSAFE_CHAR.test(char)) return;
        this.#buffer.splice(this.#cursor++, 0, char);
    }
    this.#redraw();
  }

  #sequence(params: string, final: string): void {
    switch (final) {
      case "A":
        return this.#recall(-1);
      case "B":
        return this.#recall(1);
      case "C":
        this.#cursor = Math.min(this.#buffer.length, this.#cursor + 1);
        break;
      case "D":
        this.#cursor = Math.max(0, this.#cursor - 1);
        break;
      case "H":
        this.#cursor = 0;
        break;
      case "F":
        this.#cursor = this.#buffer.length;
        break;
      case "~":
        if (params === "1" || params === "7") this.#cursor = 0;
        else if (params === "4" || params === "8") this.#cursor = this.#buffer.length;
        else if (params === "3") this.#buffer.splice(this.#cursor, 1);
        break;
      default:
        return;
    }
    this.#redraw();
  }

  #recall(step: number): void {
    const index = this.#historyIndex + step;
    if (index < 0 || index > this.#history.length) return;
    this.#historyIndex = index;
    this.#buffer = [...(this.#history[index] ?? "")];
    this.#cursor = this.#buffer.length;
    this.#redraw();
  }

  #submit(): void {
    const line = this.#buffer.join("");
    if (line.trim() && this.#history.at(-1) !== line) this.#history.push(line);
    this.#historyIndex = this.#history.length;
    this.#buffer = [];
    this.#cursor = 0;
    this.#scroll = 0;
    this.#redraw();
    this.#deliver(line);
  }

  #deliver(line: string | null): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter(line);
    else if (line !== null) this.#queue.push(line);
  }

  #end(): void {
    this.#ended = true;
    this.#deliver(null);
  }

  /** Draws the prompt and the line; a line wider than the terminal scrolls sideways around the cursor. */
  #redraw(): void {
    let columns = 80;
    try {
      columns = Deno.consoleSize().columns || 80;
    } catch {
      // Not a terminal: keep 80.
    }
    const room = Math.max(8, columns - this.#promptWidth - 1);
    if (this.#cursor < this.#scroll) this.#scroll = this.#cursor;
    while (this.#scroll < this.#cursor && widthOf(this.#buffer.slice(this.#scroll, this.#cursor)) >= room) {
      this.#scroll++;
    }
    if (widthOf(this.#buffer) < room) this.#scroll = 0;
    const visible: string[] = [];
    let width = 0;
    for (let i = this.#scroll; i < this.#buffer.length; i++) {
      const w = charWidth(this.#buffer[i]!);
      if (width + w > room) break;
      visible.push(this.#buffer[i]!);
      width += w;
    }
    const column = this.#promptWidth + widthOf(this.#buffer.slice(this.#scroll, this.#cursor)) + 1;
    writeStdout(`\r\x1b[2K${this.#prompt}${visible.join("")}\x1b[${column}G`);
  }
}

/** What the session shows, written to a screen: colours only on a terminal and never with NO_COLOR. */
class ChatUi implements ChatView {
  readonly #screen: Screen;
  readonly #colour: boolean;
  readonly #interactive: boolean;

  constructor(screen: Screen, options: { colour: boolean; interactive: boolean }) {
    this.#screen = screen;
    this.#colour = options.colour;
    this.#interactive = options.interactive;
  }

  message(message: ChatMessage): void {
    this.#screen.print(formatMessage(message, this.#colour));
  }

  notice(text: string, kind: NoticeKind = "info"): void {
    const style = kind === "error" ? "red" : kind === "warn" ? "yellow" : "cyan";
    const lines = text.split("\n").map((line, i) => paint(this.#colour, style, `${i ? " " : "*"} ${line}`));
    this.#screen.print(lines.join("\n"));
  }

  clear(): void {
    if (this.#interactive) this.#screen.clear();
  }

  roomChanged(room: string | null): void {
    this.#screen.setPrompt(room === null ? "> " : `[${sanitize(room)}] > `);
  }
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

/** `--lang` as written on the command line, before flags are parsed (for --help). */
function langArgument(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith("--lang=")) return arg.slice("--lang=".length);
    if (arg === "--lang") return args[i + 1];
  }
  return undefined;
}

function printUsage(args: string[]): void {
  console.log(TEXTS[detectLang(langArgument(args))].usage);
}

/**
 * Where the binder is unless `--binder` says: loaded from a binder's address
 * (`http://192.168.0.10:5000/cliente.ts`), that binder; else this machine's.
 */
function defaultBinder(moduleUrl: string = import.meta.url): string {
  const url = new URL(moduleUrl);
  if (url.protocol !== "http:") return "127.0.0.1:5000";
  return url.port ? url.host : `${url.host}:80`;
}

/** Runs the client; resolves to its exit code (0 after /fim or the end of input). */
export async function main(args: string[] = Deno.args): Promise<number> {
  const program = "cliente.ts";
  const flags = parseFlags(program, () => printUsage(args), args, {
    binder: { type: "string", default: defaultBinder() },
    name: { type: "string" },
    room: { type: "string" },
    lang: { type: "string" },
    retry: { type: "string", default: "2" },
    attempts: { type: "string", default: "10" },
  });
  if (flags.lang !== undefined && flags.lang !== "pt" && flags.lang !== "en") {
    usageError(program, TEXTS[detectLang()].badLang(flags.lang));
  }
  const t = TEXTS[detectLang(flags.lang)];
  let binder: { host: string; port: number };
  try {
    binder = parseHostPort(flags.binder, 5000);
  } catch {
    usageError(program, t.badBinder(flags.binder));
  }
  const retryMs = secondsFlag(program, "--retry", flags.retry, 3600);
  const attempts = numberFlag(program, "--attempts", flags.attempts, { min: 0, max: 1e6, integer: true });

  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const colour = interactive && !Deno.noColor;
  const screen: Screen = interactive ? new TerminalScreen(colour) : new PlainScreen();
  const ui = new ChatUi(screen, { colour, interactive });
  const session = new ChatSession({ binder, view: ui, texts: t, retryMs, attempts });

  // Leaving the service and giving the terminal back, once: at the end, or on a signal (then exit 0).
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      await session.quit();
      screen.close();
    })();
  const stopped = async (): Promise<number> => {
    await stop();
    return 0;
  };
  onTerminate(stop, { hangup: true });

  screen.start();
  ui.notice(t.looking(`${binder.host}:${binder.port}`));
  try {
    await session.connect();
  } catch (error) {
    if (!(error instanceof Problem)) return await stopped();
    ui.notice(error.message, "error");
    screen.close();
    return 1;
  }

  let name = flags.name;
  for (;;) {
    if (name === undefined) {
      ui.notice(t.askName);
      screen.setPrompt(t.namePrompt);
      const line = await screen.readLine();
      if (line === null) return await stopped();
      const input = parseInput(line);
      if (input.kind === "command" && input.command === "quit") return await stopped();
      if (input.kind !== "text") {
        if (input.kind !== "empty") ui.notice(t.nameFirst, "error");
        continue;
      }
      name = line.trim();
    }
    try {
      if (name.trim() && await session.register(name.trim())) break;
    } catch (error) {
      if (!(error instanceof Fault)) return await stopped();
      ui.notice(t.fault(sanitize(error.message)), "error");
    }
    name = undefined;
  }
  screen.setPrompt("> ");
  if (flags.room !== undefined) {
    try {
      await session.join(flags.room, { create: true });
    } catch (error) {
      if (!(error instanceof Fault)) return await stopped();
      ui.notice(t.fault(sanitize(error.message)), "error");
    }
  }
  // After joining: entering a room clears the screen.
  ui.notice(t.help);

  for (;;) {
    const line = await screen.readLine();
    if (line === null) break;
    try {
      if (await session.handle(line) === "quit") break;
    } catch (error) {
      // A bug of ours, not the user's: say it in one line and carry on.
      ui.notice(t.unexpected(sanitize(String((error as Error)?.message ?? error))), "error");
    }
  }
  return await stopped();
}

if (import.meta.main) Deno.exit(await main());
