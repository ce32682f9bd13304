import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as codec from "npm:xmlrpc@1.3.2/lib/serializer.js";
import XmlRpcDeserializer from "npm:xmlrpc@1.3.2/lib/deserializer.js";
import {
  encodeCall,
  encodeFault,
  encodeOnce,
  encodeResponse,
  localWallClock,
  parseXmlRpc,
  xmlRpcHandler,
} from "../../lib/mod.ts";
import { runPython } from "../helpers/programs.ts";

/** The codec's serializer, which deps.ts used for responses before: the reference for every byte. */
const reference = codec as unknown as {
  serializeMethodCall(method: string, params: unknown[]): string;
  serializeMethodResponse(value: unknown): string;
  serializeFault(fault: { faultCode: number; faultString: string }): string;
};

/** A small seeded generator, so a failure can be replayed. */
function generator(seed: number) {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const pieces = [
    "a",
    "é",
    "😀",
    "<",
    ">",
    "&",
    "]",
    "]]>",
    "\r",
    "\n",
    "\t",
    " ",
    '"',
    "'",
    "\ud800",
    "&amp;",
  ];
  const text = () => Array.from({ length: Math.floor(next() * 6) }, () => pick(pieces)).join("");
  const value = (depth: number): unknown => {
    const r = next();
    if (depth > 3 || r < 0.3) return text();
    if (r < 0.4) return Math.floor(next() * 1e6) - 5e5;
    if (r < 0.45) return next() * 100;
    if (r < 0.5) return next() < 0.5;
    if (r < 0.55) return null;
    if (r < 0.6) return new Date(Math.floor(next() * 2e12));
    if (r < 0.62) return Buffer.from(text());
    if (r < 0.64) return pick([NaN, Infinity, -0, 1e21, 2 ** 40, undefined]);
    if (r < 0.8) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
    return Object.fromEntries(
      Array.from({ length: Math.floor(next() * 4) }, () => [text(), value(depth + 1)]),
    );
  };
  return value;
}

/**
 * Whether a value holds what the codec wrote wrongly, and we write otherwise: a number that is not a
 * whole one within 32 bits (the codec wrote `<int>-0</int>`, `<int>1e+21</int>`, `<double>1e-7</double>`,
 * `<double>NaN</double>`), or text with a CR that the codec put in a CDATA section (read back as LF).
 */
function writtenOtherwise(value: unknown): boolean {
  if (typeof value === "number") {
    const int32 = Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 && !Object.is(value, -0);
    const plainFraction = Number.isFinite(value) && !Number.isInteger(value) && !/e/.test(String(value));
    return !int32 && !plainFraction;
  }
  if (typeof value === "string") return value.includes("\r") && /[<&]|\]\]>/.test(value);
  if (Array.isArray(value)) return value.some(writtenOtherwise);
  if (value && typeof value === "object" && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    return Object.values(value).some(writtenOtherwise);
  }
  return false;
}

/**
 * A value for the codec's serializer, which writes a Date's local fields: each Date as the local time
 * whose fields are its UTC fields (what we write); undefined where no such local time exists (a gap
 * of daylight saving time).
 */
function forCodec(value: unknown): unknown {
  if (value instanceof Date) {
    const local = new Date(
      value.getUTCFullYear(),
      value.getUTCMonth(),
      value.getUTCDate(),
      value.getUTCHours(),
      value.getUTCMinutes(),
      value.getUTCSeconds(),
    );
    return localWallClock(local).getTime() === value.getTime() - value.getUTCMilliseconds()
      ? local
      : undefined;
  }
  if (Array.isArray(value)) return value.map(forCodec);
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, forCodec(v)]));
  }
  return value;
}

Deno.test("responses and calls are byte for byte what the xmlrpc codec wrote, for 5,000 random values", () => {
  const value = generator(20261124);
  for (let i = 0, compared = 0; compared < 5000 && i < 100_000; i++) {
    const v = value(0);
    if (writtenOtherwise(v)) continue;
    const xml = reference.serializeMethodResponse(forCodec(v));
    // Text with two `]]>` is where the codec wrote broken XML (see the next test).
    if (/\]\]>.*\]\]>/s.test(xml)) continue;
    assert.equal(encodeResponse(v), xml, `value #${i}: ${Deno.inspect(v)}`);
    const params = Array.isArray(v) ? v : [v];
    assert.equal(
      encodeCall("metodo.x", params),
      reference.serializeMethodCall("metodo.x", forCodec(params) as unknown[]),
    );
    compared++;
  }
  assert.equal(encodeCall("listar_salas", []), reference.serializeMethodCall("listar_salas", []));
  assert.equal(encodeCall("", []), reference.serializeMethodCall("", []));
  for (const message of ["", "x", "a < b & c", "]]>", "fim\r\n"]) {
    assert.equal(
      encodeFault(-32601, message),
      reference.serializeFault({ faultCode: -32601, faultString: message }),
    );
  }
});

