/**
 * The terminal client's pure pieces, in-process and fast: the key decoder,
 * the line editor (word motions, history search, Ctrl-C, pastes, Tab),
 * completion, the input line's sideways scrolling, the prompt, wrapping and
 * how messages, notices and days are drawn. The tmux tests (terminal_test.ts)
 * drive the same pieces through a real terminal.
 *
 * @module
 */

// deno-lint-ignore-file no-control-regex -- these tests look at terminal escape sequences
import assert from "node:assert/strict";
import type { ChatMessage } from "../../lib/mod.ts";
import {
  cleanPaste,
  complete,
  type CompletionSources,
  dateOf,
  displayName,
  fitInput,
  formatMessage,
  type Key,
  KeyDecoder,
  LineEditor,
  mentions,
  promptFor,
  renderDay,
  renderMessage,
  renderNotice,
  splitMessage,
  TEXTS,
  textWidth,
  truncate,
  wrapRows,
} from "../../lib/mod.ts";

const names = (keys: Key[]) =>
  keys.map((key) => key.text === undefined ? key.name : `${key.name}:${key.text}`);

/** Feeds keys to an editor: a string is typed character by character, other keys by name. */
function press(editor: LineEditor, ...keys: (string | Key)[]): string[] {
  const actions: string[] = [];
  const sources: CompletionSources = {
    commands: TEXTS.pt.commands,
    names: ["ana maria", "anabela", "bia", "Bruno"],
    rooms: ["geral", "estudos", "esportes"],
  };
  for (const key of keys) {
    const list = typeof key === "string" ? [...key].map((char) => ({ name: "char", text: char })) : [key];
    for (const one of list) {
      const action = editor.key(one, (line, cursor) => complete(line, cursor, sources));
      if (action !== "none") actions.push(action);
    }
  }
  return actions;
}

const k = (name: string, text?: string): Key => text === undefined ? { name } : { name, text };

/** The line with `|` where the cursor is. */
function shown(editor: LineEditor): string {
  const chars = [...editor.chars];
  chars.splice(editor.cursor, 0, "|");
  return chars.join("");
}

Deno.test("KeyDecoder: characters, arrows with Ctrl and Alt, Alt+letter, focus, split reads, a lone Escape", () => {
  const keys = new KeyDecoder();
  assert.deepEqual(names(keys.feed("aé\r\n\t\x7f\x01\x17")), [
    "char:a",
    "char:é",
    "enter",
    "tab",
    "backspace",
    "ctrl-a",
    "ctrl-w",
  ]);
  assert.deepEqual(
    names(keys.feed("\x1b[D\x1b[1;5D\x1b[1;5C\x1b[1;3D\x1bOd\x1b[H\x1b[4~\x1b[3~\x1b[3;5~\x1b[Z")),
    [
      "left",
      "ctrl-left",
      "ctrl-right",
      "ctrl-left",
      "ctrl-left",
      "home",
      "end",
      "delete",
      "ctrl-delete",
      "shift-tab",
    ],
  );
  assert.deepEqual(names(keys.feed("\x1bb\x1bf\x1bd\x1b\x7f\x1b[I\x1b[O")), [
    "alt-b",
    "alt-f",
    "alt-d",
    "alt-backspace",
    "focus-in",
    "focus-out",
  ]);
  // A sequence split between reads waits for its end.
  assert.deepEqual(names(keys.feed("x\x1b[1;")), ["char:x"]);
  assert.equal(keys.waiting, true);
  assert.deepEqual(names(keys.feed("5C")), ["ctrl-right"]);
  // A lone Escape is the Escape key once nothing follows.
  assert.deepEqual(names(keys.feed("\x1b")), []);
  assert.deepEqual(names(keys.flush()), ["escape"]);
  assert.equal(keys.waiting, false);
});

Deno.test("KeyDecoder: a bracketed paste is one key, however the reads split it, markers included", () => {
  const keys = new KeyDecoder();
  assert.deepEqual(names(keys.feed("a\x1b[200~um\r\ndois")), ["char:a"]);
  assert.equal(keys.waiting, false, "inside a paste nothing waits for a pause");
  assert.deepEqual(names(keys.feed("\x1b[C\r\ntr")), []);
  assert.deepEqual(names(keys.feed("ês\x1b[20")), []);
  assert.deepEqual(names(keys.feed("1~b")), ["paste:um\r\ndois\x1b[C\r\ntrês", "char:b"]);
  // The start marker split too.
  assert.deepEqual(names(keys.feed("\x1b[20")), []);
  assert.deepEqual(names(keys.feed("0~x\x1b[201~")), ["paste:x"]);
});

