/**
 * The servers' texts, in Portuguese and English: every refusal, success
 * message and notice the chat server (and the binder) sends to people.
 *
 * The chat's core is language-neutral: it says a {@linkcode Text} (a key of
 * this catalogue and its arguments), and the method tables render it in the
 * caller's language ({@linkcode Call.language}, from `Accept-Language`) at
 * the wire's edge. A notice is stored with its Text beside its Portuguese
 * `conteudo`, so each reader gets it in their own language.
 *
 * Why a module of its own rather than a table inside server.ts: the binder
 * renders its own refusals with it too, the tests read the Portuguese
 * catalogue to know which words must never reach an English reader, and
 * server.ts keeps to behaviour. The client's own texts stay in cliente.ts:
 * they are the client's, not the servers'.
 *
 * @module
 */

import { type Lang, NAME_PUNCTUATION } from "../chat/protocol.ts";
import { NOTICES } from "./notices.ts";

/** A name's kind in the texts about names: a user's or a room's. */
export type NameKind = "user" | "room";

const KIND_PT: Record<NameKind, string> = { user: "usuário", room: "sala" };

/**
 * The Portuguese texts: what the original programs said, word for word (the
 * original clients see these); their keys and arguments are every table's.
 */
export const PORTUGUESE_TEXTS = {
  // Names.
  nameLength: (kind: NameKind, max: number) =>
    `Nome de ${KIND_PT[kind]} inválido: use de 1 a ${max} caracteres.`,
  nameControl: (kind: NameKind) => `Nome de ${KIND_PT[kind]} inválido: não use caracteres de controle.`,
  nameReserved: (name: string) => `O nome '${name}' é reservado.`,
  nameMisleading: () => "Nome de usuário inválido: não use ':', '<', '>', colchetes nem setas.",
  nameInvisible: (kind: NameKind) =>
    `Nome de ${KIND_PT[kind]} inválido: não use caracteres invisíveis (de largura zero, de preenchimento).`,
  nameMarks: (kind: NameKind) =>
    `Nome de ${KIND_PT[kind]} inválido: no máximo 2 acentos sobre cada letra, e nenhum sozinho.`,
  nameCharacters: (kind: NameKind) =>
    `Nome de ${KIND_PT[kind]} inválido: use só letras, números, espaços simples e ${NAME_PUNCTUATION}`,
  nameLookalike: (name: string) => `O nome '${name}' imita um nome reservado (SERVER, todos). Escolha outro.`,
  usersFull: (max: number) => `O servidor está cheio: no máximo ${max} usuários. Tente mais tarde.`,
  registrationsLimited: (rate: number) =>
    `Devagar: no máximo ${rate} registros por segundo de um mesmo endereço.`,
  nameTaken: (name: string) => `O nome '${name}' já está em uso. Escolha outro.`,
  nameTakenSilent: (name: string, seconds: number) =>
    `O nome '${name}' já está em uso, mas quem o tem não dá sinal de vida: se era você e o seu cliente caiu, ` +
    `ele fica livre em até ${seconds} s.`,
  nameResembles: (name: string, existing: string) =>
    `O nome '${name}' se confunde com '${existing}', que já está em uso. Escolha outro.`,
  nameMixesScripts: (kind: NameKind) =>
    `Nome de ${KIND_PT[kind]} inválido: não misture alfabetos (latino com cirílico ou grego, por exemplo).`,
  registered: (name: string) => `Usuário '${name}' registrado com sucesso.`,
  // Sessions.
  notRegistered: (name: string) => `Usuário '${name}' não está registrado.`,
  noSession: () => "Sessão inválida: registre-se com registrar_usuario e envie o cookie de sessão.",
  otherSession: (name: string) => `Sessão inválida: você não é '${name}'.`,
  sessionKept: () => "Sessão mantida.",
  goodbye: (name: string) => `Até logo, ${name}.`,
  // Rooms.
  roomExists: (room: string) => `A sala '${room}' já existe.`,
  roomResembles: (room: string, existing: string) =>
    `A sala '${room}' se confunde com '${existing}', que já existe: entre em '${existing}'.`,
  roomsFull: (max: number) => `Limite de ${max} salas atingido: exclua uma ou espere as vazias expirarem.`,
  creatorRoomsFull: (max: number) =>
    `Você já criou ${max} salas, o máximo por usuário: exclua uma antes de criar outra.`,
  roomCreated: (room: string) => `Sala '${room}' criada com sucesso.`,
  roomMissing: (room: string) => `A sala '${room}' não existe.`,
  roomMissingToJoin: (room: string) => `A sala '${room}' não existe. Crie-a antes de entrar.`,
  notCreator: (room: string) => `Só quem criou a sala '${room}' pode excluí-la.`,
  roomDeleted: (room: string) => `Sala '${room}' excluída.`,
  inNoRoom: () => "Você não está em nenhuma sala.",
  notInRoom: (room: string) => `Você não está na sala '${room}'.`,
  leftRoom: (room: string) => `Você saiu da sala '${room}'.`,
  // Messages.
  textEmpty: () => "Mensagem vazia.",
  textTooLong: (max: number) => `Mensagem longa demais: no máximo ${max} caracteres.`,
  textInvalid: () => "Mensagem com caracteres de controle não é aceita.",
  recipientAbsent: (user: string, room: string) => `O usuário '${user}' não está na sala '${room}'.`,
  recipientOffline: (user: string) => `O usuário '${user}' não está online.`,
  recipientInNoRoom: (user: string) => `O usuário '${user}' não está em nenhuma sala.`,
  rateLimited: (rate: number) => `Devagar: no máximo ${rate} mensagens por segundo.`,
  actionsLimited: (rate: number) =>
    `Devagar: no máximo ${rate} mudanças por segundo (entradas e saídas de salas, salas criadas ou excluídas).`,
  sent: () => "Mensagem enviada.",
  // Notices from SERVER, stored with the room's messages.
  ...NOTICES.pt,
  // The binder.
  serviceNameInvalid: (max: number) =>
    `Nome inválido: use de 1 a ${max} caracteres, sem caracteres de controle.`,
  serviceHostInvalid: (host: string) => `Endereço inválido: '${host}'.`,
  servicePortInvalid: (port: number) => `Porta inválida: ${port} (use de 1 a 65535).`,
  serviceRenewed: (name: string, at: string) =>
    `Procedimento '${name}' já estava registrado em ${at}; registro renovado.`,
  serviceRegistered: (name: string, at: string) => `Procedimento '${name}' registrado em ${at}.`,
  serviceNotFound: (name: string) => `Procedimento '${name}' não encontrado.`,
  serviceNotAt: (name: string, at: string) => `Procedimento '${name}' não está registrado em ${at}.`,
  serviceRemoved: (name: string, at: string) => `Procedimento '${name}' em ${at} removido.`,
  registrationRefused: (address: string) =>
    `Registro recusado: ${address} não pode registrar nem remover serviços neste binder. Quem o inicia ` +
    `pode liberar uma rede com --allow-register (ex.: --allow-register 192.168.0.0/24).`,
  registrationKeyMissing: () =>
    "Registro recusado: este binder pede a chave de registro (--register-key no servidor, enviada no " +
    "cabeçalho X-Chave-Registro); nenhuma foi enviada.",
  registrationKeyWrong: () =>
    "Registro recusado: este binder pede a chave de registro (--register-key no servidor, enviada no " +
    "cabeçalho X-Chave-Registro); a chave enviada está errada.",
  registrationOthersName: (name: string, address: string) =>
    `Registro recusado: '${name}' foi registrado por outro endereço; ${address} só pode somar-se a ele ` +
    `se estiver numa rede de --allow-register.`,
  registrationPerName: (name: string, count: number) =>
    `Registro recusado: '${name}' já tem ${count} endereços registrados (limite --max-per-name).`,
  registrationPerSource: (address: string, count: number) =>
    `Registro recusado: ${address} já registrou ${count} endereços (limite --max-per-source).`,
  registrationFull: (count: number) =>
    `Registro recusado: o binder já tem ${count} endereços registrados (limite --max-endpoints).`,
  registrationNotYours: (name: string, at: string) =>
    `Registro recusado: '${name}' em ${at} foi registrado por outro endereço; só ele (ou quem tem o token ` +
    `que recebeu) pode renová-lo ou removê-lo.`,
};

