/**
 * The codec against Python's `xmlrpc.client`, the reference peer, on
 * thousands of seeded random values, both ways, every hop checked:
 *
 * - Python → ours → Python: what we read of Python's document is what Python
 *   reads of it; what Python reads of ours, written again, is the same value.
 * - ours → Python → ours: what Python reads of our document is exactly the
 *   value we wrote; what we read of Python's, written again, is what Python
 *   reads of it, and the value we started with.
 *
 * The differences left, each counted and printed: a whole double within 32
 * bits comes back an int (JavaScript has one number type; we write whole numbers
 * within 32 bits as `<int>`); a CR Python writes raw is read as LF, by Python
 * as by us (XML's end-of-line handling: Python's writer does not escape CR).
 * Struct member order is not compared. Integers past 2^53 never arise:
 * Python writes no integer past 32 bits, and we write every number past
 * 32 bits as a `<double>`, exact as JavaScript holds it.
 *
 * Python's side is `testdata/xmlrpc_peer.py`, one process a batch.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { encodeCall, encodeResponse, parseXmlRpc, type XmlRpcValue } from "../../lib/mod.ts";
import { prng, pythonUnavailable, ROOT, testUnless } from "../helpers/programs.ts";

const SEED = Number(Deno.env.get("CODEC_SEED") ?? 20261203);
const COUNT = 3000;

/** A value as Python's side writes it in JSON, its XML-RPC type kept (see xmlrpc_peer.py). */
type Tag =
  | ["i", string]
  | ["d", string]
  | ["b", boolean]
  | ["s", string]
  | ["n"]
  | ["x", string]
  | ["t", string]
  | ["a", Tag[]]
  | ["m", Record<string, Tag>];

interface PeerOutput {
  generated: { xml: string; value: Tag }[];
  read: ({ value: Tag; xml: string; again: Tag } | { error: string })[];
}

/** One batch through Python: `count` values of its own from `seed`, and what it reads of `documents`. */
async function peer(seed: number, count: number, documents: string[]): Promise<PeerOutput> {
  const child = new Deno.Command("python3", {
    args: [`${ROOT}tests/testdata/xmlrpc_peer.py`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify({ seed, count, documents })));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`xmlrpc_peer.py exited ${code}: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** The harmless differences seen, by kind. */
class Tally {
  readonly counts = new Map<string, number>();
  add(kind: string): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
  }
}

const INT_BACK = "a whole double within 32 bits read back as an int";
const CR_AS_LF = "a CR Python writes raw, read as LF";

function wallClockText(date: Date): string {
  const p = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${p(date.getUTCFullYear(), 4)}-${p(date.getUTCMonth() + 1)}-${p(date.getUTCDate())}T` +
    `${p(date.getUTCHours())}:${p(date.getUTCMinutes())}:${p(date.getUTCSeconds())}`;
}

/**
 * Where our value and Python's differ (a path and the two sides), or undefined when they agree: the same
 * number to the bit (-0 too), text, bytes, wall-clock time, and shape; struct members in any order.
 */
function disagreement(ours: XmlRpcValue, python: Tag, path = "$"): string | undefined {
  const differ = () => `${path}: ours ${Deno.inspect(ours)}, Python's ${JSON.stringify(python)}`;
  switch (python[0]) {
    case "i":
    case "d":
      return typeof ours === "number" && Object.is(ours, Number(python[1])) ? undefined : differ();
    case "b":
    case "s":
      return ours === python[1] ? undefined : differ();
    case "n":
      return ours === null ? undefined : differ();
    case "x":
      return ours instanceof Uint8Array && Buffer.from(ours).toString("base64") === python[1]
        ? undefined
        : differ();
    case "t":
      return ours instanceof Date && wallClockText(ours) === python[1] ? undefined : differ();
    case "a": {
      if (!Array.isArray(ours) || ours.length !== python[1].length) return differ();
      for (let i = 0; i < ours.length; i++) {
        const inner = disagreement(ours[i]!, python[1][i]!, `${path}[${i}]`);
        if (inner) return inner;
      }
      return undefined;
    }
    case "m": {
      if (!isStruct(ours)) return differ();
      const names = Object.keys(ours);
      if (names.length !== Object.keys(python[1]).length) return differ();
      for (const name of names) {
        if (!Object.hasOwn(python[1], name)) return differ();
        const inner = disagreement(ours[name]!, python[1][name]!, `${path}.${JSON.stringify(name)}`);
        if (inner) return inner;
      }
      return undefined;
    }
  }
}

function isStruct(value: XmlRpcValue): value is { [member: string]: XmlRpcValue } {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Date) &&
    !(value instanceof Uint8Array);
}

