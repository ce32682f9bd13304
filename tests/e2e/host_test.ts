/**
 * The host's side, in real terminals (tmux), as a host types it on a fresh
 * copy of the repository: the documented commands run without a prompt,
 * a missing permission is one line and exit code 2, `deno task start`
 * speaks the language asked, refuses a bad argument before anything starts,
 * watches binder and server (a `kill -9` is announced and served again by
 * itself), counts everyone connected, and stops cleanly, goodbye included,
 * when its terminal closes.
 *
 * Each test copies the programs into a temporary directory and runs the
 * exact commands of deno.json there, so the logs and the database land in
 * it. Ports are free ones (`--port 0`, `--binder-port 0`...).
 *
 * @module
 */

import assert from "node:assert/strict";
import { XmlRpcClient } from "../../lib/mod.ts";
import {
  Program,
  ROOT,
  startClient,
  taskCommand,
  tempDir,
  testUnless,
  waitUntil,
} from "../helpers/programs.ts";
import { type Pane, Tmux, TMUX_UNAVAILABLE } from "../helpers/tmux.ts";

/** The programs of the repository (every tracked file but the tests, docs and benchmark), copied into `dir`. */
async function copyPrograms(dir: string): Promise<void> {
  const { stdout } = await new Deno.Command("git", { args: ["-C", ROOT, "ls-files", "-z"], stdout: "piped" })
    .output();
  const files = new TextDecoder().decode(stdout).split("\0")
    .filter((path) => path && !/^(tests|docs|bench)\//.test(path));
  for (const path of files) {
    const slash = path.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${path.slice(0, slash)}`, { recursive: true });
    await Deno.copyFile(`${ROOT}${path}`, `${dir}/${path}`);
  }
}

/** A shell command line in `dir` that leaves `[exit: N]` on the screen when it ends. */
function inDir(dir: string, ...command: string[]): string[] {
  return ["sh", "-c", 'cd "$0" && "$@"; echo "[exit: $?]"', dir, ...command];
}

/** `deno task NAME ARGS...` in `dir`, in a tmux pane. */
function task(tmux: Tmux, session: string, dir: string, name: string, args: string[] = []): Promise<Pane> {
  return tmux.start(session, inDir(dir, Deno.execPath(), "task", name, ...args), 100, 40);
}

async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** The pid of our program `script` running from `dir` (start.ts starts it by its file URL). */
async function pidOf(dir: string, script: string): Promise<number> {
  const { stdout } = await new Deno.Command("pgrep", { args: ["-f", `file://${dir}/${script}`] }).output();
  const pids = new TextDecoder().decode(stdout).trim().split("\n").filter(Boolean).map(Number);
  assert.equal(pids.length, 1, `one ${script} from ${dir}: ${pids}`);
  return pids[0]!;
}

/**
 * What a pane showed, scrollback included (tmux's "Pane is dead" line scrolls
 * the screen), its empty rows and that line left out.
 */
async function shown(pane: Pane): Promise<string[]> {
  return (await pane.screen({ history: true })).split("\n")
    .filter((row) => row.trim() !== "" && !row.startsWith("Pane is dead"));
}

const PROMPT = /Deno requests|Allow\?|\[y\/n/;

/** Words no English reader should see (the client's Portuguese command names, listed as such, aside). */
const PORTUGUESE =
  /[ãõçáéíóúâêô]|\b(você|sala|servidor|pronto|encerrad\w*|usuário|colegas|máquina|saída|nesta|outro|entrar|conectado|procurando)\b/i;

testUnless(
  TMUX_UNAVAILABLE,
  "deno task binder and deno task server listen with no prompt; the server's window closing stops it cleanly",
  async () => {
    await using dir = await tempDir("rpc-chat-host-");
    await copyPrograms(dir.path);
    await using tmux = new Tmux();
    const binder = await task(tmux, "binder", dir.path, "binder", ["--host", "127.0.0.1", "--port", "0"]);
    const [, port] = (await binder.waitFor(/rpc-chat-pronto .*"porta":(\d+)/, { timeoutMs: 30_000 }))
      .match(/"porta":(\d+)/)!;
    assert.doesNotMatch(await binder.screen(), PROMPT);
    const server = await task(tmux, "server", dir.path, "server", [
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--binder",
      `127.0.0.1:${port}`,
    ]);
    await server.waitFor(/rpc-chat-pronto .*"programa":"server"/, { timeoutMs: 30_000 });
    await server.waitFor(/Registrado no binder/);
    assert.doesNotMatch(await server.screen(), PROMPT);
    // Its start line reads plainly: counts with their nouns, one room is "1 sala".
    assert.match(
      await server.screen(),
      /Servidor ouvindo em 127\.0\.0\.1:\d+ \(banco chat\.db, com 0 salas\)/,
    );

    // A classmate in a room when the host closes the server's window: the goodbye, and the log says so.
    await using bia = startClient({ address: `127.0.0.1:${port}` }, ["--name", "bia", "--room", "geral"]);
    await bia.waitForLine(/Você está na sala geral/, 20_000);
    // Lines reach chat_server.log within a second.
    const registered = Date.now();
    await waitUntil(
      async () => /Usuário registrado: bia/.test(await Deno.readTextFile(`${dir.path}/chat_server.log`)),
      "bia's registration in chat_server.log",
      1000,
    );
    assert(Date.now() - registered <= 1000);
    await tmux.run("kill-session", "-t", "server");
    await bia.waitForLine(/\] SERVER: O servidor de chat foi encerrado\.$/);
    await waitUntil(
      async () => /Servidor encerrado\./.test(await Deno.readTextFile(`${dir.path}/chat_server.log`)),
      "the shutdown lines in chat_server.log",
    );
    assert.match(await Deno.readTextFile(`${dir.path}/chat_server.log`), /Servidor encerrando\.\.\./);
  },
);

testUnless(
  TMUX_UNAVAILABLE,
  "deno run cliente.ts without --allow-net: one line naming --allow-net, exit code 2, no retries",
  async () => {
    await using dir = await tempDir("rpc-chat-host-");
    await copyPrograms(dir.path);
    await using tmux = new Tmux();
    const pane = await tmux.start("client", inDir(dir.path, Deno.execPath(), "run", "cliente.ts"), 100, 20);
    await pane.waitFor(/\[exit: \d+\]/, { timeoutMs: 20_000 });
    assert.deepEqual(await shown(pane), [
      "cliente.ts: falta a permissão --allow-net: rode de novo com ela (deno run --allow-net cliente.ts)",
      "[exit: 2]",
    ]);
    // The same for the binder and the server, in English when asked.
    for (
      const [script, flags, said] of [
        ["binder.ts", [], "binder.ts: falta a permissão --allow-net"],
        ["server.ts", ["--allow-net"], "server.ts: falta a permissão --allow-write=chat_server.log,chat.db"],
        ["cliente.ts", ["--allow-read"], "cliente.ts: the permission --allow-net is missing"],
      ] as const
    ) {
      const args = script === "cliente.ts" ? ["--lang", "en"] : ["--port", "0"];
      const other = await tmux.start(
        script.replace(".ts", ""),
        inDir(dir.path, Deno.execPath(), "run", ...flags, script, ...args),
        250,
      );
      await other.waitFor(/\[exit: \d+\]/, { timeoutMs: 20_000 });
      const rows = await shown(other);
      assert.equal(rows.length, 2, rows.join("\n"));
      assert(rows[0]!.startsWith(said), rows[0]!);
      assert.equal(rows[1], "[exit: 2]");
    }
    assert.deepEqual([...Deno.readDirSync(dir.path)].filter((e) => e.name.endsWith(".log")), []);
  },
);

testUnless(
  TMUX_UNAVAILABLE,
  "deno task start --lang en shows no Portuguese; --lang fr exits 2 with nothing started",
  async () => {
    await using dir = await tempDir("rpc-chat-host-");
    await copyPrograms(dir.path);
    await using tmux = new Tmux();
    const refused = await task(tmux, "fr", dir.path, "start", ["--lang", "fr"]);
    await refused.waitFor(/\[exit: \d+\]/, { timeoutMs: 20_000 });
    // After deno task's own line (its command, wrapped): ours.
    const all = await shown(refused);
    const rows = all.slice(all.findIndex((row) => row.endsWith("'--lang' 'fr'")) + 1);
    assert.deepEqual(rows, ["start.ts: --lang deve ser pt ou en, não 'fr' (veja --help)", "[exit: 2]"]);
    assert.deepEqual([...Deno.readDirSync(dir.path)].filter((e) => e.name.endsWith(".log")), []);

    const help = await task(tmux, "help", dir.path, "start", ["--lang", "en", "--help"]);
    await help.waitFor(/\[exit: 0\]/, { timeoutMs: 20_000 });
    assert.match(await help.screen(), /Usage: deno task start/);
    assert.doesNotMatch(await help.screen(), PORTUGUESE);

    const args = ["--local", "--binder-port", "0", "--server-port", "0", "--lang", "en", "--name", "ana"];
    const start = await task(tmux, "en", dir.path, "start", [...args, "--room", "geral"]);
    await start.waitFor(/You are in room geral/, { timeoutMs: 30_000 });
    await start.type("/rooms");
    await start.keys("Enter");
    await start.waitFor(/geral/);
    await start.type("/quit");
    await start.keys("Enter");
    await start.waitFor(/\[exit: 0\]/, { timeoutMs: 20_000 });
    const screen = await start.screen({ history: true });
    assert.match(screen, /Binder ready at 127\.0\.0\.1:\d+/);
    assert.match(screen, /^Binder and server stopped\.$/m);
    // The client's help lists the Portuguese command names as such: that line aside, no Portuguese.
    const english = screen.split("\n").filter((line) => !/Also in Portuguese:/.test(line)).join("\n");
    assert.doesNotMatch(english, PORTUGUESE);
  },
);

testUnless(
  TMUX_UNAVAILABLE,
  "under deno task start, kill -9 of the server is announced and the chat is served again within 15 s",
  async () => {
    await using dir = await tempDir("rpc-chat-host-");
    await copyPrograms(dir.path);
    await using tmux = new Tmux();
    const args = ["--local", "--binder-port", "0", "--server-port", "0", "--lang", "pt"];
    const start = await task(tmux, "start", dir.path, "start", [...args, "--name", "ana", "--room", "geral"]);
    const screen = await start.waitFor(/Você está na sala geral/, { timeoutMs: 30_000 });
    const [, binderPort] = screen.match(/Binder pronto em 127\.0\.0\.1:(\d+)/)!;
    await using bia = startClient({ address: `127.0.0.1:${binderPort}` }, [
      "--name",
      "bia",
      "--room",
      "geral",
    ]);
    await start.waitFor(/SERVER: bia entrou na sala\./, { timeoutMs: 20_000 });

    Deno.kill(await pidOf(dir.path, "server.ts"), "SIGKILL");
    const killed = Date.now();
    await start.waitFor(
      /O servidor parou inesperadamente \(sinal SIGKILL\); reinicio em 1 s \(veja server\.log\)\./,
    );
    // bia's line goes out once the chat is back: on the host's screen within 15 s of the kill.
    await bia.write("voltou?\n");
    await start.waitFor(/\] bia: voltou\?/, { timeoutMs: 15_000 - (Date.now() - killed) });
    assert.match(await start.screen(), /Servidor de volta em 127\.0\.0\.1:\d+\./);
    // server.log kept what the killed server wrote, and the new one's lines after them.
    assert.equal((await Deno.readTextFile(`${dir.path}/server.log`)).match(/Servidor ouvindo/g)?.length, 2);
  },
);

testUnless(
  TMUX_UNAVAILABLE,
  "deno task start counts everyone connected, and its terminal closing says goodbye to everyone",
  async () => {
    await using dir = await tempDir("rpc-chat-host-");
    await copyPrograms(dir.path);
    await using tmux = new Tmux();
    const args = ["--local", "--binder-port", "0", "--server-port", "0", "--lang", "pt", "--name", "ana"];
    const start = await task(tmux, "start", dir.path, "start", args);
    const screen = await start.waitFor(/Digite \/ajuda|\/ajuda/, { timeoutMs: 30_000 });
    const [, binderPort] = screen.match(/Binder pronto em 127\.0\.0\.1:(\d+)/)!;
    const [, serverPort] = screen.match(/Servidor pronto em 127\.0\.0\.1:(\d+)/)!;
    const binder = { address: `127.0.0.1:${binderPort}` };
    // bia in a room, caio in none: both count.
    await using bia = startClient(binder, ["--name", "bia", "--room", "geral"]);
    await using caio = startClient(binder, ["--name", "caio"]);
    await bia.waitForLine(/Você está na sala geral/, 20_000);
    await caio.waitForLine(/Olá, caio!/, 20_000);
    await start.type("/fim");
    await start.keys("Enter");
    await start.waitFor(/Ainda há 2 pessoas no chat\./, { timeoutMs: 20_000 });
    await start.waitFor(/Encerrar o serviço para todos\? \[s\/N\]/);

    // The host closes the window: SIGHUP to everything in it.
    await tmux.run("kill-session", "-t", "start");
    await bia.waitForLine(/\] SERVER: O servidor de chat foi encerrado\.$/, 20_000);
    await waitUntil(
      async () => !await listening(Number(serverPort)) && !await listening(Number(binderPort)),
      "binder and server stopped",
      20_000,
    );
    // Their last lines come after their ports close (and the binder's through start.ts into binder.log).
    const read = (file: string) => Deno.readTextFile(`${dir.path}/${file}`);
    await waitUntil(
      async () => /Servidor encerrado\./.test(await read("chat_server.log")),
      "the server's last line",
    );
    await waitUntil(
      async () => /Binder encerrado\./.test(await read("binder.log")),
      "the binder's last line",
    );
    assert.match(await read("chat_server.log"), /Aviso de encerramento enviado a 1 sala\n/);
  },
);

