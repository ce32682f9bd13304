/**
 * The cluster across hosts: `server.ts --store redis://...` instances on
 * hosts of their own, made of network namespaces (tests/helpers/netns.ts). Host A
 * runs `redis-server` on its LAN address and the binder; B and C one
 * instance each; D the terminal clients. Everything between them crosses the
 * bridge: clients to binder and instances, instances to binder and Redis,
 * the binder's probes to the instances.
 *
 * Skipped, with the reason in its name, where namespaces cannot be made or
 * `redis-server` is not installed.
 */

import assert from "node:assert/strict";
import { PERMISSIONS } from "../../lib/mod.ts";
import { Lan, LAN_UNAVAILABLE } from "../helpers/netns.ts";
import { REDIS_UNAVAILABLE, RedisServer, testUnless } from "../helpers/redis.ts";
import {
  assertCarriesOn,
  backInRoom,
  BINDER_PERMISSIONS,
  CLIENT_PERMISSIONS,
  clientArgs,
  clientOnEach,
  count,
  escapeRegExp,
  say,
  scriptCommand,
  tempDir,
} from "../helpers/programs.ts";

const TIMEOUT_MS = 30_000;
const BINDER_PORT = 5000;
/** The same port on both instances: they are on different hosts. */
const SERVER_PORT = 8001;

testUnless(
  LAN_UNAVAILABLE ?? REDIS_UNAVAILABLE,
  "cluster across hosts: Redis and binder on A, instances on B and C, clients on D; B killed, its client moves to C",
  async () => {
    await using lan = await Lan.create(["a", "b", "c", "d"]);
    const { a, b, c } = lan.hosts;
    await using redis = await RedisServer.start({ host: a!.address, prefix: lan.prefix("a") });

    const binderAddress = `${a!.address}:${BINDER_PORT}`;
    await using binder = lan.run(
      "a",
      scriptCommand("binder.ts", BINDER_PERMISSIONS, [
        ...["--port", String(BINDER_PORT), "--allow-register", lan.network],
        ...["--check-interval", "0.1", "--drop-after", "0.5"],
      ]),
    );
    await binder.ready(TIMEOUT_MS);

    // One instance on B and one on C, on every interface, each in a directory of its own (its log).
    await using dirB = await tempDir("rpc-chat-cluster-lan-");
    await using dirC = await tempDir("rpc-chat-cluster-lan-");
    const instance = (host: string, dir: string) =>
      lan.run(
        host,
        scriptCommand("server.ts", PERMISSIONS.clusterServer, [
          ...["--host", "0.0.0.0", "--port", String(SERVER_PORT)],
          ...["--store", redis.url, "--binder", binderAddress],
        ]),
        { cwd: dir },
      );
    await using onB = instance("b", dirB.path);
    await using onC = instance("c", dirC.path);
    const addressB = `${b!.address}:${SERVER_PORT}`;
    const addressC = `${c!.address}:${SERVER_PORT}`;
    for (const [program, address] of [[onB, addressB], [onC, addressC]] as const) {
      // Each advertises its own LAN address, found by itself.
      await program.waitForLine(
        new RegExp(
          `Registrado no binder ${escapeRegExp(binderAddress)} como ChatService em ${escapeRegExp(address)}$`,
        ),
        TIMEOUT_MS,
      );
    }

    // Clients on D until each instance has one (the binder hands them out in turn), in one room.
    await using clients = await clientOnEach(
      (name) =>
        lan.run(
          "d",
          scriptCommand(
            "cliente.ts",
            CLIENT_PERMISSIONS,
            clientArgs({ address: binderAddress }, ["--name", name, "--room", "geral"]),
          ),
          { stdin: "piped" },
        ),
      [addressB, addressC],
      "geral",
      TIMEOUT_MS,
    );
    const moving = clients.on.get(addressB)!;
    const staying = clients.on.get(addressC)!;
    await say(moving, staying, "antes da queda, de B");
    await say(staying, moving, "antes da queda, de C");

    // B's instance dies; its client goes on through C's with the same session.
    await onB.stop("SIGKILL");
    await assertCarriesOn(
      moving,
      staying,
      [[moving, "antes da queda, de B"], [staying, "antes da queda, de C"]],
      TIMEOUT_MS,
    );
    await moving.client.waitForLine(backInRoom(SERVER_PORT, "geral", c!.address));
    // C's instance took the session as it was: no new registration there either.
    assert.equal(count(onC, new RegExp(`Usuário registrado: ${moving.name}$`)), 0, onC.output);
  },
);
