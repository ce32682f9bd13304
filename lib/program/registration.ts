/**
 * The chat server in its binders: `ChatService` registered and kept so
 * (renewed every interval, again after a binder restarts), and the address
 * it registers, the one clients can reach.
 *
 * @module
 */

import type { Logger } from "./log.ts";
import { REGISTER_KEY_HEADER } from "../wire/xmlrpc_http.ts";
import { endpointUrl, type HostPort, ownLanAddresses, XmlRpcClient } from "../wire/http_client.ts";

/**
 * Keeps `ChatService` registered in one binder: retries while the binder is
 * down and registers again every interval, so a restarted binder learns of us
 * again. With several binders (`--binder h1,h2`), one of these each: each
 * renews, fails and logs on its own.
 */
export class BinderRegistration {
  readonly #client: XmlRpcClient;
  readonly #binder: string;
  #host = "";
  readonly #port: number;
  readonly #everyMs: number;
  readonly #log: Logger;
  /** Unknown until the first attempt; then whether the last one reached the binder. */
  #registered: boolean | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #inFlight: Promise<void> | undefined;
  #stopped = false;

  /**
   * Registration of our `port` in `binder`, renewed every `everyMs` once
   * started; with `registerKey` (`--register-key`), for a binder that asks
   * for one. The binder's token comes back as a cookie, which the client keeps.
   */
  constructor(binder: HostPort, port: number, everyMs: number, log: Logger, registerKey?: string) {
    this.#binder = `${binder.host}:${binder.port}`;
    this.#client = new XmlRpcClient(endpointUrl(binder.host, binder.port), {
      timeoutMs: Math.max(1000, everyMs),
      headers: registerKey === undefined ? {} : { [REGISTER_KEY_HEADER]: registerKey },
    });
    this.#port = port;
    this.#everyMs = everyMs;
    this.#log = log;
  }

  /** Starts registering as `host`, the address clients should use. */
  start(host: string): void {
    this.#host = host;
    this.#inFlight = this.#tick();
  }

  async #tick(): Promise<void> {
    try {
      const [ok, message] = await this.#client.call<[boolean, string]>("registrar_procedimento", [
        "ChatService",
        this.#host,
        this.#port,
      ]);
      if (this.#registered !== true) {
        if (ok) {
          this.#log.info(
            `Registrado no binder ${this.#binder} como ChatService em ${this.#host}:${this.#port}`,
          );
        } else {
          // The original binder refuses a second registration: that still means we are there.
          this.#log.warn(`O binder ${this.#binder} respondeu: ${message}`);
        }
      }
      this.#registered = true;
    } catch (error) {
      if (this.#registered !== false) {
        this.#log.warn(
          `Binder indisponível em ${this.#binder} (${(error as Error).message}); tentando de novo a cada ` +
            `${this.#everyMs / 1000} s`,
        );
      }
      this.#registered = false;
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => this.#inFlight = this.#tick(), this.#everyMs);
    }
  }

  /** Stops renewing and unregisters (quietly if the binder is gone or does not know the method). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#host) return;
    // A registration still on its way would otherwise land after the removal.
    await this.#inFlight;
    try {
      const [ok] = await this.#client.call<[boolean]>(
        "remover_procedimento",
        ["ChatService", this.#host, this.#port],
        { timeoutMs: 1000 },
      );
      if (ok) this.#log.info(`Removido do binder ${this.#binder}`);
    } catch {
      // Nothing to undo.
    }
  }
}

const WILDCARDS = new Set(["0.0.0.0", "::", "[::]", ""]);

/**
 * The address clients should use: --advertise; else the address we listen on;
 * else our address on the way to the first binder that answers (in the order
 * given); else a LAN address of this machine.
 */
export async function advertisedHost(listenHost: string, binders: HostPort[]): Promise<string> {
  if (!WILDCARDS.has(listenHost)) return listenHost;
  // All at once, so that binders that are down cost one timeout in all, not one each.
  const routes = binders.filter(({ host }) => !isLoopback(host)).map(localAddressTowards);
  for (const route of routes) {
    const local = await route;
    if (local) return local;
  }
  // None without --allow-sys=networkInterfaces: loopback only.
  return ownLanAddresses()[0] ?? "127.0.0.1";
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host.startsWith("127.") || host === "::1";
}

/** Our address on a connection to `host:port`; undefined when it does not answer within a second. */
async function localAddressTowards({ host, port }: HostPort): Promise<string | undefined> {
  try {
    const connection = await Deno.connect({ hostname: host, port, signal: AbortSignal.timeout(1000) });
    connection.close();
    return (connection.localAddr as Deno.NetAddr).hostname;
  } catch {
    // Not up yet.
    return undefined;
  }
}
