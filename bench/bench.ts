#!/usr/bin/env -S deno run --allow-net --allow-run=deno,cat --allow-write
/**
 * The benchmark of rpc-chat: how fast and how large the chat can be, measured.
 *
 * ```sh
 * deno run --allow-net --allow-run=deno,cat --allow-write bench.ts \
 *   [--clients 1000] [--rooms 10] [--rate 200] [--duration 10] [--server H:P] [--compat] [--json]
 * deno run ... bench.ts --idle 10000 --duration 30
 * ```
 *
 * It starts its own binder and server (`binder.ts` and `server.ts` as
 * subprocesses with the permissions the README gives them, the server's
 * database and log in a temporary directory) or targets `--server`. It
 * registers the clients, puts them in the rooms and keeps every one of them
 * receiving through the long wait (`aguardar_mensagens` with a cursor) while
 * senders post `--rate` messages per second in total, spread over the rooms,
 * for `--duration` seconds. Every delivery is checked: each message must
 * reach every member of its room exactly once. `--compat` drives only the
 * original methods, the way the original client did (`receber_mensagens`
 * every 2 s, deduplicated by id, or by author, time and text), so any server
 * of the original protocol can be measured. `--idle N` holds N clients, each
 * with a pending long wait, for `--duration` seconds, then sends one message
 * per room and checks that all of them get it.
 *
 * In the same run it measures a raw `Deno.serve` baseline (a trivial handler
 * answering as many bytes as the server does, in a process of its own) and
 * the server under the same request load, one call type at `--connections`
 * connections: the distance to the limit of the HTTP stack.
 *
 * Processes: this one coordinates and reads the server's RSS and CPU time in
 * `/proc/<pid>/status` and `/proc/<pid>/stat` (through `cat`: Deno grants
 * `/proc` only to `--allow-all`). The load comes from `--workers` worker
 * processes (this same file with `--worker` and only `--allow-net`) that speak
 * HTTP/1.1 over raw TCP, one keep-alive connection per client plus a few for
 * the senders, so the load generator never shares the server's event loop.
 *
 * @module
 */

import { endpointUrl, numberFlag, parseFlags, parseHostPort, usageError, XmlRpcClient } from "../deps.ts";

// ---------------------------------------------------------------------------
// XML-RPC on the wire, as lean as a load generator needs
// ---------------------------------------------------------------------------

/** A value decoded from a response; dates stay as their text. */
export type WireValue = string | number | boolean | null | WireValue[] | { [member: string]: WireValue };

function escapeXml(text: string): string {
  return text.replace(/[&<>]/g, (c) => c === "&" ? "&amp;" : c === "<" ? "&lt;" : "&gt;");
}

function encodeParam(value: string | number | boolean | null): string {
  if (value === null) return "<value><nil/></value>";
  if (typeof value === "boolean") return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
  if (typeof value === "number") return `<value><int>${value}</int></value>`;
  return `<value><string>${escapeXml(value)}</string></value>`;
}

/** A `methodCall` document with scalar parameters. */
export function encodeCall(method: string, params: (string | number | boolean | null)[]): string {
  return `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>` +
    params.map((p) => `<param>${encodeParam(p)}</param>`).join("") + "</params></methodCall>";
}

const ENTITY = /&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g;
const NAMED: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(
    ENTITY,
    (_, entity: string) =>
      entity[0] === "#"
        ? String.fromCodePoint(
          entity[1] === "x" ? parseInt(entity.slice(2), 16) : parseInt(entity.slice(1), 10),
        )
        : NAMED[entity]!,
  );
}

/**
 * Decodes a `methodResponse` (ours or Python's) into its value, or throws
 * for a fault. Enough XML for well-formed responses (CDATA, empty elements,
 * `<value>` without a type), no more: it runs once per call in the load
 * generator, so it scans with `indexOf`.
 */
export function decodeResponse(text: string): WireValue {
  type Container = { items: WireValue[] } | { members: Record<string, WireValue>; name: string };
  interface Value {
    type: string;
    /** Escaped text: CDATA is escaped back, so one unescape at the end serves both. */
    text: string;
    result?: WireValue;
  }
  const values: Value[] = [];
  const containers: Container[] = [];
  let fault = false;
  let inName = false;
  let name = "";
  let top: WireValue | undefined;
  const deliver = (value: WireValue) => {
    const container = containers[containers.length - 1];
    if (!container) top = value;
    else if ("items" in container) container.items.push(value);
    else container.members[container.name] = value;
  };
  const addText = (chars: string) => {
    if (inName) name += chars;
    else if (values.length) values[values.length - 1]!.text += chars;
  };
  const length = text.length;
  for (let pos = 0, guard = 0; pos < length && guard < length; guard++) {
    const lt = text.indexOf("<", pos);
    if (lt !== pos) addText(text.slice(pos, lt < 0 ? length : lt));
    if (lt < 0) break;
    if (text.startsWith("<![CDATA[", lt)) {
      const close = text.indexOf("]]>", lt + 9);
      addText(
        text.slice(lt + 9, close < 0 ? length : close).replaceAll("&", "&amp;").replaceAll("<", "&lt;"),
      );
      pos = close < 0 ? length : close + 3;
      continue;
    }
    const gt = text.indexOf(">", lt);
    if (gt < 0) break;
    pos = gt + 1;
    const second = text.charCodeAt(lt + 1);
    if (second === 63 || second === 33) continue; // <?xml ...?>, <!-- -->
    const closing = second === 47;
    const selfClosing = text.charCodeAt(gt - 1) === 47;
    let nameEnd = selfClosing ? gt - 1 : gt;
    const space = text.indexOf(" ", lt);
    if (space >= 0 && space < nameEnd) nameEnd = space;
    const tag = text.slice(lt + (closing ? 2 : 1), nameEnd);
    if (closing) closeTag(tag);
    else {
      openTag(tag);
      if (selfClosing) closeTag(tag);
    }
  }
  function openTag(tag: string): void {
    const value = values[values.length - 1];
    switch (tag) {
      case "value":
        values.push({ type: "", text: "" });
        break;
      case "array":
        containers.push({ items: [] });
        break;
      case "struct":
        containers.push({ members: {}, name: "" });
        break;
      case "name":
        inName = true;
        name = "";
        break;
      case "fault":
        fault = true;
        break;
      case "nil":
        if (value) value.result = null;
        break;
      case "data":
      case "member":
        break;
      default:
        if (value) {
          value.type = tag;
          value.text = "";
        }
    }
  }
  function closeTag(tag: string): void {
    switch (tag) {
      case "name": {
        inName = false;
        const container = containers[containers.length - 1];
        if (container && "members" in container) container.name = unescapeXml(name);
        break;
      }
      case "array":
      case "struct": {
        const container = containers.pop();
        const value = values[values.length - 1];
        if (container && value) value.result = "items" in container ? container.items : container.members;
        break;
      }
      case "value": {
        const value = values.pop();
        if (!value) break;
        if (value.result !== undefined) deliver(value.result);
        else {
          const body = unescapeXml(value.text);
          switch (value.type) {
            case "int":
            case "i4":
            case "i8":
            case "double":
              deliver(Number(body));
              break;
            case "boolean":
              deliver(body.trim() === "1");
              break;
            default:
              deliver(body);
          }
        }
        break;
      }
    }
  }
  if (top === undefined) throw new Error("resposta sem valor");
  if (fault) {
    const { faultCode, faultString } = top as { faultCode?: WireValue; faultString?: WireValue };
    throw new Error(`fault ${faultCode}: ${faultString}`);
  }
  return top;
}

