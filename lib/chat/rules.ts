/**
 * The chat's shapes and rules, the same whichever store holds the chat: the
 * messages and answers the chat hands out, its options and caps, the name
 * and text policies, visibility and rate limits, and {@linkcode Chat}, what
 * the method table needs of a chat, and {@linkcode ChatEngine}, a chat with
 * its life (open, start, stop, close). Two engines implement it: SQLite
 * (`engines/sqlite.ts`: one server and its file) and Redis (`engines/redis.ts`:
 * several servers, one chat); one contract suite holds them to the same
 * behaviour.
 *
 * @module
 */

import { clip, Fault, FaultCode } from "../wire/codec.ts";
import type { Logger } from "../program/log.ts";
import { imitatesReserved, mixesScripts } from "./names.ts";
import {
  MAX_NAME,
  MAX_TEXT,
  misleadingName,
  nameFlaw,
  type Outcome,
  Reason,
  type Refusal,
  refuse,
  RESERVED_NAMES,
} from "./protocol.ts";
import { type NameKind, type Text, text } from "../text/catalogue.ts";

/** A stored message: what the chat keeps and hands out (the method table puts it on the wire). */
export interface Message {
  /** Grows with every message of the server, across restarts. */
  readonly id: number;
  /** The room it was posted in. */
  readonly room: string;
  /** `broadcast` for the room, `unicast` for one member. */
  readonly tipo: "broadcast" | "unicast";
  /** Who sent it: a user, or `SERVER` for notices. */
  readonly origem: string;
  /** `todos`, or the one member it is for. */
  readonly destino: string;
  /** The text; a notice's in Portuguese, for the original clients. */
  readonly conteudo: string;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
  /** A notice's text in no language yet: each reader gets it in theirs. */
  readonly notice?: Text;
  /** The identity of the user who sent it; none for a notice. */
  readonly fromId?: string;
  /** A private message's recipient's identity: only the two ends read it, whoever holds the names later. */
  readonly toId?: string;
}

/**
 * A rate limit's burst, in seconds of its rate: a bucket fills up to `rate * BURST_SECONDS` tokens, and
 * an empty one is full again after this long. The Redis engine's Lua gets it from here.
 */
export const BURST_SECONDS = 2;

/** A full bucket of a rate limit. */
export function fullBucket(rate: number, now = Date.now()): Bucket {
  return { tokens: rate * BURST_SECONDS, tokensAt: now };
}

/** A token bucket of a rate limit: filled at `rate` tokens a second, up to {@linkcode BURST_SECONDS} of that. */
export interface Bucket {
  /** The tokens left... */
  tokens: number;
  /** ...when last counted (ms since the epoch). */
  tokensAt: number;
}

/** How a chat behaves (either store). */
export interface ChatOptions {
  /** Accept calls with no session cookie (the original clients send none). */
  compat: boolean;
  /** A session with no sign of life for this long ends. */
  sessionTtlMs: number;
  /** An empty room idle for this long is removed. */
  roomTtlMs: number;
  /**
   * Messages a user may send per second; as many other changes (joins, leaves, rooms created or
   * deleted), counted apart; and registrations (and rooms created without a session) per second from
   * one address. Bursts of twice that.
   */
  maxRate: number;
  /** The operator log. */
  log: Logger;
  /** Users registered at once (default {@linkcode LIMITS}). */
  maxUsers?: number;
  /** Rooms (default {@linkcode LIMITS}). */
  maxRooms?: number;
  /** Rooms one user may have created and not yet deleted (default {@linkcode LIMITS}). */
  maxRoomsPerUser?: number;
  /** Pending waits per user: a new one ends the oldest (default {@linkcode LIMITS}). */
  maxWaits?: number;
  /** Messages a room keeps at least (default {@linkcode HISTORY_KEPT}). */
  historyKept?: number;
}

/** The caps' defaults: a classroom's chat, with room to spare. */
export const LIMITS = { maxUsers: 1000, maxRooms: 1000, maxRoomsPerUser: 20, maxWaits: 4 } as const;

/** The caps a chat runs with: the options', else {@linkcode LIMITS}. */
export function limitsOf(options: ChatOptions): Required<Pick<ChatOptions, keyof typeof LIMITS>> {
  return {
    maxUsers: options.maxUsers ?? LIMITS.maxUsers,
    maxRooms: options.maxRooms ?? LIMITS.maxRooms,
    maxRoomsPerUser: options.maxRoomsPerUser ?? LIMITS.maxRoomsPerUser,
    maxWaits: options.maxWaits ?? LIMITS.maxWaits,
  };
}

