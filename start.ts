#!/usr/bin/env -S deno run --allow-run=deno --allow-net=127.0.0.1,0.0.0.0 --allow-sys=networkInterfaces --allow-write=binder.log,server.log
/**
 * `deno task start`: the whole system on one machine. Refuses at once, in
 * one line and before touching any file, when the binder's or the server's
 * port is taken (a second start leaves the running system's logs alone).
 * Starts the binder and the chat server in the background (their output in
 * `binder.log` and `server.log`), waits until each is ready, prints the line
 * classmates type to join from the LAN (with this machine's addresses: the
 * binder serves them the client), and runs one client in the foreground.
 * When that client ends and nobody else is in the chat, it stops both,
 * leaving nothing running; when others still are, it says how many and asks
 * (on a terminal) whether to stop, or serves on until a signal or the end of
 * input. The exit code is the client's. Every argument that is not
 * start.ts's own goes to the client.
 *
 * ```sh
 * deno task start                          # binder :5000, server :8001, a client
 * deno task start --name ana --room geral  # the client's flags
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
  checkFlags,
  ChildProgram,
  CLIENT_FLAGS,
  denoRun,
  endpointUrl,
  numberFlag,
  ownLanAddresses,
  PERMISSIONS,
  readLines,
  type ReadyLine,
  usageError,
  writeStdout,
  XmlRpcClient,
} from "./deps.ts";

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
  /** Everything else: the client's arguments. */
  clientArgs: string[];
}

const PROGRAM = "start.ts";
const HERE = new URL(".", import.meta.url);
const READY_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------------------
// Command line: our flags, and the rest for the client
// ---------------------------------------------------------------------------

const USAGE = `start.ts: binder, servidor e um cliente do rpc-chat de uma vez

Uso: deno task start [opções] [opções do cliente]

Opções:
  --local              escuta só em 127.0.0.1 (padrão: todas as interfaces, para a rede local)
  --binder-port P      porta do binder (padrão: 5000; 0 escolhe uma livre)
  --server-port P      porta do servidor (padrão: 8001; 0 escolhe uma livre)
  -h, --help           mostra esta ajuda

Todas as outras opções vão para o cliente (--name, --room, --lang...).
A saída do binder e do servidor fica em binder.log e server.log.
Mostra a linha que os colegas digitam na rede local (o binder serve o cliente).
Quando o cliente termina, binder e servidor são encerrados; se ainda há gente no chat,
pergunta antes (num terminal) ou continua até Ctrl-C, SIGTERM ou o fim da entrada.`;

