/**
 * HTTP/1.1 for the binder and the chat server, on a listener of our own.
 *
 * `Deno.serve` has no cap on open connections and no timeout for a request's
 * head: idle connections as many as the file limit made it stop accepting
 * (`Too many open files`) and the program die. Here every connection is ours
 * to count and to close:
 *
 * - at most {@linkcode HttpServeOptions.maxConnections} open at once, below the
 *   file limit (checked at start and as connections grow: {@linkcode freeFiles});
 *   past the cap a new connection takes the place of the one idle the longest,
 *   or, when every one is busy with a request, is refused with 503 and closed;
 * - a request's head must arrive within `headerTimeoutMs` (408), a kept-alive
 *   connection with no request for `idleTimeoutMs` is closed, and so is one
 *   whose client does not take its answer within `writeTimeoutMs`;
 * - when the system refuses a file anyway, accepting waits a moment, the cap
 *   drops below the connections open and idle ones make room: the program
 *   never dies of it.
 *
 * Requests reach the handler as an {@linkcode IncomingRequest}, the part of a
 * `Request` it reads (so a handler runs under `Deno.serve` unchanged), and
 * answers are `Response`s. Bodies of a declared length or chunked; pipelined
 * requests in order; `Expect: 100-continue`; HTTP/1.0 with or without
 * keep-alive.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { describeError, type Logger } from "../program/log.ts";

/** What a handler reads of a request: a `Request` has all of it, and so has the lighter one served here. */
export interface IncomingRequest {
  /** `GET`, `POST`... */
  readonly method: string;
  /** `http://` + the Host header + the path exactly as sent. */
  readonly url: string;
  /** Its headers, by name in any case. */
  readonly headers: { get(name: string): string | null };
  /** The body as it arrives; null when there is none. */
  readonly body: ReadableStream<Uint8Array> | null;
  /** The whole body. */
  bytes(): Promise<Uint8Array>;
  /**
   * The whole body when it is here already (a small one usually is, read with
   * its head), taken without a wait; undefined when it is not (then
   * {@linkcode IncomingRequest.bytes} waits for it). Optional: `Request` has none.
   */
  bytesAtHand?(): Uint8Array | undefined;
}

/** Who is calling: the part of `Deno.ServeHandlerInfo` a handler reads. */
export interface ConnectionInfo {
  /** The client's address. */
  readonly remoteAddr: Deno.NetAddr;
}

/** An answer as plain data: cheaper to write than a `Response`, which a handler may return as well. */
export interface PlainResponse {
  /** The status code. */
  readonly status: number;
  /** Its headers, by lowercase name (`content-length` and `connection` are the server's). */
  readonly headers: Readonly<Record<string, string>>;
  /** The body: text is sent as UTF-8. */
  readonly body: string | Uint8Array | null;
}

/** Turns a request into a response. */
export type HttpHandler = (
  request: IncomingRequest,
  info: ConnectionInfo,
) => Response | PlainResponse | Promise<Response | PlainResponse>;

/** A plain answer as a `Response`, for `Deno.serve`. */
export function toResponse(answer: Response | PlainResponse): Response {
  if (answer instanceof Response) return answer;
  return new Response(answer.body as BodyInit | null, { status: answer.status, headers: answer.headers });
}

/** Where to listen, the limits, and the log. */
export interface HttpServeOptions {
  /** The interface to listen on (`0.0.0.0`: all). */
  hostname: string;
  /** The port (0: a free one). */
  port: number;
  /** At most this many connections at once (default and ceiling: what the file limit allows). */
  maxConnections?: number;
  /** A request's head (request line and headers) must arrive within this (default 10 s): else 408. */
  headerTimeoutMs?: number;
  /** A kept-alive connection with no new request for this long is closed (default 30 s). */
  idleTimeoutMs?: number;
  /** A client must take its answer within this (default 10 s): else the connection is closed. */
  writeTimeoutMs?: number;
  /**
   * After a refusal that leaves a request unread (413, 431, 408, 400), at most this many of its bytes
   * are read and dropped before the connection closes (default {@linkcode LINGER_BYTES}).
   */
  lingerBytes?: number;
  /** ... and for this long at most (default {@linkcode LINGER_MS}). */
  lingerMs?: number;
  /** Where the limits and their refusals are reported (summed up, at most one line every 10 s). */
  log: Logger;
}

/** Files a server leaves for everything but its connections: the log, the database, the binder's probes... */
const RESERVED_FILES = 64;
/** The most connections by default, where the files allow more. */
const DEFAULT_MAX_CONNECTIONS = 16_384;
/** The files are first checked for this many connections (at start), then for four times as many each time... */
const FIRST_CHECK = 64;
/** ... opening this many sockets at most (about 50 ms): past a thousand connections, the steps are smaller. */
const MAX_CHECK = 2048;
const MAX_HEAD = 16 * 1024;
/** A connection keeps its last head, to see it again without parsing it, when it is at most this long. */
const KEPT_HEAD = 1024;
const MAX_HEADERS = 100;
const READ_CHUNK = 4096;
const BODY_CHUNK = 64 * 1024;
const SUMMARY_EVERY_MS = 10_000;
/** Refused connections given a moment to read their 503, at most this many at once. */
const MAX_REFUSING = 16;
/**
 * The lingering close after a refusal: bytes of the refused request read and dropped at most, so that
 * a client sending a body of tens of megabytes still reads its 413 (32 MiB, some seconds on a LAN).
 */