/**
 * Messages a room keeps, at least: the latest. The SQLite engine keeps every message until its room goes; the
 * Redis engine (memory) drops older ones, keeping at most {@linkcode HISTORY_SLACK} more than this.
 */
export const HISTORY_KEPT = 10_000;

/** How far past {@linkcode HISTORY_KEPT} a room on Redis may grow before it is cut back (one cut per this many). */
export const HISTORY_SLACK = 100;

/** Messages a join and `receber_mensagens` hand out: the latest the user may see. */
export const HISTORY = 50;

/** How long the members of a deleted room can still read what it said last. */
export const LAST_WORDS_MS = 30_000;

/** The most messages one answer of live delivery carries. */
export const MAX_BATCH = 500;

/** The latest messages of each room a server keeps at hand (SQLite's, or an instance's from Redis's events). */
export const RECENT_KEPT = 200;

/** The longest an `aguardar_mensagens` call waits on the server. */
export const MAX_WAIT_MS = 25_000;
export { MAX_NAME, MAX_TEXT } from "./protocol.ts";

/** The longest string looked up as a name: a longer one is cut first (it names nobody). */
export const MAX_LOOKUP = MAX_NAME * 4;

/**
 * The store could not be used: one clear line for the operator at start;
 * later, the fault a caller gets (not an HTTP 500): `-32001`
 * ({@linkcode FaultCode.UNAVAILABLE}) when nothing was applied, so the call
 * may be made again; `-32603` when that is not known (an answer lost on its
 * way from Redis).
 */
export class StoreError extends Fault {
  /** The problem, in words for people; `unknownOutcome`: whether it was applied is not known (-32603). */
  constructor(message: string, options: { unknownOutcome?: boolean } = {}) {
    super(options.unknownOutcome ? FaultCode.INTERNAL_ERROR : FaultCode.UNAVAILABLE, message);
    this.name = "StoreError";
  }
}

/** Compares names as the lists show them (one collator, made once: `localeCompare` makes one a call). */
const byName = new Intl.Collator().compare;

/** Names sorted as every list of them shows them (rooms, members). */
export function sortedNames(names: Iterable<string>): string[] {
  return [...names].sort(byName);
}