/** Splits start.ts's own flags from the client's. */
export function parseStartArgs(args: string[]): StartOptions {
  const options: StartOptions = { local: false, binderPort: 5000, serverPort: 8001, clientArgs: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    const value = () => {
      const text = eq > 0 && flag !== arg ? arg.slice(eq + 1) : args[++i];
      if (text === undefined) usageError(PROGRAM, `a opção ${flag} precisa de um valor`);
      return text;
    };
    const port = (text: string) => numberFlag(PROGRAM, flag, text, { min: 0, max: 65535, integer: true });
    switch (flag) {
      case "-h":
      case "--help":
        console.log(USAGE);
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
// Background programs
// ---------------------------------------------------------------------------

/** Starts one of our programs in the background, its output copied to a log file. */
function background(
  script: string,
  permissions: readonly string[],
  args: string[],
  logFile: string,
): ChildProgram {
  return ChildProgram.deno(new URL(script, HERE), permissions, args, { outputFile: logFile });
}

/** Its ready line, or undefined if it ended or took too long. */
async function readyLine(program: ChildProgram): Promise<ReadyLine | undefined> {
  try {
    return await program.ready(READY_TIMEOUT_MS);
  } catch {
    return undefined;
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

// ---------------------------------------------------------------------------
// The ports, the LAN, who is still there
// ---------------------------------------------------------------------------

/**
 * Why the port cannot be ours, or undefined when it is free (port 0: any
 * free one will do). Asked before anything starts, so a second start leaves
 * the running system and its log files alone.
 */
function portTaken(host: string, port: number, what: string): string | undefined {
  if (port === 0) return undefined;
  try {
    Deno.listen({ hostname: host, port }).close();
    return undefined;
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      return `a porta ${port} (${what}) já está em uso: o rpc-chat já roda nesta máquina? Nada foi iniciado ` +
        `e binder.log e server.log ficaram como estavam (outras portas: --binder-port, --server-port).`;
    }
    return `não é possível escutar em ${host}:${port} (${what}): ${(error as Error).message}`;
  }
}

/** The line a classmate types to join: the client, straight from the binder. */
export function classmateLine(address: string, binderPort: number): string {
  return `deno run --allow-net http://${address}:${binderPort}/cliente.ts`;
}

/** What start.ts says once everything is up: how others join, here and on the LAN. */
function joinInstructions(options: StartOptions, binderPort: number): string[] {
  const here = `deno task client${binderPort === 5000 ? "" : ` --binder 127.0.0.1:${binderPort}`}`;
  if (options.local) return [`Só nesta máquina (--local); outro cliente: ${here}`];
  const addresses = ownLanAddresses();
  if (addresses.length === 0) {
    return [
      `Nenhum endereço de rede local encontrado. Nesta máquina, outro cliente: ${here}`,
      `Na rede, com o IP desta máquina: ${classmateLine("IP", binderPort)}`,
    ];
  }
  return [
    `O binder serve o cliente em ${addresses.map((a) => `http://${a}:${binderPort}/cliente.ts`).join(" e ")}`,
    addresses.length === 1
      ? "Colegas na rede local entram com:"
      : "Colegas na rede local entram com uma destas linhas (a da rede de vocês):",
    ...addresses.map((address) => `  ${classmateLine(address, binderPort)}`),
    `Nesta máquina, outro cliente: ${here}`,
  ];
}

/** How many users are in the server's rooms (the host's client has left by then); undefined if it is gone. */
async function othersConnected(serverPort: number): Promise<number | undefined> {
  try {
    const server = new XmlRpcClient(endpointUrl("127.0.0.1", serverPort), { timeoutMs: 2000 });
    const [, rooms] = await server.call<[boolean, string[]]>("listar_salas", []);
    const names = new Set<string>();
    for (const room of rooms) {
      const [ok, members] = await server.call<[boolean, string[]]>("listar_usuarios", [room]);
      if (ok) { for (const name of members) names.add(name); }
    }
    return names.size;
  } catch {
    return undefined;
  }
}

/** The next line of our stdin, or null at its end. */
async function readLine(reader: ReadableStreamDefaultReader<string>): Promise<string | null> {
  const { done, value } = await reader.read();
  return done ? null : value;
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

/** Starts everything, runs the client, stops everything; resolves to the client's exit code. */
export async function main(args: string[] = Deno.args): Promise<number> {
  const options = parseStartArgs(args);
  // The client's flags are checked now: a typo costs one line, not a binder and a server started for nothing.
  checkFlags(PROGRAM, options.clientArgs, CLIENT_FLAGS);
  const host = options.local ? "127.0.0.1" : "0.0.0.0";
  // Before any file is touched: a system already running keeps its logs.
  const taken = portTaken(host, options.binderPort, "binder") ??
    portTaken(host, options.serverPort, "servidor");
  if (taken) {
    console.error(`${PROGRAM}: ${taken}`);
    return 1;
  }
  const running: ChildProgram[] = [];
  const stopAll = async () => {
    for (const program of running.reverse()) await program.stop();
  };
  const fail = async (message: string): Promise<number> => {
    console.error(`${PROGRAM}: ${message}`);
    await stopAll();
    return 1;
  };

  const binder = background("binder.ts", PERMISSIONS.binder, [
    "--host",
    host,
    "--port",
    String(options.binderPort),
  ], "binder.log");
  running.push(binder);
  const binderReady = await readyLine(binder);
  if (!binderReady) return await fail(`o binder não iniciou (veja binder.log):\n${binder.tail()}`);
  const binderPort = binderReady.porta;
  const binderAddress = `127.0.0.1:${binderPort}`;
  console.log(`Binder pronto em ${host}:${binderPort} (saída em binder.log).`);

  const server = background("server.ts", PERMISSIONS.server, [
    "--host",
    host,
    "--port",
    String(options.serverPort),
    "--binder",
    binderAddress,
  ], "server.log");
  running.push(server);
  const serverReady = await readyLine(server);
  if (!serverReady) return await fail(`o servidor não iniciou (veja server.log):\n${server.tail()}`);
  const serverPort = serverReady.porta;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await registered(binderPort, serverPort))) {
    if (Date.now() > deadline) return await fail("o servidor não se registrou no binder (veja server.log)");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.log(
    `Servidor pronto em ${host}:${serverPort}, registrado no binder (saída em server.log, log em chat_server.log).`,
  );
  for (const line of joinInstructions(options, binderPort)) console.log(line);

  // In front, on our terminal: not a ChildProgram, whose output is read line by line.
  const [deno, clientArgs] = denoRun(new URL("cliente.ts", HERE), PERMISSIONS.cliente, [
    "--binder",
    binderAddress,
    ...options.clientArgs,
  ]);
  const client = new Deno.Command(deno, {
    args: clientArgs,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();

  // A signal to us (SIGTERM, SIGHUP, or SIGINT from `kill`) stops everything: the client leaves
  // cleanly first. On a terminal, Ctrl-C in the client is a key the client reads, not a signal.
  let terminated = false;
  let stopRequested = () => {};
  const stopSignal = new Promise<void>((resolve) => stopRequested = resolve);
  const onSignal = () => {
    terminated = true;
    stopRequested();
    try {
      client.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  const status = await client.status;

  const others = terminated ? undefined : await othersConnected(serverPort);
  if (others) await keepServing(others, stopSignal);
  await stopAll();
  console.log("Binder e servidor encerrados.");
  return status.code;
}

/**
 * The host's client ended while others are still in the chat: says how many
 * and, on a terminal, asks whether to stop; otherwise (or when told not to)
 * serves on until a signal or the end of input.
 */
async function keepServing(others: number, stopSignal: Promise<void>): Promise<void> {
  const people = others === 1 ? "1 pessoa" : `${others} pessoas`;
  console.log(`Ainda há ${people} no chat.`);
  const lines = readLines(Deno.stdin.readable)
    .getReader();
  if (Deno.stdin.isTerminal()) {
    writeStdout("Encerrar o serviço para todos? [s/N] ");
    const answer = await Promise.race([readLine(lines), stopSignal.then(() => null)]);
    // Yes, Ctrl-D or a signal: stop.
    if (answer === null || /^\s*(s|sim|y|yes)\s*$/i.test(answer)) return;
    console.log("O serviço continua para os outros; Ctrl-C (ou Ctrl-D) o encerra.");
  } else {
    console.log("O serviço continua para os outros até Ctrl-C, SIGTERM ou o fim da entrada.");
  }
  const endOfInput = (async () => {
    while (await readLine(lines) !== null) {
      // Lines typed meanwhile mean nothing: only the end of input does.
    }
  })();
  await Promise.race([endOfInput, stopSignal]);
}

if (import.meta.main) Deno.exit(await main());
