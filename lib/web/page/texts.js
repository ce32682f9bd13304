// @ts-check
/**
 * The page's texts in Portuguese (the default) and English. The server picks
 * the page's language from `Accept-Language` and writes it in `<html lang>`;
 * the page reads it back with {@linkcode languageOf}, so its own words and
 * the server's (refusals, notices) are in one language.
 *
 * @module
 */

export const PT = {
  title: "rpc-chat",
  name: "Nome",
  enter: "Entrar no chat",
  nameHint: "Escolha um nome para o chat (letras, números, espaços).",
  message: "Mensagem",
  send: "Enviar",
  messages: "Mensagens",
  rooms: "Salas",
  members: "Na sala",
  newRoom: "Nova sala",
  create: "Criar",
  leave: "Sair da sala",
  remove: "Excluir",
  quit: "Sair do chat",
  /** @param {string} room */
  removeRoom: (room) => `Excluir a sala ${room}`,
  /** @param {string} room */
  joinRoom: (room) => `Entrar na sala ${room}`,
  /** @param {string} user */
  privateTo: (user) => `Mensagem privada para ${user}`,
  pendingTitle: "À espera do servidor",
  pending: "pendente",
  privateTag: "privada",
  noRoom: "nenhuma sala",
  /** @param {string} room */
  inRoom: (room) => `Sala ${room}`,
  messageHint: "Escreva e tecle Enter. /ajuda mostra os comandos; clique num nome para uma privada.",
  connecting: "Conectando...",
  /** @param {string} name @param {string} host */
  connected: (name, host) => `Conectado como ${name} em ${host}.`,
  offline: "Sem conexão com o servidor: tentando de novo...",
  /** @param {string} name */
  welcome: (name) =>
    `Olá, ${name}! Entre numa sala (/entrar SALA ou clique numa sala). /ajuda mostra os comandos.`,
  /** @param {string} room @param {string[]} users */
  joined: (room, users) => `Você está na sala ${room}. Presentes: ${users.join(", ")}.`,
  /** @param {string} room */
  left: (room) => `Você saiu da sala ${room}.`,
  /** @param {string} room @param {string} message */
  lostRoom: (room, message) => `Você não está mais na sala ${room}: ${message}`,
  notInRoom: "Você não está em nenhuma sala. Use /entrar SALA (ou clique numa sala).",
  /** @param {string[]} rooms */
  roomList: (rooms) => `Salas (${rooms.length}): ${rooms.join(", ")}`,
  noRooms: "Nenhuma sala ainda. Crie uma com /criar SALA.",
  /** @param {string} room @param {string[]} users */
  userList: (room, users) => `Na sala ${room} (${users.length}): ${users.join(", ")}`,
  /** @param {string} room */
  emptyRoom: (room) => `A sala ${room} está vazia.`,
  /** @param {string} command */
  unknownCommand: (command) => `Comando desconhecido: ${command}. Digite /ajuda para ver os comandos.`,
  /** @param {string} syntax */
  usageOf: (syntax) => `Uso: ${syntax}`,
  /** @param {string} reason */
  connectionLost: (reason) => `Conexão com o servidor perdida (${reason}). Tentando de novo...`,
  /** @param {string} reason */
  sessionLost: (reason) => `O servidor encerrou a sessão (${reason}). Registrando de novo...`,
  /** @param {string} name @param {string | null} room */
  reconnected: (name, room) => `Reconectado como ${name}${room ? `, de volta à sala ${room}` : ""}.`,
  /** @param {string} name @param {string} message */
  nameStillTaken: (name, message) => `O nome ${name} ainda está em uso no servidor (${message}).`,
  /** @param {string} room @param {string} message */
  rejoinFailed: (room, message) => `Não foi possível voltar à sala ${room}: ${message}`,
  elsewhere: "Este servidor não responde: procurando outro pelo binder...",
  /** @param {string} message */
  fault: (message) => `Erro do servidor: ${message}`,
  unreachable: "o servidor não responde",
  bye: "Você saiu do chat. Até logo!",
  slow: "O servidor pediu calma: as mensagens saem em instantes.",
  syntax: {
    create: "/criar SALA",
    join: "/entrar SALA",
    msg: "/msg NOME TEXTO",
    delete: "/excluir SALA",
  },
  help: [
    "Comandos:",
    "/criar SALA — cria uma sala",
    "/entrar SALA — entra na sala (saindo da atual); cria a sala se ela não existir",
    "/sair — sai da sala atual",
    "/salas — lista as salas",
    "/usuarios [SALA] — quem está na sala",
    '/msg NOME TEXTO — mensagem privada ("nome com espaço" entre aspas); ou clique no nome',
    "/excluir SALA — exclui uma sala que você criou",
    "/ajuda — esta ajuda; /fim — sai do chat",
    "Qualquer outra linha vai para a sala atual (// no início envia uma linha que começa com /).",
    "Também em inglês: /create /join /leave /rooms /users /msg /delete /help /quit",
  ],
};