Deno.test("deno task start reports truthfully: a server that stayed down is not said to be stopped", async () => {
  await using dir = await tempDir("rpc-chat-host-");
  await copyPrograms(dir.path);
  const [, , ...words] = (await taskCommand("start")).split(" ");
  const start = new Program(Deno.execPath(), [
    "run",
    "--no-prompt",
    ...words,
    "--local",
    "--binder-port",
    "0",
    "--server-port",
    "0",
    "--lang",
    "pt",
    "--name",
    "ana",
  ], { cwd: dir.path, stdin: "piped" });
  await using _ = start;
  const [, serverPort] = await start.waitForLine(/^Servidor pronto em 127\.0\.0\.1:(\d+)/, 30_000);
  await start.waitForLine(/^\* Olá, ana!/, 20_000);
  Deno.kill(await pidOf(dir.path, "server.ts"), "SIGKILL");
  await waitUntil(async () => !await listening(Number(serverPort)), "the server gone");
  // Its port taken meanwhile: the restart fails, and start.ts says so and waits longer.
  using _taken = Deno.listen({ hostname: "127.0.0.1", port: Number(serverPort) });
  await start.waitForLine(/^O servidor parou inesperadamente \(sinal SIGKILL\); reinicio em 1 s/);
  await start.waitForLine(/^O servidor parou inesperadamente \(código 1\); reinicio em 2 s/, 30_000);
  await start.write("/fim\n");
  await start.waitForLine(/^Binder encerrado; o servidor já tinha parado \(veja server\.log\)\.$/, 20_000);
  assert.equal((await start.status).code, 0);
  assert.doesNotMatch(start.output, /Binder e servidor encerrados/);
  assert.match(await Deno.readTextFile(`${dir.path}/server.log`), /não foi possível escutar/);
});

