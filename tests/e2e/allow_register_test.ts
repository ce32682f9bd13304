/**
 * The binder's `--allow-register`: registrations (and removals) from
 * loopback by default, and from the given networks; lookups stay open.
 *
 * A real refusal needs a caller that is not on loopback: the refusal goes
 * through the binder's real HTTP handler in-process, with the caller's address
 * as the connection would give it; the subprocess tests cover the command line
 * and the default; ownership and the registration key are also tested across
 * hosts (network namespaces, tests/helpers/netns.ts), against the real programs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Binder, binderMethods, parseNetwork } from "../../lib/mod.ts";
import { parseXmlRpc, xmlRpcHandler, type XmlRpcValue } from "../../lib/mod.ts";
import { Lan, lanTest } from "../helpers/netns.ts";
import {
  assertUsageError,
  BINDER_PERMISSIONS,
  escapeRegExp,
  runScript,
  scriptCommand,
  SERVER_PERMISSIONS,
  silentLog,
  startBinder,
} from "../helpers/programs.ts";

const TIMEOUT_MS = 30_000;

Deno.test("--allow-register parses CIDR networks and single addresses, IPv4 and IPv6", () => {
  for (
    const [text, normalized] of [
      ["10.0.0.0/8", "10.0.0.0/8"],
      ["10.1.2.3/8", "10.1.2.3/8"],
      ["192.168.0.10", "192.168.0.10/32"],
      [" 192.168.0.0/24 ", "192.168.0.0/24"],
      ["0.0.0.0/0", "0.0.0.0/0"],
      ["fd00::/8", "fd00::/8"],
      ["FE80::1/64", "fe80::1/64"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8:0:0:1:0:0:1/128"],
      ["::/0", "::/0"],
      ["::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"],
    ] as const
  ) assert.equal(parseNetwork(text)?.text, normalized, text);
  assert.deepEqual(parseNetwork("FE80::1/64"), {
    text: "fe80::1/64",
    address: "fe80::1",
    prefix: 64,
    family: "ipv6",
  });
  assert.deepEqual(parseNetwork("10.0.0.7")?.family, "ipv4");
  for (
    const text of [
      "",
      "abc",
      "10.0.0.0/33",
      "10.0.0.0/08",
      "300.0.0.0/8",
      "010.0.0.0/8",
      "10.0.0/8",
      "10.0.0.0/8/1",
      "10.0.0.0/",
      "::1/129",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "fe80::1%eth0/64",
      "fe80::1%eth0",
      "localhost",
    ]
  ) assert.equal(parseNetwork(text), undefined, text);
});

/** A binder whose `--allow-register` is these networks. */
function binderWith(...networks: string[]): Binder {
  return new Binder({
    checkIntervalMs: 3_600_000,
    dropAfterMs: 3_600_000,
    probeTimeoutMs: 1000,
    allowRegister: networks.map((text) => parseNetwork(text)!),
    log: silentLog,
  });
}

Deno.test("who may register: loopback, and addresses in the networks; IPv4-mapped IPv6 is IPv4", () => {
  const table: [networks: string[], allowed: string[], refused: string[]][] = [
    [
      [],
      ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"],
      ["128.0.0.1", "10.0.0.1", "::2", "::", "192.168.0.7", "not an address", ""],
    ],
    [
      ["192.168.0.0/24"],
      ["192.168.0.7", "::ffff:192.168.0.7", "::ffff:c0a8:7", "127.0.0.1", "::1"],
      ["192.168.1.7", "::ffff:192.168.1.7", "fd00::1", "not an address"],
    ],
    [["fd00::/8"], ["fd12:3456::1", "fd12::1%eth0", "FD00::1"], ["fe80::1", "fe80::1%eth0", "192.168.0.7"]],
    [["10.1.2.3/8"], ["10.200.0.1", "10.1.2.3"], ["11.0.0.1"]],
    [["::ffff:10.0.0.0/104"], ["10.1.1.1", "::ffff:10.1.1.1"], ["11.0.0.1"]],
    [["192.168.0.10"], ["192.168.0.10"], ["192.168.0.11"]],
    [["0.0.0.0/0"], ["203.0.113.9"], ["2001:db8::1"]],
    [["::/0"], ["2001:db8::1"], ["203.0.113.9"]],
    [["192.168.0.0/24", "fd00::/8"], ["192.168.0.7", "fd00::5"], ["192.168.1.7", "fe80::1"]],
  ];
  for (const [networks, allowed, refused] of table) {
    const binder = binderWith(...networks);
    for (const address of allowed) assert(binder.mayRegister(address), `${address} in [${networks}]`);
    for (const address of refused) assert(!binder.mayRegister(address), `${address} not in [${networks}]`);
  }
});

