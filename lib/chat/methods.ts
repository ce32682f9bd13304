/**
 * The ChatService method table: the original methods and our extensions,
 * over any {@linkcode Chat} engine. Here the chat's outcomes become wire
 * results in the caller's language: texts are rendered, messages become
 * {@linkcode ChatMessage} structs, refusals carry their reason when the caller
 * asked for reasons.
 *
 * @module
 */

import type { Chat, Delivery, Maybe, Message } from "./rules.ts";
import { encodeOnce, localWallClock } from "../wire/codec.ts";
import { type ChatMessage, forCaller, type Lang, type Outcome, type Result } from "./protocol.ts";
import { type Call, type MethodTable, rpc } from "../rpc/dispatcher.ts";
import { render, type Text } from "../text/catalogue.ts";
import { LogBudget, type Logger, shown } from "../program/log.ts";

// ---------------------------------------------------------------------------
// RPC methods
// ---------------------------------------------------------------------------

/**
 * Each message's wire struct, built and encoded once however many members
 * receive it: once per language for a notice, once for any other message
 * (it reads the same in every language, so it uses the Portuguese form).
 */
const wireForms: Readonly<Record<Lang, WeakMap<Message, Readonly<ChatMessage>>>> = {
  pt: new WeakMap(),
  en: new WeakMap(),
};

/**
 * A stored message as the wire carries it, in the reader's language: the
 * original struct plus `id`, frozen and encoded once. A notice reads in the
 * reader's language; in Portuguese, exactly as stored.
 */
function toWire(message: Message, language: Lang): Readonly<ChatMessage> {
  const lang = message.notice ? language : "pt";
  let wire = wireForms[lang].get(message);
  if (!wire) {
    wire = encodeOnce<ChatMessage>({
      id: message.id,
      tipo: message.tipo,
      origem: message.origem,
      destino: message.destino,
      conteudo: message.notice && lang !== "pt" ? render(message.notice, lang) : message.conteudo,
      // The server's wall clock, as the original server writes `datetime.now()`.
      timestamp: localWallClock(message.timestamp),
    });
    wireForms[lang].set(message, wire);
  }
  return wire;
}

/** A payload holding messages, with their wire structs (in the reader's language) in their place. */
function withWireMessages<T extends { readonly mensagens: readonly Message[] }>(
  payload: T,
  language: Lang,
): Omit<T, "mensagens"> & { mensagens: Readonly<ChatMessage>[] } {
  return { ...payload, mensagens: payload.mensagens.map((message) => toWire(message, language)) };
}

/**
 * The results of deliveries every reader gets alike (frozen by the chat), each made and encoded once per
 * language, while the chat holds the delivery (until the room's next message).
 */
const sharedResults: Readonly<Record<Lang, WeakMap<Delivery, Outcome<WireDelivery>>>> = {
  pt: new WeakMap(),
  en: new WeakMap(),
};

type WireDelivery = Omit<Delivery, "mensagens"> & { mensagens: Readonly<ChatMessage>[] };

/** A delivery as the wire carries it, in the reader's language: once for all its readers when it is shared. */
function deliveryResult(delivery: Delivery, language: Lang): Outcome<WireDelivery> {
  if (!Object.isFrozen(delivery)) return [true, withWireMessages(delivery, language)];
  let result = sharedResults[language].get(delivery);
  if (result === undefined) {
    const wire = withWireMessages(delivery, language);
    encodeOnce(wire.mensagens);
    result = encodeOnce([true, encodeOnce(wire)]) as Outcome<WireDelivery>;
    sharedResults[language].set(delivery, result);
  }
  return result;
}

/** A value mapped now, or a promise of it mapped when it settles (no extra turn for a value at hand). */
function mapMaybe<T, U>(value: Maybe<T>, map: (value: T) => U): Maybe<U> {
  return value instanceof Promise ? value.then(map) : map(value);
}

/** An outcome with its payload mapped; a refusal as it is. */
function mapOutcome<T, U>(outcome: Outcome<T>, map: (payload: T) => U): Outcome<U> {
  return outcome[0] ? [true, map(outcome[1])] : outcome;
}

/**
 * The ChatService method table: the original methods and our extensions.
 * Here the chat's outcomes become wire results in the caller's language
 * ({@linkcode Call.language}): texts are rendered, messages become
 * {@linkcode ChatMessage} structs, and refusals lose their reason unless the
 * caller asked for reasons ({@linkcode Call.wantsReasons}).
 */
