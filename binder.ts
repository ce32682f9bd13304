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
 *
 * Better than the original, which refused a second registration: registering
 * again succeeds, several endpoints may share a name (lookups rotate among the
 * live ones), endpoints are probed and dropped when they stop answering, and
 * servers can unregister.
 *
 * @module
 */

import {
  announceReady,
  BlockList,
  type Call,
  isIP,
  type Logger,
  type MethodTable,
  numberFlag,
  onTerminate,
  openLog,
  parseFlags,
  render,
  type Result,
  rpc,
  secondsFlag,
  serveXmlRpc,
  type Text,
  text,
  usageError,
} from "./deps.ts";
// Not through deps.ts: this module holds the client's source, which the client itself must not load.
import { serveClientModule } from "./deps/web.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** `novo` until its first probe, then `vivo` or `sem resposta`. */
export type EndpointState = "novo" | "vivo" | "sem resposta";

/** One registration: a name served at `host:port`. */
export interface Endpoint {
  /** The service's name, `ChatService` for the chat server. */
  readonly name: string;
  /** Where clients reach it: an address or a host name, as the server registered it. */
  readonly host: string;
  /** Its TCP port. */
  readonly port: number;
  /** When it first registered (ms since the epoch). */
  readonly registeredAt: number;
  /** When it last answered a probe or registered. */
  lastSeen: number;
  /** What the last probe found. */
  state: EndpointState;
}

/** What the registry answers: its texts in no language yet ({@linkcode binderMethods} renders them per caller). */
export type Answer<T> = [ok: true, payload: T] | [ok: false, message: Text];

/** How a {@linkcode Binder} probes, drops, admits and logs. */
export interface BinderOptions {
  /** How often every endpoint is probed. */
  checkIntervalMs: number;
  /** An endpoint silent for this long is dropped. */
  dropAfterMs: number;
  /** How long a probe waits for a connection. */
  probeTimeoutMs: number;
  /** Networks besides loopback whose hosts may register and unregister (`--allow-register`). */
  allowRegister?: readonly Network[];
  /** Where registrations, removals, failed lookups and refusals are logged (info lines only). */
  log: Logger;
}

const MAX_NAME = 100;
const MAX_HOST = 255;
const CONTROL = /[\p{Cc}]/u;

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/** The registry: names to endpoints, kept honest by probing. */
export class Binder {
  readonly #services = new Map<string, Endpoint[]>();
  readonly #rotation = new Map<string, number>();
  readonly #options: BinderOptions;
  readonly #registrants: BlockList;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;

  /** An empty registry; {@linkcode Binder.start} starts the probes. */
  constructor(options: BinderOptions) {
    this.#options = options;
    this.#registrants = registrants(options.allowRegister ?? []);
  }

