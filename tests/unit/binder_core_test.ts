/**
 * The binder's registry, in-process: the `Binder` class that binder.ts
 * serves, with real TCP probes against real sockets. The end-to-end tests in
 * binder_test.ts cover the same through the program and XML-RPC.
 *
 * @module
 */

import assert from "node:assert/strict";
import { render, type Text } from "../../lib/mod.ts";
import { type Answer, Binder, type BinderOptions, parseNetwork } from "../../lib/mod.ts";
import { freePort, listenOnFreePort, silentLog, waitUntil } from "../helpers/programs.ts";

const HOUR = 3_600_000;

function binder(options: Partial<BinderOptions> = {}): Binder {
  return new Binder({
    checkIntervalMs: HOUR,
    dropAfterMs: HOUR,
    probeTimeoutMs: 1000,
    log: silentLog,
    ...options,
  });
}

/** An answer as the original clients read it: its text in Portuguese. */
function pt<T>(answer: Answer<T>): [boolean, unknown] {
  const [ok, payload] = answer;
  return [
    ok,
    typeof payload === "object" && payload !== null && "key" in payload
      ? render(payload as Text, "pt")
      : payload,
  ];
}

/** An answer's text, in Portuguese. */
function said<T>(answer: Answer<T>): string {
  return String(pt(answer)[1]);
}

/** Each endpoint as `name@port state`, in registration order. */
function listing(registry: Binder): string[] {
  return registry.list().map((e) => `${e.name}@${e.port} ${e.state}`);
}

Deno.test("Binder registers, renews, looks up and unregisters", () => {
  const registry = binder();
  const [ok, message] = registry.register(" ChatService ", " 127.0.0.1 ", 8001);
  assert.equal(ok, true);
  assert.equal(render(message, "pt"), "Procedimento 'ChatService' registrado em 127.0.0.1:8001.");
  assert.equal(render(message, "en"), "Service 'ChatService' registered at 127.0.0.1:8001.");
  assert.deepEqual(registry.lookup("ChatService"), [true, { endereco: "127.0.0.1", porta: 8001 }]);
  assert.deepEqual(registry.lookup(" ChatService "), [true, { endereco: "127.0.0.1", porta: 8001 }]);

  // Registering again renews the one registration.
  const [registered] = registry.list();
  assert.equal(registered!.state, "new");
  assert.deepEqual(pt(registry.register("ChatService", "127.0.0.1", 8001)), [
    true,
    "Procedimento 'ChatService' já estava registrado em 127.0.0.1:8001; registro renovado.",
  ]);
  assert.deepEqual(listing(registry), ["ChatService@8001 alive"]);
  assert(registered!.lastSeen >= registered!.registeredAt);

  assert.deepEqual(pt(registry.lookup("Nada")), [false, "Procedimento 'Nada' não encontrado."]);
  // Only the exact endpoint is removed.
  assert.equal(registry.unregister("ChatService", "127.0.0.1", 8002)[0], false);
  assert.equal(registry.unregister("Outro", "127.0.0.1", 8001)[0], false);
  assert.deepEqual(pt(registry.unregister("ChatService", "127.0.0.1", 8001)), [
    true,
    "Procedimento 'ChatService' em 127.0.0.1:8001 removido.",
  ]);
  assert.deepEqual(pt(registry.unregister("ChatService", "127.0.0.1", 8001)), [
    false,
    "Procedimento 'ChatService' não está registrado em 127.0.0.1:8001.",
  ]);
  assert.equal(registry.lookup("ChatService")[0], false);
  assert.deepEqual(registry.list(), []);
});