/** Every text in one language: by key, a function of the text's arguments. */
export type Catalogue = {
  readonly [K in keyof typeof PORTUGUESE_TEXTS]: (...args: Parameters<typeof PORTUGUESE_TEXTS[K]>) => string;
};

const EN: Catalogue = {
  nameLength: (kind, max) => `Invalid ${kind} name: use 1 to ${max} characters.`,
  nameControl: (kind) => `Invalid ${kind} name: no control characters.`,
  nameReserved: (name) => `The name '${name}' is reserved.`,
  nameMisleading: () => "Invalid user name: no ':', '<', '>', brackets or arrows.",
  nameInvisible: (kind) => `Invalid ${kind} name: no invisible characters (zero-width, fillers).`,
  nameMarks: (kind) => `Invalid ${kind} name: at most 2 accents on each letter, and none on its own.`,
  nameCharacters: (kind) =>
    `Invalid ${kind} name: use only letters, digits, single spaces and ${NAME_PUNCTUATION}`,
  nameLookalike: (name) => `The name '${name}' imitates a reserved name (SERVER, todos). Choose another.`,
  usersFull: (max) => `The server is full: at most ${max} users. Try again later.`,
  registrationsLimited: (rate) => `Slow down: at most ${rate} registrations per second from one address.`,
  nameTaken: (name) => `The name '${name}' is already in use. Choose another.`,
  nameTakenSilent: (name, seconds) =>
    `The name '${name}' is in use, but its holder shows no sign of life: if it was you and your client ` +
    `crashed, it frees within ${seconds} s.`,
  nameResembles: (name, existing) =>
    `The name '${name}' looks like '${existing}', which is already in use. Choose another.`,
  nameMixesScripts: (kind) => `Invalid ${kind} name: do not mix scripts (Latin with Cyrillic or Greek, say).`,
  registered: (name) => `User '${name}' registered.`,
  notRegistered: (name) => `User '${name}' is not registered.`,
  noSession: () => "Invalid session: register with registrar_usuario and send the session cookie.",
  otherSession: (name) => `Invalid session: you are not '${name}'.`,
  sessionKept: () => "Session kept.",
  goodbye: (name) => `Goodbye, ${name}.`,
  roomExists: (room) => `Room '${room}' already exists.`,
  roomResembles: (room, existing) =>
    `Room '${room}' looks like '${existing}', which exists: join '${existing}'.`,
  roomsFull: (max) => `The limit of ${max} rooms is reached: delete one or wait for empty ones to expire.`,
  creatorRoomsFull: (max) =>
    `You have created ${max} rooms, the most per user: delete one before creating another.`,
  roomCreated: (room) => `Room '${room}' created.`,
  roomMissing: (room) => `Room '${room}' does not exist.`,
  roomMissingToJoin: (room) => `Room '${room}' does not exist. Create it before joining.`,
  notCreator: (room) => `Only the creator of room '${room}' can delete it.`,
  roomDeleted: (room) => `Room '${room}' deleted.`,
  inNoRoom: () => "You are not in any room.",
  notInRoom: (room) => `You are not in room '${room}'.`,
  leftRoom: (room) => `You left room '${room}'.`,
  textEmpty: () => "Empty message.",
  textTooLong: (max) => `Message too long: at most ${max} characters.`,
  textInvalid: () => "Messages with control characters are not accepted.",
  recipientAbsent: (user, room) => `User '${user}' is not in room '${room}'.`,
  recipientOffline: (user) => `User '${user}' is not online.`,
  recipientInNoRoom: (user) => `User '${user}' is not in any room.`,
  rateLimited: (rate) => `Slow down: at most ${rate} messages per second.`,
  actionsLimited: (rate) =>
    `Slow down: at most ${rate} changes per second (joining or leaving rooms, creating or deleting them).`,
  sent: () => "Message sent.",
  ...NOTICES.en,
  serviceNameInvalid: (max) => `Invalid name: use 1 to ${max} characters, no control characters.`,
  serviceHostInvalid: (host) => `Invalid address: '${host}'.`,
  servicePortInvalid: (port) => `Invalid port: ${port} (use 1 to 65535).`,
  serviceRenewed: (name, at) => `Service '${name}' was already registered at ${at}; registration renewed.`,
  serviceRegistered: (name, at) => `Service '${name}' registered at ${at}.`,
  serviceNotFound: (name) => `Service '${name}' not found.`,
  serviceNotAt: (name, at) => `Service '${name}' is not registered at ${at}.`,
  serviceRemoved: (name, at) => `Service '${name}' at ${at} removed.`,
  registrationRefused: (address) =>
    `Registration refused: ${address} may not register or remove services at this binder. Whoever starts ` +
    `it can allow a network with --allow-register (e.g. --allow-register 192.168.0.0/24).`,
  registrationKeyMissing: () =>
    "Registration refused: this binder asks for the registration key (--register-key on the server, sent in " +
    "the X-Chave-Registro header); none was sent.",
  registrationKeyWrong: () =>
    "Registration refused: this binder asks for the registration key (--register-key on the server, sent in " +
    "the X-Chave-Registro header); the key sent is wrong.",
  registrationOthersName: (name, address) =>
    `Registration refused: '${name}' was registered by another address; ${address} may join it only from ` +
    `a network of --allow-register.`,
  registrationPerName: (name, count) =>
    `Registration refused: '${name}' already has ${count} addresses registered (limit --max-per-name).`,
  registrationPerSource: (address, count) =>
    `Registration refused: ${address} already registered ${count} addresses (limit --max-per-source).`,
  registrationFull: (count) =>
    `Registration refused: the binder already has ${count} addresses registered (limit --max-endpoints).`,
  registrationNotYours: (name, at) =>
    `Registration refused: '${name}' at ${at} was registered by another address; only it (or whoever holds ` +
    `the token it received) may renew or remove it.`,
};

