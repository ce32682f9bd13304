/**
 * The server side of XML-RPC: method tables of plain functions, the
 * dispatcher (with introspection and multicall on top), and the handler that
 * turns HTTP requests into calls and results into responses, served with the
 * connection limits of `lib/wire/http_server.ts` (or by `Deno.serve`, in tests).
 * Business logic sees a {@linkcode Call}, never XML or HTTP.
 *
 * @module
 */

import { Deadlines } from "../wire/deadlines.ts";
import {
  type ConnectionInfo,
  describeError,
  type HttpServer,
  type IncomingRequest,
  type PlainResponse,
  serveHttp,
  toResponse,
} from "../wire/http_server.ts";
import { numberFlag, secondsFlag } from "../program/flags.ts";
import type { Logger } from "../program/log.ts";
import {
  KEEPS_SESSION_HEADER,
  type Lang,
  languageOf,
  REASONS_HEADER,
  SEND_KEY_HEADER,
  sendKeyOf,
} from "../chat/protocol.ts";
import {
  clip,
  decodeXml,
  encodeFault,
  encodeResponse,
  Fault,
  FaultCode,
  parseXmlRpc,
  type XmlRpcValue,
} from "../wire/codec.ts";

// ---------------------------------------------------------------------------
// Method tables
// ---------------------------------------------------------------------------

/** The parameter types a method can declare; `nil|string` also takes nil. */
export type ParamType = "string" | "int" | "double" | "boolean" | "nil|string" | "struct" | "array";

/** The value a parameter of that type receives. */
export type ValueOf<T extends ParamType> = T extends "string" ? string
  : T extends "int" | "double" ? number
  : T extends "boolean" ? boolean
  : T extends "nil|string" ? string | null
  : T extends "struct" ? { [member: string]: XmlRpcValue }
  : XmlRpcValue[];

/** A declared parameter: its name (for help and errors) and its type. */
export type Param = readonly [name: string, type: ParamType];
/** The argument types a method's function receives, from its declared parameters. */
export type ArgsOf<P extends readonly Param[]> = {
  -readonly [K in keyof P]: P[K] extends readonly [string, infer T extends ParamType] ? ValueOf<T> : never;
};

/** What a method may know of the call that reached it, without touching HTTP. */
export interface Call {
  /** The caller's IP address. */
  readonly remoteAddress: string;
  /** The binder's registration key the caller presented (the header `X-Chave-Registro`), if any. */
  readonly registerKey?: string | undefined;
  /** The session token the caller presented (a cookie), if any. */
  readonly session: string | undefined;
  /** The caller asked for the reason of every refusal (the header `X-Chat-Motivos: 1`). */
  readonly wantsReasons: boolean;
  /** The caller's language (its `Accept-Language` header): what its messages are written in. */
  readonly language: Lang;
  /** The key the caller gave the message it sends (`X-Chat-Chave`), if any and well formed. */
  readonly sendKey?: string | undefined;
  /** The caller keeps the session cookie (the header `X-Chat-Sessao: 1`). */
  readonly keepsSession?: boolean;
  /** Hands the caller a session token it will present from now on. */
  setSession(token: string): void;
}

/** A plain function in a method table, with its signature and help text. */
export interface RpcMethod {
  /** What it does, for `system.methodHelp`. */
  readonly help: string;
  /** Its parameters, checked before it runs. */
  readonly params: readonly Param[];
  /** Runs it with checked arguments: the result (or a promise of it) is the answer. */
  run(call: Call, args: unknown[]): unknown;
}

/** A service's methods by name. */
export type MethodTable = Record<string, RpcMethod>;

/** Declares a method: its help, its typed parameters and the function that runs it. */
export function rpc<const P extends readonly Param[]>(
  help: string,
  params: P,
  run: (call: Call, ...args: ArgsOf<P>) => unknown,
): RpcMethod {
  return { help, params, run: (call, args) => run(call, ...(args as ArgsOf<P>)) };
}

function typeMatches(type: ParamType, value: unknown): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "int":
      return Number.isInteger(value);
    case "double":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "nil|string":
      return value === null || typeof value === "string";
    case "array":
      return Array.isArray(value);
    case "struct":
      return typeof value === "object" && value !== null && !Array.isArray(value) &&
        !(value instanceof Date) && !(value instanceof Uint8Array);
  }
}

