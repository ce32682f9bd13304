/**
 * When two names are one: Unicode's rules for look-alike names (UTS #39,
 * "Unicode Security Mechanisms"), for users and rooms on both engines.
 *
 * - {@linkcode nameKey}: a name's identity for uniqueness, its case folded
 *   and its compatibility forms folded (`ａｎａ`, `𝐚𝐧𝐚` are `ana`), then its
 *   confusable skeleton (`аna` with a Cyrillic а, `ɑna` with a Latin alpha
 *   are `ana`). Two names with one key are one name: the second is refused,
 *   and a room named by a variant is the existing room.
 * - {@linkcode mixesScripts}: whether a name mixes scripts as UTS #39's
 *   "moderately restrictive" level does not allow (Latin with Cyrillic or
 *   Greek, say): such names are refused.
 *
 * The data (the confusables and the scripts' names) is Unicode's, in
 * `unicode_names_data.ts`, written by `tools/unicode_names.ts`.
 *
 * @module
 */

import { RESERVED_NAMES } from "./protocol.ts";
import { CONFUSABLE_PROTOTYPES, SCRIPT_NAMES } from "./unicode_names_data.ts";

/** Each confusable character's prototype, made on first use (a program that takes no names never does). */
let prototypes: ReadonlyMap<string, string> | undefined;

/** Full case folding, as far as JavaScript's case maps give it (`ß` and `SS` fold alike, `ς` and `σ` too). */
function caseFold(text: string): string {
  return text.toUpperCase().toLowerCase();
}

/** UTS #39's skeleton: decomposed, each character replaced by its prototype, decomposed again. */
export function skeleton(text: string): string {
  prototypes ??= new Map(CONFUSABLE_PROTOTYPES.map((pair) => pair.split("\t") as [string, string]));
  let out = "";
  for (const char of text.normalize("NFD")) out += prototypes.get(char) ?? char;
  return out.normalize("NFD");
}

/**
 * A name's identity for uniqueness: its compatibility forms folded, then
 * its skeleton taken as written, in capitals and in small letters, and its
 * case folded: the confusables pair some capitals only (`Ε`, Greek, is `E`;
 * `Ʀ`, the capital of `ʀ`, is `R`), some small letters only, and a
 * prototype may be a capital (`0` is `O`).
 */
export function nameKey(name: string): string {
  const asWritten = skeleton(name.normalize("NFKC"));
  return caseFold(skeleton(skeleton(asWritten.toUpperCase()).toLowerCase()));
}

/** The key of a name with its marks, punctuation and spaces gone too: how far a reserved name's look-alikes reach. */
export function bareKey(name: string): string {
  return nameKey(name).replace(/[\p{M}\p{P}\p{S}\s]/gu, "");
}

/** A matcher of each script's characters (by Script_Extensions), made on first use. */
let scriptMatchers: readonly [string, RegExp][] | undefined;

/** The scripts a character belongs to (Script_Extensions); none for Common and Inherited ones (any script's). */
function scriptsOf(char: string): string[] {
  scriptMatchers ??= SCRIPT_NAMES.flatMap((script) => {
    try {
      return [[script, new RegExp(`^\\p{Script_Extensions=${script}}$`, "u")] as [string, RegExp]];
    } catch {
      // A script newer than this runtime's Unicode: its letters count as unknown.
      return [];
    }
  });
  if (/^[\p{Script_Extensions=Common}\p{Script_Extensions=Inherited}]$/u.test(char)) return [];
  return scriptMatchers.filter(([, matcher]) => matcher.test(char)).map(([script]) => script);
}

/** The sets of scripts UTS #39's "highly restrictive" level allows together (besides a single script). */
const HIGHLY_RESTRICTIVE: readonly (readonly string[])[] = [
  ["Latin", "Han", "Hiragana", "Katakana"],
  ["Latin", "Han", "Bopomofo"],
  ["Latin", "Han", "Hangul"],
];

/** The scripts the "moderately restrictive" level does not allow beside Latin (they hold most look-alikes of it). */
const NOT_BESIDE_LATIN: ReadonlySet<string> = new Set(["Cyrillic", "Greek"]);

/**
 * Whether a name mixes scripts beyond UTS #39's "moderately restrictive"
 * level: one script (Common and Inherited characters go with any); or Latin
 * with Han and Japanese kana, Bopomofo or Hangul; or Latin with one other
 * script but Cyrillic and Greek.
 */
export function mixesScripts(name: string): boolean {
  // Nearly every name is ASCII: one script, or none.
  if (/^[\x20-\x7e]*$/.test(name)) return false;
  const sets = [...name].map(scriptsOf).filter((scripts) => scripts.length > 0);
  const allWithin = (allowed: readonly string[]) =>
    sets.every((scripts) => scripts.some((script) => allowed.includes(script)));
  const first = sets[0];
  if (!first || first.some((script) => allWithin([script]))) return false;
  if (HIGHLY_RESTRICTIVE.some(allWithin)) return false;
  const others = new Set(sets.flat().filter((script) => script !== "Latin" && !NOT_BESIDE_LATIN.has(script)));
  return ![...others].some((other) => allWithin(["Latin", other]));
}

/** The reserved names as far as their look-alikes reach. */
let reservedKeys: ReadonlySet<string> | undefined;

/**
 * Whether a name looks like a reserved one without being it (`SΕRVER` with a
 * Greek Ε, `S.E.R.V.E.R`, `t0d0s`): a user by such a name would pass for the
 * server's notices or for everyone.
 */
export function imitatesReserved(name: string): boolean {
  reservedKeys ??= new Set([...RESERVED_NAMES].map(bareKey));
  return !RESERVED_NAMES.has(name.toLowerCase()) && reservedKeys.has(bareKey(name));
}
