/**
 * The notices the server posts as `SERVER` (someone joined, left, a room
 * deleted, the server stopping), in Portuguese and English, and how a
 * reader tells them from their text: the client reads who comes and goes
 * from them. Part of the texts' catalogue (`catalogue.ts`), kept apart so
 * that the client loads these and not the rest.
 *
 * @module
 */

import type { Lang } from "../chat/protocol.ts";

/** The notices' texts, by language. */
export const NOTICES = {
  pt: {
    joinedNotice: (user: string) => `${user} entrou na sala.`,
    leftNotice: (user: string) => `${user} saiu da sala.`,
    roomDeletedNotice: (room: string, by: string) => `Sala ${room} excluída por ${by}.`,
    stoppedNotice: () => "O servidor de chat foi encerrado.",
  },
  en: {
    joinedNotice: (user: string) => `${user} joined the room.`,
    leftNotice: (user: string) => `${user} left the room.`,
    roomDeletedNotice: (room: string, by: string) => `Room ${room} deleted by ${by}.`,
    stoppedNotice: () => "The chat server has stopped.",
  },
} as const;

/** A notice's key. */
export type NoticeKey = keyof typeof NOTICES.pt;

/** A notice read back from its text: its key and its arguments (a catalogue's `Text`). */
export interface Notice {
  /** Which notice. */
  readonly key: NoticeKey;
  /** Its arguments: who joined or left, which room and by whom. */
  readonly args: string[];
}

/** A notice's text in a language as a pattern, its arguments captured (built from the texts themselves). */
function noticePattern(template: (...args: string[]) => string): RegExp {
  const slots = Array.from({ length: template.length }, (_, i) => `\u0000${i}\u0000`);
  let source = template(...slots).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  for (const slot of slots) source = source.replace(slot, "(.+)");
  return new RegExp(`^${source}$`, "s");
}

const NOTICE_PATTERNS: Readonly<Record<Lang, readonly [NoticeKey, RegExp][]>> = {
  pt: (Object.keys(NOTICES.pt) as NoticeKey[]).map((key) => [key, noticePattern(NOTICES.pt[key])]),
  en: (Object.keys(NOTICES.en) as NoticeKey[]).map((key) => [key, noticePattern(NOTICES.en[key])]),
};

/**
 * The notice a text in a language (Portuguese unless said) is: for a notice
 * stored before notices kept their key (schema 1), and for a client
 * following who comes and goes; undefined for any other text.
 */
export function noticeOf(conteudo: string, lang: Lang = "pt"): Notice | undefined {
  for (const [key, pattern] of NOTICE_PATTERNS[lang]) {
    const found = pattern.exec(conteudo);
    if (found) return { key, args: found.slice(1) };
  }
  return undefined;
}
