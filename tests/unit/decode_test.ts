/**
 * The hand-written call decoder of deps.ts against the `sax`-based one it
 * replaced (kept in `testdata/sax_decoder.ts` for this test only): the same
 * value or the same fault code for thousands of seeded valid calls (written by
 * our encoder, by a writer that uses every legal form, and by Python's
 * `xmlrpc.client`) and thousands of seeded mutations of them.
 *
 * Where the new decoder refuses what `sax` let through, the difference is
 * deliberate and listed in {@linkcode DIFFERENCES}; any other difference fails.
 *
 * @module
 */

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  encodeCall,
  Fault,
  FaultCode,
  localWallClock,
  parseXmlRpc,
  type XmlRpcValue,
} from "../../lib/mod.ts";
import { saxParseXmlRpc } from "../testdata/sax_decoder.ts";
import { prng, runPython, swapElementName } from "../helpers/programs.ts";

type Outcome = { value: unknown } | { code: number; message: string };

function outcome(decode: () => unknown): Outcome {
  try {
    return { value: decode() };
  } catch (error) {
    if (error instanceof Fault) return { code: error.code, message: error.message };
    throw error; // Anything but a fault is a bug in the decoder.
  }
}

const decodeNew = (text: string, root: "methodCall" | "methodResponse" = "methodCall") =>
  outcome(() => parseXmlRpc(text, root));
const decodeOld = (text: string, root: "methodCall" | "methodResponse" = "methodCall") =>
  outcome(() => saxParseXmlRpc(text, root));

