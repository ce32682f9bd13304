#!/usr/bin/env -S deno run --allow-net
/**
 * The rpc-chat terminal client: finds `ChatService` through the binder,
 * registers a unique name, and chats in rooms, live.
 *
 * ```sh
 * deno run --allow-net cliente.ts                          # binder at 127.0.0.1:5000
 * deno run --allow-net cliente.ts --binder 192.168.0.10:5000 --name ana --room geral
 * deno run --allow-net cliente.ts --binder 192.168.0.10,192.168.0.11  # either binder will do
 * deno run --allow-net https://example.org/rpc-chat/cliente.ts --lang en
 * ```
 *
 * Commands are listed by `/ajuda` (`/help`); any other line goes to the
 * current room. Messages arrive through the server's long wait
 * (`aguardar_mensagens` with a cursor), or, against a server with only the
 * original methods, by polling `receber_mensagens`. When the server restarts
 * or moves, the client finds it again through the binders (`--binder h1,h2`:
 * the first that answers), takes its session along (another instance sharing
 * the sessions knows it; any other server gets the same name registered
 * again), rejoins the room and carries on, with no message shown twice.
 *
 * On a terminal it edits the line in raw mode, so arriving messages never
 * mangle what is being typed: the line scrolls sideways at any width, with
 * word motions, history search, Tab completion and bracketed paste; lines
 * waiting for the server (away, or holding them at its rate limit) show above
 * it and go out in order; private messages and mentions ring the bell.
 * Otherwise it reads commands line by line and prints plain lines, so it can
 * be scripted. Its pieces live in the library: the session in
 * `lib/client/`, the terminal (keys, the line editor, rendering, the screen)
 * in `lib/term/`, its texts in `lib/text/client.ts`.
 *
 * Needs `--allow-net` only: it reads no environment variable unless allowed
 * (the locale comes from `navigator.language`) and never prompts.
 *
 * @module
 */

import {
  ChatSession,
  ChatUi,
  clientFlags,
  complete,
  Fault,
  langArgument,
  localeLang,
  netNeeded,
  onTerminate,
  parseHostPortList,
  parseInput,
  PlainScreen,
  Problem,
  requirePermissions,
  sanitize,
  Screen,
  TerminalScreen,
  TEXTS,
  useLanguage,
} from "./deps.ts";

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

function printUsage(args: string[]): void {
  console.log(TEXTS[localeLang(langArgument(args))].usage);
}

/**
 * Where the binder is unless `--binder` says: loaded from a binder's address
 * (`http://192.168.0.10:5000/cliente.ts`), that binder; else this machine's.
 */
function defaultBinder(moduleUrl: string = import.meta.url): string {
  const url = new URL(moduleUrl);
  if (url.protocol !== "http:") return "127.0.0.1:5000";
  return url.port ? url.host : `${url.host}:80`;
}

/** Runs the client; resolves to its exit code (0 after /fim or the end of input). */
export async function main(args: string[] = Deno.args): Promise<number> {
  const program = "cliente.ts";
  // The language first: even a bad flag is refused in it.
  useLanguage(localeLang(langArgument(args)));
  const flags = clientFlags(program, args, () => printUsage(args));
  const lang = localeLang(flags.lang);
  useLanguage(lang);
  const t = TEXTS[lang];
  const binders = flags.binders ?? parseHostPortList(defaultBinder(), 5000);
  const { retryMs, attempts } = flags;
  // Asked, never requested: without --allow-net one line says so, not a prompt nor 20 s of retries.
  const self = new URL(import.meta.url);
  requirePermissions(
    program,
    binders.map(({ host, port }) => netNeeded(host, port)),
    `deno run --allow-net ${self.protocol === "file:" ? program : self.href}`,
  );

  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const colour = interactive && !Deno.noColor;
  const terminal = interactive ? new TerminalScreen({ texts: t, colour, bell: flags.bell }) : undefined;
  const screen: Screen = terminal ?? new PlainScreen();
  const ui = new ChatUi(screen, {
    texts: t,
    colour,
    interactive,
    me: (): string | undefined => session.name,
  });
  const session = new ChatSession({ binders, view: ui, texts: t, retryMs, attempts });
  if (terminal) {
    // A line for the room typed outside any room stays in the input line, with a word on what to do.
    terminal.accept = (line) => {
      if (parseInput(line).kind !== "text" || session.name === undefined || session.room !== null) {
        return true;
      }
      if (!terminal.idle) return true;
      ui.notice(t.notInRoomKept, "error");
      return false;
    };
    const commands = [...t.commands, ...TEXTS[lang === "pt" ? "en" : "pt"].commands];
    terminal.completer = (line, cursor) => {
      if (session.name === undefined) return undefined;
      const found = complete(line, cursor, { commands, names: session.people, rooms: session.rooms });
      // For the next Tab: rooms come and go.
      if (found?.kind === "room") session.refreshRooms().catch(() => {});
      return found;
    };
  }

  // Leaving the service and giving the terminal back, once: at the end, or on a signal (then exit 0).
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      await session.quit();
      screen.close();
    })();
  const stopped = async (): Promise<number> => {
    await stop();
    return 0;
  };
  onTerminate(stop, { hangup: true });
  // Leaving does not wait for a line stuck on a server that is away.
  if (terminal) terminal.onEnd = () => void stop();

  screen.start();
  ui.notice(t.looking(binders.map(({ host, port }) => `${host}:${port}`)));
  try {
    await session.connect();
  } catch (error) {
    if (!(error instanceof Problem)) return await stopped();
    ui.notice(error.message, "error");
    screen.close();
    return 1;
  }

  let name = flags.name;
  for (;;) {
    if (name === undefined) {
      ui.notice(t.askName);
      screen.setPrompt(t.namePrompt);
      const line = await screen.readLine();
      screen.settled();
      if (line === null) return await stopped();
      const input = parseInput(line);
      if (input.kind === "command" && input.command === "quit") return await stopped();
      if (input.kind !== "text") {
        if (input.kind !== "empty") ui.notice(t.nameFirst, "error");
        continue;
      }
      name = line.trim();
    }
    try {
      if (name.trim() && await session.register(name.trim())) break;
    } catch (error) {
      if (!(error instanceof Fault)) return await stopped();
      ui.notice(t.fault(sanitize(error.message)), "error");
    }
    name = undefined;
  }
  screen.setPrompt(undefined);
  if (flags.room !== undefined) {
    try {
      await session.join(flags.room, { create: true });
    } catch (error) {
      if (!(error instanceof Fault)) return await stopped();
      ui.notice(t.fault(sanitize(error.message)), "error");
    }
  }
  ui.notice(t.help);

  for (;;) {
    const line = await screen.readLine();
    if (line === null) break;
    try {
      if (await session.handle(line) === "quit") break;
    } catch (error) {
      // A bug of ours, not the user's: say it in one line and carry on.
      ui.notice(t.unexpected(sanitize(String((error as Error)?.message ?? error))), "error");
    } finally {
      screen.settled();
    }
  }
  return await stopped();
}

if (import.meta.main) Deno.exit(await main());
