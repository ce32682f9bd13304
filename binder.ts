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
 * Better than the original, which refused a second registration: registering
 * again succeeds, several endpoints may share a name (lookups rotate among the
 * live ones), endpoints are probed and dropped when they stop answering, and
 * servers can unregister.
 *
 * @module
 */

import {
  announceReady,
  type Logger,
  type MethodTable,
  numberFlag,
  onTerminate,
  openLog,
  parseFlags,
  type Result,
  rpc,
  secondsFlag,
  serveXmlRpc,
  usageError,
} from "./deps.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** `novo` until its first probe, then `vivo` or `sem resposta`. */
export type EndpointState = "novo" | "vivo" | "sem resposta";

export interface Endpoint {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly registeredAt: number;
  /** When it last answered a probe or registered. */
  lastSeen: number;
  state: EndpointState;
}

export interface BinderOptions {
  /** How often every endpoint is probed. */
  checkIntervalMs: number;
  /** An endpoint silent for this long is dropped. */
  dropAfterMs: number;
  /** How long a probe waits for a connection. */
  probeTimeoutMs: number;
  /** Networks besides loopback whose hosts may register and unregister (`--allow-register`). */
  allowRegister?: readonly Network[];
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
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;

  constructor(options: BinderOptions) {
    this.#options = options;
  }

  /** Whether a caller at this address may register and unregister: loopback, or an allowed network. */
  mayRegister(address: string): boolean {
    if (isLoopback(address) || this.#options.allowRegister?.some((network) => inNetwork(address, network))) {
      return true;
    }
    this.#options.log.info(`Registro recusado de ${address} (fora de --allow-register)`);
    return false;
  }