Deno.test("LineEditor: word motions (Alt-b/f, Ctrl-←/→), Alt-d, Ctrl-W, Ctrl-U/K and Ctrl-Y", () => {
  const editor = new LineEditor();
  const steps: [(string | Key)[], string][] = [
    [["olá mundo-novo, tudo bem", k("alt-b")], "olá mundo-novo, tudo |bem"],
    [[k("ctrl-left"), k("ctrl-left")], "olá mundo-|novo, tudo bem"],
    [[k("alt-f")], "olá mundo-novo|, tudo bem"],
    [[k("ctrl-right")], "olá mundo-novo, tudo| bem"],
    [[k("home"), k("alt-d")], "| mundo-novo, tudo bem"],
    [[k("ctrl-y")], "olá| mundo-novo, tudo bem"],
    [[k("end"), k("ctrl-w")], "olá mundo-novo, tudo |"],
    [[k("ctrl-w"), k("ctrl-w")], "olá |"],
    [[k("alt-backspace")], "|"],
    [["abc def", k("left"), k("left"), k("ctrl-k")], "abc d|"],
    [[k("ctrl-u"), k("end"), k("ctrl-y")], "abc d|"],
    // Control and reordering characters never get into the line.
    [["\u202e", k("char", "\x07")], "abc d|"],
  ];
  for (const [keys, expected] of steps) {
    press(editor, ...keys);
    assert.equal(shown(editor), expected, JSON.stringify(keys));
  }
});

Deno.test("LineEditor: history with ↑/↓ keeps the draft; Ctrl-R finds older lines, cancels, accepts", () => {
  const editor = new LineEditor();
  for (const line of ["/entrar geral", "oi, bia", "vamos estudar?", "oi de novo"]) {
    press(editor, line);
    assert.deepEqual(press(editor, k("enter")), ["submit"]);
    editor.accept();
  }
  press(editor, "rascunho");
  press(editor, k("up"));
  assert.equal(editor.line, "oi de novo");
  press(editor, k("up"), k("up"), k("down"));
  assert.equal(editor.line, "vamos estudar?");
  press(editor, k("down"), k("down"));
  assert.equal(editor.line, "rascunho");

  press(editor, k("ctrl-r"), "oi");
  assert.deepEqual(editor.search, { query: "oi", found: true });
  assert.equal(shown(editor), "|oi de novo");
  press(editor, k("ctrl-r"));
  assert.equal(shown(editor), "|oi, bia");
  press(editor, k("ctrl-r"));
  assert.equal(shown(editor), "|oi, bia", "no older line: the match stays");
  // Escape gives the line back as it was.
  press(editor, k("escape"));
  assert.equal(editor.search, undefined);
  assert.equal(shown(editor), "rascunho|");
  // No match says so; Backspace widens the search again.
  press(editor, k("ctrl-r"), "GERALX");
  assert.deepEqual(editor.search, { query: "GERALX", found: false });
  press(editor, k("backspace"));
  assert.equal(shown(editor), "/entrar |geral");
  // Another key takes the line found and does its work on it; Enter sends it.
  press(editor, k("end"), "!");
  assert.equal(editor.search, undefined);
  assert.equal(editor.line, "/entrar geral!");
  press(editor, k("ctrl-r"), "estudar");
  assert.deepEqual(press(editor, k("enter")), ["submit"]);
  assert.equal(editor.line, "vamos estudar?");
});

Deno.test("LineEditor: Ctrl-C clears a line; on an empty one asks, and a second Ctrl-C right after quits", () => {
  const editor = new LineEditor();
  press(editor, "meio escrito");
  assert.deepEqual(press(editor, k("ctrl-c")), []);
  assert.equal(editor.line, "");
  assert.deepEqual(press(editor, k("ctrl-c")), ["confirm-quit"]);
  // Any other key in between: asked again.
  assert.deepEqual(press(editor, k("left"), k("ctrl-c")), ["confirm-quit"]);
  assert.deepEqual(press(editor, k("ctrl-c")), ["quit"]);
  // Ctrl-D: leaves on an empty line, deletes otherwise; Ctrl-L asks for a redraw.
  assert.deepEqual(press(editor, "ab", k("home"), k("ctrl-d")), []);
  assert.equal(editor.line, "b");
  assert.deepEqual(press(editor, k("ctrl-l")), ["redraw"]);
  assert.deepEqual(press(editor, k("end"), k("ctrl-u"), k("ctrl-d")), ["eof"]);
  // During a search Ctrl-C only ends the search.
  press(editor, "x", k("ctrl-r"), "x");
  assert.deepEqual(press(editor, k("ctrl-c")), []);
  assert.equal(editor.line, "x");
});