export const LINGER_BYTES = 32 * 1024 * 1024;
/** ... and the time it may take at most, in all (nginx: 30 s in all, 5 s at most between reads). */
export const LINGER_MS = 5_000;

/**
 * The file limit and the files open now, from `/proc/self/limits` and
 * `/proc/self/fd`, where this process may read them (Deno asks `--allow-all`
 * for it); else undefined. The permission is queried first, never requested:
 * a program run without `--no-prompt` must not stop at a prompt for it.
 */
function procFiles(): { limit: number; open: number } | undefined {
  try {
    for (const path of ["/proc/self/limits", "/proc/self/fd"]) {
      if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
    }
    const limit = /^Max open files\s+(\d+|unlimited)/m.exec(Deno.readTextFileSync("/proc/self/limits"))?.[1];
    if (!limit) return undefined;
    return {
      limit: limit === "unlimited" ? Infinity : Number(limit),
      open: [...Deno.readDirSync("/proc/self/fd")].length,
    };
  } catch {
    return undefined;
  }
}

/**
 * How many more files this process may open, counting to `max` at most: it
 * opens loopback sockets until the system refuses one (or `max` are open),
 * and closes them. About 20 µs a socket. Stopped by anything else (no port
 * free), it learns nothing and says `max`.
 */
function freeFiles(max: number): number {
  const held: Deno.Listener[] = [];
  try {
    while (held.length < max) held.push(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
    return max;
  } catch (error) {
    return outOfFiles(error) ? held.length : max;
  } finally {
    for (const listener of held) listener.close();
  }
}

/** Files kept for everything but connections, with `connections` open. */
function reserveFor(connections: number): number {
  return RESERVED_FILES + Math.floor(connections / 16);
}

/** The system refused a file: EMFILE (this process) or ENFILE (the whole system). */
export function outOfFiles(error: unknown): boolean {
  return /too many open files|os error 2[34]\b/i.test(String((error as Error)?.message ?? error));
}

/** A running server: its address, its load, and a way to stop it. */
export interface HttpServer {
  /** Where it listens (the real port with port 0). */
  readonly addr: Deno.NetAddr;
  /** The cap on open connections in force (it drops if the system refuses files). */
  readonly maxConnections: number;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting, closes idle connections, lets busy ones answer, then resolves. */
  shutdown(): Promise<void>;
  /** Resolves once the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
}

/** Serves `handler` on `hostname:port`; throws at once when the address cannot be bound. */
export function serveHttp(options: HttpServeOptions, handler: HttpHandler): HttpServer {
  return new Server(options, handler);
}

const REASON_PHRASES: Record<number, string> = {
  100: "Continue",
  200: "OK",
  204: "No Content",
  302: "Found",
  304: "Not Modified",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  417: "Expectation Failed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};
const encoder = new TextEncoder();
// Heads are ASCII: UTF-8 decodes them three times faster than latin1 does (anything else becomes U+FFFD).
const utf8 = new TextDecoder();
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");

/** A refusal before any handler: plain text, and the connection closes. */
function plain(status: number, text: string, extra = ""): Uint8Array {
  const reason = REASON_PHRASES[status] ?? "Status";
  const length = encoder.encode(text).length;
  return encoder.encode(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${length}\r\n` +
      `connection: close\r\n${extra}\r\n${text}`,
  );
}

const FULL = plain(
  503,
  "Servidor cheio: conexões demais abertas. Tente de novo em instantes.\n",
  "retry-after: 1\r\n",
);

class Server implements HttpServer {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly handler: HttpHandler;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly lingerBytes: number;
  readonly lingerMs: number;
  /** The `date` header, updated every second. */
  date = new Date().toUTCString();
  /**
   * The last text body answered, and its bytes once it came twice: a room's message answers its members' waits
   * with one string, encoded once for all of them.
   */
  lastBody: { text: string; bytes: Uint8Array | undefined } = { text: "", bytes: undefined };
  /** Every open connection. */
  readonly open = new Set<Connection>();
  /** Connections done, closing once their client has read the answer: the first to make room. */
  readonly lingering = new Set<Connection>();
  /** Connections waiting for a request, the longest waiting first (a Map keeps insertion order). */
  readonly idle = new Map<Connection, true>();
  closing = false;
  /** Connections closed whose socket a read or write still holds: their files are not free yet. */
  releasing = 0;
  #releaseWaiters: (() => void)[] = [];
  readonly #listener: Deno.TcpListener;
  readonly #log: Logger;
  #cap: number;
  /** Connections the files were seen to suffice for. */
  #checkedUpTo = 0;
  /** The cap before the system refused a file: the cap climbs back to it once files are refused no more. */
  #fullCap: number;
  #sweeper: ReturnType<typeof setInterval>;
  /** Expiry decided a turn of the event loop after the sweep that found it due (see {@linkcode #sweep}). */
  #expiring: ReturnType<typeof setTimeout> | undefined;
  #allClosed: (() => void) | undefined;
  #evicted = 0;
  #refused = 0;
  #refusing = 0;
  #lastSummary = 0;
  #lastLowered = 0;
  #lastRefusedFile = 0;
  #dated = 0;

  constructor(options: HttpServeOptions, handler: HttpHandler) {
    this.handler = handler;
    this.#log = options.log;
    this.headerTimeoutMs = options.headerTimeoutMs ?? 10_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.writeTimeoutMs = options.writeTimeoutMs ?? 10_000;
    this.lingerBytes = options.lingerBytes ?? LINGER_BYTES;
    this.lingerMs = options.lingerMs ?? LINGER_MS;
    const asked = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#cap = asked;
    let files: string;
    const proc = procFiles();
    if (proc) {
      this.#cap = Math.max(1, Math.min(asked, proc.limit - proc.open - reserveFor(proc.limit - proc.open)));
      this.#checkedUpTo = this.#cap;
      files = `o sistema permite ${proc.limit} arquivos abertos, ${proc.open} já em uso`;
    } else {
      // Checked before listening: the checks' sockets come and go before the first client.
      files = this.#checkFiles(0) ??
        `arquivos livres do sistema conferidos para as primeiras ${this.#checkedUpTo}, de novo quando vierem mais`;
    }
    this.#fullCap = this.#cap;
    this.#listener = Deno.listen({ hostname: options.hostname, port: options.port });
    this.addr = this.#listener.addr;
    this.#log.info(
      `Conexões: no máximo ${this.#cap} abertas ao mesmo tempo (${files}` +
        `${
          options.maxConnections !== undefined && asked > this.#cap
            ? `; --max-connections ${asked} não cabe`
            : ""
        }); ` +
        `uma conexão ociosa fecha após ${this.idleTimeoutMs / 1000} s, cabeçalhos devem chegar em até ${
          this.headerTimeoutMs / 1000
        } s`,
    );
    // Deadlines are kept to a quarter of the shortest timeout (and a second at most) late.
    const sweepMs = Math.max(50, Math.min(1000, Math.min(this.headerTimeoutMs, this.idleTimeoutMs) / 4));
    this.#sweeper = setInterval(() => this.#sweep(), sweepMs);
    this.finished = this.#accept();
  }

  /**
   * Whether the files allow the next step of connections (four times as many
   * as last checked): `/proc/self/limits` takes `--allow-all`, so the program
   * sees how many sockets it can still open, as the connections grow. Where
   * they fall short, the cap comes down below them for good; returns what
   * was found then, for the log.
   */
  #checkFiles(inUse: number): string | undefined {
    const target = Math.min(this.#cap, Math.max(FIRST_CHECK, this.#checkedUpTo * 4));
    const needed = Math.min(MAX_CHECK, target - inUse + reserveFor(target));
    const free = freeFiles(needed);
    if (free >= needed) {
      this.#checkedUpTo = Math.min(target, inUse + needed - reserveFor(inUse + needed));
      return undefined;
    }
    this.#cap = Math.max(1, Math.min(this.#cap, inUse + free - reserveFor(inUse + free)));
    this.#checkedUpTo = this.#cap;
    return `${free} arquivos livres com ${inUse} conexões abertas (ulimit -n)`;
  }

  /** A handler threw instead of answering: a bug, logged whole; the client gets 500. */
  handlerFailed(error: unknown): void {
    this.#log.error(`Erro interno no HTTP: ${describeError(error)}`);
  }

  get maxConnections(): number {
    return this.#cap;
  }

  get connections(): number {
    return this.open.size;
  }

  async shutdown(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      try {
        this.#listener.close();
      } catch {
        // Closed already.
      }
      for (const connection of [...this.idle.keys(), ...this.lingering]) connection.close();
    }
    await this.finished;
  }

  /** A connection closed: it leaves the books at once, so the cap sees the room it made. */
  forget(connection: Connection): void {
    this.open.delete(connection);
    this.idle.delete(connection);
    this.lingering.delete(connection);
    if (this.open.size === 0) this.#allClosed?.();
  }

  /** A closed connection's socket is gone: its file is free. */
  released(): void {
    this.releasing--;
    const waiters = this.#releaseWaiters;
    this.#releaseWaiters = [];
    for (const wake of waiters) wake();
  }

  async #accept(): Promise<void> {
    for (;;) {
      // Files of closed connections come back a turn of the event loop later; accepting many in one
      // turn, evicting as many, would run out of files meanwhile. So they count until they are back.
      while (this.releasing > 0 && this.open.size + this.releasing >= this.#cap) {
        await new Promise<void>((resolve) => this.#releaseWaiters.push(resolve));
      }
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.closing) break;
        if (outOfFiles(error)) this.#outOfFiles();
        else this.#log.warn(`Erro ao aceitar conexão: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      if (this.closing) {
        conn.close();
        break;
      }
      try {
        this.#admit(conn);
      } catch (error) {
        // A bug: logged, the connection dropped, and accepting goes on.
        this.handlerFailed(error);
        try {
          conn.close();
        } catch {
          // Closed.
        }
      }
    }
    // Busy connections answer and close; the sweeper still times out those that stall.
    if (this.open.size) await new Promise<void>((resolve) => this.#allClosed = resolve);
    clearInterval(this.#sweeper);
    clearTimeout(this.#expiring);
  }

  #admit(conn: Deno.TcpConn): void {
    const inUse = this.open.size + this.releasing;
    if (inUse >= this.#checkedUpTo && this.#checkedUpTo < this.#cap) {
      const found = this.#checkFiles(inUse);
      if (found) {
        this.#fullCap = this.#cap;
        this.#log.warn(`Conexões: no máximo ${this.#cap} abertas de agora em diante (${found})`);
      }
    }
    if (this.open.size + this.releasing >= this.#cap && !this.#makeRoom(1)) {
      this.#refuse(conn);
      return;
    }
    try {
      conn.setNoDelay(true);
    } catch {
      // Gone already: the first read says so.
    }
    const connection = new Connection(this, conn);
    this.open.add(connection);
    connection.run();
  }

  /**
   * Every connection is busy: 503, and a moment for the client to read it
   * (closing with its request unread would reset the connection first). A
   * few at a time; past those, closed at once.
   */
  #refuse(conn: Deno.TcpConn): void {
    this.#refused++;
    const close = () => {
      try {
        conn.close();
      } catch {
        // Closed.
      }
    };
    if (this.#refusing >= MAX_REFUSING) return close();
    this.#refusing++;
    const timer = setTimeout(close, 1000);
    (async () => {
      // The answer follows the request: a client answered before it has sent anything calls it an error.
      const sink = new Uint8Array(READ_CHUNK);
      const first = conn.read(sink);
      let waited: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([first, new Promise((resolve) => waited = setTimeout(resolve, 200))]);
      clearTimeout(waited);
      await conn.write(FULL);
      await conn.closeWrite();
      if (await first === null) return;
      for (let drained = 0; drained < BODY_CHUNK;) {
        const n = await conn.read(sink);
        if (n === null) break;
        drained += n;
      }
    })().catch(() => {}).finally(() => {
      this.#refusing--;
      clearTimeout(timer);
      close();
    });
  }

  /** Closes up to `count` idle connections, the longest idle first; whether it made that much room. */
  #makeRoom(count: number): boolean {
    for (const connection of this.lingering) {
      if (count <= 0) break;
      connection.close();
      count--;
    }
    for (const connection of this.idle.keys()) {
      if (count <= 0) break;
      connection.close();
      this.#evicted++;
      count--;
    }
    return count <= 0;
  }

  /** The system refused a file: hold fewer connections than now, and make room among the idle. */
  #outOfFiles(): void {
    const open = this.open.size;
    const lowered = Math.max(1, open - Math.max(8, Math.ceil(open / 16)));
    const now = Date.now();
    this.#lastRefusedFile = now;
    if (lowered < this.#cap) {
      this.#cap = lowered;
      if (now - this.#lastLowered >= SUMMARY_EVERY_MS) {
        this.#lastLowered = now;
        this.#log.warn(
          `O sistema recusou um arquivo com ${open} conexões abertas: no máximo ${lowered} de agora em diante`,
        );
      }
    }
    this.#makeRoom(this.open.size + this.releasing - this.#cap);
  }

  #sweep(): void {
    const now = Date.now();
    if (now - this.#dated >= 1000) {
      this.#dated = now;
      this.date = new Date(now).toUTCString();
    }
    if (this.#cap < this.#fullCap && now - this.#lastRefusedFile >= SUMMARY_EVERY_MS) {
      // Files are given again (whatever held them let go): back up, a step a second.
      this.#cap = Math.min(this.#fullCap, this.#cap + Math.ceil(this.#fullCap / 32));
    }
    const due: Connection[] = [];
    for (const connection of this.open) {
      if (connection.deadline && now >= connection.deadline) due.push(connection);
    }
    if (due.length && this.#expiring === undefined) {
      // Decided a turn of the event loop later: timers run before reads that completed while the loop
      // was held (a big body parsed, say), and a connection whose request is here would pass for a
      // silent one. A read that came meanwhile moved its deadline.
      this.#expiring = setTimeout(() => {
        this.#expiring = undefined;
        const later = Date.now();
        for (const connection of due) {
          if (this.open.has(connection) && connection.deadline && later >= connection.deadline) {
            connection.expire();
          }
        }
      }, 0);
    }
    if (now - this.#lastSummary >= SUMMARY_EVERY_MS && (this.#evicted || this.#refused)) {
      this.#lastSummary = now;
      this.#log.warn(
        `Conexões no limite (${this.#cap}): ${this.#evicted} ociosas fechadas para dar lugar a novas, ` +
          `${this.#refused} recusadas (503) nos últimos ${SUMMARY_EVERY_MS / 1000} s`,
      );
      this.#evicted = this.#refused = 0;
    }
  }
}