function signatureOf(name: string, method: RpcMethod): string {
  return `${name}(${method.params.map(([n, t]) => `${n}: ${t}`).join(", ")})`;
}

function checkParams(name: string, method: RpcMethod, params: unknown[]): void {
  const expected = method.params;
  if (params.length !== expected.length) {
    throw new Fault(
      FaultCode.INVALID_PARAMS,
      `Parâmetros inválidos: ${
        signatureOf(name, method)
      } recebe ${expected.length}, recebeu ${params.length}`,
    );
  }
  expected.forEach(([paramName, type], i) => {
    if (!typeMatches(type, params[i])) {
      throw new Fault(
        FaultCode.INVALID_PARAMS,
        `Parâmetros inválidos: '${paramName}' de ${name} deve ser ${type}`,
      );
    }
  });
}

/** At most this many calls in one `system.multicall`: one request cannot ask for unbounded work. */
export const MAX_MULTICALL = 100;

/** Adds the `system.*` introspection and multicall methods to a table. */
function withSystemMethods(methods: MethodTable, asFault: (error: unknown) => Fault): MethodTable {
  const table: MethodTable = { ...methods };
  table["system.listMethods"] = rpc("Lista os métodos deste serviço.", [], () => Object.keys(table).sort());
  table["system.methodHelp"] = rpc(
    "Ajuda de um método.",
    [["nome", "string"]],
    (_call, name) => {
      const method = lookup(table, name);
      return `${signatureOf(name, method)}\n${method.help}`;
    },
  );
  table["system.methodSignature"] = rpc(
    "Assinatura de um método: [[retorno, parâmetros...]].",
    [["nome", "string"]],
    (_call, name) => [["array", ...lookup(table, name).params.map(([, t]) => t)]],
  );
  table["system.multicall"] = rpc(
    "Várias chamadas em uma: [{methodName, params}...] -> [[resultado] ou {faultCode, faultString}...].",
    [["chamadas", "array"]],
    (call, calls) => {
      if (calls.length > MAX_MULTICALL) {
        throw new Fault(
          FaultCode.INVALID_PARAMS,
          `Parâmetros inválidos: no máximo ${MAX_MULTICALL} chamadas por system.multicall`,
        );
      }
      return Promise.all(calls.map(async (entry) => {
        try {
          const { methodName, params } = typeMatches("struct", entry)
            ? entry as Record<string, XmlRpcValue>
            : {};
          if (typeof methodName !== "string" || !Array.isArray(params)) {
            throw new Fault(FaultCode.INVALID_PARAMS, "Cada chamada deve ser {methodName, params}");
          }
          if (methodName === "system.multicall") {
            throw new Fault(FaultCode.INVALID_REQUEST, "system.multicall não pode ser aninhado");
          }
          return [await dispatch(table, call, methodName, params)];
        } catch (error) {
          const fault = asFault(error);
          return { faultCode: fault.code, faultString: fault.message };
        }
      }));
    },
  );
  return table;
}

function lookup(table: MethodTable, name: string): RpcMethod {
  const method = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!method) throw new Fault(FaultCode.METHOD_NOT_FOUND, `Método não encontrado: ${clip(name)}`);
  return method;
}

/** Runs a call: its result, or a promise of it when the method waits (it throws a fault at once when it can). */
function dispatch(table: MethodTable, call: Call, name: string, params: unknown[]): unknown {
  const method = lookup(table, name);
  checkParams(name, method, params);
  return method.run(call, params);
}

/** A thrown error as a fault: a Fault as it is; anything else is a bug, logged whole and answered -32603. */
function faultOf(error: unknown, log: Logger): Fault {
  if (error instanceof Fault) return error;
  log.error(`Erro interno: ${describeError(error)}`);
  return new Fault(FaultCode.INTERNAL_ERROR, "Erro interno do servidor");
}

/** Until a program hands its log: stderr. */
const STDERR_LOG: Logger = {
  info: (message) => console.error(message),
  warn: (message) => console.error(message),
  error: (message) => console.error(message),
};

// ---------------------------------------------------------------------------
// HTTP side of the server
// ---------------------------------------------------------------------------

