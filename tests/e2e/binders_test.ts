/**
 * No single binder: `--binder h1,h2` on server and client. The list's
 * parsing in-process; the programs themselves against two real binders, one
 * of them killed; and a session carried by {@linkcode XmlRpcClient}'s
 * `cookiesFrom` to another instance of the service.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  BadAddress,
  parseHostPortList,
  reasonOf,
  REASONS_HEADER,
  type Result,
  XmlRpcClient,
} from "../../lib/mod.ts";
import { chatOn, servedChat } from "../helpers/core.ts";
import {
  assertUsageError,
  backInRoom,
  CLIENT_PERMISSIONS,
  escapeRegExp,
  type RunningBinder,
  said,
  SERVER_PERMISSIONS,
  startBinder,
  startClient,
  startServer,
  waitUntil,
} from "../helpers/programs.ts";

// ---------------------------------------------------------------------------
// In-process
// ---------------------------------------------------------------------------

Deno.test("parseHostPortList: items in order, the default port, brackets for IPv6, spaces around commas", () => {
  assert.deepEqual(parseHostPortList("10.0.0.1:5001, binder-b ,[::1]:7", 5000), [
    { host: "10.0.0.1", port: 5001 },
    { host: "binder-b", port: 5000 },
    { host: "::1", port: 7 },
  ]);
  assert.deepEqual(parseHostPortList("127.0.0.1", 5000), [{ host: "127.0.0.1", port: 5000 }]);
});

Deno.test("parseHostPortList: an invalid or empty item, or one given twice, is a BadAddress naming it", () => {
  for (
    const [text, flaw, item] of [
      ["a,b:x", "invalid", "b:x"],
      ["a:0", "invalid", "a:0"],
      ["a,,b", "empty", "a,,b"],
      ["a,", "empty", "a,"],
      ["", "empty", ""],
      [" , ", "empty", " , "],
      ["a:5000,b,a", "duplicate", "a"],
      ["Binder:5000,binder:5000", "duplicate", "binder:5000"],
    ] as const
  ) {
    assert.throws(() => parseHostPortList(text, 5000), (error: unknown) => {
      assert(error instanceof BadAddress, String(error));
      assert.deepEqual([error.flaw, error.item], [flaw, item], text);
      return true;
    });
  }
  assert.match(
    new BadAddress("duplicate", "a").message,
    /^'a' aparece mais de uma vez na lista$/,
  );
});

Deno.test("cookiesFrom: a client for another address starts with the session, a copy of it", async () => {
  using core = chatOn();
  // Two listeners on one core: two instances that share their sessions.
  await using first = servedChat(core.chat);
  await using second = servedChat(core.chat);
  const reasons = { [REASONS_HEADER]: "1" };
  const ana = first.client(reasons);
  assert.equal((await ana.call<Result<string>>("registrar_usuario", ["ana"]))[0], true);
  const moved = new XmlRpcClient(second.url, { timeoutMs: 5000, headers: reasons, cookiesFrom: ana });
  assert.equal((await moved.call<Result<string>>("manter_sessao", ["ana"]))[0], true);
  // Without the cookie the second instance does not take us for ana.
  const stranger = second.client(reasons);
  assert.equal(reasonOf(await stranger.call<Result<string>>("manter_sessao", ["ana"])), "sessao_invalida");
  // A copy: forgetting the session in one leaves the other's.
  ana.forgetSession();
  assert.equal((await moved.call<Result<string>>("manter_sessao", ["ana"]))[0], true);
});

// ---------------------------------------------------------------------------
// The programs
// ---------------------------------------------------------------------------

Deno.test("bad --binder lists: exit 2 and one clear line, in the client's language too", async () => {
  for (
    const [script, permissions, args, message] of [
      [
        "server.ts",
        SERVER_PERMISSIONS,
        ["--binder", "a,,b"],
        /^server\.ts: --binder: item vazio na lista 'a,,b'/,
      ],
      ["server.ts", SERVER_PERMISSIONS, ["--binder", "a:5000,a"], /--binder: 'a' aparece mais de uma vez/],
      ["server.ts", SERVER_PERMISSIONS, ["--binder", "a,b:x"], /--binder: endereço inválido 'b:x'/],
      ["cliente.ts", CLIENT_PERMISSIONS, ["--binder", "a,"], /--binder: item vazio na lista 'a,'/],
      [
        "cliente.ts",
        CLIENT_PERMISSIONS,
        ["--binder", "h:1,h:1", "--lang", "pt"],
        /'h:1' aparece mais de uma/,
      ],
      [
        "cliente.ts",
        CLIENT_PERMISSIONS,
        ["--binder", "a,,b", "--lang", "en"],
        /--binder: empty item in the list/,
      ],
      [
        "cliente.ts",
        CLIENT_PERMISSIONS,
        ["--lang", "en", "--binder", "a,a:5000"],
        /--binder: 'a:5000' appears more than once in the list/,
      ],
      [
        "cliente.ts",
        CLIENT_PERMISSIONS,
        ["--lang", "en", "--binder", "a,b:x"],
        /--binder: invalid address 'b:x'/,
      ],
    ] as const
  ) {
    await assertUsageError(script, permissions, args, message);
  }
});

/** Where a binder says ChatService is (its port), or undefined. */
async function lookup(binder: RunningBinder): Promise<number | undefined> {
  try {
    const [ok, found] = await binder.client.call<[boolean, { porta: number }]>("buscar_procedimento", [
      "ChatService",
    ]);
    return ok ? found.porta : undefined;
  } catch {
    return undefined;
  }
}

