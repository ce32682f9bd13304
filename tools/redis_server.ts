/**
 * A real `redis-server` of our own, for the benchmark (`--redis-server`) and
 * the tests (`tests/helpers/redis.ts`): started as a subprocess on a free loopback
 * port (or on a given address, on a host of `tests/helpers/netns.ts`) in a directory
 * of its own, durable (`--appendonly yes --appendfsync
 * always`, no snapshots) so that what it acknowledged survives a restart,
 * never a system service. {@linkcode redisCommand} speaks RESP over a raw
 * TCP socket, enough to ping it and to look inside.
 *
 * @module
 */

import { ChildProgram } from "../lib/mod.ts";

/** The program started: Debian's `redis-server`, from PATH. */
export const REDIS_SERVER = "redis-server";

const READY_TIMEOUT_MS = 10_000;
/** What redis-server logs once it serves (after loading its append-only file). */
const READY_LOG = /Ready to accept connections/;
const PING_EVERY_MS = 50;
/** Another process may take the free port between our asking and redis binding it: try a few. */
const BIND_ATTEMPTS = 5;

/** Why `redis-server` cannot run here (not installed, not allowed), or undefined when it can. */
export async function redisMissing(): Promise<string | undefined> {
  try {
    const { success } = await new Deno.Command(REDIS_SERVER, {
      args: ["--version"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? undefined : `${REDIS_SERVER} --version falhou`;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return `${REDIS_SERVER} não está instalado (apt-get install redis-server)`;
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return `sem permissão para rodar ${REDIS_SERVER} (--allow-run=${REDIS_SERVER})`;
    }
    throw error;
  }
}

/** A port free on loopback now: the OS picks one for a listener we close at once. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

// ---------------------------------------------------------------------------
// RESP, the Redis protocol
// ---------------------------------------------------------------------------

/** A Redis reply: simple and bulk strings, integers, nil, arrays. An error reply is thrown. */
export type RedisReply = string | number | null | RedisReply[];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The reply that starts at `at` in `bytes` and where it ends, or undefined while it is incomplete. */
function parseReply(bytes: Uint8Array, at: number): { reply: RedisReply; end: number } | undefined {
  const lineEnd = bytes.indexOf(10, at);
  if (lineEnd < 0) return undefined;
  const line = decoder.decode(bytes.subarray(at + 1, lineEnd - 1));
  const next = lineEnd + 1;
  switch (String.fromCharCode(bytes[at]!)) {
    case "+":
      return { reply: line, end: next };
    case "-":
      throw new Error(`redis: ${line}`);
    case ":":
      return { reply: Number(line), end: next };
    case "$": {
      const length = Number(line);
      if (length < 0) return { reply: null, end: next };
      if (bytes.length < next + length + 2) return undefined;
      return { reply: decoder.decode(bytes.subarray(next, next + length)), end: next + length + 2 };
    }
    case "*": {
      const count = Number(line);
      if (count < 0) return { reply: null, end: next };
      const items: RedisReply[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(bytes, end);
        if (!item) return undefined;
        items.push(item.reply);
        end = item.end;
      }
      return { reply: items, end };
    }
    default:
      throw new Error(`redis: resposta inesperada ${JSON.stringify(line)}`);
  }
}

/** The host, port and database of a `redis://HOST:PORT[/DB]` URL. */
export function parseRedisUrl(url: string): { host: string; port: number; db: number } {
  const parsed = new URL(url);
  if (parsed.protocol !== "redis:" || !parsed.hostname) throw new Error(`não é redis://HOST:PORT: ${url}`);
  const db = parsed.pathname.replace(/^\//, "");
  if (!/^\d*$/.test(db)) throw new Error(`o banco de ${url} não é um número`);
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(parsed.port || 6379),
    db: Number(db),
  };
}

/**
 * One command to the Redis at `url` (`redis://HOST:PORT[/DB]`) on a
 * connection of its own; its reply. An error reply is thrown.
 */
export async function redisCommand(url: string, ...args: (string | number)[]): Promise<RedisReply> {
  const { host, port, db } = parseRedisUrl(url);
  const commands = db ? [["SELECT", db], args] : [args];
  const request = commands.map((command) =>
    `*${command.length}\r\n` +
    command.map((arg) => `$${encoder.encode(String(arg)).length}\r\n${arg}\r\n`).join("")
  ).join("");
  const connection = await Deno.connect({ hostname: host, port });
  try {
    await connection.write(encoder.encode(request));
    let received = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    for (;;) {
      const read = await connection.read(chunk);
      if (read === null) throw new Error(`redis ${host}:${port} fechou a conexão sem responder`);
      const grown = new Uint8Array(received.length + read);
      grown.set(received);
      grown.set(chunk.subarray(0, read), received.length);
      received = grown;
      // With a SELECT first, its reply, then the command's.
      let at = 0;
      let reply: RedisReply | undefined;
      for (let i = 0; i < commands.length && at >= 0; i++) {
        const parsed = parseReply(received, at);
        at = parsed?.end ?? -1;
        reply = parsed?.reply;
      }
      if (at >= 0) return reply!;
    }
  } finally {
    connection.close();
  }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

function redisUrl(options: RedisServerOptions, port: number): string {
  return `redis://${options.host ?? "127.0.0.1"}:${port}`;
}

/** Pings `url` until it answers (true), or it `ended()` or the time is up (false). */
async function answersPing(url: string, ended: () => boolean): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!ended() && Date.now() < deadline) {
    // Refused before it listens, `-LOADING` while it reads its append-only file.
    if (await redisCommand(url, "PING").catch(() => undefined) === "PONG") return true;
    await new Promise((resolve) => setTimeout(resolve, PING_EVERY_MS));
  }
  return false;
}

/** Where a {@linkcode RedisServer} keeps its files, and where it runs. */
export interface RedisServerOptions {
  /** This directory (made if missing, kept); default: a new temporary one, removed by `close()`. */
  dir?: string;
  /** The address it binds, and is reached at (default `127.0.0.1`). */
  host?: string;
  /**
   * Words before `redis-server` on its command line: `["ip", "netns", "exec", NAME]`
   * runs it on a host of `tests/helpers/netns.ts`. That host may be out of our reach,
   * so it is then ready when it logs so, not when it answers our PING.
   */
  prefix?: readonly string[];
}

/**
 * A `redis-server` on `127.0.0.1` (or `host`), on a free port, its files (the
 * append-only file) in `dir`. `stop()` and `kill()` end it, `restart()`
 * starts it again on the same port and directory (the append-only file is
 * reloaded), `close()` (or `await using`) kills it and removes a temporary
 * directory.
 */
export class RedisServer implements AsyncDisposable {
  /** Its directory: the append-only file is there. */
  readonly dir: string;
  /** Its port on its address. */
  readonly port: number;
  /** `redis://127.0.0.1:PORT` (or its `host`). */
  readonly url: string;
  readonly #ownsDir: boolean;
  readonly #options: RedisServerOptions;
  #child: ChildProgram;

  private constructor(
    dir: string,
    options: RedisServerOptions,
    port: number,
    child: ChildProgram,
  ) {
    this.dir = dir;
    this.#ownsDir = !options.dir;
    this.#options = options;
    this.port = port;
    this.url = redisUrl(options, port);
    this.#child = child;
  }

  /** Starts one and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = options.dir ?? await Deno.makeTempDir({ prefix: "rpc-chat-redis-" });
    if (options.dir) await Deno.mkdir(dir, { recursive: true });
    let lastError: unknown;
    for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
      const port = freePort();
      try {
        return new RedisServer(dir, options, port, await RedisServer.#launch(dir, port, options));
      } catch (error) {
        // It ended before answering: most likely the port was taken meanwhile; another one.
        lastError = error;
      }
    }
    if (!options.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw lastError;
  }

  /**
   * Runs redis-server on `port` in `dir`; resolves once it answers PING (or,
   * with a prefix, logs that it is ready), throws (after killing it) if it never does.
   */
  static async #launch(dir: string, port: number, options: RedisServerOptions): Promise<ChildProgram> {
    const [command, ...prefixed] = [...options.prefix ?? [], REDIS_SERVER];
    const child = new ChildProgram(command!, [
      ...prefixed,
      ...["--port", String(port), "--bind", options.host ?? "127.0.0.1", "--protected-mode", "no"],
      ...["--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir],
    ]);
    let ended = false;
    child.status.then(() => ended = true, () => ended = true);
    const ready = options.prefix
      ? await child.waitForLine(READY_LOG, READY_TIMEOUT_MS).then(() => true, () => false)
      : await answersPing(redisUrl(options, port), () => ended);
    if (ready) return child;
    await child.stop("SIGKILL");
    throw new Error(
      `${REDIS_SERVER} na porta ${port} ${
        ended ? "terminou" : "não respondeu"
      } antes de aceitar comandos:\n` +
        child.tail(20),
    );
  }

  /** Its process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Ends it with SIGTERM (it syncs its files first) and waits. */
  async stop(): Promise<void> {
    await this.#child.stop("SIGTERM");
  }

  /** Ends it with SIGKILL, at once, and waits. */
  async kill(): Promise<void> {
    await this.#child.stop("SIGKILL");
  }

  /** Stops it (if it runs) and starts it again on the same port and directory: the append-only file is reloaded. */
  async restart(): Promise<void> {
    await this.stop();
    this.#child = await RedisServer.#launch(this.dir, this.port, this.#options);
  }

  /** Kills it and removes its directory if it was a temporary one of ours. */
  async close(): Promise<void> {
    await this.kill();
    if (this.#ownsDir) await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  /** `await using`: {@linkcode RedisServer.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