/** Waiting for a request, reading one, answering it. */
const enum State {
  /** No byte of the next request yet. */
  Waiting,
  /** Part of a request's head. */
  Head,
  /** The handler has it. */
  Busy,
}

class BadRequest extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The connection ended in the middle of a body. */
class Interrupted extends Error {}

/** A head took too long: its 408 is on its way, and the connection lingers. */
class TimedOut extends Error {}

/** One client connection: its buffer, its state, and the requests on it, one after the other. */
class Connection {
  readonly #server: Server;
  readonly #conn: Deno.TcpConn;
  readonly #info: ConnectionInfo;
  /** Unread bytes are `#buffer[#start, #end)`. */
  #buffer = new Uint8Array(READ_CHUNK);
  #start = 0;
  #end = 0;
  #state = State.Waiting;
  #closed = false;
  /** Reads and writes on their way: until they end, a closed connection still holds its file. */
  #ops = 0;
  #releasing = false;
  /** A 408 went out while a read of the head was on its way: that read's bytes are dropped, and so on. */
  #timedOut = false;
  /** When the connection must have moved on (ms since the epoch); 0 for none. */
  deadline: number;
  /** The last head read, as bytes and parsed: a client repeating its call sends the same head again. */
  #lastHead: { bytes: Uint8Array; parsed: ParsedHead } | undefined;

