#!/usr/bin/env -S deno run --allow-net
/**
 * The binder: rpc-chat's name service. Servers register `name -> host:port`
 * (the chat server as `ChatService`); clients look names up.
 *
 * ```sh
 * deno run --allow-net binder.ts                 # port 5000, every interface
 * deno run --allow-net binder.ts --port 0        # a free port, printed on start
 * ```
 *
 * It also serves the client over HTTP GET on the same port, so a classmate
 * runs it from there with one line and no `--binder`
 * (`deno run --allow-net http://192.168.0.10:5000/cliente.ts`): exactly
 * `cliente.ts` and the modules it imports, embedded at load, nothing else.
 * A browser opening `http://192.168.0.10:5000/` is sent to a live chat
 * server, which serves the chat page (`lib/web/`). The registry and its
 * method table are `lib/binder/`.
 *
 * Registering again succeeds (the original refused it), several endpoints
 * may share a name (lookups rotate among the live ones), endpoints are probed
 * and dropped when they stop answering, and servers can unregister.
 *
 * @module
 */

import {
  type Lang,
  langArgument,
  langFlag,
  localeLang,
  netNeeded,
  numberFlag,
  onTerminate,
  parseFlags,
  requirePermissions,
  secondsFlag,
  usageError,
  useLanguage,
} from "./deps.ts";
import {
  announceReady,
  Binder,
  binderMethods,
  chatEntry,
  chatServices,
  CONNECTION_FLAGS,
  CONNECTION_USAGE,
  connectionOptions,
  openLog,
  parseNetwork,
  serveClientModule,
  serveOrExit,
} from "./lib/host.ts";

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

const USAGE: Readonly<Record<Lang, string>> = {
  pt: `binder.ts: o serviço de nomes do rpc-chat

Uso: deno run --allow-net binder.ts [opções]

Opções:
  --host H                 interface onde escutar (padrão: 0.0.0.0, todas)
  --port P                 porta (padrão: 5000; 0 escolhe uma livre)
  --check-interval S       segundos entre verificações de vida (padrão: 5)
  --drop-after S           remove um serviço sem resposta há S segundos (padrão: 20)
${CONNECTION_USAGE.pt}
  --allow-register REDE    aceita registros também desta rede, em CIDR (ex.: 192.168.0.0/24);
                           repetível. Sem ela, só da própria máquina (loopback). Buscas são livres.
  --register-key CHAVE     registros e remoções de fora desta máquina precisam da chave (o servidor
                           a recebe com a mesma opção)
  --max-per-name N         endereços registrados sob um mesmo nome (padrão: 16)
  --max-per-source N       endereços registrados por um mesmo endereço de origem (padrão: 64)
  --max-endpoints N        endereços registrados ao todo, de quem for (padrão: 4096)
  --max-probes N           verificações de vida ao mesmo tempo (padrão: 8)
  --lang pt|en             idioma desta ajuda e dos erros de linha de comando (padrão: o do sistema)
  -h, --help               mostra esta ajuda

Na mesma porta, por HTTP GET, o binder serve o cliente e só ele: na rede, um colega entra com
  deno run --allow-net http://ESTE_IP:5000/cliente.ts
ou, só com um navegador, abre http://ESTE_IP:5000/ (o binder o leva a um servidor de chat no ar).`,
  en: `binder.ts: rpc-chat's name service

Usage: deno run --allow-net binder.ts [options]

Options:
  --host H                 interface to listen on (default: 0.0.0.0, every one)
  --port P                 port (default: 5000; 0 takes a free one)
  --check-interval S       seconds between liveness checks (default: 5)
  --drop-after S           drops a service silent for S seconds (default: 20)
${CONNECTION_USAGE.en}
  --allow-register NETWORK takes registrations from this network too, in CIDR (e.g. 192.168.0.0/24);
                           repeatable. Without it, from this machine only (loopback). Lookups are open.
  --register-key KEY       registrations and removals from outside this machine need the key (the server
                           gets it with the same option)
  --max-per-name N         addresses registered under one name (default: 16)
  --max-per-source N       addresses registered by one source address (default: 64)
  --max-endpoints N        addresses registered in all, by anyone (default: 4096)
  --max-probes N           liveness checks at once (default: 8)
  --lang pt|en             language of this help and of command-line errors (default: the system's)
  -h, --help               shows this help

On the same port, over HTTP GET, the binder serves the client and nothing else: on the LAN a classmate joins with
  deno run --allow-net http://THIS_IP:5000/cliente.ts
or, with nothing but a browser, opens http://THIS_IP:5000/ (the binder sends it to a live chat server).`,
};

