// deno-lint-ignore-file no-control-regex -- an ASCII check
/**
 * The launchers and the build: `deno task start` (start.ts), `start.ps1`
 * (checked with a real PowerShell grammar: tree-sitter-powershell's own
 * .wasm, run by web-tree-sitter), and `deno task compile`.
 *
 * Only the package's .wasm is used. Its install script builds a native Node
 * binding, which `allowScripts.deny` in deno.json declines: Deno then neither
 * runs it nor warns about it when a fresh clone downloads the package.
 */

import assert from "node:assert/strict";
import powershellWasm from "npm:tree-sitter-powershell@0.26.4/tree-sitter-powershell.wasm" with {
  type: "bytes",
};
import { Language, type Node, Parser } from "npm:web-tree-sitter@0.26.8";
import { denoInfo } from "../../tools/client_graph.ts";
import {
  BINDER_PERMISSIONS,
  CLIENT_PERMISSIONS,
  Program,
  ROOT,
  scriptCommand,
  SERVER_PERMISSIONS,
  startClient,
  taskCommand,
  testUnless,
} from "../helpers/programs.ts";
import { classmateLine } from "../../start.ts";
import { lanAddresses, REDIS_CLIENT } from "../../lib/mod.ts";

const decoder = new TextDecoder();

/** The task's command line, from deno.json: what `deno task NAME` runs. */
const task = taskCommand;

