/**
 * Many deadlines on few timers. A busy server starts a deadline for every
 * request body it reads and every long wait it holds, thousands a second, and
 * nearly all of them are cancelled: a timer each (`setTimeout` and
 * `clearTimeout`) costs more than the rest of a cheap call's own work.
 * Deadlines that fall in the same slot share one timer instead, at the price
 * of firing up to one slot late.
 *
 * @module
 */

/** Deadlines grouped by slot, one timer per slot in use. */
export class Deadlines {
  readonly #slots = new Map<number, { timer: ReturnType<typeof setTimeout>; due: Set<() => void> }>();

  /** Deadlines fire at most `slotMs` late. */
  constructor(readonly slotMs: number = 50) {}

  /** Slots with a timer running. */
  get slotsInUse(): number {
    return this.#slots.size;
  }

  /** Calls `fire` once, `ms` from now (up to one slot later), unless the returned function cancels it first. */
  after(ms: number, fire: () => void): () => void {
    const slotMs = this.slotMs;
    const key = Math.ceil((Date.now() + ms) / slotMs);
    let slot = this.#slots.get(key);
    if (!slot) {
      const due = new Set<() => void>();
      const timer = setTimeout(() => {
        this.#slots.delete(key);
        for (const callback of due) callback();
      }, Math.max(0, key * slotMs - Date.now()));
      slot = { timer, due };
      this.#slots.set(key, slot);
    }
    const { due, timer } = slot;
    due.add(fire);
    return () => {
      // The last one out stops the slot's timer: nothing is left pending once every deadline is cancelled.
      if (due.delete(fire) && due.size === 0 && this.#slots.get(key)?.due === due) {
        clearTimeout(timer);
        this.#slots.delete(key);
      }
    };
  }
}