/** The codec's deserializer (what XmlRpcClient used before): the reference our response decoder must match. */
function referenceDecode(xml: string): Promise<{ value: unknown } | { code: number; message: string }> {
  type Callback = (
    error: (Error & { faultCode?: number; faultString?: string }) | null,
    value?: unknown,
  ) => void;
  const Deserializer = XmlRpcDeserializer as unknown as new () => {
    deserializeMethodResponse(stream: unknown, callback: Callback): void;
  };
  // The codec reads a stream; hand it the whole document at once.
  const stream = {
    setEncoding() {},
    on() {},
    pipe(parser: { write(text: string): void; end(): void }) {
      parser.write(xml);
      parser.end();
    },
  };
  return new Promise((resolve, reject) => {
    new Deserializer().deserializeMethodResponse(stream, (error, value) => {
      if (!error) resolve({ value });
      else if (error.faultCode !== undefined) {
        resolve({ code: Number(error.faultCode), message: String(error.faultString) });
      } else reject(error);
    });
  });
}

/** A decoded value with each Date as the wall clock it reads in local time. */
function wallClocks(value: unknown): unknown {
  if (value instanceof Date) return localWallClock(value);
  if (Array.isArray(value)) return value.map(wallClocks);
  if (value && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, wallClocks(v)]));
  }
  return value;
}

/** What our decoder makes of a response, in the reference's terms. */
function ourDecode(xml: string): { value: unknown } | { code: number; message: string } {
  const document = parseXmlRpc(xml, "methodResponse");
  return document.kind === "fault"
    ? { code: document.code, message: document.message }
    : { value: (document as { value: unknown }).value };
}

Deno.test("responses decode as the xmlrpc codec decoded them, for 5,000 random values and faults", async () => {
  const value = generator(20261128);
  for (let i = 0, compared = 0; compared < 5000 && i < 100_000; i++) {
    const v = value(0);
    let xml: string;
    try {
      xml = encodeResponse(v);
    } catch {
      continue; // NaN and the infinities: XML-RPC has no form for them.
    }
    // What no decoder should read back: `undefined` (an empty <value/>).
    if (/<value\/>/.test(xml)) continue;
    const expected = await referenceDecode(xml);
    // The codec read a naive dateTime in local time; we read its wall clock (the same where TZ is UTC).
    if ("value" in expected) expected.value = wallClocks(expected.value);
    const actual = ourDecode(xml);
    // Compared as JSON: base64 as its bytes, dates as their instants.
    const bytes = (_: string, x: unknown) => x instanceof Uint8Array ? [...x] : x;
    assert.deepEqual(
      JSON.stringify(actual, bytes),
      JSON.stringify(expected, bytes),
      `value #${i}: ${Deno.inspect(v)}`,
    );
    compared++;
  }
  for (const message of ["", "x", "a < b & c", "]]>", "fim\r\n", "Método não encontrado: x"]) {
    const xml = encodeFault(-32601, message);
    assert.deepEqual(ourDecode(xml), await referenceDecode(xml));
  }
});

Deno.test("responses written by Python's xmlrpc.client decode as the codec decoded them", async () => {
  const documents = JSON.parse(
    await runPython(`
import json, xmlrpc.client
values = [[True, "Mensagem enviada."], [False, "A sala 'x' não existe.", "sala_inexistente"],
          [True, {"mensagens": [{"id": 7, "tipo": "broadcast", "origem": "SERVER", "destino": "todos",
                   "conteudo": "ana <entrou> & saiu ]]>", "timestamp": xmlrpc.client.DateTime("20261124T15:28:12")}],
                  "cursor": 7}], [True, []], [True, None], 3.25, -7]
docs = [xmlrpc.client.dumps((v,), methodresponse=True, allow_none=True) for v in values]
docs.append(xmlrpc.client.dumps(xmlrpc.client.Fault(-32602, "Parâmetros inválidos"), methodresponse=True))
print(json.dumps(docs))
`),
  ) as string[];
  for (const xml of documents) {
    const expected = await referenceDecode(xml);
    if ("value" in expected) expected.value = wallClocks(expected.value);
    assert.deepEqual(ourDecode(xml), expected, xml);
  }
});

