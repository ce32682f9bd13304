/**
 * The page's cores in-process: its XML-RPC codec (lib/web/page/xmlrpc.js)
 * against the server's (lib/wire/codec.ts), what one encodes the other decodes
 * to the same value, both ways, for hand-picked and generated values; the
 * server's serving of the page (lib/web/serve.ts) and the binder's way in
 * (lib/web/entry.ts).
 */

import assert from "node:assert/strict";
import {
  encodeFault,
  encodeResponse,
  type IncomingRequest,
  parseXmlRpc,
  type XmlRpcValue,
} from "../../lib/mod.ts";
import { chatEntry, hostForBrowser } from "../../lib/web/entry.ts";
import { decodeResponse, encodeCall, Fault, PARSE_ERROR } from "../../lib/web/page/xmlrpc.js";
import { PAGE_FILES, servePage } from "../../lib/web/serve.ts";
import { listenOnFreePort, prng } from "../helpers/programs.ts";

const SAMPLES: XmlRpcValue[] = [
  "",
  "olá",
  "<b>x</b>",
  "a & b ]]> c ]]> d",
  "linha 1\nlinha 2\r\n\ttab",
  "  espaços  ",
  "emoji 🎉 e acentuação: ção",
  0,
  -1,
  2 ** 31 - 1,
  -(2 ** 31),
  1.5,
  -0.25,
  1e-7,
  true,
  false,
  null,
  new Date(2024, 1, 29, 23, 59, 58),
  new Uint8Array([0, 1, 2, 250, 255]),
  new Uint8Array(),
  [],
  [1, "dois", [3, [4]], { cinco: 5 }],
  {},
  { "": "vazio", "__proto__": "membro comum", "a<b": "c&d" },
  [true, {
    id: 7,
    tipo: "broadcast",
    origem: "SERVER",
    destino: "todos",
    conteudo: "ana entrou na sala.",
    timestamp: new Date(2025, 0, 2, 3, 4, 5),
  }],
];

Deno.test("page codec: decodes every response the server's codec encodes", () => {
  for (const value of SAMPLES) {
    assert.deepEqual(decodeResponse(encodeResponse(value)), value, JSON.stringify(value));
  }
});

/** The server's decoder gives node's Buffer for base64: compared as the plain bytes it holds. */
function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([key, member]) => [key, plain(member)]));
  }
  return value;
}

Deno.test("page codec: the server's codec decodes every call the page encodes", () => {
  for (const value of SAMPLES) {
    const decoded = plain(parseXmlRpc(encodeCall("metodo.qualquer", [value, "fim"]), "methodCall"));
    assert.deepEqual(decoded, { kind: "call", method: "metodo.qualquer", params: [value, "fim"] });
  }
  assert.deepEqual(parseXmlRpc(encodeCall("listar_salas", []), "methodCall"), {
    kind: "call",
    method: "listar_salas",
    params: [],
  });
  // Beyond int32: i8, which the server reads.
  assert.deepEqual(parseXmlRpc(encodeCall("m", [2 ** 40]), "methodCall"), {
    kind: "call",
    method: "m",
    params: [2 ** 40],
  });
});

Deno.test("page codec: a fault becomes a thrown Fault with its code and message", () => {
  assert.throws(
    () => decodeResponse(encodeFault(-32601, "Método não encontrado: <x>")),
    (error) =>
      error instanceof Fault && error.code === -32601 && error.message === "Método não encontrado: <x>",
  );
});

