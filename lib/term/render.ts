/**
 * Lines on a terminal: messages wrapped and marked (mentions, private ones), notices and
 * days.
 *
 * @module
 */

import { ChatMessage, SERVER } from "../chat/protocol.ts";
import {
  clockOf,
  displayName,
  isPrivate,
  nameColour,
  pad2,
  paint,
  sanitize,
  Style,
} from "../client/lines.ts";
import { NoticeKind } from "../client/session.ts";
import { textWidth, truncate, wrapRows } from "./editor.ts";
import { PT, Texts } from "../text/client.ts";
import { localWallClock } from "../wire/codec.ts";

// ---------------------------------------------------------------------------
// Lines on a terminal: messages wrapped and marked, notices, days
// ---------------------------------------------------------------------------

/** The calendar day of a wall-clock date (in its UTC fields, see {@linkcode clockOf}), as a key (`2026-11-24`). */
export function dayOf(date: Date): string {
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
