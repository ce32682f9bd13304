/**
 * The chat on SQLite (`node:sqlite`): one server, one database file, the
 * default engine. Rooms and their messages live in the file, so a restart,
 * even after `kill -9`, loses nothing that was acknowledged; users and their
 * sessions live in memory (after a restart clients register again and carry
 * on from the cursor they hold).
 *
 * Its peer is the Redis engine (`redis.ts`); both implement
 * {@linkcode ChatEngine}, and `tests/contract/chat_contract_test.ts` holds them to one
 * behaviour.
 *
 * @module
 */

import {
  type Bucket,
  BURST_SECONDS,
  type ChatEngine,
  type ChatOptions,
  checkName,
  checkScripts,
  checkText,
  type Delivery,
  deliveryAfter,
  fullBucket,
  HISTORY,
  type Joined,
  LAST_WORDS_MS,
  latestVisible,
  LIMITS,
  limitsOf,
  lookup,
  MAX_BATCH,
  MAX_NAME,
  MAX_WAIT_MS,
  type Message,
  quoted,
  RECENT_KEPT,
  silentHolderSeconds,
  sortedNames,
  StoreError,
  takeToken,
  visibleTo,
} from "../rules.ts";
import { clip, encodeOnce } from "../../wire/codec.ts";
import { Deadlines } from "../../wire/deadlines.ts";
import type { Logger } from "../../program/log.ts";
import { EVERYONE, type Outcome, Reason, type Refusal, refuse, SERVER } from "../protocol.ts";
import { counted, loadText, render, storeText, type Text, text } from "../../text/catalogue.ts";
import { noticeOf } from "../../text/notices.ts";
import { nameKey } from "../names.ts";
import { DatabaseSync } from "node:sqlite";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** A registered user, as {@linkcode SqliteChat.authorize} hands it to the calls that act as them. */
export interface User {
  /**
   * The identity: one per registration, never reused. Private messages and a room's creator rights belong
   * to it, not to the name, so whoever takes the name later (after `sair_do_servico`, an ended session or
   * a restart) reads none of them and deletes no room of theirs.
   */
  readonly id: string;
  /** The name, unique on this server. */
  readonly name: string;
  /** The name's key ({@linkcode nameKey}): no other user's name has it. */
  readonly key: string;
  /** The session token only this user's client holds. */
  readonly token: string;
  /** The name of the room the user is in, if any. */
  room: string | undefined;
  /** The last sign of life (ms since the epoch). */
  lastSeen: number;
  /** Pending `aguardar_mensagens` calls, oldest first, each by the function that ends it: a user waiting is alive. */
  readonly waits: Set<() => void>;
  /** Once a call carried this user's cookie, cookie-less calls are refused even with --compat. */
  provedBySession: boolean;
  /** Token bucket for the rate limit of messages: the tokens left... */
  tokens: number;
  /** ...when last counted (ms since the epoch). */
  tokensAt: number;
  /** The bucket of every other call that changes something: joins, leaves, rooms created or deleted. */
  readonly changes: Bucket;
}

/** A room, who is in it, its newest messages and who waits for more. */
interface Room {
  readonly name: string;
  /** The name's key ({@linkcode nameKey}): a variant of the name names this room. */
  readonly key: string;
  /** The creator's name, for the log. */
  readonly creator: string | null;
  /** The creator's identity: who may delete the room. None for a room created without a session. */
  readonly creatorId: string | null;
  /** Names of the users in it. */
  readonly members: Set<string>;
  /** The newest messages, oldest first: most reads never touch the database. */
  readonly recent: Message[];
  /** True while `recent` holds every message of the room. */
  recentIsComplete: boolean;
  /** How many messages of the room the database holds: what deleting it costs. */
  stored: number;
  lastActivity: number;
  readonly waiters: Set<Waiter>;
}

interface Waiter {
  /** The identity of the user waiting. */
  readonly reader: string;
  readonly wake: () => void;
}

/** How long after a start a user of before the stop may rejoin without a join notice (at least). */
const RETURN_WINDOW_MS = 60_000;
/**
 * 2: notices keep their {@linkcode Text} (`notice`), so each reader gets them in their language.
 * 3: private messages and rooms keep the identities of their ends and of their creator (`sender_id`,
 * `recipient_id`, `creator_id`).
 * 4: a message keeps the key its sender gave it (`send_key`, from the header `X-Chat-Chave`), so the same message
 * sent again is stored once, across restarts too.
 * 5: the columns in English (`kind`, `sender`, `recipient`, `body`, `sender_id`, `recipient_id`, `send_key`; they
 * were named as the wire names the fields).
 */
const SCHEMA_VERSION = 5;
/**
 * A sweep's slice ends once the sessions and rooms it ended cost this many rows to write or delete (a leave
 * notice, a room's messages), committed before the next slice...
 */
const SWEEP_ROWS = 512;
/** ...or once it has run this long (ms), looking at most at this many between two looks at the clock. */
const SWEEP_SLICE_MS = 3;
const SWEEP_LOOKS = 1024;

// ---------------------------------------------------------------------------
// Storage: rooms and messages in SQLite
// ---------------------------------------------------------------------------

/**
 * A user's reads use these, so a room full of other people's private
 * messages costs no more to read than a quiet one: public messages, and
 * those to or from the reader's identity, each found by an index, never by
 * scanning. Each holds only the kind of message it finds (partial indexes),
 * so a message to the room adds to two indexes, not four: a third less time
 * a stored message (12 µs a row against 8, 20 rows a commit).
 */
export const VISIBILITY_INDEXES = `
  CREATE INDEX IF NOT EXISTS messages_public ON messages (room, id) WHERE kind = 'broadcast';
  CREATE INDEX IF NOT EXISTS messages_to_identity ON messages (room, recipient_id, id) WHERE kind = 'unicast';
  CREATE INDEX IF NOT EXISTS messages_from_identity ON messages (room, sender_id, id) WHERE kind = 'unicast';
`;

/** Runs `change` in one transaction: committed whole, or rolled back and the error thrown. */
function inTransaction(db: DatabaseSync, change: () => void): void {
  db.exec("BEGIN");
  try {
    change();
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
}

/** The visibility indexes, made again partial where a database has them whole (schemas 1 and 2). */
function renewVisibilityIndexes(db: DatabaseSync): void {
  const whole = (db.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'index' AND " +
      "name IN ('messages_public', 'messages_to_identity', 'messages_from_identity') AND sql NOT LIKE '%WHERE%'",
  ).all() as { name: string }[]).map((row) => row.name);
  if (whole.length === 0) {
    db.exec(VISIBILITY_INDEXES);
    return;
  }
  inTransaction(db, () => {
    for (const name of whole) db.exec(`DROP INDEX ${name}`);
    db.exec(VISIBILITY_INDEXES);
  });
}