  constructor(server: Server, conn: Deno.TcpConn) {
    this.#server = server;
    this.#conn = conn;
    this.#info = { remoteAddr: conn.remoteAddr };
    // A new connection's first request must come as fast as any request's head.
    this.deadline = Date.now() + server.headerTimeoutMs;
    server.idle.set(this, true);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.forget(this);
    // A read or write on its way holds the socket until it ends, a turn of the event loop later.
    if (this.#ops > 0) {
      this.#releasing = true;
      this.#server.releasing++;
    }
    try {
      this.#conn.close();
    } catch {
      // Closed by the client first.
    }
  }

  /**
   * Past its deadline: a partial head gets 408 and a lingering close (the read on its way sees
   * `#timedOut`); a silent or stuck connection, or one lingering too long, just closes.
   */
  expire(): void {
    if (this.#state === State.Head) {
      this.#timedOut = true;
      this.#startLingering();
      const answer = plain(408, "Tempo esgotado recebendo a requisição.\n");
      this.#writeAll(answer).then(() => this.#closeWrite()).catch(() => this.close());
      return;
    }
    this.close();
  }

  async run(): Promise<void> {
    try {
      for (;;) {
        const request = await this.#readHead();
        if (!request) break;
        const keepAlive = await this.#answer(request);
        if (!keepAlive) {
          if (request.remaining) await this.#linger(request.chunked ? undefined : request.remaining);
          break;
        }
        if (this.#server.closing) break;
        this.#waiting();
      }
    } catch (error) {
      if (error instanceof TimedOut) {
        await this.#drain(undefined);
      } else if (error instanceof BadRequest && !this.#closed) {
        this.#server.idle.delete(this);
        this.#state = State.Busy;
        await this.#write(plain(error.status, `${error.message}\n`)).catch(() => {});
        await this.#linger(undefined);
      }
    } finally {
      this.close();
    }
  }

  #waiting(): void {
    this.#state = this.#start < this.#end ? State.Head : State.Waiting;
    this.deadline = Date.now() +
      (this.#state === State.Head ? this.#server.headerTimeoutMs : this.#server.idleTimeoutMs);
    this.#server.idle.set(this, true);
  }

  /**
   * The lingering close (RFC 9112, 9.6, as nginx does it) after an answer that leaves the request
   * unread (413, 431, 400, 408): the answer is out, so stop writing, then read and drop what the
   * client still sends until it closes, or until `bodyLeft` (the rest of a body of known length) has
   * come, within the server's `lingerBytes` and `lingerMs`. A client that reads only once it has sent
   * its whole body (Python's `http.client`) reads its answer then: closing with bytes unread would
   * reset the connection, and a reset throws away the answer the client has not read yet. Room for
   * new connections is made from these first.
   */
  async #linger(bodyLeft: number | undefined): Promise<void> {
    this.#startLingering();
    try {
      await this.#closeWrite();
    } catch {
      return;
    }
    await this.#drain(bodyLeft);
  }

