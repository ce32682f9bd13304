/**
 * What every program needs around its core: strict flags with one clear
 * usage error, duration and number flags, and a clean stop on SIGINT/SIGTERM.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
// Command lines and serving
// ---------------------------------------------------------------------------

/** The flags a program declares, as `node:util`'s `parseArgs` takes them. */
export type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** The values of the declared flags, typed from their declaration. */
export type FlagValues<O extends FlagOptions> = ReturnType<
  typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>
>["values"];

/** One clear line on stderr and exit code 2: how every program refuses a bad command line. */
export function usageError(program: string, message: string): never {
  console.error(`${program}: ${message} (veja --help)`);
  Deno.exit(2);
}

/**
 * Parses flags strictly (unknown flags and positionals are errors); `-h` and
 * `--help` print the usage and exit 0.
 */
export function parseFlags<const O extends FlagOptions>(
  program: string,
  printUsage: () => void,
  args: string[],
  options: O,
): FlagValues<O> {
  try {
    const values = parseStrict(args, options);
    if ((values as { help?: boolean }).help) {
      printUsage();
      Deno.exit(0);
    }
    return values as FlagValues<O>;
  } catch (error) {
    usageError(program, describeFlagError(error));
  }
}

/**
 * The client's flags (cliente.ts adds their defaults): start.ts checks the
 * flags it hands the client against them before it starts anything.
 */
export const CLIENT_FLAGS = {
  binder: { type: "string" },
  name: { type: "string" },
  room: { type: "string" },
  lang: { type: "string" },
  retry: { type: "string" },
  attempts: { type: "string" },
  "no-bell": { type: "boolean" },
} as const satisfies FlagOptions;

/** Checks another program's flags as it will parse them (unknown flags, missing values): one usage error. */
export function checkFlags(program: string, args: string[], options: FlagOptions): void {
  try {
    parseStrict(args, options);
  } catch (error) {
    usageError(program, describeFlagError(error));
  }
}

/** Every program's flags as `parseArgs` reads them: strictly, no positionals, `-h`/`--help` besides. */
function parseStrict(args: string[], options: FlagOptions): Record<string, unknown> {
  return parseArgs({
    args,
    options: { ...options, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: false,
  }).values;
}

function describeFlagError(error: unknown): string {
  const { code, message } = error as { code?: string; message: string };
  const option = /'(-[^']*)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `opção desconhecida '${option}'`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `argumento inesperado ${/'[^']*'/.exec(message)?.[0] ?? ""}`.trim();
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = /--?[\w-]+/.exec(message)?.[0] ?? "";
      if (/ambiguous/.test(message)) return `o valor de ${flag} começa com '-': escreva ${flag}=VALOR`;
      if (/argument missing/.test(message)) return `a opção ${flag} precisa de um valor`;
      return `a opção ${flag} não recebe valor`;
    }
    default:
      return message;
  }
}

/** A duration flag in seconds (0.01 up to `maxSeconds`), in milliseconds; or a usage error. */
export function secondsFlag(program: string, flag: string, text: string, maxSeconds: number): number {
  return numberFlag(program, flag, text, { min: 0.01, max: maxSeconds }) * 1000;
}

/** A numeric flag within bounds, or a usage error. */
export function numberFlag(
  program: string,
  flag: string,
  text: string,
  bounds: { min: number; max: number; integer?: boolean },
): number {
  const value = Number(text);
  if (
    text.trim() === "" || !Number.isFinite(value) || value < bounds.min || value > bounds.max ||
    (bounds.integer && !Number.isInteger(value))
  ) {
    const kind = bounds.integer ? "um inteiro" : "um número";
    usageError(program, `${flag} deve ser ${kind} de ${bounds.min} a ${bounds.max}, não '${text}'`);
  }
  return value;
}

/**
 * Runs `stop` once on SIGINT or SIGTERM (SIGTERM does not exist on Windows),
 * then exits 0. With `hangup`, SIGHUP too: for a program in a terminal that
 * may close under it (a server left under `nohup` must not take it).
 */
export function onTerminate(stop: () => void | Promise<void>, options: { hangup?: boolean } = {}): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    Promise.resolve(stop()).finally(() => Deno.exit(0));
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  if (options.hangup) signals.push("SIGHUP");
  for (const signal of signals) {
    try {
      Deno.addSignalListener(signal, handler);
    } catch {
      // Not supported on this platform.
    }
  }
}