/** Index of the first message with an id above `cursor` in messages sorted by id. */
export function firstAfter(messages: readonly Message[], cursor: number): number {
  let low = 0;
  let high = messages.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (messages[mid]!.id <= cursor) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * The last delivery every reader gets alike, by the messages it came from (a
 * room's recent list): one per room, held until the room's next message.
 */
const sharedDeliveries = new WeakMap<
  readonly Message[],
  { cursor: number; newest: Message; delivery: Delivery }
>();

/**
 * What a reader may see of messages sorted by id after a cursor, oldest
 * first, at most {@linkcode MAX_BATCH}, and the cursor after them (the one
 * given when there are none). When all of them are public every reader gets
 * the same: the delivery is made once, frozen, and handed to each member a
 * message wakes, so a room of a hundred is answered with one object.
 */
export function deliveryAfter(messages: readonly Message[], reader: string, cursor: number): Delivery {
  const newest = messages[messages.length - 1];
  const shared = sharedDeliveries.get(messages);
  if (shared !== undefined && shared.cursor === cursor && shared.newest === newest) return shared.delivery;
  const visible: Message[] = [];
  let allPublic = true;
  for (let i = firstAfter(messages, cursor); i < messages.length && visible.length < MAX_BATCH; i++) {
    const message = messages[i]!;
    if (message.tipo !== "broadcast") allPublic = false;
    if (visibleTo(message, reader)) visible.push(message);
  }
  if (visible.length === 0) return { mensagens: visible, cursor };
  const delivery = { mensagens: visible, cursor: visible[visible.length - 1]!.id };
  if (!allPublic) return delivery;
  Object.freeze(visible);
  sharedDeliveries.set(messages, { cursor, newest: newest!, delivery: Object.freeze(delivery) });
  return delivery;
}

/** The latest `count` messages a reader may see of messages sorted by id, oldest first. */
export function latestVisible(messages: readonly Message[], reader: string, count: number): Message[] {
  const visible: Message[] = [];
  for (let i = messages.length - 1; i >= 0 && visible.length < count; i--) {
    if (visibleTo(messages[i]!, reader)) visible.push(messages[i]!);
  }
  return visible.reverse();
}

/** Whether a reader (a user's identity) may see a message: public, or private to or from them. */
export function visibleTo(message: Message, reader: string): boolean {
  return message.tipo === "broadcast" || message.toId === reader || message.fromId === reader;
}

/**
 * A name as it is looked up: trimmed, in NFC (as names are stored). A string
 * far longer than any name is cut first: it names nobody, and neither the
 * lookup nor a refusal that quotes it grows with it.
 */
export function lookup(raw: string): string {
  return (raw.length > MAX_LOOKUP ? raw.slice(0, MAX_LOOKUP) : raw).trim().normalize("NFC");
}

/** A name from a call as a refusal quotes it: cut to a name's length. */
export function quoted(raw: string): string {
  return clip(lookup(raw), MAX_NAME);
}

/**
 * The name policy: trimmed and in NFC, 1 to 32 characters; no control or
 * invisible characters, no stacked combining marks; letters, digits, single
 * spaces and a little punctuation ({@linkcode nameFlaw}). A user's name
 * also draws no line format ({@linkcode misleadingName}) and is no reserved
 * name nor a look-alike of one ({@linkcode imitatesReserved}). No name
 * mixes scripts as UTS #39 finds unsafe ({@linkcode mixesScripts}): the
 * engines check that ({@linkcode checkScripts}) after whether the name
 * resembles one in use, so that the refusal names it. The name, or why not;
 * whether it is one already taken is the engine's question, by the name's
 * key (`names.ts`).
 */
export function checkName(kind: NameKind, raw: string): Outcome<string> {
  const name = raw.length > MAX_LOOKUP ? raw : raw.normalize("NFC").trim();
  if (name.length < 1 || name.length > MAX_NAME) {
    return refuse(Reason.NAME_INVALID, text("nameLength", kind, MAX_NAME));
  }
  if (/[\p{Cc}\p{Zl}\p{Zp}]/u.test(name) || !name.isWellFormed()) {
    return refuse(Reason.NAME_INVALID, text("nameControl", kind));
  }
  const flaw = nameFlaw(name);
  if (flaw === "invisible") return refuse(Reason.NAME_INVALID, text("nameInvisible", kind));
  if (flaw === "marks") return refuse(Reason.NAME_INVALID, text("nameMarks", kind));
  if (kind === "user" && misleadingName(name)) return refuse(Reason.NAME_INVALID, text("nameMisleading"));
  if (flaw === "characters") return refuse(Reason.NAME_INVALID, text("nameCharacters", kind));
  if (kind === "user") {
    if (RESERVED_NAMES.has(name.toLowerCase())) {
      return refuse(Reason.NAME_RESERVED, text("nameReserved", name));
    }
    if (imitatesReserved(name)) return refuse(Reason.NAME_INVALID, text("nameLookalike", name));
  }
  return [true, name];
}

/** The refusal of a name that mixes scripts as UTS #39 finds unsafe, or undefined for one that does not. */
export function checkScripts(kind: NameKind, name: string): Refusal | undefined {
  return mixesScripts(name) ? refuse(Reason.NAME_INVALID, text("nameMixesScripts", kind)) : undefined;
}

/** The text policy: not blank, at most {@linkcode MAX_TEXT} characters, no control characters. The text, or why not. */
export function checkText(message: string): Outcome<string> {
  if (message.trim().length === 0) return refuse(Reason.TEXT_EMPTY, text("textEmpty"));
  if (message.length > MAX_TEXT) return refuse(Reason.TEXT_TOO_LONG, text("textTooLong", MAX_TEXT));
  // Control characters (but tab and line breaks) could drive other users' terminals, and most
  // cannot even travel in XML 1.0.
  if (/[^\P{Cc}\t\n\r]|[\ufffe\uffff]/u.test(message) || !message.isWellFormed()) {
    return refuse(Reason.TEXT_INVALID, text("textInvalid"));
  }
  return [true, message];
}

/**
 * Whom a name is refused to because its holder is silent: a holder with no sign of life for a quarter of the
 * session's time (at most 3 s) is probably a client that crashed, and the refusal says when the name frees.
 * The seconds left, or undefined for a holder alive. The Redis engine's register script answers how long the
 * holder has been silent; both engines decide here.
 */
export function silentHolderSeconds(silentMs: number, sessionTtlMs: number): number | undefined {
  if (silentMs < Math.min(3000, sessionTtlMs / 4)) return undefined;
  return Math.max(1, Math.ceil((sessionTtlMs - silentMs) / 1000));
}

/**
 * Takes a token from a bucket filled at `rate` a second up to {@linkcode BURST_SECONDS} of that; false when
 * it is empty. The Redis engine's `take` is its twin in Lua, bound to it by the contract's rate-limit case.
 */
export function takeToken(bucket: Bucket, rate: number, now = Date.now()): boolean {
  bucket.tokens = Math.min(rate * BURST_SECONDS, bucket.tokens + ((now - bucket.tokensAt) / 1000) * rate);
  bucket.tokensAt = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/** What joining a room gives: who is there, the latest messages the user may see, and the cursor. */
export interface Joined {
  /** The room's name as the chat keeps it (the call may have named it by a variant: `Geral` for `geral`). */
  sala: string;
  /** The members, sorted. */
  usuarios: string[];
  /** The last 50 messages the user may see, oldest first. */
  mensagens: Message[];
  /** The newest id on the server: live delivery goes on from here. */
  cursor: number;
}

/**
 * One answer of live delivery: the messages after a cursor, and the cursor
 * to pass next. A frozen one is the same for every reader
 * ({@linkcode deliveryAfter}): what is made of it may be kept by its identity.
 */
export interface Delivery {
  /** Oldest first, at most 500. */
  readonly mensagens: readonly Message[];
  /** The id of the last message here (or the cursor given, when there are none). */
  readonly cursor: number;
}

/** A value, or a promise of it: the SQLite chat answers most calls at once, the Redis one never. */
export type Maybe<T> = T | Promise<T>;

/**
 * What the ChatService method table needs of a chat. `U` is whom a call
 * acts as: what {@linkcode Chat.authorize} hands to the calls that act as a
 * user (the SQLite chat checks the session at once; the Redis chat passes a
 * claim that each call's script checks in Redis).
 */
export interface Chat<U> {
  /**
   * Registers a unique name; `token` is the session the caller will present; `source` its address;
   * `keepsSession`: the caller keeps the cookie, so even with --compat no call without it acts as this user.
   */
  register(rawName: string, token: string, source?: string, keepsSession?: boolean): Maybe<Outcome<Text>>;
  /** Whom a call may act as, or why not. */
  authorize(session: string | undefined, rawName: string): U | Refusal;
  /** Creates a room for whoever the session proves (none: only with --compat). */
  createRoom(rawName: string, session: string | undefined, source?: string): Promise<Outcome<Text>>;
  /** Deletes a room its creator asks to delete. */
  deleteRoom(user: U, roomName: string): Promise<Outcome<Text>>;
  /** The rooms' names, sorted. */
  listRooms(): Maybe<Outcome<readonly string[]>>;
  /** How many users are registered (connected), in a room or not. */
  countUsers(): Maybe<number>;
  /** Who is in a room, sorted. */
  listMembers(roomName: string): Maybe<Outcome<string[]>>;
  /** Joins a room, leaving the current one. */
  join(user: U, roomName: string): Promise<Outcome<Joined>>;
  /** Leaves the current room. */
  leave(user: U): Promise<Outcome<Text>>;
  /**
   * Posts to the user's room, or privately to one member of it; with a send
   * `key`, the same message sent again is stored once.
   */
  send(
    user: U,
    roomName: string,
    rawText: string,
    recipient: string | null,
    key?: string,
  ): Promise<Outcome<Text>>;
  /** A private message to anyone online (once per send `key`, as {@linkcode Chat.send}). */
  sendPrivate(user: U, rawRecipient: string, rawText: string, key?: string): Promise<Outcome<Text>>;
  /** The last messages the user may see in their room. */
  recentMessages(user: U, roomName: string): Maybe<Outcome<Message[]>>;
  /** Live delivery: the messages after a cursor, waiting up to `waitMs` for one. */
  waitMessages(user: U, roomName: string, cursor: number, waitMs: number): Promise<Outcome<Delivery>>;
  /** A sign of life (authorizing the call was one). */
  keepAlive(user: U): Maybe<Outcome<Text>>;
  /** Ends a session; `why` goes to the log. */
  unregister(user: U, why: string): Promise<Outcome<Text>>;
}

/**
 * A chat engine: the chat's rules on one kind of storage, and its life.
 * Each engine's module opens one (`SqliteChat.open`, `RedisChat.open`);
 * then a server calls {@linkcode ChatEngine.start}, serves, and at the end
 * {@linkcode ChatEngine.announceStop}, {@linkcode ChatEngine.stop} and
 * {@linkcode ChatEngine.close}, in that order (disposing of it closes it).
 */
export interface ChatEngine<U = unknown> extends Chat<U>, AsyncDisposable {
  /** Where the chat is kept, as the operator's log says it at start. */
  describe(): string;
  /** Starts the housekeeping: every `sweepEveryMs`, silent sessions end and empty idle rooms go. */
  start(sweepEveryMs: number): void;
  /**
   * Tells the rooms with members that this server stops (before their waits end, so that waiting members
   * read it); how many rooms were told.
   */
  announceStop(): Promise<number>;
  /** Ends every wait, now and from now on, and the housekeeping. */
  stop(): void;
  /** Writes what is pending and lets the storage go (stopping first). */
  close(): Promise<void>;
  /** False once the storage is gone for good under the running server (a database file deleted). */
  stillThere(): boolean;
}
