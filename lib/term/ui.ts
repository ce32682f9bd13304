/**
 * The terminal UI of the client: plain lines when stdin is not a terminal (scripts, tests),
 * else a raw-mode screen where arriving messages never mangle the line being typed.
 *
 * @module
 */

import { ChatMessage, SERVER } from "../chat/protocol.ts";
import { formatMessage, isPrivate, paint, sanitize } from "../client/lines.ts";
import { ChatView, NoticeKind } from "../client/session.ts";
import { readLines, writeStdout } from "../program/io.ts";
import {
  Completion,
  fitInput,
  Key,
  KeyDecoder,
  LineEditor,
  promptFor,
  textWidth,
  truncate,
} from "./editor.ts";
import { dateOf, dayOf, mentions, renderDay, renderMessage, renderNotice } from "./render.ts";
import { Texts } from "../text/client.ts";
import { localWallClock } from "../wire/codec.ts";

// ---------------------------------------------------------------------------
// The terminal UI
// ---------------------------------------------------------------------------

/** What a screen prints: a line (which may hold line breaks), or rows drawn for a width. */
export type Printable = string | ((width: number) => string[]);

/** Where lines are read from and written to. */
export interface Screen {
  /** Starts reading input (and, on a terminal, drawing). */
  start(): void;
  /** Writes above the line being typed, without disturbing it. */
  print(item: Printable): void;
  /** A prompt of its own (the name question), or undefined for the room's. */
  setPrompt(label?: string): void;
  /** The room the prompt and the title show. */
  setRoom(room: string | null): void;
  /** The server cannot be reached: the prompt says so and lines typed show as pending. */
  setOffline(offline: boolean): void;
  /** A line waits for the server's rate limit: the lines typed show as waiting. */
  setThrottled(waiting: boolean): void;
  /** A message from someone else arrived: unread while away; the bell when it asks for attention. */
  arrived(attention: boolean): void;
  /** The next line typed, or null at the end of input (Ctrl-D, Ctrl-C twice, end of the pipe). */
  readLine(): Promise<string | null>;
  /** The line {@linkcode Screen.readLine} gave is done with: no longer pending. */
  settled(): void;
  /** Stops reading and gives the terminal back as it was. */
  close(): void;
}

/** Not a terminal: lines in, plain lines out. */
export class PlainScreen implements Screen {
  #lines: ReadableStreamDefaultReader<string> | undefined;

  /** Reads stdin line by line. */
  start(): void {
    this.#lines = readLines(Deno.stdin.readable).getReader();
  }

  /** One plain line (rows drawn at no width limit). */
  print(item: Printable): void {
    writeStdout(`${typeof item === "string" ? item : item(Infinity).join("\n")}\n`);
  }

  setPrompt(): void {}
  setRoom(): void {}
  setOffline(): void {}
  setThrottled(): void {}
  arrived(): void {}
  settled(): void {}

  async readLine(): Promise<string | null> {
    const next = await this.#lines!.read();
    return next.done ? null : next.value;
  }

  /** Nothing to give back. */
  close(): void {}
}

/** Lines the terminal keeps to draw the conversation again (Ctrl-L, a resize). */
const TRANSCRIPT_KEPT = 1000;
/** Pending lines shown above the input line, at most. */
const PENDING_SHOWN = 5;
/** After this long a line being sent shows as waiting. */
const SLOW_MS = 300;
/** A lone Escape is the Escape key once nothing follows it for this long. */
const ESCAPE_WAIT_MS = 100;

/** How a {@linkcode TerminalScreen} behaves. */
export interface TerminalOptions {
  /** The client's texts, in the session's language. */
  texts: Texts;
  /** Colours on. */
  colour: boolean;
  /** Ring the bell for private messages and mentions. */
  bell: boolean;
}

/**
 * A terminal in raw mode. At the bottom, the lines waiting to go (when the
 * server is away or the rate limit holds them) and the input line, which
 * scrolls sideways and never wraps; arriving lines are written above them,
 * into the terminal's own scrollback, and the bottom is drawn again, intact.
 * Bracketed paste and focus reports are turned on while it runs; the title
 * shows the room and, while the terminal is away, the unread count.
 */