/** Limits and the log of an XML-RPC handler. */
export interface HandlerOptions {
  /** Bodies larger than this are refused before parsing (413). */
  maxBodyBytes?: number;
  /** A client that takes longer than this to send its body gets 408. */
  bodyTimeoutMs?: number;
  /**
   * Bytes of big bodies (past their first 64 KiB) held at once, over all the
   * requests being received: past it, 503. Bodies are decoded one at a time,
   * so this bounds what bodies cost however many clients send at once, and
   * ordinary calls, which are small, are never refused.
   */
  maxInFlightBytes?: number;
  /** Where internal errors (bugs) go: the operator log. Default: stderr. */
  log?: Logger;
  /** Answers GET and HEAD requests (the binder serves the client's modules); without it they get 405. */
  get?: (request: IncomingRequest) => Response | Promise<Response>;
}

/** The cookie that carries the session `registrar_usuario` hands out. */
export const SESSION_COOKIE = "sessao";
/** The header a server sends its `--register-key` in, to a binder that asks for one. */
export const REGISTER_KEY_HEADER = "X-Chave-Registro";
const DEFAULT_MAX_BODY = 1024 * 1024;
const DEFAULT_MAX_IN_FLIGHT = 16 * DEFAULT_MAX_BODY;
const SMALL_BODY = 64 * 1024;
const XML_HEADERS = { "content-type": "text/xml; charset=utf-8" } as const;

/** A handler that serves a method table over XML-RPC, as `Deno.serve` takes it. */
export function xmlRpcHandler(
  methods: MethodTable,
  options: HandlerOptions = {},
): (request: IncomingRequest, info: ConnectionInfo) => Promise<Response> {
  const answer = xmlRpcAnswers(methods, options);
  return async (request, info) => toResponse(await answer(request, info));
}

