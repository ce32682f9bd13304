#!/usr/bin/env -S deno run --allow-run=deno --allow-net=127.0.0.1,0.0.0.0 --allow-sys=networkInterfaces --allow-write=binder.log,server.log
/**
 * `deno task start`: the whole system on one machine. Refuses at once, in
 * one line and before touching any file, when the binder's or the server's
 * port is taken (a second start leaves the running system's logs alone).
 * Starts the binder and the chat server in the background (their output in
 * `binder.log` and `server.log`), waits until each is ready, prints the line
 * classmates type to join from the LAN (with this machine's addresses: the
 * binder serves them the client), and runs one client in the foreground.
 * It watches both: when one exits unexpectedly it says so in one line and
 * starts it again (after 1, 2, 4... seconds; after 5 restarts in 10 minutes
 * it gives up and says what to do). When the client ends and nobody else is
 * connected (in a room or not), it stops both, leaving nothing running; when
 * others still are, it says how many and asks (on a terminal) whether to
 * stop, or serves on until a signal or the end of input. SIGHUP (the
 * terminal closed), SIGTERM and Ctrl-C stop everything cleanly: the server
 * says goodbye to everyone. At the end it says what it stopped, and what had
 * stopped before. The exit code is the client's. Every argument that is not
 * start.ts's own goes to the client, and every one is checked before
 * anything starts. `--lang pt|en` is start.ts's and the client's (default:
 * the user's locale, Portuguese unless English).
 *
 * ```sh
 * deno task start                          # binder :5000, server :8001, a client
 * deno task start --name ana --room geral  # the client's flags
 * deno task start --lang en                # start.ts and the client in English
 * deno task client                         # a second client, from another terminal
 * ```
 *
 * Each program runs with its own exact permissions (see the README); this
 * script needs to run `deno`, bind its two ports for a moment (on 0.0.0.0,
 * or 127.0.0.1 with `--local`) to see that they are free, reach 127.0.0.1
 * (the binder and the server), list the network interfaces (the LAN
 * addresses it prints) and write its two log files.
 *
 * @module
 */

import {
  clientFlags,
  endpointUrl,
  type Lang,
  langArgument,
  langFlag,
  localeLang,
  missingValue,
  numberFlag,
  ownLanAddresses,
  readLines,
  useLanguage,
  writeStdout,
  XmlRpcClient,
} from "./deps.ts";
import { ChildProgram, denoRun, PERMISSIONS, type ReadyLine } from "./lib/host.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** start.ts's own flags, and the client's. */
export interface StartOptions {
  /** Listen on 127.0.0.1 only (else every interface, for the LAN). */
  local: boolean;
  /** `--binder-port` (0: a free one). */
  binderPort: number;
  /** `--server-port` (0: a free one). */
  serverPort: number;
  /** `--lang` (also handed to the client); undefined: the locale's. */
  lang?: Lang;
  /** Everything else: the client's arguments. */
  clientArgs: string[];
}

/** Our two background programs. */
type Which = "binder" | "server";

const PROGRAM = "start.ts";
const HERE = new URL(".", import.meta.url);
const READY_TIMEOUT_MS = 30_000;
/** A signal to the whole terminal reaches our programs and us together: their exit is not a crash then. */
const SIGNAL_GRACE_MS = 300;
/** The first restart waits this long, each next one twice as long as the one before. */
const FIRST_BACKOFF_MS = 1000;
/** At most this many restarts of one program within {@linkcode RESTART_WINDOW_MS}; then it stays down. */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 10 * 60_000;
/** The server renews its registration this often under start.ts, so a restarted binder soon knows it again. */
const REGISTER_INTERVAL_S = "2";

// ---------------------------------------------------------------------------
// Texts
// ---------------------------------------------------------------------------

const LOG_FILE: Record<Which, string> = { binder: "binder.log", server: "server.log" };