/**
 * What a reader (the identity ?3) may see in a room (?1), by id: public, to
 * them, from them; each part ordered and cut. A private message whose ends
 * have no identity (stored before schema 3) is nobody's.
 */
function visibleParts(idCondition: string, order: "ASC" | "DESC"): string {
  const part = (where: string) =>
    `SELECT * FROM (SELECT * FROM messages WHERE room = ?1 AND ${where} AND ${idCondition} ` +
    `ORDER BY id ${order} LIMIT ?4)`;
  return `${part("kind = 'broadcast'")} UNION ALL ${
    part("recipient_id = ?3 AND kind = 'unicast'")
  } UNION ALL ` +
    part("sender_id = ?3 AND recipient_id IS NOT ?3 AND kind = 'unicast'");
}

/** The messages after a cursor (?2) a reader may see, oldest first, at most ?4. */
export const VISIBLE_AFTER = `SELECT * FROM (${visibleParts("id > ?2", "ASC")}) ORDER BY id LIMIT ?4`;

/** The newest messages a reader may see, oldest first, at most ?4 (?2 unused). */
export const LATEST_VISIBLE = `SELECT * FROM (SELECT * FROM (${
  visibleParts("?2 IS NULL", "DESC")
}) ORDER BY id DESC LIMIT ?4) ORDER BY id`;

/** A file's inode and device, or undefined when it is gone (or the database is in memory). */
function fileIdentity(path: string): { ino: number | null; dev: number } | undefined {
  if (path === ":memory:" || path === "") return undefined;
  try {
    const { ino, dev } = Deno.statSync(path);
    return { ino, dev };
  } catch {
    return undefined;
  }
}

/** A write waiting for the next commit. */
type Write =
  | { kind: "message"; message: Omit<Message, "id">; stored: (message: Message) => void; key?: string }
  | { kind: "room"; name: string; creator: string | null; creatorId: string | null; createdAt: number }
  | { kind: "deleteRoom"; name: string };

/**
 * Rooms and messages, durable before they are acknowledged.
 *
 * Writes are committed in groups: every write asked for during one turn of
 * the event loop goes into one transaction, committed once the turn's calls
 * have been read (`setImmediate`), so a busy server pays for one commit per
 * turn, not one per message. A write's promise settles only after its
 * transaction committed (or failed: then every write of the group fails and
 * nothing of it is applied).
 */
export class MessageStore {
  readonly #db: DatabaseSync;
  #queue: { write: Write; settle: (error?: Error) => void }[] = [];
  #commitScheduled = false;
  readonly #insertMessage;
  readonly #insertRoom;
  readonly #deleteRoom;
  readonly #deleteMessages;
  readonly #selectAfter;
  readonly #selectKey;
  readonly #selectLatest;
  readonly #path: string;
  readonly #log: Logger | undefined;
  /** The opened file's identity, to notice it deleted or replaced (undefined: in memory). */
  readonly #file: { ino: number | null; dev: number } | undefined;

