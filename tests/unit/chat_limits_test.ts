/**
 * The chat's hardening in-process: identities that outlive names,
 * the migration to schema 3, one rate limit for every change, the caps, and
 * sweeps in slices. The same attacks against the real program are in
 * server_hardening_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync, Reason, type Refusal } from "../../lib/mod.ts";
import { type Message, type SqliteChat, type User } from "../../lib/mod.ts";
import { chatOn, databaseFile, refusalReason, SCHEMA_2, userOf } from "../helpers/core.ts";

/** Every private message a user may read in a room, from the start. */
async function privateSeen(chat: SqliteChat, user: User, room: string): Promise<string[]> {
  const read = await chat.waitMessages(user, room, 0, 0);
  assert(read[0]);
  return read[1].mensagens.filter((m: Message) => m.tipo === "unicast").map((m) => m.conteudo);
}

Deno.test("identity: a session that ended (silence) or a --compat user's: the next holder of the name is someone else", async () => {
  for (const compat of [false, true]) {
    using chatted = chatOn({ compat, sessionTtlMs: 50 });
    const { chat } = chatted;
    const ana = userOf(chat, "ana");
    // A --compat user proves nothing: the registration itself is the identity.
    chat.register("bia", "token-bia");
    const bia = chat.authorize(compat ? undefined : "token-bia", "bia") as User;
    assert.equal((await chat.createRoom("geral", ana.token))[0], true);
    assert.equal((await chat.createRoom("da bia", compat ? undefined : bia.token))[0], true);
    await chat.join(ana, "geral");
    await chat.join(bia, "geral");
    await chat.send(ana, "geral", "só para a bia", "bia");
    await chat.sendPrivate(bia, "ana", "só para a ana");
    assert.deepEqual(await privateSeen(chat, bia, "geral"), ["só para a bia", "só para a ana"]);
    // bia goes silent; ana keeps the name alive.
    await new Promise((resolve) => setTimeout(resolve, 60));
    chat.authorize("token-ana", "ana");
    chat.sweep();
    assert.equal(refusalReason(chat.authorize(undefined, "bia")), Reason.NOT_REGISTERED);
    chat.register("bia", "token-mallory");
    const mallory = chat.authorize(compat ? undefined : "token-mallory", "bia") as User;
    assert.notEqual(mallory.id, bia.id);
    await chat.join(mallory, "geral");
    assert.deepEqual(await privateSeen(chat, mallory, "geral"), [], compat ? "--compat" : "sessions");
    // ana still reads both ends of hers.
    assert.deepEqual(await privateSeen(chat, ana, "geral"), ["só para a bia", "só para a ana"]);
    // A room made without a session (--compat) is nobody's to delete; bia's is bia's identity's.
    assert.equal(refusalReason(await chat.deleteRoom(mallory, "da bia")), Reason.NOT_CREATOR);
  }
});

Deno.test("schema 2 becomes 3: identity columns; stored private messages are nobody's, stored rooms nobody's to delete", async () => {
  await using file = databaseFile(`${SCHEMA_2}
    INSERT INTO rooms VALUES ('geral', 'bia', 1);
    INSERT INTO messages (room, tipo, origem, destino, conteudo, timestamp) VALUES
      ('geral', 'broadcast', 'ana', 'todos', 'público', 1),
      ('geral', 'unicast', 'ana', 'bia', 'para a bia', 1),
      ('geral', 'unicast', 'bia', 'ana', 'para a ana', 1);
  `);
  {
    using chatted = chatOn({}, file.path);
    const { chat } = chatted;
    const bia = userOf(chat, "bia");
    const ana = userOf(chat, "ana");
    await chat.join(bia, "geral");
    await chat.join(ana, "geral");
    const history = await chat.waitMessages(bia, "geral", 0, 0);
    assert(history[0]);
    assert.deepEqual(history[1].mensagens.filter((m) => m.origem !== "SERVER").map((m) => m.conteudo), [
      "público",
    ]);
    assert.deepEqual(await privateSeen(chat, ana, "geral"), []);
    assert.equal(refusalReason(await chat.deleteRoom(bia, "geral")), Reason.NOT_CREATOR);
  }
  const db = new DatabaseSync(file.path);
  try {
    assert.equal((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version, 5);
    const indexes = (db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'messages%' ORDER BY name",
    ).all() as { name: string }[]).map((row) => row.name);
    assert.deepEqual(indexes, [
      "messages_by_key",
      "messages_by_room",
      "messages_from_identity",
      "messages_public",
      "messages_to_identity",
    ]);
    // Version 2's whole index (room, tipo, id) was made again partial (on kind, as tipo is named now).
    const partial = (db.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%WHERE kind%' ORDER BY name",
    ).all() as { name: string }[]).map((row) => row.name);
    assert.deepEqual(partial, ["messages_from_identity", "messages_public", "messages_to_identity"]);
  } finally {
    db.close();
  }
});