const CATALOGUES: Readonly<Record<Lang, Catalogue>> = { pt: PORTUGUESE_TEXTS, en: EN };

/** The key of a text in the catalogue. */
export type TextKey = keyof Catalogue;

/** A text before words: its key and its arguments. Plain data, stored as JSON with a notice. */
export type Text = {
  readonly [K in TextKey]: { readonly key: K; readonly args: Parameters<Catalogue[K]> };
}[TextKey];

/** A text to render later, in whatever language its reader asks for. */
export function text<K extends TextKey>(key: K, ...args: Parameters<Catalogue[K]>): Text {
  return { key, args } as unknown as Text;
}

/** A text in a language. */
export function render(said: Text, lang: Lang): string {
  return (CATALOGUES[lang][said.key] as (...args: unknown[]) => string)(...said.args);
}

/** Every text of a language by key (the tests list from them the words an English reader must never see). */
export function everyText(lang: Lang): Readonly<Record<TextKey, (...args: never[]) => string>> {
  return CATALOGUES[lang];
}

/** A Text as JSON, stored beside a notice's Portuguese text. */
export function storeText(said: Text): string {
  return JSON.stringify([said.key, ...said.args]);
}

/** A Text stored by {@linkcode storeText}; undefined for anything else (no key of ours, bad arguments). */
export function loadText(stored: string | null | undefined): Text | undefined {
  if (!stored) return undefined;
  try {
    const [key, ...args] = JSON.parse(stored);
    const known = typeof key === "string" && Object.hasOwn(PORTUGUESE_TEXTS, key) &&
      args.every((arg: unknown) => typeof arg === "string" || typeof arg === "number");
    return known && PORTUGUESE_TEXTS[key as TextKey].length === args.length
      ? { key, args } as unknown as Text
      : undefined;
  } catch {
    return undefined;
  }
}

/** A count with its noun, singular for one: `1 sala`, `2 salas`, `0 salas` (Portuguese and English alike). */
export function counted(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
