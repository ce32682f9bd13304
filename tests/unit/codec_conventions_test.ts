/**
 * The codec's conventions, each where a peer would see it: numbers past 32
 * bits and `-0`, dateTime years and time zones, CR in text, and the encoding
 * a document declares (with Python's xmlrpc.client as the peer that declares
 * ISO-8859-1, both ways).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  decodeXml,
  encodeCall,
  encodeResponse,
  endpointUrl,
  Fault,
  FaultCode,
  parseXmlRpc,
  XmlRpcClient,
  type XmlRpcValue,
} from "../../lib/mod.ts";
import { Program, pythonUnavailable, ROOT, runPython, startBinder, testUnless } from "../helpers/programs.ts";

/** The one value of a response. */
function read(xml: string): XmlRpcValue {
  return (parseXmlRpc(xml, "methodResponse") as { value: XmlRpcValue }).value;
}

/** The `<value>` of a response as we write it. */
function written(value: unknown): string {
  return /<param>(.*)<\/param>/.exec(encodeResponse(value))![1]!;
}

Deno.test("numbers: whole ones within 32 bits as <int>, any other as an exact <double> with no exponent", () => {
  const cases: [number, string][] = [
    [0, "<int>0</int>"],
    [2 ** 31 - 1, "<int>2147483647</int>"],
    [-(2 ** 31), "<int>-2147483648</int>"],
    [2 ** 31, "<double>2147483648.0</double>"],
    [-(2 ** 31) - 1, "<double>-2147483649.0</double>"],
    [1e16, "<double>10000000000000000.0</double>"],
    [1e21, "<double>1000000000000000000000.0</double>"],
    [-1.5e22, "<double>-15000000000000000000000.0</double>"],
    [2 ** 53 + 2, "<double>9007199254740994.0</double>"],
    [-0, "<double>-0.0</double>"],
    [0.5, "<double>0.5</double>"],
    [1e-7, "<double>0.0000001</double>"],
    [-1.25e-10, "<double>-0.000000000125</double>"],
    [5e-324, `<double>0.${"0".repeat(323)}5</double>`],
  ];
  for (const [number, xml] of cases) {
    assert.equal(written(number), `<value>${xml}</value>`, String(number));
    assert(Object.is(read(encodeResponse(number)), number), `${number} read back`);
  }
  assert.equal(read(encodeResponse(Number.MAX_VALUE)), Number.MAX_VALUE);
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => encodeResponse(bad), /não representa/);
    assert.throws(() => encodeCall("m", [[{ x: bad }]]), /não representa/);
  }
  // No <int> ever holds what an <int> cannot: for a spread of magnitudes, every <int> is a 32-bit integer.
  for (let exponent = 0; exponent < 1100; exponent++) {
    for (
      const number of [2 ** (exponent - 1074), -(2 ** exponent), 10 ** (exponent % 320), 3 * 2 ** exponent]
    ) {
      if (!Number.isFinite(number)) continue;
      const xml = written(number);
      const int = /<int>([^<]*)<\/int>/.exec(xml)?.[1];
      if (int !== undefined) assert.match(int, /^-?\d{1,10}$/, `${number}: ${xml}`);
      else assert.match(xml, /^<value><double>-?\d+\.\d+<\/double><\/value>$/, `${number}: ${xml}`);
      assert(Object.is(read(encodeResponse(number)), number), `${number} read back`);
    }
  }
});

Deno.test("dateTime: the wall clock in the UTC fields, years of four digits, no milliseconds", () => {
  const date = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0) => {
    const wall = new Date(0);
    wall.setUTCFullYear(y, mo - 1, d);
    wall.setUTCHours(h, mi, s, ms);
    return wall;
  };
  const cases: [Date, string][] = [
    [date(163, 1, 4, 16, 2, 45), "01630104T16:02:45"],
    [date(9, 12, 31, 23, 59, 59), "00091231T23:59:59"],
    [date(0, 1, 1), "00000101T00:00:00"],
    [date(9999, 12, 31, 23, 59, 59), "99991231T23:59:59"],
    [date(2026, 3, 8, 2, 30, 0, 999), "20260308T02:30:00"],
  ];
  for (const [value, text] of cases) {
    assert.equal(written(value), `<value><dateTime.iso8601>${text}</dateTime.iso8601></value>`);
    assert.deepEqual(read(encodeResponse(value)), new Date(value.getTime() - value.getUTCMilliseconds()));
  }
  for (const bad of [date(10000, 1, 1), date(-1, 1, 1), new Date(NaN)]) {
    assert.throws(() => encodeResponse(bad), /anos 0000 a 9999/);
  }
});

