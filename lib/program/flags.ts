/**
 * What every program needs around its core: strict flags with one clear
 * usage error, duration and number flags, and a clean stop on SIGINT/SIGTERM.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { type BadAddress, type HostPort, parseHostPortList } from "../wire/http_client.ts";
import { ADDRESS_FLAWS_EN, ADDRESS_FLAWS_PT } from "../text/network.ts";
import type { Lang } from "../chat/protocol.ts";

// ---------------------------------------------------------------------------
// Command lines and serving
// ---------------------------------------------------------------------------

/** The flags a program declares, as `node:util`'s `parseArgs` takes them. */
export type FlagOptions = NonNullable<ParseArgsConfig["options"]>;

/** The values of the declared flags, typed from their declaration. */
export type FlagValues<O extends FlagOptions> = ReturnType<
  typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>
>["values"];

/** The words of the command-line helpers, in each language. */
const CLI_TEXTS = {
  pt: {
    seeHelp: "veja --help",
    unknownOption: (option: string) => `opção desconhecida '${option}'`,
    unexpectedArgument: (argument: string) => `argumento inesperado ${argument}`.trim(),
    startsWithDash: (flag: string) => `o valor de ${flag} começa com '-': escreva ${flag}=VALOR`,
    needsValue: (flag: string) => `a opção ${flag} precisa de um valor`,
    takesNoValue: (flag: string) => `a opção ${flag} não recebe valor`,
    outOfBounds: (flag: string, integer: boolean, min: number, max: number, text: string) =>
      `${flag} deve ser ${integer ? "um inteiro" : "um número"} de ${min} a ${max}, não '${text}'`,
    badLang: (value: string) => `--lang deve ser pt ou en, não '${value}'`,
    missingPermission: (flag: string, command: string) =>
      `falta a permissão ${flag}: rode de novo com ela (${command})`,
    addressFlaws: ADDRESS_FLAWS_PT,
  },
  en: {
    seeHelp: "see --help",
    unknownOption: (option: string) => `unknown option '${option}'`,
    unexpectedArgument: (argument: string) => `unexpected argument ${argument}`.trim(),
    startsWithDash: (flag: string) => `the value of ${flag} starts with '-': write ${flag}=VALUE`,
    needsValue: (flag: string) => `the option ${flag} needs a value`,
    takesNoValue: (flag: string) => `the option ${flag} takes no value`,
    outOfBounds: (flag: string, integer: boolean, min: number, max: number, text: string) =>
      `${flag} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, not '${text}'`,
    badLang: (value: string) => `--lang must be pt or en, not '${value}'`,
    missingPermission: (flag: string, command: string) =>
      `the permission ${flag} is missing: run again with it (${command})`,
    addressFlaws: ADDRESS_FLAWS_EN,
  },
};

/** The language of this program's command-line messages: Portuguese until the program says. */
let cliLang: Lang = "pt";

/** Sets the language of the usage errors and permission lines (a program does, once, from `--lang`). */
export function useLanguage(lang: Lang): void {
  cliLang = lang;
}

/**
 * The language to speak: `pt` or `en` as the flag says; with no (or a bad)
 * flag, English when the user's locale is English (`LC_ALL`, `LC_MESSAGES`,
 * `LANG`, read only where `--allow-env` grants them, else the locale Deno
 * reports without any permission); Portuguese otherwise.
 */
export function localeLang(flag?: string): Lang {
  if (flag === "pt" || flag === "en") return flag;
  for (const variable of ["LC_ALL", "LC_MESSAGES", "LANG"]) {
    try {
      if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") continue;
      const value = Deno.env.get(variable);
      if (value) return /^en([_.@-]|$)/i.test(value) ? "en" : "pt";
    } catch {
      // No permission API (or no such variable): ask the runtime below.
    }
  }
  const locale = navigator.language ?? "";
  // `C` and `POSIX` show up as en-US-u-va-posix: not a choice of English.
  return /^en\b/i.test(locale) && !/posix/i.test(locale) ? "en" : "pt";
}

/** A flag given no value: one line, exit 2 (for a program that reads its flags by hand). */
export function missingValue(program: string, flag: string): never {
  usageError(program, CLI_TEXTS[cliLang].needsValue(flag));
}

/** `--lang`'s value checked (a usage error, exit 2, when it is neither pt nor en): the language to speak. */
export function langFlag(program: string, value: string | undefined): Lang {
  if (value !== undefined && value !== "pt" && value !== "en") {
    usageError(program, CLI_TEXTS[cliLang].badLang(value));
  }
  return localeLang(value);
}

/** `--lang` as written on the command line, before flags are parsed (for --help and the first errors). */
export function langArgument(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") return undefined;
    if (arg.startsWith("--lang=")) return arg.slice("--lang=".length);
    if (arg === "--lang") return args[i + 1];
  }
  return undefined;
}

/** One clear line on stderr and exit code 2: how every program refuses a bad command line. */
export function usageError(program: string, message: string): never {
  console.error(`${program}: ${message} (${CLI_TEXTS[cliLang].seeHelp})`);
  Deno.exit(2);
}

/** A permission a program cannot do without, and the flag that grants it. */
export interface Needed {
  /** What to query (never requested: no prompt). */
  readonly descriptor: Deno.PermissionDescriptor;
  /** The flag, as the user writes it: `--allow-net`, `--allow-write=chat_server.log`. */
  readonly flag: string;
}