/** The request's cookie and headers a {@linkcode Call} carries, read when a method asks for them. */
class HttpCall implements Call {
  readonly remoteAddress: string;
  newSession: string | undefined;
  readonly #headers: IncomingRequest["headers"];
  readonly #url: string;
  #session: string | undefined | null = null;
  #language: Lang | undefined;
  constructor(request: IncomingRequest, info: ConnectionInfo) {
    this.remoteAddress = info.remoteAddr.hostname;
    this.#headers = request.headers;
    this.#url = request.url;
  }
  /**
   * The session cookie's path: the path the call was posted to when it is a plain one, so pages of one
   * origin posting to paths of their own (the chat page's tabs, `/rpc/TAB`) hold a session each; else `/`.
   */
  get path(): string {
    const afterScheme = this.#url.indexOf("//") + 2;
    const slash = this.#url.indexOf("/", afterScheme);
    const path = slash < 0 ? "/" : this.#url.slice(slash);
    return /^(\/[\w-]+)+$/.test(path) ? path : "/";
  }
  get registerKey(): string | undefined {
    return this.#headers.get(REGISTER_KEY_HEADER) ?? undefined;
  }
  get session(): string | undefined {
    if (this.#session === null) this.#session = readCookie(this.#headers.get("cookie"), SESSION_COOKIE);
    return this.#session;
  }
  get wantsReasons(): boolean {
    return this.#headers.get(REASONS_HEADER)?.trim() === "1";
  }
  get language(): Lang {
    return this.#language ??= languageOf(this.#headers.get("accept-language"));
  }
  get sendKey(): string | undefined {
    return sendKeyOf(this.#headers.get(SEND_KEY_HEADER));
  }
  get keepsSession(): boolean {
    return this.#headers.get(KEEPS_SESSION_HEADER)?.trim() === "1";
  }
  setSession(token: string): void {
    this.newSession = token;
  }
}

/** The same, answering as plain data: what {@linkcode serveXmlRpc} writes without building a `Response`. */
function xmlRpcAnswers(
  methods: MethodTable,
  options: HandlerOptions,
): (
  request: IncomingRequest,
  info: ConnectionInfo,
) => Response | PlainResponse | Promise<Response | PlainResponse> {
  const log = options.log ?? STDERR_LOG;
  const asFault = (error: unknown) => faultOf(error, log);
  const table = withSystemMethods(methods, asFault);
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 10_000;
  const maxInFlight = options.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT;
  let inFlight = 0;

  /** A body not here yet (or large, or chunked): read with its deadline and its accounting, then the call. */
  const later = async (
    request: IncomingRequest,
    info: ConnectionInfo,
    declared: number,
  ): Promise<PlainResponse> => {
    let held = 0;
    const reserve = (size: number) => {
      const big = Math.max(0, held + size - SMALL_BODY) - Math.max(0, held - SMALL_BODY);
      if (big && inFlight + big > maxInFlight) return false;
      inFlight += big;
      held += size;
      return true;
    };
    const release = () => {
      inFlight -= Math.max(0, held - SMALL_BODY);
      held = 0;
    };
    let bytes: Uint8Array;
    try {
      // A small body of a declared size is read whole: a chunk-by-chunk read with its accounting costs about
      // a fifth of a cheap call. Small bodies never count against the budget.
      bytes = declared > 0 && declared <= SMALL_BODY
        ? await withDeadline(request.bytes(), bodyTimeoutMs)
        : await readBody(request, maxBody, bodyTimeoutMs, reserve);
    } catch (error) {
      release();
      if (error instanceof BodyTooLarge) return tooLarge(maxBody);
      if (error instanceof Busy) {
        return text(503, "Servidor ocupado: tente de novo em instantes.\n", { "retry-after": "1" });
      }
      if (error instanceof BodyTimeout) {
        return text(408, "Tempo esgotado recebendo a requisição.\n");
      }
      return text(400, "Requisição interrompida.\n");
    }
    // Before the call: a call that waits holds no request bytes in the budget.
    release();
    return await answerCall(bytes, request, info);
  };

  return (request, info) => {
    if (request.method !== "POST") {
      if (options.get && (request.method === "GET" || request.method === "HEAD")) {
        return options.get(request);
      }
      return text(405, "Este é um serviço XML-RPC: use POST.\n", {
        allow: options.get ? "GET, HEAD, POST" : "POST",
      });
    }
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > maxBody) return tooLarge(maxBody);
    // The common case, a small body read with its head: taken at once, no wait and no deadline; and a method
    // that answers at once (listar_salas) is answered in the same step, with no promise on the way.
    const atHand = declared <= SMALL_BODY ? request.bytesAtHand?.() : undefined;
    if (atHand !== undefined) return answerCall(atHand, request, info);
    return later(request, info, declared);
  };

  /** Decodes and runs one call: its answer now when the method answers at once, else a promise of it. */
  function answerCall(
    bytes: Uint8Array,
    request: IncomingRequest,
    info: ConnectionInfo,
  ): PlainResponse | Promise<PlainResponse> {
    const call = new HttpCall(request, info);
    let result: unknown;
    try {
      const { method, params } = parseXmlRpc(
        decodeXml(bytes, request.headers.get("content-type")),
        "methodCall",
      ) as {
        method: string;
        params: XmlRpcValue[];
      };
      result = dispatch(table, call, method, params);
    } catch (error) {
      return faultAnswer(error);
    }
    if (result instanceof Promise) {
      return result.then((value) => resultAnswer(call, value), faultAnswer);
    }
    return resultAnswer(call, result);
  }

  function resultAnswer(call: HttpCall, result: unknown): PlainResponse {
    let xml: string;
    try {
      xml = encodeResponse(result);
    } catch (error) {
      return faultAnswer(error);
    }
    if (call.newSession === undefined) return { status: 200, headers: XML_HEADERS, body: xml };
    return {
      status: 200,
      headers: {
        ...XML_HEADERS,
        "set-cookie": `${SESSION_COOKIE}=${call.newSession}; Path=${call.path}; HttpOnly; SameSite=Strict`,
      },
      body: xml,
    };
  }

  function faultAnswer(error: unknown): PlainResponse {
    const fault = asFault(error);
    return { status: 200, headers: XML_HEADERS, body: encodeFault(fault.code, fault.message) };
  }
}

function text(status: number, body: string, headers: Record<string, string> = {}): PlainResponse {
  return { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers }, body };
}

function tooLarge(maxBody: number): PlainResponse {
  return text(413, `Requisição grande demais (máximo ${maxBody} bytes).\n`);
}

class BodyTooLarge extends Error {}
class BodyTimeout extends Error {}
class Busy extends Error {}