/** Every text the page shows, in one language. */
/** @typedef {typeof PT} Texts */

/** @type {Texts} */
export const EN = {
  title: "rpc-chat",
  name: "Name",
  enter: "Join the chat",
  nameHint: "Choose a name for the chat (letters, digits, spaces).",
  message: "Message",
  send: "Send",
  messages: "Messages",
  rooms: "Rooms",
  members: "In the room",
  newRoom: "New room",
  create: "Create",
  leave: "Leave the room",
  remove: "Delete",
  quit: "Leave the chat",
  removeRoom: (room) => `Delete the room ${room}`,
  joinRoom: (room) => `Join the room ${room}`,
  privateTo: (user) => `Private message to ${user}`,
  pendingTitle: "Waiting for the server",
  pending: "pending",
  privateTag: "private",
  noRoom: "no room",
  inRoom: (room) => `Room ${room}`,
  messageHint: "Type and press Enter. /help lists the commands; click a name for a private message.",
  connecting: "Connecting...",
  connected: (name, host) => `Connected as ${name} at ${host}.`,
  offline: "No connection to the server: trying again...",
  welcome: (name) => `Hello, ${name}! Join a room (/join ROOM or click a room). /help lists the commands.`,
  joined: (room, users) => `You are in the room ${room}. Here: ${users.join(", ")}.`,
  left: (room) => `You left the room ${room}.`,
  lostRoom: (room, message) => `You are no longer in the room ${room}: ${message}`,
  notInRoom: "You are in no room. Use /join ROOM (or click a room).",
  roomList: (rooms) => `Rooms (${rooms.length}): ${rooms.join(", ")}`,
  noRooms: "No rooms yet. Create one with /create ROOM.",
  userList: (room, users) => `In the room ${room} (${users.length}): ${users.join(", ")}`,
  emptyRoom: (room) => `The room ${room} is empty.`,
  unknownCommand: (command) => `Unknown command: ${command}. Type /help for the commands.`,
  usageOf: (syntax) => `Usage: ${syntax}`,
  connectionLost: (reason) => `Lost the connection to the server (${reason}). Trying again...`,
  sessionLost: (reason) => `The server ended the session (${reason}). Registering again...`,
  reconnected: (name, room) => `Reconnected as ${name}${room ? `, back in the room ${room}` : ""}.`,
  nameStillTaken: (name, message) => `The name ${name} is still taken on the server (${message}).`,
  rejoinFailed: (room, message) => `Could not go back to the room ${room}: ${message}`,
  elsewhere: "This server does not answer: looking for another through the binder...",
  fault: (message) => `Server error: ${message}`,
  unreachable: "the server does not answer",
  bye: "You left the chat. Goodbye!",
  slow: "The server asked to slow down: the messages go out in a moment.",
  syntax: {
    create: "/create ROOM",
    join: "/join ROOM",
    msg: "/msg NAME TEXT",
    delete: "/delete ROOM",
  },
  help: [
    "Commands:",
    "/create ROOM — creates a room",
    "/join ROOM — joins the room (leaving the current one); creates it if it does not exist",
    "/leave — leaves the current room",
    "/rooms — lists the rooms",
    "/users [ROOM] — who is in the room",
    '/msg NAME TEXT — private message ("name with space" in quotes); or click the name',
    "/delete ROOM — deletes a room you created",
    "/help — this help; /quit — leaves the chat",
    "Any other line goes to the current room (// at the start sends a line that starts with /).",
    "In Portuguese too: /criar /entrar /sair /salas /usuarios /msg /excluir /ajuda /fim",
  ],
};

/** The languages of the page: those the servers speak. */
/** @typedef {"pt" | "en"} Lang */

/**
 * The page's language from a language tag (`<html lang>`): English for `en`, else Portuguese.
 * @param {string | null | undefined} tag
 * @returns {Lang}
 */
export function languageOf(tag) {
  return tag?.toLowerCase().split("-", 1)[0] === "en" ? "en" : "pt";
}

/** @type {Record<Lang, Texts>} */
export const TEXTS = { pt: PT, en: EN };
