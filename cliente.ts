#!/usr/bin/env -S deno run --allow-net
/**
 * The rpc-chat terminal client: finds `ChatService` through the binder,
 * registers a unique name, and chats in rooms, live.
 *
 * ```sh
 * deno run --allow-net cliente.ts                          # binder at 127.0.0.1:5000
 * deno run --allow-net cliente.ts --binder 192.168.0.10:5000 --name ana --room geral
 * deno run --allow-net cliente.ts --binder 192.168.0.10,192.168.0.11  # either binder will do
 * deno run --allow-net https://example.org/rpc-chat/cliente.ts --lang en
 * ```
 *
 * Commands are listed by `/ajuda` (`/help`); any other line goes to the
 * current room. Messages arrive through the server's long wait
 * (`aguardar_mensagens` with a cursor), or, against a server with only the
 * original methods, by polling `receber_mensagens`. When the server restarts
 * or moves, the client finds it again through the binders (`--binder h1,h2`:
 * the first that answers), takes its session along (another instance sharing
 * the sessions knows it; any other server gets the same name registered
 * again), rejoins the room and carries on, with no message shown twice.
 *
 * On a terminal it edits the line in raw mode, so arriving messages never
 * mangle what is being typed: the line scrolls sideways at any width, with
 * word motions, history search, Tab completion and bracketed paste; lines
 * waiting for the server (away, or holding them at its rate limit) show above
 * it and go out in order; private messages and mentions ring the bell.
 * Otherwise it reads commands line by line and prints plain lines, so it can
 * be scripted. The pure pieces ({@linkcode LineEditor}, {@linkcode KeyDecoder},
 * {@linkcode complete}, {@linkcode fitInput}, {@linkcode renderMessage}) are
 * exported for tests.
 *
 * Needs `--allow-net` only: it reads no environment variable unless allowed
 * (the locale comes from `navigator.language`) and never prompts.
 *
 * @module
 */

import {
  type ChatMessage,
  clientFlags,
  endpointUrl,
  EVERYONE,
  Fault,
  FaultCode,
  type HostPort,
  KEEPS_SESSION_HEADER,
  type Lang,
  langArgument,
  languageOf,
  localeLang,
  localWallClock,
  MAX_TEXT,
  misleadingName,
  netNeeded,
  NETWORK_ERRORS_PT,
  noticeOf,
  onTerminate,
  parseHostPortList,
  readLines,
  Reason,
  reasonOf,
  REASONS_HEADER,
  requirePermissions,
  type Result,
  SEND_KEY_HEADER,
  SERVER,
  Unreachable,
  useLanguage,
  writeStdout,
  XmlRpcClient,
  type XmlRpcValue,
} from "./deps.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** The languages of the client's texts: the protocol's. */
export type { Lang };