Deno.test("page codec: reads what other servers write (untyped strings, whitespace, comments, references)", () => {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Python's xmlrpc.server writes it so -->
<methodResponse>
  <params>
    <param>
      <value><array><data>
        <value>sem tipo &amp; &lt;b&gt; &#233; &#x1F600;</value>
        <value><i4> 42 </i4></value>
        <value><struct>
          <member><name>ok</name><value><boolean>1</boolean></value></member>
        </struct></value>
        <value><string><![CDATA[<i>cdata</i>]]> e texto</string></value>
        <value/>
      </data></array></value>
    </param>
  </params>
</methodResponse>
`;
  assert.deepEqual(decodeResponse(xml), [
    "sem tipo & <b> é 😀",
    42,
    { ok: true },
    "<i>cdata</i> e texto",
    "",
  ]);
});

Deno.test("page codec: refuses what is not XML-RPC, never half-reads it", () => {
  for (
    const xml of [
      "",
      "<html>erro</html>",
      "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
      "<methodResponse><params><param><value><int>1</int></value></param></params>",
      '<!DOCTYPE x [<!ENTITY a "b">]><methodResponse/>',
      "<methodResponse><params><param><value>&bogus;</value></param></params></methodResponse>",
      "<methodResponse><params><param><value>a & b</value></param></params></methodResponse>",
      "<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse><x/>",
      "<methodResponse><fault><value><string>sem código</string></value></fault></methodResponse>",
      `<methodResponse><params><param>${"<value><array><data>".repeat(40)}</param></params></methodResponse>`,
    ]
  ) {
    assert.throws(
      () => decodeResponse(xml),
      (error) => error instanceof Fault && error.code === PARSE_ERROR,
      xml.slice(0, 60),
    );
  }
});

/** A random value both codecs can carry. */
function randomValue(random: () => number, depth = 0): XmlRpcValue {
  const pick = Math.floor(random() * (depth > 3 ? 6 : 8));
  const text = () =>
    Array.from(
      { length: Math.floor(random() * 12) },
      () => ["a", "ç", "<", ">", "&", "]]>", " ", "\n", "🎉", "'", '"', "\t"][Math.floor(random() * 12)],
    ).join("");
  switch (pick) {
    case 0:
      return text();
    case 1:
      return Math.floor((random() - 0.5) * 2 ** 32);
    case 2:
      return Math.round((random() - 0.5) * 1e6) / 64;
    case 3:
      return random() < 0.5;
    case 4:
      return null;
    case 5:
      return new Date(
        2000 + Math.floor(random() * 50),
        Math.floor(random() * 12),
        1 + Math.floor(random() * 28),
      );
    case 6:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 4) }, () => [text(), randomValue(random, depth + 1)]),
      );
  }
}

Deno.test("page codec: generated values go both ways unchanged", () => {
  const random = prng(24);
  for (let i = 0; i < 500; i++) {
    const value = randomValue(random);
    assert.deepEqual(decodeResponse(encodeResponse(value)), value);
    const call = parseXmlRpc(encodeCall("m", [value]), "methodCall");
    assert.deepEqual(call, { kind: "call", method: "m", params: [value] });
  }
});

// ---------------------------------------------------------------------------
// The server's and the binder's side of the page, in-process
// ---------------------------------------------------------------------------

/** A GET as the HTTP layer hands it: the URL with the path exactly as sent. */
function get(path: string, headers: Record<string, string> = {}): IncomingRequest {
  return {
    method: "GET",
    url: `http://192.168.0.10:5000${path}`,
    headers: new Headers(headers),
    body: null,
    bytes: () => Promise.resolve(new Uint8Array()),
  };
}

Deno.test("servePage: the page's files with CSP and nosniff, in the language asked; any other path is 404", async () => {
  for (const [path, { type, text }] of PAGE_FILES) {
    const response = servePage(get(path));
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get("content-type"), type);
    assert.match(response.headers.get("content-security-policy") ?? "", /^default-src 'self'(;|$)/);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    assert.equal(await response.text(), text);
  }
  const page = await servePage(get("/?binder=192.168.0.10%3A5000", { "accept-language": "en-GB,pt;q=0.5" }))
    .text();
  assert.match(page, /<html lang="en">/);
  assert.match(await servePage(get("/", { "accept-language": "pt-BR,en" })).text(), /<html lang="pt-BR">/);
  // The page has no inline script and loads nothing from elsewhere.
  assert.doesNotMatch(page, /<script(?![^>]*\bsrc=")/);
  assert.doesNotMatch(page, /(src|href)="(https?:)?\/\//);
  for (
    const path of [
      "/index.html",
      "/app.js/",
      "/../server.ts",
      "/chat.db",
      "/web/page/app.js",
      "//app.js",
      "/APP.JS",
    ]
  ) {
    const response = servePage(get(path));
    assert.equal(response.status, 404, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    await response.body?.cancel();
  }
});

Deno.test("hostForBrowser: the registered host, unless only the binder's machine can use it", () => {
  assert.equal(hostForBrowser("192.168.0.20", "192.168.0.10"), "192.168.0.20");
  assert.equal(hostForBrowser("127.0.0.1", "192.168.0.10"), "192.168.0.10");
  assert.equal(hostForBrowser("0.0.0.0", "sala-3.local"), "sala-3.local");
  assert.equal(hostForBrowser("::1", "[fd00::7]"), "fd00::7");
  assert.equal(hostForBrowser("127.0.0.1", "127.0.0.1"), "127.0.0.1");
  assert.equal(hostForBrowser("127.0.0.1", "localhost"), "127.0.0.1");
});

Deno.test("chatEntry: a redirect to the next server that answers, never cached; a waiting page when none does", async () => {
  const listener = listenOnFreePort();
  try {
    const live = (listener.addr as Deno.NetAddr).port;
    // The binder's rotation, as it would hand them out: a dead one first, then the live one.
    const rotation = [{ host: "127.0.0.1", port: 1 }, { host: "127.0.0.1", port: live }];
    let turn = 0;
    const services = { next: () => rotation[turn++ % rotation.length], count: () => rotation.length };
    const answer = await chatEntry(get("/"), services);
    assert.equal(answer?.status, 302);
    assert.equal(answer?.headers.get("cache-control"), "no-store");
    assert.equal(answer?.headers.get("location"), `http://192.168.0.10:${live}/?binder=192.168.0.10%3A5000`);
    assert.equal(
      await chatEntry(get("/cliente.ts"), services),
      undefined,
      "not the way in: the client's modules",
    );
    const none = await chatEntry(get("/", { "accept-language": "en" }), {
      next: () => undefined,
      count: () => 0,
    });
    assert.equal(none?.status, 503);
    assert.equal(none?.headers.get("cache-control"), "no-store");
    const waiting = await none!.text();
    assert.match(waiting, /<meta http-equiv="refresh" content="3">/);
    assert.match(waiting, /No chat server is up/);
    assert.doesNotMatch(waiting, /<script/);
  } finally {
    listener.close();
  }
});
