/**
 * The client's pure pieces: a typed line as a command, a message as a line of text, text
 * made safe for a terminal, long messages split, and which messages are new.
 *
 * @module
 */

import {
  ChatMessage,
  EVERYONE,
  KEEPS_SESSION_HEADER,
  MAX_TEXT,
  misleadingName,
  Reason,
  reasonOf,
  REASONS_HEADER,
  Result,
  SERVER,
} from "../chat/protocol.ts";
import { localWallClock } from "../wire/codec.ts";

// ---------------------------------------------------------------------------
// Pure helpers: input parsing, message formatting, safe text
// ---------------------------------------------------------------------------

// The commands, for the terminal client and the chat page alike (plain JavaScript, which the page runs as it
// is): here with the TypeScript signatures the programs' documentation reads.
import * as commands from "./commands.js";

/** The commands, whatever language they are typed in. */
export type CommandName = commands.CommandName;

/** A line typed by the user, as {@linkcode parseInput} understands it. */
export type Input = commands.Input;

/** Every command word, Portuguese and English, by what it does. */
export const COMMANDS: Readonly<Record<string, CommandName>> = commands.COMMANDS;

/** A line typed by the user: a command, a message, or nothing. `//x` sends `/x`. */
export const parseInput: (line: string) => Input = commands.parseInput;

/** A room's name as typed after a command: `SALA` or `"SALA COM ESPAÇO"` (quotes work as in `/msg`). */
export const roomArgument: (rest: string) => string = commands.roomArgument;

/** `NOME TEXTO` or `"NOME COM ESPAÇO" TEXTO`. */
export const splitRecipient: (rest: string) => { to: string; text: string } | undefined =
  commands.splitRecipient;

/** Terminal escape sequences (CSI, OSC and the rest): never shown from a message. */
export const ESCAPES =
  // deno-lint-ignore no-control-regex -- matching terminal escape sequences is the point
  /\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.)?|\x9b[0-?]*[ -/]*[@-~]?/gs;
/** Control characters, and the format characters that reorder or hide text. */
export const UNSAFE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\u061c]/gu;
/** One character of {@linkcode UNSAFE}. */
export const UNSAFE_CHAR = new RegExp(UNSAFE.source, "u");
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

/** Two digits. */
export function pad2(n: number): string {
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

/** A text style: a named one or an ANSI colour code. */
export type Style = "bold" | "dim" | "red" | "yellow" | "cyan" | "magenta" | number;
const STYLES: Record<Exclude<Style, number>, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  magenta: [35, 39],
};
const NAME_COLOURS = [32, 33, 34, 36, 92, 93, 94, 96];

/** Text in a style, when colour is on. */
export function paint(colour: boolean, style: Style, text: string): string {
  if (!colour) return text;
  const [on, off] = typeof style === "number" ? [style, 39] : STYLES[style];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

/** The colour of a name: the same name, the same colour, on every screen. */
export function nameColour(name: string): number {
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
 * A text in parts the server takes (at most `max` UTF-16 units each), in
 * order: a paste cut at line breaks where it can; a line too long on its
 * own, typed or pasted, cut at its last space before `max`, else at `max`
 * (never inside a character); parts of nothing but spaces are dropped.
 */
export function splitMessage(text: string, max = MAX_TEXT): string[] {
  if (text.length <= max) return [text];
  const parts: string[] = [];
  let current: string | undefined;
  for (let line of text.split("\n")) {
    while (line.length > max) {
      const space = line.lastIndexOf(" ", max);
      const cut = space > max / 2 ? space + 1 : /[\ud800-\udbff]/.test(line[max - 1]!) ? max - 1 : max;
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
export function privateKey(message: ChatMessage): string {
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

/** Whether a refusal says the session is gone (registered again, the command goes through). */
export function sessionGone(result: Result<unknown>): boolean {
  return SESSION_GONE.has(reasonOf(result) ?? "");
}

/** Every call to the chat service asks for the reason of refusals and says it keeps the session cookie. */
export const CHAT_HEADERS = { [REASONS_HEADER]: "1", [KEEPS_SESSION_HEADER]: "1" };

/** Waits `ms`, or less when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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

/** The newest id among messages that have one. */
export function maxId(messages: ChatMessage[]): number | undefined {
  const ids = messages.map((m) => m.id).filter((id): id is number => typeof id === "number");
  return ids.length ? Math.max(...ids) : undefined;
}
