#!/usr/bin/env -S deno run --allow-net --allow-sys=networkInterfaces --allow-read=chat.db --allow-write=chat_server.log,chat.db
/**
 * The chat server: users, rooms, public and private messages, registered in
 * the binder as `ChatService`.
 *
 * ```sh
 * deno run --allow-net --allow-sys=networkInterfaces --allow-read=chat.db \
 *   --allow-write=chat_server.log,chat.db server.ts
 * deno run ... server.ts --port 0 --binder 127.0.0.1:5000 --db :memory:
 * ```
 *
 * Rooms and their messages live in SQLite (`node:sqlite`), so a restart,
 * even after `kill -9`, loses nothing that was acknowledged. Users and their
 * sessions live in memory: after a restart clients register again and carry
 * on from the cursor they hold. The operator log goes to `chat_server.log`.
 *
 * @module
 */

import {
  announceReady,
  type Bucket,
  type Call,
  type Chat,
  type ChatMessage,
  type ChatOptions,
  checkName,
  checkText,
  clip,
  ClusterChat,
  CONNECTION_FLAGS,
  CONNECTION_USAGE,
  connectionOptions,
  DatabaseSync,
  Deadlines,
  type Delivery,
  encodeOnce,
  endpointUrl,
  EVERYONE,
  firstAfter,
  forCaller,
  HISTORY,
  type HostPort,
  type Joined,
  type Lang,
  LAST_WORDS_MS,
  LIMITS,
  limitsOf,
  loadText,
  localWallClock,
  type Log,
  type Logger,
  lookup,
  MAX_BATCH,
  MAX_NAME,
  MAX_WAIT_MS,
  type Maybe,
  type Message,
  type MethodTable,
  noticeOf,
  numberFlag,
  onTerminate,
  openLog,
  type Outcome,
  ownLanAddresses,
  parseFlags,
  parseHostPortList,
  quoted,
  Reason,
  redactedUrl,
  type Refusal,
  refuse,
  REGISTER_KEY_HEADER,
  render,
  type Result,
  rpc,
  secondsFlag,
  serveOrExit,
  SERVER,
  sortedNames,
  StoreError,
  storeText,
  takeToken,
  type Text,
  text,
  usageError,
  visibleTo,
  XmlRpcClient,
} from "./deps.ts";

// The chat's shapes and rules live in deps/chat.ts (shared with the Redis store); its users import them from here.
export type { Bucket, Chat, ChatOptions, Delivery, Joined, Message } from "./deps.ts";
export { LIMITS, MAX_WAIT_MS, StoreError } from "./deps.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** A registered user, as {@linkcode ChatService.authorize} hands it to the calls that act as them. */
export interface User {
  /**
   * The identity: one per registration, never reused. Private messages and a room's creator rights belong
   * to it, not to the name, so whoever takes the name later (after `sair_do_servico`, an ended session or
   * a restart) reads none of them and deletes no room of theirs.
   */
  readonly id: string;
  /** The name, unique on this server. */
  readonly name: string;
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

const RECENT_KEPT = 200;
/** How long after a start a user of before the stop may rejoin without a join notice (at least). */
const RETURN_WINDOW_MS = 60_000;
/**
 * 2: notices keep their {@linkcode Text} (`notice`), so each reader gets them in their language.
 * 3: private messages and rooms keep the identities of their ends and of their creator (`origem_id`,
 * `destino_id`, `creator_id`).
 * 4: a message keeps the key its sender gave it (`chave`, from the header `X-Chat-Chave`), so the same message
 * sent again is stored once, across restarts too.
 */
const SCHEMA_VERSION = 4;
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
  CREATE INDEX IF NOT EXISTS messages_public ON messages (room, id) WHERE tipo = 'broadcast';
  CREATE INDEX IF NOT EXISTS messages_to_identity ON messages (room, destino_id, id) WHERE tipo = 'unicast';
  CREATE INDEX IF NOT EXISTS messages_from_identity ON messages (room, origem_id, id) WHERE tipo = 'unicast';
`;

/** The visibility indexes, made again where a database has them whole (as before they were partial). */
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
  return `${part("tipo = 'broadcast'")} UNION ALL ${
    part("destino_id = ?3 AND tipo = 'unicast'")
  } UNION ALL ` +
    part("origem_id = ?3 AND destino_id IS NOT ?3 AND tipo = 'unicast'");
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
          tipo TEXT NOT NULL,
          origem TEXT NOT NULL,
          destino TEXT NOT NULL,
          conteudo TEXT NOT NULL,
          timestamp INTEGER NOT NULL,
          notice TEXT,
          origem_id TEXT,
          destino_id TEXT,
          chave TEXT
        );
        CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id);
      `);
      // The columns a database of an older schema lacks (each migration adds its own).
      const columns = new Set(
        (this.#db.prepare("PRAGMA table_info(messages)").all() as { name: string }[]).map((column) =>
          column.name
        ),
      );
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
      "INSERT INTO messages (room, tipo, origem, destino, conteudo, timestamp, notice, origem_id, destino_id, " +
        "chave) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.#insertRoom = db.prepare(
      "INSERT INTO rooms (name, creator, created_at, creator_id) VALUES (?, ?, ?, ?)",
    );
    this.#deleteRoom = db.prepare("DELETE FROM rooms WHERE name = ?");
    this.#deleteMessages = db.prepare("DELETE FROM messages WHERE room = ?");
    this.#selectAfter = db.prepare(VISIBLE_AFTER);
    this.#selectKey = db.prepare("SELECT 1 FROM messages WHERE chave = ?");
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

  /** Commits what is queued and closes the database. */
  close(): void {
    this.commit();
    this.#db.close();
  }
}

