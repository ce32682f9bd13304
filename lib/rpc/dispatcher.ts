/**
 * The server side of XML-RPC, with no HTTP: method tables of plain
 * functions, the dispatcher (with introspection and multicall on top), and
 * faults for protocol errors. Business logic sees a {@linkcode Call}, never
 * XML or HTTP; `lib/wire/xmlrpc_http.ts` serves a table over HTTP.
 *
 * @module
 */

import { describeError } from "../program/log.ts";
import type { Logger } from "../program/log.ts";
import { type Lang } from "../chat/protocol.ts";
import { clip, Fault, FaultCode, type XmlRpcValue } from "../wire/codec.ts";

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
export function withSystemMethods(methods: MethodTable, asFault: (error: unknown) => Fault): MethodTable {
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

export function lookup(table: MethodTable, name: string): RpcMethod {
  const method = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!method) throw new Fault(FaultCode.METHOD_NOT_FOUND, `Método não encontrado: ${clip(name)}`);
  return method;
}

/** Runs a call: its result, or a promise of it when the method waits (it throws a fault at once when it can). */
export function dispatch(table: MethodTable, call: Call, name: string, params: unknown[]): unknown {
  const method = lookup(table, name);
  checkParams(name, method, params);
  return method.run(call, params);
}

/** A thrown error as a fault: a Fault as it is; anything else is a bug, logged whole and answered -32603. */
export function faultOf(error: unknown, log: Logger): Fault {
  if (error instanceof Fault) return error;
  log.error(`Erro interno: ${describeError(error)}`);
  return new Fault(FaultCode.INTERNAL_ERROR, "Erro interno do servidor");
}

/** Until a program hands its log: stderr. */
export const STDERR_LOG: Logger = {
  info: (message) => console.error(message),
  warn: (message) => console.error(message),
  error: (message) => console.error(message),
};
