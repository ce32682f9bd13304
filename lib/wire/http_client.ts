/**
 * The client side of XML-RPC: {@linkcode XmlRpcClient} makes calls with
 * `fetch` (timeouts, keep-alive, the session cookie a server sets) and decodes
 * the answers with the same codec the servers use.
 *
 * @module
 */

import { decodeXml, encodeCall, Fault, parseXmlRpc, type XmlRpcValue } from "./codec.ts";
import { ADDRESS_FLAWS_PT, type AddressFlaw, NETWORK_ERRORS_PT, type NetworkError } from "../text/network.ts";

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

/** The service did not answer: refused, unreachable or timed out. */
export class Unreachable extends Error {
  /**
   * The endpoint that did not answer, and why: a {@linkcode NetworkError}
   * (what a user is told, in their language), and the runtime's words for
   * an `other` (for a log, never for a user).
   */
  constructor(readonly url: string, readonly kind: NetworkError, readonly detail = "") {
    super(
      `${url}: ${NETWORK_ERRORS_PT[kind]}${
        (kind === "other" || kind === "tooLarge") && detail ? ` (${detail})` : ""
      }`,
    );
    this.name = "Unreachable";
  }
}

/** Options of one call. */
export interface CallOptions {
  /** Overrides the client's timeout for one call (a long wait, say). */
  timeoutMs?: number;
  /** Ends the call early (the client is quitting). */
  signal?: AbortSignal;
  /** Request headers for this call alone, besides the client's (`X-Chat-Chave`, say). */
  headers?: Record<string, string>;
}

/** How an {@linkcode XmlRpcClient} calls. */
export interface ClientOptions {
  /** How long a call may take (default 10 s). */
  timeoutMs?: number;
  /** Request headers sent with every call (`X-Chat-Motivos: 1`, say). */
  headers?: Record<string, string>;
  /**
   * Answers larger than this are refused, read no further than the limit
   * (default {@linkcode MAX_ANSWER_BYTES}): a rogue server cannot grow the client.
   */
  maxAnswerBytes?: number;
  /**
   * Starts with a copy of that client's cookies, the session among them: a
   * service that moved to another address (another instance, sharing the
   * sessions) still knows us. A server that does not simply refuses the
   * session, and a new one replaces it.
   */
  cookiesFrom?: XmlRpcClient;
}

/** The default limit on an answer's size: 8 MiB (the largest real answer is well under 1 MiB). */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** An XML-RPC client over `fetch`: keep-alive, timeouts and the server's session cookie. */
export class XmlRpcClient {
  /** The endpoint's URL. */
  readonly url: string;
  /** The timeout of a call, unless the call gives its own. */
  readonly timeoutMs: number;
  /** Answers larger than this many bytes are refused. */
  readonly maxAnswerBytes: number;
  readonly #headers: Record<string, string>;
  readonly #cookies: Map<string, string>;

  /** A client of the endpoint at `url` (see {@linkcode endpointUrl}). */
  constructor(url: string, options: ClientOptions = {}) {
    this.url = url;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAnswerBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
    this.#headers = { ...options.headers };
    this.#cookies = new Map(options.cookiesFrom && options.cookiesFrom.#cookies);
  }