type MessageRow = Omit<Message, "notice" | "fromId" | "toId"> & {
  notice: string | null;
  origem_id: string | null;
  destino_id: string | null;
};

function toMessage(row: MessageRow): Message {
  return {
    id: Number(row.id),
    room: row.room,
    tipo: row.tipo,
    origem: row.origem,
    destino: row.destino,
    conteudo: row.conteudo,
    timestamp: Number(row.timestamp),
    notice: loadText(row.notice),
    fromId: row.origem_id ?? undefined,
    toId: row.destino_id ?? undefined,
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
    const notices = db.prepare("SELECT id, conteudo FROM messages WHERE origem = ?").all(SERVER) as {
      id: number;
      conteudo: string;
    }[];
    for (const { id, conteudo } of notices) {
      const said = noticeOf(conteudo);
      if (said) update.run(storeText(said), id);
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
  if (columns.has("origem_id")) return;
  inTransaction(db, () =>
    db.exec(`
      ALTER TABLE messages ADD COLUMN origem_id TEXT;
      ALTER TABLE messages ADD COLUMN destino_id TEXT;
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
  if (!columns.has("chave")) db.exec("ALTER TABLE messages ADD COLUMN chave TEXT");
  db.exec("CREATE UNIQUE INDEX IF NOT EXISTS messages_by_key ON messages (chave) WHERE chave IS NOT NULL");
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
export class ChatService implements Chat<User> {
  readonly #users = new Map<string, User>();
  readonly #usersByToken = new Map<string, User>();
  readonly #rooms = new Map<string, Room>();
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
  /** The sweep under way, one slice at a time (see {@linkcode ChatService.start}). */
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

  /** The chat over a store, with the rooms and recent messages the store holds. */
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
  register(rawName: string, token: string, source?: string): Outcome<Text> {
    const checked = checkName("user", rawName);
    if (!checked[0]) return checked;
    const name = checked[1];
    if (this.#users.has(name)) return refuse(Reason.NAME_TAKEN, text("nameTaken", name));
    const { maxUsers } = this.#limits;
    if (this.#users.size >= maxUsers) return refuse(Reason.LIMIT_REACHED, text("usersFull", maxUsers));
    if (source !== undefined && !this.#takeAddressToken(source)) {
      return refuse(Reason.RATE_LIMITED, text("registrationsLimited", this.#options.maxRate));
    }
    const now = Date.now();
    const user: User = {
      id: crypto.randomUUID(),
      name,
      token,
      room: undefined,
      lastSeen: now,
      waits: new Set(),
      provedBySession: false,
      tokens: this.#options.maxRate * 2,
      tokensAt: now,
      changes: { tokens: this.#options.maxRate * 2, tokensAt: now },
    };
    this.#users.set(name, user);
    this.#usersByToken.set(token, user);
    this.#log.info(`Usuário registrado: ${name}`);
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
    const room = this.#rooms.get(lookup(roomName));
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
    const room = this.#rooms.get(lookup(roomName));
    if (!room) return refuse(Reason.ROOM_MISSING, text("roomMissing", quoted(roomName)));
    return [true, sortedNames(room.members)];
  }

  /** Joins a room (leaving the current one first): members, recent history and the cursor. */
  async join(user: User, roomName: string): Promise<Outcome<Joined>> {
    const room = this.#rooms.get(lookup(roomName));
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
    let batch = this.#after(room, user.id, cursor);
    // Once stopping, waits end at once: the server is about to close their connections.
    if (batch.length === 0 && waitMs > 0 && !this.#stopped) {
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
      batch = this.#after(room, user.id, cursor);
    }
    const next = batch.length ? batch[batch.length - 1]!.id : Math.max(cursor, 0);
    return [true, { mensagens: batch, cursor: next }];
  }

  // --- housekeeping -----------------------------------------------------------

  /** Ends silent sessions and removes rooms left empty and idle: a whole sweep, now. */
  sweep(now = Date.now()): void {
    for (const _ of this.#sweep(now));
  }

  /**
   * Sweeps every `sweepEveryMs` until {@linkcode ChatService.stop}, in slices
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
    if (last.stored && this.#after(last.room, user.id, cursor).length === 0) return undefined;
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
      if (now - bucket.tokensAt >= 2000) this.#addressBuckets.delete(address);
      if (++looked % SWEEP_LOOKS === 0) yield 0;
    }
  }

  #memberRoom(user: User, roomName: string): Room | Refusal {
    const room = this.#rooms.get(lookup(roomName));
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

  #after(room: Room, reader: string, cursor: number): Message[] {
    const first = room.recent[0];
    if (room.recentIsComplete || (first && cursor >= first.id - 1)) {
      const batch: Message[] = [];
      for (let i = firstAfter(room.recent, cursor); i < room.recent.length && batch.length < MAX_BATCH; i++) {
        const message = room.recent[i]!;
        if (visibleTo(message, reader)) batch.push(message);
      }
      return batch;
    }
    return this.#store.visibleAfter(room.name, reader, cursor, MAX_BATCH);
  }

  #latest(room: Room, reader: string, count: number): Message[] {
    const visible: Message[] = [];
    for (let i = room.recent.length - 1; i >= 0 && visible.length < count; i--) {
      if (visibleTo(room.recent[i]!, reader)) visible.push(room.recent[i]!);
    }
    if (visible.length < count && !room.recentIsComplete) {
      return this.#store.latestVisible(room.name, reader, count);
    }
    return visible.reverse();
  }

  /** A room into the map, counted for its creator. */
  #addRoom(room: Room): void {
    this.#rooms.set(room.name, room);
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
      bucket = { tokens: this.#options.maxRate * 2, tokensAt: Date.now() };
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
function withWireMessages<T extends { mensagens: Message[] }>(
  payload: T,
  language: Lang,
): Omit<T, "mensagens"> & { mensagens: Readonly<ChatMessage>[] } {
  return { ...payload, mensagens: payload.mensagens.map((message) => toWire(message, language)) };
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
export function chatMethods<U>(chat: Chat<U>): MethodTable {
  /** An outcome as the caller gets it: a refusal in its language, with its reason if it asked. */
  const answer = <T>(call: Call, outcome: Outcome<T>): Result<T> =>
    outcome[0]
      ? outcome
      : forCaller([false, render(outcome[1], call.language), outcome[2]], call.wantsReasons);
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
        return mapMaybe(chat.register(nome, token, call.remoteAddress), (outcome) => {
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
          async (user) =>
            mapOutcome(
              await chat.waitMessages(user, sala, cursor, espera),
              (delivery) => withWireMessages(delivery, call.language),
            ),
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

// ---------------------------------------------------------------------------
// The binder: registration kept alive
// ---------------------------------------------------------------------------

/**
 * Keeps `ChatService` registered in one binder: retries while the binder is
 * down and registers again every interval, so a restarted binder learns of us
 * again. With several binders (`--binder h1,h2`), one of these each: each
 * renews, fails and logs on its own.
 */
export class BinderRegistration {
  readonly #client: XmlRpcClient;
  readonly #binder: string;
  #host = "";
  readonly #port: number;
  readonly #everyMs: number;
  readonly #log: Logger;
  /** Unknown until the first attempt; then whether the last one reached the binder. */
  #registered: boolean | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;

  /**
   * Registration of our `port` in `binder`, renewed every `everyMs` once
   * started; with `registerKey` (`--register-key`), for a binder that asks
   * for one. The binder's token comes back as a cookie, which the client keeps.
   */
  constructor(binder: HostPort, port: number, everyMs: number, log: Logger, registerKey?: string) {
    this.#binder = `${binder.host}:${binder.port}`;
    this.#client = new XmlRpcClient(endpointUrl(binder.host, binder.port), {
      timeoutMs: Math.max(1000, everyMs),
      headers: registerKey === undefined ? {} : { [REGISTER_KEY_HEADER]: registerKey },
    });
    this.#port = port;
    this.#everyMs = everyMs;
    this.#log = log;
  }

  /** Starts registering as `host`, the address clients should use. */
  start(host: string): void {
    this.#host = host;
    this.#inFlight = this.#tick();
  }

  async #tick(): Promise<void> {
    try {
      const [ok, message] = await this.#client.call<[boolean, string]>("registrar_procedimento", [
        "ChatService",
        this.#host,
        this.#port,
      ]);
      if (this.#registered !== true) {
        if (ok) {
          this.#log.info(
            `Registrado no binder ${this.#binder} como ChatService em ${this.#host}:${this.#port}`,
          );
        } else {
          // The original binder refuses a second registration: that still means we are there.
          this.#log.warn(`O binder ${this.#binder} respondeu: ${message}`);
        }
      }
      this.#registered = true;
    } catch (error) {
      if (this.#registered !== false) {
        this.#log.warn(
          `Binder indisponível em ${this.#binder} (${(error as Error).message}); tentando de novo a cada ` +
            `${this.#everyMs / 1000} s`,
        );
      }
      this.#registered = false;
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => this.#inFlight = this.#tick(), this.#everyMs);
    }
  }

  /** Stops renewing and unregisters (quietly if the binder is gone or does not know the method). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#host) return;
    // A registration still on its way would otherwise land after the removal.
    await this.#inFlight;
    try {
      const [ok] = await this.#client.call<[boolean]>(
        "remover_procedimento",
        ["ChatService", this.#host, this.#port],
        { timeoutMs: 1000 },
      );
      if (ok) this.#log.info(`Removido do binder ${this.#binder}`);
    } catch {
      // Nothing to undo.
    }
  }
}

const WILDCARDS = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * The address clients should use: --advertise; else the address we listen on;
 * else our address on the way to the first binder that answers (in the order
 * given); else a LAN address of this machine.
 */