/** Everything start.ts says, in Portuguese (the default) and English. */
const TEXTS = {
  pt: {
    usage: `start.ts: binder, servidor e um cliente do rpc-chat de uma vez

Uso: deno task start [opções] [opções do cliente]

Opções:
  --local              escuta só em 127.0.0.1 (padrão: todas as interfaces, para a rede local)
  --binder-port P      porta do binder (padrão: 5000; 0 escolhe uma livre)
  --server-port P      porta do servidor (padrão: 8001; 0 escolhe uma livre)
  --lang pt|en         idioma deste programa e do cliente (padrão: o do sistema; português
                       se não for inglês)
  -h, --help           mostra esta ajuda

Todas as outras opções vão para o cliente (--name, --room...) e são conferidas antes de
iniciar qualquer coisa. A saída do binder e do servidor fica em binder.log e server.log.
Mostra a linha que os colegas digitam na rede local (o binder serve o cliente).
Se o binder ou o servidor cair, avisa e o inicia de novo (até ${MAX_RESTARTS} vezes em 10 minutos).
Quando o cliente termina, binder e servidor são encerrados; se ainda há gente conectada,
pergunta antes (num terminal) ou continua até Ctrl-C, SIGTERM, SIGHUP ou o fim da entrada.`,
    binder: "o binder",
    server: "o servidor",
    Binder: "Binder",
    Server: "Servidor",
    portTaken: (port: number, what: string) =>
      `a porta ${port} (${what}) já está em uso: o rpc-chat já roda nesta máquina? Nada foi iniciado ` +
      `e binder.log e server.log ficaram como estavam (outras portas: --binder-port, --server-port).`,
    cannotListen: (host: string, port: number, what: string, why: string) =>
      `não é possível escutar em ${host}:${port} (${what}): ${why}`,
    binderPortName: "binder",
    serverPortName: "servidor",
    didNotStart: (what: string, log: string, tail: string) => `${what} não iniciou (veja ${log}):\n${tail}`,
    notRegistered: "o servidor não se registrou no binder (veja server.log)",
    binderReady: (at: string) => `Binder pronto em ${at} (saída em binder.log).`,
    serverReady: (at: string) =>
      `Servidor pronto em ${at}, registrado no binder (saída em server.log, log em chat_server.log).`,
    localOnly: (here: string) => `Só nesta máquina (--local); outro cliente: ${here}`,
    noLan: (here: string) =>
      `Nenhum endereço de rede local encontrado. Nesta máquina, outro cliente: ${here}`,
    onLanWithIp: (line: string) => `Na rede, com o IP desta máquina: ${line}`,
    servesClient: (urls: string[]) => `O binder serve o cliente em ${urls.join(" e ")}`,
    joinWith: (many: boolean): string =>
      many
        ? "Colegas na rede local entram com uma destas linhas (a da rede de vocês):"
        : "Colegas na rede local entram com:",
    hereToo: (here: string) => `Nesta máquina, outro cliente: ${here}`,
    exited: (what: string, how: string, seconds: number, log: string) =>
      `${what} parou inesperadamente (${how}); reinicio em ${seconds} s (veja ${log}).`,
    signal: (name: string) => `sinal ${name}`,
    code: (code: number) => `código ${code}`,
    back: (what: string, at: string) => `${what} de volta em ${at}.`,
    gaveUp: (what: string, log: string) =>
      `${what} parou ${MAX_RESTARTS + 1} vezes em 10 minutos; não reinicio mais. Veja ${log}, corrija ` +
      `o problema e rode deno task start de novo (encerre este com /fim ou Ctrl-C).`,
    others: (count: number) => `Ainda há ${count === 1 ? "1 pessoa" : `${count} pessoas`} no chat.`,
    askStop: "Encerrar o serviço para todos? [s/N] ",
    yes: /^\s*(s|sim|y|yes)\s*$/i,
    servingOnTerminal: "O serviço continua para os outros; Ctrl-C (ou Ctrl-D) o encerra.",
    servingOnPipe: "O serviço continua para os outros até Ctrl-C, SIGTERM ou o fim da entrada.",
    stopped: (stopped: Which[], down: Which[]) => {
      const names = { binder: "o binder", server: "o servidor" };
      const logs = down.map((which) => LOG_FILE[which]).join(" e ");
      if (down.length === 0) return "Binder e servidor encerrados.";
      if (stopped.length === 0) return `Nada a encerrar: binder e servidor já tinham parado (veja ${logs}).`;
      const [up] = stopped;
      return `${up === "binder" ? "Binder encerrado" : "Servidor encerrado"}; ${
        names[down[0]!]
      } já tinha parado (veja ${logs}).`;
    },
  },
  en: {
    usage: `start.ts: the rpc-chat binder, server and a client at once

Usage: deno task start [options] [client options]

Options:
  --local              listen on 127.0.0.1 only (default: every interface, for the LAN)
  --binder-port P      the binder's port (default: 5000; 0 picks a free one)
  --server-port P      the server's port (default: 8001; 0 picks a free one)
  --lang pt|en         language of this program and the client (default: the system's;
                       Portuguese unless English)
  -h, --help           show this help

Every other option goes to the client (--name, --room...), and all are checked before
anything starts. The binder's and the server's output go to binder.log and server.log.
Prints the line classmates type on the LAN (the binder serves them the client).
If the binder or the server goes down, says so and starts it again (up to ${MAX_RESTARTS} times in
10 minutes). When the client ends, binder and server are stopped; if others are still
connected, asks first (on a terminal) or serves on until Ctrl-C, SIGTERM, SIGHUP or end of input.`,
    binder: "the binder",
    server: "the server",
    Binder: "Binder",
    Server: "Server",
    portTaken: (port: number, what: string) =>
      `port ${port} (${what}) is already in use: is rpc-chat already running on this machine? Nothing ` +
      `was started and binder.log and server.log were left as they were (other ports: --binder-port, ` +
      `--server-port).`,
    cannotListen: (host: string, port: number, what: string, why: string) =>
      `cannot listen on ${host}:${port} (${what}): ${why}`,
    binderPortName: "binder",
    serverPortName: "server",
    didNotStart: (what: string, log: string, tail: string) => `${what} did not start (see ${log}):\n${tail}`,
    notRegistered: "the server did not register with the binder (see server.log)",
    binderReady: (at: string) => `Binder ready at ${at} (output in binder.log).`,
    serverReady: (at: string) =>
      `Server ready at ${at}, registered with the binder (output in server.log, log in chat_server.log).`,
    localOnly: (here: string) => `This machine only (--local); another client: ${here}`,
    noLan: (here: string) => `No LAN address found. On this machine, another client: ${here}`,
    onLanWithIp: (line: string) => `On the LAN, with this machine's IP: ${line}`,
    servesClient: (urls: string[]) => `The binder serves the client at ${urls.join(" and ")}`,
    joinWith: (many: boolean): string =>
      many
        ? "Classmates on the LAN join with one of these lines (your network's):"
        : "Classmates on the LAN join with:",
    hereToo: (here: string) => `On this machine, another client: ${here}`,
    exited: (what: string, how: string, seconds: number, log: string) =>
      `${what} stopped unexpectedly (${how}); restarting it in ${seconds} s (see ${log}).`,
    signal: (name: string) => `signal ${name}`,
    code: (code: number) => `exit code ${code}`,
    back: (what: string, at: string) => `${what} back at ${at}.`,
    gaveUp: (what: string, log: string) =>
      `${what} stopped ${MAX_RESTARTS + 1} times in 10 minutes; not restarting it again. See ${log}, fix ` +
      `the problem and run deno task start again (end this one with /quit or Ctrl-C).`,
    others: (count: number) => `${count === 1 ? "1 person is" : `${count} people are`} still in the chat.`,
    askStop: "Stop the service for everyone? [y/N] ",
    yes: /^\s*(y|yes)\s*$/i,
    servingOnTerminal: "The service goes on for the others; Ctrl-C (or Ctrl-D) stops it.",
    servingOnPipe: "The service goes on for the others until Ctrl-C, SIGTERM or the end of input.",
    stopped: (stopped: Which[], down: Which[]) => {
      const names = { binder: "the binder", server: "the server" };
      const logs = down.map((which) => LOG_FILE[which]).join(" and ");
      if (down.length === 0) return "Binder and server stopped.";
      if (stopped.length === 0) {
        return `Nothing to stop: binder and server had already stopped (see ${logs}).`;
      }
      const [up] = stopped;
      return `${up === "binder" ? "Binder stopped" : "Server stopped"}; ${
        names[down[0]!]
      } had already stopped (see ${logs}).`;
    },
  },
};

