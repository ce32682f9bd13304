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
 * Browsers get the chat page over HTTP GET on the same port (`web/`).
 *
 * @module
 */

import {
  type HostPort,
  type Lang,
  langArgument,
  langFlag,
  localeLang,
  type Needed,
  netNeeded,
  numberFlag,
  onTerminate,
  parseFlags,
  parseHostPortList,
  requirePermissions,
  secondsFlag,
  usageError,
  useLanguage,
} from "./deps.ts";
import {
  advertisedHost,
  announceReady,
  BinderRegistration,
  type ChatEngine,
  chatMethods,
  type ChatOptions,
  CONNECTION_FLAGS,
  CONNECTION_USAGE,
  connectionOptions,
  counted,
  LIMITS,
  type Log,
  openLog,
  RedisChat,
  serveOrExit,
  servePage,
  SqliteChat,
} from "./lib/host.ts";

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

const USAGE: Readonly<Record<Lang, string>> = {
  pt: `server.ts: o servidor de chat do rpc-chat (ChatService)

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
                           (em vez de --db); veja docs/cluster.md
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
${CONNECTION_USAGE.pt}
  --register-key CHAVE     chave de registro que o binder pede (--register-key do binder)
  --sync normal|full       normal: nada se perde se o processo morrer; full: nem se faltar
                           energia, mais lento (padrão: normal)
  --compat                 aceita os clientes originais, que não enviam cookie de sessão (e salas
                           criadas sem sessão, que ninguém pode excluir)
  --lang pt|en             idioma desta ajuda e dos erros de linha de comando (padrão: o do sistema)
  -h, --help               mostra esta ajuda

Permissões: --allow-read e --allow-write devem citar os arquivos de --db e --log. Com --store:
  --allow-net --allow-sys=networkInterfaces --allow-env=REDIS_DEBUG_MAINTENANCE --allow-write=LOG`,
  en: `server.ts: rpc-chat's chat server (ChatService)

Usage: deno run --allow-net --allow-sys=networkInterfaces --allow-read=chat.db \\
         --allow-write=chat_server.log,chat.db server.ts [options]

Options:
  --host H                 interface to listen on (default: 0.0.0.0, every one)
  --port P                 port (default: 8001; 0 takes a free one and registers the real one)
  --advertise H            the address clients should use (default: found out)
  --binder H:P[,H:P...]    where the binder is (default: 127.0.0.1:5000); with several, registers in
                           each and renews each
  --log FILE               operator's log (default: chat_server.log)
  --db FILE                database of rooms and messages (default: chat.db beside the log;
                           :memory: for a throwaway server)
  --store redis://H:P[/D]  the whole chat in a Redis, shared by several servers (instead of --db);
                           see docs/cluster.md
  --room-ttl S             removes a room empty and idle for S seconds (default: 300)
  --session-ttl S          ends a session with no sign of life for S seconds (default: 30)
  --max-rate N             per second: a user's messages; their other changes (joins, leaves, rooms
                           created or deleted), apart; registrations from one address (bursts of
                           twice that; default: 10); past it: 'devagar'
  --max-users N            users registered at once (default: 1000); past it: 'limite_atingido'
  --max-rooms N            rooms (default: 1000); past it: 'limite_atingido'
  --max-rooms-per-user N   rooms a user created that still exist (default: 20)
  --max-waits N            pending waits (aguardar_mensagens) per user; one more ends the oldest,
                           which answers empty (default: 4)
  --register-interval S    renews the registration in the binder every S seconds (default: 10)
${CONNECTION_USAGE.en}
  --register-key KEY       the registration key the binder asks for (the binder's --register-key)
  --sync normal|full       normal: nothing lost if the process dies; full: nor if the power fails,
                           slower (default: normal)
  --compat                 takes the original clients, which send no session cookie (and rooms
                           created without a session, which nobody may delete)
  --lang pt|en             language of this help and of command-line errors (default: the system's)
  -h, --help               shows this help

Permissions: --allow-read and --allow-write must name the files of --db and --log. With --store:
  --allow-net --allow-sys=networkInterfaces --allow-env=REDIS_DEBUG_MAINTENANCE --allow-write=LOG`,
};

/** The language of --help and of command-line errors. */
let lang: Lang = "pt";

function printUsage(): void {
  console.log(USAGE[lang]);
}

/** `chat.db` in the folder of the log file. */
function besideLog(log: string): string {
  const slash = Math.max(log.lastIndexOf("/"), log.lastIndexOf("\\"));
  return `${log.slice(0, slash + 1)}chat.db`;
}