/** The binder's real handler, called as the server would for a caller at `address`. */
function binderAt(...networks: string[]) {
  const handler = xmlRpcHandler(binderMethods(binderWith(...networks)));
  return async (address: string, method: string, ...params: XmlRpcValue[]) => {
    const values = params.map((p) =>
      typeof p === "number" ? `<value><int>${p}</int></value>` : `<value><string>${p}</string></value>`
    );
    const body = `<methodCall><methodName>${method}</methodName><params>` +
      values.map((v) => `<param>${v}</param>`).join("") + "</params></methodCall>";
    const response = await handler(
      new Request("http://binder/", { method: "POST", body }),
      { remoteAddr: { transport: "tcp", hostname: address, port: 40000 } },
    );
    const document = parseXmlRpc(await response.text(), "methodResponse");
    assert(document.kind === "response", JSON.stringify(document));
    return document.value as [boolean, unknown];
  };
}

Deno.test("by default only loopback registers and removes; anyone looks up", async () => {
  const call = binderAt();
  const [refused, message] = await call(
    "192.168.0.7",
    "registrar_procedimento",
    "ChatService",
    "192.168.0.7",
    8001,
  );
  assert.equal(refused, false);
  assert.match(message as string, /^Registro recusado: 192\.168\.0\.7 .*--allow-register/);
  assert.equal((await call("192.168.0.7", "buscar_procedimento", "ChatService"))[0], false, "not registered");

  assert.equal(
    (await call("127.0.0.1", "registrar_procedimento", "ChatService", "127.0.0.1", 8001))[0],
    true,
  );
  assert.equal((await call("::1", "registrar_procedimento", "Outro", "127.0.0.1", 8002))[0], true);
  // Lookups and listings stay open to everyone.
  assert.deepEqual(await call("192.168.0.7", "buscar_procedimento", "ChatService"), [true, {
    endereco: "127.0.0.1",
    porta: 8001,
  }]);
  assert.equal((await call("203.0.113.9", "listar_procedimentos"))[0], true);
  // Nor may a stranger remove a service.
  const [removed, why] = await call("192.168.0.7", "remover_procedimento", "ChatService", "127.0.0.1", 8001);
  assert.equal(removed, false);
  assert.match(why as string, /recusado/);
  assert.equal((await call("192.168.0.7", "buscar_procedimento", "ChatService"))[0], true, "still there");
});

Deno.test("--allow-register networks may register too, loopback still may, others still may not", async () => {
  const call = binderAt("192.168.0.0/24", "fd00::/8");
  assert.equal((await call("192.168.0.7", "registrar_procedimento", "A", "192.168.0.7", 8001))[0], true);
  assert.equal(
    (await call("::ffff:192.168.0.8", "registrar_procedimento", "B", "192.168.0.8", 8001))[0],
    true,
  );
  assert.equal((await call("fd00::5", "registrar_procedimento", "C", "fd00::5", 8001))[0], true);
  assert.equal((await call("127.0.0.1", "registrar_procedimento", "D", "127.0.0.1", 8001))[0], true);
  assert.equal((await call("192.168.1.7", "registrar_procedimento", "E", "192.168.1.7", 8001))[0], false);
  assert.equal((await call("192.168.0.7", "remover_procedimento", "A", "192.168.0.7", 8001))[0], true);
});

Deno.test("binder --allow-register: the real binder takes networks and still accepts loopback", async () => {
  await using binder = await startBinder([
    "--allow-register",
    "192.168.0.0/24",
    "--allow-register=fd00::/8",
  ]);
  await binder.program.waitForLine(/Registros aceitos de: loopback, 192\.168\.0\.0\/24, fd00::\/8$/);
  const [ok] = await binder.client.call<[boolean]>("registrar_procedimento", [
    "ChatService",
    "127.0.0.1",
    8001,
  ]);
  assert.equal(ok, true);
  const { stdout } = await runScript("binder.ts", BINDER_PERMISSIONS, ["--help"]);
  assert.match(stdout, /--allow-register REDE/);
});

Deno.test("binder refuses a bad --allow-register with one line and exit code 2", async () => {
  for (const value of ["10.0.0.0/33", "abc", "300.0.0.0/8", "10.0.0.0/8/1", "::1/129", ""]) {
    await assertUsageError(
      "binder.ts",
      BINDER_PERMISSIONS,
      [`--allow-register=${value}`],
      new RegExp(`--allow-register: rede inválida '${escapeRegExp(value)}'`),
    );
  }
  const { code, stderr } = await runScript("binder.ts", BINDER_PERMISSIONS, ["--allow-register"]);
  assert.equal(code, 2);
  assert.match(stderr, /a opção --allow-register precisa de um valor/);
});

// ---------------------------------------------------------------------------
// Hijacking ChatService
// ---------------------------------------------------------------------------