Deno.test("Binder rotates lookups among the endpoints of a name, in turn", () => {
  const registry = binder();
  for (const port of [9001, 9002, 9003]) registry.register("Eco", "127.0.0.1", port);
  registry.register("Outro", "127.0.0.1", 9100);
  const ports = Array.from({ length: 7 }, () => {
    const [ok, found] = registry.lookup("Eco");
    assert(ok);
    return found.porta;
  });
  assert.deepEqual(ports, [9001, 9002, 9003, 9001, 9002, 9003, 9001]);
  // Each name turns on its own.
  assert.deepEqual(registry.lookup("Outro"), [true, { endereco: "127.0.0.1", porta: 9100 }]);
  // One removed: the others still take turns.
  registry.unregister("Eco", "127.0.0.1", 9002);
  const rest = new Set(
    Array.from({ length: 4 }, () => (registry.lookup("Eco")[1] as { porta: number }).porta),
  );
  assert.deepEqual([...rest].sort(), [9001, 9003]);
});

Deno.test("Binder refuses bad names, hosts and ports, and takes the limits", () => {
  const registry = binder();
  for (
    const [name, host, port, message] of [
      ["", "127.0.0.1", 8001, /^Nome inválido/],
      ["   ", "127.0.0.1", 8001, /^Nome inválido/],
      ["x".repeat(101), "127.0.0.1", 8001, /^Nome inválido/],
      ["a\nb", "127.0.0.1", 8001, /^Nome inválido/],
      ["a\u0007", "127.0.0.1", 8001, /^Nome inválido/],
      ["X", "", 8001, /^Endereço inválido/],
      ["X", "  ", 8001, /^Endereço inválido/],
      ["X", "a b", 8001, /^Endereço inválido/],
      ["X", "host/path", 8001, /^Endereço inválido/],
      ["X", "h\u0000", 8001, /^Endereço inválido/],
      ["X", "h".repeat(256), 8001, /^Endereço inválido/],
      ["X", "127.0.0.1", 0, /^Porta inválida: 0 /],
      ["X", "127.0.0.1", -1, /^Porta inválida/],
      ["X", "127.0.0.1", 65536, /^Porta inválida/],
      ["X", "127.0.0.1", 80.5, /^Porta inválida/],
      ["X", "127.0.0.1", NaN, /^Porta inválida/],
    ] as const
  ) {
    const [ok, text] = pt(registry.register(name, host, port));
    assert.equal(ok, false, `${JSON.stringify(name)} ${JSON.stringify(host)} ${port}`);
    assert.match(String(text), message);
  }
  assert.deepEqual(registry.list(), [], "nothing registered");
  for (
    const [name, host, port] of [
      ["x".repeat(100), "127.0.0.1", 1],
      ["Olá, serviço", "h".repeat(255), 65535],
      ["X", "fd00::1", 8001],
      ["X", "chat.lan", 8001],
    ] as const
  ) assert.equal(registry.register(name, host, port)[0], true, `${name} ${host} ${port}`);
});

Deno.test("Binder probes: a live endpoint stays, a silent one is skipped, then dropped", async () => {
  using live = listenOnFreePort();
  const dead = freePort();
  const patient = binder({ dropAfterMs: HOUR });
  patient.register("ChatService", "127.0.0.1", live.addr.port);
  patient.register("ChatService", "127.0.0.1", dead);
  assert.deepEqual(listing(patient), [`ChatService@${live.addr.port} new`, `ChatService@${dead} new`]);

  await patient.checkLiveness();
  // Silent, but not yet for long: kept, listed as such, and not handed out.
  assert.deepEqual(listing(patient), [
    `ChatService@${live.addr.port} alive`,
    `ChatService@${dead} silent`,
  ]);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(patient.lookup("ChatService"), [true, { endereco: "127.0.0.1", porta: live.addr.port }]);
  }
  // A server that registers again is back in the rotation.
  patient.register("ChatService", "127.0.0.1", dead);
  const ports = new Set(
    [1, 2, 3, 4].map(() => (patient.lookup("ChatService")[1] as { porta: number }).porta),
  );
  assert.deepEqual(ports, new Set([live.addr.port, dead]));

  // Silent for longer than dropAfterMs (here at once): dropped; the live one stays.
  const strict = binder({ dropAfterMs: 0 });
  strict.register("ChatService", "127.0.0.1", live.addr.port);
  strict.register("ChatService", "127.0.0.1", dead);
  await strict.checkLiveness();
  assert.deepEqual(listing(strict), [`ChatService@${live.addr.port} alive`]);
  // The last endpoint of a name dropped: the name is gone.
  strict.register("Outro", "127.0.0.1", dead);
  await strict.checkLiveness();
  assert.deepEqual(pt(strict.lookup("Outro")), [false, "Procedimento 'Outro' não encontrado."]);
});

