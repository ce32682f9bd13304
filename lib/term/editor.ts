/**
 * The terminal's input: keys decoded from raw bytes (bracketed pastes included), text
 * widths, the line editor (word motions, history search, Tab completion) and the input line fitted to the width.
 *
 * @module
 */

import { CommandName, COMMANDS, ESCAPES, UNSAFE, UNSAFE_CHAR } from "../client/lines.ts";

// ---------------------------------------------------------------------------
// The terminal's pure pieces: keys, the line editor, completion, layout
// ---------------------------------------------------------------------------

/** Columns a character takes on a terminal (East Asian wide and emoji take two). */
function charWidth(char: string): number {
  const cp = char.codePointAt(0)!;
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfe0f) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

/** Columns a text takes on a terminal (no escape sequences in it). */
export function textWidth(text: string | readonly string[]): number {
  let width = 0;
  for (const char of text) width += charWidth(char);
  return width;
}

/** A text cut to at most `width` columns, ending in `…` when cut. */
export function truncate(text: string, width: number): string {
  if (textWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const char of text) {
    if (used + charWidth(char) > width - 1) break;
    out += char;
    used += charWidth(char);
  }
  return width > 0 ? `${out}…` : "";
}

/**
 * A key read from the terminal: `name` is `char` (a character typed, in
 * `text`), `paste` (a bracketed paste, in `text`), or a key's name: `enter`,
 * `tab`, `shift-tab`, `backspace`, `delete`, `escape`, `left`, `right`, `up`,
 * `down`, `home`, `end`, `pageup`, `pagedown`, `ctrl-left`, `ctrl-right`,
 * `ctrl-delete`, `ctrl-a` to `ctrl-z`, `alt-b` (Alt and a character),
 * `alt-backspace`, `focus-in`, `focus-out`, `unknown`.
 */
export interface Key {
  /** What was pressed. */
  name: string;
  /** The character typed, or the text pasted. */
  text?: string;
}

