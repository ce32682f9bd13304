// @ts-check
/**
 * The commands a chat line may be, for the terminal client and the chat
 * page alike: plain JavaScript with JSDoc types, so that Deno checks it and
 * the browser runs it as it is (the chat server serves it to the page as
 * `/client/commands.js`).
 *
 * @module
 */

/** @typedef {"create" | "join" | "leave" | "rooms" | "users" | "msg" | "delete" | "help" | "quit"} CommandName */

/**
 * A line typed by the user, as {@linkcode parseInput} understands it.
 * @typedef {{ kind: "empty" } | { kind: "text"; text: string } | { kind: "command"; command: CommandName; word: string; rest: string } | { kind: "unknown"; word: string }} Input
 */

/**
 * Every command word, Portuguese and English, by what it does.
 * @type {Readonly<Record<string, CommandName>>}
 */
export const COMMANDS = {
  "/criar": "create",
  "/create": "create",
  "/entrar": "join",
  "/join": "join",
  "/sair": "leave",
  "/leave": "leave",
  "/salas": "rooms",
  "/rooms": "rooms",
  "/usuarios": "users",
  "/usuários": "users",
  "/users": "users",
  "/msg": "msg",
  "/excluir": "delete",
  "/delete": "delete",
  "/ajuda": "help",
  "/help": "help",
  "/fim": "quit",
  "/quit": "quit",
};

/**
 * A line typed by the user: a command, a message, or nothing. `//x` sends `/x`.
 * @param {string} line
 * @returns {Input}
 */
export function parseInput(line) {
  const trimmed = line.trim();
  if (!trimmed) return { kind: "empty" };
  if (trimmed.startsWith("//")) return { kind: "text", text: trimmed.slice(1) };
  if (!trimmed.startsWith("/")) return { kind: "text", text: trimmed };
  const space = trimmed.search(/\s/);
  const word = space < 0 ? trimmed : trimmed.slice(0, space);
  const rest = space < 0 ? "" : trimmed.slice(space).trim();
  const command = COMMANDS[word.toLowerCase()];
  return command ? { kind: "command", command, word, rest } : { kind: "unknown", word };
}

/**
 * A room's name as typed after a command: `SALA` or `"SALA COM ESPAÇO"` (quotes work as in `/msg`).
 * @param {string} rest
 * @returns {string}
 */
export function roomArgument(rest) {
  const quoted = /^"([^"]*)"$/.exec(rest.trim());
  return (quoted ? quoted[1] ?? "" : rest).trim();
}

/**
 * `NOME TEXTO` or `"NOME COM ESPAÇO" TEXTO`.
 * @param {string} rest
 * @returns {{ to: string; text: string } | undefined}
 */
export function splitRecipient(rest) {
  const match = /^(?:"([^"]+)"|(\S+))\s+([\s\S]+)$/.exec(rest);
  if (!match) return undefined;
  return { to: (match[1] ?? match[2] ?? "").trim(), text: (match[3] ?? "").trim() };
}