// ---------------------------------------------------------------------------
// HTTP/1.1 over a raw TCP connection: one request at a time, keep-alive
// ---------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  body: Uint8Array;
  setCookie: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SMALL_BUFFER = 4096;

/** The whole request, head and body, as bytes: build once, send many times. */
export function httpRequest(host: string, port: number, body: string, cookie?: string): Uint8Array {
  // ASCII, as calls mostly are: one encoding of the whole request.
  const length = NOT_ASCII.test(body) ? encoder.encode(body).byteLength : body.length;
  return encoder.encode(
    `POST / HTTP/1.1\r\nhost: ${host}:${port}\r\ncontent-type: text/xml\r\ncontent-length: ${length}\r\n` +
      `${cookie ? `cookie: ${cookie}\r\n` : ""}\r\n${body}`,
  );
}

const NOT_ASCII = /[\u0080-\uffff]/;

/** A keep-alive HTTP/1.1 connection that reconnects when the server closed it. */
export class HttpConnection {
  readonly host: string;
  readonly port: number;
  #conn: Deno.TcpConn | undefined;
  #buffer = new Uint8Array(SMALL_BUFFER);
  #start = 0;
  #end = 0;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }

  get open(): boolean {
    return this.#conn !== undefined;
  }

  async connect(): Promise<Deno.TcpConn> {
    if (!this.#conn) {
      const conn = await Deno.connect({ hostname: this.host, port: this.port });
      conn.setNoDelay(true);
      this.#conn = conn;
      this.#start = this.#end = 0;
    }
    return this.#conn;
  }

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
    const conn = await this.connect();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close();
    }, timeoutMs);
    try {
      for (let written = 0; written < request.byteLength;) {
        written += await conn.write(request.subarray(written));
      }
      let headEnd: number;
      while ((headEnd = this.#find(CRLFCRLF)) < 0) await this.#fill(conn);
      const head = decoder.decode(this.#buffer.subarray(this.#start, headEnd)).split("\r\n");
      this.#start = headEnd + 4;
      const [version = "", code = ""] = head[0]!.split(" ");
      let length = -1;
      let chunked = false;
      let close = version === "HTTP/1.0";
      const setCookie: string[] = [];
      for (let i = 1; i < head.length; i++) {
        const line = head[i]!;
        const colon = line.indexOf(":");
        const header = line.slice(0, colon).trim().toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (header === "content-length") length = Number(value);
        else if (header === "transfer-encoding") chunked = /chunked/i.test(value);
        else if (header === "connection") close = /close/i.test(value);
        else if (header === "set-cookie") setCookie.push(value);
      }
      let body: Uint8Array;
      if (length >= 0) body = await this.#take(conn, length);
      else if (chunked) body = await this.#chunked(conn);
      else {
        close = true;
        body = await this.#untilClosed(conn);
      }
      if (close) this.close();
      else if (this.#start === this.#end && this.#buffer.byteLength > SMALL_BUFFER) {
        // A big response once should not cost every idle connection a big buffer.
        this.#buffer = new Uint8Array(SMALL_BUFFER);
        this.#start = this.#end = 0;
      }
      return { status: Number(code), body, setCookie };
    } catch (error) {
      this.close();
      throw timedOut ? new Error(`tempo esgotado (${timeoutMs} ms)`) : error;
    } finally {
      clearTimeout(timer);
    }
  }

  #find(pattern: Uint8Array): number {
    const buffer = this.#buffer;
    outer: for (let i = this.#start; i <= this.#end - pattern.length; i++) {
      for (let j = 0; j < pattern.length; j++) if (buffer[i + j] !== pattern[j]) continue outer;
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
    return concat(parts);
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
    return concat(parts);
  }
}

const CRLF = encoder.encode("\r\n");
const CRLFCRLF = encoder.encode("\r\n\r\n");

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** A call over a raw connection: the decoded value, and the session cookie if the server set one. */
async function rawCall(
  connection: HttpConnection,
  method: string,
  params: (string | number | boolean | null)[],
  options: { cookie?: string; timeoutMs: number; decoded?: Map<string, WireValue> },
): Promise<{ value: WireValue; cookie?: string }> {
  const request = httpRequest(connection.host, connection.port, encodeCall(method, params), options.cookie);
  const response = await connection.request(request, options.timeoutMs);
  const text = decoder.decode(response.body);
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text.trim().slice(0, 200)}`);
  const session = response.setCookie.map((c) => c.split(";", 1)[0]!).find((c) => c.startsWith("sessao="));
  // Every member of a room gets the same bytes for the same message: decode them once (read only after).
  let value = options.decoded?.get(text);
  if (value === undefined) {
    value = decodeResponse(text);
    if (options.decoded) {
      if (options.decoded.size >= 256) options.decoded.clear();
      options.decoded.set(text, value);
    }
  }
  return { value, cookie: session };
}

// ---------------------------------------------------------------------------
// Latency histogram: 0.05 ms buckets up to 2 s, exact beyond
// ---------------------------------------------------------------------------

const BUCKET_MS = 0.05;
const BUCKETS = 40_000;

class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  readonly overflow: number[] = [];
  count = 0;
  max = 0;

  add(ms: number): void {
    const value = Math.max(0, ms);
    const bucket = Math.floor(value / BUCKET_MS);
    if (bucket < BUCKETS) this.counts[bucket]!++;
    else this.overflow.push(value);
    this.count++;
    if (value > this.max) this.max = value;
  }

  toJSON(): { buckets: [number, number][]; overflow: number[]; max: number } {
    const buckets: [number, number][] = [];
    this.counts.forEach((n, i) => {
      if (n) buckets.push([i, n]);
    });
    return { buckets, overflow: this.overflow, max: this.max };
  }

  merge(data: { buckets: [number, number][]; overflow: number[]; max: number }): void {
    for (const [i, n] of data.buckets) {
      this.counts[i]! += n;
      this.count += n;
    }
    this.overflow.push(...data.overflow);
    this.count += data.overflow.length;
    this.max = Math.max(this.max, data.max);
  }

  /** The q-quantile in ms (the upper edge of its bucket), or null with no samples. */
  quantile(q: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min((i + 1) * BUCKET_MS, this.max);
    }
    const sorted = [...this.overflow].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, rank - seen - 1)]!;
  }
}

// ---------------------------------------------------------------------------
// The worker: clients, senders and checks, in a process of its own
// ---------------------------------------------------------------------------

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
const clock = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The longest wait a client asks for; the server caps it at 25 s. */
const WAIT_MS = 25_000;
/** The original client receives every 2 s. */
const POLL_MS = 2000;
/** Sender connections open at first; more open when all are busy, up to one per client, as real clients have. */
const SENDER_CONNECTIONS = 16;
/** But no more than this per worker: file descriptors are counted. */
const MAX_SENDER_CONNECTIONS = 1024;

/** The most sender connections a worker with this many clients opens. */
function sendersFor(clients: number): number {
  return Math.min(MAX_SENDER_CONNECTIONS, Math.max(SENDER_CONNECTIONS, clients));
}
const LAG_TICK_MS = 20;
const SETUP_CONCURRENCY = 64;
const FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit";

interface WorkerConfig {
  host: string;
  port: number;
  compat: boolean;
  runId: string;
  worker: number;
  /** This worker's clients: global indexes first..last-1; client g is in room g % rooms. */
  first: number;
  last: number;
  rooms: string[];
}

interface HammerCommand {
  cmd: "hammer";
  host: string;
  port: number;
  connections: number;
  warmupMs: number;
  ms: number;
  body: string;
  cookie?: string;
}

interface RunCommand {
  cmd: "run";
  cursor: number;
  startAt: number;
  /** Messages per second this worker sends. */
  rate: number;
  durationMs: number;
  /** After the duration, one message to each room this worker pings. */
  ping: boolean;
}

interface Client {
  readonly index: number;
  readonly name: string;
  readonly room: number;
  readonly connection: HttpConnection;
  cookie: string | undefined;
  cursor: number;
  lastId: number;
  previous: Set<string>;
  waiting: boolean;
}

export interface WorkerResult {
  type: "result";
  sent: [key: string, room: number][];
  counts: Record<string, number>;
  histogram: ReturnType<Histogram["toJSON"]>;
  deliveries: number;
  duplicates: number;
  calls: number;
  errors: number;
  errorSamples: string[];
  /** How late this process's timers fired during the load: its own event loop's lag. */
  lag: ReturnType<Histogram["toJSON"]>;
}

/** Messages carry their identity and the moment they were sent: `b|run|worker|seq|ms|filler`. */
function messageText(runId: string, worker: number, seq: number): string {
  return `b|${runId}|${worker}|${seq}|${clock().toFixed(3)}|${FILLER}`;
}

class Worker {
  readonly #config: WorkerConfig;
  readonly #clients: Client[] = [];
  readonly #counts = new Map<string, number>();
  readonly #histogram = new Histogram();
  readonly #sent: [string, number][] = [];
  readonly #sentByRoom: number[];
  readonly #errorSamples: string[] = [];
  readonly #decoded = new Map<string, WireValue>();
  readonly #lag = new Histogram();
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  readonly #senders: HttpConnection[] = [];
  readonly #idleSenders: HttpConnection[] = [];
  readonly #senderQueue: ((connection: HttpConnection) => void)[] = [];
  #deliveries = 0;
  #duplicates = 0;
  #calls = 0;
  #errors = 0;
  #running = false;
  #callsBeforeRun = 0;
  #sendingDone = false;
  #pendingSends = 0;
  #hardDeadline = Infinity;
  #loops: Promise<void>[] = [];

  constructor(config: WorkerConfig) {
    this.#config = config;
    this.#sentByRoom = config.rooms.map(() => 0);
    for (let i = 0; i < SENDER_CONNECTIONS; i++) this.#newSender();
  }

  #newSender(): HttpConnection {
    const connection = new HttpConnection(this.#config.host, this.#config.port);
    this.#senders.push(connection);
    this.#idleSenders.push(connection);
    return connection;
  }

  #error(error: unknown): void {
    this.#errors++;
    if (this.#errorSamples.length < 5) {
      this.#errorSamples.push(error instanceof Error ? error.message : String(error));
    }
  }

  #call(connection: HttpConnection, method: string, params: (string | number | null)[], cookie?: string) {
    const waits = method === "aguardar_mensagens";
    return rawCall(connection, method, params, {
      cookie: this.#config.compat ? undefined : cookie,
      timeoutMs: waits ? WAIT_MS + 15_000 : 30_000,
      decoded: waits ? this.#decoded : undefined,
    });
  }

  /** Registers this worker's clients and puts them in their rooms. */
  async connect(): Promise<{ joined: number[]; cursor: number }> {
    const { first, last, rooms, runId } = this.#config;
    const joined = rooms.map(() => 0);
    let cursor = 0;
    let next = first;
    const setupOne = async (index: number) => {
      const client: Client = {
        index,
        name: `b${runId}-${index}`,
        room: index % rooms.length,
        connection: new HttpConnection(this.#config.host, this.#config.port),
        cookie: undefined,
        cursor: 0,
        lastId: 0,
        previous: new Set(),
        waiting: false,
      };
      try {
        const registered = await this.#call(client.connection, "registrar_usuario", [client.name]);
        this.#calls++;
        if ((registered.value as WireValue[])[0] !== true) throw new Error(`registro: ${registered.value}`);
        client.cookie = registered.cookie;
        const { value } = await this.#call(
          client.connection,
          "entrar_na_sala",
          [client.name, rooms[client.room]!],
          client.cookie,
        );
        this.#calls++;
        const [ok, state] = value as [boolean, { cursor?: number }];
        if (ok !== true) throw new Error(`entrar_na_sala: ${state}`);
        cursor = Math.max(cursor, Number(state.cursor ?? 0));
        joined[client.room]!++;
        this.#clients.push(client);
      } catch (error) {
        this.#error(error);
        client.connection.close();
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(SETUP_CONCURRENCY, last - first) }, async () => {
        while (next < last) await setupOne(next++);
      }),
    );
    this.#clients.sort((a, b) => a.index - b.index);
    return { joined, cursor };
  }

  /** Starts receiving and sending; returns at once (progress() tells how it goes). */
  run(command: RunCommand): void {
    this.#running = true;
    this.#callsBeforeRun = this.#calls;
    this.#hardDeadline = command.startAt + command.durationMs + 120_000;
    // A busy load generator would add its own delays to every figure: measure them.
    let due = performance.now() + LAG_TICK_MS;
    this.#lagTimer = setInterval(() => {
      const now = performance.now();
      this.#lag.add(now - due);
      due = now + LAG_TICK_MS;
    }, LAG_TICK_MS);
    for (const [i, client] of this.#clients.entries()) {
      client.cursor = command.cursor;
      client.lastId = command.cursor;
      const offset = (i / Math.max(1, this.#clients.length)) * POLL_MS;
      this.#loops.push(
        this.#config.compat ? this.#pollLoop(client, command.startAt + offset) : this.#waitLoop(client),
      );
    }
    this.#loops.push(this.#sendLoop(command));
  }

  async #waitLoop(client: Client): Promise<void> {
    const room = this.#config.rooms[client.room]!;
    while (this.#running && Date.now() < this.#hardDeadline) {
      let value: WireValue;
      client.waiting = true;
      try {
        ({ value } = await this.#call(
          client.connection,
          "aguardar_mensagens",
          [client.name, room, client.cursor, WAIT_MS],
          client.cookie,
        ));
      } catch (error) {
        if (!this.#running) break;
        this.#error(error);
        await sleep(100);
        continue;
      } finally {
        client.waiting = false;
      }
      this.#calls++;
      const [ok, payload] = value as [
        boolean,
        { mensagens: { id: number; conteudo: string }[]; cursor: number },
      ];
      if (ok !== true) {
        this.#error(`aguardar_mensagens: ${payload}`);
        await sleep(100);
        continue;
      }
      const now = clock();
      for (const message of payload.mensagens) {
        if (message.id <= client.lastId) {
          this.#duplicates++;
          continue;
        }
        client.lastId = message.id;
        this.#record(message.conteudo, now);
      }
      client.cursor = payload.cursor;
    }
  }

  /** The original client: the last messages every 2 s, deduplicated against the previous answer. */
  async #pollLoop(client: Client, firstAt: number): Promise<void> {
    const room = this.#config.rooms[client.room]!;
    let due = firstAt;
    while (this.#running && Date.now() < this.#hardDeadline) {
      await sleep(due - Date.now());
      if (!this.#running) break;
      due += POLL_MS;
      let value: WireValue;
      try {
        ({ value } = await this.#call(
          client.connection,
          "receber_mensagens",
          [client.name, room],
          client.cookie,
        ));
      } catch (error) {
        if (!this.#running) break;
        this.#error(error);
        continue;
      }
      this.#calls++;
      const [ok, messages] = value as [boolean, Record<string, WireValue>[]];
      if (ok !== true) {
        this.#error(`receber_mensagens: ${messages}`);
        continue;
      }
      const now = clock();
      const seen = new Set<string>();
      for (const message of messages) {
        const key = typeof message.id === "number"
          ? `#${message.id}`
          : `${message.origem}\u0000${message.timestamp}\u0000${message.conteudo}`;
        if (seen.has(key)) {
          this.#duplicates++;
          continue;
        }
        seen.add(key);
        if (!client.previous.has(key)) this.#record(String(message.conteudo), now);
      }
      client.previous = seen;
    }
  }

  #record(text: string, now: number): void {
    if (!text.startsWith("b|")) return;
    const [, runId, worker, seq, sentAt] = text.split("|", 5);
    if (runId !== this.#config.runId) return;
    const key = `${worker}|${seq}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#deliveries++;
    this.#histogram.add(now - Number(sentAt));
  }

  async #sendLoop(command: RunCommand): Promise<void> {
    const clients = this.#clients;
    const total = Math.floor(command.rate * command.durationMs / 1000);
    const sends: Promise<void>[] = [];
    if (clients.length && command.rate > 0) {
      const interval = 1000 / command.rate;
      for (let seq = 0; seq < total && this.#running;) {
        await sleep(command.startAt + seq * interval - Date.now());
        // Catch up with everything due: the schedule, not the timer, sets the rate.
        while (seq < total && command.startAt + seq * interval <= Date.now()) {
          sends.push(this.#send(clients[seq % clients.length]!, seq));
          seq++;
        }
      }
    }
    if (command.ping) {
      await sleep(command.startAt + command.durationMs - Date.now());
      // One message to each room whose first client is ours: every room gets exactly one.
      for (const client of clients) {
        if (client.index < this.#config.rooms.length) sends.push(this.#send(client, total + client.index));
      }
    }
    await Promise.all(sends);
    this.#sendingDone = true;
  }

  async #send(client: Client, seq: number): Promise<void> {
    this.#pendingSends++;
    // Sends never wait behind each other while there are fewer connections than clients: the load
    // stays what --rate says however slowly the server answers (an open loop).
    if (
      !this.#idleSenders.length &&
      this.#senders.length < sendersFor(this.#clients.length)
    ) {
      this.#newSender();
    }
    const connection = this.#idleSenders.pop() ??
      await new Promise<HttpConnection>((resolve) => this.#senderQueue.push(resolve));
    try {
      const text = messageText(this.#config.runId, this.#config.worker, seq);
      const { value } = await this.#call(
        connection,
        "enviar_mensagem",
        [client.name, this.#config.rooms[client.room]!, text, null],
        client.cookie,
      );
      this.#calls++;
      const [ok, message] = value as [boolean, string];
      if (ok === true) {
        this.#sent.push([`${this.#config.worker}|${seq}`, client.room]);
        this.#sentByRoom[client.room]!++;
      } else this.#error(`enviar_mensagem: ${message}`);
    } catch (error) {
      this.#error(error);
    } finally {
      this.#pendingSends--;
      const waiter = this.#senderQueue.shift();
      if (waiter) waiter(connection);
      else this.#idleSenders.push(connection);
    }
  }

  progress() {
    return {
      type: "progress",
      sentByRoom: this.#sentByRoom,
      sendingDone: this.#sendingDone,
      pendingSends: this.#pendingSends,
      deliveries: this.#deliveries,
      duplicates: this.#duplicates,
      calls: this.#calls,
      errors: this.#errors,
      waiting: this.#clients.reduce((n, c) => n + (c.waiting ? 1 : 0), 0),
      clients: this.#clients.length,
    };
  }

  /** Stops everything and hands over what was seen. */
  finish(): WorkerResult {
    this.#running = false;
    clearInterval(this.#lagTimer);
    for (const client of this.#clients) client.connection.close();
    for (const connection of this.#senders) connection.close();
    return {
      type: "result",
      sent: this.#sent,
      counts: Object.fromEntries(this.#counts),
      histogram: this.#histogram.toJSON(),
      deliveries: this.#deliveries,
      duplicates: this.#duplicates,
      calls: this.#calls - this.#callsBeforeRun,
      errors: this.#errors,
      errorSamples: this.#errorSamples,
      lag: this.#lag.toJSON(),
    };
  }
}

/** The same request, over and over, on `connections` connections: calls per second. */
async function hammer(
  command: HammerCommand,
): Promise<{ type: "hammer"; calls: number; errors: number; ms: number }> {
  const request = httpRequest(command.host, command.port, command.body, command.cookie);
  let calls = 0;
  let errors = 0;
  const start = performance.now();
  const measureFrom = start + command.warmupMs;
  const end = measureFrom + command.ms;
  await Promise.all(Array.from({ length: command.connections }, async () => {
    const connection = new HttpConnection(command.host, command.port);
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
  return { type: "hammer", calls, errors, ms: performance.now() - measureFrom };
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  if (rest) yield rest;
}

function emit(message: unknown): void {
  console.log(JSON.stringify(message));
}

/** A worker process: commands on stdin, one JSON line per answer on stdout. */
async function workerMain(): Promise<void> {
  let worker: Worker | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;
  for await (const line of lines(Deno.stdin.readable)) {
    const command = JSON.parse(line);
    switch (command.cmd) {
      case "config":
        worker = new Worker(command.config);
        break;
      case "hammer":
        emit(await hammer(command));
        break;
      case "connect":
        emit({ type: "connected", ...await worker!.connect() });
        break;
      case "run":
        worker!.run(command);
        ticker = setInterval(() => emit(worker!.progress()), 250);
        break;
      case "progress":
        emit(worker!.progress());
        break;
      case "finish":
        clearInterval(ticker);
        emit(worker!.finish());
        Deno.exit(0);
    }
  }
  // The coordinator is gone: so are we.
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// The raw Deno.serve baseline
// ---------------------------------------------------------------------------

/** A trivial handler: reads the body, answers a fixed body of the given size. */
function baselineMain(size: number): void {
  const body = `<?xml version="1.0"?>${"x".repeat(Math.max(0, size - 21))}`;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`baseline ${port}`),
  }, async (request) => {
    await request.arrayBuffer();
    return new Response(body, { headers: { "content-type": "text/xml; charset=utf-8" } });
  });
  // Ends when the coordinator closes our stdin (or kills us).
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing to read */ }
    await server.shutdown();
    Deno.exit(0);
  })();
}

// ---------------------------------------------------------------------------
// The coordinator: processes, phases, figures
// ---------------------------------------------------------------------------

/** A subprocess of ours: `deno run` with exact permissions, stdout read line by line. */
class Child {
  readonly process: Deno.ChildProcess;
  readonly tail: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  readonly #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  readonly done: Promise<Deno.CommandStatus>;

  constructor(args: string[], options: { cwd?: string; stdin?: boolean } = {}) {
    const process = new Deno.Command("deno", {
      args: ["run", "--no-prompt", ...args],
      cwd: options.cwd,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.process = process;
    if (options.stdin) this.#writer = process.stdin.getWriter();
    const reading = (async () => {
      for await (const line of lines(process.stdout)) {
        this.tail.push(line);
        if (this.tail.length > 20) this.tail.shift();
        for (const listener of this.#listeners) listener(line);
      }
    })();
    this.done = reading.then(() => process.status);
  }

  get pid(): number {
    return this.process.pid;
  }

  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The first line (from now on) that `pick` accepts. */
  waitFor<T>(pick: (line: string) => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${what}: nada em ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const off = this.onLine((line) => {
        const value = pick(line);
        if (value === undefined) return;
        clearTimeout(timer);
        off();
        resolve(value);
      });
      this.done.then(() => {
        clearTimeout(timer);
        off();
        reject(new Error(`${what}: o processo terminou (${this.tail.slice(-5).join(" / ")})`));
      });
    });
  }

  async send(message: unknown): Promise<void> {
    await this.#writer!.write(encoder.encode(JSON.stringify(message) + "\n"));
  }

  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5000): Promise<void> {
    await this.#writer?.close().catch(() => {});
    try {
      this.process.kill(signal);
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        this.process.kill("SIGKILL");
      } catch {
        // Gone.
      }
    }, graceMs);
    await this.done.catch(() => {});
    clearTimeout(timer);
  }
}