/** The language of --help and of command-line errors. */
let lang: Lang = "pt";

function printUsage(): void {
  console.log(USAGE[lang]);
}

/** The program: flags, the registry, the server; the ready line once it listens. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const program = "binder.ts";
  lang = localeLang(langArgument(args));
  useLanguage(lang);
  const flags = parseFlags(program, printUsage, args, {
    lang: { type: "string" },
    host: { type: "string", default: "0.0.0.0" },
    port: { type: "string", default: "5000" },
    "check-interval": { type: "string", default: "5" },
    "drop-after": { type: "string", default: "20" },
    ...CONNECTION_FLAGS,
    "allow-register": { type: "string", multiple: true, default: [] },
    "register-key": { type: "string" },
    "max-per-name": { type: "string", default: "16" },
    "max-per-source": { type: "string", default: "64" },
    "max-endpoints": { type: "string", default: "4096" },
    "max-probes": { type: "string", default: "8" },
  });
  langFlag(program, flags.lang);
  const port = numberFlag(program, "--port", flags.port, { min: 0, max: 65535, integer: true });
  const seconds = (flag: string, text: string) => secondsFlag(program, flag, text, 3600);
  const checkIntervalMs = seconds("--check-interval", flags["check-interval"]);
  const dropAfterMs = seconds("--drop-after", flags["drop-after"]);
  const connections = connectionOptions(program, flags);
  const count = (flag: string, text: string, max: number) =>
    numberFlag(program, flag, text, { min: 1, max, integer: true });
  const maxPerName = count("--max-per-name", flags["max-per-name"], 100_000);
  const maxPerSource = count("--max-per-source", flags["max-per-source"], 100_000);
  const maxEndpoints = count("--max-endpoints", flags["max-endpoints"], 1_000_000);
  const maxProbes = count("--max-probes", flags["max-probes"], 1000);
  const registerKey = flags["register-key"];
  if (registerKey !== undefined && !/^[\x21-\x7e]{8,200}$/.test(registerKey)) {
    usageError(program, "--register-key: use de 8 a 200 caracteres ASCII visíveis, sem espaços");
  }
  const allowRegister = flags["allow-register"].map((text) =>
    parseNetwork(text) ??
      usageError(program, `--allow-register: rede inválida '${text}' (use CIDR, ex.: 192.168.0.0/24)`)
  );

  // Asked, never requested: without --allow-net, one line saying so instead of a prompt.
  requirePermissions(program, [netNeeded(flags.host, port)], "deno run --allow-net binder.ts");
  const log = await openLog("binder");
  const binder = new Binder({
    checkIntervalMs,
    dropAfterMs,
    probeTimeoutMs: Math.min(2000, checkIntervalMs),
    maxProbes,
    maxPerName,
    maxPerSource,
    maxEndpoints,
    allowRegister,
    registerKey,
    log,
  });
  const server = await serveOrExit(program, binderMethods(binder), {
    host: flags.host,
    port,
    ...connections,
    log,
    get: async (request) => await chatEntry(request, chatServices(binder)) ?? serveClientModule(request),
  });
  binder.start();
  // Before the ready line: whoever waits for it may stop us at once.
  // SIGHUP too when in a terminal that closes; without one, whoever started us stops us.
  onTerminate(async () => {
    binder.stop();
    await server.shutdown();
    log.info("Binder encerrado.");
    // Its lines on stdout before the exit (onTerminate exits once this settles).
    await log.close();
  }, { hangup: "terminal" });
  log.info(`Registros aceitos de: loopback${allowRegister.map((network) => `, ${network.text}`).join("")}`);
  log.info(
    `Registros: até ${maxPerName} por nome e ${maxPerSource} por origem, ${maxProbes} verificações de vida ` +
      `ao mesmo tempo${
        registerKey === undefined ? "" : "; de fora desta máquina, só com a chave de registro"
      }`,
  );
  log.info(`Binder ouvindo em ${flags.host}:${server.addr.port}`);
  announceReady({ programa: "binder", host: flags.host, porta: server.addr.port });
}

if (import.meta.main) await main();
