/**
 * Serving, for a program: the connection flags every server of ours takes,
 * and serving a method table or ending the program in one line when it
 * cannot listen (the library layers below never exit).
 *
 * @module
 */

import { numberFlag, secondsFlag } from "./flags.ts";
import type { MethodTable } from "../rpc/dispatcher.ts";
import type { HttpServer } from "../wire/http_server.ts";
import { type ServeOptions, serveXmlRpc } from "../wire/xmlrpc_http.ts";

/** The connection flags every server of ours takes, as {@linkcode parseFlags} declares them. */
export const CONNECTION_FLAGS = {
  "request-timeout": { type: "string", default: "10" },
  "idle-timeout": { type: "string", default: "30" },
  "max-connections": { type: "string" },
} as const;

/** Their lines in a program's `--help`. */
export const CONNECTION_USAGE: Readonly<Record<"pt" | "en", string>> = {
  pt: `  --request-timeout S      prazo para um cliente enviar a requisição (padrão: 10)
  --idle-timeout S         fecha conexões sem requisição há S segundos (padrão: 30)
  --max-connections N      conexões abertas ao mesmo tempo (padrão: 16384, menos se faltarem arquivos)`,
  en: `  --request-timeout S      time a client has to send its request (default: 10)
  --idle-timeout S         closes connections with no request for S seconds (default: 30)
  --max-connections N      connections open at once (default: 16384, fewer when files run short)`,
};

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