/** start.ts's texts in one language. */
type StartTexts = typeof TEXTS.pt;

/** A line for the host, on stdout; quiet once nobody reads (the terminal closed). */
function say(line: string): void {
  // On a terminal the client may be editing a line: ours goes on a clean one.
  writeStdout(`${Deno.stdout.isTerminal() ? "\r\x1b[2K" : ""}${line}\n`);
}

/** A line for the host on stderr; quiet once nobody reads. */
function complain(line: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`${PROGRAM}: ${line}\n`));
  } catch {
    // Nobody is reading any more.
  }
}

// ---------------------------------------------------------------------------
// Command line: our flags, and the rest for the client
// ---------------------------------------------------------------------------

/**
 * Splits start.ts's own flags from the client's (`--lang` is both), checking
 * ours; the client's are checked by {@linkcode main} before anything starts.
 */
function parseStartArgs(args: string[], lang: Lang = "pt"): StartOptions {
  const t = TEXTS[lang];
  const options: StartOptions = { local: false, binderPort: 5000, serverPort: 8001, clientArgs: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const text = eq > 0 && flag !== arg ? arg.slice(eq + 1) : args[++i];
      if (text === undefined) missingValue(PROGRAM, flag);
      return text;
    };
    const port = (text: string) => numberFlag(PROGRAM, flag, text, { min: 0, max: 65535, integer: true });
    switch (flag) {
      case "-h":
      case "--help":
        console.log(t.usage);
        Deno.exit(0);
        break;
      case "--local":
        options.local = true;
        break;
      case "--binder-port":
        options.binderPort = port(value());
        break;
      case "--server-port":
        options.serverPort = port(value());
        break;
      case "--lang": {
        const lang = langFlag(PROGRAM, value());
        options.lang = lang;
        options.clientArgs.push(`--lang=${lang}`);
        break;
      }
      case "--":
        options.clientArgs.push(...args.slice(i + 1));
        return options;
      default:
        options.clientArgs.push(arg);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------
// Background programs, watched
// ---------------------------------------------------------------------------

/** Its ready line, or undefined if it ended or took too long (then it is killed). */
async function readyLine(program: ChildProgram): Promise<ReadyLine | undefined> {
  try {
    return await program.ready(READY_TIMEOUT_MS);
  } catch {
    program.kill("SIGKILL");
    return undefined;
  }
}

function sleep(ms: number, cancel: Promise<void>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), ms)),
    cancel.then(() => false),
  ]).finally(() => clearTimeout(timer));
}

