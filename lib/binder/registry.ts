/**
 * The binder's registry: names to endpoints (`ChatService -> host:port`),
 * kept honest by probing; who may register (loopback and the networks of
 * `--allow-register`), the caps, and the operator's log lines. Its method
 * table is `methods.ts`.
 *
 * @module
 */

import { BlockList, isIP } from "node:net";
import { LogBudget, type Logger, shown } from "../program/log.ts";
import { outOfFiles } from "../wire/http_server.ts";
import { type Text, text } from "../text/catalogue.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** `new` until its first probe, then `alive` or `silent` (the wire says `novo`, `vivo`, `sem resposta`). */
export type EndpointState = "new" | "alive" | "silent";

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
  /** Who registered it: the caller's address (`loopback` for the binder's own machine). */
  readonly owner: string;
  /** The token handed to the registrant (a cookie): it renews and removes from any address. */
  readonly token: string;
  /** When it last answered a probe or registered. */
  lastSeen: number;
  /** What the last probe found. */
  state: EndpointState;
}

/** What the registry answers: its texts in no language yet ({@linkcode binderMethods} renders them per caller). */
export type Answer<T> = [ok: true, payload: T] | [ok: false, message: Text];

/** Who asks to register or remove: the caller's address, and what it presented. */
export interface Registrant {
  /** The caller's IP address, as the connection gives it. */
  readonly address: string;
  /** The token a registration handed it (the `sessao` cookie), if it presents one. */
  readonly token?: string | undefined;
  /** The shared registration key (header `X-Chave-Registro`), if it presents one. */
  readonly key?: string | undefined;
  /** Hands the registrant its endpoint's token (as a cookie). */
  setToken?(token: string): void;
}

/** How a {@linkcode Binder} probes, drops, admits and logs. */
export interface BinderOptions {
  /** How often every endpoint is probed. */
  checkIntervalMs: number;
  /** An endpoint silent for this long is dropped. */
  dropAfterMs: number;
  /** How long a probe waits for a connection. */
  probeTimeoutMs: number;
  /** At most this many probes at once (`--max-probes`, default 8). */
  maxProbes?: number;
  /** At most this many endpoints under one name (`--max-per-name`, default 16). */
  maxPerName?: number;
  /** At most this many endpoints registered from one address (`--max-per-source`, default 64). */
  maxPerSource?: number;
  /** At most this many endpoints in all, whoever registered them (`--max-endpoints`, default 4096). */
  maxEndpoints?: number;
  /** Networks besides loopback whose hosts may register and unregister (`--allow-register`). */
  allowRegister?: readonly Network[];
  /** When set, registrations and removals from outside loopback must present it (`--register-key`). */
  registerKey?: string;
  /** Where registrations, removals, failed lookups and refusals are logged (info lines only). */
  log: Logger;
  /** How an endpoint is probed (default: a TCP connection); tests count the probes. */
  probe?: (host: string, port: number, timeoutMs: number) => Promise<boolean | undefined>;
}

const MAX_NAME = 100;
const MAX_HOST = 255;
const CONTROL = /[\p{Cc}]/u;
/** The address every loopback caller registers as: 127.0.0.0/8 and ::1 are one machine. */
export const LOOPBACK = "loopback";

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

/** The registry: names to endpoints, kept honest by probing. */
export class Binder {
  readonly #services = new Map<string, Endpoint[]>();
  readonly #rotation = new Map<string, number>();
  /** Endpoints registered by each owner, against `maxPerSource`. */
  readonly #perSource = new Map<string, number>();
  readonly #options: BinderOptions;
  readonly #registrants: BlockList;
  /** Only the networks of --allow-register: who may add to a name another address registered. */
  readonly #allowed: BlockList;
  readonly #maxProbes: number;
  readonly #maxPerName: number;
  readonly #maxPerSource: number;
  readonly #maxEndpoints: number;
  readonly #failedLookups: LogBudget;
  readonly #refusals: LogBudget;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;