/** A binder started again on the port of one that was killed (the port may linger a moment). */
async function restartBinder(port: number, args: string[] = []): Promise<RunningBinder & AsyncDisposable> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startBinder(["--port", String(port), ...args]);
    } catch (error) {
      if (attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Both binders' addresses, as one `--binder` list. */
function both(a: RunningBinder, b: RunningBinder): { address: string } {
  return { address: `${a.address},${b.address}` };
}

Deno.test("two binders: with the first killed a new client finds the server through the second, which gets it back after a restart", async () => {
  const a = await startBinder();
  const b = await startBinder();
  try {
    await using server = await startServer(both(a, b));
    await waitUntil(async () => await lookup(a) === server.port && await lookup(b) === server.port, "both");
    await server.program.waitForLine(
      new RegExp(`Registrado no binder ${escapeRegExp(a.address)} como ChatService`),
    );
    await server.program.waitForLine(
      new RegExp(`Registrado no binder ${escapeRegExp(b.address)} como ChatService`),
    );

    await a.program.stop("SIGKILL");
    await server.program.waitForLine(new RegExp(`Binder indisponível em ${escapeRegExp(a.address)}`));
    await using ana = startClient(both(a, b), ["--name", "ana", "--room", "geral"]);
    await ana.waitForLine(/^\* Você está na sala geral\. Presentes: ana\.$/);
    assert.match(
      ana.output,
      new RegExp(
        `^\\* Procurando o ChatService nos binders ${escapeRegExp(a.address)}, ${
          escapeRegExp(b.address)
        }\\.\\.\\.$`,
        "m",
      ),
    );
    assert.match(
      ana.output,
      new RegExp(`^\\* O binder em ${escapeRegExp(a.address)} não responde \\(conexão recusada\\)\\.$`, "m"),
    );

    // The second binder starts again, knowing nothing: the server is back in it within a few renewals.
    await b.program.stop("SIGKILL");
    await using fresh = await restartBinder(b.port);
    const restarted = Date.now();
    await waitUntil(
      async () => await lookup(fresh) === server.port,
      "registered again in the restarted binder",
    );
    assert(Date.now() - restarted < 5000, `${Date.now() - restarted} ms with --register-interval 0.2`);

    assert.equal((await server.program.stop("SIGTERM")).code, 0);
    assert.equal(await lookup(fresh), undefined, "unregistered on the way out");
    assert.match(server.program.output, new RegExp(`Removido do binder ${escapeRegExp(b.address)}`));
    assert.doesNotMatch(server.program.output, new RegExp(`Removido do binder ${escapeRegExp(a.address)}`));
    await ana.write("/fim\n");
    assert.equal((await ana.status).code, 0);
  } finally {
    await a.program.stop("SIGKILL");
    await b.program.stop("SIGKILL");
  }
});

Deno.test("clients whose first binder died carry on: through the server's restart they find it by the second", async () => {
  // Quick to drop the dead server's address, so that lookups give the new one.
  const binderArgs = ["--check-interval", "0.1", "--drop-after", "0.5"];
  const a = await startBinder(binderArgs);
  await using b = await startBinder(binderArgs);
  const first = await startServer(both(a, b));
  const dir = first.dir;
  try {
    await using ana = startClient(both(a, b), ["--name", "ana", "--room", "geral"]);
    await ana.waitForLine(/Você está na sala geral/);
    await using bia = startClient(both(a, b), ["--name", "bia", "--room", "geral"]);
    await ana.waitForLine(said("SERVER: bia entrou na sala."));

    await a.program.stop("SIGKILL");
    await ana.write("sem o primeiro binder\n");
    await bia.waitForLine(said("ana: sem o primeiro binder"));

    await first.program.stop("SIGKILL");
    await ana.waitForLine(/^\* Conexão com o servidor perdida/);
    await bia.waitForLine(/^\* Conexão com o servidor perdida/);
    await using second = await startServer(both(a, b), [], { dir });
    const back = backInRoom(second.port, "geral");
    await ana.waitForLine(back, 15_000);
    await bia.waitForLine(back, 15_000);
    for (const client of [ana, bia]) {
      assert.match(client.output, new RegExp(`O binder em ${escapeRegExp(a.address)} não responde`));
    }
    await bia.write("depois da volta\n");
    await ana.waitForLine(said("bia: depois da volta"));
    await ana.write("/msg bia privado depois\n");
    await bia.waitForLine(said("ana -> bia: privado depois"));
    for (const client of [ana, bia]) {
      await client.write("/fim\n");
      assert.equal((await client.status).code, 0);
    }
  } finally {
    await a.program.stop("SIGKILL");
    await first.program.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
