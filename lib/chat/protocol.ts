/**
 * The chat protocol's vocabulary, shared by the server and the client: the
 * result shape of every method, the message struct, the reserved names, and
 * the reasons a refusal carries for a caller that asks for them.
 *
 * A refusal is `[false, "mensagem"]`, as the original programs expect (they
 * unpack `ok, msg = result`). A caller that sends the HTTP header
 * `X-Chat-Motivos: 1` gets `[false, "mensagem", "motivo"]` instead: the
 * message is for people and may be reworded, the reason ({@linkcode Reason})
 * is for programs and stays. Messages for people come in the caller's
 * language ({@linkcode Lang}, asked for with `Accept-Language`).
 *
 * @module
 */

import type { Text } from "../text/catalogue.ts";

/** The longest user or room name. */
export const MAX_NAME = 32;
/** The longest message. */
export const MAX_TEXT = 2000;

/** The HTTP request header with which a caller asks for reasons in refusals (value `1`). */
export const REASONS_HEADER = "X-Chat-Motivos";

/**
 * The HTTP request header with which a caller names one message it sends
 * (`enviar_mensagem`, `enviar_privada`): 1 to 64 visible ASCII characters,
 * a fresh random one per message. The same message sent again with the same
 * key, after an answer that never came, is stored once and answered as sent.
 */
export const SEND_KEY_HEADER = "X-Chat-Chave";

/**
 * The HTTP request header with which a caller says it keeps the session
 * cookie (value `1`). On a `--compat` server a user it registers is bound to
 * that cookie from the first answer: calls without it are refused, as on any
 * server. The original clients keep no cookie and send none: theirs stay
 * free of it.
 */
export const KEEPS_SESSION_HEADER = "X-Chat-Sessao";

/** A send key as a server takes it ({@linkcode SEND_KEY_HEADER}); undefined when absent or malformed. */
export function sendKeyOf(header: string | null | undefined): string | undefined {
  return header && /^[\x21-\x7e]{1,64}$/.test(header) ? header : undefined;
}

/** Why a call was refused: one of these codes, the third element of a refusal for a caller that asks. */
export const Reason = {
  /** The call carries no session, or another user's: only the user who registered may act as them. */
  SESSION_INVALID: "sessao_invalida",
  /** No user by that name: never registered, or its session ended (silence, a server restart). */
  NOT_REGISTERED: "nao_registrado",
  /** The name is someone else's. */
  NAME_TAKEN: "nome_em_uso",
  /** The name is one the protocol uses (`SERVER`, `todos`). */
  NAME_RESERVED: "nome_reservado",
  /**
   * A user or room name that breaks the name policy ({@linkcode nameFlaw}): empty, too long, control or
   * invisible characters, characters other than letters, digits, single spaces and `. _ - '`, stacked
   * combining marks, or a look-alike of a reserved name.
   */
  NAME_INVALID: "nome_invalido",
  /** No room by that name. */
  ROOM_MISSING: "sala_inexistente",
  /** A room by that name exists already. */
  ROOM_EXISTS: "sala_existente",
  /** The user is not in that room (or in none). */
  NOT_IN_ROOM: "fora_da_sala",
  /** The recipient of a private message is not in the room. */
  RECIPIENT_ABSENT: "destinatario_ausente",
  /** Too many calls that change something (messages, joins, leaves, rooms, registrations) too fast. */
  RATE_LIMITED: "devagar",
  /** The server holds as many as it takes of something (users, rooms, rooms by one creator). */
  LIMIT_REACHED: "limite_atingido",
  /** Only the room's creator may do that. */
  NOT_CREATOR: "nao_criador",
  /** A message with nothing but spaces. */
  TEXT_EMPTY: "mensagem_vazia",
  /** A message over the length limit. */
  TEXT_TOO_LONG: "mensagem_longa",
  /** A message with control characters. */
  TEXT_INVALID: "mensagem_invalida",
} as const;

/** One of the {@linkcode Reason} codes. */
export type Reason = typeof Reason[keyof typeof Reason];

/**
 * A refusal as the server's core decides it: its reason, and the message
 * people read as a {@linkcode Text}, rendered in each caller's language.
 */
export type Refusal = [ok: false, message: Text, reason: Reason];

/** What every method answers: `[true, payload]`, or a refusal (with its reason when the caller asked). */
export type Result<T> = [ok: true, payload: T] | [ok: false, message: string] | [
  ok: false,
  message: string,
  reason: Reason,
];

/** A result of the server's core: its refusals carry their reason and their text, still in no language. */
export type Outcome<T> = [ok: true, payload: T] | Refusal;

/** A refusal for a reason, with the text people read. */
export function refuse(reason: Reason, message: Text): Refusal {
  return [false, message, reason];
}

/** The reason of a refusal, if it carries one (a result from an original server never does). */
export function reasonOf(result: Result<unknown>): string | undefined {
  return result[0] ? undefined : result[2];
}

/** A refusal as a caller sees it: without the reason unless it asked for reasons. */
export function forCaller<T>(result: Result<T>, wantsReasons: boolean): Result<T> {
  return result[0] || wantsReasons || result.length < 3 ? result : [false, result[1]];
}

/** The languages the servers speak: Portuguese (the original's, and the default) and English. */
export type Lang = "pt" | "en";

const LANGUAGE_CACHE = new Map<string, Lang>();

/**
 * The language a caller asks for in its `Accept-Language` header: the first
 * one we speak, in the order of the header's q values (`en-GB;q=0.8, pt`:
 * Portuguese); Portuguese when it names none (or sends none, as the
 * original clients do).
 */