/** A worker process and its newest answers. */
class WorkerProcess {
  readonly child: Child;
  latest: ReturnType<Worker["progress"]> | undefined;

  constructor(script: string, config: WorkerConfig) {
    this.child = new Child(["--allow-net", script, "--worker"], { stdin: true });
    this.child.onLine((line) => {
      if (line.startsWith('{"type":"progress"')) this.latest = JSON.parse(line);
    });
    this.child.send({ cmd: "config", config });
  }

  async ask<T>(command: Record<string, unknown>, type: string, timeoutMs: number): Promise<T> {
    const answer = this.child.waitFor(
      (line) => line.startsWith(`{"type":"${type}"`) ? JSON.parse(line) as T : undefined,
      `worker: ${command.cmd}`,
      timeoutMs,
    );
    await this.child.send(command);
    return await answer;
  }
}

/** RSS, peak RSS and CPU seconds of a process, from /proc (null where there is no /proc). */
export async function processStats(
  pid: number,
): Promise<{ rssMb: number; peakMb: number; cpuS: number } | null> {
  try {
    const { stdout, success } = await new Deno.Command("cat", {
      args: [`/proc/${pid}/status`, `/proc/${pid}/stat`],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!success) return null;
    const text = decoder.decode(stdout);
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
    // /proc/<pid>/stat: after "(comm)", field 14 and 15 are utime and stime in clock ticks (100 per second).
    const stat = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(stat[11]) + Number(stat[12]);
    return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024, cpuS: ticks / 100 };
  } catch {
    return null;
  }
}