Deno.test("Binder probes on its own between start and stop", async () => {
  const live = listenOnFreePort();
  const registry = binder({ checkIntervalMs: 20, dropAfterMs: 0 });
  registry.register("A", "127.0.0.1", live.addr.port);
  registry.register("B", "127.0.0.1", freePort());
  registry.start();
  registry.start(); // Still one timer, which stop() stops.
  try {
    await waitUntil(() => listing(registry).join() === `A@${live.addr.port} alive`, "B dropped, A probed");
    live.close();
    // Nothing left to probe, so no probe is in flight when the timer stops.
    await waitUntil(() => registry.list().length === 0, "A dropped once it stops answering");
  } finally {
    registry.stop();
  }
  // Stopped: five intervals later, a dead endpoint is still there, never probed.
  registry.register("C", "127.0.0.1", freePort());
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(listing(registry).map((e) => e.replace(/@\d+/, "")), ["C new"]);
});

// ---------------------------------------------------------------------------
// Hardening: probes, caps, ownership, the key, the log
// ---------------------------------------------------------------------------

/** A caller at `address`, with what it presents; the token a registration hands it is kept. */
function registrant(address: string, presents: { token?: string; key?: string } = {}) {
  const from = {
    address,
    ...presents,
    given: undefined as string | undefined,
    setToken(token: string) {
      from.given = token;
    },
  };
  return from;
}

/** A log that keeps its lines. */
function keptLog() {
  const lines: string[] = [];
  const keep = (line: string) => void lines.push(line);
  return { lines, log: { info: keep, warn: keep, error: keep } };
}

Deno.test("Binder probes at most maxProbes at once, and each host:port once a round", async () => {
  const probed: string[] = [];
  let running = 0;
  let most = 0;
  const registry = binder({
    maxProbes: 4,
    maxPerSource: 1000,
    maxPerName: 1000,
    probe: async (host, port) => {
      probed.push(`${host}:${port}`);
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      return port !== 9999;
    },
  });
  // The attack: many names, all pointing at the chat server's port; and some other endpoints.
  for (let i = 0; i < 40; i++) registry.register(`Falso${i}`, "127.0.0.1", 8001);
  registry.register("Caixa", "LOCALHOST", 8001);
  registry.register("caixa", "localhost", 8001);
  for (let port = 9000; port < 9010; port++) registry.register("Outro", "127.0.0.1", port);
  registry.register("Morto", "127.0.0.1", 9999);
  await registry.checkLiveness();
  assert.equal(probed.filter((key) => key === "127.0.0.1:8001").length, 1, "the chat port probed once");
  assert.equal(probed.length, new Set(probed).size, `probed twice in a round: ${probed}`);
  assert.equal(probed.length, 1 + 1 + 10 + 1);
  assert.equal(most, 4, "at most maxProbes at once, and that many");
  // What one probe found holds for every name on that endpoint.
  assert(registry.list().every((e) => e.state === (e.port === 9999 ? "silent" : "alive")));
  await registry.checkLiveness();
  assert.equal(probed.length, 2 * 13, "one probe per endpoint in the second round too");
});

