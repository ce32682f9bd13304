/**
 * The classroom LAN, across hosts: network namespaces make three machines on
 * one (tests/helpers/netns.ts). Host A runs `deno task start` (start.ts with the
 * task's permissions, its client on a pipe, the default ports); classmates on
 * B and C type the line start.ts prints, loading the client from the binder's
 * URL with no `--binder`, and chat. A server on C registers into a binder on
 * A only when that binder allows the LAN with `--allow-register`.
 *
 * Where namespaces cannot be made (not root, no `ip`), these tests are
 * skipped, and say why.
 */

import assert from "node:assert/strict";
import { Lan, lanTest } from "../helpers/netns.ts";
import {
  BINDER_PERMISSIONS,
  ROOT,
  scriptCommand,
  SERVER_PERMISSIONS,
  taskCommand,
  tempDir,
} from "../helpers/programs.ts";
import { classmateLine } from "../../start.ts";

const TIMEOUT_MS = 30_000;

/** The `deno task start` command line, from deno.json. */
async function startCommand(): Promise<string[]> {
  const words = (await taskCommand("start")).split(" ");
  assert.deepEqual([words[0], words.at(-1)], ["deno", "start.ts"]);
  return [Deno.execPath(), ...words.slice(1, -1), "--no-prompt", `${ROOT}start.ts`];
}

lanTest("LAN: deno task start on host A; classmates on B and C type the printed line and chat", async () => {
  await using lan = await Lan.create(["a", "b", "c"]);
  const { a, b, c } = lan.hosts;
  await using dir = await tempDir("rpc-chat-lan-");
  const env = { NO_COLOR: "1" };
  // The classmates' own module cache, empty: they really load cliente.ts from the binder.
  const classmateEnv = { ...env, DENO_DIR: `${dir.path}/cache` };

  await using start = lan.run("a", [
    ...await startCommand(),
    "--lang",
    "pt",
    "--name",
    "ana",
    "--room",
    "geral",
  ], { stdin: "piped", cwd: dir.path, env });
  await start.waitForLine(/^Binder pronto em 0\.0\.0\.0:5000 /, TIMEOUT_MS);
  await start.waitForLine(/^Servidor pronto em 0\.0\.0\.0:8001, registrado no binder/, TIMEOUT_MS);
  const url = `http://${a!.address}:5000/cliente.ts`;
  await start.waitForLine(new RegExp(`^O binder serve o cliente em ${url.replaceAll(".", "\\.")}$`));
  await start.waitForLine(/^Colegas na rede local entram com:$/);
  const [, line] = await start.waitForLine(/^ {2}(deno run .*)$/);
  assert.deepEqual(line, classmateLine(a!.address, 5000));
  await start.waitForLine(/^\* Você está na sala geral\. Presentes: ana\.$/, TIMEOUT_MS);

  // Exactly the printed line (with the client's own flags after it), on the classmates' hosts.
  const [deno, ...words] = line!.split(" ");
  assert.deepEqual(deno, "deno");
  const classmate = (host: string, name: string) =>
    lan.run(host, [Deno.execPath(), ...words, "--lang", "pt", "--name", name, "--room", "geral"], {
      stdin: "piped",
      cwd: dir.path,
      env: classmateEnv,
    });
  await using bia = classmate("b", "bia");
  await using caio = classmate("c", "caio");
  for (const client of [bia, caio]) {
    // No --binder: the address it was loaded from.
    await client.waitForLine(
      new RegExp(`^\\* Procurando o ChatService no binder ${a!.address}:5000\\.\\.\\.$`),
    );
    await client.waitForLine(
      new RegExp(`^\\* Conectado ao ChatService em ${a!.address}:8001\\.$`),
      TIMEOUT_MS,
    );
    await client.waitForLine(/^\* Você está na sala geral\./, TIMEOUT_MS);
  }
  await bia.waitForLine(/\] SERVER: caio entrou na sala\.$/);
  await bia.write(`oi, aqui é ${b!.address}\n`);
  await caio.waitForLine(new RegExp(`\\] bia: oi, aqui é ${b!.address}$`));
  await caio.write(`oi, aqui é ${c!.address}\n`);
  await bia.waitForLine(new RegExp(`\\] caio: oi, aqui é ${c!.address}$`));
  await start.waitForLine(new RegExp(`\\] caio: oi, aqui é ${c!.address}$`));

  // The host leaves; the others stay, and so does the service (start's input is a pipe).
  await start.write("/fim\n");
  await start.waitForLine(/^Ainda há 2 pessoas no chat\.$/);
  await start.waitForLine(/^O serviço continua para os outros até Ctrl-C, SIGTERM ou o fim da entrada\.$/);
  await bia.write("ainda aqui\n");
  await caio.waitForLine(/\] bia: ainda aqui$/);

  // End of start's input: the service stops, and both are told.
  await start.closeStdin();
  for (const client of [bia, caio]) {
    await client.waitForLine(/\] SERVER: O servidor de chat foi encerrado\.$/, TIMEOUT_MS);
    await client.waitForLine(/^\* Conexão com o servidor perdida \(conexão (encerrada|recusada)\)\./);
  }
  assert.deepEqual((await start.status).code, 0, start.tail(20));
  assert.match(start.output, /^Binder e servidor encerrados\.$/m);
  await bia.waitForLine(
    new RegExp(`^\\* O binder em ${a!.address}:5000 não responde \\(conexão recusada\\)\\.`),
  );
});