export class TerminalScreen implements Screen {
  readonly #editor = new LineEditor();
  readonly #keys = new KeyDecoder();
  readonly #t: Texts;
  readonly #colour: boolean;
  readonly #bell: boolean;
  /** Whether a line may go (false: it stays in the input line, and the hook said why). */
  accept: (line: string) => boolean = () => true;
  /** What Tab completes. */
  completer: (line: string, cursor: number) => Completion | undefined = () => undefined;
  /** The user leaves (Ctrl-C twice, Ctrl-D, the end of input): at once, even with a line still being sent. */
  onEnd: () => void = () => {};
  #label: string | undefined;
  #room: string | null = null;
  #offline = false;
  #throttled = false;
  /** A paste of many lines, waiting for the user to say how to send it. */
  #asking: string | undefined;
  #scroll = 0;
  readonly #queue: string[] = [];
  #current: string | undefined;
  #slow = false;
  #slowTimer: ReturnType<typeof setTimeout> | undefined;
  #escapeTimer: ReturnType<typeof setTimeout> | undefined;
  #waiter: ((line: string | null) => void) | undefined;
  #ended = false;
  #closed = false;
  /** Rows drawn above the input line (the pending lines), to erase before writing. */
  #above = 0;
  readonly #transcript: ((width: number) => string[])[] = [];
  #focused = true;
  #unread = 0;
  #title = "";
  readonly #onResize = () => this.#repaint();

  /** A screen on this process's terminal. */
  constructor(options: TerminalOptions) {
    this.#t = options.texts;
    this.#colour = options.colour;
    this.#bell = options.bell;
  }

  /** Nothing typed is waiting or being sent. */
  get idle(): boolean {
    return this.#current === undefined && this.#queue.length === 0;
  }

  /** Raw mode, bracketed paste and focus events on; reads keys. */
  start(): void {
    Deno.stdin.setRaw(true);
    try {
      Deno.addSignalListener("SIGWINCH", this.#onResize);
    } catch {
      // No SIGWINCH here (Windows): Ctrl-L draws again.
    }
    // Bracketed paste on, focus reports on, the title saved to give it back at the end.
    writeStdout("\x1b[?2004h\x1b[?1004h\x1b[22;0t");
    this.#updateTitle();
    this.#draw();
    this.#readKeys();
  }

  /** Writes above the line being typed (and the pending lines), and draws them again. */
  print(item: Printable): void {
    const render = typeof item === "string" ? () => item.split("\n") : item;
    this.#transcript.push(render);
    if (this.#transcript.length > TRANSCRIPT_KEPT) this.#transcript.shift();
    if (this.#closed) return writeStdout(`${render(this.#size().columns).join("\n")}\n`);
    writeStdout(`${this.#erase()}${render(this.#size().columns).join("\r\n")}\r\n${this.#bottom()}`);
  }

  setPrompt(label?: string): void {
    this.#label = label;
    this.#draw();
  }

  setRoom(room: string | null): void {
    this.#room = room;
    this.#updateTitle();
    this.#draw();
  }

  setOffline(offline: boolean): void {
    this.#offline = offline;
    this.#draw();
  }

  setThrottled(waiting: boolean): void {
    if (this.#throttled === waiting) return;
    this.#throttled = waiting;
    this.#draw();
  }

  arrived(attention: boolean): void {
    if (!this.#focused) {
      this.#unread++;
      this.#updateTitle();
    }
    if (attention && this.#bell) writeStdout("\x07");
  }

  readLine(): Promise<string | null> {
    if (this.#queue.length) return Promise.resolve(this.#take(this.#queue.shift()!));
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiter = resolve);
  }

  settled(): void {
    this.#current = undefined;
    clearTimeout(this.#slowTimer);
    this.#slow = false;
    this.#draw();
  }

  /** Gives the terminal back as it was: cooked mode, no bracketed paste, the cursor shown. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#slowTimer);
    clearTimeout(this.#escapeTimer);
    writeStdout(`${this.#erase()}\x1b[?2004l\x1b[?1004l\x1b[23;0t`);
    try {
      Deno.removeSignalListener("SIGWINCH", this.#onResize);
    } catch {
      // Never added.
    }
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // Not a terminal any more.
    }
  }

  // --- input --------------------------------------------------------------------

  async #readKeys(): Promise<void> {
    const decoder = new TextDecoder();
    const bytes = new Uint8Array(4096);
    for (;;) {
      let read: number | null;
      try {
        read = await Deno.stdin.read(bytes);
      } catch {
        read = null;
      }
      if (read === null) return this.#end();
      clearTimeout(this.#escapeTimer);
      this.#handle(this.#keys.feed(decoder.decode(bytes.subarray(0, read), { stream: true })));
      if (this.#keys.waiting) {
        this.#escapeTimer = setTimeout(() => this.#handle(this.#keys.flush()), ESCAPE_WAIT_MS);
      }
    }
  }

  #handle(keys: Key[]): void {
    if (this.#closed) return;
    for (const key of keys) this.#key(key);
    this.#draw();
  }

  #key(key: Key): void {
    if (key.name === "focus-in" || key.name === "focus-out") {
      this.#focused = key.name === "focus-in";
      if (this.#focused) this.#markRead();
      return;
    }
    // A key typed: the user is here.
    this.#focused = true;
    this.#markRead();
    if (this.#asking !== undefined) return this.#answer(key);
    switch (this.#editor.key(key, (line, cursor) => this.completer(line, cursor))) {
      case "submit":
        return this.#submit();
      case "eof":
      case "quit":
        return this.#end();
      case "confirm-quit":
        return this.print((width) => renderNotice(this.#t.confirmQuit, "warn", this.#colour, width));
      case "redraw":
        return this.#repaint();
      case "ask-paste":
        this.#asking = this.#editor.pasted;
    }
  }

  /** The answer to a paste of many lines: Enter sends one message, `l` line by line, Esc cancels. */
  #answer(key: Key): void {
    const letter = key.name === "char" ? key.text!.toLowerCase() : "";
    const one = key.name === "enter" || letter === "s" || letter === "y";
    const byLine = letter === "l";
    const cancel = ["escape", "ctrl-c", "ctrl-g"].includes(key.name) || letter === "n";
    if (!one && !byLine && !cancel) return;
    const text = this.#asking!;
    this.#asking = undefined;
    if (cancel) return;
    this.#editor.insert(text);
    if (one) return this.#submit();
    const lines = this.#editor.line.split("\n").filter((line) => line.trim());
    if (!this.accept(lines[0] ?? "")) return;
    this.#editor.accept();
    for (const line of lines) this.#deliver(line);
  }

  #submit(): void {
    const line = this.#editor.line;
    if (!this.accept(line)) return;
    this.#editor.accept();
    this.#scroll = 0;
    this.#deliver(line);
  }

  #deliver(line: string): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter(this.#take(line));
    else this.#queue.push(line);
  }

  /** A line handed to the program: pending until settled, shown as waiting if it takes long. */
  #take(line: string): string {
    this.#current = line;
    clearTimeout(this.#slowTimer);
    this.#slow = false;
    this.#slowTimer = setTimeout(() => {
      this.#slow = true;
      this.#draw();
    }, SLOW_MS);
    return line;
  }

  #end(): void {
    this.#ended = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(null);
    this.onEnd();
  }