Deno.test("LineEditor: a paste of a few lines goes into the line; more lines ask first", () => {
  const editor = new LineEditor();
  press(editor, "antes ", k("paste", "um\r\ndois\ttab\r\n\x1b[31mtrês\x07\n"));
  assert.equal(editor.line, "antes um\ndois    tab\ntrês");
  const big = Array.from({ length: 30 }, (_, i) => `linha ${i + 1}`).join("\n");
  assert.deepEqual(press(editor, k("paste", `${big}\n`)), ["ask-paste"]);
  assert.equal(editor.pasted, big);
  assert.equal(cleanPaste("\n\nx\n\n"), "x");
});

Deno.test("complete and Tab: commands, rooms after /entrar, names quoted with spaces, cycling both ways", () => {
  const sources: CompletionSources = {
    commands: [...TEXTS.pt.commands, ...TEXTS.en.commands],
    names: ["bia", "ana maria", "anabela", "bia"],
    rooms: ["geral", "estudos", "esportes"],
  };
  assert.deepEqual(complete("/en", 3, sources), { kind: "command", start: 0, end: 3, options: ["/entrar "] });
  assert.deepEqual(complete("/entrar es", 10, sources)?.options, ["esportes", "estudos"]);
  assert.deepEqual(complete("/join ", 6, sources)?.options, ["esportes", "estudos", "geral"]);
  assert.deepEqual(complete("an", 2, sources)?.options, ['"ana maria": ', "anabela: "]);
  assert.deepEqual(complete("oi AN", 5, sources), {
    kind: "name",
    start: 3,
    end: 5,
    options: ['"ana maria" ', "anabela "],
  });
  assert.deepEqual(complete('oi "ana m', 9, sources)?.options, ['"ana maria" ']);
  assert.deepEqual(complete("/msg ", 5, sources)?.options, ['"ana maria" ', "anabela ", "bia "]);
  assert.equal(complete("oi ", 3, sources), undefined, "no word, nothing to complete");

  const editor = new LineEditor();
  press(editor, "/en", k("tab"));
  assert.equal(editor.line, "/entrar ");
  press(editor, k("tab"));
  assert.equal(editor.line, "/entrar esportes");
  press(editor, k("tab"));
  assert.equal(editor.line, "/entrar estudos");
  press(editor, k("tab"), k("tab"));
  assert.equal(editor.line, "/entrar esportes", "around and around");
  press(editor, k("shift-tab"));
  assert.equal(editor.line, "/entrar geral");
  press(editor, k("ctrl-u"), "oi a", k("tab"));
  assert.equal(shown(editor), 'oi "ana maria" |');
  press(editor, k("tab"));
  assert.equal(shown(editor), "oi anabela |");
  press(editor, "tudo bem", k("home"), "b", k("tab"));
  assert.equal(shown(editor), "bia: |oi anabela tudo bem");
});

Deno.test("fitInput: at any width the visible line fits, never wraps, and shows the cursor", () => {
  const line = [..."uma frase longa com 漢字 e emoji 🎉 no meio\ne quebra de linha"];
  for (let width = 1; width <= 50; width++) {
    let scroll = 0;
    for (const cursor of [...line.keys(), line.length, 3, 0, line.length, 10]) {
      const fitted = fitInput(line, cursor, width, scroll);
      scroll = fitted.scroll;
      const cell = cursor < line.length ? Math.max(1, textWidth(line[cursor]!)) : 1;
      assert(textWidth(fitted.text) <= width, `width ${width}, cursor ${cursor}: ${fitted.text}`);
      assert(fitted.column + cell <= Math.max(width, cell), `cursor off screen: ${width} ${cursor}`);
      assert.equal(textWidth([...line].slice(scroll, cursor)), fitted.column);
      assert(!fitted.text.includes("\n"), "a line break shows as ↵");
    }
  }
  assert.deepEqual(fitInput([..."curta"], 5, 20), { text: "curta", column: 5, scroll: 0 });
  assert.deepEqual(fitInput([..."a\nb"], 1, 20).text, "a↵b");
  // Deleting at the end of a scrolled line fills the room again from the left.
  const long = [..."abcdefghijklmnopqrstuvwxyz"];
  const end = fitInput(long, 26, 10);
  assert.deepEqual(end, { text: "rstuvwxyz", column: 9, scroll: 17 });
  assert.deepEqual(fitInput(long.slice(0, 20), 20, 10, end.scroll), {
    text: "lmnopqrst",
    column: 9,
    scroll: 11,
  });
});