const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** Mirrors sax's case-insensitive entity names, and the Object.prototype names its entity table inherited. */
function saxTookReference(reference: string): boolean {
  const name = reference.slice(1, -1);
  return /^(lt|gt|amp|quot|apos|#x[0-9a-f]+|#\d+)$/i.test(name) || name in Object.prototype;
}

/** Two outcomes alike: the same value, or the same fault code. */
function alike(a: Outcome, b: Outcome): boolean {
  return "value" in a && "value" in b ? isDeepStrictEqual(a.value, b.value) : "code" in a && "code" in b &&
    a.code === b.code;
}

/** A value with every Date as the wall clock it reads in this process's time zone (see localWallClock). */
function wallClocks(value: unknown): unknown {
  if (value instanceof Date) return localWallClock(value);
  if (Array.isArray(value)) return value.map(wallClocks);
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      Object.defineProperty(copy, key, {
        value: wallClocks((value as Record<string, unknown>)[key]),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }
  return value;
}

/** XML's end-of-line handling: read as a conforming parser reads it. */
const END_OF_LINE = {
  why: "a raw CR (CRLF or alone) in text, CDATA or a name: XML reads it as LF (end-of-line handling, " +
    "XML 1.0, 2.11), and so does the new decoder; sax kept the CR (a CR written &#13; stays one in both)",
  eitherWay: true,
  applies: (text: string, _old: Outcome, now: Outcome) =>
    text.includes("\r") && alike(withWallClocks(decodeOld(text.replace(/\r\n?/g, "\n"))), now),
};

/** An outcome with its Dates as wall clocks (the naive dateTime convention, below). */
function withWallClocks(outcome: Outcome): Outcome {
  return "value" in outcome ? { value: wallClocks(outcome.value) } : outcome;
}

/** The naive dateTime convention. */
const WALL_CLOCK = {
  why: "a naive dateTime: a wall-clock reading in the Date's UTC fields, the same in any time zone; sax " +
    "read it in the process's time zone (the same Date where that zone is UTC)",
  eitherWay: true,
  applies: (text: string, old: Outcome, now: Outcome) =>
    text.includes("dateTime") && alike(withWallClocks(old), now),
};

/**
 * The deliberate differences: where `sax` accepted something XML forbids (or
 * gave another code for it), the new decoder refuses it as malformed XML.
 * Each is recognized by the new decoder's message and checked against the text.
 * And two conventions: XML's end-of-line handling, and naive dateTimes.
 */
const DIFFERENCES: {
  why: string;
  /** Whether the new decoder may be the one that accepts (otherwise it must be the one that refuses). */
  eitherWay?: boolean;
  applies(text: string, old: Outcome, now: Outcome & { code: number; message: string }): boolean;
}[] = [
  {
    why: "<?xml ...?> anywhere but at the very start: XML allows the declaration there only; sax took it " +
      "as a processing instruction anywhere",
    applies: (text, _old, now) =>
      now.code === FaultCode.PARSE_ERROR && now.message.includes("<?xml") &&
      /<\?xml/i.test(text.slice(text.startsWith("\uFEFF") ? 2 : 1)),
  },
  {
    why: "a CDATA section outside the root element: XML allows no text there; sax ignored it",
    applies: (text, _old, now) =>
      now.code === FaultCode.PARSE_ERROR && now.message.includes("CDATA fora") && text.includes("<![CDATA["),
  },
  {
    why: "entity names in another case (&AMP;, &#X41;) or inherited from Object.prototype (&constructor;): " +
      "XML names are case-sensitive and there are five; sax lower-cased names and looked them up in an " +
      "object that inherits Object.prototype (&constructor; became 'function Object() {...}')",
    applies: (_text, _old, now) => {
      const reference = /referência inválida '(&[^']*;)'/.exec(now.message)?.[1];
      return now.code === FaultCode.PARSE_ERROR && reference !== undefined && saxTookReference(reference) &&
        !/^&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#\d+);$/.test(reference);
    },
  },
  {
    why: "a reference to a character XML forbids (&#1;, &#xD800;) where no text may be or in an attribute: " +
      "a malformed reference (-32700) wherever it is; sax produced the character, which was refused as " +
      "text out of place (-32600) or, in an attribute, not looked at",
    applies: (_text, _old, now) => {
      const digits = /referência inválida '&#(x?)([0-9a-fA-F]+);'/.exec(now.message);
      const code = digits ? parseInt(digits[2]!, digits[1] ? 16 : 10) : 0x41;
      return now.code === FaultCode.PARSE_ERROR &&
        NOT_XML_CHAR.test(String.fromCodePoint(Math.min(code, 0x10ffff)));
    },
  },
  {
    why: "text out of place followed by a reference beyond U+10FFFF: the text is reported (-32600), as for " +
      "any other bad reference; sax threw a RangeError there before reporting the text (-32700)",
    applies: (text, old, now) =>
      now.code === FaultCode.INVALID_REQUEST && now.message.includes("texto fora de lugar") &&
      "code" in old && old.code === FaultCode.PARSE_ERROR && text.includes("&#"),
  },
  {
    why: "whitespace after '<' or '</' (< value>): XML allows none; sax skipped it",
    applies: (text, _old, now) =>
      now.code === FaultCode.PARSE_ERROR && /sem nome de elemento/.test(now.message) &&
      /<\/?[ \t\r\n]/.test(text),
  },
  {
    why: "a processing instruction whose '?>' follows another '?' (<?pi x??>): XML ends it there; sax " +
      "missed that end and read on to a later '?>', so it saw another document (or other values)",
    eitherWay: true,
    applies: (text) => /<\?[^]*?\?\?>/.test(text),
  },
  {
    why: "<![CDATA[ in another case (<![cdata[): XML keywords are case-sensitive; sax upper-cased it",
    applies: (text, _old, now) =>
      now.code === FaultCode.PARSE_ERROR && /<!\[(?!CDATA\[)[Cc][Dd][Aa][Tt][Aa]\[/.test(text),
  },
  {
    why: "an attribute given twice, or '<' in an attribute value: XML forbids both; sax kept the first " +
      "value and took '<'",
    applies: (_text, _old, now) =>
      now.code === FaultCode.PARSE_ERROR && /repetido|'<' em um valor de atributo/.test(now.message),
  },
  END_OF_LINE,
  WALL_CLOCK,
];

/** The same value or fault code from both decoders, or a documented difference (returned); throws otherwise. */
function compare(text: string, what: string, root: "methodCall" | "methodResponse" = "methodCall") {
  const old = decodeOld(text, root);
  const now = decodeNew(text, root);
  if ("value" in old && "value" in now && isDeepStrictEqual(now.value, old.value)) return undefined;
  if ("code" in old && "code" in now && old.code === now.code) return undefined;
  const difference = DIFFERENCES.find((d) =>
    ("code" in now || d.eitherWay) && d.applies(text, old, now as Outcome & { code: number; message: string })
  );
  if (!difference && "value" in old && "value" in now) {
    assert.deepStrictEqual(now.value, old.value, `${what}: ${JSON.stringify(text.slice(0, 400))}`);
  }
  if (!difference) {
    assert.fail(
      `${what}: the decoders differ on ${
        JSON.stringify(Deno.env.get("DECODE_FULL") ? text : text.slice(0, 400))
      }\n` +
        `  sax: ${"code" in old ? `${old.code} ${old.message}` : JSON.stringify(old.value)}\n` +
        `  new: ${"code" in now ? `${now.code} ${now.message}` : JSON.stringify(now.value)}`,
    );
  }
  return difference.why;
}

const SEED = Number(Deno.env.get("DECODE_SEED") ?? 20261124);

function values(random: () => number) {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const pieces = ["a", "é", "😀", "<", ">", "&", "]", "]]>", "\r", "\n", "\t", " ", '"', "'", "&amp;", "x"];
  const text = () => Array.from({ length: Math.floor(random() * 8) }, () => pick(pieces)).join("");
  const value = (depth: number): XmlRpcValue => {
    const r = random();
    if (depth > 4 || r < 0.3) return text();
    if (r < 0.4) return Math.floor(random() * 2 ** 32) - 2 ** 31;
    if (r < 0.45) return (random() - 0.5) * 10 ** Math.floor(random() * 40 - 20);
    if (r < 0.5) return random() < 0.5;
    if (r < 0.55) return null;
    if (r < 0.6) {
      return new Date(Math.floor(random() * 2e12) * 1000 / 1000 - (Math.floor(random() * 2e12) % 1000));
    }
    if (r < 0.63) return new TextEncoder().encode(text());
    if (r < 0.8) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    const struct: Record<string, XmlRpcValue> = {};
    for (let i = Math.floor(random() * 4); i > 0; i--) {
      const key = random() < 0.1 ? pick(["__proto__", "constructor", "toString", ""]) : text();
      Object.defineProperty(struct, key, {
        value: value(depth + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return struct;
  };
  return { value, text, pick };
}

/** A call from our encoder. */
function encodedCall(random: () => number): string {
  const { value, text } = values(random);
  const params = Array.from({ length: Math.floor(random() * 5) }, () => value(0));
  return encodeCall(random() < 0.9 ? "metodo.x" : text() || "m", params);
}

/** A call written with the legal forms our encoder never uses: whitespace, comments, CDATA, references, attributes. */
function variedCall(random: () => number): string {
  const { pick, value } = values(random);
  const space = () => pick(["", "", " ", "\n", "\r\n  ", "\t", "<!-- c -->", "<?pi x?>", " <!--- - -->\n"]);
  const attributes = () => pick(["", "", ' a="1"', " a='x&amp;y' b=\"2\"", " xmlns:x = 'u' "]);
  const open = (name: string) => `<${name}${attributes()}${pick(["", " ", "\n"])}>`;
  const close = (name: string) => `</${name}${pick(["", " ", "\n"])}>`;
  const element = (name: string, inner: string) =>
    inner === "" && random() < 0.5
      ? `<${name}${attributes()}${pick(["", " "])}/>`
      : `${open(name)}${inner}${close(name)}`;
  const escape = (text: string) =>
    pick([
      () => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"),
      () =>
        text.replace(/&/g, "&#38;").replace(/</g, "&#x3C;").replace(/"/g, "&quot;").replace(/'/g, "&apos;"),
      () => text.includes("]]>") ? text.replace(/&/g, "&amp;").replace(/</g, "&lt;") : `<![CDATA[${text}]]>`,
      () => [...text].map((c) => `&#${c.codePointAt(0)};`).join(""),
    ])();
  const pad = (text: string) => random() < 0.3 ? `${pick([" ", "\n"])}${text}${pick([" ", "\n"])}` : text;
  const write = (v: XmlRpcValue): string => {
    let inner: string;
    if (v === null) inner = element("nil", "");
    else if (typeof v === "string") {
      if (random() < 0.3 && !/^\s|\s$/.test(v)) return element("value", escape(v));
      inner = element("string", escape(v));
    } else if (typeof v === "boolean") inner = element("boolean", pad(v ? "1" : "0"));
    else if (typeof v === "number") {
      inner = Number.isInteger(v) && Math.abs(v) < 2 ** 31
        ? element(pick(["int", "i4", "i8"]), pad((v >= 0 ? pick(["", "+"]) : "") + String(v)))
        : element("double", pad(String(v)));
    } else if (v instanceof Date) {
      const p = (n: number, w = 2) => String(n).padStart(w, "0");
      inner = element(
        "dateTime.iso8601",
        `${p(v.getFullYear(), 4)}${p(v.getMonth() + 1)}${p(v.getDate())}T${p(v.getHours())}:${
          p(v.getMinutes())
        }:${p(v.getSeconds())}`,
      );
    } else if (v instanceof Uint8Array) {
      const base64 = btoa(String.fromCharCode(...v));
      inner = element("base64", base64.replace(/(.{4})/g, (m) => random() < 0.2 ? `${m}\n` : m));
    } else if (Array.isArray(v)) {
      inner = element(
        "array",
        space() + element("data", v.map((item) => space() + write(item)).join("") + space()) + space(),
      );
    } else {
      inner = element(
        "struct",
        Object.keys(v).map((key) =>
          space() +
          element("member", space() + element("name", escape(key)) + space() + write(v[key]!) + space())
        ).join("") + space(),
      );
    }
    return element("value", space() + inner + space());
  };
  const params = Array.from({ length: Math.floor(random() * 4) }, () => value(0));
  const declaration = random() < 0.7
    ? pick(['<?xml version="1.0"?>', "<?xml version='1.0' encoding='UTF-8'?>\n"])
    : "";
  return declaration + space() +
    element(
      "methodCall",
      space() + element("methodName", escape("metodo.x")) + space() +
        (params.length || random() < 0.5
          ? element(
            "params",
            params.map((p) => space() + element("param", space() + write(p) + space())).join("") + space(),
          )
          : "") +
        space(),
    ) + space();
}

/** What mutations insert: XML syntax, XML-RPC elements, odd numbers and characters. */
const TOKENS = [
  ...(`< > </ /> & ; &amp; &lt; &#0; &#x10FFFF; &#xD800; &#1; &bogus; &AMP; &#X41; &#65; &constructor; ` +
    `<![CDATA[x]]> <![CDATA[ ]]> ]]> <!-- --> -- <!DOCTYPE-x> <?pi?> <? ?> ' " = a="1" ` +
    `<value> </value> <int> </int> <i4> <i8> <string> </string> <array><data> </data></array> ` +
    `<struct><member><name> </name> </member></struct> <nil/> <boolean> <double> <base64> ` +
    `<dateTime.iso8601> <param> </param> <params> </params> <methodName> </methodName> <methodCall> ` +
    `</methodCall> <methodResponse> <fault> -1 0 1 2147483648 1e309 __proto__ é 😀 \u00A0 \uFEFF`)
    .split(" "),
  "<?xml version='1.0'?>",
  '<!ENTITY e "e">',
  "9".repeat(40),
  "\u0000",
  "\u0001",
  "\uFFFE",
  "\ud800",
  "\r\n",
  " ",
  "< ",
  "</ ",
  ' a="1" a="2"',
  " a='<'",
];

function mutate(input: string, random: () => number): string {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  let text = input;
  for (let round = 1 + Math.floor(random() * 3); round > 0; round--) {
    const i = Math.floor(random() * (text.length + 1));
    const j = Math.min(text.length, i + 1 + Math.floor(random() * 24));
    switch (Math.floor(random() * 7)) {
      case 0: // Truncate.
        text = text.slice(0, i);
        break;
      case 1: // Delete a span.
        text = text.slice(0, i) + text.slice(j);
        break;
      case 2: // Insert a token.
        text = text.slice(0, i) + pick(TOKENS) + text.slice(i);
        break;
      case 3: // Replace a span with a token.
        text = text.slice(0, i) + pick(TOKENS) + text.slice(j);
        break;
      case 4: // Duplicate a span, a few times.
        text = text.slice(0, j) + text.slice(i, j).repeat(1 + Math.floor(random() * 5)) + text.slice(j);
        break;
      case 5: // Replace a character.
        text = text.slice(0, i) + String.fromCharCode(Math.floor(random() * 128)) + text.slice(i + 1);
        break;
      case 6: { // Swap an element name for another.
        text = swapElementName(text, pick);
        break;
      }
    }
  }
  return text;
}

Deno.test("the decoders agree on 3,000 calls from our encoder", () => {
  const random = prng(SEED);
  for (let i = 0; i < 3000; i++) compare(encodedCall(random), `encoded call ${i} (DECODE_SEED=${SEED})`);
});

Deno.test("the decoders agree on 3,000 calls in every legal form", () => {
  const random = prng(SEED + 1);
  let values = 0;
  for (let i = 0; i < 3000; i++) {
    const text = variedCall(random);
    const why = compare(text, `varied call ${i} (DECODE_SEED=${SEED})`);
    assert(why === undefined || why === END_OF_LINE.why || why === WALL_CLOCK.why, String(why));
    if ("value" in decodeNew(text)) values++;
  }
  assert(values > 2900, `only ${values} of the varied calls were valid`);
});

Deno.test("the decoders agree on 500 calls Python's xmlrpc.client writes", async () => {
  const output = await runPython(`
import random, datetime, xmlrpc.client, json, sys
rng = random.Random(${SEED})
pieces = ["a", "é", "😀", "<", ">", "&", "]]>", "\\n", "\\t", " ", '"', "'"]
def text(): return "".join(rng.choice(pieces) for _ in range(rng.randrange(6)))
def value(depth):
    r = rng.random()
    if depth > 3 or r < 0.3: return text()
    if r < 0.4: return rng.randrange(-2**31, 2**31)
    if r < 0.45: return rng.uniform(-1e6, 1e6)
    if r < 0.5: return rng.random() < 0.5
    if r < 0.55: return None
    if r < 0.6: return datetime.datetime(rng.randrange(1970, 2100), rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24), rng.randrange(60), rng.randrange(60))
    if r < 0.63: return xmlrpc.client.Binary(text().encode())
    if r < 0.8: return [value(depth + 1) for _ in range(rng.randrange(4))]
    return {text(): value(depth + 1) for _ in range(rng.randrange(4))}
calls = [xmlrpc.client.dumps(tuple(value(0) for _ in range(rng.randrange(5))), "metodo.x", allow_none=True) for _ in range(500)]
print(json.dumps(calls))
`);
  const calls = JSON.parse(output) as string[];
  assert.equal(calls.length, 500);
  calls.forEach((text, i) => {
    const why = compare(text, `Python call ${i}`);
    assert(why === undefined || why === WALL_CLOCK.why, String(why));
    assert("value" in decodeNew(text), `Python call ${i} refused`);
  });
});

Deno.test("the decoders agree on 12,000 mutated calls, but for the documented differences", () => {
  const random = prng(SEED + 2);
  const seen = new Map<string, number>();
  const differences = new Map<string, number>();
  for (let i = 0; i < 12_000; i++) {
    const seed = random() < 0.5 ? encodedCall(random) : variedCall(random);
    const text = mutate(seed, random);
    const why = compare(text, `mutation ${i} (DECODE_SEED=${SEED})`);
    if (why) differences.set(why, (differences.get(why) ?? 0) + 1);
    const now = decodeNew(text);
    const kind = "code" in now ? `fault ${now.code}` : "value";
    seen.set(kind, (seen.get(kind) ?? 0) + 1);
  }
  console.log(
    "mutations:",
    Object.fromEntries(seen),
    "documented differences:",
    Object.fromEntries(
      [...differences].map(([why, count]) => [why.slice(0, 50), count]),
    ),
  );
  for (const kind of ["value", "fault -32700", "fault -32600", "fault -32602"]) {
    assert((seen.get(kind) ?? 0) > 50, `too few mutations gave ${kind}: ${seen.get(kind)}`);
  }
});

const FORBIDDEN = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const FORBIDDEN_ALL = new RegExp(FORBIDDEN.source, "gu");

/** A decoded value with every character XML forbids written as '~'. */
function tildes(value: unknown): unknown {
  if (typeof value === "string") return value.replace(FORBIDDEN_ALL, "~");
  if (Array.isArray(value)) return value.map(tildes);
  if (value && typeof value === "object" && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tildes(v)]));
  }
  return value;
}

/**
 * Responses may carry characters XML forbids (the original server writes text as it came): the new
 * decoder reads such a response as it reads the same one with '~' in their place, and that one as sax.
 */
function compareResponse(text: string, what: string) {
  if (!FORBIDDEN.test(text)) {
    compare(text, what, "methodResponse");
    return;
  }
  const clean = text.replace(FORBIDDEN_ALL, "~");
  const raw = decodeNew(text, "methodResponse");
  const tilde = decodeNew(clean, "methodResponse");
  if ("value" in raw && "value" in tilde) {
    assert.deepStrictEqual(tildes(raw.value), tilde.value, `${what}: ${JSON.stringify(text.slice(0, 400))}`);
  } else {
    assert(
      "code" in raw && "code" in tilde && raw.code === tilde.code,
      `${what}: ${JSON.stringify(text.slice(0, 400))}`,
    );
  }
  compare(clean, what, "methodResponse");
}

Deno.test("responses and faults decode alike too", () => {
  const random = prng(SEED + 3);
  for (let i = 0; i < 2000; i++) {
    const { value } = values(random);
    const v = value(0);
    const body = encodeCall("x", [v]).replace(
      '<?xml version="1.0"?><methodCall><methodName>x</methodName>',
      "",
    );
    const response = `<?xml version="1.0"?><methodResponse>${
      body.replace("</methodCall>", "")
    }</methodResponse>`;
    compareResponse(response, `response ${i}`);
    compareResponse(mutate(response, random), `mutated response ${i}`);
  }
  const fault =
    "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>-32601</int></value>" +
    "</member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>";
  assert.deepEqual(decodeNew(fault, "methodResponse"), {
    value: { kind: "fault", code: -32601, message: "x" },
  });
  compare(fault, "fault", "methodResponse");
});

Deno.test("each documented difference, and the cases on both sides of it", () => {
  const call = (param: string, before = "") =>
    `${before}<methodCall><methodName>m</methodName><params><param>${param}</param></params></methodCall>`;
  const refused = (text: string, code: number) => {
    const now = decodeNew(text);
    assert("code" in now && now.code === code, `${JSON.stringify(text)}: ${JSON.stringify(now)}`);
  };
  const accepted = (text: string, value: unknown) => {
    assert.deepStrictEqual(decodeNew(text), { value: { kind: "call", method: "m", params: [value] } });
    compare(text, "accepted");
  };
  // The XML declaration: at the start only.
  accepted(call("<value>x</value>", '<?xml version="1.0"?>'), "x");
  accepted(call("<value>x</value>", "\uFEFF<?xml version='1.0'?>\n<!-- c -->"), "x");
  refused(call("<value>x</value>", ' <?xml version="1.0"?>'), FaultCode.PARSE_ERROR);
  refused(call("<value>x</value>", '<!-- c --><?xml version="1.0"?>'), FaultCode.PARSE_ERROR);
  refused(call("<value>x<?xml version='1.0'?></value>"), FaultCode.PARSE_ERROR);
  accepted(call("<value>x<?xml-stylesheet href='a'?>y</value>", "<?pi?>"), "xy");
  // CDATA: content inside the root, refused outside it.
  accepted(call("<value><![CDATA[<&>]]]]><![CDATA[>]]></value>"), "<&>]]>");
  refused(call("<value>x</value>", "<![CDATA[x]]>"), FaultCode.PARSE_ERROR);
  refused(call("<value>x</value>") + "<![CDATA[ ]]>", FaultCode.PARSE_ERROR);
  refused(call("<value><![CDATA[x</value>"), FaultCode.PARSE_ERROR);
  // References: the five entities and numbers, case-sensitive, XML characters only.
  accepted(call("<value>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;&#x00043;&#x1F600;</value>"), "<>&\"'ABC😀");
  for (const reference of ["&AMP;", "&Lt;", "&#X41;", "&constructor;", "&toString;"]) {
    refused(call(`<value>${reference}</value>`), FaultCode.PARSE_ERROR);
    assert.notEqual(compare(call(`<value>${reference}</value>`), reference), undefined, reference);
  }
  for (
    const reference of [
      "&#0;",
      "&#x1;",
      "&#xD800;",
      "&#xFFFE;",
      "&#x110000;",
      "&#-1;",
      "&#x;",
      "&#;",
      "&;",
      "& ",
      "&lt",
      "&__proto__;",
    ]
  ) {
    refused(call(`<value>${reference}</value>`), FaultCode.PARSE_ERROR);
    refused(call(` ${reference}`), FaultCode.PARSE_ERROR);
  }
  refused(call("x&#x110000;"), FaultCode.INVALID_REQUEST);
  refused(call("x&bogus;"), FaultCode.INVALID_REQUEST);
  // Whitespace after < or </.
  refused(call("< value>x</value>"), FaultCode.PARSE_ERROR);
  refused(call("<value>x</ value>"), FaultCode.PARSE_ERROR);
  accepted(call("<value >x</value\n>"), "x");
  // Attributes: checked, then ignored.
  accepted(call(`<value a="1" b='&lt;"' c = "x">x</value>`), "x");
  refused(call('<value a="1" a="2">x</value>'), FaultCode.PARSE_ERROR);
  refused(call("<value a='<'>x</value>"), FaultCode.PARSE_ERROR);
  refused(call("<value a=1>x</value>"), FaultCode.PARSE_ERROR);
  refused(call("<value a>x</value>"), FaultCode.PARSE_ERROR);
  refused(call('<value a="1"b="2">x</value>'), FaultCode.PARSE_ERROR);
  refused(call('<value a="&bogus;">x</value>'), FaultCode.PARSE_ERROR);
  // Comments: anywhere, but never with -- inside.
  accepted(call("<value>a<!---->b<!-- - -->c<!--->-->d</value>"), "abcd");
  refused(call("<value>a<!-- -- -->b</value>"), FaultCode.PARSE_ERROR);
  refused(call("<value>a<!-- x --->b</value>"), FaultCode.PARSE_ERROR);
  // Any other markup.
  for (const markup of ["<!DOCTYPE m>", "<!ENTITY e 'e'>", "<!ELEMENT x ANY>", "<![IGNORE[x]]>", "<!x>"]) {
    refused(call("<value>x</value>", markup), FaultCode.PARSE_ERROR);
    refused(call(`<value>x${markup}</value>`), FaultCode.PARSE_ERROR);
  }
});

Deno.test("a 1 MiB body of any shape is decoded in linear time", () => {
  const MiB = 1 << 20;
  const call = (params: string, attributes = "") =>
    `<methodCall${attributes}><methodName>m</methodName><params>${params}</params></methodCall>`;
  const bodies = {
    "100,000 attributes": call("", Array.from({ length: MiB / 10 }, (_, i) => ` a${i}=""`).join("")),
    "200,000 references": call(`<param><value>${"&amp;".repeat(MiB / 5)}</value></param>`),
    "150,000 comments": call(`<param><value>${"<!---->".repeat(MiB / 7)}</value></param>`),
    "30,000 values, then one '&'": call("<param><value>x</value></param>".repeat(MiB / 32)) + "&amp;",
    "500,000 '&'": call(`<param><value>${"&".repeat(MiB)}</value></param>`),
  };
  for (const [what, body] of Object.entries(bodies)) {
    const started = performance.now();
    decodeNew(body);
    const ms = performance.now() - started;
    assert(ms < 1000, `${what}: ${Math.round(ms)} ms`);
  }
});