  /** Calls a method; throws {@linkcode Fault} for faults and {@linkcode Unreachable} when nobody answers. */
  async call<T = unknown>(method: string, params: XmlRpcValue[] = [], options: CallOptions = {}): Promise<T> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    const headers = new Headers({
      ...this.#headers,
      ...options.headers,
      "content-type": "text/xml; charset=utf-8",
    });
    if (this.#cookies.size) {
      headers.set("cookie", [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; "));
    }
    const body = encodeCall(method, params);
    let text: string;
    try {
      const response = await fetch(this.url, { method: "POST", headers, body, signal });
      for (const cookie of response.headers.getSetCookie()) this.#keepCookie(cookie);
      const bytes = await readAnswer(response, this.maxAnswerBytes);
      if (!response.ok) {
        throw new Fault(-response.status, `HTTP ${response.status}: ${lenient.decode(bytes).trim()}`);
      }
      // In the encoding the answer declares (an original server may write ISO-8859-1, say).
      text = decodeXml(bytes, response.headers.get("content-type"));
    } catch (error) {
      if (error instanceof Fault) throw error;
      if (error instanceof AnswerTooLarge) throw new Unreachable(this.url, "tooLarge", error.message);
      if (options.signal?.aborted) throw options.signal.reason;
      const kind = timeout.aborted ? "timeout" : describeNetworkError(error);
      throw new Unreachable(this.url, kind, networkMessage(error).split("\n", 1)[0]);
    }
    const document = parseXmlRpc(text, "methodResponse");
    if (document.kind === "fault") throw new Fault(document.code, document.message);
    return (document as { value: unknown }).value as T;
  }

  /** Forgets the session: the next call is anonymous. */
  forgetSession(): void {
    this.#cookies.clear();
  }

  #keepCookie(setCookie: string): void {
    const pair = setCookie.split(";", 1)[0]!;
    const eq = pair.indexOf("=");
    if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}

class AnswerTooLarge extends Error {}

/** For the text of an HTTP error, which is only shown. */
const lenient = new TextDecoder();

/**
 * An answer's body, read chunk by chunk and given up (the connection closed)
 * as soon as it passes `limit`: never more than that in memory.
 */
async function readAnswer(response: Response, limit: number): Promise<Uint8Array> {
  const tooLarge = () => new AnswerTooLarge(`resposta grande demais (mais de ${formatBytes(limit)})`);
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!response.body) return new Uint8Array();
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/** What a failed `fetch` says, with its cause. */
function networkMessage(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? `${error.cause.message} ` : "";
  return cause + (error instanceof Error ? error.message : String(error));
}

/** Why a `fetch` failed, as a kind: the runtime's words (`os error 104`...) are no user's business. */
export function describeNetworkError(error: unknown): NetworkError {
  const message = networkMessage(error);
  if (/refused/i.test(message)) return "refused";
  if (/dns|lookup|resolve|name or service not known/i.test(message)) return "notFound";
  // The server went away mid-call (it stopped, say).
  if (/connection closed|connection reset|reset by peer|broken pipe|os error (104|32)\b/i.test(message)) {
    return "closed";
  }
  if (/unreachable|no route to host/i.test(message)) return "unreachable";
  if (/timed out|os error 110\b/i.test(message)) return "timeout";
  return "other";
}

/** Where a service listens. */
export interface HostPort {
  /** A name or an address (an IPv6 one without brackets). */
  host: string;
  /** 1 to 65535. */
  port: number;
}

/** An address (or list) that does not parse: its {@linkcode AddressFlaw}, for each program to word. */
export class BadAddress extends Error {
  /** The flaw, and the item it is about (for `empty`, the whole list). */
  constructor(readonly flaw: AddressFlaw, readonly item: string) {
    super(ADDRESS_FLAWS_PT[flaw](item));
    this.name = "BadAddress";
  }
}

/** `host:port` or a bare host, with a default port; throws a {@linkcode BadAddress}. */
export function parseHostPort(text: string, defaultPort: number): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? defaultPort : Number(match[3]);
  if (!match || !host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new BadAddress("invalid", text);
  }
  return { host, port };
}

/**
 * A comma-separated list of addresses (`h1:5000,h2`), each as
 * {@linkcode parseHostPort} reads it, in order; throws a {@linkcode BadAddress}
 * for an invalid or empty item, or one given twice (`h1` and `h1:5000` are the same).
 */
export function parseHostPortList(text: string, defaultPort: number): HostPort[] {
  const items = text.split(",");
  if (items.some((item) => !item.trim())) throw new BadAddress("empty", text);
  const seen = new Set<string>();
  return items.map((item) => {
    const address = parseHostPort(item, defaultPort);
    const key = `${address.host.toLowerCase()}:${address.port}`;
    if (seen.has(key)) throw new BadAddress("duplicate", item.trim());
    seen.add(key);
    return address;
  });
}

/** The URL of an XML-RPC endpoint at host:port. */
export function endpointUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}/`;
}

/** The addresses classmates can reach: IPv4, neither loopback nor link-local, each once. */
export function lanAddresses(interfaces: readonly Deno.NetworkInterfaceInfo[]): string[] {
  const addresses = interfaces
    .filter((i) => i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254."))
    .map((i) => i.address);
  return [...new Set(addresses)];
}

/**
 * This machine's LAN addresses; none without `--allow-sys=networkInterfaces`
 * (queried, never requested: no prompt).
 */
export function ownLanAddresses(): string[] {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" }).state !== "granted") return [];
    return lanAddresses(Deno.networkInterfaces());
  } catch {
    return [];
  }
}