/** The net permission to listen on (or reach) `host:port` (port 0: any), as `--allow-net` grants it. */
export function netNeeded(host: string, port: number): Needed {
  const name = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return { descriptor: { name: "net", host: port === 0 ? name : `${name}:${port}` }, flag: "--allow-net" };
}

/**
 * Checks, without prompting, that every permission the program needs is
 * granted; at the first missing one, one line naming its flag (and the whole
 * command to run, `command`) and exit code 2.
 */
export function requirePermissions(program: string, needed: readonly Needed[], command: string): void {
  for (const { descriptor, flag } of needed) {
    let state: Deno.PermissionState;
    try {
      state = Deno.permissions.querySync(descriptor).state;
    } catch {
      // A descriptor the runtime cannot query (an odd host): the call itself will say.
      continue;
    }
    if (state !== "granted") {
      console.error(`${program}: ${CLI_TEXTS[cliLang].missingPermission(flag, command)}`);
      Deno.exit(2);
    }
  }
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

/** The client's flags (its defaults are cliente.ts's): {@linkcode clientFlags} reads them. */
const CLIENT_FLAGS = {
  binder: { type: "string" },
  name: { type: "string" },
  room: { type: "string" },
  lang: { type: "string" },
  retry: { type: "string" },
  attempts: { type: "string" },
  "no-bell": { type: "boolean" },
} as const satisfies FlagOptions;

/** The client's flags, checked: what cliente.ts runs with. */
export interface ClientFlags {
  /** `--binder`, parsed (undefined: the default). */
  binders?: HostPort[];
  /** `--name`. */
  name?: string;
  /** `--room`. */
  room?: string;
  /** `--lang` (undefined: the locale's). */
  lang?: Lang;
  /** `--retry`, in milliseconds. */
  retryMs: number;
  /** `--attempts` (0: no limit). */
  attempts: number;
  /** False with `--no-bell`. */
  bell: boolean;
}

/**
 * Checks the client's flags as cliente.ts takes them, every value included:
 * cliente.ts runs on the result, and start.ts refuses a bad one before it
 * starts anything. One usage error (exit 2) at the first problem.
 */
export function clientFlags(program: string, args: string[], printUsage: () => void = () => {}): ClientFlags {
  const flags = parseFlags(program, printUsage, args, CLIENT_FLAGS);
  const t = CLI_TEXTS[cliLang];
  if (flags.lang !== undefined && flags.lang !== "pt" && flags.lang !== "en") {
    usageError(program, t.badLang(flags.lang));
  }
  let binders: HostPort[] | undefined;
  if (flags.binder !== undefined) {
    try {
      binders = parseHostPortList(flags.binder, 5000);
    } catch (error) {
      const { flaw, item } = error as BadAddress;
      usageError(program, `--binder: ${t.addressFlaws[flaw](item)}`);
    }
  }
  return {
    binders,
    name: flags.name,
    room: flags.room,
    lang: flags.lang,
    retryMs: secondsFlag(program, "--retry", flags.retry ?? "2", 3600),
    attempts: numberFlag(program, "--attempts", flags.attempts ?? "10", { min: 0, max: 1e6, integer: true }),
    bell: !flags["no-bell"],
  };
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
  const t = CLI_TEXTS[cliLang];
  const option = /'(-[^']*)'/.exec(message)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return t.unknownOption(option);
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return t.unexpectedArgument(/'[^']*'/.exec(message)?.[0] ?? "");
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE": {
      const flag = /--?[\w-]+/.exec(message)?.[0] ?? "";
      if (/ambiguous/.test(message)) return t.startsWithDash(flag);
      if (/argument missing/.test(message)) return t.needsValue(flag);
      return t.takesNoValue(flag);
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
    usageError(program, CLI_TEXTS[cliLang].outOfBounds(flag, !!bounds.integer, bounds.min, bounds.max, text));
  }
  return value;
}

/**
 * Runs `stop` once on SIGINT or SIGTERM (SIGTERM does not exist on Windows),
 * then exits 0. SIGHUP (the terminal closed under us): with `hangup: true`,
 * the same. With `hangup: "terminal"` (the servers), the same when a
 * terminal is attached to us (`deno task server` in a window that closes),
 * and ignored when none is: whoever started us without one decides (start.ts
 * stops us with SIGTERM, so the goodbye goes out; `nohup` meant to keep us).
 */
export function onTerminate(
  stop: () => void | Promise<void>,
  options: { hangup?: boolean | "terminal" } = {},
): void {
  let stopping = false;
  const handler = () => {
    if (stopping) return;
    stopping = true;
    Promise.resolve(stop()).finally(() => Deno.exit(0));
  };
  const listen = (signal: Deno.Signal, listener: () => void) => {
    try {
      Deno.addSignalListener(signal, listener);
    } catch {
      // Not supported on this platform.
    }
  };
  listen("SIGINT", handler);
  if (Deno.build.os !== "windows") listen("SIGTERM", handler);
  if (options.hangup === true || (options.hangup === "terminal" && hasTerminal())) listen("SIGHUP", handler);
  else if (options.hangup === "terminal" && Deno.build.os !== "windows") listen("SIGHUP", () => {});
}

/** Whether any of our standard streams is a terminal. */
function hasTerminal(): boolean {
  return Deno.stdin.isTerminal() || Deno.stdout.isTerminal() || Deno.stderr.isTerminal();
}
