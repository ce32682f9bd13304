import assert from "node:assert/strict";
import { Deadlines } from "../../lib/mod.ts";

Deno.test("deadlines fire once, no earlier than asked and at most a slot late; cancelled ones never", async () => {
  const deadlines = new Deadlines(20);
  const start = Date.now();
  const fired: [string, number][] = [];
  const done = Promise.withResolvers<void>();
  const mark = (name: string) => () => {
    fired.push([name, Date.now() - start]);
    if (fired.length === 3) done.resolve();
  };
  deadlines.after(30, mark("a"));
  deadlines.after(31, mark("b")); // Same slot as a: one timer.
  const cancel = deadlines.after(30, mark("cancelled"));
  deadlines.after(70, mark("c"));
  cancel();
  cancel(); // Twice is harmless.
  await done.promise;
  assert.deepEqual(fired.map(([name]) => name), ["a", "b", "c"]);
  for (const [name, at] of fired) {
    const asked = name === "c" ? 70 : 30;
    assert.ok(at >= asked - 1 && at <= asked + 20 + 30, `${name} fired at ${at} ms, asked ${asked}`);
  }
});

Deno.test("a slot whose deadlines were all cancelled leaves no timer behind", () => {
  const deadlines = new Deadlines(50);
  const cancels = Array.from(
    { length: 100 },
    (_, i) => deadlines.after(10_000 + i, () => assert.fail("fired")),
  );
  assert.ok(deadlines.slotsInUse >= 2 && deadlines.slotsInUse <= 3, `${deadlines.slotsInUse} slots for 100`);
  for (const cancel of cancels) cancel();
  assert.equal(deadlines.slotsInUse, 0);
});
