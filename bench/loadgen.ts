/**
 * The load generator's tools, as lean as a process that shares the cores
 * with the server must be: HTTP/1.1 over raw TCP connections (one request at
 * a time, keep-alive), XML-RPC calls over them through the shared codec (one
 * decode per distinct response), the same request hammered at a target, and
 * the latency histogram every figure comes from.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Deadlines, encodeCall, parseXmlRpc, type XmlRpcValue } from "../lib/mod.ts";

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
export const clock = (): number => performance.timeOrigin + performance.now();

/** Resolves after `ms` milliseconds (at once for a negative wait). */
export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

// ---------------------------------------------------------------------------
// HTTP/1.1 over a raw TCP connection: one request at a time, keep-alive
// ---------------------------------------------------------------------------

/** What {@linkcode HttpConnection.request} read: the status, the whole body, the cookies set. */
export interface RawResponse {
  /** The HTTP status code. */
  status: number;
  /** The body, de-chunked. */
  body: Uint8Array;
  /** Every `set-cookie` header's value. */
  setCookie: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SMALL_BUFFER = 4096;
const NOT_ASCII = /[\u0080-\uffff]/;
const CRLF = encoder.encode("\r\n");
const CRLFCRLF = encoder.encode("\r\n\r\n");
/**
 * The calls' deadlines, on shared timers: a timer for each of 20,000 calls a second (nearly all of them
 * cleared) cost the load generator more than reading their answers, and its CPU is taken from the server's.
 */
const callDeadlines = new Deadlines(100);

/** The whole request, head and body, as bytes: build once, send many times. */
export function httpRequest(host: string, port: number, body: string, cookie?: string): Uint8Array {
  // ASCII, as calls mostly are: one encoding of the whole request.
  const length = NOT_ASCII.test(body) ? encoder.encode(body).byteLength : body.length;
  return encoder.encode(
    `POST / HTTP/1.1\r\nhost: ${host}:${port}\r\ncontent-type: text/xml\r\ncontent-length: ${length}\r\n` +
      `${cookie ? `cookie: ${cookie}\r\n` : ""}\r\n${body}`,
  );
}

/** A response head: the status and what the body's framing and the connection's fate depend on. */
interface ResponseHead {
  status: number;
  /** The content length, or -1 without one. */
  length: number;
  chunked: boolean;
  close: boolean;
  setCookie: string[];
}

function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const [version = "", code = ""] = lines[0]!.split(" ");
  const head: ResponseHead = {
    status: Number(code),
    length: -1,
    chunked: false,
    close: version === "HTTP/1.0",
    setCookie: [],
  };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const header = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (header === "content-length") head.length = Number(value);
    else if (header === "transfer-encoding") head.chunked = /chunked/i.test(value);
    else if (header === "connection") head.close = /close/i.test(value);
    else if (header === "set-cookie") head.setCookie.push(value);
  }
  return head;
}

/** A keep-alive HTTP/1.1 connection that reconnects when the server closed it. */
export class HttpConnection {
  /** The server's host. */
  readonly host: string;
  /** The server's port. */
  readonly port: number;
  #conn: Deno.TcpConn | undefined;
  #buffer = new Uint8Array(SMALL_BUFFER);
  #start = 0;
  #end = 0;

  /** A connection to `host:port`, opened by the first request. */
  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  /** Closes the connection; the next request opens a new one. */
  close(): void {
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
    this.#conn = undefined;
  }