Deno.test("Python's xmlrpc.client reads what we write, text with several ]]> too", async () => {
  const values = [
    [true, {
      mensagens: [{
        id: 1,
        conteudo: "a < b & c ]]> d ]]> e",
        timestamp: new Date(Date.UTC(2026, 10, 24, 15, 28, 12)),
      }],
    }],
    ["", "]]>", "x]]>]]>y<", "linha\r\noutra", "😀 é", 3, -4.5, false, null, [], {}],
  ];
  const documents = values.map((v) => encodeResponse(v));
  documents.push(encodeFault(-32602, "Parâmetros <inválidos> & ]]> ]]>"));
  const output = await runPython(
    `
import json, sys, xmlrpc.client
for document in json.loads(sys.argv[1]):
    try:
        (value,), _ = xmlrpc.client.loads(document)
        print(json.dumps(value, default=str, ensure_ascii=False))
    except xmlrpc.client.Fault as fault:
        print("fault", fault.faultCode, fault.faultString)
`,
    [JSON.stringify(documents)],
  );
  assert.deepEqual(output.trim().split("\n"), [
    '[true, {"mensagens": [{"id": 1, "conteudo": "a < b & c ]]> d ]]> e", "timestamp": "20261124T15:28:12"}]}]',
    '["", "]]>", "x]]>]]>y<", "linha\\r\\noutra", "😀 é", 3, -4.5, false, null, [], {}]',
    "fault -32602 Parâmetros <inválidos> & ]]> ]]>",
  ]);
});

Deno.test("a message with two ]]> reaches the server whole (the codec's call mangled it)", () => {
  const text = "if (a[b[0]]> c && x[y[1]]> 2)";
  assert.deepEqual(parseXmlRpc(encodeCall("enviar_mensagem", ["ana", "geral", text, null]), "methodCall"), {
    kind: "call",
    method: "enviar_mensagem",
    params: ["ana", "geral", text, null],
  });
  assert.notDeepEqual(
    parseXmlRpc(reference.serializeMethodCall("enviar_mensagem", ["ana", "geral", text, null]), "methodCall"),
    { kind: "call", method: "enviar_mensagem", params: ["ana", "geral", text, null] },
  );
});

Deno.test("text XML cannot carry is refused, as the codec refused it", () => {
  for (const bad of ["\u0001", "a\uffffb", "<\u0000>", { ["nome\u0002"]: 1 }]) {
    assert.throws(() => reference.serializeMethodResponse(bad));
    assert.throws(() => encodeResponse(bad));
  }
});

Deno.test("a value marked encodeOnce is frozen and encodes the same, first time and after", () => {
  const message = encodeOnce({
    id: 7,
    conteudo: "oi <todos>",
    timestamp: new Date(Date.UTC(2026, 10, 24, 15, 28, 12)),
  });
  assert.ok(Object.isFrozen(message));
  const first = encodeResponse([true, { mensagens: [message], cursor: 7 }]);
  assert.equal(first, encodeResponse([true, { mensagens: [message], cursor: 7 }]));
  assert.equal(
    first,
    reference.serializeMethodResponse(forCodec([true, { mensagens: [{ ...message }], cursor: 7 }])),
  );
  assert.match(first, /<dateTime\.iso8601>20261124T15:28:12<\/dateTime\.iso8601>/);
});

Deno.test("an answer that cannot be encoded is an internal-error fault, not a broken document", async () => {
  const handler = xmlRpcHandler({
    eco: { help: "", params: [], run: () => "sino\u0007" },
  });
  const original = console.error;
  console.error = () => {};
  try {
    const response = await handler(
      new Request("http://127.0.0.1/", {
        method: "POST",
        body: "<?xml version='1.0'?><methodCall><methodName>eco</methodName><params/></methodCall>",
      }),
      { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } } as Deno.ServeHandlerInfo<
        Deno.NetAddr
      >,
    );
    assert.equal(response.headers.get("content-type"), "text/xml; charset=utf-8");
    assert.match(await response.text(), /<name>faultCode<\/name><value><int>-32603<\/int>/);
  } finally {
    console.error = original;
  }
});
