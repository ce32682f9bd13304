/**
 * The client in a real terminal: tmux runs it in panes of known sizes, keys
 * go in with `send-keys`, pastes with `paste-buffer -p` (bracketed), and what
 * the terminal shows comes back with `capture-pane`; the bell is counted by a
 * tmux hook and the title read from `#{pane_title}`. Other users are scripted
 * clients (pipes) or plain XML-RPC calls. Every wait is on a condition.
 *
 * @module
 */

// deno-lint-ignore-file no-control-regex -- these tests look for terminal escape sequences
import assert from "node:assert/strict";
import { XmlRpcClient } from "../../lib/mod.ts";
import {
  CLIENT_PERMISSIONS,
  clientArgs,
  count,
  escapeRegExp,
  said,
  scriptCommand,
  startBinder,
  startClient,
  startServer,
  testUnless,
  waitUntil,
} from "../helpers/programs.ts";
import { Tmux, TMUX_UNAVAILABLE } from "../helpers/tmux.ts";

/** The command line of a client in tmux (Portuguese, colours unless NO_COLOR is in `env`); `[saiu: N]` at its end. */
function terminalClient(binder: { address: string }, name: string, args: string[] = [], env: string[] = []) {
  return [
    // The exit code stays on the screen.
    "sh",
    "-c",
    '"$@"; echo "[saiu: $?]"',
    "sh",
    "env",
    "-u",
    "NO_COLOR",
    "TERM=xterm-256color",
    ...env,
    ...scriptCommand("cliente.ts", CLIENT_PERMISSIONS, clientArgs(binder, ["--name", name, ...args])),
  ];
}

async function nameIsFree(port: number, name: string): Promise<boolean> {
  const client = new XmlRpcClient(`http://127.0.0.1:${port}/`, { timeoutMs: 5000 });
  const [ok] = await client.call<[boolean]>("registrar_usuario", [name]);
  if (ok) await client.call("sair_do_servico", [name]);
  return ok;
}