  /** An empty registry; {@linkcode Binder.start} starts the probes. */
  constructor(options: BinderOptions) {
    this.#options = options;
    this.#registrants = registrants(options.allowRegister ?? []);
    this.#allowed = networksList(options.allowRegister ?? []);
    this.#maxProbes = options.maxProbes ?? 8;
    this.#maxPerName = options.maxPerName ?? 16;
    this.#maxPerSource = options.maxPerSource ?? 64;
    this.#maxEndpoints = options.maxEndpoints ?? 4096;
    this.#failedLookups = new LogBudget(options.log, "buscas sem resultado");
    this.#refusals = new LogBudget(options.log, "recusas");
  }

  /** Whether a caller at this address may register and unregister: loopback, or an allowed network. */
  mayRegister(address: string): boolean {
    if (listed(this.#registrants, address)) return true;
    this.#refusals.info(`Registro recusado de ${shown(address)} (fora de --allow-register)`);
    return false;
  }

  /**
   * Registers `name -> host:port`, or renews that registration; refuses bad
   * names, hosts and ports, callers that may not register, endpoints another
   * address registered, and registrations past the caps.
   */
  register(
    name: string,
    host: string,
    port: number,
    from: Registrant = { address: "127.0.0.1" },
  ): Answer<Text> {
    name = name.trim();
    host = host.trim();
    const invalid = invalidEndpoint(name, host, port);
    if (invalid) return [false, invalid];
    const denied = this.#admit(from);
    if (denied) return [false, denied];
    const owner = sourceOf(from.address);
    const now = Date.now();
    const endpoints = this.#services.get(name) ?? [];
    const known = endpoints.find((e) => e.host === host && e.port === port);
    if (known) {
      if (!owns(known, owner, from)) return [false, this.#notYours(known, from)];
      known.lastSeen = now;
      known.state = "alive";
      from.setToken?.(known.token);
      return [true, text("serviceRenewed", name, `${host}:${port}`)];
    }
    if (endpoints.some((e) => e.owner !== owner) && !listed(this.#allowed, from.address)) {
      this.#refusals.info(
        `Registro recusado: ${shown(name)} de ${owner}, que não o registrou (fora de --allow-register)`,
      );
      return [false, text("registrationOthersName", name, from.address)];
    }
    if (endpoints.length >= this.#maxPerName) {
      this.#refusals.info(
        `Registro recusado: ${shown(name)} já tem ${endpoints.length} endereços (--max-per-name)`,
      );
      return [false, text("registrationPerName", name, endpoints.length)];
    }
    const mine = this.#perSource.get(owner) ?? 0;
    if (mine >= this.#maxPerSource) {
      this.#refusals.info(`Registro recusado: ${owner} já registrou ${mine} endereços (--max-per-source)`);
      return [false, text("registrationPerSource", from.address, mine)];
    }
    // A network allowed to register (many sources, each under its own cap) still fills no more than this.
    const total = this.#endpointCount();
    if (total >= this.#maxEndpoints) {
      this.#refusals.info(`Registro recusado: o binder já tem ${total} endereços (--max-endpoints)`);
      return [false, text("registrationFull", total)];
    }
    const token = newToken();
    endpoints.push({ name, host, port, registeredAt: now, owner, token, lastSeen: now, state: "new" });
    this.#services.set(name, endpoints);
    this.#perSource.set(owner, mine + 1);
    from.setToken?.(token);
    this.#options.log.info(`Registrado: ${shown(name)} -> ${shown(host)}:${port}`);
    return [true, text("serviceRegistered", name, `${host}:${port}`)];
  }

  /** A live endpoint of the name, rotating among them. */
  lookup(name: string): Answer<{ endereco: string; porta: number }> {
    // Refused before anything else: an absurd name costs nothing and is never logged whole.
    if (name.length > MAX_NAME * 2 || CONTROL.test(name)) {
      return [false, text("serviceNameInvalid", MAX_NAME)];
    }
    name = name.trim();
    const live = (this.#services.get(name) ?? []).filter((e) => e.state !== "silent");
    if (live.length === 0) {
      this.#failedLookups.info(`Busca sem resultado: ${shown(name)}`);
      return [false, text("serviceNotFound", name)];
    }
    const turn = this.#rotation.get(name) ?? 0;
    this.#rotation.set(name, turn + 1);
    const endpoint = live[turn % live.length]!;
    return [true, { endereco: endpoint.host, porta: endpoint.port }];
  }

  /** Removes one registration of the name: only its owner may (its address, or its token). */
  unregister(
    name: string,
    host: string,
    port: number,
    from: Registrant = { address: "127.0.0.1" },
  ): Answer<Text> {
    name = name.trim();
    host = host.trim();
    const denied = this.#admit(from);
    if (denied) return [false, denied];
    const endpoint = (this.#services.get(name) ?? []).find((e) => e.host === host && e.port === port);
    if (!endpoint) return [false, text("serviceNotAt", name, `${host}:${port}`)];
    if (!owns(endpoint, sourceOf(from.address), from)) return [false, this.#notYours(endpoint, from)];
    this.#remove(name, (e) => e === endpoint);
    this.#options.log.info(`Removido a pedido: ${shown(name)} -> ${shown(host)}:${port}`);
    return [true, text("serviceRemoved", name, `${host}:${port}`)];
  }

  /** Every registration, of every name. */
  list(): Endpoint[] {
    return [...this.#services.values()].flat();
  }

  /**
   * Probes every endpoint once and drops those silent for too long: at most
   * {@linkcode BinderOptions.maxProbes} at once, and each `host:port` once,
   * however many names point at it.
   */
  async checkLiveness(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const byAddress = new Map<string, Endpoint[]>();
      for (const endpoint of this.list()) {
        const key = `${endpoint.host.toLowerCase()}:${endpoint.port}`;
        const same = byAddress.get(key);
        if (same) same.push(endpoint);
        else byAddress.set(key, [endpoint]);
      }
      const groups = [...byAddress.values()];
      let next = 0;
      const prober = async () => {
        while (next < groups.length) {
          const group = groups[next++]!;
          const answered = await this.#answers(group[0]!);
          for (const endpoint of group) this.#probed(endpoint, answered);
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#maxProbes, groups.length) }, prober));
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

  /** Why this caller may not register or remove at all, or undefined when it may. */
  #admit(from: Registrant): Text | undefined {
    if (!this.mayRegister(from.address)) return text("registrationRefused", from.address);
    const key = this.#options.registerKey;
    if (key !== undefined && sourceOf(from.address) !== LOOPBACK && !sameSecret(from.key ?? "", key)) {
      this.#refusals.info(`Registro recusado de ${shown(from.address)}: chave de registro ausente ou errada`);
      return text(from.key ? "registrationKeyWrong" : "registrationKeyMissing");
    }
    return undefined;
  }

  #notYours(endpoint: Endpoint, from: Registrant): Text {
    this.#refusals.info(
      `Recusado: ${shown(endpoint.name)} -> ${
        shown(endpoint.host)
      }:${endpoint.port} é de ${endpoint.owner}, ` +
        `não de ${shown(from.address)}`,
    );
    return text("registrationNotYours", endpoint.name, `${endpoint.host}:${endpoint.port}`);
  }

  /** What a probe found, for one endpoint; `undefined` (no file to probe with) changes nothing. */
  #probed(endpoint: Endpoint, answered: boolean | undefined): void {
    if (answered === undefined) return;
    if (answered) {
      endpoint.lastSeen = Date.now();
      endpoint.state = "alive";
    } else if (Date.now() - endpoint.lastSeen >= this.#options.dropAfterMs) {
      if (!this.#remove(endpoint.name, (e) => e === endpoint)) return;
      const silent = Math.round((Date.now() - endpoint.lastSeen) / 1000);
      this.#options.log.info(
        `Removido (sem resposta há ${silent} s): ${shown(endpoint.name)} -> ${
          shown(endpoint.host)
        }:${endpoint.port}`,
      );
    } else {
      endpoint.state = "silent";
    }
  }

  /** Endpoints registered in all (each is counted once, against its owner). */
  #endpointCount(): number {
    let total = 0;
    for (const count of this.#perSource.values()) total += count;
    return total;
  }

  #remove(name: string, match: (e: Endpoint) => boolean): boolean {
    const endpoints = this.#services.get(name) ?? [];
    const kept = endpoints.filter((e) => !match(e));
    if (kept.length === endpoints.length) return false;
    for (const gone of endpoints.filter(match)) {
      const count = (this.#perSource.get(gone.owner) ?? 1) - 1;
      if (count > 0) this.#perSource.set(gone.owner, count);
      else this.#perSource.delete(gone.owner);
    }
    if (kept.length) this.#services.set(name, kept);
    else {
      this.#services.delete(name);
      this.#rotation.delete(name);
    }
    return true;
  }

  /**
   * A TCP connection is the probe: it works for any server, the original
   * Python one included. Undefined when this process is out of files: that
   * says nothing about the endpoint.
   */
  async #answers(endpoint: Endpoint): Promise<boolean | undefined> {
    const timeoutMs = this.#options.probeTimeoutMs;
    if (this.#options.probe) return await this.#options.probe(endpoint.host, endpoint.port, timeoutMs);
    try {
      const connection = await Deno.connect({
        hostname: endpoint.host,
        port: endpoint.port,
        signal: AbortSignal.timeout(timeoutMs),
      });
      connection.close();
      return true;
    } catch (error) {
      return outOfFiles(error) ? undefined : false;
    }
  }
}

function invalidEndpoint(name: string, host: string, port: number): Text | undefined {
  if (!name || name.length > MAX_NAME || CONTROL.test(name)) return text("serviceNameInvalid", MAX_NAME);
  if (!host || host.length > MAX_HOST || /[\s\p{Cc}/]/u.test(host)) {
    return text("serviceHostInvalid", shown(host));
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return text("servicePortInvalid", port);
  return undefined;
}

/** Whether the caller owns the endpoint: it registered from this address, or it holds the token. */
function owns(endpoint: Endpoint, source: string, from: Registrant): boolean {
  return endpoint.owner === source || (from.token !== undefined && sameSecret(from.token, endpoint.token));
}

/** Compares secrets in a time that does not depend on where they differ. */
function sameSecret(given: string, expected: string): boolean {
  let difference = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) {
    difference |= expected.charCodeAt(i) ^ (given.charCodeAt(i % Math.max(1, given.length)) || 0);
  }
  return difference === 0;
}

function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * Who a caller is, for ownership and the caps: its address without a zone,
 * IPv4-mapped IPv6 as IPv4, and every loopback address as {@linkcode LOOPBACK}.
 */
export function sourceOf(address: string): string {
  let bare = address.replace(/%.*$/, "").toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped) bare = mapped[1]!;
  if (bare === "::1" || /^127\./.test(bare)) return LOOPBACK;
  return bare;
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

/** The given networks only, without loopback. */
function networksList(networks: readonly Network[]): BlockList {
  const list = new BlockList();
  for (const { address, prefix, family } of networks) list.addSubnet(address, prefix, family);
  return list;
}

/** Whether a caller's address (as the connection gives it) is in the list; a zone (`fe80::1%eth0`) is ignored. */
function listed(list: BlockList, address: string): boolean {
  const bare = address.replace(/%.*$/, "");
  const family = familyOf(bare);
  return family !== undefined && list.check(bare, family);
}