export function chatMethods<U>(chat: Chat<U>, log?: Logger): MethodTable {
  /** Refusals in the operator's log, with their reason and the caller's address (at most 20 in 10 s). */
  const refusals = log && new LogBudget(log, "recusas");
  /** An outcome as the caller gets it: a refusal in its language, with its reason if it asked. */
  const answer = <T>(call: Call, outcome: Outcome<T>): Result<T> => {
    if (outcome[0]) return outcome;
    refusals?.info(() =>
      `Recusado (${outcome[2]}) a ${call.remoteAddress}: ${shown(render(outcome[1], "pt"))}`
    );
    return forCaller([false, render(outcome[1], call.language), outcome[2]], call.wantsReasons);
  };
  /** An outcome whose payload is a text, too, in the caller's language. */
  const say = (call: Call, outcome: Outcome<Text>): Result<string> =>
    answer(call, mapOutcome(outcome, (said) => render(said, call.language)));
  /** Runs `action` as the named user if the caller may act as them; `reply` makes the answer. */
  const asUser = <T, R>(
    call: Call,
    name: string,
    action: (user: U) => Maybe<Outcome<T>>,
    reply: (call: Call, outcome: Outcome<T>) => Result<R>,
  ): Result<R> | Promise<Result<R>> => {
    const user = chat.authorize(call.session, name);
    if (Array.isArray(user)) return reply(call, user);
    return mapMaybe(action(user as U), (outcome) => reply(call, outcome));
  };
  return {
    registrar_usuario: rpc(
      "Registra um nome único e abre a sessão (cookie 'sessao'): [true, msg] ou [false, msg].",
      [["nome", "string"]],
      (call, nome) => {
        const token = crypto.randomUUID();
        return mapMaybe(chat.register(nome, token, call.remoteAddress, call.keepsSession), (outcome) => {
          if (outcome[0]) call.setSession(token);
          return say(call, outcome);
        });
      },
    ),
    criar_sala: rpc(
      "Cria uma sala: [true, msg] ou [false, msg] se já existe.",
      [["nome", "string"]],
      // The creator is whoever the session proves, if anyone (the original call names no user).
      (call, nome) =>
        chat.createRoom(nome, call.session, call.remoteAddress).then((outcome) => say(call, outcome)),
    ),
    entrar_na_sala: rpc(
      "Entra numa sala, saindo da atual: [true, {usuarios, mensagens, cursor}].",
      [["usuario", "string"], ["sala", "string"]],
      (call, usuario, sala) =>
        asUser(
          call,
          usuario,
          async (user) =>
            mapOutcome(await chat.join(user, sala), (joined) => withWireMessages(joined, call.language)),
          answer,
        ),
    ),
    sair_da_sala: rpc(
      "Sai da sala atual: [true, msg] ou [false, msg].",
      [["usuario", "string"]],
      (call, usuario) => asUser(call, usuario, (user) => chat.leave(user), say),
    ),
    enviar_mensagem: rpc(
      "Envia à sala (destinatario nil) ou a um membro: [true, msg] ou [false, msg].",
      [["usuario", "string"], ["sala", "string"], ["texto", "string"], ["destinatario", "nil|string"]],
      (call, usuario, sala, texto, destinatario) =>
        asUser(call, usuario, (user) => chat.send(user, sala, texto, destinatario, call.sendKey), say),
    ),
    receber_mensagens: rpc(
      "As últimas 50 mensagens que o usuário pode ver na sala: [true, [mensagem...]].",
      [["usuario", "string"], ["sala", "string"]],
      (call, usuario, sala) =>
        asUser(
          call,
          usuario,
          (user) =>
            mapMaybe(
              chat.recentMessages(user, sala),
              (outcome) => mapOutcome(outcome, (m) => m.map((one) => toWire(one, call.language))),
            ),
          answer,
        ),
    ),
    listar_salas: rpc("As salas: [true, [nome...]].", [], () => chat.listRooms()),
    contar_usuarios: rpc(
      "Quantos usuários estão conectados (registrados), numa sala ou não: [true, n].",
      [],
      () => mapMaybe(chat.countUsers(), (count): Result<number> => [true, count]),
    ),
    listar_usuarios: rpc(
      "Os membros de uma sala: [true, [nome...]] ou [false, msg].",
      [["sala", "string"]],
      (call, sala) => mapMaybe(chat.listMembers(sala), (outcome) => answer(call, outcome)),
    ),
    aguardar_mensagens: rpc(
      "Entrega ao vivo: as mensagens depois de cursor; espera até espera_ms (máx. 25000) se não há: " +
        "[true, {mensagens, cursor}].",
      [["usuario", "string"], ["sala", "string"], ["cursor", "int"], ["espera_ms", "int"]],
      (call, usuario, sala, cursor, espera) =>
        asUser(
          call,
          usuario,
          async (user) => {
            const outcome = await chat.waitMessages(user, sala, cursor, espera);
            return outcome[0] ? deliveryResult(outcome[1], call.language) : outcome;
          },
          answer,
        ),
    ),
    manter_sessao: rpc(
      "Sinal de vida de um usuário fora de salas: [true, msg].",
      [["usuario", "string"]],
      (call, usuario) => asUser(call, usuario, (user) => chat.keepAlive(user), say),
    ),
    sair_do_servico: rpc(
      "Sai da sala e libera o nome: [true, msg].",
      [["usuario", "string"]],
      (call, usuario) => asUser(call, usuario, (user) => chat.unregister(user, "a pedido"), say),
    ),
    excluir_sala: rpc(
      "Exclui uma sala (só quem a criou); os membros são avisados e saem: [true, msg] ou [false, msg].",
      [["usuario", "string"], ["sala", "string"]],
      (call, usuario, sala) => asUser(call, usuario, (user) => chat.deleteRoom(user, sala), say),
    ),
    enviar_privada: rpc(
      "Mensagem privada a qualquer usuário online, esteja em que sala estiver: [true, msg] ou [false, msg].",
      [["usuario", "string"], ["destinatario", "string"], ["texto", "string"]],
      (call, usuario, destinatario, texto) =>
        asUser(call, usuario, (user) => chat.sendPrivate(user, destinatario, texto, call.sendKey), say),
    ),
  };
}