Deno.test("Binder caps registrations per name and per source, and says which limit", () => {
  const { lines, log } = keptLog();
  const registry = binder({
    maxPerName: 3,
    maxPerSource: 5,
    allowRegister: [parseNetwork("192.168.0.0/24")!],
    log,
  });
  for (let port = 1; port <= 3; port++) assert.equal(registry.register("Eco", "127.0.0.1", port)[0], true);
  assert.deepEqual(pt(registry.register("Eco", "127.0.0.1", 4)), [
    false,
    "Registro recusado: 'Eco' já tem 3 endereços registrados (limite --max-per-name).",
  ]);
  assert.equal(registry.register("A", "127.0.0.1", 5)[0], true);
  assert.equal(registry.register("B", "127.0.0.1", 6)[0], true);
  // Every loopback address is the same machine: the same source.
  assert.deepEqual(pt(registry.register("C", "127.0.0.1", 7, registrant("127.0.0.9"))), [
    false,
    "Registro recusado: 127.0.0.9 já registrou 5 endereços (limite --max-per-source).",
  ]);
  assert.equal(registry.register("C", "127.0.0.1", 7, registrant("::1"))[0], false);
  // Renewing is not registering more; another source has its own count; removing frees one.
  assert.equal(registry.register("A", "127.0.0.1", 5)[0], true);
  assert.equal(registry.register("C", "192.168.0.7", 7, registrant("192.168.0.7"))[0], true);
  assert.equal(registry.unregister("A", "127.0.0.1", 5)[0], true);
  assert.equal(registry.register("D", "127.0.0.1", 7)[0], true);
  assert(
    lines.some((line) => /--max-per-name/.test(line)) && lines.some((line) => /--max-per-source/.test(line)),
  );
});

Deno.test("Binder caps the endpoints in all, however many sources a network has", () => {
  const { lines, log } = keptLog();
  const registry = binder({ maxEndpoints: 3, allowRegister: [parseNetwork("10.0.0.0/24")!], log });
  for (let i = 1; i <= 3; i++) {
    assert.equal(registry.register(`S${i}`, `10.0.0.${i}`, 8000, registrant(`10.0.0.${i}`))[0], true);
  }
  assert.deepEqual(pt(registry.register("S4", "10.0.0.4", 8000, registrant("10.0.0.4"))), [
    false,
    "Registro recusado: o binder já tem 3 endereços registrados (limite --max-endpoints).",
  ]);
  // Renewing is not registering more; a removal makes room.
  assert.equal(registry.register("S1", "10.0.0.1", 8000, registrant("10.0.0.1"))[0], true);
  assert.equal(registry.unregister("S2", "10.0.0.2", 8000, registrant("10.0.0.2"))[0], true);
  assert.equal(registry.register("S4", "10.0.0.4", 8000, registrant("10.0.0.4"))[0], true);
  assert(lines.some((line) => /--max-endpoints/.test(line)));
});