Deno.test("promptFor: half the width at most, long rooms shortened, the connection status kept as long as it fits", () => {
  assert.equal(promptFor("geral", undefined, 80), "[geral] > ");
  assert.equal(promptFor(null, undefined, 80), "> ");
  assert.equal(promptFor("geral", "sem conexão", 80), "[geral] (sem conexão) > ");
  const long = "sala-de-estudos-avancados-2026";
  for (const columns of [20, 21, 30, 40, 60, 80, 200]) {
    for (const status of [undefined, "sem conexão"]) {
      const prompt = promptFor(long, status, columns);
      assert(textWidth(prompt) <= Math.max(2, Math.floor(columns / 2)), `${columns}: ${prompt}`);
      assert.match(prompt, / > $|^> $/);
      if (status) assert.match(prompt, /\((sem conexão|!)\)/, `${columns}: ${prompt}`);
    }
  }
  assert.equal(promptFor(long, undefined, 30), "[sala-de-e…] > ");
  assert.equal(promptFor(long, "sem conexão", 30), "[sala-…] (!) > ");
  assert.equal(promptFor("geral", undefined, 20), "[geral] > ");
  assert.equal(promptFor("geral", undefined, 19), "[ger…] > ");
  assert.equal(promptFor("geral", "sem conexão", 8), "> ");
  assert.equal(truncate("abcdef", 4), "abc…");
  assert.equal(truncate("abc", 4), "abc");
});

Deno.test("wrapRows: breaks at spaces, cuts only words longer than a row, keeps each line's own breaks", () => {
  assert.deepEqual(wrapRows(["uma frase que não cabe numa linha só"], 12, 12), [
    "uma frase",
    "que não cabe",
    "numa linha",
    "só",
  ]);
  assert.deepEqual(wrapRows(["primeira", "", "terceira linha"], 20, 10), [
    "primeira",
    "",
    "terceira",
    "linha",
  ]);
  assert.deepEqual(wrapRows(["abcdefghij k"], 4, 4), ["abcd", "efgh", "ij k"]);
  assert.deepEqual(wrapRows(["curta"], 3, 10), ["cur", "ta"]);
  assert.deepEqual(wrapRows(["漢字漢字"], 5, 5), ["漢字", "漢字"]);
  for (let width = 1; width < 30; width++) {
    for (const row of wrapRows(["a b  c ddddddddddddddddddddddddd 漢字 e"], width, width)) {
      assert(textWidth(row) <= Math.max(width, 2), `${width}: ${row}`);
    }
  }
});

/** A wall-clock time, as the codec reads a naive dateTime (in the UTC fields). */
const AT = new Date(Date.UTC(2026, 10, 24, 15, 28, 12));
const message = (fields: Partial<ChatMessage>): ChatMessage => ({
  tipo: "broadcast",
  origem: "ana",
  destino: "todos",
  conteudo: "oi",
  timestamp: AT,
  ...fields,
});