/**
 * Where Python's value after the trip through us (`after`) differs from Python's before it, or undefined;
 * a whole double below 2^31 that came back an int is counted, not a difference.
 */
function pythonDisagreement(before: Tag, after: Tag, tally: Tally, path = "$"): string | undefined {
  const differ = () => `${path}: ${JSON.stringify(before)} came back ${JSON.stringify(after)}`;
  if (before[0] === "d" && after[0] === "i") {
    const number = Number(before[1]);
    if (Number.isInteger(number) && number >= -(2 ** 31) && number < 2 ** 31 && !Object.is(number, -0)) {
      if (BigInt(after[1]) !== BigInt(number)) return differ();
      tally.add(INT_BACK);
      return undefined;
    }
    return differ();
  }
  if (before[0] !== after[0]) return differ();
  if (before[0] === "a") {
    const items = after[1] as Tag[];
    if (items.length !== before[1].length) return differ();
    for (let i = 0; i < items.length; i++) {
      const inner = pythonDisagreement(before[1][i]!, items[i]!, tally, `${path}[${i}]`);
      if (inner) return inner;
    }
    return undefined;
  }
  if (before[0] === "m") {
    const members = after[1] as Record<string, Tag>;
    const names = Object.keys(before[1]);
    if (names.length !== Object.keys(members).length) return differ();
    for (const name of names) {
      if (!Object.hasOwn(members, name)) return differ();
      const inner = pythonDisagreement(before[1][name]!, members[name]!, tally, `${path}.${name}`);
      if (inner) return inner;
    }
    return undefined;
  }
  return JSON.stringify(before) === JSON.stringify(after) ? undefined : differ();
}