/** The deadlines of small bodies: a second late at most is fine for a timeout of seconds. */
const bodyDeadlines = new Deadlines(1000);

/** `promise`, or a {@linkcode BodyTimeout} after `timeoutMs` (or up to a second later). */
async function withDeadline<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let cancel: () => void = () => {};
  const deadline = new Promise<never>((_, reject) => {
    cancel = bodyDeadlines.after(timeoutMs, () => reject(new BodyTimeout()));
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    cancel();
  }
}

/**
 * Reads a request body with a size limit and a deadline, so stalled or huge
 * bodies cost nothing; `reserve` accounts for every chunk kept (false: too busy).
 */
async function readBody(
  request: IncomingRequest,
  maxBody: number,
  timeoutMs: number,
  reserve: (size: number) => boolean,
): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeout()), timeoutMs);
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      size += value.byteLength;
      if (size > maxBody) throw new BodyTooLarge();
      if (!reserve(value.byteLength)) throw new Busy();
      chunks.push(value);
    }
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Where to serve, the connection limits, and the handler's options. */
export interface ServeOptions extends HandlerOptions {
  /** The interface to listen on (`0.0.0.0`: all). */
  host: string;
  /** The port (0: a free one). */
  port: number;
  /** At most this many connections open at once (default and ceiling: what the file limit allows). */
  maxConnections?: number;
  /** A kept-alive connection with no request for this long is closed (default 30 s). */
  idleTimeoutMs?: number;
}

/**
 * Serves a method table with the limits of `lib/wire/http_server.ts`: a request's head
 * must arrive within `bodyTimeoutMs` too; throws at once when the address
 * cannot be bound.
 */
export function serveXmlRpc(methods: MethodTable, options: ServeOptions): HttpServer {
  return serveHttp({
    hostname: options.host,
    port: options.port,
    maxConnections: options.maxConnections,
    headerTimeoutMs: options.bodyTimeoutMs ?? 10_000,
    writeTimeoutMs: options.bodyTimeoutMs ?? 10_000,
    idleTimeoutMs: options.idleTimeoutMs,
    log: options.log ?? STDERR_LOG,
  }, xmlRpcAnswers(methods, options));
}

/** The connection flags every server of ours takes, as {@linkcode parseFlags} declares them. */
export const CONNECTION_FLAGS = {
  "request-timeout": { type: "string", default: "10" },
  "idle-timeout": { type: "string", default: "30" },
  "max-connections": { type: "string" },
} as const;

/** Their lines in a program's `--help`. */
export const CONNECTION_USAGE =
  `  --request-timeout S      prazo para um cliente enviar a requisição (padrão: 10)
  --idle-timeout S         fecha conexões sem requisição há S segundos (padrão: 30)
  --max-connections N      conexões abertas ao mesmo tempo (padrão: 16384, menos se faltarem arquivos)`;

/** The connection flags' values, checked (a usage error, exit 2, for a bad one). */
export function connectionOptions(
  program: string,
  flags: { "request-timeout": string; "idle-timeout": string; "max-connections"?: string | undefined },
): Pick<ServeOptions, "bodyTimeoutMs" | "idleTimeoutMs" | "maxConnections"> {
  const maxConnections = flags["max-connections"];
  return {
    bodyTimeoutMs: secondsFlag(program, "--request-timeout", flags["request-timeout"], 86400),
    idleTimeoutMs: secondsFlag(program, "--idle-timeout", flags["idle-timeout"], 86400),
    maxConnections: maxConnections === undefined
      ? undefined
      : numberFlag(program, "--max-connections", maxConnections, { min: 1, max: 1_000_000, integer: true }),
  };
}

/**
 * Serves a method table, or says in one line why it cannot listen and ends
 * the program with exit code 1, after `cleanup` (closing what it opened).
 */
export async function serveOrExit(
  program: string,
  methods: MethodTable,
  options: ServeOptions,
  cleanup: () => void | Promise<void> = () => {},
): Promise<HttpServer> {
  try {
    return serveXmlRpc(methods, options);
  } catch (error) {
    console.error(
      `${program}: não foi possível escutar em ${options.host}:${options.port}: ${(error as Error).message}`,
    );
    await cleanup();
    Deno.exit(1);
  }
}