Deno.test("Binder ownership: only the registrant's address or token renews and removes", () => {
  const registry = binder({ allowRegister: [parseNetwork("192.168.0.0/24")!] });
  const server = registrant("192.168.0.10");
  assert.equal(registry.register("ChatService", "192.168.0.10", 8001, server)[0], true);
  const token = server.given!;
  assert.match(token, /^[\w-]{24}$/);

  // Another host of the allowed network: may neither renew nor remove the real one.
  const intruder = registrant("192.168.0.66");
  const notYours =
    /^Registro recusado: 'ChatService' em 192\.168\.0\.10:8001 foi registrado por outro endereço/;
  assert.match(said(registry.register("ChatService", "192.168.0.10", 8001, intruder)), notYours);
  assert.match(said(registry.unregister("ChatService", "192.168.0.10", 8001, intruder)), notYours);
  assert.match(
    said(registry.unregister(
      "ChatService",
      "192.168.0.10",
      8001,
      registrant("192.168.0.66", { token: "x".repeat(24) }),
    )),
    notYours,
  );
  assert.equal(intruder.given, undefined, "no token for a refused caller");
  assert.deepEqual(registry.lookup("ChatService"), [true, { endereco: "192.168.0.10", porta: 8001 }]);
  // The same machine as loopback is not the registrant either: ::1 and 127.0.0.1 are one source, not this one.
  assert.match(said(registry.unregister("ChatService", "192.168.0.10", 8001)), notYours);

  // A new endpoint under a name another address registered: from --allow-register networks only.
  assert.match(
    said(registry.register("ChatService", "127.0.0.1", 9000)),
    /^Registro recusado: 'ChatService' foi registrado por outro endereço; 127\.0\.0\.1 só pode somar-se/,
  );
  assert.equal(registry.register("ChatService", "192.168.0.66", 9000, intruder)[0], true);

  // The registrant from another address (its address changed) holds the token: it renews and removes.
  const moved = registrant("192.168.0.11", { token });
  assert.equal(registry.register("ChatService", "192.168.0.10", 8001, moved)[0], true);
  assert.equal(moved.given, token, "the same token handed back");
  assert.equal(registry.unregister("ChatService", "192.168.0.10", 8001, moved)[0], true);
  assert.deepEqual(registry.list().map((e) => `${e.owner} ${e.host}:${e.port}`), [
    "192.168.0.66 192.168.0.66:9000",
  ]);
});

Deno.test("Binder --register-key: callers from outside loopback must present it; loopback need not", () => {
  const registry = binder({ allowRegister: [parseNetwork("10.0.0.0/8")!], registerKey: "chave-da-turma" });
  assert.match(
    said(registry.register("ChatService", "10.0.0.5", 8001, registrant("10.0.0.5"))),
    /^Registro recusado: este binder pede a chave de registro .* nenhuma foi enviada\.$/,
  );
  assert.match(
    said(
      registry.register("ChatService", "10.0.0.5", 8001, registrant("10.0.0.5", { key: "chave-da-turmA" })),
    ),
    /a chave enviada está errada\.$/,
  );
  assert.equal(
    registry.register("ChatService", "10.0.0.5", 8001, registrant("10.0.0.5", { key: "chave-da-turma" }))[0],
    true,
  );
  // Removing asks for it too; the original Python server, on loopback, has none and needs none.
  assert.equal(registry.unregister("ChatService", "10.0.0.5", 8001, registrant("10.0.0.5"))[0], false);
  assert.equal(registry.register("Original", "127.0.0.1", 8002)[0], true);
  // Outside --allow-register, the key is not enough.
  assert.match(
    said(registry.register("X", "172.16.0.1", 1, registrant("172.16.0.1", { key: "chave-da-turma" }))),
    /não pode registrar nem remover serviços neste binder/,
  );
});

Deno.test("Binder log: caller-given text clipped and escaped, failed lookups and refusals counted past 20", () => {
  const { lines, log } = keptLog();
  const registry = binder({ log });
  // An absurd name is refused before anything else, and never logged.
  assert.match(said(registry.lookup("x".repeat(1_000_000))) as string, /^Nome inválido/);
  assert.match(
    said(registry.lookup("a\nINFO Registrado: ChatService -> 6.6.6.6:80")) as string,
    /^Nome inválido/,
  );
  assert.equal(lines.length, 0);
  assert.equal(registry.register(`Serviço\u2028${"y".repeat(90)}`, "127.0.0.1", 1)[0], true);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^Registrado: Serviço\\u\{2028\}y{56}\.\.\. \(98 caracteres\) -> 127\.0\.0\.1:1$/);
  lines.length = 0;
  for (let i = 0; i < 500; i++) registry.lookup(`nada-${i}-${"z".repeat(90)}`);
  assert.equal(lines.length, 20, "20 lines of failed lookups in a window, then silence");
  assert(lines.every((line) => line.length < 120), lines[0] ?? "");
});