/** What XML makes of a CR that Python writes raw (its writer escapes only `&`, `<` and `>`): LF. */
function asPythonWritesIt(value: XmlRpcValue, tally: Tally): XmlRpcValue {
  if (typeof value === "string") {
    if (!value.includes("\r")) return value;
    tally.add(CR_AS_LF);
    return value.replace(/\r\n?/g, "\n");
  }
  if (Array.isArray(value)) return value.map((item) => asPythonWritesIt(item, tally));
  if (isStruct(value)) {
    const copy: { [member: string]: XmlRpcValue } = {};
    for (const [name, item] of Object.entries(value)) {
      Object.defineProperty(copy, asPythonWritesIt(name, tally) as string, {
        value: asPythonWritesIt(item, tally),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }
  return value;
}

/** Our random values: every type, text with what XML escapes, numbers of every magnitude, -0. */
function ourValues(seed: number): (depth: number) => XmlRpcValue {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const pieces = [
    "a",
    "é",
    "😀",
    "中",
    "<",
    ">",
    "&",
    "]]>",
    "]",
    "\r",
    "\n",
    "\r\n",
    "\t",
    " ",
    '"',
    "'",
    "&amp;",
    "&#13;",
    "\u00a0",
    "\u0085",
    "\u2028",
    "x".repeat(20),
  ];
  const text = () => Array.from({ length: Math.floor(random() * 7) }, () => pick(pieces)).join("");
  const bits = new DataView(new ArrayBuffer(8));
  const number = (): number => {
    const r = random();
    if (r < 0.2) return Math.floor(random() * 2 ** 32) - 2 ** 31;
    if (r < 0.4) return Math.floor((random() - 0.5) * 2 ** Math.floor(random() * 80));
    if (r < 0.5) {
      return pick([
        0,
        -0,
        2 ** 31,
        -(2 ** 31) - 1,
        2 ** 31 - 1,
        -(2 ** 31),
        1e16,
        1e21,
        2 ** 53,
        2 ** 64,
        5e-324,
      ]);
    }
    if (r < 0.7) return (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
    for (;;) { // Any finite double, from its bits.
      bits.setUint32(0, Math.floor(random() * 2 ** 32));
      bits.setUint32(4, Math.floor(random() * 2 ** 32));
      const n = bits.getFloat64(0);
      if (Number.isFinite(n)) return n;
    }
  };
  const value = (depth: number): XmlRpcValue => {
    const r = random();
    if (depth > 3 || r < 0.25) return text();
    if (r < 0.5) return number();
    if (r < 0.54) return random() < 0.5;
    if (r < 0.57) return null;
    if (r < 0.64) {
      const date = new Date(0);
      date.setUTCFullYear(
        1 + Math.floor(random() * 9999),
        Math.floor(random() * 12),
        1 + Math.floor(random() * 28),
      );
      date.setUTCHours(Math.floor(random() * 24), Math.floor(random() * 60), Math.floor(random() * 60), 0);
      return date;
    }
    if (r < 0.67) {
      return Uint8Array.from({ length: Math.floor(random() * 8) }, () => Math.floor(random() * 256));
    }
    if (r < 0.82) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    const struct: { [member: string]: XmlRpcValue } = {};
    for (let i = Math.floor(random() * 4); i > 0; i--) {
      Object.defineProperty(struct, random() < 0.05 ? "__proto__" : text(), {
        value: value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return struct;
  };
  return value;
}

/** A document's one value: a response's, or the one parameter of a call. */
function readOne(xml: string): { value: XmlRpcValue; call: boolean } {
  const call = xml.includes("<methodCall>");
  const document = parseXmlRpc(xml, call ? "methodCall" : "methodResponse");
  if (document.kind === "call") return { value: document.params[0]!, call };
  if (document.kind === "response") return { value: document.value, call };
  throw new Error(`a fault: ${xml}`);
}

function write(value: XmlRpcValue, call: boolean): string {
  return call ? encodeCall("metodo.x", [value]) : encodeResponse(value);
}

testUnless(
  pythonUnavailable(),
  `the codec agrees with Python's xmlrpc.client on ${COUNT} random values each way (CODEC_SEED=${SEED})`,
  async () => {
    const tally = new Tally();
    const value = ourValues(SEED);
    const ours = Array.from({ length: COUNT }, (_, i) => ({ value: value(0), call: i % 2 === 1 }));
    const first = await peer(SEED, COUNT, ours.map(({ value, call }) => write(value, call)));

    // ours → Python → ours.
    ours.forEach(({ value, call }, i) => {
      const read = first.read[i]!;
      if ("error" in read) {
        assert.fail(`Python refused our value #${i} ${Deno.inspect(value)}: ${read.error}`);
      }
      const exact = disagreement(value, read.value);
      if (exact) assert.fail(`Python read our value #${i} otherwise: ${exact}`);
      const back = readOne(read.xml);
      assert.equal(back.call, call);
      const same = disagreement(back.value, read.again);
      if (same) assert.fail(`we read Python's document of value #${i} otherwise than Python: ${same}`);
      const trip = disagreement(back.value, tagOf(asPythonWritesIt(value, tally)));
      if (trip) assert.fail(`value #${i} came back otherwise: ${trip}`);
    });

    // Python → ours → Python.
    const again = first.generated.map(({ xml, value: python }, i) => {
      const read = readOne(xml);
      const same = disagreement(read.value, python);
      if (same) assert.fail(`we read Python's value #${i} otherwise than Python: ${same}\n${xml}`);
      return write(read.value, read.call);
    });
    const second = await peer(SEED, 0, again);
    second.read.forEach((read, i) => {
      if ("error" in read) assert.fail(`Python refused our writing of its value #${i}: ${read.error}`);
      const trip = pythonDisagreement(first.generated[i]!.value, read.value, tally);
      if (trip) assert.fail(`Python's value #${i} came back otherwise: ${trip}\n${again[i]}`);
    });

    console.log("harmless differences:", Object.fromEntries(tally.counts));
    // The random values reach what matters: both differences seen, and no other.
    assert.deepEqual([...tally.counts.keys()].sort(), [CR_AS_LF, INT_BACK].sort());
  },
);

/** Our value as a Tag, for comparing it with what came back (numbers as doubles: compared by value). */
function tagOf(value: XmlRpcValue): Tag {
  if (typeof value === "number") return ["d", Object.is(value, -0) ? "-0" : String(value)];
  if (typeof value === "string") return ["s", value];
  if (typeof value === "boolean") return ["b", value];
  if (value === null) return ["n"];
  if (value instanceof Uint8Array) return ["x", Buffer.from(value).toString("base64")];
  if (value instanceof Date) return ["t", wallClockText(value)];
  if (Array.isArray(value)) return ["a", value.map(tagOf)];
  return ["m", Object.fromEntries(Object.entries(value).map(([name, item]) => [name, tagOf(item)]))];
}