Deno.test("over HTTP: the key travels in X-Chave-Registro, the owner's token comes back as a cookie", async () => {
  const handler = xmlRpcHandler(binderMethods(
    new Binder({
      checkIntervalMs: 3_600_000,
      dropAfterMs: 3_600_000,
      probeTimeoutMs: 1000,
      allowRegister: [parseNetwork("192.168.0.0/24")!],
      registerKey: "chave-da-turma",
      log: silentLog,
    }),
  ));
  const call = async (address: string, headers: Record<string, string>, method: string, port = 8001) => {
    const body =
      `<methodCall><methodName>${method}</methodName><params><param><value>ChatService</value></param>` +
      `<param><value>192.168.0.10</value></param><param><value><int>${port}</int></value></param></params></methodCall>`;
    const response = await handler(
      new Request("http://binder/", { method: "POST", body, headers }),
      { remoteAddr: { transport: "tcp", hostname: address, port: 40000 } },
    );
    const document = parseXmlRpc(await response.text(), "methodResponse");
    assert(document.kind === "response");
    return { result: document.value as [boolean, string], cookie: response.headers.get("set-cookie") };
  };
  assert.match((await call("192.168.0.10", {}, "registrar_procedimento")).result[1], /chave de registro/);
  const registered = await call(
    "192.168.0.10",
    { "X-Chave-Registro": "chave-da-turma" },
    "registrar_procedimento",
  );
  assert.equal(registered.result[0], true);
  const cookie = /^(sessao=[\w-]+);/.exec(registered.cookie ?? "")?.[1];
  assert(cookie, registered.cookie ?? "no cookie");
  // Another host with the key but not the token: refused; the same server from a new address, with its token: ok.
  const key = { "X-Chave-Registro": "chave-da-turma" };
  assert.match(
    (await call("192.168.0.66", key, "remover_procedimento")).result[1],
    /registrado por outro endereço/,
  );
  assert.equal((await call("192.168.0.11", { ...key, cookie }, "remover_procedimento")).result[0], true);
});

lanTest(
  "from another host of the LAN, ChatService can be neither removed, renewed nor joined without the key",
  async () => {
    await using lan = await Lan.create(["a", "b", "c"]);
    const { a, b, c } = lan.hosts;
    const dir = await Deno.makeTempDir({ prefix: "rpc-chat-hijack-" });
    const key = "chave-da-turma-42";
    const script = (host: string, name: string, permissions: string[], args: string[]) =>
      lan.run(host, scriptCommand(name, permissions, args), {
        cwd: dir,
      });
    try {
      const registration = ["--register-key", key];
      const binderArgs = ["--port", "5000", "--allow-register", lan.network, ...registration];
      await using binder = script("a", "binder.ts", BINDER_PERMISSIONS, binderArgs);
      await binder.ready(TIMEOUT_MS);
      const serverArgs = ["--port", "8001", "--db", ":memory:", "--binder", `${a!.address}:5000`];
      await using server = script("c", "server.ts", SERVER_PERMISSIONS, [
        ...serverArgs,
        ...registration,
        "--register-interval",
        "0.2",
      ]);
      await binder.waitForLine(new RegExp(`Registrado: ChatService -> ${c!.address}:8001$`), TIMEOUT_MS);

      // The intruder on B: Python's xmlrpc.client, with and without the key.
      await using intruder = lan.run("b", [
        "python3",
        "-c",
        INTRUDER,
        `${a!.address}:5000`,
        c!.address,
        b!.address,
        key,
      ]);
      assert.equal((await intruder.status).code, 0, intruder.tail(10));
      const results = Object.fromEntries(intruder.lines.map((line) => JSON.parse(line)));
      assert.match(results["add a fake, no key"][1], /pede a chave de registro/);
      assert.match(results["remove the real one, no key"][1], /pede a chave de registro/);
      assert.match(results["remove the real one, with the key"][1], /registrado por outro endereço/);
      assert.match(results["renew the real one, with the key"][1], /registrado por outro endereço/);
      assert.deepEqual(results["look up"], [true, { endereco: c!.address, porta: 8001 }]);
      // A host that has the key and is in --allow-register may serve beside it: that is what the key is for.
      assert.equal(results["add its own, with the key"][0], true);
      // The real server keeps renewing its registration (its token cookie, from its own address).
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.doesNotMatch(server.output, /O binder .* respondeu: Registro recusado/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** The intruder: argv is binder, the real server's host, its own host, the key; one JSON line per attempt. */
const INTRUDER = `
import json, sys, xmlrpc.client
binder, real, own, key = sys.argv[1:5]
class WithKey(xmlrpc.client.Transport):
    def send_headers(self, connection, headers):
        connection.putheader("X-Chave-Registro", key)
        super().send_headers(connection, headers)
plain = xmlrpc.client.ServerProxy("http://%s/" % binder)
keyed = xmlrpc.client.ServerProxy("http://%s/" % binder, transport=WithKey())
for name, call in [
    ("add a fake, no key", lambda: plain.registrar_procedimento("ChatService", own, 8001)),
    ("remove the real one, no key", lambda: plain.remover_procedimento("ChatService", real, 8001)),
    ("remove the real one, with the key", lambda: keyed.remover_procedimento("ChatService", real, 8001)),
    ("renew the real one, with the key", lambda: keyed.registrar_procedimento("ChatService", real, 8001)),
    ("look up", lambda: plain.buscar_procedimento("ChatService")),
    ("add its own, with the key", lambda: keyed.registrar_procedimento("ChatService", own, 8001)),
]:
    print(json.dumps([name, call()]), flush=True)
`;