  /** Sends a request built by {@linkcode httpRequest} and reads the whole response. */
  async request(request: Uint8Array, timeoutMs: number): Promise<RawResponse> {
    const conn = await this.#connect();
    let timedOut = false;
    const cancel = callDeadlines.after(timeoutMs, () => {
      timedOut = true;
      this.close();
    });
    try {
      for (let written = 0; written < request.byteLength;) {
        written += await conn.write(request.subarray(written));
      }
      let headEnd: number;
      while ((headEnd = this.#find(CRLFCRLF)) < 0) await this.#fill(conn);
      const head = parseHead(decoder.decode(this.#buffer.subarray(this.#start, headEnd)));
      this.#start = headEnd + 4;
      const body = await this.#body(conn, head);
      if (head.close) this.close();
      else if (this.#start === this.#end && this.#buffer.byteLength > SMALL_BUFFER) {
        // A big response once should not cost every idle connection a big buffer.
        this.#buffer = new Uint8Array(SMALL_BUFFER);
        this.#start = this.#end = 0;
      }
      return { status: head.status, body, setCookie: head.setCookie };
    } catch (error) {
      this.close();
      throw timedOut ? new Error(`tempo esgotado (${timeoutMs} ms)`) : error;
    } finally {
      cancel();
    }
  }

  async #connect(): Promise<Deno.TcpConn> {
    if (!this.#conn) {
      const conn = await Deno.connect({ hostname: this.host, port: this.port });
      conn.setNoDelay(true);
      this.#conn = conn;
      this.#start = this.#end = 0;
    }
    return this.#conn;
  }

  /** The body the head announces: by length, chunked, or up to the end of the connection. */
  #body(conn: Deno.TcpConn, head: ResponseHead): Promise<Uint8Array> {
    if (head.length >= 0) return this.#take(conn, head.length);
    if (head.chunked) return this.#chunked(conn);
    head.close = true;
    return this.#untilClosed(conn);
  }

  #find(pattern: Uint8Array): number {
    const buffer = this.#buffer;
    const last = this.#end - pattern.length;
    // The pattern's first byte found by indexOf (native), the rest compared here.
    outer: for (let i = buffer.indexOf(pattern[0]!, this.#start); i !== -1 && i <= last;) {
      for (let j = 1; j < pattern.length; j++) {
        if (buffer[i + j] !== pattern[j]) {
          i = buffer.indexOf(pattern[0]!, i + 1);
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  async #fill(conn: Deno.TcpConn): Promise<void> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buffer.byteLength) {
      const kept = this.#end - this.#start;
      const next = kept * 2 > this.#buffer.byteLength
        ? new Uint8Array(this.#buffer.byteLength * 2)
        : this.#buffer;
      next.copyWithin(0, this.#start, this.#end);
      if (next !== this.#buffer) next.set(this.#buffer.subarray(this.#start, this.#end));
      this.#buffer = next;
      this.#start = 0;
      this.#end = kept;
    }
    const n = await conn.read(this.#buffer.subarray(this.#end));
    if (n === null) throw new Error("conexão fechada pelo servidor");
    this.#end += n;
  }

  async #take(conn: Deno.TcpConn, length: number): Promise<Uint8Array> {
    while (this.#end - this.#start < length) await this.#fill(conn);
    const body = this.#buffer.slice(this.#start, this.#start + length);
    this.#start += length;
    return body;
  }

  async #chunked(conn: Deno.TcpConn): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for (let guard = 0; guard < 1_000_000; guard++) {
      let lineEnd: number;
      while ((lineEnd = this.#find(CRLF)) < 0) await this.#fill(conn);
      const size = parseInt(decoder.decode(this.#buffer.subarray(this.#start, lineEnd)), 16);
      this.#start = lineEnd + 2;
      if (!(size > 0)) {
        while (this.#find(CRLF) < 0) await this.#fill(conn);
        this.#start = this.#find(CRLF) + 2;
        break;
      }
      parts.push(await this.#take(conn, size));
      await this.#take(conn, 2);
    }
    return Buffer.concat(parts);
  }

  async #untilClosed(conn: Deno.TcpConn): Promise<Uint8Array> {
    const parts = [this.#buffer.slice(this.#start, this.#end)];
    this.#start = this.#end = 0;
    for (;;) {
      const chunk = new Uint8Array(16384);
      const n = await conn.read(chunk);
      if (n === null) break;
      parts.push(chunk.subarray(0, n));
    }
    return Buffer.concat(parts);
  }
}

// ---------------------------------------------------------------------------
// XML-RPC calls over a raw connection
// ---------------------------------------------------------------------------

/** Decoded responses by their text, shared by the calls of one process: their values are read only. */
export type DecodeCache = Map<string, XmlRpcValue>;

/** Entries a {@linkcode DecodeCache} holds before it starts over. */
const DECODE_CACHE_SIZE = 256;

/**
 * The value of a `methodResponse` (ours or Python's), decoded by the shared
 * codec; a fault throws `fault CODE: message`. With a cache, the same text
 * is decoded once: every member of a room gets the same bytes for the same
 * message.
 */
export function responseValue(text: string, cache?: DecodeCache): XmlRpcValue {
  const cached = cache?.get(text);
  if (cached !== undefined) return cached;
  const document = parseXmlRpc(text, "methodResponse");
  if (document.kind === "fault") throw new Error(`fault ${document.code}: ${document.message}`);
  if (document.kind !== "response") throw new Error("resposta sem valor");
  if (cache) {
    if (cache.size >= DECODE_CACHE_SIZE) cache.clear();
    cache.set(text, document.value);
  }
  return document.value;
}

/** How {@linkcode rawCall} calls. */
export interface RawCallOptions {
  /** The session cookie to send. */
  cookie?: string;
  /** How long the whole call may take. */
  timeoutMs: number;
  /** Decode each distinct response once. */
  decoded?: DecodeCache;
}

/** A call over a raw connection: the decoded value, and the session cookie if the server set one. */
export async function rawCall(
  connection: HttpConnection,
  method: string,
  params: readonly XmlRpcValue[],
  options: RawCallOptions,
): Promise<{ value: XmlRpcValue; cookie?: string }> {
  const request = httpRequest(connection.host, connection.port, encodeCall(method, params), options.cookie);
  const response = await connection.request(request, options.timeoutMs);
  const text = decoder.decode(response.body);
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text.trim().slice(0, 200)}`);
  const session = response.setCookie.map((c) => c.split(";", 1)[0]!).find((c) => c.startsWith("sessao="));
  return { value: responseValue(text, options.decoded), cookie: session };
}

// ---------------------------------------------------------------------------
// The same request, over and over
// ---------------------------------------------------------------------------

/** Where and what {@linkcode hammer} sends. */
export interface HammerTarget {
  /** The target's host. */
  host: string;
  /** The target's port. */
  port: number;
  /** The XML-RPC call, sent as is. */
  body: string;
  /** The session cookie to send. */
  cookie?: string;
}

/** How long and how wide {@linkcode hammer} sends. */
export interface HammerOptions extends HammerTarget {
  /** Connections, each with one request in flight. */
  connections: number;
  /** Calls in the first milliseconds are not counted. */
  warmupMs: number;
  /** Milliseconds measured, after the warm-up. */
  ms: number;
}

/** What {@linkcode hammer} counted after the warm-up. */
export interface HammerCount {
  /** Calls answered with status 200. */
  calls: number;
  /** Calls that failed or were answered otherwise. */
  errors: number;
  /** The milliseconds they took. */
  ms: number;
}

/** The same request, over and over, on `connections` connections: calls per second. */
export async function hammer(options: HammerOptions): Promise<HammerCount> {
  const request = httpRequest(options.host, options.port, options.body, options.cookie);
  let calls = 0;
  let errors = 0;
  const start = performance.now();
  const measureFrom = start + options.warmupMs;
  const end = measureFrom + options.ms;
  await Promise.all(Array.from({ length: options.connections }, async () => {
    const connection = new HttpConnection(options.host, options.port);
    try {
      while (performance.now() < end) {
        const { status } = await connection.request(request, 10_000).catch(() => ({ status: 0 }));
        if (performance.now() < measureFrom) continue;
        if (status === 200) calls++;
        else errors++;
      }
    } finally {
      connection.close();
    }
  }));
  return { calls, errors, ms: performance.now() - measureFrom };
}

// ---------------------------------------------------------------------------
// Latency histogram: 0.05 ms buckets up to 2 s, exact beyond
// ---------------------------------------------------------------------------

const BUCKET_MS = 0.05;
const BUCKETS = 40_000;

/** A {@linkcode Histogram} as JSON, to cross a process boundary. */
export interface HistogramData {
  /** `[bucket, count]` for every bucket with samples. */
  buckets: [number, number][];
  /** The samples beyond the last bucket, exact. */
  overflow: number[];
  /** The largest sample. */
  max: number;
}

/** Latencies in milliseconds, in 0.05 ms buckets up to 2 s and exact beyond. */
export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS);
  readonly #overflow: number[] = [];
  /** How many samples. */
  count = 0;
  /** The largest sample. */
  max = 0;

  /** Adds a sample (a negative one counts as 0). */
  add(ms: number): void {
    const value = Math.max(0, ms);
    const bucket = Math.floor(value / BUCKET_MS);
    if (bucket < BUCKETS) this.#counts[bucket]!++;
    else this.#overflow.push(value);
    this.count++;
    if (value > this.max) this.max = value;
  }

  /** The samples, compactly. */
  toJSON(): HistogramData {
    const buckets: [number, number][] = [];
    this.#counts.forEach((n, i) => {
      if (n) buckets.push([i, n]);
    });
    return { buckets, overflow: this.#overflow, max: this.max };
  }

  /** Adds another histogram's samples. */
  merge(data: HistogramData): void {
    for (const [i, n] of data.buckets) {
      this.#counts[i]! += n;
      this.count += n;
    }
    // One by one: spread into push(), a slow run's 100,000s of samples beyond 2 s overflow the stack.
    for (const value of data.overflow) this.#overflow.push(value);
    this.count += data.overflow.length;
    this.max = Math.max(this.max, data.max);
  }

  /** The q-quantile in ms (the upper edge of its bucket), or null with no samples. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min((i + 1) * BUCKET_MS, this.max);
    }
    const sorted = [...this.#overflow].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, rank - seen - 1)]!;
  }
}