async function readProc(path: string): Promise<string> {
  try {
    const { stdout } = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .output();
    return decoder.decode(stdout);
  } catch {
    return "";
  }
}

/** CPU seconds of all the worker processes together, or null without /proc. */
async function workersCpu(workers: WorkerProcess[]): Promise<number | null> {
  let total = 0;
  for (const worker of workers) {
    const stats = await processStats(worker.child.pid);
    if (!stats) return null;
    total += stats.cpuS;
  }
  return total;
}

/** The machine, in one line: cores, memory, CPU model, Deno. */
async function describeMachine(): Promise<
  { cores: number; memoryGb: number | null; cpu: string; text: string }
> {
  const cores = navigator.hardwareConcurrency;
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(await readProc("/proc/meminfo"))?.[1] ?? NaN);
  const memoryGb = Number.isFinite(memKb) ? Math.round(memKb / 1024 / 1024 * 10) / 10 : null;
  const cpu = /^model name\s*:\s*(.+)$/m.exec(await readProc("/proc/cpuinfo"))?.[1]?.trim() ?? "?";
  const text = `${cores} cores (${cpu}), ${
    memoryGb ?? "?"
  } GiB RAM, Deno ${Deno.version.deno} on ${Deno.build.os}`;
  return { cores, memoryGb, cpu, text };
}

