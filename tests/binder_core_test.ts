/**
 * The binder's registry, in-process: the `Binder` class that binder.ts
 * serves, with real TCP probes against real sockets. The end-to-end tests in
 * binder_test.ts cover the same through the program and XML-RPC.
 *
 * @module
 */

import assert from "node:assert/strict";
import { render, type Text } from "../deps.ts";
import { type Answer, Binder, type BinderOptions } from "../binder.ts";
import { listenOnFreePort, silentLog, waitUntil } from "./test_helpers.ts";

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

/** A loopback port nobody listens on: one that was just free. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return listener.addr.port;
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
  assert.equal(registered!.state, "novo");
  assert.deepEqual(pt(registry.register("ChatService", "127.0.0.1", 8001)), [
    true,
    "Procedimento 'ChatService' já estava registrado em 127.0.0.1:8001; registro renovado.",
  ]);
  assert.deepEqual(listing(registry), ["ChatService@8001 vivo"]);
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
  const dead = closedPort();
  const patient = binder({ dropAfterMs: HOUR });
  patient.register("ChatService", "127.0.0.1", live.addr.port);
  patient.register("ChatService", "127.0.0.1", dead);
  assert.deepEqual(listing(patient), [`ChatService@${live.addr.port} novo`, `ChatService@${dead} novo`]);

  await patient.checkLiveness();
  // Silent, but not yet for long: kept, listed as such, and not handed out.
  assert.deepEqual(listing(patient), [
    `ChatService@${live.addr.port} vivo`,
    `ChatService@${dead} sem resposta`,
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
  assert.deepEqual(listing(strict), [`ChatService@${live.addr.port} vivo`]);
  // The last endpoint of a name dropped: the name is gone.
  strict.register("Outro", "127.0.0.1", dead);
  await strict.checkLiveness();
  assert.deepEqual(pt(strict.lookup("Outro")), [false, "Procedimento 'Outro' não encontrado."]);
});

Deno.test("Binder probes on its own between start and stop", async () => {
  const live = listenOnFreePort();
  const registry = binder({ checkIntervalMs: 20, dropAfterMs: 0 });
  registry.register("A", "127.0.0.1", live.addr.port);
  registry.register("B", "127.0.0.1", closedPort());
  registry.start();
  registry.start(); // Still one timer, which stop() stops.
  try {
    await waitUntil(() => listing(registry).join() === `A@${live.addr.port} vivo`, "B dropped, A probed");
    live.close();
    // Nothing left to probe, so no probe is in flight when the timer stops.
    await waitUntil(() => registry.list().length === 0, "A dropped once it stops answering");
  } finally {
    registry.stop();
  }
  // Stopped: five intervals later, a dead endpoint is still there, never probed.
  registry.register("C", "127.0.0.1", closedPort());
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(listing(registry).map((e) => e.replace(/@\d+/, "")), ["C novo"]);
});