testUnless(
  TMUX_UNAVAILABLE,
  "30 columns and a long room: the prompt shortened, the line scrolls sideways, keys, Tab, Ctrl-R, Ctrl-L, Ctrl-C",
  async () => {
    await using binder = await startBinder();
    await using server = await startServer(binder);
    const room = "sala-de-estudos-avancados";
    await using bia = startClient(binder, ["--name", "bia", "--room", room]);
    await bia.waitForLine(/Você está na sala/);
    await using maria = startClient(binder, ["--name", "ana maria", "--room", room]);
    await maria.waitForLine(/Você está na sala/);
    await using tmux = new Tmux();
    const ana = await tmux.start(
      "ana",
      terminalClient(binder, "ana", ["--room", room], ["NO_COLOR=1"]),
      30,
      12,
    );
    await ana.waitForBottom(/^\[sala-de-e…\] >$/);

    // A line far longer than the terminal: one row, no stale prompts, the cursor inside the terminal.
    const long = "uma frase muito comprida que não cabe de jeito nenhum em trinta colunas";
    for (const piece of long.match(/.{1,9}/g)!) {
      await ana.type(piece);
      await ana.waitForBottom(new RegExp(`${escapeRegExp(piece.trimEnd())}$`));
      const rows = await ana.rows();
      assert.equal(rows.filter((row) => row.startsWith("[sala-de-e…] >")).length, 1, rows.join("\n"));
      assert(rows.every((row) => row.length <= 30));
      assert(Number(await ana.show("#{cursor_x}")) < 30);
    }
    // A message arrives while the line is being typed: above it, and the line stays as it was.
    const before = await ana.bottom();
    await bia.write("mensagem no meio\n");
    await ana.waitFor(/bia: mensagem no\n +meio\n/);
    assert.equal(await ana.bottom(), before);
    assert.match(
      (await ana.rows()).slice(-3).join("\n"),
      /^\[\d\d:\d\d:\d\d\] bia: mensagem no\n {16}meio\n/,
    );
    await ana.keys("Enter");
    await bia.waitForLine(said(`ana: ${long}`));
    // Its echo wraps at spaces, indented under the text.
    await ana.waitFor(/ana: uma frase\n {16}muito\n {16}comprida que\n(.*\n){3} {16}colunas\n/);

    // 20 columns: still one row.
    await ana.type("e agora numa janela ainda mais estreita");
    await tmux.run("resize-window", "-t", "ana", "-x", "20");
    await ana.waitForBottom(/^\[sala…\] > .*estreita$/);
    assert((await ana.bottom()).length <= 20);
    await tmux.run("resize-window", "-t", "ana", "-x", "30");
    await ana.keys("C-u");

    // Word motions: Alt-b and Ctrl-← back a word, Alt-f and Ctrl-→ forward, Alt-d and Ctrl-W delete words.
    await ana.type("a bb cc dd");
    await ana.keys("M-b", "M-b", "C-Left");
    await ana.type("[");
    await ana.waitForBottom(/> a \[bb cc dd$/);
    await ana.keys("M-f", "C-Right");
    await ana.type("]");
    await ana.waitForBottom(/> a \[bb cc\] dd$/);
    await ana.keys("M-d");
    await ana.waitForBottom(/> a \[bb cc\]$/);
    await ana.keys("C-w");
    await ana.waitForBottom(/> a \[bb$/);
    await ana.keys("C-u");

    // Tab: names (quoted with spaces), cycling; commands; rooms.
    await ana.type("oi an");
    await ana.keys("Tab");
    await ana.waitForBottom(/ "ana maria"$/);
    await ana.keys("C-u");
    await ana.type("b");
    await ana.keys("Tab");
    await ana.waitForBottom(/> bia:$/);
    await ana.type("tudo bem?");
    await ana.keys("Enter");
    await bia.waitForLine(said("ana: bia: tudo bem?"));
    await ana.type("/ent");
    await ana.keys("Tab");
    await ana.waitForBottom(/> \/entrar$/);
    await ana.keys("Tab");
    await ana.waitForBottom(/> .*-avancados$/);
    await ana.keys("C-u");

    // Ctrl-R: an older line found again and sent again.
    await ana.keys("C-r");
    await ana.type("tudo");
    await ana.waitForBottom(/^\(busca 'tudo'\): .*tudo/);
    await ana.keys("Enter");
    await bia.waitForLines(said("ana: bia: tudo bem?"), 2);

    // Ctrl-L: the conversation drawn again, whatever else was written on the terminal.
    await ana.waitFor(/ana: bia: tudo(.|\n)*ana: bia: tudo/);
    const conversation = await ana.rows();
    const tty = await ana.show("#{pane_tty}");
    await Deno.writeTextFile(tty, "\r\nLIXO NA TELA\r\n");
    await ana.waitFor(/LIXO NA TELA/);
    await ana.keys("C-l");
    await waitUntil(async () => !(await ana.screen()).includes("LIXO"), "the junk gone");
    assert.deepEqual(await ana.rows(), conversation);
    // No colours with NO_COLOR.
    assert.doesNotMatch(await ana.screen({ escapes: true }), /\x1b\[[0-9;]*[1-9][0-9;]*m/);

    // Ctrl-C: clears a half-typed line; on the empty line asks; the second one leaves (the name is free).
    await ana.type("pela metade");
    await ana.keys("C-c");
    await ana.waitForBottom(/^\[sala-de-e…\] >$/);
    await ana.keys("C-c");
    await ana.waitFor(/Ctrl-C de novo para sair/);
    assert.equal(await nameIsFree(server.port, "ana"), false);
    await ana.keys("C-c");
    await bia.waitForLine(said("SERVER: ana saiu da sala."));
    await ana.waitFor(/^\[saiu: 0\]$/m);
    assert.equal(await nameIsFree(server.port, "ana"), true);
    assert.equal(count(bia, said("ana: uma frase muito comprida")), 0);
  },
);

testUnless(
  TMUX_UNAVAILABLE,
  "pastes (3 lines, 30 as one message, 30 line by line past the rate limit), bell, title, private marks, scrollback",
  async () => {
    await using binder = await startBinder();
    await using _server = await startServer(binder);
    await using bia = startClient(binder, ["--name", "bia", "--room", "geral"]);
    await bia.waitForLine(/Você está na sala geral/);
    await using tmux = new Tmux();
    const ana = await tmux.start("ana", terminalClient(binder, "ana", ["--room", "geral"]), 80, 24);
    const caio = await tmux.start("caio", terminalClient(binder, "caio", ["--room", "estudos", "--no-bell"]));
    await ana.waitForBottom(/^\[geral\] >$/);
    await caio.waitForBottom(/^\[estudos\] >$/);
    await bia.waitForLine(said("SERVER: ana entrou na sala."));
    assert.equal(await ana.show("#{pane_title}"), "[geral] rpc-chat");

    // A few lines: into the input line (breaks as ↵), sent as one message with Enter.
    await ana.paste("um\ndois\ntrês\n");
    await ana.waitForBottom(/^\[geral\] > um↵dois↵três$/);
    await ana.keys("Enter");
    await bia.waitForLine(said("ana: um dois três"));
    await ana.waitFor(/ana: um\n +dois\n +três\n/);

    // 30 lines: asked first; Enter sends them as one message.
    const items = Array.from({ length: 30 }, (_, i) => `item ${i + 1}`);
    await ana.paste(`${items.join("\n")}\n`);
    await ana.waitForBottom(/^Colar 30 linhas\? Enter: uma mensagem, l: linha a linha, Esc: cancela$/);
    await ana.keys("Enter");
    await bia.waitForLine(said(`ana: ${items.join(" ")}`));
    // Esc cancels.
    await ana.paste(`${items.join("\n")}\n`);
    await ana.waitForBottom(/^Colar 30 linhas/);
    await ana.keys("Escape");
    await ana.waitForBottom(/^\[geral\] >$/);
    // Line by line: 30 messages, more than the rate limit lets through at once; they wait, shown as
    // waiting, and go out in order, none lost.
    await ana.paste(`${items.join("\n")}\n`);
    await ana.waitForBottom(/^Colar 30 linhas/);
    await ana.type("l");
    await ana.waitFor(/^\[aguardando\] item \d+$/m);
    await bia.waitForLine(said("ana: item 30"));
    const received = bia.lines.filter((line) => /^\S+ ana: item \d+$/.test(line)).map((line) =>
      line.slice(11)
    );
    assert.deepEqual(received, items.map((item) => `ana: ${item}`));
    await waitUntil(async () => !/aguardando/.test(await ana.screen()), "nothing waiting any more");
    await ana.waitForBottom(/^\[geral\] >$/);

    // A private message: tagged beyond its colour, the bell rings; a mention too; caio has --no-bell.
    assert.equal(await ana.bells(), 0);
    await bia.write("/msg ana psiu\n");
    await ana.waitFor(/\[privada\] bia -> ana: psiu/);
    assert.match(
      await ana.screen({ escapes: true }),
      /\x1b\[[0-9;]*35[0-9;]*m[^\n]*\[privada\] bia -> ana: (\x1b\[[0-9;]*m)*psiu/,
    );
    await waitUntil(async () => await ana.bells() === 1, "a bell for the private message");
    await bia.write("ei ana, olha isso\n");
    await ana.waitFor(/bia: ei ana, olha isso/);
    await waitUntil(async () => await ana.bells() === 2, "a bell for the mention");
    await bia.write("nada para ninguém\n");
    await ana.waitFor(/bia: nada para ninguém/);
    // Private messages reach anyone online, in another room too; --no-bell stays silent.
    await bia.write("/msg caio você está em outra sala\n");
    await caio.waitFor(/\[privada\] bia -> caio: você está em outra sala/);
    await bia.waitForLine(said("bia -> caio: você está em outra sala"));
    assert.equal(await caio.bells(), 0);
    assert.equal(await ana.bells(), 2);

    // Away (focus out): the title counts what arrives; back (focus in): the count goes.
    await ana.type("\x1b[O");
    await bia.write("enquanto você estava fora\n");
    await ana.waitFor(/enquanto você estava fora/);
    await waitUntil(
      async () => await ana.show("#{pane_title}") === "(1) [geral] rpc-chat",
      "an unread count",
    ).catch(async (e) => {
      throw new Error(`${e.message}: ${await ana.show("#{pane_title}")}\n${await ana.screen()}`);
    });
    await ana.type("\x1b[I");
    await waitUntil(async () => await ana.show("#{pane_title}") === "[geral] rpc-chat", "no unread count");

    // /salas, /usuarios and /entrar print inline: what was on screen stays, and stays in the scrollback.
    await ana.type("/salas");
    await ana.keys("Enter");
    const rooms = await ana.waitFor(/\* Salas \(2\): estudos, geral/);
    assert.match(rooms, /enquanto você estava fora/);
    await ana.type("/usuarios");
    await ana.keys("Enter");
    await ana.waitFor(/\* Na sala geral \(2\): ana, bia/);
    await ana.type("/entrar estudos");
    await ana.keys("Enter");
    await ana.waitForBottom(/^\[estudos\] >$/);
    const all = await ana.screen({ history: true });
    for (const line of ["ana: um", "[privada] bia -> ana: psiu", "Salas (2)", "Você está na sala estudos"]) {
      assert(all.includes(line), `${line} in\n${all}`);
    }
    assert.equal(await ana.show("#{pane_title}"), "[estudos] rpc-chat");
    await ana.type("/fim");
    await ana.keys("Enter");
    await ana.waitFor(/^\[saiu: 0\]$/m);
  },
);

testUnless(
  TMUX_UNAVAILABLE,
  "offline: the prompt says so, lines typed meanwhile show as pending and go once, in order; outside a room the line stays",
  async () => {
    await using binder = await startBinder(["--check-interval", "0.1", "--drop-after", "0.5"]);
    const first = await startServer(binder);
    const dir = first.dir;
    try {
      await using tmux = new Tmux();
      const ana = await tmux.start("ana", terminalClient(binder, "ana"), 60, 20);
      await ana.waitFor(/Também em inglês/);
      // A line for a room typed outside any room: told what to do, and the line stays.
      await ana.type("olá, tem alguém?");
      await ana.keys("Enter");
      await ana.waitFor(/Você não está em nenhuma sala: a linha\s+continua aí/);
      assert.equal(await ana.bottom(), "> olá, tem alguém?");
      // /entrar creates the room that does not exist (and says so); Ctrl-Y brings the line back.
      await ana.keys("C-u");
      await ana.type("/entrar nova");
      await ana.keys("Enter");
      await ana.waitFor(/Sala 'nova' criada com sucesso\./);
      await ana.waitForBottom(/^\[nova\] >$/);
      await ana.keys("C-y", "Enter");
      await ana.waitFor(/ana: olá, tem alguém\?/);

      await first.program.stop("SIGKILL");
      await ana.waitForBottom(/^\[nova\] \(sem conexão\) >$/);
      for (const line of ["primeira na queda", "segunda na queda", "/usuarios"]) {
        await ana.type(line);
        await ana.keys("Enter");
      }
      const pending = await ana.waitFor(/\[pendente\] \/usuarios/);
      assert.match(
        pending,
        /^\[pendente\] primeira na queda\n\[pendente\] segunda na queda\n\[pendente\] \/usuarios\n\[nova\] \(sem conexão\) >$/m,
      );

      await using second = await startServer(binder, [], { dir });
      await ana.waitFor(/Na sala nova \(1\): ana/, { timeoutMs: 15_000 });
      await ana.waitFor(/ana: primeira na queda\n(.*\n)*.*ana: segunda na queda/);
      await ana.waitForBottom(/^\[nova\] >$/);
      const screen = await ana.screen({ history: true });
      assert.doesNotMatch(screen.slice(screen.lastIndexOf("Na sala nova")), /pendente/);
      for (const line of ["ana: primeira na queda", "ana: segunda na queda"]) {
        assert.equal(screen.split(line).length - 1, 1, `${line} once in\n${screen}`);
      }
      // Server gone again: Ctrl-C twice leaves at once, with a line still waiting.
      await second.program.stop("SIGKILL");
      await ana.waitForBottom(/^\[nova\] \(sem conexão\) >$/);
      await ana.type("nunca enviada");
      await ana.keys("Enter");
      await ana.waitFor(/\[pendente\] nunca enviada/);
      await ana.keys("C-c", "C-c");
      await ana.waitFor(/^\[saiu: 0\]$/m);
    } finally {
      await first.program.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
);