/** The open-file limit of a process, from /proc/<pid>/limits. */
async function openFileLimit(pid: number): Promise<number | null> {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(await readProc(`/proc/${pid}/limits`));
  if (!match) return null;
  return match[1] === "unlimited" ? Infinity : Number(match[1]);
}

export interface BenchOptions {
  clients: number;
  rooms: number;
  rate: number;
  durationS: number;
  server: string | undefined;
  compat: boolean;
  idle: boolean;
  workers: number;
  connections: number;
  baselineS: number;
  json: boolean;
}

/** The figures of a run: what the JSON line carries. */
export interface BenchResult {
  mode: "long-wait" | "compat" | "idle";
  clients: number;
  clients_connected: number;
  rooms: number;
  rate: number;
  duration_s: number;
  /** Seconds from the start of the load to the last delivery checked (the duration plus the drain). */
  load_s: number;
  workers: number;
  messages_sent: number;
  deliveries_expected: number;
  deliveries: number;
  duplicates: number;
  missing: number;
  unexpected: number;
  delivery_p50_ms: number | null;
  delivery_p90_ms: number | null;
  delivery_p99_ms: number | null;
  delivery_max_ms: number | null;
  held: number;
  calls: number;
  calls_per_s: number;
  errors: number;
  error_samples: string[];
  server_rss_mb: number | null;
  server_rss_peak_mb: number | null;
  server_cpu_s: number | null;
  load_cpu_s: number | null;
  /** The 99th percentile of the load generator's event-loop lag: what it may add to the latencies. */
  load_lag_p99_ms: number | null;
  single_call_method: string;
  connections: number;
  baseline_calls_per_s: number | null;
  single_call_per_s: number | null;
  single_call_fraction: number | null;
  server_cpu_us_per_call: number | null;
  machine: string;
  ok: boolean;
}

function progressLine(elapsedS: number, totalS: number, workers: WorkerProcess[], expected: number): string {
  const sum = (pick: (p: NonNullable<WorkerProcess["latest"]>) => number) =>
    workers.reduce((n, w) => n + (w.latest ? pick(w.latest) : 0), 0);
  const sent = sum((p) => p.sentByRoom.reduce((a, b) => a + b, 0));
  return `[${elapsedS.toFixed(1).padStart(5)}/${totalS} s] sent ${fmt(sent)}  delivered ${
    fmt(sum((p) => p.deliveries))
  }/${fmt(expected)}  waiting ${fmt(sum((p) => p.waiting))}  calls ${fmt(sum((p) => p.calls))}  errors ${
    fmt(sum((p) => p.errors))
  }`;
}

