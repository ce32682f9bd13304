/**
 * The terminal client's texts, in Portuguese and English: every line the client itself
 * shows (what the servers say comes in their own words).
 *
 * @module
 */

import { Lang } from "../chat/protocol.ts";
import { NETWORK_ERRORS_PT } from "./network.ts";

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

/** The client in English. */
export const EN: Texts = {
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