export function languageOf(header: string | null): Lang {
  if (!header) return "pt";
  let lang = LANGUAGE_CACHE.get(header);
  if (lang === undefined) {
    lang = "pt";
    const ranges = header.split(",").map((part, order) => {
      const [range = "", ...params] = part.split(";");
      // A q that is no number (`q=x`) is no preference: left out, as q=0 is.
      const q = params.map((p) => /^\s*q\s*=(.*)$/i.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag: range.trim().toLowerCase(), q: q === undefined ? 1 : Number(q), order };
    }).filter(({ q }) => q > 0).sort((a, b) => b.q - a.q || a.order - b.order);
    for (const { tag } of ranges) {
      const primary = tag.split("-", 1)[0];
      if (primary === "pt" || primary === "en" || primary === "*") {
        lang = primary === "en" ? "en" : "pt";
        break;
      }
    }
    // Callers send the same few headers over and over: remember them, up to a bound.
    if (LANGUAGE_CACHE.size < 256) LANGUAGE_CACHE.set(header, lang);
  }
  return lang;
}

/** The sender of join and leave notices. */
export const SERVER = "SERVER";

/** The recipient of a public message. */
export const EVERYONE = "todos";

/** Names no user may take: they would pass for the server or for everyone (compared in lower case). */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([SERVER.toLowerCase(), EVERYONE]);

/**
 * A chat message on the wire: the original struct plus `id` (our extension;
 * the original has none). `origem` is {@linkcode SERVER} for notices,
 * `destino` is {@linkcode EVERYONE} for public messages; `timestamp` travels
 * as `dateTime.iso8601` (`YYYYMMDDTHH:MM:SS`).
 */
export interface ChatMessage {
  /** Grows with every message of the server: cursors compare ids. */
  id?: number;
  /** `broadcast` for the room, `unicast` for one member. */
  tipo: "broadcast" | "unicast";
  /** Who sent it. */
  origem: string;
  /** Who it is for. */
  destino: string;
  /** The text. */
  conteudo: string;
  /** When the server stored it. */
  timestamp: Date;
}

/**
 * Characters that would let a user name pass for part of a chat line's
 * format: `:` ends a name in `origem: texto`, `>` makes the arrow of
 * `origem -> destino`, brackets frame times and tags; and the characters
 * that look like them (fullwidth forms fold to these under NFKC; the rest
 * are listed: modifier letters, ratio, arrows, angle quotes and brackets).
 */
const MISLEADING =
  /[:<>\[\]\u00ab\u00bb\u02c2-\u02c5\u02d0\u02d1\u02f8\u0589\u05c3\u0703\u0704\u1433\u1438\u16ec\u1804\u1808\u2039\u203a\u2045\u2046\u205a\u2190-\u21ff\u2236\u226a\u226b\u22d8\u22d9\u2329\u232a\u2768-\u2775\u2794-\u27bf\u27e6-\u27ef\u27f0-\u27ff\u2900-\u297f\u2b00-\u2bff\u3008-\u3011\u3014-\u301b\ua4fd\ua789\ufe47\ufe48\uffe9-\uffec\u{1f800}-\u{1f8ff}]/u;

/**
 * Whether a user name holds something that could make a line look like
 * another kind of line (`carlos -> bia` posting what looks like a private
 * message to bia). The server refuses such names ({@linkcode Reason.NAME_INVALID});
 * the client quotes them when an original server let one through.
 */
export function misleadingName(name: string): boolean {
  return MISLEADING.test(name.normalize("NFKC"));
}

/** How a name breaks the server's name policy (see {@linkcode nameFlaw}). */
export type NameFlaw = "invisible" | "marks" | "characters";

/** Characters nobody sees: format characters (zero-width ones among them) and fillers. */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/u;
/** A combining mark with no letter or digit under it, or more than two on one. */
const MARK_STACK = /(?:^|[^\p{L}\p{Nd}\p{M}])\p{M}|\p{M}{3}/u;
/**
 * The punctuation a name may hold: none that draws a line's format (`:`, `<`, `>`, brackets) or a list's
 * (`,`), and none that could pass for other marks.
 */
export const NAME_PUNCTUATION = ". _ - ' ( ) ! ? & + # @";

/** A name's word: letters, digits, combining marks and {@linkcode NAME_PUNCTUATION} (the class made from it). */
const NAME_WORD = `[\\p{L}\\p{M}\\p{Nd}${
  NAME_PUNCTUATION.replaceAll(" ", "").replace(/[\\^\]-]/g, "\\$&")
}]+`;

/** Letters, digits, combining marks, {@linkcode NAME_PUNCTUATION} and single spaces between words. */
const NAME_CHARACTERS = new RegExp(`^${NAME_WORD}(?: ${NAME_WORD})*$`, "u");

/**
 * What breaks the name policy in a name already trimmed and in NFC (the
 * server stores names so): invisible characters (zero-width, fillers, format
 * characters), combining marks on nothing or more than two on one letter
 * (counted decomposed),
 * and anything but letters, digits, single spaces and {@linkcode NAME_PUNCTUATION}. Undefined
 * for a good name. Control characters and line formats are checked before
 * (their texts say more); look-alikes of the reserved names after
 * ({@linkcode imitatesReserved}).
 */
export function nameFlaw(name: string): NameFlaw | undefined {
  if (INVISIBLE.test(name)) return "invisible";
  // Counted decomposed: `é` is a letter and one mark, whichever way it came.
  if (MARK_STACK.test(name.normalize("NFD"))) return "marks";
  if (!NAME_CHARACTERS.test(name)) return "characters";
  return undefined;
}