  /** Lingering from now: a deadline of its own, and among the first closed to make room. */
  #startLingering(): void {
    this.#state = State.Busy;
    this.#server.idle.delete(this);
    this.#server.lingering.add(this);
    this.deadline = Date.now() + this.#server.lingerMs;
  }

  async #closeWrite(): Promise<void> {
    this.#ops++;
    try {
      await this.#conn.closeWrite();
    } finally {
      this.#opDone();
    }
  }

  /** Reads and drops up to `lingerBytes` (the buffered bytes count), to the end or to `bodyLeft`. */
  async #drain(bodyLeft: number | undefined): Promise<void> {
    let budget = this.#server.lingerBytes;
    let wanted = bodyLeft ?? Infinity;
    const buffered = Math.min(wanted, this.#end - this.#start);
    wanted -= buffered;
    budget -= this.#end - this.#start;
    this.#start = this.#end = 0;
    const sink = new Uint8Array(BODY_CHUNK);
    try {
      while (wanted > 0 && budget > 0) {
        const n = await this.#read(sink);
        if (n === null) return;
        wanted -= n;
        budget -= n;
      }
    } catch {
      // Closed: the deadline, or the client.
    }
  }

  async #read(into: Uint8Array): Promise<number | null> {
    this.#ops++;
    try {
      return await this.#conn.read(into);
    } finally {
      this.#opDone();
    }
  }

  async #writeSome(bytes: Uint8Array): Promise<number> {
    this.#ops++;
    try {
      return await this.#conn.write(bytes);
    } finally {
      this.#opDone();
    }
  }

  #opDone(): void {
    if (--this.#ops === 0 && this.#releasing) {
      this.#releasing = false;
      this.#server.released();
    }
  }

  /** Makes room after the unread bytes for a read, when the buffer is full. */
  #makeRoom(): void {
    if (this.#end === this.#buffer.length) {
      const unread = this.#end - this.#start;
      if (this.#start > 0 && unread < this.#buffer.length / 2) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = new Uint8Array(this.#buffer.length * 2);
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      }
      this.#start = 0;
      this.#end = unread;
    }
  }

  /** Reads more bytes after the unread ones; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    this.#makeRoom();
    const n = await this.#read(this.#buffer.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** The next request's head, parsed; null when the client closed between requests. */
  async #readHead(): Promise<Request1 | null> {
    let scanned = this.#start;
    for (;;) {
      // Blank lines before a request line are allowed (RFC 9112, 2.2).
      while (
        this.#start < this.#end && (this.#buffer[this.#start] === 13 || this.#buffer[this.#start] === 10)
      ) {
        this.#start++;
      }
      if (this.#start === this.#end) this.#start = this.#end = scanned = 0;
      const window = this.#buffer.subarray(0, this.#end);
      let lf = window.indexOf(10, Math.max(this.#start + 3, scanned));
      while (lf !== -1) {
        if (window[lf - 1] === 13 && window[lf - 2] === 10 && window[lf - 3] === 13) {
          if (lf - this.#start >= MAX_HEAD) throw new BadRequest(431, "Cabeçalhos grandes demais.");
          const bytes = window.subarray(this.#start, lf + 1);
          this.#start = lf + 1;
          this.#state = State.Busy;
          this.deadline = 0;
          this.#server.idle.delete(this);
          const last = this.#lastHead;
          let parsed: ParsedHead;
          if (last !== undefined && Buffer.compare(last.bytes, bytes) === 0) parsed = last.parsed;
          else {
            parsed = parseHead(utf8.decode(bytes));
            // Kept when small, as a client's calls are: 16,384 connections never hold 16 KB heads each.
            this.#lastHead = bytes.length <= KEPT_HEAD ? { bytes: bytes.slice(), parsed } : undefined;
          }
          const { method, target, http10, headers } = parsed;
          return new Request1(this, method, target, http10, headers);
        }
        lf = window.indexOf(10, lf + 1);
      }
      scanned = Math.max(this.#start, this.#end - 3);
      if (this.#end - this.#start > MAX_HEAD) throw new BadRequest(431, "Cabeçalhos grandes demais.");
      const wasWaiting = this.#state === State.Waiting && this.#start === this.#end;
      // #fill inlined: the read of every request, one async frame fewer each.
      this.#makeRoom();
      let n: number | null;
      this.#ops++;
      try {
        n = await this.#conn.read(this.#buffer.subarray(this.#end));
      } finally {
        this.#opDone();
      }
      if (this.#timedOut) throw new TimedOut();
      if (n === null) {
        if (this.#start === this.#end) return null;
        throw new Interrupted();
      }
      this.#end += n;
      if (wasWaiting) {
        // The first byte of a request: its head has the header timeout from now.
        this.#state = State.Head;
        this.deadline = Date.now() + this.#server.headerTimeoutMs;
      }
    }
  }

  /** Runs the handler and writes its answer; whether the connection may carry another request. */
  async #answer(request: Request1): Promise<boolean> {
    let status: number;
    let body: string | Uint8Array | null;
    let head: string;
    try {
      const pending = this.#server.handler(request, this.#info);
      const answer = pending instanceof Promise ? await pending : pending;
      status = answer.status;
      head = `HTTP/1.1 ${status} ${REASON_PHRASES[status] ?? "Status"}\r\ndate: ${this.#server.date}\r\n`;
      if (answer instanceof Response) {
        body = answer.body === null ? null : await answer.bytes();
        for (const [name, value] of answer.headers) head += headerLine(name, value);
      } else {
        body = answer.body;
        for (const name in answer.headers) head += headerLine(name, answer.headers[name]!);
      }
    } catch (error) {
      this.#server.handlerFailed(error);
      status = 500;
      body = "Erro interno.\n";
      head = `HTTP/1.1 500 ${REASON_PHRASES[500]}\r\ndate: ${this.#server.date}\r\n` +
        "content-type: text/plain; charset=utf-8\r\n";
    }
    const keepAlive = request.keepAlive && !this.#server.closing && this.#skipUnread(request);
    const withoutBody = request.method === "HEAD" || status === 204 || status === 304 || status < 200;
    if (withoutBody) body = null;
    const connection = !keepAlive
      ? "connection: close\r\n"
      : request.http10
      ? "connection: keep-alive\r\n"
      : "";
    let out: Uint8Array;
    if (typeof body === "string") {
      // A body just answered (the same string, or one alike) is encoded once; otherwise head and an ASCII body are
      // encoded at once (its length in bytes is its length), and other text on its own first, for that length.
      const last = this.#server.lastBody;
      if (body === last.text) {
        last.bytes ??= encoder.encode(body);
        out = joined(head, last.bytes, connection);
      } else {
        last.text = body;
        last.bytes = undefined;
        out = isAscii(body)
          ? encoder.encode(`${head}content-length: ${body.length}\r\n${connection}\r\n${body}`)
          : joined(head, encoder.encode(body), connection);
      }
    } else if (withoutBody) {
      out = encoder.encode(`${head}${connection}\r\n`);
    } else {
      out = joined(head, body ?? new Uint8Array(), connection);
    }
    // One write, one packet (#write inlined: one async frame fewer a request).
    this.deadline = Date.now() + this.#server.writeTimeoutMs;
    try {
      while (out.length) {
        this.#ops++;
        let n: number;
        try {
          n = await this.#conn.write(out);
        } finally {
          this.#opDone();
        }
        out = out.subarray(n);
      }
    } finally {
      this.deadline = 0;
    }
    return keepAlive;
  }

  /** Skips what the handler left of a body, when it is already here; false when it is not (close). */
  #skipUnread(request: Request1): boolean {
    if (request.remaining === 0) return true;
    if (request.chunked || request.remaining > this.#end - this.#start) return false;
    this.#start += request.remaining;
    request.remaining = 0;
    return true;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    this.deadline = Date.now() + this.#server.writeTimeoutMs;
    try {
      await this.#writeAll(bytes);
    } finally {
      this.deadline = 0;
    }
  }

  /** All of `bytes`, under whatever deadline the connection has. */
  async #writeAll(bytes: Uint8Array): Promise<void> {
    while (bytes.length) bytes = bytes.subarray(await this.#writeSome(bytes));
  }

  /** `100 Continue` for a client that waits for it before sending its body. */
  async sendContinue(): Promise<void> {
    await this.#write(CONTINUE);
  }

  /** Up to `max` bytes of the body: those already read, else the next read's. */
  async readSome(max: number): Promise<Uint8Array> {
    if (this.#start === this.#end) {
      // Straight from the connection into a chunk of its own: no copy.
      const chunk = new Uint8Array(Math.min(max, BODY_CHUNK));
      const n = await this.#read(chunk);
      if (n === null) throw new Interrupted();
      return chunk.subarray(0, n);
    }
    const n = Math.min(max, this.#end - this.#start);
    const chunk = this.#buffer.slice(this.#start, this.#start + n);
    this.#start += n;
    return chunk;
  }

  /** Exactly `length` bytes of the body when they are all here already; else undefined (nothing taken). */
  takeBuffered(length: number): Uint8Array | undefined {
    if (this.#end - this.#start < length) return undefined;
    const bytes = this.#buffer.slice(this.#start, this.#start + length);
    this.#start += length;
    return bytes;
  }

  /** Exactly `length` bytes of the body. */
  async readExactly(length: number): Promise<Uint8Array> {
    const buffered = this.#end - this.#start;
    if (buffered >= length) {
      const bytes = this.#buffer.slice(this.#start, this.#start + length);
      this.#start += length;
      return bytes;
    }
    const bytes = new Uint8Array(length);
    bytes.set(this.#buffer.subarray(this.#start, this.#end));
    this.#start = this.#end = 0;
    let filled = buffered;
    while (filled < length) {
      const n = await this.#read(bytes.subarray(filled));
      if (n === null) throw new Interrupted();
      filled += n;
    }
    return bytes;
  }

  /** One line of a chunked body (a chunk's size, a trailer), without its CRLF. */
  async readLine(): Promise<string> {
    for (;;) {
      const lf = this.#buffer.subarray(this.#start, this.#end).indexOf(10);
      if (lf !== -1) {
        const line = utf8.decode(this.#buffer.subarray(this.#start, this.#start + lf));
        this.#start += lf + 1;
        if (!line.endsWith("\r")) throw new Interrupted();
        return line.slice(0, -1);
      }
      if (this.#end - this.#start > 4096) throw new Interrupted();
      if (!await this.#fill()) throw new Interrupted();
    }
  }
}

/** The parsed head of one request, and its body as the handler reads it. */
class Request1 implements IncomingRequest {
  readonly method: string;
  readonly headers: Headers1;
  readonly http10: boolean;
  readonly keepAlive: boolean;
  readonly chunked: boolean;
  /** Body bytes not read yet (a declared length); for a chunked body, 1 until its end. */
  remaining: number;
  readonly #target: string;
  readonly #connection: Connection;
  #expectsContinue: boolean;
  #body: ReadableStream<Uint8Array> | null | undefined;

  constructor(
    connection: Connection,
    method: string,
    target: string,
    http10: boolean,
    headers: ReadonlyMap<string, string>,
  ) {
    this.#connection = connection;
    this.method = method;
    this.#target = target;
    this.http10 = http10;
    this.headers = new Headers1(headers);
    const connectionTokens = headers.get("connection")?.toLowerCase() ?? "";
    this.keepAlive = http10 ? connectionTokens.includes("keep-alive") : !connectionTokens.includes("close");
    const encoding = headers.get("transfer-encoding");
    const length = headers.get("content-length");
    if (encoding !== undefined) {
      if (length !== undefined || http10) throw new BadRequest(400, "Transfer-Encoding com Content-Length.");
      if (encoding.toLowerCase() !== "chunked") throw new BadRequest(501, "Só Transfer-Encoding: chunked.");
      this.chunked = true;
      this.remaining = 1;
    } else {
      this.chunked = false;
      this.remaining = length === undefined ? 0 : declaredLength(length);
    }
    const expect = headers.get("expect");
    if (expect !== undefined && expect.toLowerCase() !== "100-continue") {
      throw new BadRequest(417, "Expect não suportado.");
    }
    this.#expectsContinue = expect !== undefined && this.remaining > 0;
  }

  get url(): string {
    if (/^https?:\/\//i.test(this.#target)) return this.#target;
    return `http://${this.headers.get("host") ?? "localhost"}${this.#target}`;
  }

  async #continue(): Promise<void> {
    if (!this.#expectsContinue) return;
    this.#expectsContinue = false;
    await this.#connection.sendContinue();
  }

  bytesAtHand(): Uint8Array | undefined {
    if (this.remaining === 0) return new Uint8Array();
    if (this.chunked || this.#expectsContinue) return undefined;
    const bytes = this.#connection.takeBuffered(this.remaining);
    if (bytes) this.remaining = 0;
    return bytes;
  }

  async bytes(): Promise<Uint8Array> {
    if (this.remaining === 0) return new Uint8Array();
    if (!this.chunked) {
      await this.#continue();
      const length = this.remaining;
      const bytes = await this.#connection.readExactly(length);
      this.remaining = 0;
      return bytes;
    }
    const body = this.body!;
    return new Uint8Array(await new Response(body).arrayBuffer());
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#body !== undefined) return this.#body;
    if (this.remaining === 0) return this.#body = null;
    const connection = this.#connection;
    // A chunk's bytes left to read, for a chunked body.
    let inChunk = 0;
    this.#body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        await this.#continue();
        if (!this.chunked) {
          const chunk = await connection.readSome(this.remaining);
          this.remaining -= chunk.length;
          controller.enqueue(chunk);
          if (this.remaining === 0) controller.close();
          return;
        }
        if (inChunk === 0) {
          const size = /^([0-9a-fA-F]{1,8})(?:;.*)?$/.exec(await connection.readLine())?.[1];
          if (size === undefined) throw new Interrupted();
          inChunk = parseInt(size, 16);
          if (inChunk === 0) {
            // Trailers, up to the empty line.
            for (let i = 0; (await connection.readLine()) !== ""; i++) {
              if (i > MAX_HEADERS) throw new Interrupted();
            }
            this.remaining = 0;
            controller.close();
            return;
          }
        }
        const chunk = await connection.readSome(inChunk);
        inChunk -= chunk.length;
        if (inChunk === 0 && (await connection.readLine()) !== "") throw new Interrupted();
        controller.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
    return this.#body;
  }
}

/** A request's head as parsed: what {@linkcode Request1} is made of (never changed once made). */
interface ParsedHead {
  method: string;
  target: string;
  http10: boolean;
  headers: ReadonlyMap<string, string>;
}

function parseHead(head: string): ParsedHead {
  if (/[^\r]\n|\r(?!\n)|\0/.test(head)) throw new BadRequest(400, "Requisição malformada.");
  const lines = head.split("\r\n");
  const requestLine = lines[0]!;
  const first = requestLine.indexOf(" ");
  const second = requestLine.indexOf(" ", first + 1);
  const method = requestLine.slice(0, first);
  const target = requestLine.slice(first + 1, second);
  const version = requestLine.slice(second + 1);
  if (first <= 0 || second <= first + 1 || !/^[A-Z]+$/.test(method) || /\s/.test(target)) {
    throw new BadRequest(400, "Requisição malformada.");
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    throw new BadRequest(version.startsWith("HTTP/") ? 505 : 400, "Use HTTP/1.1.");
  }
  if (target[0] !== "/" && !/^https?:\/\//i.test(target) && target !== "*") {
    throw new BadRequest(400, "Requisição malformada.");
  }
  // The head ends with an empty line: lines[length - 2] and [length - 1] are "".
  if (lines.length - 3 > MAX_HEADERS) throw new BadRequest(431, "Cabeçalhos demais.");
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length - 2; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0 || line.charCodeAt(0) <= 32 || line.charCodeAt(colon - 1) <= 32) {
      throw new BadRequest(400, "Cabeçalho malformado.");
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const before = headers.get(name);
    headers.set(name, before === undefined ? value : `${before}${name === "cookie" ? "; " : ", "}${value}`);
  }
  return { method, target, http10: version === "HTTP/1.0", headers };
}

/** Whether a text is all ASCII (then its UTF-8 bytes are as many as its UTF-16 units). */
function isAscii(text: string): boolean {
  // deno-lint-ignore no-control-regex
  return !/[^\x00-\x7f]/.test(text);
}

/** A head (its content-length and connection lines added) and a body in one buffer. */
function joined(head: string, body: Uint8Array, connection: string): Uint8Array {
  const headBytes = encoder.encode(`${head}content-length: ${body.length}\r\n${connection}\r\n`);
  if (body.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

/** A response header as written; the server's own (length, connection) are left out. */
function headerLine(name: string, value: string): string {
  const lower = name.toLowerCase();
  if (lower === "content-length" || lower === "connection" || lower === "transfer-encoding") return "";
  if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`cabeçalho de resposta inválido: ${name}`);
  return `${name}: ${value}\r\n`;
}

function declaredLength(value: string): number {
  // Repeated headers arrive joined: every copy must agree.
  const [first, ...rest] = value.split(",").map((part) => part.trim());
  if (!/^\d{1,15}$/.test(first!) || rest.some((other) => other !== first)) {
    throw new BadRequest(400, "Content-Length inválido.");
  }
  return Number(first);
}

/** Header lookup by name in any case, over the parsed head. */
class Headers1 {
  readonly #map: ReadonlyMap<string, string>;
  constructor(map: ReadonlyMap<string, string>) {
    this.#map = map;
  }
  get(name: string): string | null {
    return this.#map.get(name.toLowerCase()) ?? null;
  }
}