async function advertisedHost(listenHost: string, binders: HostPort[]): Promise<string> {
  if (!WILDCARDS.has(listenHost)) return listenHost;
  // All at once, so that binders that are down cost one timeout in all, not one each.
  const routes = binders.filter(({ host }) => !isLoopback(host)).map(localAddressTowards);
  for (const route of routes) {
    const local = await route;
    if (local) return local;
  }
  // None without --allow-sys=networkInterfaces: loopback only.
  return ownLanAddresses()[0] ?? "127.0.0.1";
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "::1";
}

/** Our address on a connection to `host:port`; undefined when it does not answer within a second. */
async function localAddressTowards({ host, port }: HostPort): Promise<string | undefined> {
  try {
    const connection = await Deno.connect({ hostname: host, port, signal: AbortSignal.timeout(1000) });
    connection.close();
    return (connection.localAddr as Deno.NetAddr).hostname;
  } catch {
    // Not up yet.
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

const USAGE = `server.ts: o servidor de chat do rpc-chat (ChatService)

Uso: deno run --allow-net --allow-sys=networkInterfaces --allow-read=chat.db \\
       --allow-write=chat_server.log,chat.db server.ts [opções]

Opções:
  --host H                 interface onde escutar (padrão: 0.0.0.0, todas)
  --port P                 porta (padrão: 8001; 0 escolhe uma livre e registra a real)
  --advertise H            endereço que os clientes devem usar (padrão: descoberto)
  --binder H:P[,H:P...]    onde está o binder (padrão: 127.0.0.1:5000); com vários, registra-se
                           em todos e renova cada um
  --log ARQUIVO            log de operação (padrão: chat_server.log)
  --db ARQUIVO             banco de salas e mensagens (padrão: chat.db ao lado do log;
                           :memory: para um servidor descartável)
  --store redis://H:P[/B]  o chat inteiro num Redis, compartilhado por vários servidores
                           (em vez de --db); veja "Running more than one server" no README
  --room-ttl S             remove sala vazia e parada há S segundos (padrão: 300)
  --session-ttl S          encerra sessão sem sinal de vida há S segundos (padrão: 30)
  --max-rate N             por segundo: mensagens de um usuário; outras mudanças dele (entradas,
                           saídas, salas criadas ou excluídas), à parte; registros de um endereço
                           (rajadas do dobro; padrão: 10); além disso: 'devagar'
  --max-users N            usuários registrados ao mesmo tempo (padrão: 1000); além: 'limite_atingido'
  --max-rooms N            salas (padrão: 1000); além disso: 'limite_atingido'
  --max-rooms-per-user N   salas criadas por um usuário e ainda existentes (padrão: 20)
  --max-waits N            esperas (aguardar_mensagens) pendentes por usuário; uma a mais
                           encerra a mais antiga, que responde vazia (padrão: 4)
  --register-interval S    renova o registro no binder a cada S segundos (padrão: 10)
${CONNECTION_USAGE}
  --register-key CHAVE     chave de registro que o binder pede (--register-key do binder)
  --sync normal|full       normal: nada se perde se o processo morrer; full: nem se faltar
                           energia, mais lento (padrão: normal)
  --compat                 aceita os clientes originais, que não enviam cookie de sessão (e salas
                           criadas sem sessão, que ninguém pode excluir)
  -h, --help               mostra esta ajuda

Permissões: --allow-read e --allow-write devem citar os arquivos de --db e --log. Com --store:
  --allow-net --allow-sys=networkInterfaces --allow-env=REDIS_DEBUG_MAINTENANCE --allow-write=LOG`;

function printUsage(): void {
  console.log(USAGE);
}

/** `chat.db` in the folder of the log file. */
function besideLog(log: string): string {
  const slash = Math.max(log.lastIndexOf("/"), log.lastIndexOf("\\"));
  return `${log.slice(0, slash + 1)}chat.db`;
}

/** A chat ready to serve, on either store. */
interface OpenedChat {
  /** The chat, with its housekeeping. */
  readonly chat: Chat<unknown> & {
    start(sweepEveryMs: number): void;
    announceStop(): Promise<number>;
    stop(): void;
  };
  /** Writes what is pending and lets the store go. */
  close(): void | Promise<void>;
  /** The store, as the start line in the log says it. */
  readonly store: string;
  /** False once the store is gone for good under the running server (a database file deleted). */
  stillThere(): boolean;
}

/** The chat of one server, in its SQLite file (`--db`). */
function openSqliteChat(path: string, sync: "normal" | "full", options: ChatOptions): OpenedChat {
  const store = new MessageStore(path, { synchronous: sync, log: options.log });
  const chat = new ChatService(store, options);
  return {
    chat,
    close: () => store.close(),
    store: `banco: ${path}, ${chat.roomCount} salas`,
    stillThere: () => store.stillOnDisk(),
  };
}

/** The chat shared by every server on one Redis (`--store`). */
async function openClusterChat(url: string, options: ChatOptions): Promise<OpenedChat> {
  const chat = await ClusterChat.open(url, options);
  return { chat, close: () => chat.close(), store: `Redis: ${redactedUrl(url)}`, stillThere: () => true };
}

/** Runs the server: flags, log, database, serving, registration; stops cleanly on SIGINT/SIGTERM. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const program = "server.ts";
  const flags = parseFlags(program, printUsage, args, {
    host: { type: "string", default: "0.0.0.0" },
    port: { type: "string", default: "8001" },
    advertise: { type: "string" },
    binder: { type: "string", default: "127.0.0.1:5000" },
    log: { type: "string", default: "chat_server.log" },
    db: { type: "string" },
    store: { type: "string" },
    "room-ttl": { type: "string", default: "300" },
    "session-ttl": { type: "string", default: "30" },
    "max-rate": { type: "string", default: "10" },
    "max-users": { type: "string", default: String(LIMITS.maxUsers) },
    "max-rooms": { type: "string", default: String(LIMITS.maxRooms) },
    "max-rooms-per-user": { type: "string", default: String(LIMITS.maxRoomsPerUser) },
    "max-waits": { type: "string", default: String(LIMITS.maxWaits) },
    "register-interval": { type: "string", default: "10" },
    ...CONNECTION_FLAGS,
    "register-key": { type: "string" },
    sync: { type: "string", default: "normal" },
    compat: { type: "boolean", default: false },
  });
  const port = numberFlag(program, "--port", flags.port, { min: 0, max: 65535, integer: true });
  const seconds = (flag: string, text: string) => secondsFlag(program, flag, text, 86400);
  const roomTtlMs = seconds("--room-ttl", flags["room-ttl"]);
  const sessionTtlMs = seconds("--session-ttl", flags["session-ttl"]);
  const registerEveryMs = seconds("--register-interval", flags["register-interval"]);
  const connections = connectionOptions(program, flags);
  const maxRate = numberFlag(program, "--max-rate", flags["max-rate"], { min: 0.1, max: 100000 });
  const cap = (flag: "max-users" | "max-rooms" | "max-rooms-per-user" | "max-waits", max: number) =>
    numberFlag(program, `--${flag}`, flags[flag], { min: 1, max, integer: true });
  const limits = {
    maxUsers: cap("max-users", 1_000_000),
    maxRooms: cap("max-rooms", 1_000_000),
    maxRoomsPerUser: cap("max-rooms-per-user", 1_000_000),
    maxWaits: cap("max-waits", 100),
  };
  const sync = flags.sync;
  if (sync !== "normal" && sync !== "full") usageError(program, `--sync deve ser normal ou full`);
  let binders: HostPort[];
  try {
    binders = parseHostPortList(flags.binder, 5000);
  } catch (error) {
    usageError(program, `--binder: ${(error as Error).message}`);
  }
  const dbPath = flags.db ?? besideLog(flags.log);
  if (flags.store !== undefined) {
    if (!/^rediss?:\/\/[^/\s]+(\/\d+)?\/?$/.test(flags.store)) {
      usageError(program, `--store deve ser redis://HOST:PORTA[/BANCO], não '${flags.store}'`);
    }
    if (flags.db !== undefined) {
      usageError(program, "--store e --db não combinam: um servidor usa um ou outro");
    }
  }

  let log: Log;
  try {
    log = await openLog("chat", { file: flags.log });
  } catch (error) {
    const denied = (error as Error).name === "NotCapable";
    console.error(
      denied
        ? `${program}: sem permissão para escrever o log ${flags.log}: rode com --allow-write=${flags.log}`
        : `${program}: não foi possível abrir o log ${flags.log}: ${(error as Error).message}`,
    );
    Deno.exit(1);
  }

  const options: ChatOptions = { compat: flags.compat, sessionTtlMs, roomTtlMs, maxRate, log, ...limits };
  let opened: OpenedChat;
  try {
    opened = flags.store === undefined
      ? openSqliteChat(dbPath, sync, options)
      : await openClusterChat(flags.store, options);
  } catch (error) {
    console.error(`${program}: ${(error as Error).message}`);
    await log.close();
    Deno.exit(1);
  }
  const { chat } = opened;
  const server = await serveOrExit(program, chatMethods(chat), {
    host: flags.host,
    port,
    ...connections,
    log,
  }, async () => {
    await opened.close();
    return log.close();
  });
  chat.start(Math.min(1000, sessionTtlMs / 4, roomTtlMs / 4));
  const registrations = binders.map((binder) =>
    new BinderRegistration(binder, server.addr.port, registerEveryMs, log, flags["register-key"])
  );
  const shutdown = async () => {
    log.info("Servidor encerrando...");
    // Before the waits end: whoever waits gets the notice in its answer.
    const told = await chat.announceStop().catch(() => 0);
    if (told) log.info(`Aviso de encerramento enviado a ${told} sala${told === 1 ? "" : "s"}`);
    chat.stop();
    await Promise.all(registrations.map((registration) => registration.stop()));
    await server.shutdown();
    await opened.close();
    log.info("Servidor encerrado.");
    await log.close();
  };
  // Set before the ready line: whoever waits for it may send SIGTERM at once.
  onTerminate(shutdown);
  // A database deleted or replaced under us would take every later message with it: stop and say so.
  const watchdog = setInterval(async () => {
    if (opened.stillThere()) return;
    clearInterval(watchdog);
    const problem = `o banco ${dbPath} foi apagado ou trocado enquanto o servidor rodava; encerrando`;
    log.error(problem);
    console.error(`${program}: ${problem}`);
    await shutdown().catch(() => {});
    Deno.exit(1);
  }, 1000);
  log.info(
    `Servidor ouvindo em ${flags.host}:${server.addr.port} (${opened.store}` +
      `${
        flags.compat ? ", modo compatível" : ""
      }; limites: ${limits.maxUsers} usuários, ${limits.maxRooms} ` +
      `salas, ${limits.maxRoomsPerUser} por criador, ${limits.maxWaits} esperas por usuário, ${maxRate}/s)`,
  );
  announceReady({ programa: "server", host: flags.host, porta: server.addr.port });
  const host = flags.advertise ?? await advertisedHost(flags.host, binders);
  for (const registration of registrations) registration.start(host);
}

if (import.meta.main) await main();
