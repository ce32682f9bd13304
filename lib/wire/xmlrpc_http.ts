/**
 * XML-RPC over HTTP: the handler that turns HTTP requests into calls of a
 * method table and results into responses (cookies, the caller's language,
 * limits on bodies), served with the connection limits of `http_server.ts`
 * (or by `Deno.serve`, in tests).
 *
 * @module
 */

import { Deadlines } from "./deadlines.ts";
import {
  type ConnectionInfo,
  type HttpServer,
  type IncomingRequest,
  type PlainResponse,
  serveHttp,
  toResponse,
} from "./http_server.ts";
import type { Logger } from "../program/log.ts";
import {
  KEEPS_SESSION_HEADER,
  type Lang,
  languageOf,
  REASONS_HEADER,
  SEND_KEY_HEADER,
  sendKeyOf,
} from "../chat/protocol.ts";
import { decodeXml, encodeFault, encodeResponse, parseXmlRpc, type XmlRpcValue } from "./codec.ts";
import {
  type Call,
  dispatch,
  faultOf,
  type MethodTable,
  STDERR_LOG,
  withSystemMethods,
} from "../rpc/dispatcher.ts";

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
  readonly #request: IncomingRequest;
  #session: string | undefined | null = null;
  #language: Lang | undefined;
  constructor(request: IncomingRequest, info: ConnectionInfo) {
    this.remoteAddress = info.remoteAddr.hostname;
    this.#headers = request.headers;
    this.#request = request;
  }
  /**
   * The session cookie's path: the path the call was posted to when it is a plain one, so pages of one
   * origin posting to paths of their own (the chat page's tabs, `/rpc/TAB`) hold a session each; else `/`.
   */
  get path(): string {
    // The URL is built when asked: only a call that hands out a session needs it.
    const url = this.#request.url;
    const afterScheme = url.indexOf("//") + 2;
    const slash = url.indexOf("/", afterScheme);
    const path = slash < 0 ? "/" : url.slice(slash);
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