lanTest(
  "LAN: a server on host C registers into A's binder with --allow-register for the LAN, not without",
  async () => {
    await using lan = await Lan.create(["a", "b", "c"]);
    const { a, c } = lan.hosts;
    await using dir = await tempDir("rpc-chat-lan-");
    const env = { NO_COLOR: "1" };
    const binder = (port: number, args: string[] = []) =>
      lan.run("a", scriptCommand("binder.ts", BINDER_PERMISSIONS, ["--port", String(port), ...args]), {
        env,
      });
    const server = (port: number, binderPort: number) =>
      lan.run(
        "c",
        scriptCommand("server.ts", SERVER_PERMISSIONS, [
          "--port",
          String(port),
          "--db",
          ":memory:",
          "--binder",
          `${a!.address}:${binderPort}`,
        ]),
        { cwd: dir.path, env },
      );

    await using closed = binder(5000);
    await using open = binder(5001, ["--allow-register", lan.network]);
    await closed.ready(TIMEOUT_MS);
    await open.ready(TIMEOUT_MS);
    await using refused = server(8001, 5000);
    await using accepted = server(8002, 5001);

    await closed.waitForLine(
      new RegExp(`Registro recusado de ${c!.address} \\(fora de --allow-register\\)$`),
      TIMEOUT_MS,
    );
    await refused.waitForLine(
      new RegExp(
        `O binder ${a!.address}:5000 respondeu: Registro recusado: ${c!.address} não pode registrar`,
      ),
      TIMEOUT_MS,
    );
    await open.waitForLine(new RegExp(`Registrado: ChatService -> ${c!.address}:8002$`), TIMEOUT_MS);
    await accepted.waitForLine(
      new RegExp(`Registrado no binder ${a!.address}:5001 como ChatService em ${c!.address}:8002$`),
      TIMEOUT_MS,
    );

    // A classmate on B, loading the client from the open binder, reaches the server on C.
    await using bia = lan.run("b", [
      Deno.execPath(),
      "run",
      "--allow-net",
      `http://${a!.address}:5001/cliente.ts`,
      "--lang",
      "pt",
      "--name",
      "bia",
      "--room",
      "geral",
    ], { stdin: "piped", cwd: dir.path, env: { ...env, DENO_DIR: `${dir.path}/cache` } });
    await bia.waitForLine(new RegExp(`^\\* Conectado ao ChatService em ${c!.address}:8002\\.$`), TIMEOUT_MS);
    await bia.waitForLine(/^\* Você está na sala geral\./, TIMEOUT_MS);
    await bia.write("/fim\n");
    assert.deepEqual((await bia.status).code, 0);
  },
);