Deno.test("text with a CR is escaped, never a raw CR in CDATA; the decoder reads CRLF and CR as LF", () => {
  for (const text of ["a\rb", "a\r\nb <c> & ]]>", "\r", "<\r>", "]]>\r]]>"]) {
    const xml = encodeResponse([text, { [text]: 1 }]);
    assert.doesNotMatch(xml, /\r/, JSON.stringify(text));
    assert.deepEqual(read(xml), [text, { [text]: 1 }], JSON.stringify(text));
  }
  assert.match(written("a\rb <c>"), /^<value><string>a&#xD;b &lt;c&gt;<\/string><\/value>$/);
  // XML's end-of-line handling, in text, CDATA and names; a CR written as a reference stays one.
  const raw = "<?xml version='1.0'?>\r\n<methodResponse>\r<params><param><value><struct><member>" +
    "<name>n\r\nm</name><value><array><data><value>a\r\nb\rc\n\rd</value>" +
    "<value><![CDATA[e\r\nf\rg]]></value><value>h&#13;\r\ni&#xD;&#10;</value></data></array></value>" +
    "</member></struct></value></param></params></methodResponse>\r\n";
  assert.deepEqual(read(raw), { "n\nm": ["a\nb\nc\n\nd", "e\nf\ng", "h\r\ni\r\n"] });
});

Deno.test("documents are read in the encoding they declare", () => {
  const latin1 = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
  const body = "<methodResponse><params><param><value>café \x85 ÿ</value></param></params></methodResponse>";
  const expected = "café \x85 ÿ";
  // The XML declaration; ISO-8859-1 is byte for code point (not windows-1252, where 0x85 is '…').
  assert.equal(read(decodeXml(latin1(`<?xml version='1.0' encoding='ISO-8859-1'?>${body}`))), expected);
  assert.equal(read(decodeXml(latin1(`<?xml version="1.0" encoding="latin1" ?>\n${body}`))), expected);
  // The media type's charset, over the declaration.
  assert.equal(
    read(decodeXml(latin1(`<?xml version='1.0' encoding='utf-8'?>${body}`), "text/xml; charset=iso-8859-1")),
    expected,
  );
  // A byte order mark, over both.
  const utf16 = new Uint8Array([
    0xff,
    0xfe,
    ...new Uint8Array(new Uint16Array([...body].map((c) => c.charCodeAt(0))).buffer),
  ]);
  assert.equal(read(decodeXml(utf16, "text/xml; charset=iso-8859-1")), expected);
  // UTF-8 by default, and windows-1252 where declared so.
  assert.equal(read(decodeXml(new TextEncoder().encode(body))), expected);
  assert.equal(read(decodeXml(latin1(`<?xml version='1.0' encoding='windows-1252'?>${body}`))), "café … ÿ");
  // Never a silent U+FFFD: bytes not of the encoding, or an encoding unknown, are a parse error.
  for (
    const [bytes, contentType] of [
      [latin1(body), undefined],
      [latin1(`<?xml version='1.0' encoding='x-klingon'?>${body}`), undefined],
      [latin1(body), "text/xml; charset=us-ascii"],
    ] as const
  ) {
    try {
      decodeXml(bytes, contentType);
      assert.fail(`read: ${contentType}`);
    } catch (error) {
      assert(error instanceof Fault && error.code === FaultCode.PARSE_ERROR, String(error));
    }
  }
});

/** A Deno program run under a time zone; its output as JSON. */
async function underTimeZone(timeZone: string, source: string): Promise<unknown> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", "--ext=ts", source],
    env: { TZ: timeZone },
    cwd: ROOT,
  }).output();
  const decoder = new TextDecoder();
  assert.equal(code, 0, decoder.decode(stderr));
  return JSON.parse(decoder.decode(stdout));
}