  #markRead(): void {
    if (this.#unread === 0) return;
    this.#unread = 0;
    this.#updateTitle();
  }

  // --- output -------------------------------------------------------------------

  #size(): { columns: number; rows: number } {
    try {
      const { columns, rows } = Deno.consoleSize();
      return { columns: columns || 80, rows: rows || 24 };
    } catch {
      return { columns: 80, rows: 24 };
    }
  }

  /** Back to the start of the bottom block, and everything from there erased. */
  #erase(): string {
    const up = this.#above ? `\x1b[${this.#above}A` : "";
    this.#above = 0;
    return `\r${up}\x1b[J`;
  }

  /** The bottom block: the pending lines, then the input line with the cursor in place. */
  #bottom(): string {
    const { columns } = this.#size();
    const pending = this.#pendingRows(columns);
    this.#above = pending.length;
    const { text, column } = this.#inputRow(columns);
    return `${pending.map((row) => `${row}\r\n`).join("")}${text}\x1b[${column + 1}G`;
  }

  #draw(): void {
    if (!this.#closed) writeStdout(`${this.#erase()}${this.#bottom()}`);
  }

  /** The lines typed and not yet gone, while something holds them: one row each, never wrapping. */
  #pendingRows(columns: number): string[] {
    const lines = this.#current === undefined ? [...this.#queue] : [this.#current, ...this.#queue];
    if (!lines.length || !(this.#offline || this.#throttled || this.#slow)) return [];
    const tag = `[${this.#offline ? this.#t.pendingTag : this.#t.waitingTag}]`;
    const shown = lines.length > PENDING_SHOWN
      ? [...lines.slice(0, PENDING_SHOWN - 1), `… +${lines.length - PENDING_SHOWN + 1}`]
      : lines;
    return shown.map((line) =>
      paint(this.#colour, "yellow", truncate(`${tag} ${sanitize(line.replaceAll("\n", " ↵ "))}`, columns - 1))
    );
  }

  /** The prompt and the visible part of the line, in less than `columns` columns. */
  #inputRow(columns: number): { text: string; column: number } {
    const max = Math.max(1, columns - 1);
    if (this.#asking !== undefined) {
      const lines = this.#asking.split("\n").length;
      // Every answer stays on screen: the short form where the whole question does not fit.
      const whole = this.#t.pasteQuestion(lines);
      const question = truncate(textWidth(whole) <= max ? whole : this.#t.pasteQuestionShort(lines), max);
      return { text: paint(this.#colour, "bold", question), column: textWidth(question) };
    }
    const search = this.#editor.search;
    const status = this.#offline ? this.#t.offline : undefined;
    const prompt = truncate(
      search
        ? this.#t.searchPrompt(search.query, search.found)
        : this.#label ?? promptFor(this.#room, status, columns),
      // The search's prompt holds what is sought: it may take more, leaving ten columns for the line.
      search ? Math.max(Math.floor(columns / 2), max - 10) : Math.floor(columns / 2),
    );
    const width = textWidth(prompt);
    const fitted = fitInput(this.#editor.chars, this.#editor.cursor, max - width, this.#scroll);
    this.#scroll = fitted.scroll;
    return { text: `${paint(this.#colour, "bold", prompt)}${fitted.text}`, column: width + fitted.column };
  }

  /** The screen cleared and drawn again: the latest of the conversation that fits, then the bottom. */
  #repaint(): void {
    if (this.#closed) return;
    const { columns, rows } = this.#size();
    const room = Math.max(0, rows - 1 - Math.min(PENDING_SHOWN, this.#pendingRows(columns).length));
    const lines: string[] = [];
    for (let i = this.#transcript.length - 1; i >= 0 && lines.length < room; i--) {
      lines.unshift(...this.#transcript[i]!(columns));
    }
    const visible = lines.slice(Math.max(0, lines.length - room));
    this.#above = 0;
    writeStdout(`\x1b[H\x1b[2J${visible.map((line) => `${line}\r\n`).join("")}${this.#bottom()}`);
  }

  #updateTitle(): void {
    const room = this.#room === null ? "" : `[${this.#room}] `;
    const title = `${this.#unread ? `(${this.#unread}) ` : ""}${room}rpc-chat`;
    if (title === this.#title) return;
    this.#title = title;
    writeStdout(`\x1b]2;${title}\x07`);
  }
}

/** How a {@linkcode ChatUi} shows things. */
export interface UiOptions {
  /** The client's texts, in the session's language. */
  texts: Texts;
  /** Colours (on a terminal, never with NO_COLOR). */
  colour: boolean;
  /** A terminal: wrapped rows, days, attention; else plain lines. */
  interactive: boolean;
  /** The user's name, once registered (for mentions). */
  me: () => string | undefined;
}

/** What the session shows, written to a screen: plain lines, or a terminal's rows. */
export class ChatUi implements ChatView {
  readonly #screen: Screen;
  readonly #options: UiOptions;
  /** The day of the last message shown: a separator when the next is of another. */
  #day = dayOf(localWallClock(new Date()));

  /** The UI of a session on a screen. */
  constructor(screen: Screen, options: UiOptions) {
    this.#screen = screen;
    this.#options = options;
  }

  message(message: ChatMessage, history = false): void {
    const { colour, interactive, texts } = this.#options;
    if (!interactive) return this.#screen.print(formatMessage(message, colour));
    const date = dateOf(message.timestamp) ?? localWallClock(new Date());
    if (dayOf(date) !== this.#day) {
      this.#day = dayOf(date);
      this.#screen.print((width) => [renderDay(date, texts, colour, width)]);
    }
    const me = this.#options.me();
    const own = message.origem === me;
    const attention = !own && message.origem !== SERVER &&
      (isPrivate(message) || mentions(message.conteudo, me));
    this.#screen.print((width) => renderMessage(message, { width, colour, attention, texts }));
    if (!history && !own) this.#screen.arrived(attention);
  }

  notice(text: string, kind: NoticeKind = "info"): void {
    const { colour, interactive } = this.#options;
    if (interactive) return this.#screen.print((width) => renderNotice(text, kind, colour, width));
    this.#screen.print(text.split("\n").map((line, i) => `${i ? " " : "*"} ${line}`).join("\n"));
  }

  roomChanged(room: string | null): void {
    this.#screen.setRoom(room === null ? null : sanitize(room));
  }

  connection(online: boolean): void {
    this.#screen.setOffline(!online);
  }

  throttled(waiting: boolean): void {
    this.#screen.setThrottled(waiting);
  }

  help(): void {
    this.notice(this.#options.texts.help);
    if (this.#options.interactive) this.notice(this.#options.texts.keys);
  }
}
