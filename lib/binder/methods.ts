/**
 * The binder's method table: the two original methods
 * (`registrar_procedimento`, `buscar_procedimento`) and our extensions, in
 * each caller's language; and the live ChatServices as the browser's way in
 * asks for them.
 *
 * @module
 */

import { render, type Text } from "../text/catalogue.ts";
import type { Result } from "../chat/protocol.ts";
import { type Call, type MethodTable, rpc } from "../rpc/dispatcher.ts";
import type { ChatServices } from "../web/entry.ts";
import type { Answer, Binder, EndpointState, Registrant } from "./registry.ts";

/** A state as the wire says it (`listar_procedimentos`' `estado`). */
const STATE_ON_THE_WIRE: Readonly<Record<EndpointState, string>> = {
  new: "novo",
  alive: "vivo",
  silent: "sem resposta",
};

/** An answer in the caller's language: a refusal's text rendered. */
function inWords<T>(call: Call, answer: Answer<T>): Result<T> {
  return answer[0] ? answer : [false, render(answer[1], call.language)];
}

/** An answer whose payload is a text too (either way a text), in the caller's language. */
function saying(call: Call, answer: Answer<Text>): Result<string> {
  return [answer[0], render(answer[1], call.language)] as Result<string>;
}

/** The caller of a registration or removal, as the binder sees it. */
function registrant(call: Call): Registrant {
  return {
    address: call.remoteAddress,
    token: call.session,
    key: call.registerKey,
    setToken: (token) => call.setSession(token),
  };
}

/** The binder's method table: the two original methods and our extensions. */
export function binderMethods(binder: Binder): MethodTable {
  return {
    registrar_procedimento: rpc(
      "Registra (ou renova) um serviço: [true, msg] ou [false, msg].",
      [["nome", "string"], ["endereco", "string"], ["porta", "int"]],
      (call, nome, endereco, porta) => saying(call, binder.register(nome, endereco, porta, registrant(call))),
    ),
    buscar_procedimento: rpc(
      "Busca um serviço vivo: [true, {endereco, porta}] ou [false, msg]. Com vários, alterna entre eles.",
      [["nome", "string"]],
      (call, nome) => inWords(call, binder.lookup(nome)),
    ),
    remover_procedimento: rpc(
      "Remove o registro de um serviço: [true, msg] ou [false, msg].",
      [["nome", "string"], ["endereco", "string"], ["porta", "int"]],
      (call, nome, endereco, porta) =>
        saying(call, binder.unregister(nome, endereco, porta, registrant(call))),
    ),
    listar_procedimentos: rpc(
      "Lista os registros: [true, [{nome, endereco, porta, idade_s, visto_ha_s, estado}...]].",
      [],
      () => {
        const now = Date.now();
        return [
          true,
          binder.list().map((e) => ({
            nome: e.name,
            endereco: e.host,
            porta: e.port,
            idade_s: Math.floor((now - e.registeredAt) / 1000),
            visto_ha_s: Math.floor((now - e.lastSeen) / 1000),
            estado: STATE_ON_THE_WIRE[e.state],
          })),
        ];
      },
    ),
  };
}

/** The binder's ChatServices as the browser's way in asks for them: its rotation among the live ones. */
export function chatServices(binder: Binder): ChatServices {
  return {
    next() {
      const [ok, found] = binder.lookup("ChatService");
      return ok ? { host: found.endereco, port: found.porta } : undefined;
    },
    count: () => binder.list().filter((endpoint) => endpoint.name === "ChatService").length,
  };
}