/**
 * One background program (binder or server) kept running: started, watched,
 * started again after an unexpected exit (with a back-off and a limit), and
 * stopped on request.
 */
class Watched {
  #program: ChildProgram;
  #stopping = false;
  #stopRequested = () => {};
  readonly #stopped = new Promise<void>((resolve) => this.#stopRequested = resolve);
  readonly #restarts: number[] = [];
  /** Whether the program runs now (between an exit and its restart, it does not). */
  #running = false;

  constructor(
    readonly which: Which,
    readonly args: (again: boolean) => string[],
    readonly t: StartTexts,
    readonly onBack: (ready: ReadyLine) => Promise<void> = async () => {},
  ) {
    this.#program = this.#spawn(false);
  }

  #spawn(again: boolean): ChildProgram {
    const script = this.which === "binder" ? "binder.ts" : "server.ts";
    const program = ChildProgram.deno(new URL(script, HERE), PERMISSIONS[this.which], this.args(again), {
      outputFile: LOG_FILE[this.which],
      appendOutput: again,
    });
    this.#running = true;
    program.status.finally(() => {
      if (this.#program === program) this.#running = false;
    });
    return program;
  }

  /** The first start: its ready line, or undefined with what it printed. */
  async ready(): Promise<ReadyLine | undefined> {
    return await readyLine(this.#program);
  }

  /** What it printed last, to explain a failed start. */
  tail(): string {
    return this.#program.tail();
  }

  /** Watches it from now on: an unexpected exit is said, and followed by a restart. */
  async watch(): Promise<void> {
    const t = this.t;
    const what = t[this.which];
    const What = what[0]!.toUpperCase() + what.slice(1);
    for (;;) {
      const status = await this.#program.status;
      if (this.#stopping || !await sleep(SIGNAL_GRACE_MS, this.#stopped)) return;
      const now = Date.now();
      while (this.#restarts.length && now - this.#restarts[0]! > RESTART_WINDOW_MS) this.#restarts.shift();
      if (this.#restarts.length >= MAX_RESTARTS) {
        say(t.gaveUp(What, LOG_FILE[this.which]));
        return;
      }
      this.#restarts.push(now);
      const delayMs = FIRST_BACKOFF_MS * 2 ** (this.#restarts.length - 1);
      const how = status.signal ? t.signal(status.signal) : t.code(status.code);
      say(t.exited(What, how, delayMs / 1000, LOG_FILE[this.which]));
      if (!await sleep(delayMs, this.#stopped)) return;
      this.#program = this.#spawn(true);
      const ready = await readyLine(this.#program);
      if (this.#stopping) return;
      if (!ready) continue;
      await this.onBack(ready);
      say(t.back(this.which === "binder" ? t.Binder : t.Server, `${ready.host}:${ready.porta}`));
    }
  }

  /** Stops it for good; true if it was running (false: it had stopped, and was down when asked). */
  async stop(): Promise<boolean> {
    this.#stopping = true;
    this.#stopRequested();
    const running = this.#running;
    await this.#program.stop();
    return running;
  }
}

async function registered(binderPort: number, serverPort: number): Promise<boolean> {
  try {
    const binder = new XmlRpcClient(endpointUrl("127.0.0.1", binderPort), { timeoutMs: 2000 });
    const [ok, found] = await binder.call<[boolean, { porta: number }]>("buscar_procedimento", [
      "ChatService",
    ]);
    return ok && found.porta === serverPort;
  } catch {
    return false;
  }
}

/** Waits until the binder knows the server; false after {@linkcode READY_TIMEOUT_MS}. */
async function untilRegistered(binderPort: number, serverPort: number): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await registered(binderPort, serverPort))) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

// ---------------------------------------------------------------------------
// The ports, the LAN, who is still there
// ---------------------------------------------------------------------------

/**
 * Why the port cannot be ours, or undefined when it is free (port 0: any
 * free one will do). Asked before anything starts, so a second start leaves
 * the running system and its log files alone.
 */
function portTaken(host: string, port: number, what: string, t: StartTexts): string | undefined {
  if (port === 0) return undefined;
  try {
    Deno.listen({ hostname: host, port }).close();
    return undefined;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return t.portTaken(port, what);
    return t.cannotListen(host, port, what, (error as Error).message);
  }
}

/** The line a classmate types to join: the client, straight from the binder. */
export function classmateLine(address: string, binderPort: number): string {
  return `deno run --allow-net http://${address}:${binderPort}/cliente.ts`;
}

/** What start.ts says once everything is up: how others join, here and on the LAN. */
function joinInstructions(options: StartOptions, binderPort: number, t: StartTexts): string[] {
  const here = `deno task client${binderPort === 5000 ? "" : ` --binder 127.0.0.1:${binderPort}`}`;
  if (options.local) return [t.localOnly(here)];
  const addresses = ownLanAddresses();
  if (addresses.length === 0) return [t.noLan(here), t.onLanWithIp(classmateLine("IP", binderPort))];
  return [
    t.servesClient(addresses.map((a) => `http://${a}:${binderPort}/cliente.ts`)),
    t.joinWith(addresses.length > 1),
    ...addresses.map((address) => `  ${classmateLine(address, binderPort)}`),
    t.hereToo(here),
  ];
}

/**
 * How many people are connected to the server, in a room or not (the host's
 * client has left by then); undefined if it is gone.
 */
async function othersConnected(serverPort: number): Promise<number | undefined> {
  const server = new XmlRpcClient(endpointUrl("127.0.0.1", serverPort), { timeoutMs: 2000 });
  try {
    const [, count] = await server.call<[boolean, number]>("contar_usuarios", []);
    return count;
  } catch {
    return undefined;
  }
}

/** The next line of our stdin, or null at its end (a terminal that closed, EIO, is one too). */
async function readLine(reader: ReadableStreamDefaultReader<string>): Promise<string | null> {
  try {
    const { done, value } = await reader.read();
    return done ? null : value;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

/** Starts everything, runs the client, stops everything; resolves to the client's exit code. */
export async function main(args: string[] = Deno.args): Promise<number> {
  // The language first, from the flag as written (or the locale): even a bad argument is refused in it.
  const asked = localeLang(langArgument(args));
  useLanguage(asked);
  const options = parseStartArgs(args, asked);
  // The client's flags are checked now, values included: a typo costs one line, not a binder and a
  // server started for nothing.
  clientFlags(PROGRAM, options.clientArgs);
  const lang = localeLang(options.lang);
  useLanguage(lang);
  const t = TEXTS[lang];
  const host = options.local ? "127.0.0.1" : "0.0.0.0";
  // Before any file is touched: a system already running keeps its logs.
  const taken = portTaken(host, options.binderPort, t.binderPortName, t) ??
    portTaken(host, options.serverPort, t.serverPortName, t);
  if (taken) {
    complain(taken);
    return 1;
  }

  // A signal to us (SIGTERM, SIGHUP when the terminal closes, SIGINT from Ctrl-C or `kill`) stops
  // everything: the client leaves cleanly, then the server says goodbye to everyone, then the binder.
  let terminated = false;
  let stopRequested = () => {};
  const stopSignal = new Promise<void>((resolve) => stopRequested = resolve);
  /** The client in front, once started: a signal stops it first. */
  const front: { client?: Deno.ChildProcess } = {};
  const watched: Watched[] = [];
  const onSignal = () => {
    terminated = true;
    stopRequested();
    try {
      front.client?.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);

  const stopAll = async (): Promise<void> => {
    const stopped: Which[] = [];
    const down: Which[] = [];
    for (const program of [...watched].reverse()) (await program.stop() ? stopped : down).push(program.which);
    say(t.stopped(stopped.reverse(), down.reverse()));
  };
  const fail = async (message: string): Promise<number> => {
    complain(message);
    for (const program of [...watched].reverse()) await program.stop();
    return 1;
  };

  let binderPort = 0;
  const binder = new Watched(
    "binder",
    () => ["--host", host, "--port", String(binderPort || options.binderPort)],
    t,
  );
  watched.push(binder);
  const binderReady = await binder.ready();
  if (!binderReady) return await fail(t.didNotStart(t.binder, "binder.log", binder.tail()));
  binderPort = binderReady.porta;
  const binderAddress = `127.0.0.1:${binderPort}`;
  say(t.binderReady(`${host}:${binderPort}`));

  let serverPort = 0;
  const server = new Watched(
    "server",
    () => [
      "--host",
      host,
      "--port",
      String(serverPort || options.serverPort),
      "--binder",
      binderAddress,
      "--register-interval",
      REGISTER_INTERVAL_S,
    ],
    t,
    // Back once the binder knows it again: that is when clients find it.
    async (ready) => void await untilRegistered(binderPort, ready.porta),
  );
  watched.push(server);
  const serverReady = await server.ready();
  if (!serverReady) return await fail(t.didNotStart(t.server, "server.log", server.tail()));
  serverPort = serverReady.porta;
  if (!await untilRegistered(binderPort, serverPort)) return await fail(t.notRegistered);
  say(t.serverReady(`${host}:${serverPort}`));
  for (const line of joinInstructions(options, binderPort, t)) say(line);
  const watching = watched.map((program) => program.watch());

  // In front, on our terminal: not a ChildProgram, whose output is read line by line.
  const [deno, clientArgs] = denoRun(new URL("cliente.ts", HERE), PERMISSIONS.cliente, [
    "--binder",
    binderAddress,
    ...options.clientArgs,
  ]);
  const client = front.client = new Deno.Command(deno, {
    args: clientArgs,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  if (terminated) onSignal();
  const status = await client.status;

  const others = terminated ? undefined : await othersConnected(serverPort);
  // Whatever happens while serving on, everything is stopped after.
  if (others) await keepServing(others, stopSignal, t).catch((error) => complain(String(error)));
  await stopAll();
  await Promise.all(watching);
  return status.code;
}

/**
 * The host's client ended while others are still connected: says how many
 * and, on a terminal, asks whether to stop; otherwise (or when told not to)
 * serves on until a signal or the end of input.
 */
async function keepServing(others: number, stopSignal: Promise<void>, t: StartTexts): Promise<void> {
  say(t.others(others));
  const lines = readLines(Deno.stdin.readable).getReader();
  if (Deno.stdin.isTerminal()) {
    writeStdout(t.askStop);
    const answer = await Promise.race([readLine(lines), stopSignal.then(() => null)]);
    // Yes, Ctrl-D or a signal: stop.
    if (answer === null || t.yes.test(answer)) return;
    say(t.servingOnTerminal);
  } else {
    say(t.servingOnPipe);
  }
  const endOfInput = (async () => {
    while (await readLine(lines) !== null) {
      // Lines typed meanwhile mean nothing: only the end of input does.
    }
  })();
  await Promise.race([endOfInput, stopSignal]);
}

if (import.meta.main) Deno.exit(await main());