Deno.test("one rate limit for every change: joins, leaves, creations, deletions; registrations by address", async () => {
  using chatted = chatOn({ maxRate: 2 });
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  // A burst of 4 changes: two creations, a join, a deletion; then `devagar` for each kind.
  assert.equal((await chat.createRoom("a", ana.token))[0], true);
  assert.equal((await chat.createRoom("b", ana.token))[0], true);
  assert.equal((await chat.join(ana, "a"))[0], true);
  assert.equal((await chat.deleteRoom(ana, "b"))[0], true);
  assert.equal(refusalReason(await chat.join(ana, "c")), Reason.ROOM_MISSING, "no token taken for a refusal");
  for (
    const change of [
      () => chat.createRoom("c", ana.token),
      () => chat.leave(ana),
      () => chat.deleteRoom(ana, "a"),
    ]
  ) {
    const refused = await change();
    assert.equal(refusalReason(refused), Reason.RATE_LIMITED);
    assert.match((refused as Refusal)[1].key, /actionsLimited/);
  }
  // Messages have a bucket of their own: a user who moved about may still talk.
  assert.equal((await chat.send(ana, "a", "oi", null))[0], true);
  // Joining the room one is in changes nothing and costs nothing.
  assert.equal((await chat.join(ana, "a"))[0], true);
  // Registrations: by address; in-process callers name none.
  for (let i = 0; i < 4; i++) assert.equal(chat.register(`u${i}`, `t${i}`, "10.0.0.1")[0], true);
  assert.equal(refusalReason(chat.register("u4", "t4", "10.0.0.1")), Reason.RATE_LIMITED);
  assert.equal(chat.register("u4", "t4", "10.0.0.2")[0], true);
  assert.equal(chat.register("u5", "t5")[0], true);
  // --compat rooms without a session: the address pays.
  using compat = chatOn({ maxRate: 1, compat: true });
  for (let i = 0; i < 2; i++) {
    assert.equal((await compat.chat.createRoom(`s${i}`, undefined, "10.0.0.1"))[0], true);
  }
  assert.equal(refusalReason(await compat.chat.createRoom("s2", undefined, "10.0.0.1")), Reason.RATE_LIMITED);
});

Deno.test("caps: users, rooms, rooms per creator; a new wait past --max-waits ends the oldest, empty", async () => {
  using chatted = chatOn({ maxUsers: 2, maxRooms: 3, maxRoomsPerUser: 2, maxWaits: 2 });
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  const bia = userOf(chat, "bia");
  assert.equal(refusalReason(chat.register("caio", "t")), Reason.LIMIT_REACHED);
  await chat.createRoom("a1", ana.token);
  await chat.createRoom("a2", ana.token);
  assert.equal(refusalReason(await chat.createRoom("a3", ana.token)), Reason.LIMIT_REACHED);
  await chat.createRoom("b1", bia.token);
  assert.equal(refusalReason(await chat.createRoom("b2", bia.token)), Reason.LIMIT_REACHED);
  // The users' cap counts who is registered: one leaves, one more may come.
  await chat.unregister(bia, "a pedido");
  assert.equal(chat.register("caio", "t")[0], true);

  const joined = await chat.join(ana, "a1");
  assert(joined[0]);
  const { cursor } = joined[1];
  const order: string[] = [];
  const waits = [1, 2, 3].map((n) =>
    chat.waitMessages(ana, "a1", cursor, 10_000).then((got) => {
      order.push(`wait ${n}`);
      return got;
    })
  );
  assert.deepEqual(await waits[0], [true, { mensagens: [], cursor }]);
  assert.deepEqual(order, ["wait 1"]);
  await chat.send(ana, "a1", "oi", null);
  for (const wait of waits.slice(1)) {
    const got = await wait;
    assert(got[0]);
    assert.deepEqual(got[1].mensagens.map((m) => m.conteudo), ["oi"]);
  }
  // Leaving the service ends the waits left at once.
  const pending = chat.waitMessages(ana, "a1", cursor + 10, 10_000);
  await chat.unregister(ana, "a pedido");
  assert.equal((await pending)[0], true);
});

Deno.test("expiring 20,000 sessions and 5,000 rooms at once never holds the event loop for long", async () => {
  using chatted = chatOn({
    sessionTtlMs: 200,
    roomTtlMs: 200,
    maxUsers: 100_000,
    maxRooms: 100_000,
    maxRoomsPerUser: 100_000,
  });
  const { chat } = chatted;
  const owner = userOf(chat, "dona");
  await Promise.all(Array.from({ length: 5_000 }, (_, i) => chat.createRoom(`sala ${i}`, owner.token)));
  const users: User[] = [];
  for (let i = 0; i < 20_000; i++) users.push(userOf(chat, `u${i}`));
  // A quarter of them in rooms: 5,000 leave notices to store as they go.
  await Promise.all(users.slice(0, 5_000).map((user, i) => chat.join(user, `sala ${i % 50}`)));
  chat.start(50);
  let longest = 0;
  let last = performance.now();
  const started = last;
  while (chat.userCount > 0 || chat.roomCount > 0) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    assert.ok(now - started < 20_000, `still ${chat.userCount} users and ${chat.roomCount} rooms`);
  }
  // A sweep in one piece holds it for 0.9 to 2.4 s at such numbers; slices of 3 ms and the commits of their
  // notices, for tens of ms. The bound sits far from both, so other test files sharing the two cores (and a
  // garbage collection) cannot make it fail, and a sweep in one piece always does.
  assert.ok(longest < 300, `the event loop was held for ${longest.toFixed(1)} ms`);
});