/** The engine the flags ask for: the chat on Redis (`--store`), else in the SQLite file (`--db`). */
function openEngine(
  store: string | undefined,
  dbPath: string,
  synchronous: "normal" | "full",
  options: ChatOptions,
): Promise<ChatEngine> {
  return store === undefined
    ? SqliteChat.open(dbPath, { ...options, synchronous })
    : RedisChat.open(store, options);
}

/** Runs the server: flags, log, database, serving, registration; stops cleanly on SIGINT/SIGTERM. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const program = "server.ts";
  lang = localeLang(langArgument(args));
  useLanguage(lang);
  const flags = parseFlags(program, printUsage, args, {
    lang: { type: "string" },
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
  langFlag(program, flags.lang);
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

  // Asked, never requested: a missing permission is one line naming its flag, not a prompt.
  const files = flags.store === undefined && dbPath !== ":memory:" ? [flags.log, dbPath] : [flags.log];
  const needed: Needed[] = [
    netNeeded(flags.host, port),
    { descriptor: { name: "write", path: flags.log }, flag: `--allow-write=${files.join(",")}` },
  ];
  if (files.length > 1) {
    needed.push(
      { descriptor: { name: "read", path: dbPath }, flag: `--allow-read=${dbPath}` },
      { descriptor: { name: "write", path: dbPath }, flag: `--allow-write=${files.join(",")}` },
    );
  }
  if (flags.store !== undefined) {
    needed.push({
      descriptor: { name: "env", variable: "REDIS_DEBUG_MAINTENANCE" },
      flag: "--allow-env=REDIS_DEBUG_MAINTENANCE",
    });
  }
  requirePermissions(
    program,
    needed,
    `deno run --allow-net --allow-sys=networkInterfaces ${
      flags.store === undefined
        ? `${files.length > 1 ? `--allow-read=${dbPath} ` : ""}--allow-write=${files.join(",")}`
        : `--allow-env=REDIS_DEBUG_MAINTENANCE --allow-write=${flags.log}`
    } server.ts`,
  );

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

  const options: ChatOptions = {
    compat: flags.compat,
    sessionTtlMs,
    roomTtlMs,
    maxRate,
    log,
    ...limits,
  };
  let chat: ChatEngine;
  try {
    chat = await openEngine(flags.store, dbPath, sync, options);
  } catch (error) {
    console.error(`${program}: ${(error as Error).message}`);
    await log.close();
    Deno.exit(1);
  }
  const server = await serveOrExit(program, chatMethods(chat, log), {
    host: flags.host,
    port,
    ...connections,
    log,
    // The chat page for browsers, on this server's own origin (the binder's `GET /` sends them here).
    get: servePage,
  }, async () => {
    await chat.close();
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
    if (told) log.info(`Aviso de encerramento enviado a ${counted(told, "sala", "salas")}`);
    chat.stop();
    await Promise.all(registrations.map((registration) => registration.stop()));
    await server.shutdown();
    await chat.close();
    log.info("Servidor encerrado.");
    await log.close();
  };
  // Set before the ready line: whoever waits for it may send SIGTERM at once.
  // SIGHUP too when in a terminal that closes; without one, whoever started us stops us.
  onTerminate(shutdown, { hangup: "terminal" });
  // A database deleted or replaced under us would take every later message with it: stop and say so.
  const watchdog = setInterval(async () => {
    if (chat.stillThere()) return;
    clearInterval(watchdog);
    const problem = `o banco ${dbPath} foi apagado ou trocado enquanto o servidor rodava; encerrando`;
    log.error(problem);
    console.error(`${program}: ${problem}`);
    await shutdown().catch(() => {});
    Deno.exit(1);
  }, 1000);
  const caps = [
    counted(limits.maxUsers, "usuário", "usuários"),
    counted(limits.maxRooms, "sala", "salas"),
    `${counted(limits.maxRoomsPerUser, "sala", "salas")} por criador`,
    `${counted(limits.maxWaits, "espera", "esperas")} por usuário`,
    `${maxRate} ${maxRate === 1 ? "mensagem" : "mensagens"} por segundo por usuário`,
  ];
  log.info(
    `Servidor ouvindo em ${flags.host}:${server.addr.port} (${chat.describe()}` +
      `${flags.compat ? ", modo compatível" : ""}). Limites: ${caps.join(", ")}`,
  );
  announceReady({ programa: "server", host: flags.host, porta: server.addr.port });
  const host = flags.advertise ?? await advertisedHost(flags.host, binders);
  for (const registration of registrations) registration.start(host);
}

if (import.meta.main) await main();
