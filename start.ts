#!/usr/bin/env -S deno run --allow-run=deno --allow-net=127.0.0.1 --allow-write=binder.log,server.log
/**
 * `deno task start`: the whole system on one machine. Starts the binder and
 * the chat server in the background (their output in `binder.log` and
 * `server.log`), waits until each is ready, runs one client in the
 * foreground, and when the client ends stops both, leaving nothing running;
 * the exit code is the client's. Every argument that is not start.ts's own
 * goes to the client.
 *
 * ```sh
 * deno task start                          # binder :5000, server :8001, a client
 * deno task start --name ana --room geral  # the client's flags
 * deno task client                         # a second client, from another terminal
 * ```
 *
 * Each program runs with its own exact permissions (see the README); this
 * script needs to run `deno`, reach 127.0.0.1 (to see that the server is
 * registered) and write its two log files.
 *
 * @module
 */

import {
  ChildProgram,
  endpointUrl,
  numberFlag,
  PERMISSIONS,
  type ReadyLine,
  usageError,
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
Quando o cliente termina, binder e servidor são encerrados.`;

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
// Program
// ---------------------------------------------------------------------------

/** Starts everything, runs the client, stops everything; resolves to the client's exit code. */
export async function main(args: string[] = Deno.args): Promise<number> {
  const options = parseStartArgs(args);
  const host = options.local ? "127.0.0.1" : "0.0.0.0";
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
  console.log(
    `Outros clientes: deno task client${binderPort === 5000 ? "" : ` --binder 127.0.0.1:${binderPort}`} ` +
      `(nesta máquina) ou deno run --allow-net cliente.ts --binder IP:${binderPort} (na rede)`,
  );

  const client = new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      ...PERMISSIONS.cliente,
      new URL("cliente.ts", HERE).href,
      "--binder",
      binderAddress,
      ...options.clientArgs,
    ],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Ctrl-C reaches the client by itself (it shares the terminal); SIGTERM to us ends it cleanly.
  const forward = () => {
    try {
      client.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, signal === "SIGINT" ? () => {} : forward);
  const status = await client.status;
  await stopAll();
  console.log("Binder e servidor encerrados.");
  return status.code;
}

if (import.meta.main) Deno.exit(await main());