const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";
// deno-lint-ignore no-control-regex -- the escape sequences a terminal sends for keys
const KEY_SEQUENCE = /^\x1b(?:\[([0-9;]*)([~A-Za-z])|O([A-Za-z]))/;
// deno-lint-ignore no-control-regex -- the start of one, split across reads
const PARTIAL_SEQUENCE = /^\x1b(?:\[[0-9;]*|O)?$/;
const ARROWS: Record<string, string> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
};
const TILDE_KEYS: Record<string, string> = {
  "1": "home",
  "7": "home",
  "4": "end",
  "8": "end",
  "3": "delete",
  "5": "pageup",
  "6": "pagedown",
  "2": "insert",
};

/** A character typed alone: Enter, Tab, Backspace, Ctrl and a letter, or text. */
function plainKey(char: string): Key {
  if (char === "\r" || char === "\n") return { name: "enter" };
  if (char === "\t") return { name: "tab" };
  if (char === "\x7f" || char === "\b") return { name: "backspace" };
  const code = char.codePointAt(0)!;
  if (code >= 1 && code <= 26) return { name: `ctrl-${String.fromCharCode(code + 96)}` };
  if (code < 32) return { name: "unknown" };
  return { name: "char", text: char };
}

/** Escape and then a character: Alt and that key. */
function altKey(char: string): Key {
  if (char === "\x7f" || char === "\b") return { name: "alt-backspace" };
  if (char === "\r") return { name: "alt-enter" };
  return { name: `alt-${char.toLowerCase()}` };
}

/** `ESC [ params final` or `ESC O final`. */
function sequenceKey(params: string, final: string, ss3: boolean): Key {
  const modifier = Number(params.split(";")[1] ?? 1);
  if (final === "~") {
    const name = TILDE_KEYS[params.split(";")[0]!] ?? "unknown";
    return { name: name === "delete" && modifier >= 5 ? "ctrl-delete" : name };
  }
  if (!ss3 && final === "I") return { name: "focus-in" };
  if (!ss3 && final === "O") return { name: "focus-out" };
  if (final === "Z") return { name: "shift-tab" };
  // rxvt: ESC O c / ESC O d are Ctrl-→ / Ctrl-←.
  if (ss3 && (final === "c" || final === "d")) return { name: final === "c" ? "ctrl-right" : "ctrl-left" };
  const name = ARROWS[final];
  if (!name) return { name: "unknown" };
  // xterm: ESC [ 1 ; 5 C is Ctrl-→, ; 3 is Alt: both move by words.
  if ((name === "left" || name === "right") && (modifier === 3 || modifier === 5)) {
    return { name: `ctrl-${name}` };
  }
  return { name };
}

/**
 * Turns what a terminal in raw mode sends into {@linkcode Key}s: characters,
 * escape sequences (arrows, Ctrl and Alt combinations, focus changes), and a
 * bracketed paste as one key however many reads it spans. A sequence cut by
 * the end of a read waits for the next; a lone Escape waits for
 * {@linkcode KeyDecoder.flush}.
 */
export class KeyDecoder {
  #pending = "";
  #paste: string | undefined;

  /** The keys in what was read. */
  feed(input: string): Key[] {
    const text = this.#pending + input;
    this.#pending = "";
    const keys: Key[] = [];
    let i = 0;
    while (i < text.length) {
      if (this.#paste !== undefined) {
        const end = text.indexOf(PASTE_END, i);
        if (end < 0) {
          // Keep what could be the start of the end marker for the next read.
          let keep = Math.min(PASTE_END.length - 1, text.length - i);
          while (keep > 0 && !PASTE_END.startsWith(text.slice(text.length - keep))) keep--;
          this.#paste += text.slice(i, text.length - keep);
          this.#pending = text.slice(text.length - keep);
          return keys;
        }
        keys.push({ name: "paste", text: this.#paste + text.slice(i, end) });
        this.#paste = undefined;
        i = end + PASTE_END.length;
        continue;
      }
      const char = String.fromCodePoint(text.codePointAt(i)!);
      if (char !== "\x1b") {
        i += char.length;
        if (char === "\r" && text[i] === "\n") i++;
        keys.push(plainKey(char));
        continue;
      }
      const rest = text.slice(i);
      if (rest.startsWith(PASTE_START)) {
        this.#paste = "";
        i += PASTE_START.length;
        continue;
      }
      const sequence = KEY_SEQUENCE.exec(rest);
      if (sequence) {
        keys.push(
          sequenceKey(sequence[1] ?? "", sequence[2] ?? sequence[3] ?? "", sequence[3] !== undefined),
        );
        i += sequence[0].length;
        continue;
      }
      if (PARTIAL_SEQUENCE.test(rest) || PASTE_START.startsWith(rest)) {
        this.#pending = rest;
        return keys;
      }
      const next = String.fromCodePoint(rest.codePointAt(1)!);
      if (next === "\x1b") {
        keys.push({ name: "escape" });
        i += 1;
      } else {
        keys.push(altKey(next));
        i += 1 + next.length;
      }
    }
    return keys;
  }

  /** Whether the start of a sequence waits for more (after a pause, {@linkcode KeyDecoder.flush}). */
  get waiting(): boolean {
    return this.#pending !== "" && this.#paste === undefined;
  }

  /** No more came: what waited was an Escape (or Alt and a key). */
  flush(): Key[] {
    const pending = this.#pending;
    this.#pending = "";
    if (!pending || this.#paste !== undefined) return [];
    if (pending === "\x1b") return [{ name: "escape" }];
    return [altKey(pending[1]!), ...this.feed(pending.slice(2))];
  }
}

/** How many lines a paste may have before the client asks what to do with it. */
export const PASTE_ASK_LINES = 5;

/** A paste made fit for the input line: line breaks as `\n`, tabs as spaces, no control characters. */
export function cleanPaste(raw: string): string {
  return raw.replace(ESCAPES, "").replace(/\r\n?/g, "\n").replaceAll("\t", "    ")
    .replace(UNSAFE, (char) => char === "\n" ? char : "").replace(/^\n+|\n+$/g, "");
}

/** What Tab completes: the word from `start` to `end` (in characters) and what may replace it. */
export interface Completion {
  /** `command`, `room` or `name`: what the word is. */
  kind: "command" | "room" | "name";
  /** Where the word starts. */
  start: number;
  /** Where it ends (the cursor). */
  end: number;
  /** The replacements, in order. */
  options: string[];
}

/** What Tab completes from: commands (the user's language first), people, rooms. */
export interface CompletionSources {
  /** Command words. */
  commands: readonly string[];
  /** People: the room's members, and whoever wrote privately. */
  names: readonly string[];
  /** Rooms. */
  rooms: readonly string[];
}

/** The commands whose argument is a room. */
const ROOM_COMMANDS: ReadonlySet<CommandName> = new Set(["join", "delete", "users"]);

/** A name as it is typed: in quotes when it holds spaces. */
export function quoteName(name: string): string {
  return /\s/.test(name) ? `"${name}"` : name;
}

function startsWithFolded(text: string, prefix: string): boolean {
  return text.toLocaleLowerCase().startsWith(prefix.toLocaleLowerCase());
}

/** Compares names as the lists show them, case folded. */
export function byName(a: string, b: string): number {
  return a.localeCompare(b, undefined, { sensitivity: "base" });
}

/**
 * What Tab completes at `cursor` (in characters) of `line`: the first word,
 * a command; the argument of `/entrar` (and `/excluir`, `/usuarios`), a room;
 * any other word, a name (in quotes when it holds spaces; a word that starts
 * with `"` matches names with spaces), followed by `: ` at the start of a line.
 * No word, no completion, but for the recipient of `/msg`.
 */
export function complete(line: string, cursor: number, sources: CompletionSources): Completion | undefined {
  const before = [...line].slice(0, cursor).join("");
  if (/^\/\S*$/.test(before)) {
    const options = [...new Set(sources.commands.filter((word) => startsWithFolded(word, before)))];
    return { kind: "command", start: 0, end: cursor, options: options.map((word) => `${word} `) };
  }
  const command = /^(\/\S+)\s+/.exec(before);
  if (command && ROOM_COMMANDS.has(COMMANDS[command[1]!.toLowerCase()]!)) {
    const prefix = before.slice(command[0].length);
    const options = sources.rooms.filter((room) => startsWithFolded(room, prefix)).sort(byName);
    return { kind: "room", start: [...command[0]].length, end: cursor, options };
  }
  const quoted = (before.match(/"/g) ?? []).length % 2 === 1;
  const word = quoted ? before.slice(before.lastIndexOf('"')) : /\S*$/.exec(before)![0];
  const start = cursor - [...word].length;
  const prefix = quoted ? word.slice(1) : word;
  const recipient = command !== null && COMMANDS[command[1]!.toLowerCase()] === "msg" &&
    before.length - word.length === command[0].length;
  // Tab on no word at all completes nothing, but the recipient of /msg.
  if (!word && !recipient) return undefined;
  const suffix = before.length === word.length ? ": " : " ";
  const options = [...new Set(sources.names)].filter((name) => startsWithFolded(name, prefix)).sort(byName);
  return { kind: "name", start, end: cursor, options: options.map((name) => `${quoteName(name)}${suffix}`) };
}

/** What a key asks of the screen besides editing: see {@linkcode LineEditor.key}. */
export type EditorAction = "none" | "submit" | "eof" | "confirm-quit" | "quit" | "redraw" | "ask-paste";

/** Letters, digits and marks: what Alt-b, Alt-f and Alt-d take as a word. */
const WORD_CHAR = /[\p{L}\p{N}\p{M}_]/u;
const LINES_REMEMBERED = 500;

/**
 * The input line, without a terminal: the text and cursor, the history and
 * its reverse search (Ctrl-R), completion (Tab, cycling), word motions, what
 * was deleted (Ctrl-Y puts it back), pastes, and Ctrl-C's two steps. The
 * screen feeds it {@linkcode Key}s and draws {@linkcode LineEditor.chars}.
 */
export class LineEditor {
  #chars: string[] = [];
  #cursor = 0;
  readonly #history: string[] = [];
  #historyIndex = 0;
  #draft: string[] = [];
  #search: { query: string; match: number; saved: string[]; savedCursor: number } | undefined;
  #cycle: { start: number; options: string[]; index: number } | undefined;
  #killed = "";
  #quitArmed = false;
  /** The paste waiting for an answer, after `ask-paste`. */
  pasted = "";

  /** The line as typed. */
  get line(): string {
    return this.#chars.join("");
  }

  /** Its characters (code points). */
  get chars(): readonly string[] {
    return this.#chars;
  }

  /** Where the cursor is, in characters. */
  get cursor(): number {
    return this.#cursor;
  }

  /** The reverse search under way: what is sought, and whether a line has it. */
  get search(): { query: string; found: boolean } | undefined {
    const search = this.#search;
    return search && { query: search.query, found: search.query === "" || search.match >= 0 };
  }

  /** Replaces the line; the cursor goes to its end. */
  set(text: string): void {
    this.#chars = [...text];
    this.#cursor = this.#chars.length;
  }

  /** Inserts text at the cursor. */
  insert(text: string): void {
    const chars = [...text];
    this.#chars.splice(this.#cursor, 0, ...chars);
    this.#cursor += chars.length;
  }

  /** The line was sent: it goes into the history, and the line is empty again. */
  accept(): void {
    const line = this.line;
    if (line.trim() && this.#history.at(-1) !== line) this.#history.push(line);
    if (this.#history.length > LINES_REMEMBERED) this.#history.shift();
    this.#historyIndex = this.#history.length;
    this.#draft = [];
    this.set("");
  }

  /**
   * Handles one key. Editing keys answer `none`; `submit` (Enter: send
   * {@linkcode LineEditor.line}), `eof` (Ctrl-D on an empty line), `confirm-quit`
   * (a first Ctrl-C on an empty line), `quit` (the second, right after),
   * `redraw` (Ctrl-L) and `ask-paste` (a paste of more than
   * {@linkcode PASTE_ASK_LINES} lines, in {@linkcode LineEditor.pasted}) are
   * for the screen to act on.
   */
  key(key: Key, complete?: (line: string, cursor: number) => Completion | undefined): EditorAction {
    const armed = this.#quitArmed;
    this.#quitArmed = false;
    if (key.name !== "tab" && key.name !== "shift-tab") this.#cycle = undefined;
    if (this.#search) {
      const action = this.#searchKey(key);
      if (action !== undefined) return action;
    }
    const chars = this.#chars;
    switch (key.name) {
      case "char":
        if (!UNSAFE_CHAR.test(key.text!)) this.insert(key.text!);
        break;
      case "paste":
        return this.#paste(key.text ?? "");
      case "enter":
        return "submit";
      case "tab":
      case "shift-tab":
        this.#complete(key.name === "tab" ? 1 : -1, complete);
        break;
      case "backspace":
      case "ctrl-h":
        if (this.#cursor > 0) chars.splice(--this.#cursor, 1);
        break;
      case "ctrl-d":
        if (chars.length === 0) return "eof";
        chars.splice(this.#cursor, 1);
        break;
      case "delete":
        chars.splice(this.#cursor, 1);
        break;
      case "left":
      case "ctrl-b":
        this.#cursor = Math.max(0, this.#cursor - 1);
        break;
      case "right":
      case "ctrl-f":
        this.#cursor = Math.min(chars.length, this.#cursor + 1);
        break;
      case "home":
      case "ctrl-a":
        this.#cursor = 0;
        break;
      case "end":
      case "ctrl-e":
        this.#cursor = chars.length;
        break;
      case "ctrl-left":
      case "alt-b":
        this.#cursor = this.#wordStart();
        break;
      case "ctrl-right":
      case "alt-f":
        this.#cursor = this.#wordEnd();
        break;
      case "alt-d":
      case "ctrl-delete":
        this.#kill(this.#cursor, this.#wordEnd());
        break;
      case "alt-backspace":
        this.#kill(this.#wordStart(), this.#cursor);
        break;
      case "ctrl-w": {
        let start = this.#cursor;
        while (start > 0 && /\s/.test(chars[start - 1]!)) start--;
        while (start > 0 && !/\s/.test(chars[start - 1]!)) start--;
        this.#kill(start, this.#cursor);
        break;
      }
      case "ctrl-u":
        this.#kill(0, this.#cursor);
        break;
      case "ctrl-k":
        this.#kill(this.#cursor, chars.length);
        break;
      case "ctrl-y":
        this.insert(this.#killed);
        break;
      case "up":
      case "ctrl-p":
        this.#recall(-1);
        break;
      case "down":
      case "ctrl-n":
        this.#recall(1);
        break;
      case "ctrl-r":
        this.#search = { query: "", match: -1, saved: [...chars], savedCursor: this.#cursor };
        break;
      case "ctrl-l":
        return "redraw";
      case "ctrl-c":
        if (chars.length > 0) {
          this.#kill(0, chars.length);
          return "none";
        }
        if (armed) return "quit";
        this.#quitArmed = true;
        return "confirm-quit";
    }
    return "none";
  }

  /** A key during the reverse search; undefined when the search ends and the key edits the line found. */
  #searchKey(key: Key): EditorAction | undefined {
    const search = this.#search!;
    switch (key.name) {
      case "char":
        search.query += key.text;
        this.#find(search.match >= 0 ? search.match : this.#history.length - 1);
        return "none";
      case "backspace":
      case "ctrl-h":
        search.query = [...search.query].slice(0, -1).join("");
        search.match = -1;
        if (search.query) this.#find(this.#history.length - 1);
        else this.#show(search.saved, search.savedCursor);
        return "none";
      case "ctrl-r":
        if (search.query) this.#find((search.match >= 0 ? search.match : this.#history.length) - 1);
        return "none";
      case "escape":
      case "ctrl-g":
      case "ctrl-c":
        this.#show(search.saved, search.savedCursor);
        this.#search = undefined;
        return "none";
      case "focus-in":
      case "focus-out":
        return "none";
      default:
        // Any other key takes the line found, and does its work on it.
        this.#search = undefined;
        return undefined;
    }
  }

  /** The newest history line at or before `from` that holds the query (any case); shown if found. */
  #find(from: number): void {
    const search = this.#search!;
    const query = search.query.toLocaleLowerCase();
    for (let i = Math.min(from, this.#history.length - 1); i >= 0; i--) {
      const at = this.#history[i]!.toLocaleLowerCase().indexOf(query);
      if (at < 0) continue;
      search.match = i;
      this.#show([...this.#history[i]!], [...this.#history[i]!.slice(0, at)].length);
      this.#historyIndex = i;
      return;
    }
    search.match = -1;
  }

  #show(chars: string[], cursor: number): void {
    this.#chars = [...chars];
    this.#cursor = cursor;
  }

  #recall(step: number): void {
    const index = this.#historyIndex + step;
    if (index < 0 || index > this.#history.length) return;
    if (this.#historyIndex === this.#history.length) this.#draft = [...this.#chars];
    this.#historyIndex = index;
    this.#show(index === this.#history.length ? this.#draft : [...this.#history[index]!], 0);
    this.#cursor = this.#chars.length;
  }

  #kill(from: number, to: number): void {
    if (to <= from) return;
    this.#killed = this.#chars.splice(from, to - from).join("");
    this.#cursor = from;
  }

  #wordStart(): number {
    let i = this.#cursor;
    while (i > 0 && !WORD_CHAR.test(this.#chars[i - 1]!)) i--;
    while (i > 0 && WORD_CHAR.test(this.#chars[i - 1]!)) i--;
    return i;
  }

  #wordEnd(): number {
    let i = this.#cursor;
    const length = this.#chars.length;
    while (i < length && !WORD_CHAR.test(this.#chars[i]!)) i++;
    while (i < length && WORD_CHAR.test(this.#chars[i]!)) i++;
    return i;
  }

  /** Tab: the first option; Tab again, the next (Shift-Tab, the previous), around and around. */
  #complete(step: number, complete?: (line: string, cursor: number) => Completion | undefined): void {
    let cycle = this.#cycle;
    if (cycle) {
      cycle.index = (cycle.index + step + cycle.options.length) % cycle.options.length;
    } else {
      const found = complete?.(this.line, this.#cursor);
      if (!found || found.options.length === 0) return;
      this.#chars.splice(found.start, found.end - found.start);
      this.#cursor = found.start;
      // One option: done (the next Tab completes afresh, say the room after a command).
      if (found.options.length === 1) return this.insert(found.options[0]!);
      cycle = this.#cycle = { start: found.start, options: found.options, index: step > 0 ? 0 : -1 };
      cycle.index = (cycle.index + found.options.length) % found.options.length;
      this.#chars.splice(found.start, 0, ...[...found.options[cycle.index]!]);
      this.#cursor = found.start + [...found.options[cycle.index]!].length;
      return;
    }
    const previous = [...cycle.options[(cycle.index - step + cycle.options.length) % cycle.options.length]!];
    const next = [...cycle.options[cycle.index]!];
    this.#chars.splice(cycle.start, previous.length, ...next);
    this.#cursor = cycle.start + next.length;
  }

  #paste(raw: string): EditorAction {
    const text = cleanPaste(raw);
    if (text.split("\n").length > PASTE_ASK_LINES) {
      this.pasted = text;
      return "ask-paste";
    }
    this.insert(text);
    return "none";
  }
}

/** What the input line shows in `width` columns: its visible part, where the cursor is, the scroll kept. */
export interface FittedInput {
  /** The visible characters (a line break shows as `↵`). */
  text: string;
  /** The cursor's column within `text`. */
  column: number;
  /** The first character shown: pass it back on the next call, so the line does not jump. */
  scroll: number;
}

/**
 * Fits the input line into `width` columns, scrolling sideways so the cursor
 * is always visible (and never past the last column): the line never wraps,
 * whatever the terminal's width.
 */
export function fitInput(chars: readonly string[], cursor: number, width: number, scroll = 0): FittedInput {
  const shown = chars.map((char) => char === "\n" ? "↵" : char);
  const cells = shown.map(charWidth);
  width = Math.max(1, width);
  const total = cells.reduce((sum, w) => sum + w, 0);
  if (total < width) scroll = 0;
  scroll = Math.max(0, Math.min(scroll, cursor));
  // The cursor needs its own cell: the character under it, or one past the end.
  const cursorCell = Math.max(1, cells[cursor] ?? 1);
  let before = 0;
  for (let i = scroll; i < cursor; i++) before += cells[i]!;
  while (scroll < cursor && before + cursorCell > width) before -= cells[scroll++]!;
  // No room left empty on the right while text is hidden on the left (after deleting at the end, say).
  let tail = 1;
  for (let i = scroll; i < cells.length; i++) tail += cells[i]!;
  while (scroll > 0 && tail + cells[scroll - 1]! <= width) {
    tail += cells[--scroll]!;
    before += cells[scroll]!;
  }
  let end = scroll;
  let used = 0;
  while (end < shown.length && used + cells[end]! <= width) used += cells[end++]!;
  return { text: shown.slice(scroll, end).join(""), column: before, scroll };
}

/**
 * The prompt for a room and a connection status (`[geral] > `,
 * `[geral] (sem conexão) > `), at most half of `columns`: a long room name
 * is shortened with `…`, then the status becomes `!`, then the room goes.
 */
export function promptFor(room: string | null, status: string | undefined, columns: number): string {
  const max = Math.max(2, Math.floor(columns / 2));
  const make = (name: string, tag: string) => {
    const parts = [name ? `[${name}]` : "", tag ? `(${tag})` : ""].filter(Boolean);
    return parts.length ? `${parts.join(" ")} > ` : "> ";
  };
  const name = room ?? "";
  const full = make(name, status ?? "");
  if (textWidth(full) <= max) return full;
  for (const tag of status ? [status, "!"] : [""]) {
    const spare = max - (textWidth(make("x", tag)) - 1);
    if (name && spare >= 3) return make(truncate(name, spare), tag);
  }
  const short = make("", status ? "!" : "");
  return textWidth(short) <= max ? short : "> ";
}

/**
 * Text in rows of at most `width` columns, broken at spaces (a word longer
 * than a row is cut): each line of `lines` starts a row; the first row has
 * `first` columns (the rest of a row after a prefix), the others `width`.
 */
export function wrapRows(lines: readonly string[], first: number, width: number): string[] {
  const rows: string[] = [];
  let room = Math.max(1, first);
  for (const line of lines) {
    const chars = [...line];
    let i = 0;
    for (;;) {
      let used = 0;
      let j = i;
      let space = -1;
      while (j < chars.length && used + charWidth(chars[j]!) <= room) {
        if (chars[j] === " ") space = j;
        used += charWidth(chars[j++]!);
      }
      let end = j;
      if (j < chars.length && chars[j] !== " ") {
        // The row is full in the middle of a word: back to the last space, or cut a word too long.
        if (space > i) end = space;
        else if (j === i) end = i + 1;
      }
      rows.push(chars.slice(i, end).join("").trimEnd());
      room = Math.max(1, width);
      i = end;
      while (i < chars.length && chars[i] === " ") i++;
      if (i >= chars.length) break;
    }
  }
  return rows;
}