function fmt(n: number | null, digits = 0): string {
  if (n === null || !Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Runs the benchmark and returns its figures; progress goes to stderr. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const script = new URL(import.meta.url).href;
  const machine = await describeMachine();
  const runId = crypto.randomUUID().slice(0, 6);
  const cleanups: (() => Promise<void>)[] = [];
  const progress = (text: string, final = false) => {
    if (Deno.stderr.isTerminal()) {
      Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}${final ? "\n" : ""}`));
    } else if (final) Deno.stderr.writeSync(encoder.encode(`${text}\n`));
  };
  const say = (text: string) => progress(text, true);

  try {
    // --- the system under test ---------------------------------------------------
    let host: string;
    let port: number;
    let serverPid: number | undefined;
    const perWorker = Math.ceil(options.clients / options.workers);
    if (options.server) {
      ({ host, port } = parseHostPort(options.server, 8001));
    } else {
      const dir = await Deno.makeTempDir({ prefix: "rpc-chat-bench-" });
      cleanups.unshift(() => Deno.remove(dir, { recursive: true }));
      const binder = new Child([
        "--allow-net",
        new URL("../binder.ts", import.meta.url).href,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ]);
      cleanups.unshift(() => binder.stop());
      const binderPort = await binder.waitFor(
        (line) => /Binder ouvindo em [^ ]+:(\d+)$/.exec(line)?.[1],
        "binder",
        30_000,
      );
      // Every user sends at most rate/clients per second: leave the server's limit far above that.
      const maxRate = Math.max(10, Math.ceil((4 * options.rate) / Math.max(1, options.clients)));
      const server = new Child([
        "--allow-net",
        "--allow-sys=networkInterfaces",
        "--allow-read=chat.db",
        "--allow-write=chat_server.log,chat.db",
        new URL("../server.ts", import.meta.url).href,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--binder",
        `127.0.0.1:${binderPort}`,
        "--max-rate",
        String(maxRate),
        ...(options.compat ? ["--compat"] : []),
      ], { cwd: dir });
      cleanups.unshift(() => server.stop());
      await server.waitFor((line) => /Servidor ouvindo/.test(line) || undefined, "server", 30_000);
      serverPid = server.pid;
      // Find it the way a client does: through the binder.
      const binderClient = new XmlRpcClient(endpointUrl("127.0.0.1", Number(binderPort)), {
        timeoutMs: 5000,
      });
      let found: [boolean, { endereco: string; porta: number } | string] = [false, ""];
      for (let i = 0; i < 100 && !found[0]; i++) {
        found = await binderClient.call("buscar_procedimento", ["ChatService"]);
        if (!found[0]) await sleep(100);
      }
      if (!found[0]) throw new Error("o servidor não se registrou no binder");
      ({ endereco: host, porta: port } = found[1] as { endereco: string; porta: number });
      const limit = await openFileLimit(serverPid);
      const needs = options.clients + options.workers * sendersFor(perWorker) + options.connections + 100;
      if (limit !== null && limit < needs) {
        throw new Error(
          `o servidor pode abrir só ${limit} arquivos, e ${options.clients} clientes precisam de ${needs}: ` +
            `aumente o limite (ulimit -n ${needs})`,
        );
      }
    }
    say(
      `rpc-chat bench: ${fmt(options.clients)} clients, ${options.rooms} rooms, ` +
        (options.idle
          ? `idle for ${options.durationS} s`
          : `${fmt(options.rate)} msg/s for ${options.durationS} s`) +
        `, ${options.compat ? "compat (receber_mensagens every 2 s)" : "long wait"}, server ${host}:${port}` +
        (serverPid ? ` (pid ${serverPid})` : ""),
    );

    // --- rooms and workers ---------------------------------------------------------
    const setup = new HttpConnection(host, port);
    cleanups.unshift(() => Promise.resolve(setup.close()));
    const rooms = Array.from({ length: options.rooms }, (_, r) => `b${runId}-sala${r}`);
    for (const room of rooms) {
      const { value } = await rawCall(setup, "criar_sala", [room], { timeoutMs: 30_000 });
      if ((value as WireValue[])[0] !== true) throw new Error(`criar_sala ${room}: ${value}`);
    }
    const workers: WorkerProcess[] = [];
    for (let w = 0; w < options.workers; w++) {
      const worker = new WorkerProcess(script, {
        host,
        port,
        compat: options.compat,
        runId,
        worker: w,
        first: Math.floor((w * options.clients) / options.workers),
        last: Math.floor(((w + 1) * options.clients) / options.workers),
        rooms,
      });
      workers.push(worker);
      cleanups.unshift(() => worker.child.stop("SIGKILL"));
    }
    // Each worker holds a connection per client of its own, plus its senders.
    const workerLimit = await openFileLimit(workers[0]!.child.pid);
    const workerNeeds = perWorker + sendersFor(perWorker) + 100;
    if (workerLimit !== null && workerLimit < workerNeeds) {
      throw new Error(
        `um processo de carga pode abrir só ${workerLimit} arquivos e precisa de ${workerNeeds}: ` +
          `aumente o limite (ulimit -n) ou use mais --workers`,
      );
    }

    // --- one call type, raw Deno.serve and ours --------------------------------------
    const single = await measureSingleCall(options, { host, port, serverPid, runId, workers, script });
    if (single.fraction !== null) {
      say(
        `single call (${single.method}, ${options.connections} connections): raw Deno.serve ${
          fmt(single.baseline)
        }/s, ours ${fmt(single.ours)}/s = ${fmt(single.fraction * 100)}%`,
      );
    }

    // --- clients in their rooms ----------------------------------------------------------
    const setupStart = performance.now();
    const connected = await Promise.all(
      workers.map((w) =>
        w.ask<{ joined: number[]; cursor: number }>({ cmd: "connect" }, "connected", 600_000)
      ),
    );
    const roomSize = rooms.map((_, r) => connected.reduce((n, c) => n + c.joined[r]!, 0));
    const clientsConnected = roomSize.reduce((a, b) => a + b, 0);
    const cursor = Math.max(...connected.map((c) => c.cursor));
    say(
      `${fmt(clientsConnected)} clients registered and in their rooms in ${
        fmt((performance.now() - setupStart) / 1000, 1)
      } s`,
    );

    // --- the load ---------------------------------------------------------------------------
    const durationMs = options.durationS * 1000;
    const before = serverPid ? await processStats(serverPid) : null;
    const loadBefore = await workersCpu(workers);
    const startAt = Date.now() + 300;
    for (const worker of workers) {
      await worker.child.send(
        {
          cmd: "run",
          cursor,
          startAt,
          rate: options.idle ? 0 : options.rate / workers.length,
          durationMs,
          ping: options.idle,
        } satisfies RunCommand,
      );
    }
    const expectedNow = () =>
      workers.reduce(
        (n, w) => n + (w.latest?.sentByRoom.reduce((sum, sent, r) => sum + sent * roomSize[r]!, 0) ?? 0),
        0,
      );
    let held = 0;
    let lastProgress = 0;
    for (let guard = 0; guard < 100_000 && Date.now() < startAt + durationMs; guard++) {
      await sleep(Math.min(100, startAt + durationMs - Date.now()));
      if (options.idle && Date.now() >= startAt + durationMs - 600) {
        held = Math.max(held, workers.reduce((n, w) => n + (w.latest?.waiting ?? 0), 0));
      }
      if (Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        progress(progressLine((Date.now() - startAt) / 1000, options.durationS, workers, expectedNow()));
      }
    }
    if (!options.idle) held = workers.reduce((n, w) => n + (w.latest?.waiting ?? 0), 0);
    // Drain: wait until every delivery is made (or it is clear some never will be).
    // Drain: until every delivery is made, or nothing moved for a while (then some never will be).
    const stillMs = options.compat ? 2 * POLL_MS + 3000 : 5000;
    const drainUntil = Date.now() + 60_000;
    let moved = Date.now();
    let seen = -1;
    for (let guard = 0; guard < 10_000 && Date.now() < drainUntil && Date.now() - moved < stillMs; guard++) {
      await sleep(100);
      const done = workers.every((w) => w.latest?.sendingDone && w.latest.pendingSends === 0);
      const delivered = workers.reduce((n, w) => n + (w.latest?.deliveries ?? 0), 0);
      const sent = workers.reduce((n, w) => n + (w.latest?.sentByRoom.reduce((a, b) => a + b, 0) ?? 0), 0);
      if (done && delivered >= expectedNow()) break;
      if (delivered + sent !== seen) {
        seen = delivered + sent;
        moved = Date.now();
      }
      if (Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        progress(progressLine((Date.now() - startAt) / 1000, options.durationS, workers, expectedNow()));
      }
    }
    progress(progressLine((Date.now() - startAt) / 1000, options.durationS, workers, expectedNow()), true);
    const after = serverPid ? await processStats(serverPid) : null;
    const loadAfter = await workersCpu(workers);
    const loadSeconds = (Date.now() - startAt) / 1000;
    const results = await Promise.all(
      workers.map((w) => w.ask<WorkerResult>({ cmd: "finish" }, "result", 60_000)),
    );

    // --- the check ---------------------------------------------------------------------------
    const counts = new Map<string, number>();
    for (const result of results) {
      for (const [key, n] of Object.entries(result.counts)) counts.set(key, (counts.get(key) ?? 0) + n);
    }
    let expected = 0;
    let missing = 0;
    let extra = 0;
    const sentKeys = new Set<string>();
    for (const result of results) {
      for (const [key, room] of result.sent) {
        sentKeys.add(key);
        const want = roomSize[room]!;
        const got = counts.get(key) ?? 0;
        expected += want;
        if (got < want) missing += want - got;
        if (got > want) extra += got - want;
      }
    }
    let unexpected = 0;
    for (const [key, n] of counts) if (!sentKeys.has(key)) unexpected += n;
    const histogram = new Histogram();
    for (const result of results) histogram.merge(result.histogram);
    const lag = new Histogram();
    for (const result of results) lag.merge(result.lag);
    const deliveries = results.reduce((n, r) => n + r.deliveries, 0);
    const duplicates = results.reduce((n, r) => n + r.duplicates, 0) + extra;
    const calls = results.reduce((n, r) => n + r.calls, 0);
    const errors = results.reduce((n, r) => n + r.errors, 0);
    const round = (n: number | null, digits = 2) =>
      n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits;
    const result: BenchResult = {
      mode: options.idle ? "idle" : options.compat ? "compat" : "long-wait",
      clients: options.clients,
      clients_connected: clientsConnected,
      rooms: options.rooms,
      rate: options.idle ? 0 : options.rate,
      duration_s: options.durationS,
      load_s: round(loadSeconds, 1)!,
      workers: options.workers,
      messages_sent: sentKeys.size,
      deliveries_expected: expected,
      deliveries,
      duplicates,
      missing,
      unexpected,
      delivery_p50_ms: round(histogram.quantile(0.5)),
      delivery_p90_ms: round(histogram.quantile(0.9)),
      delivery_p99_ms: round(histogram.quantile(0.99)),
      delivery_max_ms: histogram.count ? round(histogram.max) : null,
      held,
      calls,
      calls_per_s: Math.round(calls / loadSeconds),
      errors,
      error_samples: results.flatMap((r) => r.errorSamples).slice(0, 5),
      server_rss_mb: after ? round(after.rssMb, 1) : null,
      server_rss_peak_mb: after ? round(after.peakMb, 1) : null,
      server_cpu_s: after && before ? round(after.cpuS - before.cpuS) : null,
      load_cpu_s: loadAfter !== null && loadBefore !== null ? round(loadAfter - loadBefore) : null,
      load_lag_p99_ms: round(lag.quantile(0.99)),
      single_call_method: single.method,
      connections: options.connections,
      baseline_calls_per_s: single.baseline === null ? null : Math.round(single.baseline),
      single_call_per_s: single.ours === null ? null : Math.round(single.ours),
      single_call_fraction: round(single.fraction, 3),
      server_cpu_us_per_call: round(single.cpuUsPerCall, 1),
      machine: machine.text,
      ok: clientsConnected === options.clients && missing === 0 && duplicates === 0 && unexpected === 0 &&
        deliveries === expected,
    };
    return result;
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
  }
}

/** One call type at `--connections` connections, against a raw Deno.serve and against the server. */
async function measureSingleCall(
  options: BenchOptions,
  context: {
    host: string;
    port: number;
    serverPid?: number;
    runId: string;
    workers: WorkerProcess[];
    script: string;
  },
): Promise<{
  method: string;
  baseline: number | null;
  ours: number | null;
  fraction: number | null;
  cpuUsPerCall: number | null;
}> {
  const method = options.compat ? "receber_mensagens" : "aguardar_mensagens";
  const none = { method, baseline: null, ours: null, fraction: null, cpuUsPerCall: null };
  if (options.baselineS <= 0) return none;
  const { host, port, runId, workers } = context;
  // A user in a room of its own with one message: each call answers that message.
  const probe = new HttpConnection(host, port);
  try {
    const name = `b${runId}-probe`;
    const room = `b${runId}-probe`;
    const registered = await rawCall(probe, "registrar_usuario", [name], { timeoutMs: 10_000 });
    const cookie = options.compat ? undefined : registered.cookie;
    await rawCall(probe, "criar_sala", [room], { cookie, timeoutMs: 10_000 });
    const joined = await rawCall(probe, "entrar_na_sala", [name, room], { cookie, timeoutMs: 10_000 });
    const cursor = Number(((joined.value as WireValue[])[1] as { cursor?: number }).cursor ?? 0);
    await rawCall(probe, "enviar_mensagem", [name, room, messageText("probe", 0, 0), null], {
      cookie,
      timeoutMs: 10_000,
    });
    const body = options.compat
      ? encodeCall(method, [name, room])
      : encodeCall(method, [name, room, cursor, 0]);
    const sample = await probe.request(httpRequest(host, port, body, cookie), 10_000);
    const answer = decodeResponse(decoder.decode(sample.body)) as [boolean, unknown];
    if (answer[0] !== true) throw new Error(`${method}: ${answer[1]}`);

    const baselineServer = new Child([
      "--allow-net",
      context.script,
      "--baseline-server",
      String(sample.body.byteLength),
    ], {
      stdin: true,
    });
    // Rounds of raw, then ours: a machine busy with something else for a while weighs on both alike.
    const rounds = Math.max(1, Math.min(3, Math.floor(options.baselineS)));
    const seconds = options.baselineS / rounds;
    const raw = { calls: 0, ms: 0 };
    const ours = { calls: 0, ms: 0 };
    let cpuS: number | null = 0;
    let callsWithWarmup = 0;
    try {
      const baselinePort = await baselineServer.waitFor(
        (line) => /^baseline (\d+)$/.exec(line)?.[1],
        "baseline",
        30_000,
      );
      for (let round = 0; round < rounds; round++) {
        const r = await hammerAll(workers, options, seconds, {
          host: "127.0.0.1",
          port: Number(baselinePort),
          body,
        });
        raw.calls += r.calls;
        raw.ms += r.ms;
        const before = context.serverPid ? await processStats(context.serverPid) : null;
        const o = await hammerAll(workers, options, seconds, { host, port, body, cookie });
        const after = context.serverPid ? await processStats(context.serverPid) : null;
        ours.calls += o.calls;
        ours.ms += o.ms;
        cpuS = before && after && cpuS !== null ? cpuS + after.cpuS - before.cpuS : null;
        callsWithWarmup += o.calls * (o.ms + HAMMER_WARMUP_MS) / o.ms;
      }
    } finally {
      await baselineServer.stop();
    }
    const baseline = raw.calls / (raw.ms / 1000);
    const oursPerS = ours.calls / (ours.ms / 1000);
    const cpuUsPerCall = cpuS === null ? null : (cpuS * 1e6) / callsWithWarmup;
    return { method, baseline, ours: oursPerS, fraction: oursPerS / baseline, cpuUsPerCall };
  } finally {
    probe.close();
  }
}

const HAMMER_WARMUP_MS = 300;

/** All workers hammer one target together for `seconds` (after a warm-up): the calls and the time. */
async function hammerAll(
  workers: WorkerProcess[],
  options: BenchOptions,
  seconds: number,
  target: { host: string; port: number; body: string; cookie?: string },
): Promise<{ calls: number; ms: number }> {
  const results = await Promise.all(workers.map((worker, w) => {
    const connections = Math.floor(((w + 1) * options.connections) / workers.length) -
      Math.floor((w * options.connections) / workers.length);
    return worker.ask<{ calls: number; errors: number; ms: number }>(
      {
        cmd: "hammer",
        ...target,
        connections,
        warmupMs: HAMMER_WARMUP_MS,
        ms: seconds * 1000,
      } satisfies HammerCommand,
      "hammer",
      seconds * 1000 + 60_000,
    );
  }));
  const errors = results.reduce((n, r) => n + r.errors, 0);
  if (errors) throw new Error(`${errors} chamadas falharam medindo ${target.host}:${target.port}`);
  return {
    calls: results.reduce((n, r) => n + r.calls, 0),
    ms: Math.max(...results.map((r) => r.ms)),
  };
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/** The figures as a Markdown table, with the targets of the issue and whether they are met. */
export function formatTable(result: BenchResult): string {
  const verdict = (met: boolean) => met ? "met" : "**not met**";
  const rows: [string, string, string][] = [];
  const ms = (n: number | null) => n === null ? "n/a" : `${fmt(n, 1)}`;
  rows.push(["clients (connected) / rooms", `${fmt(result.clients_connected)} / ${result.rooms}`, ""]);
  if (result.mode === "idle") {
    rows.push([
      "clients holding a pending long wait",
      fmt(result.held),
      `${fmt(result.clients)}: ${verdict(result.held === result.clients)}`,
    ]);
  }
  rows.push([
    result.mode === "idle"
      ? "messages sent (one per room at the end)"
      : `messages sent (${fmt(result.rate)}/s)`,
    fmt(result.messages_sent),
    "",
  ]);
  rows.push([
    "deliveries / expected",
    `${fmt(result.deliveries)} / ${fmt(result.deliveries_expected)}`,
    `all: ${verdict(result.deliveries === result.deliveries_expected && result.missing === 0)}`,
  ]);
  rows.push(["duplicates", fmt(result.duplicates), `0: ${verdict(result.duplicates === 0)}`]);
  rows.push([
    "delivery latency p50 / p90 / p99 / max (ms)",
    `${ms(result.delivery_p50_ms)} / ${ms(result.delivery_p90_ms)} / ${ms(result.delivery_p99_ms)} / ${
      ms(result.delivery_max_ms)
    }`,
    result.mode === "long-wait" ? `p99 ≤ 20 ms: ${verdict((result.delivery_p99_ms ?? Infinity) <= 20)}` : "",
  ]);
  rows.push(["calls/s during the load (all types)", fmt(result.calls_per_s), ""]);
  rows.push(["errors", fmt(result.errors), ""]);
  if (result.server_rss_mb !== null) {
    rows.push([
      "server RSS at the end / peak (MB)",
      `${fmt(result.server_rss_mb)} / ${fmt(result.server_rss_peak_mb)}`,
      result.mode === "long-wait"
        ? `≤ 300 MB: ${verdict((result.server_rss_peak_mb ?? Infinity) <= 300)}`
        : "",
    ]);
    rows.push([
      "server CPU during the load",
      `${fmt(result.server_cpu_s, 1)} s in ${fmt(result.load_s, 1)} s (${
        fmt((result.server_cpu_s ?? 0) / result.load_s * 100)
      }% of a core)`,
      "",
    ]);
  }
  if (result.load_cpu_s !== null) {
    rows.push([
      `load generator CPU (${result.workers} process${result.workers > 1 ? "es" : ""})`,
      `${fmt(result.load_cpu_s, 1)} s (${fmt(result.load_cpu_s / result.load_s * 100)}% of a core), ` +
      `event-loop lag p99 ${fmt(result.load_lag_p99_ms, 1)} ms`,
      "",
    ]);
  }
  if (result.baseline_calls_per_s !== null) {
    rows.push([
      `raw Deno.serve, ${result.connections} connections`,
      `${fmt(result.baseline_calls_per_s)} calls/s`,
      "",
    ]);
    rows.push([
      `${result.single_call_method}, ${result.connections} connections`,
      `${fmt(result.single_call_per_s)} calls/s = ${fmt((result.single_call_fraction ?? 0) * 100)}% of raw`,
      `≥ 40%: ${verdict((result.single_call_fraction ?? 0) >= 0.4)}`,
    ]);
    if (result.server_cpu_us_per_call !== null) {
      rows.push([
        `server CPU per ${result.single_call_method}`,
        `${fmt(result.server_cpu_us_per_call)} µs`,
        "",
      ]);
    }
  }
  const header: [string, string, string] = ["figure", "value", "target"];
  const widths = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

const USAGE = `bench.ts: the benchmark of rpc-chat

Usage: deno run --allow-net --allow-run=deno,cat --allow-write bench.ts [options]
       deno task bench [options]

Options:
  --clients N            clients, each in one room, each receiving live (default: 1000)
  --rooms N              rooms; client i is in room i mod N (default: 10)
  --rate N               messages per second in total, spread over the rooms (default: 200)
  --duration S           seconds of load (default: 10)
  --idle N               N clients, each holding a pending long wait for --duration seconds,
                         then one message per room (ignores --clients and --rate)
  --server H:P           measure this server instead of starting a binder and a server
  --compat               only the original methods: receber_mensagens every 2 s per client
  --workers N            load processes (default: 1; the machine has ${navigator.hardwareConcurrency} cores)
  --connections N        connections for the single-call measure (default: 20)
  --baseline-seconds S   seconds of each single-call measure; 0 skips it (default: 3)
  --json                 also print the figures as one JSON line, last
  -h, --help             this help

It starts binder.ts and server.ts (database and log in a temporary directory) unless --server is
given, and exits 1 when a delivery is missing or made twice.
Internal: --worker and --baseline-server SIZE start the processes it spawns.`;

function printUsage(): void {
  console.log(USAGE);
}

export async function main(args: string[] = Deno.args): Promise<void> {
  const program = "bench.ts";
  const flags = parseFlags(program, printUsage, args, {
    clients: { type: "string", default: "1000" },
    rooms: { type: "string", default: "10" },
    rate: { type: "string", default: "200" },
    duration: { type: "string", default: "10" },
    idle: { type: "string" },
    server: { type: "string" },
    compat: { type: "boolean", default: false },
    workers: { type: "string", default: "1" },
    connections: { type: "string", default: "20" },
    "baseline-seconds": { type: "string", default: "3" },
    json: { type: "boolean", default: false },
    worker: { type: "boolean", default: false },
    "baseline-server": { type: "string" },
  });
  if (flags.worker) return await workerMain();
  if (flags["baseline-server"] !== undefined) {
    return baselineMain(numberFlag(program, "--baseline-server", flags["baseline-server"], {
      min: 0,
      max: 1 << 24,
      integer: true,
    }));
  }
  const int = (flag: string, text: string, min: number, max: number) =>
    numberFlag(program, flag, text, { min, max, integer: true });
  const idle = flags.idle === undefined ? undefined : int("--idle", flags.idle, 1, 100_000);
  const options: BenchOptions = {
    clients: idle ?? int("--clients", flags.clients, 1, 100_000),
    rooms: int("--rooms", flags.rooms, 1, 10_000),
    rate: numberFlag(program, "--rate", flags.rate, { min: 0, max: 1_000_000 }),
    durationS: numberFlag(program, "--duration", flags.duration, { min: 0.1, max: 3600 }),
    server: flags.server,
    compat: flags.compat,
    idle: idle !== undefined,
    workers: int("--workers", flags.workers, 1, 64),
    connections: int("--connections", flags.connections, 1, 10_000),
    baselineS: numberFlag(program, "--baseline-seconds", flags["baseline-seconds"], { min: 0, max: 600 }),
    json: flags.json,
  };
  if (options.server !== undefined) {
    try {
      parseHostPort(options.server, 8001);
    } catch (error) {
      usageError(program, `--server: ${(error as Error).message}`);
    }
  }
  let result: BenchResult;
  try {
    result = await runBench(options);
  } catch (error) {
    console.error(`${program}: ${(error as Error).message}`);
    Deno.exit(1);
  }
  console.log(formatTable(result));
  if (result.error_samples.length) console.log(`errors, for example: ${result.error_samples.join("; ")}`);
  if (options.json) console.log(JSON.stringify(result));
  Deno.exit(result.ok ? 0 : 1);
}

if (import.meta.main) await main();