  /** Whether a caller at this address may register and unregister: loopback, or an allowed network. */
  mayRegister(address: string): boolean {
    if (listed(this.#registrants, address)) return true;
    this.#options.log.info(`Registro recusado de ${address} (fora de --allow-register)`);
    return false;
  }

  /** Registers `name -> host:port`, or renews that registration; refuses bad names, hosts and ports. */
  register(name: string, host: string, port: number): Answer<Text> {
    name = name.trim();
    host = host.trim();
    const invalid = invalidEndpoint(name, host, port);
    if (invalid) return [false, invalid];
    const now = Date.now();
    const endpoints = this.#services.get(name) ?? [];
    const known = endpoints.find((e) => e.host === host && e.port === port);
    if (known) {
      known.lastSeen = now;
      known.state = "vivo";
      return [true, text("serviceRenewed", name, `${host}:${port}`)];
    }
    endpoints.push({ name, host, port, registeredAt: now, lastSeen: now, state: "novo" });
    this.#services.set(name, endpoints);
    this.#options.log.info(`Registrado: ${name} -> ${host}:${port}`);
    return [true, text("serviceRegistered", name, `${host}:${port}`)];
  }

  /** A live endpoint of the name, rotating among them. */
  lookup(name: string): Answer<{ endereco: string; porta: number }> {
    name = name.trim();
    const live = (this.#services.get(name) ?? []).filter((e) => e.state !== "sem resposta");
    if (live.length === 0) {
      this.#options.log.info(`Busca sem resultado: ${name}`);
      return [false, text("serviceNotFound", name)];
    }
    const turn = this.#rotation.get(name) ?? 0;
    this.#rotation.set(name, turn + 1);
    const endpoint = live[turn % live.length]!;
    return [true, { endereco: endpoint.host, porta: endpoint.port }];
  }

  /** Removes one registration of the name. */
  unregister(name: string, host: string, port: number): Answer<Text> {
    name = name.trim();
    host = host.trim();
    if (!this.#remove(name, (e) => e.host === host && e.port === port)) {
      return [false, text("serviceNotAt", name, `${host}:${port}`)];
    }
    this.#options.log.info(`Removido a pedido: ${name} -> ${host}:${port}`);
    return [true, text("serviceRemoved", name, `${host}:${port}`)];
  }

  /** Every registration, of every name. */
  list(): Endpoint[] {
    return [...this.#services.values()].flat();
  }

  /** Probes every endpoint once and drops those silent for too long. */
  async checkLiveness(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      await Promise.all(
        this.list().map(async (endpoint) => {
          if (await this.#answers(endpoint)) {
            endpoint.lastSeen = Date.now();
            endpoint.state = "vivo";
          } else if (Date.now() - endpoint.lastSeen >= this.#options.dropAfterMs) {
            this.#remove(endpoint.name, (e) => e === endpoint);
            const silent = Math.round((Date.now() - endpoint.lastSeen) / 1000);
            this.#options.log.info(
              `Removido (sem resposta há ${silent} s): ${endpoint.name} -> ${endpoint.host}:${endpoint.port}`,
            );
          } else {
            endpoint.state = "sem resposta";
          }
        }),
      );
    } finally {
      this.#checking = false;
    }
  }

  /** Probes every {@linkcode BinderOptions.checkIntervalMs} until {@linkcode Binder.stop}. */
  start(): void {
    this.#timer ??= setInterval(() => this.checkLiveness(), this.#options.checkIntervalMs);
  }

  /** Stops the probes. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #remove(name: string, match: (e: Endpoint) => boolean): boolean {
    const endpoints = this.#services.get(name) ?? [];
    const kept = endpoints.filter((e) => !match(e));
    if (kept.length === endpoints.length) return false;
    if (kept.length) this.#services.set(name, kept);
    else this.#services.delete(name);
    return true;
  }

  /** A TCP connection is the probe: it works for any server, the original Python one included. */
  async #answers(endpoint: Endpoint): Promise<boolean> {
    try {
      const connection = await Deno.connect({
        hostname: endpoint.host,
        port: endpoint.port,
        signal: AbortSignal.timeout(this.#options.probeTimeoutMs),
      });
      connection.close();
      return true;
    } catch {
      return false;
    }
  }
}

function invalidEndpoint(name: string, host: string, port: number): Text | undefined {
  if (!name || name.length > MAX_NAME || CONTROL.test(name)) return text("serviceNameInvalid", MAX_NAME);
  if (!host || host.length > MAX_HOST || /[\s\p{Cc}/]/u.test(host)) return text("serviceHostInvalid", host);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return text("servicePortInvalid", port);
  return undefined;
}

// ---------------------------------------------------------------------------
// Who may register: loopback and the networks of --allow-register
// ---------------------------------------------------------------------------

/** A network of `--allow-register` in CIDR notation; a single address is a /32 or /128. */
export interface Network {
  /** As written, lowercased, with its prefix: `192.168.0.0/24`, `fd00::/8`, `10.0.0.7/32`. */
  readonly text: string;
  /** The address part, lowercased: `192.168.0.0`. */
  readonly address: string;
  /** How many leading bits name the network. */
  readonly prefix: number;
  /** `ipv4` or `ipv6`, as `node:net`'s `BlockList` takes it. */
  readonly family: "ipv4" | "ipv6";
}

/** `10.0.0.0/8`, `fd00::/8` or one address (no zone); undefined when it is none of these. */
export function parseNetwork(text: string): Network | undefined {
  const [, written = "", bits] = /^([^/%]+)(?:\/(0|[1-9]\d{0,2}))?$/.exec(text.trim()) ?? [];
  const family = familyOf(written);
  const max = family === "ipv4" ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (!family || prefix > max) return undefined;
  const address = written.toLowerCase();
  return { text: `${address}/${prefix}`, address, prefix, family };
}

function familyOf(address: string): "ipv4" | "ipv6" | undefined {
  const version = isIP(address);
  return version === 4 ? "ipv4" : version === 6 ? "ipv6" : undefined;
}

/**
 * Loopback (127.0.0.0/8 and ::1) and the given networks. BlockList matches an
 * IPv4-mapped IPv6 address (`::ffff:192.168.0.7`) against IPv4 networks itself.
 */
function registrants(networks: readonly Network[]): BlockList {
  const list = new BlockList();
  list.addSubnet("127.0.0.0", 8, "ipv4");
  list.addAddress("::1", "ipv6");
  for (const { address, prefix, family } of networks) list.addSubnet(address, prefix, family);
  return list;
}

/** Whether a caller's address (as Deno.serve gives it) is in the list; a zone (`fe80::1%eth0`) is ignored. */
function listed(list: BlockList, address: string): boolean {
  const bare = address.replace(/%.*$/, "");
  const family = familyOf(bare);
  return family !== undefined && list.check(bare, family);
}

// ---------------------------------------------------------------------------
// RPC methods
// ---------------------------------------------------------------------------

/** An answer in the caller's language: a refusal's text rendered. */
function inWords<T>(call: Call, answer: Answer<T>): Result<T> {
  return answer[0] ? answer : [false, render(answer[1], call.language)];
}

/** An answer whose payload is a text too (either way a text), in the caller's language. */
function saying(call: Call, answer: Answer<Text>): Result<string> {
  return [answer[0], render(answer[1], call.language)] as Result<string>;
}

/** Registers or unregisters, if the caller's address may; in the caller's language. */
function ifAllowed(binder: Binder, call: Call, change: () => Answer<Text>): Result<string> {
  const allowed = binder.mayRegister(call.remoteAddress);
  return saying(call, allowed ? change() : [false, text("registrationRefused", call.remoteAddress)]);
}

/** The binder's method table: the two original methods and our extensions. */
export function binderMethods(binder: Binder): MethodTable {
  return {
    registrar_procedimento: rpc(
      "Registra (ou renova) um serviço: [true, msg] ou [false, msg].",
      [["nome", "string"], ["endereco", "string"], ["porta", "int"]],
      (call, nome, endereco, porta) => ifAllowed(binder, call, () => binder.register(nome, endereco, porta)),
    ),
    buscar_procedimento: rpc(
      "Busca um serviço vivo: [true, {endereco, porta}] ou [false, msg]. Com vários, alterna entre eles.",
      [["nome", "string"]],
      (call, nome) => inWords(call, binder.lookup(nome)),
    ),
    remover_procedimento: rpc(
      "Remove o registro de um serviço: [true, msg] ou [false, msg].",
      [["nome", "string"], ["endereco", "string"], ["porta", "int"]],
      (call, nome, endereco, porta) =>
        ifAllowed(binder, call, () => binder.unregister(nome, endereco, porta)),
    ),
    listar_procedimentos: rpc(
      "Lista os registros: [true, [{nome, endereco, porta, idade_s, visto_ha_s, estado}...]].",
      [],
      () => {
        const now = Date.now();
        return [
          true,
          binder.list().map((e) => ({
            nome: e.name,
            endereco: e.host,
            porta: e.port,
            idade_s: Math.floor((now - e.registeredAt) / 1000),
            visto_ha_s: Math.floor((now - e.lastSeen) / 1000),
            estado: e.state,
          })),
        ];
      },
    ),
  };
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

const USAGE = `binder.ts: o serviço de nomes do rpc-chat

Uso: deno run --allow-net binder.ts [opções]

Opções:
  --host H                 interface onde escutar (padrão: 0.0.0.0, todas)
  --port P                 porta (padrão: 5000; 0 escolhe uma livre)
  --check-interval S       segundos entre verificações de vida (padrão: 5)
  --drop-after S           remove um serviço sem resposta há S segundos (padrão: 20)
  --request-timeout S      prazo para um cliente enviar a requisição (padrão: 10)
  --allow-register REDE    aceita registros também desta rede, em CIDR (ex.: 192.168.0.0/24);
                           repetível. Sem ela, só da própria máquina (loopback). Buscas são livres.
  -h, --help               mostra esta ajuda

Na mesma porta, por HTTP GET, o binder serve o cliente e só ele: na rede, um colega entra com
  deno run --allow-net http://ESTE_IP:5000/cliente.ts`;

function printUsage(): void {
  console.log(USAGE);
}

/** The program: flags, the registry, the server; the ready line once it listens. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const program = "binder.ts";
  const flags = parseFlags(program, printUsage, args, {
    host: { type: "string", default: "0.0.0.0" },
    port: { type: "string", default: "5000" },
    "check-interval": { type: "string", default: "5" },
    "drop-after": { type: "string", default: "20" },
    "request-timeout": { type: "string", default: "10" },
    "allow-register": { type: "string", multiple: true, default: [] },
  });
  const port = numberFlag(program, "--port", flags.port, { min: 0, max: 65535, integer: true });
  const seconds = (flag: string, text: string) => secondsFlag(program, flag, text, 3600);
  const checkIntervalMs = seconds("--check-interval", flags["check-interval"]);
  const dropAfterMs = seconds("--drop-after", flags["drop-after"]);
  const bodyTimeoutMs = seconds("--request-timeout", flags["request-timeout"]);
  const allowRegister = flags["allow-register"].map((text) =>
    parseNetwork(text) ??
      usageError(program, `--allow-register: rede inválida '${text}' (use CIDR, ex.: 192.168.0.0/24)`)
  );

  const log = await openLog("binder");
  const binder = new Binder({
    checkIntervalMs,
    dropAfterMs,
    probeTimeoutMs: Math.min(2000, checkIntervalMs),
    allowRegister,
    log,
  });
  let server;
  try {
    server = serveXmlRpc(binderMethods(binder), {
      host: flags.host,
      port,
      bodyTimeoutMs,
      log,
      get: serveClientModule,
    });
  } catch (error) {
    console.error(
      `${program}: não foi possível escutar em ${flags.host}:${port}: ${(error as Error).message}`,
    );
    Deno.exit(1);
  }
  binder.start();
  // Before the ready line: whoever waits for it may stop us at once.
  onTerminate(async () => {
    binder.stop();
    log.info("Binder encerrado.");
    await server.shutdown();
  });
  log.info(`Registros aceitos de: loopback${allowRegister.map((network) => `, ${network.text}`).join("")}`);
  log.info(`Binder ouvindo em ${flags.host}:${server.addr.port}`);
  announceReady({ programa: "binder", host: flags.host, porta: server.addr.port });
}

if (import.meta.main) await main();
