/**
 * The server's pieces for the terminal client, in-process: names that could
 * pass for a line's format are refused, private messages reach anyone online
 * (`enviar_privada`), and a restart adds no join notices for the users who
 * were already there.
 *
 * @module
 */

import assert from "node:assert/strict";
import { misleadingName, type Outcome, Reason } from "../../lib/mod.ts";
import { type SqliteChat, type User } from "../../lib/mod.ts";
import { chatOn, userOf } from "../helpers/core.ts";
import { texts } from "../helpers/programs.ts";

/** The reason of a refusal from the chat's core (undefined for a success). */
function outcomeReason(outcome: Outcome<unknown>): string | undefined {
  return outcome[0] ? undefined : outcome[2];
}

/** What a user sees after a cursor, as `origem: texto` or `origem -> destino: texto`. */
async function seen(chat: SqliteChat, user: User, room: string, cursor = 0): Promise<string[]> {
  const result = await chat.waitMessages(user, room, cursor, 0);
  assert(result[0], `waitMessages ${user.name}`);
  return texts(result[1].mensagens);
}

Deno.test("user names that could pass for a line's format are refused (nome_invalido); others are fine", () => {
  using chatted = chatOn();
  const { chat } = chatted;
  for (
    const name of [
      "carlos silva -> bia",
      "carlos => bia",
      "bia: oi",
      "[privada] bia",
      "x \u2192 y", // →
      "x -\uff1e y", // fullwidth >
      "x \uff1a y", // fullwidth colon
      "x -\u1433 y", // a Canadian syllabics letter that looks like >
      "x\ua789 y", // modifier letter colon
      "x \u00bb y", // »
    ]
  ) {
    assert.equal(misleadingName(name), true, name);
    assert.equal(outcomeReason(chat.register(name, "t")), Reason.NAME_INVALID, name);
  }
  for (const name of ["ana maria", "José", "o'neil", "a-b", "a.b_c", "名前", "bia (casa)"]) {
    assert.equal(misleadingName(name), false, name);
    assert.equal(chat.register(name, `t-${name}`)[0], true, name);
  }
  // Rooms keep their rule: only users' names draw lines.
  assert.equal(misleadingName("sala: 1"), true);
});

Deno.test("enviar_privada reaches anyone online, shown in the sender's room and the recipient's; enviar_mensagem keeps its rule", async () => {
  using chatted = chatOn();
  const { chat } = chatted;
  const ana = userOf(chat, "ana");
  const bia = userOf(chat, "bia");
  const caio = userOf(chat, "caio");
  const dani = userOf(chat, "dani");
  await chat.createRoom("geral", ana.token);
  await chat.createRoom("estudos", bia.token);
  await chat.join(ana, "geral");
  await chat.join(bia, "estudos");
  await chat.join(caio, "estudos");

  // The original method: only a member of the sender's room.
  assert.equal(outcomeReason(await chat.send(ana, "geral", "oi", "bia")), Reason.RECIPIENT_ABSENT);

  assert.equal((await chat.sendPrivate(ana, " bia ", "psiu"))[0], true);
  assert.deepEqual((await seen(chat, ana, "geral")).at(-1), "ana -> bia: psiu");
  assert.deepEqual((await seen(chat, bia, "estudos")).at(-1), "ana -> bia: psiu");
  assert.equal((await seen(chat, caio, "estudos")).includes("ana -> bia: psiu"), false);
  // Each sees it once, in the room they follow.
  assert.equal((await seen(chat, bia, "estudos")).filter((m) => m === "ana -> bia: psiu").length, 1);

  // In the same room: stored once.
  await chat.sendPrivate(bia, "caio", "aqui");
  assert.equal((await seen(chat, caio, "estudos")).filter((m) => m === "bia -> caio: aqui").length, 1);

  // Refusals: nobody by that name, someone in no room, a bad text.
  assert.equal(outcomeReason(await chat.sendPrivate(ana, "zeca", "oi")), Reason.RECIPIENT_ABSENT);
  assert.equal(outcomeReason(await chat.sendPrivate(ana, "dani", "oi")), Reason.RECIPIENT_ABSENT);
  assert.equal(outcomeReason(await chat.sendPrivate(ana, "bia", "  ")), Reason.TEXT_EMPTY);
  // A sender in no room reaches the recipient all the same.
  await chat.join(dani, "estudos");
  await chat.leave(dani);
  assert.equal((await chat.sendPrivate(dani, "bia", "de fora"))[0], true);
  assert.deepEqual((await seen(chat, bia, "estudos")).at(-1), "dani -> bia: de fora");
});

Deno.test("a restart adds no join notices for the users who were in the room; newcomers and later joins still get one", async () => {
  const path = Deno.makeTempFileSync({ prefix: "rpc-chat-quiet-", suffix: ".db" });
  try {
    {
      using first = chatOn({}, path);
      const ana = userOf(first.chat, "ana");
      const bia = userOf(first.chat, "bia");
      const caio = userOf(first.chat, "caio");
      await first.chat.createRoom("geral", ana.token);
      for (const user of [ana, bia, caio]) await first.chat.join(user, "geral");
      await first.chat.leave(caio);
    }
    using second = chatOn({}, path);
    const { chat } = second;
    const ana = userOf(chat, "ana");
    const bia = userOf(chat, "bia");
    const caio = userOf(chat, "caio");
    await chat.join(ana, "geral");
    const before = (await seen(chat, ana, "geral")).length;
    await chat.join(bia, "geral");
    await chat.join(caio, "geral");
    const after = (await seen(chat, ana, "geral")).slice(before);
    // ana and bia were there: no notice; caio had left: a notice.
    assert.deepEqual(after, ["SERVER: caio entrou na sala."]);
    // Leaving and coming back is news again.
    await chat.leave(bia);
    await chat.join(bia, "geral");
    assert.deepEqual((await seen(chat, ana, "geral")).slice(-2), [
      "SERVER: bia saiu da sala.",
      "SERVER: bia entrou na sala.",
    ]);
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
  }
});