Deno.test("renderMessage: wrapped under the text, private lines tagged, dates on older days, nothing passes for a line", () => {
  const now = new Date(Date.UTC(2026, 10, 24, 18, 0, 0));
  const text = "uma mensagem comprida que precisa quebrar em várias linhas";
  const rows = renderMessage(message({ conteudo: text }), { width: 40, now });
  assert.deepEqual(rows, [
    "[15:28:12] ana: uma mensagem comprida",
    "                que precisa quebrar em",
    "                várias linhas",
  ]);
  // A text's own line breaks: indented, so a forged line cannot start a row.
  assert.deepEqual(
    renderMessage(message({ origem: "mallory", conteudo: "oi\n[15:28:13] SERVER: banido" }), {
      width: 80,
      now,
    }),
    ["[15:28:12] mallory: oi", "                    [15:28:13] SERVER: banido"],
  );
  // Private: a tag, not only a colour.
  assert.deepEqual(
    renderMessage(message({ tipo: "unicast", destino: "bia", conteudo: "psiu" }), { width: 80, now }),
    [
      "[15:28:12] [privada] ana -> bia: psiu",
    ],
  );
  assert.deepEqual(
    renderMessage(message({ tipo: "unicast", destino: "bia" }), { width: 80, now, texts: TEXTS.en }),
    ["[15:28:12] [private] ana -> bia: oi"],
  );
  // An older day: the date before the time.
  assert.deepEqual(renderMessage(message({}), { width: 80, now: new Date(Date.UTC(2026, 10, 25, 9)) }), [
    "[24/11 15:28:12] ana: oi",
  ]);
  assert.deepEqual(
    renderMessage(message({ timestamp: "20261123T08:00:00" as unknown as Date }), { width: 80, now }),
    [
      "[23/11 08:00:00] ana: oi",
    ],
  );
  // A narrow terminal: the whole line wraps, indented by two, and no row is wider than the terminal.
  const narrow = renderMessage(message({ origem: "carlos alberto", conteudo: text }), { width: 20, now });
  assert.equal(narrow[0], "[15:28:12] carlos");
  for (const row of narrow) assert(textWidth(row) <= 19, row);
  assert(narrow.slice(1).every((row) => row.startsWith("  ")));
  // Colours: private in magenta and bold when it asks for attention; a mention in bold yellow.
  const loud = renderMessage(message({ tipo: "unicast", destino: "bia" }), {
    width: 80,
    now,
    colour: true,
    attention: true,
  });
  assert.match(loud.join(""), /\x1b\[35m.*\[privada\]/);
  assert.match(loud.join(""), /\x1b\[1m/);
  const mention = renderMessage(message({ conteudo: "oi bia" }), {
    width: 80,
    now,
    colour: true,
    attention: true,
  });
  assert.match(mention.join(""), /\x1b\[1m\x1b\[33moi bia/);
});

Deno.test("names that could pass for a line's format are quoted; mentions are whole words in any case", () => {
  assert.equal(displayName("ana"), "ana");
  assert.equal(displayName("carlos -> bia"), '"carlos -> bia"');
  assert.equal(displayName('diz "oi"'), '"diz \\"oi\\""');
  assert.equal(displayName("x\u2192y"), '"x\u2192y"');
  assert.equal(
    formatMessage(message({ origem: "carlos -> bia", conteudo: "segredo" })),
    '[15:28:12] "carlos -> bia": segredo',
  );
  assert.equal(mentions("oi, Bia!", "bia"), true);
  assert.equal(mentions("bianca chegou", "bia"), false);
  assert.equal(mentions("fala com ana maria", "ana maria"), true);
  assert.equal(mentions("a.b", "a.b"), true);
  assert.equal(mentions("axb", "a.b"), false);
  assert.equal(mentions("oi", undefined), false);
});

Deno.test("notices, days and long messages: hanging indents, the date in the user's language, parts the server takes", () => {
  assert.deepEqual(
    renderNotice("Comandos:\n  /entrar SALA   entra na sala, criando se preciso", "info", false, 40),
    [
      "* Comandos:",
      "    /entrar SALA   entra na sala,",
      "                   criando se preciso",
    ],
  );
  assert.match(renderNotice("x", "error", true, 40)[0]!, /^\x1b\[31m\* x/);
  assert.equal(renderDay(AT, TEXTS.pt, false, 80), "── terça-feira, 24 de novembro de 2026 ──");
  assert.equal(renderDay(AT, TEXTS.en, false, 80), "── Tuesday, November 24, 2026 ──");
  assert.equal(renderDay(AT, TEXTS.pt, false, 20), "── terça-feira, 24…");
  assert.equal(dateOf("20261124T15:28:12")?.getTime(), AT.getTime());
  assert.equal(dateOf("bobagem"), undefined);

  assert.deepEqual(splitMessage("curta"), ["curta"]);
  const lines = Array.from({ length: 300 }, (_, i) => `linha número ${i}`);
  const parts = splitMessage(lines.join("\n"));
  assert(parts.length > 1 && parts.every((part) => part.length <= 2000));
  assert.deepEqual(parts.join("\n"), lines.join("\n"), "cut at line breaks, nothing lost");
  const emoji = "🎉".repeat(1500);
  // One line too long is cut too, never inside a character, at a space where there is one.
  const single = splitMessage(emoji);
  assert(single.length === 2 && single.every((part) => part.isWellFormed() && part.length <= 2000));
  assert.equal(single.join(""), emoji);
  const words = Array.from({ length: 1500 }, (_, i) => `palavra${i}`).join(" ");
  const byWords = splitMessage(words);
  assert(byWords.length > 1 && byWords.every((part) => part.length <= 2000));
  assert(byWords.slice(0, -1).every((part) => part.endsWith(" ")), "cut after a space, no word split");
  assert.equal(byWords.join(""), words);
  const cut = splitMessage(`${emoji}\nfim`);
  assert(cut.every((part) => part.isWellFormed() && part.length <= 2000));
  assert.equal(cut.join(""), `${emoji}\nfim`);
});