async function refused(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return false;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------------------
// deno task start
// ---------------------------------------------------------------------------

/**
 * start.ts as `deno task start` runs it (same permissions) in `dir`: on
 * 127.0.0.1 and free ports unless `args` say otherwise.
 */
async function startIn(dir: string, args: string[], options: { stdin?: "piped" } = {}): Promise<Program> {
  const command = (await task("start")).split(" ");
  assert.deepEqual(command.slice(0, 2), ["deno", "run"]);
  assert.deepEqual(command.at(-1), "start.ts");
  const [deno, ...rest] = scriptCommand("start.ts", command.slice(2, -1), [
    "--local",
    "--binder-port",
    "0",
    "--server-port",
    "0",
    ...args,
  ]);
  return new Program(deno!, rest, { ...options, cwd: dir });
}

/** {@linkcode startIn} a directory of its own, its client on a pipe. */
async function startAll(args: string[]): Promise<{ program: Program; dir: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-start-" });
  const program = await startIn(dir, args, { stdin: "piped" });
  return {
    program,
    dir,
    [Symbol.asyncDispose]: async () => {
      await program[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("deno task start: binder and server in the background, a client in front, all stopped after", async () => {
  assert.deepEqual(
    await task("start"),
    "deno run --allow-run=deno --allow-net=127.0.0.1,0.0.0.0 --allow-sys=networkInterfaces " +
      "--allow-write=binder.log,server.log start.ts",
  );
  await using start = await startAll(["--lang", "pt", "--name", "ana", "--room", "geral"]);
  const { program, dir } = start;
  const [, binderPort] = await program.waitForLine(
    /^Binder pronto em 127\.0\.0\.1:(\d+) \(saída em binder\.log\)\.$/,
  );
  const [, serverPort] = await program.waitForLine(
    /^Servidor pronto em 127\.0\.0\.1:(\d+), registrado no binder/,
  );
  await program.waitForLine(
    new RegExp(
      `^Só nesta máquina \\(--local\\); outro cliente: deno task client --binder 127\\.0\\.0\\.1:${binderPort}$`,
    ),
  );
  // The client's arguments went to the client.
  await program.waitForLine(/^\* Você está na sala geral\. Presentes: ana\.$/);
  await program.write("olá do start\n");
  await program.waitForLine(/^\[\d\d:\d\d:\d\d\] ana: olá do start$/);
  // A second client joins through the same binder, as `deno task client` would.
  await using bia = startClient({ address: `127.0.0.1:${binderPort}` }, ["--name", "bia", "--room", "geral"]);
  await program.waitForLine(/SERVER: bia entrou na sala\.$/);
  await bia.write("oi, ana\n");
  await program.waitForLine(/\] bia: oi, ana$/);

  // The host leaves while bia is still there: told so, and on a pipe the service goes on.
  await program.write("/fim\n");
  await program.waitForLine(/^Ainda há 1 pessoa no chat\.$/);
  await program.waitForLine(/^O serviço continua para os outros até Ctrl-C, SIGTERM ou o fim da entrada\.$/);
  await bia.waitForLine(/\] SERVER: ana saiu da sala\.$/);
  await bia.write("ainda aqui\n");
  await bia.waitForLine(/\] bia: ainda aqui$/);
  assert(!(await refused(Number(serverPort))), "the server must still serve");

  // End of input: the service stops, and bia is told, then says plainly that it cannot reach it.
  await program.closeStdin();
  await bia.waitForLine(/\] SERVER: O servidor de chat foi encerrado\.$/);
  await bia.waitForLine(/^\* Conexão com o servidor perdida \(conexão (encerrada|recusada)\)\./);
  const status = await program.status;
  assert.deepEqual(status.code, 0, program.stderrLines.join("\n"));
  assert.match(program.output, /^Binder e servidor encerrados\.$/m);
  await bia.waitForLine(/^\* O binder em 127\.0\.0\.1:\d+ não responde \(conexão recusada\)\./);
  // Nothing left running.
  assert(await refused(Number(binderPort)), "binder still listening");
  assert(await refused(Number(serverPort)), "server still listening");
  // The logs are in files.
  const binderLog = await Deno.readTextFile(`${dir}/binder.log`);
  assert.match(binderLog, /Binder ouvindo em 127\.0\.0\.1:\d+/);
  assert.match(binderLog, /Binder encerrado\./);
  const serverLog = await Deno.readTextFile(`${dir}/server.log`);
  assert.match(serverLog, /Servidor ouvindo em 127\.0\.0\.1:\d+/);
  assert.match(serverLog, /Aviso de encerramento enviado a 1 sala/);
  assert.match(serverLog, /Servidor encerrado\./);
  assert.match(await Deno.readTextFile(`${dir}/chat_server.log`), /Usuário registrado: ana/);
});

Deno.test("deno task start refuses a bad client flag in one line, before starting anything", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-start-" });
  try {
    for (
      const [args, said] of [
        [["--bogus"], "start.ts: opção desconhecida '--bogus' (veja --help)"],
        [["--name"], "start.ts: a opção --name precisa de um valor (veja --help)"],
        [["--lang", "fr"], "start.ts: --lang deve ser pt ou en, não 'fr' (veja --help)"],
        [["--lang=xx", "--name", "ana"], "start.ts: --lang deve ser pt ou en, não 'xx' (veja --help)"],
        [["--retry", "0"], "start.ts: --retry deve ser um número de 0.01 a 3600, não '0' (veja --help)"],
        [
          ["--attempts", "x"],
          "start.ts: --attempts deve ser um inteiro de 0 a 1000000, não 'x' (veja --help)",
        ],
        [["--binder", "a:1,a:1"], "start.ts: --binder: 'a:1' aparece mais de uma vez na lista (veja --help)"],
        [["--lang", "en", "--bogus"], "start.ts: unknown option '--bogus' (see --help)"],
        [
          ["--lang", "en", "--server-port", "x"],
          "start.ts: --server-port must be an integer from 0 to 65535, not 'x' (see --help)",
        ],
      ] as const
    ) {
      const program = await startIn(dir, [...args]);
      assert.deepEqual((await program.status).code, 2);
      assert.deepEqual(program.stderrLines, [said]);
      assert.deepEqual(program.lines, []);
    }
    // No binder, no server: not even their logs.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task start refuses in one line when a port is taken, and leaves the logs alone", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-start-" });
  try {
    for (const [flag, what] of [["--binder-port", "binder"], ["--server-port", "servidor"]] as const) {
      // What a system already running wrote.
      await Deno.writeTextFile(`${dir}/binder.log`, "o binder que já roda\n");
      await Deno.writeTextFile(`${dir}/server.log`, "o servidor que já roda\n");
      const program = await startIn(dir, [flag, String(taken.addr.port)]);
      const status = await program.status;
      assert.deepEqual(status.code, 1);
      assert.deepEqual(program.stderrLines, [
        `start.ts: a porta ${taken.addr.port} (${what}) já está em uso: o rpc-chat já roda nesta máquina? ` +
        "Nada foi iniciado e binder.log e server.log ficaram como estavam (outras portas: --binder-port, " +
        "--server-port).",
      ]);
      assert.deepEqual(program.lines, []);
      assert.deepEqual(await Deno.readTextFile(`${dir}/binder.log`), "o binder que já roda\n");
      assert.deepEqual(await Deno.readTextFile(`${dir}/server.log`), "o servidor que já roda\n");
    }
  } finally {
    taken.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start.ts finds the LAN addresses and prints the classmates' line", () => {
  const nic = (address: string, family: "IPv4" | "IPv6" = "IPv4"): Deno.NetworkInterfaceInfo => ({
    family,
    name: "eth0",
    address,
    netmask: "",
    scopeid: null,
    cidr: "",
    mac: "",
  });
  assert.deepEqual(
    lanAddresses([
      nic("127.0.0.1"),
      nic("192.168.0.10"),
      nic("169.254.3.4"),
      nic("fe80::1", "IPv6"),
      nic("10.0.0.5"),
      nic("192.168.0.10"),
    ]),
    ["192.168.0.10", "10.0.0.5"],
  );
  assert.deepEqual(
    classmateLine("192.168.0.10", 5000),
    "deno run --allow-net http://192.168.0.10:5000/cliente.ts",
  );
});

// ---------------------------------------------------------------------------
// start.ps1, through a real PowerShell grammar
// ---------------------------------------------------------------------------

await Parser.init();
const powershell = await Language.load(powershellWasm);

function parsePowerShell(source: string): Node {
  const parser = new Parser();
  parser.setLanguage(powershell);
  const tree = parser.parse(source);
  assert(tree, "the parser gave no tree");
  return tree.rootNode;
}

/** Every syntax error (ERROR or MISSING node) as `line:column: text`. */
function syntaxErrors(root: Node): string[] {
  const errors: string[] = [];
  const visit = (node: Node) => {
    if (node.isError || node.isMissing) {
      const { row, column } = node.startPosition;
      errors.push(
        `${row + 1}:${column + 1}: ${node.isMissing ? `missing ${node.type}` : node.text.slice(0, 40)}`,
      );
    }
    for (const child of node.children) if (child) visit(child);
  };
  visit(root);
  return errors;
}

function descendants(node: Node, type: string): Node[] {
  return node.descendantsOfType(type).filter((n): n is Node => n !== null);
}

/** The commands run, in order: name and the words of its argument list (strings unquoted, variables as written). */
function commands(root: Node): { name: string; parameters: string[]; argumentList: string[] }[] {
  return descendants(root, "command").map((command) => {
    const name = command.childForFieldName("command_name")?.text ?? command.child(0)?.text ?? "";
    const elements = command.children.find((c) => c?.type === "command_elements")?.children
      .filter((c): c is Node => c !== null && c.type !== "command_argument_sep") ?? [];
    const parameters = elements.filter((e) => e.type === "command_parameter").map((e) => e.text);
    const listAt = elements.findIndex((e) =>
      e.type === "command_parameter" && /^-ArgumentList$/i.test(e.text)
    );
    const list = listAt >= 0 ? elements[listAt + 1] : undefined;
    const argumentList = list
      ? descendants(list, "unary_expression")
        .filter((u) => u.childCount === 1 && /^(string_literal|variable)$/.test(u.child(0)!.type))
        .map((u) => u.child(0)!.text.replace(/^"(.*)"$/s, "$1").replace(/^'(.*)'$/s, "$1"))
      : [];
    return { name, parameters, argumentList };
  });
}

Deno.test("start.ps1 parses with the PowerShell grammar: binder, wait, server, wait, two clients in windows", async () => {
  const source = await Deno.readTextFile(`${ROOT}start.ps1`);
  const root = parsePowerShell(source);
  assert.deepEqual(syntaxErrors(root), []);
  assert(!root.hasError);
  // Windows PowerShell 5.1 reads a script without a BOM in the legacy code page: keep it ASCII.
  assert.match(source, /^[\x00-\x7f]*$/);

  const steps = commands(root).filter((c) => /^(Start-Process|Wait-Port)$/i.test(c.name));
  const program = (args: string[]) => args.find((a) => a.endsWith(".ts"));
  assert.deepEqual(
    steps.map((s) => s.name === "Wait-Port" ? "Wait-Port" : program(s.argumentList)),
    ["binder.ts", "Wait-Port", "server.ts", "Wait-Port", "cliente.ts", "cliente.ts"],
  );
  const expected: Record<string, string[]> = {
    "binder.ts": BINDER_PERMISSIONS,
    "server.ts": SERVER_PERMISSIONS,
    "cliente.ts": CLIENT_PERMISSIONS,
  };
  for (const step of steps.filter((s) => s.name === "Start-Process")) {
    const args = step.argumentList;
    const script = program(args)!;
    assert.deepEqual(args[0], "run");
    assert.deepEqual(args.slice(1, args.indexOf(script)), expected[script], `permissions of ${script}`);
    // Each in its own window: Start-Process opens one unless told not to.
    assert(!step.parameters.some((p) => /^-NoNewWindow$/i.test(p)), `${script} in its own window`);
    assert(step.parameters.some((p) => /^-FilePath$/i.test(p)));
  }
  // The wait function really exists, and the clients find the binder the script started.
  assert(descendants(root, "function_statement").some((f) => /function\s+Wait-Port/i.test(f.text)));
  for (const step of steps.filter((s) => program(s.argumentList) === "cliente.ts")) {
    assert.deepEqual(step.argumentList.slice(-2), ["--binder", "$binder"]);
  }
});

Deno.test("the PowerShell check fails on a broken script", () => {
  const source = Deno.readTextFileSync(`${ROOT}start.ps1`);
  const broken = {
    "an unclosed @(": source.replace('"--port", "$BinderPort"\n)', '"--port", "$BinderPort"\n'),
    "an unclosed string": source.replace('"Iniciando o binder..."', '"Iniciando o binder...'),
    "a missing brace": source.replace("} finally {", "} finally "),
    "an if without its parenthesis": source.replace(
      "(Get-Command deno -ErrorAction SilentlyContinue)) {",
      "(Get-Command deno -ErrorAction SilentlyContinue) {",
    ),
  };
  for (const [what, text] of Object.entries(broken)) {
    assert.notDeepEqual(text, source, `${what}: the test's edit must apply`);
    assert.notDeepEqual(syntaxErrors(parsePowerShell(text)), [], `${what} must be a syntax error`);
  }
});

// ---------------------------------------------------------------------------
// deno task compile
// ---------------------------------------------------------------------------

Deno.test("deno task compile: each program with its exact permissions; the module graphs resolve, with no npm package", async () => {
  const steps = (await task("compile")).split("&&").map((step) => step.trim().split(/\s+/));
  // The server imports LogTape by a computed specifier (only when it opens its log): compile must embed it.
  // So does the Redis client (only with --store), and the variable it reads.
  const computed = ["npm:@logtape/logtape@2.4.2", "npm:@logtape/file@2.3.10", REDIS_CLIENT];
  const expected: [string, string, string[], string[]][] = [
    ["binder.ts", "dist/binder", BINDER_PERMISSIONS, []],
    ["server.ts", "dist/server", [...SERVER_PERMISSIONS, "--allow-env=REDIS_DEBUG_MAINTENANCE"], computed],
    ["cliente.ts", "dist/cliente", CLIENT_PERMISSIONS, []],
  ];
  assert.deepEqual(steps.length, expected.length);
  const outDir = await Deno.makeTempDir({ prefix: "rpc-chat-dist-" });
  try {
    for (const [i, [script, output, permissions, includes]] of expected.entries()) {
      const step = steps[i]!;
      assert.deepEqual(step.slice(0, 2), ["deno", "compile"]);
      assert.deepEqual(step.at(-1), script);
      const o = step.indexOf("-o");
      assert.deepEqual(step[o + 1], output);
      const flags = step.slice(2, o);
      assert.deepEqual(
        flags.filter((flag) => flag.startsWith("--allow")),
        permissions,
        `permissions of ${script}`,
      );
      assert.deepEqual(
        flags.flatMap((flag, j) => flag === "--include" ? [flags[j + 1]] : []),
        includes,
        `what ${script} embeds besides its graph`,
      );

      // What deno compile embeds: the whole module graph, which must resolve with no error.
      const graph = await denoInfo(`${ROOT}${script}`);
      const errors = graph.modules.filter((m) => m.error);
      assert.deepEqual(errors, [], `${script}: modules that do not resolve`);
      const specifiers = graph.modules.map((m) => m.specifier);
      assert(specifiers.some((s) => s.endsWith("/deps.ts")), `${script} embeds deps.ts`);
      // No npm package loads with a program: a client from a URL needs nothing but Deno and the address.
      assert.deepEqual(
        specifiers.filter((s) => s.startsWith("npm:")),
        [],
        `${script}: npm packages in its graph`,
      );
    }
  } finally {
    await Deno.remove(outDir, { recursive: true });
  }
});

/** Why `deno compile` cannot build a binary here (it fetches the `denort` runtime), or undefined when it can. */
async function compileUnavailable(): Promise<string | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-compile-" });
  try {
    await Deno.writeTextFile(`${dir}/tiny.ts`, "console.log(1);\n");
    const { success, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["compile", "-o", `${dir}/tiny`, `${dir}/tiny.ts`],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (success) return undefined;
    const said = decoder.decode(stderr);
    return /denort|dl\.deno\.land/.test(said)
      ? "deno compile cannot download its denort runtime (dl.deno.land) here"
      : `deno compile fails: ${said.split("\n")[0]}`;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

testUnless(
  await compileUnavailable(),
  "deno task compile builds the three binaries, each answering --help",
  async () => {
    const outDir = await Deno.makeTempDir({ prefix: "rpc-chat-dist-" });
    try {
      for (const step of (await task("compile")).split("&&").map((step) => step.trim().split(/\s+/))) {
        const o = step.indexOf("-o");
        const binary = `${outDir}/${step[o + 1]!.split("/").at(-1)}`;
        const args = [...step.slice(1, o), "-o", binary, `${ROOT}${step.at(-1)}`];
        const compile = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stdout: "null" }).output();
        assert(compile.success, decoder.decode(compile.stderr));
        const help = await new Deno.Command(binary, { args: ["--help"] }).output();
        assert(help.success, `${binary} --help`);
        assert.match(decoder.decode(help.stdout), new RegExp(step.at(-1)!.replace(".", "\\.")));
      }
    } finally {
      await Deno.remove(outDir, { recursive: true });
    }
  },
);