Deno.test("a naive dateTime reads and writes the same in any time zone, the gap of daylight saving too", async () => {
  const source = `
import { clockOf, encodeResponse, localWallClock, parseXmlRpc } from "${ROOT}deps.ts";
const texts = ["20260308T02:30:00", "20261101T01:30:00", "20261011T00:30:00", "01630104T16:02:45"];
const read = (text: string) => (parseXmlRpc(
  "<methodResponse><params><param><value><dateTime.iso8601>" + text + "</dateTime.iso8601></value></param></params></methodResponse>",
  "methodResponse",
) as { value: Date }).value;
console.log(JSON.stringify({
  instants: texts.map((text) => read(text).getTime()),
  again: texts.map((text) => /<dateTime.iso8601>(.*)<\\/dateTime.iso8601>/.exec(encodeResponse(read(text)))![1]),
  clocks: texts.map((text) => clockOf(read(text))),
  // Noon UTC on 1 January 2026, as this zone's wall clock.
  wall: localWallClock(Date.UTC(2026, 0, 1, 12)).toISOString(),
}));
`;
  const expected = {
    // The same instants (the wall clocks in the UTC fields), written back as they came, shown as written.
    instants: [Date.UTC(2026, 2, 8, 2, 30), Date.UTC(2026, 10, 1, 1, 30), Date.UTC(2026, 9, 11, 0, 30)],
    again: ["20260308T02:30:00", "20261101T01:30:00", "20261011T00:30:00", "01630104T16:02:45"],
    clocks: ["02:30:00", "01:30:00", "00:30:00", "16:02:45"],
  };
  for (
    const [zone, wall] of [
      ["UTC", "2026-01-01T12:00:00.000Z"],
      ["America/New_York", "2026-01-01T07:00:00.000Z"],
      ["America/Sao_Paulo", "2026-01-01T09:00:00.000Z"],
      ["Asia/Kolkata", "2026-01-01T17:30:00.000Z"],
    ]
  ) {
    const got = await underTimeZone(zone!, source) as typeof expected & { wall: string };
    got.instants = got.instants.slice(0, 3);
    assert.deepEqual(got, { ...expected, wall }, String(zone));
  }
});

testUnless(
  pythonUnavailable(),
  "an ISO-8859-1 peer: Python's xmlrpc.client and SimpleXMLRPCServer, both ways",
  async () => {
    // Python's server answering in ISO-8859-1 (its XML declaration says so; its Content-Type has no charset).
    const server = new Program("python3", [
      "-c",
      `
import json
from xmlrpc.server import SimpleXMLRPCServer
server = SimpleXMLRPCServer(("127.0.0.1", 0), encoding="iso-8859-1", allow_none=True, logRequests=False)
server.register_function(lambda text: [text, "café \\x85 ÿ €"], "eco")
print("rpc-chat-pronto " + json.dumps({"programa": "python", "host": "127.0.0.1", "porta": server.server_address[1]}), flush=True)
server.serve_forever()
`,
    ], { cwd: ROOT });
    await using _server = server;
    const { porta } = await server.ready();
    const client = new XmlRpcClient(endpointUrl("127.0.0.1", Number(porta)), { timeoutMs: 5000 });
    // Python writes the CR it got back raw, which XML reads as LF (Python reads its own answer so too).
    assert.deepEqual(await client.call("eco", ["ação \r\n 😀"]), ["ação \n 😀", "café \x85 ÿ €"]);

    // Python's client calling in ISO-8859-1, to our binder.
    await using binder = await startBinder();
    const output = await runPython(
      `
import sys, xmlrpc.client
proxy = xmlrpc.client.ServerProxy(sys.argv[1], encoding="iso-8859-1", allow_none=True)
print(proxy.registrar_procedimento("café", "127.0.0.1", 9)[0], proxy.buscar_procedimento("café"))
`,
      [endpointUrl("127.0.0.1", binder.port)],
    );
    assert.equal(output.trim(), "True [True, {'endereco': '127.0.0.1', 'porta': 9}]");
  },
);