Deno.test("contar_usuarios: everyone registered, in a room or not", async () => {
  await using dir = await tempDir("rpc-chat-host-");
  const server = new Program(Deno.execPath(), [
    "run",
    "--no-prompt",
    "--allow-net",
    "--allow-write=chat_server.log",
    `${ROOT}server.ts`,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--binder",
    "127.0.0.1:1",
    "--db",
    ":memory:",
  ], { cwd: dir.path });
  await using _ = server;
  const { porta } = await server.ready(30_000);
  const ana = new XmlRpcClient(`http://127.0.0.1:${porta}/`, { timeoutMs: 5000 });
  const bia = new XmlRpcClient(`http://127.0.0.1:${porta}/`, { timeoutMs: 5000 });
  assert.deepEqual(await ana.call("contar_usuarios", []), [true, 0]);
  await ana.call("registrar_usuario", ["ana"]);
  await bia.call("registrar_usuario", ["bia"]);
  await ana.call("criar_sala", ["geral"]);
  await ana.call("entrar_na_sala", ["ana", "geral"]);
  assert.deepEqual(await bia.call("contar_usuarios", []), [true, 2]);
  await bia.call("sair_do_servico", ["bia"]);
  assert.deepEqual(await bia.call("contar_usuarios", []), [true, 1]);
});