  /**
   * Opens (or creates) the database at `path` (`:memory:` for a throwaway
   * one); throws a {@linkcode StoreError} that says what is wrong.
   */
  constructor(path: string, options: { synchronous?: "normal" | "full"; log?: Logger } = {}) {
    this.#log = options.log;
    try {
      this.#db = new DatabaseSync(path);
      // One server per database: the lock taken by the first write (below) is held until the server ends, so a
      // second server on the same file is refused at once instead of keeping a separate world.
      this.#db.exec("PRAGMA locking_mode = EXCLUSIVE");
      const version = Number(
        (this.#db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      );
      if (version > SCHEMA_VERSION) {
        throw new StoreError(
          `o banco ${path} tem o esquema ${version}, mais novo que o deste servidor (${SCHEMA_VERSION}); ` +
            `use um servidor mais novo ou outro --db`,
        );
      }
      this.#db.exec(`
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"};
        CREATE TABLE IF NOT EXISTS rooms (
          name TEXT PRIMARY KEY,
          creator TEXT,
          created_at INTEGER NOT NULL,
          creator_id TEXT
        );
        CREATE TABLE IF NOT EXISTS messages (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          room TEXT NOT NULL,
          kind TEXT NOT NULL,
          sender TEXT NOT NULL,
          recipient TEXT NOT NULL,
          body TEXT NOT NULL,
          timestamp INTEGER NOT NULL,
          notice TEXT,
          sender_id TEXT,
          recipient_id TEXT,
          send_key TEXT
        );
        CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
      `);
      const columnsNow = () =>
        new Set(
          (this.#db.prepare("PRAGMA table_info(messages)").all() as { name: string }[]).map((column) =>
            column.name
          ),
        );
      migrateColumnNames(this.#db, columnsNow());
      // The columns a database of an older schema lacks (each migration adds its own).
      const columns = columnsNow();
      migrateNotices(this.#db, columns);
      migrateIdentities(this.#db, columns);
      migrateSendKeys(this.#db, columns);
      this.#db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      renewVisibilityIndexes(this.#db);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      const message = (error as Error).message;
      if (/database is locked|busy/i.test(message)) {
        throw new StoreError(
          `o banco ${path} está em uso por outro servidor (um banco, um servidor); use outro --db`,
        );
      }
      if (/not a database|malformed|corrupt/i.test(message)) {
        throw new StoreError(`o arquivo ${path} não é um banco SQLite válido (corrompido?): ${message}`);
      }
      if ((error as Error).name === "NotCapable") {
        throw new StoreError(
          `sem permissão para o banco ${path}: rode com --allow-read=${path} --allow-write=${path}`,
        );
      }
      throw new StoreError(`não foi possível abrir o banco ${path}: ${message}`);
    }
    const db = this.#db;
    this.#insertMessage = db.prepare(
      "INSERT INTO messages (room, kind, sender, recipient, body, timestamp, notice, sender_id, recipient_id, " +
        "send_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#insertRoom = db.prepare(
      "INSERT INTO rooms (name, creator, created_at, creator_id) VALUES (?, ?, ?, ?)",
    );
    this.#deleteRoom = db.prepare("DELETE FROM rooms WHERE name = ?");
    this.#deleteMessages = db.prepare("DELETE FROM messages WHERE room = ?");
    this.#selectAfter = db.prepare(VISIBLE_AFTER);
    this.#selectKey = db.prepare("SELECT 1 FROM messages WHERE send_key = ?");
    this.#selectLatest = db.prepare(LATEST_VISIBLE);
    this.#path = path;
    this.#file = fileIdentity(path);
  }

  /**
   * Whether the database file is still the one opened: false once it was
   * deleted or replaced under the running server (whose writes would then go
   * nowhere anyone can read). Always true for `:memory:`.
   */
  stillOnDisk(): boolean {
    if (!this.#file) return true;
    const now = fileIdentity(this.#path);
    return now !== undefined && now.ino === this.#file.ino && now.dev === this.#file.dev;
  }

  /** Every room with its newest messages, to rebuild the state at start. */
  loadRooms(): {
    name: string;
    creator: string | null;
    creatorId: string | null;
    createdAt: number;
    recent: Message[];
    complete: boolean;
    stored: number;
  }[] {
    const rooms = this.#db.prepare("SELECT name, creator, creator_id, created_at FROM rooms").all() as {
      name: string;
      creator: string | null;
      creator_id: string | null;
      created_at: number;
    }[];
    const latest = this.#db.prepare(
      "SELECT * FROM (SELECT * FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
    );
    const count = this.#db.prepare("SELECT count(*) AS n FROM messages WHERE room = ?");
    return rooms.map((room) => {
      const recent = (latest.all(room.name, RECENT_KEPT + 1) as unknown as MessageRow[])
        .map(toMessage);
      const complete = recent.length <= RECENT_KEPT;
      if (!complete) recent.shift();
      return {
        name: room.name,
        creator: room.creator,
        creatorId: room.creator_id,
        createdAt: Number(room.created_at),
        recent,
        complete,
        stored: Number((count.get(room.name) as { n: number }).n),
      };
    });
  }

  /** The highest id ever given, so ids keep growing across restarts. */
  lastId(): number {
    const row = this.#db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get() as
      | { seq: number }
      | undefined;
    return Number(row?.seq ?? 0);
  }

  /**
   * Stores a message with the next commit; `stored` runs with it, id given,
   * right after that commit and in commit order (before the promise settles).
   */
  addMessage(message: Omit<Message, "id">, stored: (message: Message) => void, key?: string): Promise<void> {
    return this.#enqueue({ kind: "message", message, stored, key });
  }

  /** Whether a message with this send key (as the chat scopes it) is stored. */
  hasSendKey(key: string): boolean {
    return this.#selectKey.get(key) !== undefined;
  }

  /** Stores a new room with the next commit: its creator's name (for the log) and identity (who may delete it). */
  addRoom(name: string, creator: string | null, creatorId: string | null, createdAt: number): Promise<void> {
    return this.#enqueue({ kind: "room", name, creator, creatorId, createdAt });
  }

  /** Removes a room and its messages with the next commit (after the writes queued before). */
  deleteRoom(name: string): Promise<void> {
    return this.#enqueue({ kind: "deleteRoom", name });
  }

  #enqueue(write: Write): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ write, settle: (error) => error ? reject(error) : resolve() });
      if (!this.#commitScheduled) {
        this.#commitScheduled = true;
        setImmediate(() => this.commit());
      }
    });
  }

  /** Commits every queued write in one transaction now (it also happens by itself, once per turn). */
  commit(): void {
    this.#commitScheduled = false;
    const group = this.#queue;
    if (group.length === 0) return;
    this.#queue = [];
    const stored: [(message: Message) => void, Message][] = [];
    try {
      this.#db.exec("BEGIN");
      for (const { write } of group) {
        if (write.kind === "message") {
          const m = write.message;
          const { lastInsertRowid } = this.#insertMessage.run(
            m.room,
            m.tipo,
            m.origem,
            m.destino,
            m.conteudo,
            m.timestamp,
            m.notice ? storeText(m.notice) : null,
            m.fromId ?? null,
            m.toId ?? null,
            write.key ?? null,
          );
          stored.push([write.stored, { ...m, id: Number(lastInsertRowid) }]);
        } else if (write.kind === "room") {
          this.#insertRoom.run(write.name, write.creator, write.createdAt, write.creatorId);
        } else {
          this.#deleteMessages.run(write.name);
          this.#deleteRoom.run(write.name);
        }
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      const failure = new StoreError(
        `O servidor não conseguiu gravar no banco (${
          clip((error as Error).message, 120)
        }); nada foi gravado.`,
      );
      this.#log?.error(`Gravação no banco falhou (${group.length} escritas): ${(error as Error).message}`);
      for (const { settle } of group) settle(failure);
      return;
    }
    for (const [apply, message] of stored) apply(message);
    for (const { settle } of group) settle();
  }

  /** Messages of a room after an id that a reader (a user's identity) may see, oldest first. */
  visibleAfter(room: string, reader: string, cursor: number, limit: number): Message[] {
    return (this.#selectAfter.all(room, cursor, reader, limit) as unknown as MessageRow[])
      .map(toMessage);
  }

  /** The newest messages of a room that a reader (a user's identity) may see, oldest first. */
  latestVisible(room: string, reader: string, limit: number): Message[] {
    return (this.#selectLatest.all(room, null, reader, limit) as unknown as MessageRow[])
      .map(toMessage);
  }

  /** The database's path, as it was opened. */
  get path(): string {
    return this.#path;
  }

  /** Commits what is queued and closes the database (once). */
  close(): void {
    if (!this.#db.isOpen) return;
    this.commit();
    this.#db.close();
  }
}

/** A row of `messages`, as SQLite hands it out. */
interface MessageRow {
  id: number | bigint;
  room: string;
  kind: Message["tipo"];
  sender: string;
  recipient: string;
  body: string;
  timestamp: number | bigint;
  notice: string | null;
  sender_id: string | null;
  recipient_id: string | null;
}

function toMessage(row: MessageRow): Message {
  return {
    id: Number(row.id),
    room: row.room,
    tipo: row.kind,
    origem: row.sender,
    destino: row.recipient,
    conteudo: row.body,
    timestamp: Number(row.timestamp),
    notice: loadText(row.notice),
    fromId: row.sender_id ?? undefined,
    toId: row.recipient_id ?? undefined,
  };
}

/**
 * Schema 1 kept a notice as its Portuguese text only: the column for its
 * {@linkcode Text}, and the Text of every notice read back from its words
 * (a text no notice of ours ever had stays Portuguese for everyone).
 */
function migrateNotices(db: DatabaseSync, columns: ReadonlySet<string>): void {
  if (columns.has("notice")) return;
  inTransaction(db, () => {
    db.exec("ALTER TABLE messages ADD COLUMN notice TEXT");
    const update = db.prepare("UPDATE messages SET notice = ? WHERE id = ?");
    const notices = db.prepare("SELECT id, body FROM messages WHERE sender = ?").all(SERVER) as {
      id: number;
      body: string;
    }[];
    for (const { id, body } of notices) {
      const said = noticeOf(body);
      if (said) update.run(storeText(said as Text), id);
    }
  });
}

/**
 * Schema 2 kept who sent a private message, who it was for and who created
 * a room by name only, so whoever took a name later read its private
 * history and could delete its rooms. The columns for identities, left
 * empty for what is already stored: those private messages are nobody's
 * (their ends' registrations are gone with the restart, and no later holder
 * of either name may read them), and those rooms nobody's to delete (they
 * go once empty and idle). The indexes by name give way to those by
 * identity.
 */
function migrateIdentities(db: DatabaseSync, columns: ReadonlySet<string>): void {
  if (columns.has("sender_id")) return;
  inTransaction(db, () =>
    db.exec(`
      ALTER TABLE messages ADD COLUMN sender_id TEXT;
      ALTER TABLE messages ADD COLUMN recipient_id TEXT;
      ALTER TABLE rooms ADD COLUMN creator_id TEXT;
      DROP INDEX IF EXISTS messages_to;
      DROP INDEX IF EXISTS messages_from;
    `));
}

/**
 * Schema 3 kept no send keys: the column (empty for what is stored) and
 * its index, which holds only the messages that have one.
 */
function migrateSendKeys(db: DatabaseSync, columns: ReadonlySet<string>): void {
  if (!columns.has("send_key")) db.exec("ALTER TABLE messages ADD COLUMN send_key TEXT");
  db.exec(
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_by_key ON messages (send_key) WHERE send_key IS NOT NULL",
  );
}

/** Schema 4's columns and what schema 5 names them (older schemas have some of them). */
const ENGLISH_COLUMNS: readonly [string, string][] = [
  ["tipo", "kind"],
  ["origem", "sender"],
  ["destino", "recipient"],
  ["conteudo", "body"],
  ["origem_id", "sender_id"],
  ["destino_id", "recipient_id"],
  ["chave", "send_key"],
];

/**
 * Schemas 1 to 4 named the columns as the wire names the fields: each
 * renamed, in one transaction (SQLite rewrites the indexes that name them).
 */
function migrateColumnNames(db: DatabaseSync, columns: ReadonlySet<string>): void {
  const renames = ENGLISH_COLUMNS.filter(([before]) => columns.has(before));
  if (renames.length === 0) return;
  inTransaction(db, () => {
    for (const [before, after] of renames) {
      db.exec(`ALTER TABLE messages RENAME COLUMN ${before} TO ${after}`);
    }
  });
}

// ---------------------------------------------------------------------------
// State and the chat's rules
// ---------------------------------------------------------------------------

/**
 * The chat: users, sessions, rooms, messages and live delivery. No XML, no
 * HTTP, no language: it answers {@linkcode Outcome}s holding
 * {@linkcode Message}s, and what it says to people (refusals, with their
 * {@linkcode Reason}; successes; notices) is a {@linkcode Text} that
 * {@linkcode chatMethods} renders in each caller's language.
 */
export class SqliteChat implements ChatEngine<User> {
  readonly #users = new Map<string, User>();
  /** The users by their names' keys: a look-alike of a name in use is refused. */
  readonly #userKeys = new Map<string, User>();
  readonly #usersByToken = new Map<string, User>();
  readonly #rooms = new Map<string, Room>();
  /** The rooms by their names' keys: a variant of a room's name names it (the first, of rooms stored alike). */
  readonly #roomKeys = new Map<string, Room>();
  /** The rooms' names, sorted and encoded once, until the rooms change. */
  #roomNames: readonly string[] | undefined;
  /** How many rooms each creator (by identity) has now. */
  readonly #roomsByCreator = new Map<string, number>();
  /** Registrations (and rooms created without a session) by source address: one bucket each, while not full. */
  readonly #addressBuckets = new Map<string, Bucket>();
  readonly #store: MessageStore;
  readonly #options: ChatOptions;
  readonly #limits: Required<Pick<ChatOptions, keyof typeof LIMITS>>;
  readonly #log: Logger;
  #lastId: number;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  /** The sweep under way, one slice at a time (see {@linkcode SqliteChat.start}). */
  #sweeping: Generator<number> | undefined;
  /** Who was in each room when the server last stopped, as the notices tell: they come back quietly. */
  readonly #present = new Map<string, Set<string>>();
  readonly #startedAt = Date.now();
  #stopped = false;
  /** Sends on their way, by send key (scoped by the sender's name): see `#once`. */
  readonly #sending = new Map<string, Promise<Outcome<Text>>>();
  /** Rooms just deleted, for their members who were between two waits when it happened: see `#lastWordsOf`. */
  readonly #lastWords = new Map<
    string,
    { room: Room; members: Set<string>; until: number; stored: boolean }
  >();
  /** When long waits end: a wait may last up to 50 ms past its espera_ms, and thousands share few timers. */
  readonly #waitDeadlines = new Deadlines(50);

  /**
   * Opens the chat kept in the SQLite file at `path` (`:memory:` for a throwaway one); throws a
   * {@linkcode StoreError} that says what is wrong. `synchronous: "full"` syncs every commit to the disk.
   */
  static open(path: string, options: ChatOptions & { synchronous?: "normal" | "full" }): Promise<SqliteChat> {
    try {
      const store = new MessageStore(path, { synchronous: options.synchronous, log: options.log });
      return Promise.resolve(new SqliteChat(store, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The chat over a store (which it closes with itself), with the rooms and recent messages the store holds. */
  constructor(store: MessageStore, options: ChatOptions) {
    this.#store = store;
    this.#options = options;
    this.#limits = limitsOf(options);
    this.#log = options.log;
    this.#lastId = store.lastId();
    const now = Date.now();
    for (const room of store.loadRooms()) {
      this.#addRoom({
        name: room.name,
        key: nameKey(room.name),
        creator: room.creator,
        creatorId: room.creatorId,
        members: new Set(),
        recent: room.recent,
        recentIsComplete: room.complete,
        stored: room.stored,
        // A restart gives every room a fresh idle period.
        lastActivity: now,
        waiters: new Set(),
      });
      this.#present.set(room.name, presentAtStop(room.recent));
    }
  }

  /** How many rooms there are. */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** How many users are registered. */
  get userCount(): number {
    return this.#users.size;
  }

  // --- users and sessions ---------------------------------------------------

  /**
   * Registers a unique name under a new identity; the token is the proof the
   * caller will present. `source`, the caller's address, draws on that
   * address's rate limit (in-process callers pass none).
   */
  register(rawName: string, token: string, source?: string, keepsSession = false): Outcome<Text> {
    const checked = checkName("user", rawName);
    if (!checked[0]) return checked;
    const name = checked[1];
    const holder = this.#users.get(name);
    if (holder) {
      const silent = holder.waits.size
        ? undefined
        : silentHolderSeconds(Date.now() - holder.lastSeen, this.#options.sessionTtlMs);
      return refuse(
        Reason.NAME_TAKEN,
        silent ? text("nameTakenSilent", name, silent) : text("nameTaken", name),
      );
    }
    const key = nameKey(name);
    const resembled = this.#userKeys.get(key);
    if (resembled) return refuse(Reason.NAME_TAKEN, text("nameResembles", name, resembled.name));
    const mixed = checkScripts("user", name);
    if (mixed) return mixed;
    const { maxUsers } = this.#limits;
    if (this.#users.size >= maxUsers) return refuse(Reason.LIMIT_REACHED, text("usersFull", maxUsers));
    if (source !== undefined && !this.#takeAddressToken(source)) {
      return refuse(Reason.RATE_LIMITED, text("registrationsLimited", this.#options.maxRate));
    }
    const now = Date.now();
    const user: User = {
      id: crypto.randomUUID(),
      name,
      key,
      token,
      room: undefined,
      lastSeen: now,
      waits: new Set(),
      provedBySession: keepsSession,
      ...fullBucket(this.#options.maxRate, now),
      changes: fullBucket(this.#options.maxRate, now),
    };
    this.#users.set(name, user);
    this.#userKeys.set(key, user);
    this.#usersByToken.set(token, user);
    this.#log.info(`Usuário registrado: ${name}${source ? ` (de ${source})` : ""}`);
    return [true, text("registered", name)];
  }

  /** The user a caller may act as, or the refusal. Every authorized call is a sign of life. */
  authorize(session: string | undefined, rawName: string): User | Refusal {
    const user = this.#users.get(lookup(rawName));
    if (!user) return refuse(Reason.NOT_REGISTERED, text("notRegistered", quoted(rawName)));
    if (session === undefined) {
      if (!this.#options.compat || user.provedBySession) {
        return refuse(Reason.SESSION_INVALID, text("noSession"));
      }
    } else if (session !== user.token) {
      return refuse(Reason.SESSION_INVALID, text("otherSession", user.name));
    } else {
      user.provedBySession = true;
    }
    user.lastSeen = Date.now();
    return user;
  }

  /** How many users are registered, in a room or not. */
  countUsers(): number {
    return this.#users.size;
  }

  /** Nothing to do: authorizing the call was the sign of life. */
  keepAlive(_user: User): Outcome<Text> {
    return [true, text("sessionKept")];
  }

  /**
   * Ends a session: leaves the room with the usual notice, ends the user's
   * waits and frees the name (the identity goes with it: a later holder of
   * the name is someone else); `why` goes to the log.
   */
  async unregister(user: User, why: string): Promise<Outcome<Text>> {
    const notice = user.room !== undefined ? this.#leave(user) : undefined;
    if (this.#users.get(user.name) === user) this.#users.delete(user.name);
    if (this.#userKeys.get(user.key) === user) this.#userKeys.delete(user.key);
    this.#usersByToken.delete(user.token);
    for (const end of user.waits) end();
    this.#log.info(`Usuário saiu (${why}): ${user.name}`);
    await notice;
    return [true, text("goodbye", user.name)];
  }

  // --- rooms ------------------------------------------------------------------

  /**
   * Creates a room; `creator` (the user the call's session proves) may
   * delete it. Without one, only with `--compat` (the original call names no
   * user): then nobody may delete it, and the caller's address (`source`)
   * pays the rate limit.
   */
  async createRoom(rawName: string, session: string | undefined, source?: string): Promise<Outcome<Text>> {
    const creator = session === undefined ? undefined : this.#usersByToken.get(session);
    if (!creator && !this.#options.compat) return refuse(Reason.SESSION_INVALID, text("noSession"));
    const checked = checkName("room", rawName);
    if (!checked[0]) return checked;
    const name = checked[1];
    if (this.#rooms.has(name)) return refuse(Reason.ROOM_EXISTS, text("roomExists", name));
    const key = nameKey(name);
    const resembled = this.#roomKeys.get(key);
    if (resembled) return refuse(Reason.ROOM_EXISTS, text("roomResembles", name, resembled.name));
    const mixed = checkScripts("room", name);
    if (mixed) return mixed;
    const { maxRooms, maxRoomsPerUser } = this.#limits;
    if (this.#rooms.size >= maxRooms) return refuse(Reason.LIMIT_REACHED, text("roomsFull", maxRooms));
    if (creator && (this.#roomsByCreator.get(creator.id) ?? 0) >= maxRoomsPerUser) {
      return refuse(Reason.LIMIT_REACHED, text("creatorRoomsFull", maxRoomsPerUser));
    }
    const slowed = creator ? this.#slowed(creator) : this.#slowedAddress(source);
    if (slowed) return slowed;
    const now = Date.now();
    // In the map at once, so a second creation is refused while this one is being stored.
    const room: Room = {
      name,
      key,
      creator: creator?.name ?? null,
      creatorId: creator?.id ?? null,
      members: new Set(),
      recent: [],
      recentIsComplete: true,
      stored: 0,
      lastActivity: now,
      waiters: new Set(),
    };
    this.#addRoom(room);
    try {
      await this.#store.addRoom(name, room.creator, room.creatorId, now);
    } catch (error) {
      if (this.#rooms.get(name) === room) this.#removeRoom(room);
      throw error;
    }
    this.#log.info(`Sala criada: ${name}${creator ? ` (por ${creator.name})` : ""}`);
    return [true, text("roomCreated", name)];
  }

  /** Deletes a room its creator asks to delete: its members get a notice and are out. */
  async deleteRoom(user: User, roomName: string): Promise<Outcome<Text>> {
    const room = this.#findRoom(roomName);
    if (!room) return refuse(Reason.ROOM_MISSING, text("roomMissing", quoted(roomName)));
    // By identity: a later holder of the creator's name is not the creator.
    if (room.creatorId === null || room.creatorId !== user.id) {
      return refuse(Reason.NOT_CREATOR, text("notCreator", room.name));
    }
    const slowed = this.#slowed(user);
    if (slowed) return slowed;
    const notice = this.#notice(room, text("roomDeletedNotice", room.name, user.name));
    const members = new Set(room.members);
    for (const member of members) {
      const gone = this.#users.get(member);
      if (gone) gone.room = undefined;
    }
    room.members.clear();
    // Gone from the map now (nobody joins a room being deleted); from the database with the notice's
    // commit, after it. The committed notice wakes the members' waits; a member between two waits gets it
    // from the room's last words, once.
    this.#removeRoom(room, false);
    const last = { room, members, until: Date.now() + LAST_WORDS_MS, stored: false };
    this.#lastWords.set(room.name, last);
    await Promise.all([notice, this.#store.deleteRoom(room.name)]);
    last.stored = true;
    this.#log.info(`Sala excluída: ${room.name} (por ${user.name})`);
    return [true, text("roomDeleted", room.name)];
  }

  /**
   * The rooms' names, sorted: at most --max-rooms of them, sorted and encoded
   * once per change of the rooms, however many callers ask in between.
   */
  listRooms(): Outcome<readonly string[]> {
    this.#roomNames ??= encodeOnce(sortedNames(this.#rooms.keys()));
    return [true, this.#roomNames];
  }

  /** Who is in a room, sorted. */
  listMembers(roomName: string): Outcome<string[]> {
    const room = this.#findRoom(roomName);
    if (!room) return refuse(Reason.ROOM_MISSING, text("roomMissing", quoted(roomName)));
    return [true, sortedNames(room.members)];
  }

  /** Joins a room (leaving the current one first): members, recent history and the cursor. */
  async join(user: User, roomName: string): Promise<Outcome<Joined>> {
    const room = this.#findRoom(roomName);
    if (!room) return refuse(Reason.ROOM_MISSING, text("roomMissingToJoin", quoted(roomName)));
    if (user.room !== room.name) {
      const slowed = this.#slowed(user);
      if (slowed) return slowed;
      const left = user.room !== undefined ? this.#leave(user) : undefined;
      user.room = room.name;
      room.members.add(user.name);
      this.#log.info(`${user.name} entrou na sala ${room.name}`);
      // Stored before the answer, so the cursor it gives covers the notice.
      const notice = this.#returns(room.name, user.name)
        ? undefined
        : this.#notice(room, text("joinedNotice", user.name));
      await Promise.all([left, notice]);
    }
    return [true, {
      sala: room.name,
      usuarios: sortedNames(room.members),
      mensagens: this.#latest(room, user.id, HISTORY),
      cursor: this.#lastId,
    }];
  }

  /** Leaves the current room, with the usual notice. */
  async leave(user: User): Promise<Outcome<Text>> {
    const room = user.room;
    if (room === undefined) return refuse(Reason.NOT_IN_ROOM, text("inNoRoom"));
    const slowed = this.#slowed(user);
    if (slowed) return slowed;
    await this.#leave(user);
    return [true, text("leftRoom", room)];
  }

  // --- messages ---------------------------------------------------------------

  /** Posts to the user's room, or privately to one member (`recipient`); durable once it answers. */
  async send(
    user: User,
    roomName: string,
    rawText: string,
    recipient: string | null,
    key?: string,
  ): Promise<Outcome<Text>> {
    const room = this.#memberRoom(user, roomName);
    if (Array.isArray(room)) return room;
    const checked = checkText(rawText);
    if (!checked[0]) return checked;
    const message = checked[1];
    const to = recipient === null ? EVERYONE : lookup(recipient) || EVERYONE;
    const addressee = to === EVERYONE ? undefined : this.#users.get(to);
    if (to !== EVERYONE && (!addressee || !room.members.has(to))) {
      return refuse(Reason.RECIPIENT_ABSENT, text("recipientAbsent", clip(to, MAX_NAME), room.name));
    }
    return await this.#once(user, key, async (scoped) => {
      if (!this.#takeToken(user)) {
        return refuse(Reason.RATE_LIMITED, text("rateLimited", this.#options.maxRate));
      }
      await this.#post(room, message, user, addressee, undefined, scoped);
      if (to === EVERYONE) this.#log.info(`Mensagem de ${user.name} na sala ${room.name}`);
      else this.#log.info(`Mensagem privada de ${user.name} para ${to} na sala ${room.name}`);
      return [true, text("sent")];
    });
  }

  /**
   * Runs a send once per send key: the same key again (the sender never got
   * the answer) gets the first one's answer while it is on its way, and
   * "sent" once it is stored, across restarts too, without storing it twice.
   * Keys are the sender's own (scoped by name).
   */
  #once(
    user: User,
    key: string | undefined,
    send: (scoped: string | undefined) => Promise<Outcome<Text>>,
  ): Promise<Outcome<Text>> {
    if (key === undefined) return send(undefined);
    const scoped = `${user.name}\n${key}`;
    const pending = this.#sending.get(scoped);
    if (pending) return pending;
    if (this.#store.hasSendKey(scoped)) return Promise.resolve([true, text("sent")]);
    const sending = send(scoped);
    this.#sending.set(scoped, sending);
    const done = () => this.#sending.delete(scoped);
    sending.then(done, done);
    return sending;
  }

  /**
   * A private message to anyone online (our extension; `send` keeps the
   * original rule, a member of the sender's room): stored in the recipient's
   * room and, when it is another, in the sender's, so each sees it where they
   * are. Durable once it answers.
   */
  async sendPrivate(user: User, rawRecipient: string, rawText: string, key?: string): Promise<Outcome<Text>> {
    const to = this.#users.get(lookup(rawRecipient));
    if (!to) return refuse(Reason.RECIPIENT_ABSENT, text("recipientOffline", quoted(rawRecipient)));
    if (to.room === undefined) return refuse(Reason.RECIPIENT_ABSENT, text("recipientInNoRoom", to.name));
    const checked = checkText(rawText);
    if (!checked[0]) return checked;
    return await this.#once(user, key, async (scoped) => {
      if (!this.#takeToken(user)) {
        return refuse(Reason.RATE_LIMITED, text("rateLimited", this.#options.maxRate));
      }
      const rooms = [...new Set([to.room, user.room].filter((name) => name !== undefined))];
      // The key goes with the first copy (the recipient's room): one row holds it.
      await Promise.all(
        rooms.map((name, i) =>
          this.#post(this.#rooms.get(name)!, checked[1], user, to, undefined, i ? undefined : scoped)
        ),
      );
      this.#log.info(`Mensagem privada de ${user.name} para ${to.name} (${rooms.join(", ")})`);
      return [true, text("sent")];
    });
  }

  /** The original receive: a bounded recent window, so its cost does not grow with the history. */
  recentMessages(user: User, roomName: string): Outcome<Message[]> {
    const room = this.#memberRoom(user, roomName);
    if (Array.isArray(room)) return room;
    return [true, this.#latest(room, user.id, HISTORY)];
  }

  /**
   * Live delivery: the messages after `cursor` this user may see; when there
   * are none, waits up to `waitMs` for one. Never resends what a cursor
   * covers. A user holds at most --max-waits waits: one more ends the
   * oldest, which answers at once with what it has (nothing, usually).
   */
  async waitMessages(
    user: User,
    roomName: string,
    cursor: number,
    waitMs: number,
  ): Promise<Outcome<Delivery>> {
    const found = this.#memberRoom(user, roomName);
    // A room deleted a moment ago: its members read its last words (the deletion notice), once.
    const deleted = Array.isArray(found) ? this.#lastWordsOf(user, roomName, cursor) : undefined;
    if (Array.isArray(found) && !deleted) return found;
    const room: Room = deleted ?? found as Room;
    // A cursor from the future (a server that lost its database): start from now.
    if (cursor > this.#lastId) cursor = this.#lastId;
    cursor = Math.max(cursor, 0);
    let delivery = this.#after(room, user.id, cursor);
    // Once stopping, waits end at once: the server is about to close their connections.
    if (delivery.mensagens.length === 0 && waitMs > 0 && !this.#stopped) {
      if (user.waits.size >= this.#limits.maxWaits) user.waits.values().next().value!();
      await new Promise<void>((resolve) => {
        const waiter = { reader: user.id, wake: done };
        const cancel = this.#waitDeadlines.after(Math.min(waitMs, MAX_WAIT_MS), done);
        room.waiters.add(waiter);
        user.waits.add(done);
        function done() {
          cancel();
          room.waiters.delete(waiter);
          user.waits.delete(done);
          resolve();
        }
      });
      user.lastSeen = Date.now();
      delivery = this.#after(room, user.id, cursor);
    }
    return [true, delivery];
  }

  // --- housekeeping -----------------------------------------------------------

  /** Ends silent sessions and removes rooms left empty and idle: a whole sweep, now. */
  sweep(now = Date.now()): void {
    for (const _ of this.#sweep(now));
  }

  /**
   * Sweeps every `sweepEveryMs` until {@linkcode SqliteChat.stop}, in slices
   * (at most {@linkcode SWEEP_ROWS} rows written or deleted, or
   * {@linkcode SWEEP_SLICE_MS} ms, each; other calls served between them), so that expiring thousands of sessions or rooms at once never
   * holds the event loop.
   */
  start(sweepEveryMs: number): void {
    this.#sweeper ??= setInterval(() => {
      if (this.#sweeping) return;
      this.#sweeping = this.#sweep(Date.now());
      this.#sweepSlice();
    }, sweepEveryMs);
  }

  /** Tells every room with members that the service is stopping; returns how many rooms were told. */
  async announceStop(): Promise<number> {
    const notices: Promise<void>[] = [];
    for (const room of this.#rooms.values()) {
      if (room.members.size > 0) {
        notices.push(this.#notice(room, text("stoppedNotice")));
      }
    }
    // Committed (and the waits woken with them) before the waits are ended.
    await Promise.all(notices);
    return notices.length;
  }

  /** The database file and how many rooms it holds. */
  describe(): string {
    const rooms = this.#rooms.size;
    return `banco ${this.#store.path}, com ${counted(rooms, "sala", "salas")}`;
  }

  /** False once the database file was deleted or replaced under the running server. */
  stillThere(): boolean {
    return this.#store.stillOnDisk();
  }

  /** Closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Stops, commits what is pending and closes the database. */
  close(): Promise<void> {
    this.stop();
    this.#store.close();
    return Promise.resolve();
  }

  /** Ends every wait, now and from now on, and the sweeping. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#sweeping = undefined;
    for (const room of this.#rooms.values()) for (const waiter of room.waiters) waiter.wake();
  }

  // --- inner workings ---------------------------------------------------------

  /**
   * A room deleted moments ago whose member this user was, for them to read
   * its last words (the deletion notice, committed or about to be) once;
   * undefined otherwise, and the usual refusal applies.
   */
  #lastWordsOf(user: User, roomName: string, cursor: number): Room | undefined {
    const last = this.#lastWords.get(lookup(roomName));
    if (!last || last.until < Date.now() || !last.members.delete(user.name)) return undefined;
    // Once the notice is stored, a reader whose cursor is past it has read the last words already.
    if (last.stored && this.#after(last.room, user.id, cursor).mensagens.length === 0) return undefined;
    return last.room;
  }

  /** One slice of the sweep under way; the next one after other work had its turn. */
  #sweepSlice(): void {
    const sweeping = this.#sweeping;
    if (!sweeping) return;
    const end = performance.now() + SWEEP_SLICE_MS;
    let rows = 0;
    for (;;) {
      const { done, value } = sweeping.next();
      if (done) {
        this.#sweeping = undefined;
        return;
      }
      rows += value;
      if (rows >= SWEEP_ROWS || performance.now() >= end) break;
    }
    setTimeout(() => this.#sweepSlice(), 0);
  }

  /**
   * A sweep, pausing after each session or room it ends (yielding the rows
   * that costs) and every {@linkcode SWEEP_LOOKS} it looks at (yielding 0).
   */
  *#sweep(now: number): Generator<number> {
    let looked = 0;
    for (const [name, last] of this.#lastWords) if (last.until < now) this.#lastWords.delete(name);
    for (const user of this.#users.values()) {
      if (user.waits.size === 0 && now - user.lastSeen >= this.#options.sessionTtlMs) {
        const rows = user.room === undefined ? 1 : 2;
        this.unregister(user, "sessão expirada").catch((error) => this.#logStoreError(error));
        yield rows;
      } else if (++looked % SWEEP_LOOKS === 0) yield 0;
    }
    for (const room of this.#rooms.values()) {
      if (room.members.size === 0 && now - room.lastActivity >= this.#options.roomTtlMs) {
        this.#removeRoom(room);
        this.#store.deleteRoom(room.name).catch((error) => this.#logStoreError(error));
        this.#log.info(`Sala removida por inatividade: ${room.name}`);
        yield 1 + room.stored;
      } else if (++looked % SWEEP_LOOKS === 0) yield 0;
    }
    // Buckets full again are as good as none.
    for (const [address, bucket] of this.#addressBuckets) {
      if (now - bucket.tokensAt >= BURST_SECONDS * 1000) this.#addressBuckets.delete(address);
      if (++looked % SWEEP_LOOKS === 0) yield 0;
    }
  }

  #memberRoom(user: User, roomName: string): Room | Refusal {
    const room = this.#findRoom(roomName);
    if (!room) return refuse(Reason.ROOM_MISSING, text("roomMissing", quoted(roomName)));
    if (user.room !== room.name) return refuse(Reason.NOT_IN_ROOM, text("notInRoom", room.name));
    return room;
  }

  /**
   * Whether a user comes back, soon after a start, to the room they were in
   * when the server stopped: their client rejoining after a restart, which
   * needs no new join notice (they never left). Once per user and room.
   */
  #returns(room: string, user: string): boolean {
    if (!this.#present.get(room)?.delete(user)) return false;
    return Date.now() - this.#startedAt < Math.max(this.#options.sessionTtlMs, RETURN_WINDOW_MS);
  }

  /** Out of the user's room, with the usual notice. */
  #leave(user: User): Promise<void> {
    const room = this.#rooms.get(user.room!)!;
    room.members.delete(user.name);
    user.room = undefined;
    this.#log.info(`${user.name} saiu da sala ${room.name}`);
    return this.#notice(room, text("leftNotice", user.name));
  }

  /** A notice from SERVER to the room: stored in Portuguese for the original clients, and as its Text. */
  #notice(room: Room, said: Text): Promise<void> {
    return this.#post(room, render(said, "pt"), undefined, undefined, said);
  }

  /**
   * Stores a message from a user (or SERVER, with none) to the room (or to
   * one user) with the next commit; once committed (durable before anyone is
   * told), it joins the room's recent messages and wakes whoever may see it.
   * Settles after that.
   */
  #post(room: Room, conteudo: string, from?: User, to?: User, notice?: Text, key?: string): Promise<void> {
    const now = Date.now();
    room.lastActivity = now;
    return this.#store.addMessage({
      room: room.name,
      tipo: to ? "unicast" : "broadcast",
      origem: from?.name ?? SERVER,
      destino: to?.name ?? EVERYONE,
      conteudo,
      timestamp: now,
      notice,
      fromId: from?.id,
      toId: to?.id,
    }, (message) => {
      this.#lastId = message.id;
      room.stored++;
      room.recent.push(message);
      if (room.recent.length > RECENT_KEPT) {
        room.recent.shift();
        room.recentIsComplete = false;
      }
      for (const waiter of room.waiters) if (visibleTo(message, waiter.reader)) waiter.wake();
    }, key);
  }

  #after(room: Room, reader: string, cursor: number): Delivery {
    const first = room.recent[0];
    if (room.recentIsComplete || (first && cursor >= first.id - 1)) {
      return deliveryAfter(room.recent, reader, cursor);
    }
    const mensagens = this.#store.visibleAfter(room.name, reader, cursor, MAX_BATCH);
    return { mensagens, cursor: mensagens.at(-1)?.id ?? cursor };
  }

  #latest(room: Room, reader: string, count: number): Message[] {
    const visible = latestVisible(room.recent, reader, count);
    return visible.length < count && !room.recentIsComplete
      ? this.#store.latestVisible(room.name, reader, count)
      : visible;
  }

  /** A room by its name, or by a variant of it (its key). */
  #findRoom(rawName: string): Room | undefined {
    const name = lookup(rawName);
    return this.#rooms.get(name) ?? this.#roomKeys.get(nameKey(name));
  }

  /** A room into the map, counted for its creator. */
  #addRoom(room: Room): void {
    this.#rooms.set(room.name, room);
    // Rooms stored alike before the rule (their keys the same) keep their names; the first takes the key.
    if (!this.#roomKeys.has(room.key)) this.#roomKeys.set(room.key, room);
    this.#roomNames = undefined;
    if (room.creatorId !== null) {
      this.#roomsByCreator.set(room.creatorId, (this.#roomsByCreator.get(room.creatorId) ?? 0) + 1);
    }
  }

  /**
   * Forgets a room and (unless its deletion's notice will) ends any wait left
   * in it; its removal from the database is the caller's.
   */
  #removeRoom(room: Room, wake = true): void {
    this.#rooms.delete(room.name);
    if (this.#roomKeys.get(room.key) === room) this.#roomKeys.delete(room.key);
    this.#roomNames = undefined;
    const creator = room.creatorId;
    if (creator !== null) {
      const left = (this.#roomsByCreator.get(creator) ?? 1) - 1;
      if (left > 0) this.#roomsByCreator.set(creator, left);
      else this.#roomsByCreator.delete(creator);
    }
    if (wake) { for (const waiter of room.waiters) waiter.wake(); }
  }

  /** A write a timer asked for failed: the operator hears of it; nobody waits for an answer. */
  #logStoreError(error: unknown): void {
    this.#log.error(`Erro do banco: ${(error as Error).message}`);
  }

  /** A token of the user's rate limit, for a message. */
  #takeToken(user: User): boolean {
    return takeToken(user, this.#options.maxRate);
  }

  /** A token of the user's rate limit for a change other than a message; the refusal when there is none. */
  #slowed(user: User): Refusal | undefined {
    return takeToken(user.changes, this.#options.maxRate)
      ? undefined
      : refuse(Reason.RATE_LIMITED, text("actionsLimited", this.#options.maxRate));
  }

  /** A token of an address's rate limit, for a room created without a session. */
  #slowedAddress(source: string | undefined): Refusal | undefined {
    return source === undefined || this.#takeAddressToken(source)
      ? undefined
      : refuse(Reason.RATE_LIMITED, text("actionsLimited", this.#options.maxRate));
  }

  #takeAddressToken(source: string): boolean {
    let bucket = this.#addressBuckets.get(source);
    if (!bucket) {
      bucket = fullBucket(this.#options.maxRate);
      this.#addressBuckets.set(source, bucket);
    }
    return takeToken(bucket, this.#options.maxRate);
  }
}

/** The users in a room when its history ends, as its join and leave notices tell. */
function presentAtStop(messages: readonly Message[]): Set<string> {
  const present = new Set<string>();
  for (const { origem, notice } of messages) {
    if (origem !== SERVER || !notice) continue;
    if (notice.key === "joinedNotice") present.add(notice.args[0]);
    else if (notice.key === "leftNotice") present.delete(notice.args[0]);
  }
  return present;
}