/** What `entrar_na_sala` answers (`cursor` and `sala` are our extensions; the original has neither). */
interface Joined {
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
  --binder H:P[,H:P...]
                       onde está o binder (padrão: 127.0.0.1:5000, ou o de onde veio este
                       cliente); com vários, pergunta a um por vez até um responder
  --name NOME          seu nome de usuário (sem ele, o cliente pergunta)
  --room SALA          entra na sala ao conectar (e a cria se não existir)
  --lang pt|en         idioma (padrão: pt; en com um locale inglês)
  --retry S            segundos entre tentativas de alcançar binder e servidor (padrão: 2)
  --attempts N         tentativas ao iniciar antes de desistir (padrão: 10; 0 = sem limite)
  --no-bell            não toca o sino do terminal (privadas e menções só ficam destacadas)
  -h, --help           mostra esta ajuda

Comandos: /criar /entrar /sair /salas /usuarios /msg /excluir /ajuda /fim (veja /ajuda)`,
  help: `Comandos:
  /criar SALA          cria uma sala
  /entrar SALA         entra na sala (saindo da atual); cria a sala se ela não existir
  /sair                sai da sala atual
  /salas               lista as salas
  /usuarios [SALA]     lista quem está na sala
  /msg NOME TEXTO      mensagem privada para NOME, em qualquer sala ("nome com espaço" entre aspas)
  /excluir SALA        exclui uma sala que você criou
  /ajuda               mostra esta ajuda
  /fim                 sai do chat
Qualquer outra linha vai para a sala atual (comece com // para enviar uma linha que começa com /).
Também em inglês: /create /join /leave /rooms /users /msg /delete /help /quit`,
  keys: `Teclas:
  Tab                  completa nomes, comandos e salas; Tab de novo: a próxima opção
  ↑ ↓                  linhas já enviadas; Ctrl-R busca nelas (de novo: mais antiga; Esc cancela)
  ← →  Home End        move o cursor; Ctrl-← → ou Alt-b Alt-f: palavra a palavra
  Ctrl-W  Alt-d        apaga a palavra antes / depois do cursor; Ctrl-U Ctrl-K: até o início / fim
  Ctrl-Y               devolve o que foi apagado
  Ctrl-L               redesenha a conversa
  Ctrl-C               limpa a linha; numa linha vazia pede confirmação, e um segundo Ctrl-C sai
  Ctrl-D               numa linha vazia, sai
Colar várias linhas envia uma só mensagem (acima de 5 linhas o cliente pergunta antes).
Linhas à espera (sem conexão, ou no limite de mensagens do servidor) aparecem acima da linha de \
digitação e saem em ordem, nenhuma se perde.
Privadas e menções ao seu nome ficam destacadas e tocam o sino (--no-bell silencia).
A conversa anterior fica na rolagem do próprio terminal.`,
  /** What is wrong with a `--binder` list. */
  looking: (binders: string[]) =>
    `Procurando o ChatService ${binders.length === 1 ? "no binder" : "nos binders"} ${binders.join(", ")}...`,
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
  notInRoomKept:
    "Você não está em nenhuma sala: a linha continua aí. Entre numa com /entrar SALA e tecle Enter de novo.",
  offline: "sem conexão",
  pendingTag: "pendente",
  waitingTag: "aguardando",
  privateTag: "privada",
  confirmQuit: "Ctrl-C de novo para sair (qualquer outra tecla continua aqui).",
  pasteQuestion: (lines: number) =>
    `Colar ${lines} linhas? Enter: uma mensagem, l: linha a linha, Esc: cancela`,
  /** The question where the whole one does not fit (60 columns). */
  pasteQuestionShort: (lines: number) => `Colar ${lines} linhas? Enter: tudo, l: linha a linha, Esc: não`,
  searchPrompt: (query: string, found: boolean) => `(busca${found ? "" : " sem resultado"} '${query}'): `,
  locale: "pt-BR",
  commands: ["/criar", "/entrar", "/sair", "/salas", "/usuarios", "/msg", "/excluir", "/ajuda", "/fim"],
  welcome: (name: string) => `Olá, ${name}! Digite /ajuda para ver os comandos.`,
  connectionLost: (reason: string) =>
    `Conexão com o servidor perdida (${reason}). Procurando o ChatService de novo...`,
  sessionLost: (reason: string) => `O servidor encerrou a sessão (${reason}). Registrando de novo...`,
  serverTrouble: (reason: string, seconds: number) =>
    `O servidor não pôde atender: ${reason} Tentando de novo a cada ${seconds} s...`,
  troubleOver: "O servidor voltou a atender.",
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
  joinHint: (room: string) => `Para entrar nela: /entrar ${/\s/.test(room) ? `"${room}"` : room}`,
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
  --binder H:P[,H:P...]
                       where the binder is (default: 127.0.0.1:5000, or the one this client came
                       from); with several, asks one at a time until one answers
  --name NAME          your user name (without it, the client asks)
  --room ROOM          joins the room on connecting (creating it if missing)
  --lang pt|en         language (default: pt; en with an English locale)
  --retry S            seconds between attempts to reach binder and server (default: 2)
  --attempts N         attempts on start before giving up (default: 10; 0 = no limit)
  --no-bell            never rings the terminal bell (private messages and mentions stay highlighted)
  -h, --help           shows this help

Commands: /create /join /leave /rooms /users /msg /delete /help /quit (see /help)`,
  help: `Commands:
  /create ROOM         creates a room
  /join ROOM           joins the room (leaving the current one); creates it if it does not exist
  /leave               leaves the current room
  /rooms               lists the rooms
  /users [ROOM]        lists who is in the room
  /msg NAME TEXT       private message to NAME, in any room ("a name with spaces" in quotes)
  /delete ROOM         deletes a room you created
  /help                shows this help
  /quit                leaves the chat
Any other line goes to the current room (start it with // to send a line that begins with /).
Also in Portuguese: /criar /entrar /sair /salas /usuarios /msg /excluir /ajuda /fim`,
  keys: `Keys:
  Tab                  completes names, commands and rooms; Tab again: the next option
  ↑ ↓                  lines sent before; Ctrl-R searches them (again: older; Esc cancels)
  ← →  Home End        move the cursor; Ctrl-← → or Alt-b Alt-f: word by word
  Ctrl-W  Alt-d        delete the word before / after the cursor; Ctrl-U Ctrl-K: to the start / end
  Ctrl-Y               puts back what was deleted
  Ctrl-L               redraws the conversation
  Ctrl-C               clears the line; on an empty line asks first, and a second Ctrl-C leaves
  Ctrl-D               on an empty line, leaves
Pasting several lines sends one message (above 5 lines the client asks first).
Lines waiting (offline, or at the server's message limit) show above the input line and go out in \
order; none is lost.
Private messages and mentions of your name stand out and ring the bell (--no-bell silences it).
The earlier conversation stays in the terminal's own scrollback.`,
  looking: (binders) =>
    `Looking for ChatService at the binder${binders.length === 1 ? "" : "s"} ${binders.join(", ")}...`,
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
  notInRoomKept:
    "You are not in a room: the line is still there. Join one with /join ROOM and press Enter again.",
  offline: "offline",
  pendingTag: "pending",
  waitingTag: "waiting",
  privateTag: "private",
  confirmQuit: "Ctrl-C again to leave (any other key stays here).",
  pasteQuestion: (lines) => `Paste ${lines} lines? Enter: one message, l: line by line, Esc: cancel`,
  pasteQuestionShort: (lines) => `Paste ${lines} lines? Enter: all, l: line by line, Esc: no`,
  searchPrompt: (query, found) => `(${found ? "" : "failing "}search '${query}'): `,
  locale: "en-US",
  commands: ["/create", "/join", "/leave", "/rooms", "/users", "/msg", "/delete", "/help", "/quit"],
  welcome: (name) => `Hello, ${name}! Type /help to see the commands.`,
  connectionLost: (reason) =>
    `Lost the connection to the server (${reason}). Looking for ChatService again...`,
  sessionLost: (reason) => `The server ended the session (${reason}). Registering again...`,
  serverTrouble: (reason, seconds) =>
    `The server could not serve us: ${reason} Trying again every ${seconds} s...`,
  troubleOver: "The server is serving again.",
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
  joinHint: (room) => `To join it: /join ${/\s/.test(room) ? `"${room}"` : room}`,
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
    tooLarge: "answer too large",
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
  return localeLang(flag);
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

/** A room's name as typed after a command: `SALA` or `"SALA COM ESPAÇO"` (quotes work as in `/msg`). */
export function roomArgument(rest: string): string {
  const quoted = /^"([^"]*)"$/.exec(rest.trim());
  return (quoted ? quoted[1]! : rest).trim();
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
// Invisible characters (zero-width spaces and joiners, word joiners, fillers, the byte order mark): a name or a
// line could hide in them. A joiner inside an emoji sequence stays.
const INVISIBLE =
  /[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b\u200c\u2060-\u2064\u206a-\u206f\u3164\ufeff\uffa0]|\u200d(?!\p{Extended_Pictographic})/gu;
// Combining marks past two on one character: a stack of them draws over the lines above and below.
const STACKED_MARKS = /(\p{M}{2})\p{M}+/gu;

/**
 * Text from others made safe for a terminal: escape sequences are dropped,
 * line breaks and tabs become spaces, other control characters become `�`.
 */
export function sanitize(text: string): string {
  return String(text).replace(ESCAPES, "").replace(
    UNSAFE,
    (c) => /[\t\n\r\u2028\u2029]/.test(c) ? " " : "\ufffd",
  ).replace(INVISIBLE, "").replace(STACKED_MARKS, "$1");
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * `HH:MM:SS` of a message's timestamp: a Date (the server's wall clock, in its UTC fields, as the codec
 * reads a naive dateTime), or the original `YYYYMMDDTHH:MM:SS` text. Shown as the server wrote it, as the
 * original client shows it, whatever this machine's time zone.
 */
export function clockOf(timestamp: Date | string): string {
  if (timestamp instanceof Date && !Number.isNaN(timestamp.getTime())) {
    return `${pad2(timestamp.getUTCHours())}:${pad2(timestamp.getUTCMinutes())}:${
      pad2(timestamp.getUTCSeconds())
    }`;
  }
  const match = /T(\d\d):?(\d\d):?(\d\d)/.exec(String(timestamp));
  if (match) return `${match[1]}:${match[2]}:${match[3]}`;
  return clockOf(localWallClock(new Date()));
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
  const from = displayName(message.origem);
  const text = sanitize(message.conteudo);
  if (isPrivate(message)) {
    const line = `${time} ${from} -> ${displayName(message.destino)}: ${text}`;
    return paint(colour, "magenta", paint(colour, "bold", line));
  }
  if (from === SERVER) return paint(colour, "dim", `${time} ${from}: ${text}`);
  return `${paint(colour, "dim", time)} ${paint(colour, nameColour(from), from)}: ${text}`;
}

/**
 * A name as lines show it, made safe: in quotes when it could pass for part
 * of a line's format (an original server lets `carlos -> bia` register), or
 * holds quotes or spaces at its ends.
 */
export function displayName(name: string): string {
  const safe = sanitize(name);
  if (safe && safe === safe.trim() && !safe.includes('"') && !misleadingName(safe)) return safe;
  return `"${safe.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/**
 * A text of several lines (a paste) in parts the server takes (at most `max`
 * UTF-16 units each): cut at line breaks where it can, a line too long on its
 * own at `max` (never inside a character); parts of nothing but spaces are
 * dropped. A single line stays whole, whatever its length.
 */
export function splitMessage(text: string, max = MAX_TEXT): string[] {
  // One line typed goes as it is: over the limit, the server says so.
  if (text.length <= max || !text.includes("\n")) return [text];
  const parts: string[] = [];
  let current: string | undefined;
  for (let line of text.split("\n")) {
    while (line.length > max) {
      const cut = /[\ud800-\udbff]/.test(line[max - 1]!) ? max - 1 : max;
      if (current !== undefined) parts.push(current);
      current = undefined;
      parts.push(line.slice(0, cut));
      line = line.slice(cut);
    }
    if (current !== undefined && current.length + 1 + line.length > max) {
      parts.push(current);
      current = undefined;
    }
    current = current === undefined ? line : `${current}\n${line}`;
  }
  if (current !== undefined) parts.push(current);
  return parts.filter((part) => part.trim());
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
    const seen = maxId(previous) ?? -Infinity;
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

/** Every call to the chat service asks for the reason of refusals and says it keeps the session cookie. */
const CHAT_HEADERS = { [REASONS_HEADER]: "1", [KEEPS_SESSION_HEADER]: "1" };

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
// The terminal's pure pieces: keys, the line editor, completion, layout
// ---------------------------------------------------------------------------

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

/** Columns a text takes on a terminal (no escape sequences in it). */
export function textWidth(text: string | readonly string[]): number {
  let width = 0;
  for (const char of text) width += charWidth(char);
  return width;
}

/** A text cut to at most `width` columns, ending in `…` when cut. */
export function truncate(text: string, width: number): string {
  if (textWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const char of text) {
    if (used + charWidth(char) > width - 1) break;
    out += char;
    used += charWidth(char);
  }
  return width > 0 ? `${out}…` : "";
}

/**
 * A key read from the terminal: `name` is `char` (a character typed, in
 * `text`), `paste` (a bracketed paste, in `text`), or a key's name: `enter`,
 * `tab`, `shift-tab`, `backspace`, `delete`, `escape`, `left`, `right`, `up`,
 * `down`, `home`, `end`, `pageup`, `pagedown`, `ctrl-left`, `ctrl-right`,
 * `ctrl-delete`, `ctrl-a` to `ctrl-z`, `alt-b` (Alt and a character),
 * `alt-backspace`, `focus-in`, `focus-out`, `unknown`.
 */
export interface Key {
  /** What was pressed. */
  name: string;
  /** The character typed, or the text pasted. */
  text?: string;
}

const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";
// deno-lint-ignore no-control-regex -- the escape sequences a terminal sends for keys
const KEY_SEQUENCE = /^\x1b(?:\[([0-9;]*)([~A-Za-z])|O([A-Za-z]))/;
// deno-lint-ignore no-control-regex -- the start of one, split across reads
const PARTIAL_SEQUENCE = /^\x1b(?:\[[0-9;]*|O)?$/;
const ARROWS: Record<string, string> = { A: "up", B: "down", C: "right", D: "left", H: "home", F: "end" };
const TILDE_KEYS: Record<string, string> = {
  "1": "home",
  "7": "home",
  "4": "end",
  "8": "end",
  "3": "delete",
  "5": "pageup",
  "6": "pagedown",
  "2": "insert",
};

/** A character typed alone: Enter, Tab, Backspace, Ctrl and a letter, or text. */
function plainKey(char: string): Key {
  if (char === "\r" || char === "\n") return { name: "enter" };
  if (char === "\t") return { name: "tab" };
  if (char === "\x7f" || char === "\b") return { name: "backspace" };
  const code = char.codePointAt(0)!;
  if (code >= 1 && code <= 26) return { name: `ctrl-${String.fromCharCode(code + 96)}` };
  if (code < 32) return { name: "unknown" };
  return { name: "char", text: char };
}

/** Escape and then a character: Alt and that key. */
function altKey(char: string): Key {
  if (char === "\x7f" || char === "\b") return { name: "alt-backspace" };
  if (char === "\r") return { name: "alt-enter" };
  return { name: `alt-${char.toLowerCase()}` };
}

/** `ESC [ params final` or `ESC O final`. */
function sequenceKey(params: string, final: string, ss3: boolean): Key {
  const modifier = Number(params.split(";")[1] ?? 1);
  if (final === "~") {
    const name = TILDE_KEYS[params.split(";")[0]!] ?? "unknown";
    return { name: name === "delete" && modifier >= 5 ? "ctrl-delete" : name };
  }
  if (!ss3 && final === "I") return { name: "focus-in" };
  if (!ss3 && final === "O") return { name: "focus-out" };
  if (final === "Z") return { name: "shift-tab" };
  // rxvt: ESC O c / ESC O d are Ctrl-→ / Ctrl-←.
  if (ss3 && (final === "c" || final === "d")) return { name: final === "c" ? "ctrl-right" : "ctrl-left" };
  const name = ARROWS[final];
  if (!name) return { name: "unknown" };
  // xterm: ESC [ 1 ; 5 C is Ctrl-→, ; 3 is Alt: both move by words.
  if ((name === "left" || name === "right") && (modifier === 3 || modifier === 5)) {
    return { name: `ctrl-${name}` };
  }
  return { name };
}

/**
 * Turns what a terminal in raw mode sends into {@linkcode Key}s: characters,
 * escape sequences (arrows, Ctrl and Alt combinations, focus changes), and a
 * bracketed paste as one key however many reads it spans. A sequence cut by
 * the end of a read waits for the next; a lone Escape waits for
 * {@linkcode KeyDecoder.flush}.
 */
export class KeyDecoder {
  #pending = "";
  #paste: string | undefined;

  /** The keys in what was read. */
  feed(input: string): Key[] {
    const text = this.#pending + input;
    this.#pending = "";
    const keys: Key[] = [];
    let i = 0;
    while (i < text.length) {
      if (this.#paste !== undefined) {
        const end = text.indexOf(PASTE_END, i);
        if (end < 0) {
          // Keep what could be the start of the end marker for the next read.
          let keep = Math.min(PASTE_END.length - 1, text.length - i);
          while (keep > 0 && !PASTE_END.startsWith(text.slice(text.length - keep))) keep--;
          this.#paste += text.slice(i, text.length - keep);
          this.#pending = text.slice(text.length - keep);
          return keys;
        }
        keys.push({ name: "paste", text: this.#paste + text.slice(i, end) });
        this.#paste = undefined;
        i = end + PASTE_END.length;
        continue;
      }
      const char = String.fromCodePoint(text.codePointAt(i)!);
      if (char !== "\x1b") {
        i += char.length;
        if (char === "\r" && text[i] === "\n") i++;
        keys.push(plainKey(char));
        continue;
      }
      const rest = text.slice(i);
      if (rest.startsWith(PASTE_START)) {
        this.#paste = "";
        i += PASTE_START.length;
        continue;
      }
      const sequence = KEY_SEQUENCE.exec(rest);
      if (sequence) {
        keys.push(
          sequenceKey(sequence[1] ?? "", sequence[2] ?? sequence[3] ?? "", sequence[3] !== undefined),
        );
        i += sequence[0].length;
        continue;
      }
      if (PARTIAL_SEQUENCE.test(rest) || PASTE_START.startsWith(rest)) {
        this.#pending = rest;
        return keys;
      }
      const next = String.fromCodePoint(rest.codePointAt(1)!);
      if (next === "\x1b") {
        keys.push({ name: "escape" });
        i += 1;
      } else {
        keys.push(altKey(next));
        i += 1 + next.length;
      }
    }
    return keys;
  }

  /** Whether the start of a sequence waits for more (after a pause, {@linkcode KeyDecoder.flush}). */
  get waiting(): boolean {
    return this.#pending !== "" && this.#paste === undefined;
  }

  /** No more came: what waited was an Escape (or Alt and a key). */
  flush(): Key[] {
    const pending = this.#pending;
    this.#pending = "";
    if (!pending || this.#paste !== undefined) return [];
    if (pending === "\x1b") return [{ name: "escape" }];
    return [altKey(pending[1]!), ...this.feed(pending.slice(2))];
  }
}

/** How many lines a paste may have before the client asks what to do with it. */
export const PASTE_ASK_LINES = 5;

/** A paste made fit for the input line: line breaks as `\n`, tabs as spaces, no control characters. */
export function cleanPaste(raw: string): string {
  return raw.replace(ESCAPES, "").replace(/\r\n?/g, "\n").replaceAll("\t", "    ")
    .replace(UNSAFE, (char) => char === "\n" ? char : "").replace(/^\n+|\n+$/g, "");
}

/** What Tab completes: the word from `start` to `end` (in characters) and what may replace it. */
export interface Completion {
  /** `command`, `room` or `name`: what the word is. */
  kind: "command" | "room" | "name";
  /** Where the word starts. */
  start: number;
  /** Where it ends (the cursor). */
  end: number;
  /** The replacements, in order. */
  options: string[];
}

/** What Tab completes from: commands (the user's language first), people, rooms. */
export interface CompletionSources {
  /** Command words. */
  commands: readonly string[];
  /** People: the room's members, and whoever wrote privately. */
  names: readonly string[];
  /** Rooms. */
  rooms: readonly string[];
}

/** The commands whose argument is a room. */
const ROOM_COMMANDS: ReadonlySet<CommandName> = new Set(["join", "delete", "users"]);

/** A name as it is typed: in quotes when it holds spaces. */
export function quoteName(name: string): string {
  return /\s/.test(name) ? `"${name}"` : name;
}

function startsWithFolded(text: string, prefix: string): boolean {
  return text.toLocaleLowerCase().startsWith(prefix.toLocaleLowerCase());
}

function byName(a: string, b: string): number {
  return a.localeCompare(b, undefined, { sensitivity: "base" });
}

/**
 * What Tab completes at `cursor` (in characters) of `line`: the first word,
 * a command; the argument of `/entrar` (and `/excluir`, `/usuarios`), a room;
 * any other word, a name (in quotes when it holds spaces; a word that starts
 * with `"` matches names with spaces), followed by `: ` at the start of a line.
 * No word, no completion, but for the recipient of `/msg`.
 */
export function complete(line: string, cursor: number, sources: CompletionSources): Completion | undefined {
  const before = [...line].slice(0, cursor).join("");
  if (/^\/\S*$/.test(before)) {
    const options = [...new Set(sources.commands.filter((word) => startsWithFolded(word, before)))];
    return { kind: "command", start: 0, end: cursor, options: options.map((word) => `${word} `) };
  }
  const command = /^(\/\S+)\s+/.exec(before);
  if (command && ROOM_COMMANDS.has(COMMANDS[command[1]!.toLowerCase()]!)) {
    const prefix = before.slice(command[0].length);
    const options = sources.rooms.filter((room) => startsWithFolded(room, prefix)).sort(byName);
    return { kind: "room", start: [...command[0]].length, end: cursor, options };
  }
  const quoted = (before.match(/"/g) ?? []).length % 2 === 1;
  const word = quoted ? before.slice(before.lastIndexOf('"')) : /\S*$/.exec(before)![0];
  const start = cursor - [...word].length;
  const prefix = quoted ? word.slice(1) : word;
  const recipient = command !== null && COMMANDS[command[1]!.toLowerCase()] === "msg" &&
    before.length - word.length === command[0].length;
  // Tab on no word at all completes nothing, but the recipient of /msg.
  if (!word && !recipient) return undefined;
  const suffix = before.length === word.length ? ": " : " ";
  const options = [...new Set(sources.names)].filter((name) => startsWithFolded(name, prefix)).sort(byName);
  return { kind: "name", start, end: cursor, options: options.map((name) => `${quoteName(name)}${suffix}`) };
}

/** What a key asks of the screen besides editing: see {@linkcode LineEditor.key}. */
export type EditorAction = "none" | "submit" | "eof" | "confirm-quit" | "quit" | "redraw" | "ask-paste";

/** Letters, digits and marks: what Alt-b, Alt-f and Alt-d take as a word. */
const WORD_CHAR = /[\p{L}\p{N}\p{M}_]/u;
const HISTORY_KEPT = 500;

/**
 * The input line, without a terminal: the text and cursor, the history and
 * its reverse search (Ctrl-R), completion (Tab, cycling), word motions, what
 * was deleted (Ctrl-Y puts it back), pastes, and Ctrl-C's two steps. The
 * screen feeds it {@linkcode Key}s and draws {@linkcode LineEditor.chars}.
 */
export class LineEditor {
  #chars: string[] = [];
  #cursor = 0;
  readonly #history: string[] = [];
  #historyIndex = 0;
  #draft: string[] = [];
  #search: { query: string; match: number; saved: string[]; savedCursor: number } | undefined;
  #cycle: { start: number; options: string[]; index: number } | undefined;
  #killed = "";
  #quitArmed = false;
  /** The paste waiting for an answer, after `ask-paste`. */
  pasted = "";

  /** The line as typed. */
  get line(): string {
    return this.#chars.join("");
  }

  /** Its characters (code points). */
  get chars(): readonly string[] {
    return this.#chars;
  }

  /** Where the cursor is, in characters. */
  get cursor(): number {
    return this.#cursor;
  }

  /** The reverse search under way: what is sought, and whether a line has it. */
  get search(): { query: string; found: boolean } | undefined {
    const search = this.#search;
    return search && { query: search.query, found: search.query === "" || search.match >= 0 };
  }

  /** Replaces the line; the cursor goes to its end. */
  set(text: string): void {
    this.#chars = [...text];
    this.#cursor = this.#chars.length;
  }

  /** Inserts text at the cursor. */
  insert(text: string): void {
    const chars = [...text];
    this.#chars.splice(this.#cursor, 0, ...chars);
    this.#cursor += chars.length;
  }

  /** The line was sent: it goes into the history, and the line is empty again. */
  accept(): void {
    const line = this.line;
    if (line.trim() && this.#history.at(-1) !== line) this.#history.push(line);
    if (this.#history.length > HISTORY_KEPT) this.#history.shift();
    this.#historyIndex = this.#history.length;
    this.#draft = [];
    this.set("");
  }

  /**
   * Handles one key. Editing keys answer `none`; `submit` (Enter: send
   * {@linkcode LineEditor.line}), `eof` (Ctrl-D on an empty line), `confirm-quit`
   * (a first Ctrl-C on an empty line), `quit` (the second, right after),
   * `redraw` (Ctrl-L) and `ask-paste` (a paste of more than
   * {@linkcode PASTE_ASK_LINES} lines, in {@linkcode LineEditor.pasted}) are
   * for the screen to act on.
   */
  key(key: Key, complete?: (line: string, cursor: number) => Completion | undefined): EditorAction {
    const armed = this.#quitArmed;
    this.#quitArmed = false;
    if (key.name !== "tab" && key.name !== "shift-tab") this.#cycle = undefined;
    if (this.#search) {
      const action = this.#searchKey(key);
      if (action !== undefined) return action;
    }
    const chars = this.#chars;
    switch (key.name) {
      case "char":
        if (!UNSAFE_CHAR.test(key.text!)) this.insert(key.text!);
        break;
      case "paste":
        return this.#paste(key.text ?? "");
      case "enter":
        return "submit";
      case "tab":
      case "shift-tab":
        this.#complete(key.name === "tab" ? 1 : -1, complete);
        break;
      case "backspace":
      case "ctrl-h":
        if (this.#cursor > 0) chars.splice(--this.#cursor, 1);
        break;
      case "ctrl-d":
        if (chars.length === 0) return "eof";
        chars.splice(this.#cursor, 1);
        break;
      case "delete":
        chars.splice(this.#cursor, 1);
        break;
      case "left":
      case "ctrl-b":
        this.#cursor = Math.max(0, this.#cursor - 1);
        break;
      case "right":
      case "ctrl-f":
        this.#cursor = Math.min(chars.length, this.#cursor + 1);
        break;
      case "home":
      case "ctrl-a":
        this.#cursor = 0;
        break;
      case "end":
      case "ctrl-e":
        this.#cursor = chars.length;
        break;
      case "ctrl-left":
      case "alt-b":
        this.#cursor = this.#wordStart();
        break;
      case "ctrl-right":
      case "alt-f":
        this.#cursor = this.#wordEnd();
        break;
      case "alt-d":
      case "ctrl-delete":
        this.#kill(this.#cursor, this.#wordEnd());
        break;
      case "alt-backspace":
        this.#kill(this.#wordStart(), this.#cursor);
        break;
      case "ctrl-w": {
        let start = this.#cursor;
        while (start > 0 && /\s/.test(chars[start - 1]!)) start--;
        while (start > 0 && !/\s/.test(chars[start - 1]!)) start--;
        this.#kill(start, this.#cursor);
        break;
      }
      case "ctrl-u":
        this.#kill(0, this.#cursor);
        break;
      case "ctrl-k":
        this.#kill(this.#cursor, chars.length);
        break;
      case "ctrl-y":
        this.insert(this.#killed);
        break;
      case "up":
      case "ctrl-p":
        this.#recall(-1);
        break;
      case "down":
      case "ctrl-n":
        this.#recall(1);
        break;
      case "ctrl-r":
        this.#search = { query: "", match: -1, saved: [...chars], savedCursor: this.#cursor };
        break;
      case "ctrl-l":
        return "redraw";
      case "ctrl-c":
        if (chars.length > 0) {
          this.#kill(0, chars.length);
          return "none";
        }
        if (armed) return "quit";
        this.#quitArmed = true;
        return "confirm-quit";
    }
    return "none";
  }

  /** A key during the reverse search; undefined when the search ends and the key edits the line found. */
  #searchKey(key: Key): EditorAction | undefined {
    const search = this.#search!;
    switch (key.name) {
      case "char":
        search.query += key.text;
        this.#find(search.match >= 0 ? search.match : this.#history.length - 1);
        return "none";
      case "backspace":
      case "ctrl-h":
        search.query = [...search.query].slice(0, -1).join("");
        search.match = -1;
        if (search.query) this.#find(this.#history.length - 1);
        else this.#show(search.saved, search.savedCursor);
        return "none";
      case "ctrl-r":
        if (search.query) this.#find((search.match >= 0 ? search.match : this.#history.length) - 1);
        return "none";
      case "escape":
      case "ctrl-g":
      case "ctrl-c":
        this.#show(search.saved, search.savedCursor);
        this.#search = undefined;
        return "none";
      case "focus-in":
      case "focus-out":
        return "none";
      default:
        // Any other key takes the line found, and does its work on it.
        this.#search = undefined;
        return undefined;
    }
  }

  /** The newest history line at or before `from` that holds the query (any case); shown if found. */
  #find(from: number): void {
    const search = this.#search!;
    const query = search.query.toLocaleLowerCase();
    for (let i = Math.min(from, this.#history.length - 1); i >= 0; i--) {
      const at = this.#history[i]!.toLocaleLowerCase().indexOf(query);
      if (at < 0) continue;
      search.match = i;
      this.#show([...this.#history[i]!], [...this.#history[i]!.slice(0, at)].length);
      this.#historyIndex = i;
      return;
    }
    search.match = -1;
  }

  #show(chars: string[], cursor: number): void {
    this.#chars = [...chars];
    this.#cursor = cursor;
  }

  #recall(step: number): void {
    const index = this.#historyIndex + step;
    if (index < 0 || index > this.#history.length) return;
    if (this.#historyIndex === this.#history.length) this.#draft = [...this.#chars];
    this.#historyIndex = index;
    this.#show(index === this.#history.length ? this.#draft : [...this.#history[index]!], 0);
    this.#cursor = this.#chars.length;
  }

  #kill(from: number, to: number): void {
    if (to <= from) return;
    this.#killed = this.#chars.splice(from, to - from).join("");
    this.#cursor = from;
  }

  #wordStart(): number {
    let i = this.#cursor;
    while (i > 0 && !WORD_CHAR.test(this.#chars[i - 1]!)) i--;
    while (i > 0 && WORD_CHAR.test(this.#chars[i - 1]!)) i--;
    return i;
  }

  #wordEnd(): number {
    let i = this.#cursor;
    const length = this.#chars.length;
    while (i < length && !WORD_CHAR.test(this.#chars[i]!)) i++;
    while (i < length && WORD_CHAR.test(this.#chars[i]!)) i++;
    return i;
  }

  /** Tab: the first option; Tab again, the next (Shift-Tab, the previous), around and around. */
  #complete(step: number, complete?: (line: string, cursor: number) => Completion | undefined): void {
    let cycle = this.#cycle;
    if (cycle) {
      cycle.index = (cycle.index + step + cycle.options.length) % cycle.options.length;
    } else {
      const found = complete?.(this.line, this.#cursor);
      if (!found || found.options.length === 0) return;
      this.#chars.splice(found.start, found.end - found.start);
      this.#cursor = found.start;
      // One option: done (the next Tab completes afresh, say the room after a command).
      if (found.options.length === 1) return this.insert(found.options[0]!);
      cycle = this.#cycle = { start: found.start, options: found.options, index: step > 0 ? 0 : -1 };
      cycle.index = (cycle.index + found.options.length) % found.options.length;
      this.#chars.splice(found.start, 0, ...[...found.options[cycle.index]!]);
      this.#cursor = found.start + [...found.options[cycle.index]!].length;
      return;
    }
    const previous = [...cycle.options[(cycle.index - step + cycle.options.length) % cycle.options.length]!];
    const next = [...cycle.options[cycle.index]!];
    this.#chars.splice(cycle.start, previous.length, ...next);
    this.#cursor = cycle.start + next.length;
  }

  #paste(raw: string): EditorAction {
    const text = cleanPaste(raw);
    if (text.split("\n").length > PASTE_ASK_LINES) {
      this.pasted = text;
      return "ask-paste";
    }
    this.insert(text);
    return "none";
  }
}

/** What the input line shows in `width` columns: its visible part, where the cursor is, the scroll kept. */
export interface FittedInput {
  /** The visible characters (a line break shows as `↵`). */
  text: string;
  /** The cursor's column within `text`. */
  column: number;
  /** The first character shown: pass it back on the next call, so the line does not jump. */
  scroll: number;
}

/**
 * Fits the input line into `width` columns, scrolling sideways so the cursor
 * is always visible (and never past the last column): the line never wraps,
 * whatever the terminal's width.
 */
export function fitInput(chars: readonly string[], cursor: number, width: number, scroll = 0): FittedInput {
  const shown = chars.map((char) => char === "\n" ? "↵" : char);
  const cells = shown.map(charWidth);
  width = Math.max(1, width);
  const total = cells.reduce((sum, w) => sum + w, 0);
  if (total < width) scroll = 0;
  scroll = Math.max(0, Math.min(scroll, cursor));
  // The cursor needs its own cell: the character under it, or one past the end.
  const cursorCell = Math.max(1, cells[cursor] ?? 1);
  let before = 0;
  for (let i = scroll; i < cursor; i++) before += cells[i]!;
  while (scroll < cursor && before + cursorCell > width) before -= cells[scroll++]!;
  // No room left empty on the right while text is hidden on the left (after deleting at the end, say).
  let tail = 1;
  for (let i = scroll; i < cells.length; i++) tail += cells[i]!;
  while (scroll > 0 && tail + cells[scroll - 1]! <= width) {
    tail += cells[--scroll]!;
    before += cells[scroll]!;
  }
  let end = scroll;
  let used = 0;
  while (end < shown.length && used + cells[end]! <= width) used += cells[end++]!;
  return { text: shown.slice(scroll, end).join(""), column: before, scroll };
}

/**
 * The prompt for a room and a connection status (`[geral] > `,
 * `[geral] (sem conexão) > `), at most half of `columns`: a long room name
 * is shortened with `…`, then the status becomes `!`, then the room goes.
 */
export function promptFor(room: string | null, status: string | undefined, columns: number): string {
  const max = Math.max(2, Math.floor(columns / 2));
  const make = (name: string, tag: string) => {
    const parts = [name ? `[${name}]` : "", tag ? `(${tag})` : ""].filter(Boolean);
    return parts.length ? `${parts.join(" ")} > ` : "> ";
  };
  const name = room ?? "";
  const full = make(name, status ?? "");
  if (textWidth(full) <= max) return full;
  for (const tag of status ? [status, "!"] : [""]) {
    const spare = max - (textWidth(make("x", tag)) - 1);
    if (name && spare >= 3) return make(truncate(name, spare), tag);
  }
  const short = make("", status ? "!" : "");
  return textWidth(short) <= max ? short : "> ";
}

/**
 * Text in rows of at most `width` columns, broken at spaces (a word longer
 * than a row is cut): each line of `lines` starts a row; the first row has
 * `first` columns (the rest of a row after a prefix), the others `width`.
 */
export function wrapRows(lines: readonly string[], first: number, width: number): string[] {
  const rows: string[] = [];
  let room = Math.max(1, first);
  for (const line of lines) {
    const chars = [...line];
    let i = 0;
    for (;;) {
      let used = 0;
      let j = i;
      let space = -1;
      while (j < chars.length && used + charWidth(chars[j]!) <= room) {
        if (chars[j] === " ") space = j;
        used += charWidth(chars[j++]!);
      }
      let end = j;
      if (j < chars.length && chars[j] !== " ") {
        // The row is full in the middle of a word: back to the last space, or cut a word too long.
        if (space > i) end = space;
        else if (j === i) end = i + 1;
      }
      rows.push(chars.slice(i, end).join("").trimEnd());
      room = Math.max(1, width);
      i = end;
      while (i < chars.length && chars[i] === " ") i++;
      if (i >= chars.length) break;
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Lines on a terminal: messages wrapped and marked, notices, days
// ---------------------------------------------------------------------------

/** The calendar day of a wall-clock date (in its UTC fields, see {@linkcode clockOf}), as a key (`2026-11-24`). */
function dayOf(date: Date): string {
  return `${date.getUTCFullYear()}-${pad2(date.getUTCMonth() + 1)}-${pad2(date.getUTCDate())}`;
}

/** When a message was stored, as a wall-clock date (see {@linkcode clockOf}): a Date, or the original text. */
export function dateOf(timestamp: Date | string): Date | undefined {
  if (timestamp instanceof Date) return Number.isNaN(timestamp.getTime()) ? undefined : timestamp;
  const match = /^(\d{4})(\d\d)(\d\d)T(\d\d):?(\d\d):?(\d\d)/.exec(String(timestamp));
  if (!match) return undefined;
  const [y, mo, d, h, mi, s] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s);
  return date;
}

/** Whether `text` names `name` as a word (any case): a mention. */
export function mentions(text: string, name: string | undefined): boolean {
  if (!name) return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, "iu").test(text);
}

/** How a message shows on a terminal (see {@linkcode renderMessage}). */
export interface RenderOptions {
  /** Columns of the terminal. */
  width: number;
  /** Colours and bold (never with NO_COLOR). */
  colour?: boolean;
  /** A private message or a mention of the user: it stands out. */
  attention?: boolean;
  /** The texts, for the private tag and dates. */
  texts?: Texts;
  /** Now, as a wall-clock date (see {@linkcode clockOf}), for dates on older messages. */
  now?: Date;
}

/**
 * A message as a terminal shows it, in rows of at most `width - 1` columns:
 * `[HH:MM:SS] origem: texto` (with the date before the time when older than
 * today); a private one `[HH:MM:SS] [privada] origem -> destino: texto`, the
 * tag marking it beyond its colour; the text's own line breaks and the
 * wrapped rows indented under the text, so nothing in a text can pass for a
 * line of its own. Names that could pass for a line's format are quoted.
 */
export function renderMessage(message: ChatMessage, options: RenderOptions): string[] {
  const t = options.texts ?? PT;
  const colour = options.colour ?? false;
  const width = Math.max(2, options.width - 1);
  const date = dateOf(message.timestamp);
  const old = date !== undefined && dayOf(date) !== dayOf(options.now ?? localWallClock(new Date()));
  const day = old
    ? `${date.toLocaleDateString(t.locale, { day: "2-digit", month: "2-digit", timeZone: "UTC" })} `
    : "";
  const time = `[${day}${clockOf(message.timestamp)}]`;
  const from = displayName(message.origem);
  const body = String(message.conteudo).split(/\r\n|\r|\n/).map(sanitize);
  const priv = isPrivate(message);
  const head = priv
    ? `${time} [${t.privateTag}] ${from} -> ${displayName(message.destino)}: `
    : `${time} ${from}: `;
  const style: Style | undefined = priv ? "magenta" : from === SERVER ? "dim" : undefined;
  const line = (text: string) => (style ? paint(colour, style, text) : text);
  const strong = (text: string) =>
    options.attention ? paint(colour, "bold", paint(colour, priv ? "magenta" : "yellow", text)) : line(text);
  const headWidth = textWidth(head);
  if (headWidth > width * 0.6) {
    // A narrow terminal: the whole line wraps, indented by two.
    const rows = wrapRows([head + body[0], ...body.slice(1)], width, width - 2);
    return rows.map((row, i) => (i ? `  ${strong(row)}` : strong(row)));
  }
  const rows = wrapRows(body, width - headWidth, width - headWidth);
  const indent = " ".repeat(headWidth);
  const first = priv || from === SERVER
    ? line(head)
    : `${paint(colour, "dim", time)} ${paint(colour, nameColour(from), from)}: `;
  return rows.map((row, i) => (i ? `${indent}${strong(row)}` : `${first}${strong(row)}`));
}

/**
 * A notice of the client on a terminal: `* texto`, its lines indented by two;
 * a wrapped row hangs under its line's last column (a command's description).
 */
export function renderNotice(text: string, kind: NoticeKind, colour: boolean, width: number): string[] {
  const style = kind === "error" ? "red" : kind === "warn" ? "yellow" : "cyan";
  const room = Math.max(2, width - 3);
  const rows: string[] = [];
  for (const line of text.split("\n")) {
    const leading = textWidth(/^\s*/.exec(line)![0]);
    const column = textWidth(/^.*\S\s{2,}(?=\S)/.exec(line)?.[0] ?? "");
    const hang = column && column <= room / 2 ? column : leading && leading + 2 <= room / 2 ? leading + 2 : 0;
    rows.push(...wrapRows([line], room, room - hang).map((row, i) => (i ? " ".repeat(hang) + row : row)));
  }
  return rows.map((row, i) => paint(colour, style, `${i ? " " : "*"} ${row}`));
}

/** The line that separates days: `── terça-feira, 24 de novembro de 2026 ──`. */
export function renderDay(date: Date, texts: Texts, colour: boolean, width: number): string {
  const label = date.toLocaleDateString(texts.locale, { dateStyle: "full", timeZone: "UTC" });
  return paint(colour, "dim", truncate(`── ${label} ──`, Math.max(2, width - 1)));
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
    this.#options = { waitMs: 20_000, pollMs: 1000, keepAliveMs: 10_000, callTimeoutMs: 10_000, ...options };
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
        if (needs(t.syntax.create) && await this.create(roomArgument(rest))) {
          this.#view.notice(t.joinHint(sanitize(roomArgument(rest))));
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

function maxId(messages: ChatMessage[]): number | undefined {
  const ids = messages.map((m) => m.id).filter((id): id is number => typeof id === "number");
  return ids.length ? Math.max(...ids) : undefined;
}

// ---------------------------------------------------------------------------
// The terminal UI
// ---------------------------------------------------------------------------

/** What a screen prints: a line (which may hold line breaks), or rows drawn for a width. */
type Printable = string | ((width: number) => string[]);

/** Where lines are read from and written to. */
interface Screen {
  start(): void;
  /** Writes above the line being typed, without disturbing it. */
  print(item: Printable): void;
  /** A prompt of its own (the name question), or undefined for the room's. */
  setPrompt(label?: string): void;
  /** The room the prompt and the title show. */
  setRoom(room: string | null): void;
  /** The server cannot be reached: the prompt says so and lines typed show as pending. */
  setOffline(offline: boolean): void;
  /** A line waits for the server's rate limit: the lines typed show as waiting. */
  setThrottled(waiting: boolean): void;
  /** A message from someone else arrived: unread while away; the bell when it asks for attention. */
  arrived(attention: boolean): void;
  /** The next line typed, or null at the end of input (Ctrl-D, Ctrl-C twice, end of the pipe). */
  readLine(): Promise<string | null>;
  /** The line {@linkcode Screen.readLine} gave is done with: no longer pending. */
  settled(): void;
  close(): void;
}

/** Not a terminal: lines in, plain lines out. */
class PlainScreen implements Screen {
  #lines: ReadableStreamDefaultReader<string> | undefined;

  start(): void {
    this.#lines = readLines(Deno.stdin.readable).getReader();
  }

  print(item: Printable): void {
    writeStdout(`${typeof item === "string" ? item : item(Infinity).join("\n")}\n`);
  }

  setPrompt(): void {}
  setRoom(): void {}
  setOffline(): void {}
  setThrottled(): void {}
  arrived(): void {}
  settled(): void {}

  async readLine(): Promise<string | null> {
    const next = await this.#lines!.read();
    return next.done ? null : next.value;
  }

  close(): void {}
}

/** Lines the terminal keeps to draw the conversation again (Ctrl-L, a resize). */
const TRANSCRIPT_KEPT = 1000;
/** Pending lines shown above the input line, at most. */
const PENDING_SHOWN = 5;
/** After this long a line being sent shows as waiting. */
const SLOW_MS = 300;
/** A lone Escape is the Escape key once nothing follows it for this long. */
const ESCAPE_WAIT_MS = 100;

/** How a {@linkcode TerminalScreen} behaves. */
interface TerminalOptions {
  texts: Texts;
  colour: boolean;
  /** Ring the bell for private messages and mentions. */
  bell: boolean;
}

/**
 * A terminal in raw mode. At the bottom, the lines waiting to go (when the
 * server is away or the rate limit holds them) and the input line, which
 * scrolls sideways and never wraps; arriving lines are written above them,
 * into the terminal's own scrollback, and the bottom is drawn again, intact.
 * Bracketed paste and focus reports are turned on while it runs; the title
 * shows the room and, while the terminal is away, the unread count.
 */
class TerminalScreen implements Screen {
  readonly #editor = new LineEditor();
  readonly #keys = new KeyDecoder();
  readonly #t: Texts;
  readonly #colour: boolean;
  readonly #bell: boolean;
  /** Whether a line may go (false: it stays in the input line, and the hook said why). */
  accept: (line: string) => boolean = () => true;
  /** What Tab completes. */
  completer: (line: string, cursor: number) => Completion | undefined = () => undefined;
  /** The user leaves (Ctrl-C twice, Ctrl-D, the end of input): at once, even with a line still being sent. */
  onEnd: () => void = () => {};
  #label: string | undefined;
  #room: string | null = null;
  #offline = false;
  #throttled = false;
  /** A paste of many lines, waiting for the user to say how to send it. */
  #asking: string | undefined;
  #scroll = 0;
  readonly #queue: string[] = [];
  #current: string | undefined;
  #slow = false;
  #slowTimer: ReturnType<typeof setTimeout> | undefined;
  #escapeTimer: ReturnType<typeof setTimeout> | undefined;
  #waiter: ((line: string | null) => void) | undefined;
  #ended = false;
  #closed = false;
  /** Rows drawn above the input line (the pending lines), to erase before writing. */
  #above = 0;
  readonly #transcript: ((width: number) => string[])[] = [];
  #focused = true;
  #unread = 0;
  #title = "";
  readonly #onResize = () => this.#repaint();

  constructor(options: TerminalOptions) {
    this.#t = options.texts;
    this.#colour = options.colour;
    this.#bell = options.bell;
  }

  /** Nothing typed is waiting or being sent. */
  get idle(): boolean {
    return this.#current === undefined && this.#queue.length === 0;
  }

  start(): void {
    Deno.stdin.setRaw(true);
    try {
      Deno.addSignalListener("SIGWINCH", this.#onResize);
    } catch {
      // No SIGWINCH here (Windows): Ctrl-L draws again.
    }
    // Bracketed paste on, focus reports on, the title saved to give it back at the end.
    writeStdout("\x1b[?2004h\x1b[?1004h\x1b[22;0t");
    this.#updateTitle();
    this.#draw();
    this.#readKeys();
  }

  print(item: Printable): void {
    const render = typeof item === "string" ? () => item.split("\n") : item;
    this.#transcript.push(render);
    if (this.#transcript.length > TRANSCRIPT_KEPT) this.#transcript.shift();
    if (this.#closed) return writeStdout(`${render(this.#size().columns).join("\n")}\n`);
    writeStdout(`${this.#erase()}${render(this.#size().columns).join("\r\n")}\r\n${this.#bottom()}`);
  }

  setPrompt(label?: string): void {
    this.#label = label;
    this.#draw();
  }

  setRoom(room: string | null): void {
    this.#room = room;
    this.#updateTitle();
    this.#draw();
  }

  setOffline(offline: boolean): void {
    this.#offline = offline;
    this.#draw();
  }

  setThrottled(waiting: boolean): void {
    if (this.#throttled === waiting) return;
    this.#throttled = waiting;
    this.#draw();
  }

  arrived(attention: boolean): void {
    if (!this.#focused) {
      this.#unread++;
      this.#updateTitle();
    }
    if (attention && this.#bell) writeStdout("\x07");
  }

  readLine(): Promise<string | null> {
    if (this.#queue.length) return Promise.resolve(this.#take(this.#queue.shift()!));
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiter = resolve);
  }

  settled(): void {
    this.#current = undefined;
    clearTimeout(this.#slowTimer);
    this.#slow = false;
    this.#draw();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#slowTimer);
    clearTimeout(this.#escapeTimer);
    writeStdout(`${this.#erase()}\x1b[?2004l\x1b[?1004l\x1b[23;0t`);
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

  // --- input --------------------------------------------------------------------

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
      clearTimeout(this.#escapeTimer);
      this.#handle(this.#keys.feed(decoder.decode(bytes.subarray(0, read), { stream: true })));
      if (this.#keys.waiting) {
        this.#escapeTimer = setTimeout(() => this.#handle(this.#keys.flush()), ESCAPE_WAIT_MS);
      }
    }
  }

  #handle(keys: Key[]): void {
    if (this.#closed) return;
    for (const key of keys) this.#key(key);
    this.#draw();
  }

  #key(key: Key): void {
    if (key.name === "focus-in" || key.name === "focus-out") {
      this.#focused = key.name === "focus-in";
      if (this.#focused) this.#markRead();
      return;
    }
    // A key typed: the user is here.
    this.#focused = true;
    this.#markRead();
    if (this.#asking !== undefined) return this.#answer(key);
    switch (this.#editor.key(key, (line, cursor) => this.completer(line, cursor))) {
      case "submit":
        return this.#submit();
      case "eof":
      case "quit":
        return this.#end();
      case "confirm-quit":
        return this.print((width) => renderNotice(this.#t.confirmQuit, "warn", this.#colour, width));
      case "redraw":
        return this.#repaint();
      case "ask-paste":
        this.#asking = this.#editor.pasted;
    }
  }

  /** The answer to a paste of many lines: Enter sends one message, `l` line by line, Esc cancels. */
  #answer(key: Key): void {
    const letter = key.name === "char" ? key.text!.toLowerCase() : "";
    const one = key.name === "enter" || letter === "s" || letter === "y";
    const byLine = letter === "l";
    const cancel = ["escape", "ctrl-c", "ctrl-g"].includes(key.name) || letter === "n";
    if (!one && !byLine && !cancel) return;
    const text = this.#asking!;
    this.#asking = undefined;
    if (cancel) return;
    this.#editor.insert(text);
    if (one) return this.#submit();
    const lines = this.#editor.line.split("\n").filter((line) => line.trim());
    if (!this.accept(lines[0] ?? "")) return;
    this.#editor.accept();
    for (const line of lines) this.#deliver(line);
  }

  #submit(): void {
    const line = this.#editor.line;
    if (!this.accept(line)) return;
    this.#editor.accept();
    this.#scroll = 0;
    this.#deliver(line);
  }

  #deliver(line: string): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter(this.#take(line));
    else this.#queue.push(line);
  }

  /** A line handed to the program: pending until settled, shown as waiting if it takes long. */
  #take(line: string): string {
    this.#current = line;
    clearTimeout(this.#slowTimer);
    this.#slow = false;
    this.#slowTimer = setTimeout(() => {
      this.#slow = true;
      this.#draw();
    }, SLOW_MS);
    return line;
  }

  #end(): void {
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
    this.onEnd();
  }

  #markRead(): void {
    if (this.#unread === 0) return;
    this.#unread = 0;
    this.#updateTitle();
  }

  // --- output -------------------------------------------------------------------

  #size(): { columns: number; rows: number } {
    try {
      const { columns, rows } = Deno.consoleSize();
      return { columns: columns || 80, rows: rows || 24 };
    } catch {
      return { columns: 80, rows: 24 };
    }
  }

  /** Back to the start of the bottom block, and everything from there erased. */
  #erase(): string {
    const up = this.#above ? `\x1b[${this.#above}A` : "";
    this.#above = 0;
    return `\r${up}\x1b[J`;
  }

  /** The bottom block: the pending lines, then the input line with the cursor in place. */
  #bottom(): string {
    const { columns } = this.#size();
    const pending = this.#pendingRows(columns);
    this.#above = pending.length;
    const { text, column } = this.#inputRow(columns);
    return `${pending.map((row) => `${row}\r\n`).join("")}${text}\x1b[${column + 1}G`;
  }

  #draw(): void {
    if (!this.#closed) writeStdout(`${this.#erase()}${this.#bottom()}`);
  }

  /** The lines typed and not yet gone, while something holds them: one row each, never wrapping. */
  #pendingRows(columns: number): string[] {
    const lines = this.#current === undefined ? [...this.#queue] : [this.#current, ...this.#queue];
    if (!lines.length || !(this.#offline || this.#throttled || this.#slow)) return [];
    const tag = `[${this.#offline ? this.#t.pendingTag : this.#t.waitingTag}]`;
    const shown = lines.length > PENDING_SHOWN
      ? [...lines.slice(0, PENDING_SHOWN - 1), `… +${lines.length - PENDING_SHOWN + 1}`]
      : lines;
    return shown.map((line) =>
      paint(this.#colour, "yellow", truncate(`${tag} ${sanitize(line.replaceAll("\n", " ↵ "))}`, columns - 1))
    );
  }

  /** The prompt and the visible part of the line, in less than `columns` columns. */
  #inputRow(columns: number): { text: string; column: number } {
    const max = Math.max(1, columns - 1);
    if (this.#asking !== undefined) {
      const lines = this.#asking.split("\n").length;
      // Every answer stays on screen: the short form where the whole question does not fit.
      const whole = this.#t.pasteQuestion(lines);
      const question = truncate(textWidth(whole) <= max ? whole : this.#t.pasteQuestionShort(lines), max);
      return { text: paint(this.#colour, "bold", question), column: textWidth(question) };
    }
    const search = this.#editor.search;
    const status = this.#offline ? this.#t.offline : undefined;
    const prompt = truncate(
      search
        ? this.#t.searchPrompt(search.query, search.found)
        : this.#label ?? promptFor(this.#room, status, columns),
      // The search's prompt holds what is sought: it may take more, leaving ten columns for the line.
      search ? Math.max(Math.floor(columns / 2), max - 10) : Math.floor(columns / 2),
    );
    const width = textWidth(prompt);
    const fitted = fitInput(this.#editor.chars, this.#editor.cursor, max - width, this.#scroll);
    this.#scroll = fitted.scroll;
    return { text: `${paint(this.#colour, "bold", prompt)}${fitted.text}`, column: width + fitted.column };
  }

  /** The screen cleared and drawn again: the latest of the conversation that fits, then the bottom. */
  #repaint(): void {
    if (this.#closed) return;
    const { columns, rows } = this.#size();
    const room = Math.max(0, rows - 1 - Math.min(PENDING_SHOWN, this.#pendingRows(columns).length));
    const lines: string[] = [];
    for (let i = this.#transcript.length - 1; i >= 0 && lines.length < room; i--) {
      lines.unshift(...this.#transcript[i]!(columns));
    }
    const visible = lines.slice(Math.max(0, lines.length - room));
    this.#above = 0;
    writeStdout(`\x1b[H\x1b[2J${visible.map((line) => `${line}\r\n`).join("")}${this.#bottom()}`);
  }

  #updateTitle(): void {
    const room = this.#room === null ? "" : `[${this.#room}] `;
    const title = `${this.#unread ? `(${this.#unread}) ` : ""}${room}rpc-chat`;
    if (title === this.#title) return;
    this.#title = title;
    writeStdout(`\x1b]2;${title}\x07`);
  }
}

/** How a {@linkcode ChatUi} shows things. */
interface UiOptions {
  texts: Texts;
  /** Colours (on a terminal, never with NO_COLOR). */
  colour: boolean;
  /** A terminal: wrapped rows, days, attention; else plain lines. */
  interactive: boolean;
  /** The user's name, once registered (for mentions). */
  me: () => string | undefined;
}

/** What the session shows, written to a screen: plain lines, or a terminal's rows. */
class ChatUi implements ChatView {
  readonly #screen: Screen;
  readonly #options: UiOptions;
  /** The day of the last message shown: a separator when the next is of another. */
  #day = dayOf(localWallClock(new Date()));

  constructor(screen: Screen, options: UiOptions) {
    this.#screen = screen;
    this.#options = options;
  }

  message(message: ChatMessage, history = false): void {
    const { colour, interactive, texts } = this.#options;
    if (!interactive) return this.#screen.print(formatMessage(message, colour));
    const date = dateOf(message.timestamp) ?? localWallClock(new Date());
    if (dayOf(date) !== this.#day) {
      this.#day = dayOf(date);
      this.#screen.print((width) => [renderDay(date, texts, colour, width)]);
    }
    const me = this.#options.me();
    const own = message.origem === me;
    const attention = !own && message.origem !== SERVER &&
      (isPrivate(message) || mentions(message.conteudo, me));
    this.#screen.print((width) => renderMessage(message, { width, colour, attention, texts }));
    if (!history && !own) this.#screen.arrived(attention);
  }

  notice(text: string, kind: NoticeKind = "info"): void {
    const { colour, interactive } = this.#options;
    if (interactive) return this.#screen.print((width) => renderNotice(text, kind, colour, width));
    this.#screen.print(text.split("\n").map((line, i) => `${i ? " " : "*"} ${line}`).join("\n"));
  }

  roomChanged(room: string | null): void {
    this.#screen.setRoom(room === null ? null : sanitize(room));
  }

  connection(online: boolean): void {
    this.#screen.setOffline(!online);
  }

  throttled(waiting: boolean): void {
    this.#screen.setThrottled(waiting);
  }

  help(): void {
    this.notice(this.#options.texts.help);
    if (this.#options.interactive) this.notice(this.#options.texts.keys);
  }
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

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
  // The language first: even a bad flag is refused in it.
  useLanguage(detectLang(langArgument(args)));
  const flags = clientFlags(program, args, () => printUsage(args));
  const lang = detectLang(flags.lang);
  useLanguage(lang);
  const t = TEXTS[lang];
  const binders = flags.binders ?? parseHostPortList(defaultBinder(), 5000);
  const { retryMs, attempts } = flags;
  // Asked, never requested: without --allow-net one line says so, not a prompt nor 20 s of retries.
  const self = new URL(import.meta.url);
  requirePermissions(
    program,
    binders.map(({ host, port }) => netNeeded(host, port)),
    `deno run --allow-net ${self.protocol === "file:" ? program : self.href}`,
  );

  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const colour = interactive && !Deno.noColor;
  const terminal = interactive ? new TerminalScreen({ texts: t, colour, bell: flags.bell }) : undefined;
  const screen: Screen = terminal ?? new PlainScreen();
  const ui = new ChatUi(screen, {
    texts: t,
    colour,
    interactive,
    me: (): string | undefined => session.name,
  });
  const session = new ChatSession({ binders, view: ui, texts: t, retryMs, attempts });
  if (terminal) {
    // A line for the room typed outside any room stays in the input line, with a word on what to do.
    terminal.accept = (line) => {
      if (parseInput(line).kind !== "text" || session.name === undefined || session.room !== null) {
        return true;
      }
      if (!terminal.idle) return true;
      ui.notice(t.notInRoomKept, "error");
      return false;
    };
    const commands = [...t.commands, ...TEXTS[lang === "pt" ? "en" : "pt"].commands];
    terminal.completer = (line, cursor) => {
      if (session.name === undefined) return undefined;
      const found = complete(line, cursor, { commands, names: session.people, rooms: session.rooms });
      // For the next Tab: rooms come and go.
      if (found?.kind === "room") session.refreshRooms().catch(() => {});
      return found;
    };
  }

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
  // Leaving does not wait for a line stuck on a server that is away.
  if (terminal) terminal.onEnd = () => void stop();

  screen.start();
  ui.notice(t.looking(binders.map(({ host, port }) => `${host}:${port}`)));
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
      screen.settled();
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
  screen.setPrompt(undefined);
  if (flags.room !== undefined) {
    try {
      await session.join(flags.room, { create: true });
    } catch (error) {
      if (!(error instanceof Fault)) return await stopped();
      ui.notice(t.fault(sanitize(error.message)), "error");
    }
  }
  ui.notice(t.help);

  for (;;) {
    const line = await screen.readLine();
    if (line === null) break;
    try {
      if (await session.handle(line) === "quit") break;
    } catch (error) {
      // A bug of ours, not the user's: say it in one line and carry on.
      ui.notice(t.unexpected(sanitize(String((error as Error)?.message ?? error))), "error");
    } finally {
      screen.settled();
    }
  }
  return await stopped();
}

if (import.meta.main) Deno.exit(await main());