  register(name: string, host: string, port: number): Result<string> {
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
      return [true, `Procedimento '${name}' já estava registrado em ${host}:${port}; registro renovado.`];
    }
    endpoints.push({ name, host, port, registeredAt: now, lastSeen: now, state: "novo" });
    this.#services.set(name, endpoints);
    this.#options.log.info(`Registrado: ${name} -> ${host}:${port}`);
    return [true, `Procedimento '${name}' registrado em ${host}:${port}.`];
  }

  /** A live endpoint of the name, rotating among them. */
  lookup(name: string): Result<{ endereco: string; porta: number }> {
    name = name.trim();
    const live = (this.#services.get(name) ?? []).filter((e) => e.state !== "sem resposta");
    if (live.length === 0) {
      this.#options.log.info(`Busca sem resultado: ${name}`);
      return [false, `Procedimento '${name}' não encontrado.`];
    }
    const turn = this.#rotation.get(name) ?? 0;
    this.#rotation.set(name, turn + 1);
    const endpoint = live[turn % live.length]!;
    return [true, { endereco: endpoint.host, porta: endpoint.port }];
  }

  unregister(name: string, host: string, port: number): Result<string> {
    name = name.trim();
    host = host.trim();
    if (!this.#remove(name, (e) => e.host === host && e.port === port)) {
      return [false, `Procedimento '${name}' não está registrado em ${host}:${port}.`];
    }
    this.#options.log.info(`Removido a pedido: ${name} -> ${host}:${port}`);
    return [true, `Procedimento '${name}' em ${host}:${port} removido.`];
  }

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

  start(): void {
    this.#timer ??= setInterval(() => this.checkLiveness(), this.#options.checkIntervalMs);
  }

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

function invalidEndpoint(name: string, host: string, port: number): string | undefined {
  if (!name || name.length > MAX_NAME || CONTROL.test(name)) {
    return `Nome inválido: use de 1 a ${MAX_NAME} caracteres, sem caracteres de controle.`;
  }
  if (!host || host.length > MAX_HOST || /[\s\p{Cc}/]/u.test(host)) return `Endereço inválido: '${host}'.`;
  if (port < 1 || port > 65535) return `Porta inválida: ${port} (use de 1 a 65535).`;
  return undefined;
}

// ---------------------------------------------------------------------------
// Who may register: loopback and the networks of --allow-register
// ---------------------------------------------------------------------------

/** A network in CIDR notation (a single address is a /32 or /128). */
export interface Network {
  /** As written, normalized: `192.168.0.0/24`. */
  readonly text: string;
  readonly family: 4 | 6;
  /** The network's address, host bits cleared. */
  readonly base: bigint;
  readonly prefix: number;
}

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/i;

function parseIpv4(text: string): bigint | undefined {
  const octets = IPV4.exec(text)?.slice(1).map(Number);
  if (!octets || octets.some((octet) => octet > 255)) return undefined;
  return octets.reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
}

function parseIpv6(text: string): bigint | undefined {
  // A dotted IPv4 tail (::ffff:10.0.0.1) is the last two groups.
  const tail = text.slice(text.lastIndexOf(":") + 1);
  if (tail.includes(".")) {
    const v4 = parseIpv4(tail);
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, -tail.length)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = halves.map((half) => half === "" ? [] : half.split(":"));
  const count = groups.flat().length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const all = halves.length === 1
    ? groups[0]!
    : [...groups[0]!, ...Array(8 - count).fill("0"), ...groups[1]!];
  if (!all.every((group) => HEX_GROUP.test(group))) return undefined;
  return all.reduce((value, group) => (value << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** An IP address as a family and a number; IPv4-mapped IPv6 (`::ffff:10.0.0.1`) is IPv4. */
export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseIpv6(text.replace(/%[\w.-]+$/, "")); // Without a zone (fe80::1%eth0).
  if (v6 === undefined) return undefined;
  if (v6 >> 32n === 0xffffn) return { family: 4, value: v6 & 0xffffffffn };
  return { family: 6, value: v6 };
}

/** `10.0.0.0/8`, `fd00::/8` or one address; undefined when it is none of these. */
export function parseNetwork(text: string): Network | undefined {
  const match = /^([^/]+)(?:\/(0|[1-9]\d{0,2}))?$/.exec(text.trim());
  if (!match) return undefined;
  const v4 = parseIpv4(match[1]!);
  const v6 = v4 === undefined && !match[1]!.includes("%") ? parseIpv6(match[1]!) : undefined;
  if (v4 === undefined && v6 === undefined) return undefined;
  let family: 4 | 6 = v4 !== undefined ? 4 : 6;
  let value = (v4 ?? v6)!;
  let prefix = match[2] === undefined ? (family === 4 ? 32 : 128) : Number(match[2]);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  if (family === 6 && prefix >= 96 && value >> 32n === 0xffffn) {
    // IPv4-mapped (::ffff:10.0.0.0/104): the IPv4 network, as addresses are compared.
    [family, value, prefix] = [4, value & 0xffffffffn, prefix - 96];
  }
  const bits = family === 4 ? 32 : 128;
  const base = (value >> BigInt(bits - prefix)) << BigInt(bits - prefix);
  const address = family === 4
    ? [24n, 16n, 8n, 0n].map((shift) => (base >> shift) & 0xffn).join(".")
    : formatIpv6(base);
  return { text: `${address}/${prefix}`, family, base, prefix };
}

function formatIpv6(value: bigint): string {
  const groups = Array.from(
    { length: 8 },
    (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16),
  );
  // The longest run of zero groups becomes "::".
  const text = groups.join(":");
  const runs = text.match(/(?:^|:)0(?::0)+(?::|$)/g) ?? [];
  const longest = runs.sort((a, b) => b.length - a.length)[0];
  return longest ? text.replace(longest, "::") : text;
}

/** Whether an address belongs to a network. */
export function inNetwork(address: string, network: Network): boolean {
  const parsed = parseAddress(address);
  if (!parsed || parsed.family !== network.family) return false;
  const shift = BigInt((network.family === 4 ? 32 : 128) - network.prefix);
  return parsed.value >> shift === network.base >> shift;
}

const LOOPBACK = [parseNetwork("127.0.0.0/8")!, parseNetwork("::1/128")!];

/** 127.0.0.0/8 and ::1: the binder's own machine. */
export function isLoopback(address: string): boolean {
  return LOOPBACK.some((network) => inNetwork(address, network));
}

// ---------------------------------------------------------------------------
// RPC methods
// ---------------------------------------------------------------------------

function refusal(address: string): [false, string] {
  return [
    false,
    `Registro recusado: ${address} não pode registrar nem remover serviços neste binder. Quem o inicia ` +
    `pode liberar uma rede com --allow-register (ex.: --allow-register 192.168.0.0/24).`,
  ];
}

/** The binder's method table: the two original methods and our extensions. */
export function binderMethods(binder: Binder): MethodTable {
  return {
    registrar_procedimento: rpc(
      "Registra (ou renova) um serviço: [true, msg] ou [false, msg].",
      [["nome", "string"], ["endereco", "string"], ["porta", "int"]],
      (call, nome, endereco, porta) =>
        binder.mayRegister(call.remoteAddress)
          ? binder.register(nome, endereco, porta)
          : refusal(call.remoteAddress),
    ),
    buscar_procedimento: rpc(
      "Busca um serviço vivo: [true, {endereco, porta}] ou [false, msg]. Com vários, alterna entre eles.",
      [["nome", "string"]],
      (_call, nome) => binder.lookup(nome),
    ),
    remover_procedimento: rpc(
      "Remove o registro de um serviço: [true, msg] ou [false, msg].",
      [["nome", "string"], ["endereco", "string"], ["porta", "int"]],
      (call, nome, endereco, porta) =>
        binder.mayRegister(call.remoteAddress)
          ? binder.unregister(nome, endereco, porta)
          : refusal(call.remoteAddress),
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
  -h, --help               mostra esta ajuda`;

function printUsage(): void {
  console.log(USAGE);
}

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
    server = serveXmlRpc(binderMethods(binder), { host: flags.host, port, bodyTimeoutMs, log });
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
