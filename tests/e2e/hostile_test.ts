/**
 * Hostile input: every malformed, ill-typed, oversized or slow
 * request we could think of, thrown at the XML-RPC endpoint of the real
 * binder and the real server (subprocesses with the documented permissions),
 * plus a seeded fuzz loop of mutated valid calls. The table and the fuzz are
 * functions of a {@linkcode Target}, so both services run the same cases.
 *
 * Reproduce a fuzz failure with `HOSTILE_SEED=<seed> deno test --allow-all hostile_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  endpointUrl,
  FaultCode,
  MAX_MULTICALL,
  MAX_NESTING,
  parseXmlRpc,
  XmlRpcClient,
  type XmlRpcDocument,
  type XmlRpcValue,
} from "../../lib/mod.ts";
import {
  prng,
  runPython,
  startBinder,
  startServer,
  swapElementName,
  waitUntil,
} from "../helpers/programs.ts";

// ---------------------------------------------------------------------------
// What the suite needs to know of a service
// ---------------------------------------------------------------------------

interface Call {
  method: string;
  params: XmlRpcValue[];
}

interface Target {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Its process, to read its memory. */
  pid: number;
  /** Valid calls, the seeds of the fuzz loop. The first must answer without a fault: the proof of life. */
  samples: Call[];
  /** The `--request-timeout` it runs with, in milliseconds. */
  requestTimeoutMs: number;
  /** Whether the process is still running. */
  running(): boolean;
  /**
   * What a GET of `/` gets: 200 from the server (the chat page); 503 from the binder, whose way in for
   * browsers finds no ChatService here.
   */
  getStatus: number;
}

/** Interoperable codes a hostile request may get; -32603 (internal error) would be a bug. */
const PROTOCOL_FAULTS = new Set<number>([
  FaultCode.PARSE_ERROR,
  FaultCode.INVALID_REQUEST,
  FaultCode.METHOD_NOT_FOUND,
  FaultCode.INVALID_PARAMS,
]);
/** Every hostile request is answered within this (but the stalled one, which waits for the timeout). */
const QUICKLY_MS = 2000;
const MiB = 1024 * 1024;
const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Encoding calls by hand (independent of the code under test)
// ---------------------------------------------------------------------------

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function encodeValue(value: XmlRpcValue): string {
  if (value === null) return "<value><nil/></value>";
  if (typeof value === "string") return `<value><string>${escapeXml(value)}</string></value>`;
  if (typeof value === "boolean") return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
  if (typeof value === "number") {
    return Number.isInteger(value)
      ? `<value><int>${value}</int></value>`
      : `<value><double>${value}</double></value>`;
  }
  if (value instanceof Date) {
    const text = `${pad(value.getFullYear(), 4)}${pad(value.getMonth() + 1)}${pad(value.getDate())}T` +
      `${pad(value.getHours())}:${pad(value.getMinutes())}:${pad(value.getSeconds())}`;
    return `<value><dateTime.iso8601>${text}</dateTime.iso8601></value>`;
  }
  if (value instanceof Uint8Array) {
    return `<value><base64>${btoa(String.fromCharCode(...value))}</base64></value>`;
  }
  if (Array.isArray(value)) {
    return `<value><array><data>${value.map(encodeValue).join("")}</data></array></value>`;
  }
  const members = Object.entries(value).map(([name, member]) =>
    `<member><name>${escapeXml(name)}</name>${encodeValue(member)}</member>`
  );
  return `<value><struct>${members.join("")}</struct></value>`;
}

/** A call whose parameters are given as `<value>` fragments, so they can be anything. */
function rawCall(method: string, values: string[]): string {
  const params = values.map((value) => `<param>${value}</param>`).join("");
  return `<?xml version="1.0"?><methodCall><methodName>${escapeXml(method)}</methodName>` +
    `<params>${params}</params></methodCall>`;
}

function encodeCall({ method, params }: Call): string {
  return rawCall(method, params.map(encodeValue));
}

/** One value inside the array `system.multicall` takes: every service has it, so a bad value reaches any. */
function inMulticall(value: string): string {
  return rawCall("system.multicall", [`<value><array><data>${value}</data></array></value>`]);
}

function bytes(...parts: (string | number[])[]): Uint8Array<ArrayBuffer> {
  const chunks = parts.map((part) => typeof part === "string" ? encoder.encode(part) : new Uint8Array(part));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Talking to the target
// ---------------------------------------------------------------------------

interface Answer {
  status: number;
  text: string;
  ms: number;
}

async function post(port: number, body: BodyInit | null, method = "POST"): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(endpointUrl("127.0.0.1", port), {
    method,
    headers: { "content-type": "text/xml" },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, text, ms: performance.now() - started };
}

/** The answer as a decoded XML-RPC response, or an assertion error saying why it is not one. */
function responseOf(answer: Answer, what: string): XmlRpcDocument {
  assert.equal(answer.status, 200, `${what}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
  try {
    return parseXmlRpc(answer.text, "methodResponse");
  } catch (error) {
    throw new assert.AssertionError({
      message: `${what}: not a well-formed XML-RPC response (${(error as Error).message}): ` +
        answer.text.slice(0, 300),
    });
  }
}

type Expect = { fault: number } | { status: number };

function describe(expect: Expect): string {
  return "fault" in expect ? `fault ${expect.fault}` : `HTTP ${expect.status}`;
}

function checkAnswer(answer: Answer, expect: Expect, what: string): void {
  if ("status" in expect) {
    assert.equal(answer.status, expect.status, `${what}: expected ${describe(expect)}, got ${answer.text}`);
    return;
  }
  const document = responseOf(answer, what);
  assert.equal(
    document.kind,
    "fault",
    `${what}: expected ${describe(expect)}, got ${answer.text.slice(0, 300)}`,
  );
  if (document.kind === "fault") assert.equal(document.code, expect.fault, `${what}: ${document.message}`);
}

/** The process's resident memory, from /proc (Linux). */
async function rssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]);
}

/** Valid calls in a loop while something else runs: every one must be answered, and soon. */
function heartbeat(target: Target) {
  const client = new XmlRpcClient(endpointUrl("127.0.0.1", target.port), { timeoutMs: 5000 });
  const latencies: number[] = [];
  const errors: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      try {
        await client.call(target.samples[0]!.method, target.samples[0]!.params);
        latencies.push(performance.now() - started);
      } catch (error) {
        errors.push(String(error));
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { latencies, errors };
    },
  };
}

async function assertAlive(target: Target, what: string): Promise<void> {
  assert(target.running(), `${what}: the process has died`);
  const answer = await post(target.port, encodeCall(target.samples[0]!));
  const document = responseOf(answer, `${what}: a valid call`);
  assert.equal(document.kind, "response", `${what}: a valid call got ${answer.text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

interface Case {
  name: string;
  expect: Expect;
  /** Sends the request; by default posts `body`. */
  send: () => Promise<Answer>;
  /** How long it may take (default {@linkcode QUICKLY_MS}); at least this long when `minMs` is set. */
  maxMs?: number;
  minMs?: number;
}

type ParamType = "string" | "int" | "double" | "boolean" | "nil|string" | "struct" | "array";

/** One value of each XML-RPC type, and which declared parameter types take it. */
const PALETTE: { type: string; value: XmlRpcValue }[] = [
  { type: "int", value: 7 },
  { type: "double", value: 1.5 },
  { type: "boolean", value: true },
  { type: "string", value: "x" },
  { type: "nil", value: null },
  { type: "array", value: ["x"] },
  { type: "struct", value: { x: 1 } },
  { type: "dateTime", value: new Date(Date.UTC(2026, 10, 24, 15, 28, 12)) },
  { type: "base64", value: new Uint8Array([0, 255]) },
];
const ACCEPTS: Record<ParamType, string[]> = {
  string: ["string"],
  int: ["int"],
  double: ["int", "double"],
  boolean: ["boolean"],
  "nil|string": ["nil", "string"],
  array: ["array"],
  struct: ["struct"],
};
/** A valid value for each declared type: the other parameters of an ill-typed call. */
const VALID: Record<ParamType, XmlRpcValue> = {
  string: "x",
  int: 1,
  double: 1.5,
  boolean: true,
  "nil|string": null,
  array: [],
  struct: {},
};

/** The method table as the service describes it: system.listMethods and system.methodSignature. */
async function methodTable(port: number): Promise<Map<string, ParamType[]>> {
  const client = new XmlRpcClient(endpointUrl("127.0.0.1", port), { timeoutMs: 5000 });
  const table = new Map<string, ParamType[]>();
  for (const name of await client.call<string[]>("system.listMethods")) {
    const [[, ...types]] = await client.call<[[string, ...string[]]]>("system.methodSignature", [name]);
    for (const type of types) assert(type in ACCEPTS, `${name}: unknown parameter type ${type}`);
    table.set(name, types as ParamType[]);
  }
  return table;
}

const BAD_VALUES = [
  "<int>12abc</int>",
  "<int>1e3</int>",
  "<int>1.0</int>",
  "<int>0x10</int>",
  "<int></int>",
  "<int>2147483648</int>",
  "<int>99999999999999999999999</int>",
  "<i4>-2147483649</i4>",
  "<i4>12 34</i4>",
  "<boolean>2</boolean>",
  "<boolean>true</boolean>",
  "<boolean></boolean>",
  "<double>1.5x</double>",
  "<double>NaN</double>",
  "<double>Infinity</double>",
  "<double>1e999</double>",
  "<double>--1</double>",
  "<base64>!!!!</base64>",
  "<base64>abc</base64>",
  "<base64>ab=c</base64>",
  "<dateTime.iso8601>20261399T99:99:99</dateTime.iso8601>",
  "<dateTime.iso8601>20260230T10:00:00</dateTime.iso8601>",
  "<dateTime.iso8601>20261124T24:00:00</dateTime.iso8601>",
  "<dateTime.iso8601>ontem</dateTime.iso8601>",
  "<dateTime.iso8601></dateTime.iso8601>",
  "<nil>x</nil>",
];

function hostileCases(target: Target, methods: Map<string, ParamType[]>, trap: string): Case[] {
  const { port } = target;
  const cases: Case[] = [];
  const add = (name: string, body: string | Uint8Array<ArrayBuffer>, expect: Expect) =>
    cases.push({ name, expect, send: () => post(port, body) });
  const valid = encodeCall(target.samples[0]!);

  // Not XML, or not whole.
  add("empty body", "", { fault: FaultCode.PARSE_ERROR });
  add("only whitespace", " \r\n\t ", { fault: FaultCode.PARSE_ERROR });
  for (const at of [1, 20, Math.floor(valid.length / 2), valid.length - 1]) {
    add(`truncated at ${at} of ${valid.length}`, valid.slice(0, at), { fault: FaultCode.PARSE_ERROR });
  }
  add("plain text", "isto não é XML", { fault: FaultCode.PARSE_ERROR });
  add("JSON", '{"method": "listar_salas", "params": []}', { fault: FaultCode.PARSE_ERROR });
  add("mismatched tags", "<methodCall><methodName>x</methodCall></methodName>", {
    fault: FaultCode.PARSE_ERROR,
  });
  add("garbage after the root", `${valid}<lixo/>`, { fault: FaultCode.PARSE_ERROR });
  add("two calls in one body", valid + valid, { fault: FaultCode.PARSE_ERROR });
  add("unquoted attribute", "<methodCall a=1><methodName>x</methodName></methodCall>", {
    fault: FaultCode.PARSE_ERROR,
  });

  // XML, but not a call.
  add("wrong root: methodResponse", "<methodResponse><params/></methodResponse>", {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("wrong root: html", "<html><body>oi</body></html>", { fault: FaultCode.INVALID_REQUEST });
  add("wrong case", valid.replace(/methodCall/g, "METHODCALL"), { fault: FaultCode.INVALID_REQUEST });
  add("no method name", "<methodCall><params/></methodCall>", { fault: FaultCode.INVALID_REQUEST });
  add("empty method name", "<methodCall><methodName></methodName></methodCall>", {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("blank method name", "<methodCall><methodName> \n</methodName><params/></methodCall>", {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("two method names", "<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>", {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("unknown element in a value", inMulticall("<value><object/></value>"), {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("two types in one value", inMulticall("<value><int>1</int><string>x</string></value>"), {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("text beside a type", inMulticall("<value>x<int>1</int></value>"), {
    fault: FaultCode.INVALID_REQUEST,
  });
  add(
    "member without a name",
    inMulticall("<value><struct><member><value>1</value></member></struct></value>"),
    {
      fault: FaultCode.INVALID_REQUEST,
    },
  );
  add("param without a value", rawCall("system.listMethods", []).replace("<params>", "<params><param/>"), {
    fault: FaultCode.INVALID_REQUEST,
  });
  add("array without data", inMulticall("<value><array/></value>"), { fault: FaultCode.INVALID_REQUEST });

  // DOCTYPE and entities: never expanded, never fetched (the trap records any connection).
  add(
    "DOCTYPE with an internal entity",
    '<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY m "system.listMethods">]>' +
      "<methodCall><methodName>&m;</methodName></methodCall>",
    { fault: FaultCode.PARSE_ERROR },
  );
  const laughs = Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join(
    "",
  );
  add(
    "billion laughs",
    `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY l0 "lol">${laughs}]><methodCall><methodName>&l9;</methodName></methodCall>`,
    { fault: FaultCode.PARSE_ERROR },
  );
  add(
    "DOCTYPE with an external entity",
    `<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY x SYSTEM "${trap}/entity">]>` +
      "<methodCall><methodName>&x;</methodName></methodCall>",
    { fault: FaultCode.PARSE_ERROR },
  );
  add(
    "DOCTYPE with an external parameter entity",
    `<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY % p SYSTEM "${trap}/param"> %p;]>` +
      "<methodCall><methodName>x</methodName></methodCall>",
    { fault: FaultCode.PARSE_ERROR },
  );
  add(
    "external DTD",
    `<?xml version="1.0"?><!DOCTYPE methodCall SYSTEM "${trap}/dtd"><methodCall><methodName>x</methodName></methodCall>`,
    { fault: FaultCode.PARSE_ERROR },
  );
  add("undeclared entity", "<methodCall><methodName>&x;</methodName></methodCall>", {
    fault: FaultCode.PARSE_ERROR,
  });

  // Deep nesting: refused at depth MAX_NESTING + 1, without walking the rest.
  const depth = 20_000;
  add(
    `${depth}-deep arrays`,
    inMulticall("<value><array><data>".repeat(depth) + "</data></array></value>".repeat(depth)),
    { fault: FaultCode.INVALID_PARAMS },
  );
  add(
    "15000-deep structs (the most that fit in 1 MiB)",
    inMulticall(
      "<value><struct><member><name/>".repeat(15_000) + "</member></struct></value>".repeat(15_000),
    ),
    { fault: FaultCode.INVALID_PARAMS },
  );
  add(`${depth}-deep unclosed arrays`, inMulticall("<value><array><data>".repeat(depth)), {
    fault: FaultCode.INVALID_PARAMS,
  });
  add(`${depth}-deep unknown elements`, inMulticall("<a>".repeat(depth) + "</a>".repeat(depth)), {
    fault: FaultCode.INVALID_REQUEST,
  });
  add(
    `${MAX_NESTING} levels are fine (a fault from multicall's entry, not from the decoder)`,
    inMulticall(
      "<value><array><data>".repeat(MAX_NESTING - 1) + "</data></array></value>".repeat(MAX_NESTING - 1),
    ),
    { status: 200 },
  );

  // Not UTF-8, or characters XML forbids.
  const method = (...middle: number[][]) =>
    bytes("<methodCall><methodName>", ...middle, "</methodName></methodCall>");
  add("invalid UTF-8 byte", method([0xff, 0xfe]), { fault: FaultCode.PARSE_ERROR });
  add("truncated UTF-8 sequence", method([0x61, 0xc3]), { fault: FaultCode.PARSE_ERROR });
  add("overlong UTF-8", method([0xc0, 0xaf]), { fault: FaultCode.PARSE_ERROR });
  add("UTF-8 encoded surrogate", method([0xed, 0xa0, 0x80]), { fault: FaultCode.PARSE_ERROR });
  add("Latin-1 text", method([0x6f, 0x6c, 0xe1]), { fault: FaultCode.PARSE_ERROR });
  for (
    const reference of ["&#0;", "&#1;", "&#x1B;", "&#xD800;", "&#xFFFE;", "&#x110000;", "&#99999999999;"]
  ) {
    add(`character reference ${reference}`, inMulticall(`<value><string>a${reference}b</string></value>`), {
      fault: FaultCode.PARSE_ERROR,
    });
  }
  add("raw control character", method([0x61, 0x01, 0x62]), { fault: FaultCode.PARSE_ERROR });
  add("NUL byte", method([0x00]), { fault: FaultCode.PARSE_ERROR });

  // Bad scalar values: inside multicall's array, and where a method takes an int.
  const intMethod = [...methods].find(([, types]) => types.includes("int"));
  for (const bad of BAD_VALUES) {
    add(`bad value ${bad}`, inMulticall(`<value>${bad}</value>`), { fault: FaultCode.INVALID_PARAMS });
    if (intMethod && /^<(int|i4)>/.test(bad)) {
      const [name, types] = intMethod;
      const values = types.map((type) => type === "int" ? `<value>${bad}</value>` : encodeValue(VALID[type]));
      add(`bad value ${bad} as ${name}'s int`, rawCall(name, values), { fault: FaultCode.INVALID_PARAMS });
    }
  }

  // Unknown methods, wrong types for every method, extra and missing params.
  add("unknown method", rawCall("nao_existe", []), { fault: FaultCode.METHOD_NOT_FOUND });
  add("unknown method, 100 kB name", rawCall("x".repeat(100_000), []), { fault: FaultCode.METHOD_NOT_FOUND });
  add("an Object.prototype name", rawCall("constructor", []), { fault: FaultCode.METHOD_NOT_FOUND });
  add("__proto__", rawCall("__proto__", []), { fault: FaultCode.METHOD_NOT_FOUND });
  for (const [name, types] of methods) {
    types.forEach((type, i) => {
      for (const wrong of PALETTE.filter((p) => !ACCEPTS[type].includes(p.type))) {
        const params = types.map((t, j) => j === i ? wrong.value : VALID[t]);
        add(`${name}: ${wrong.type} for param ${i + 1} (${type})`, encodeCall({ method: name, params }), {
          fault: FaultCode.INVALID_PARAMS,
        });
      }
    });
    const params = types.map((t) => VALID[t]);
    add(`${name}: one param too many`, encodeCall({ method: name, params: [...params, "extra"] }), {
      fault: FaultCode.INVALID_PARAMS,
    });
    add(`${name}: 1000 params too many`, encodeCall({ method: name, params: Array(1000).fill(1) }), {
      fault: FaultCode.INVALID_PARAMS,
    });
    if (types.length) {
      add(`${name}: one param missing`, encodeCall({ method: name, params: params.slice(1) }), {
        fault: FaultCode.INVALID_PARAMS,
      });
    }
  }
  add(
    `system.multicall with ${MAX_MULTICALL + 1} calls`,
    encodeCall({
      method: "system.multicall",
      params: [Array(MAX_MULTICALL + 1).fill({ methodName: "system.listMethods", params: [] })],
    }),
    { fault: FaultCode.INVALID_PARAMS },
  );

  // HTTP: size, slowness, verb.
  cases.push({
    name: "a 20 MB body",
    expect: { status: 413 },
    send: () => post(port, new Uint8Array(20 * MiB).fill(0x3c)),
  });
  cases.push({
    name: "a 20 MB body streamed without content-length",
    expect: { status: 413 },
    send: async () => {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 20 * MiB) controller.close();
          else {
            controller.enqueue(new Uint8Array(64 * 1024).fill(0x3c));
            sent += 64 * 1024;
          }
        },
      });
      const answer = await post(port, body);
      // The server stopped reading long before the end.
      assert(sent < 20 * MiB, `the whole 20 MB was read (${sent} bytes)`);
      return answer;
    },
  });
  cases.push({
    name: "a client that stalls mid-body",
    expect: { status: 408 },
    send: () => stalledRequest(port),
    minMs: target.requestTimeoutMs * 0.9,
    maxMs: target.requestTimeoutMs + QUICKLY_MS,
  });
  cases.push({ name: "GET", expect: { status: target.getStatus }, send: () => post(port, null, "GET") });
  cases.push({ name: "PUT", expect: { status: 405 }, send: () => post(port, "<x/>", "PUT") });
  return cases;
}

/**
 * Declares a body of `length` bytes, sends only `sent` of them and stalls;
 * returns the answer the server gives on its own.
 */
async function stalledRequest(port: number, length = 500, sent = 24): Promise<Answer> {
  const started = performance.now();
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  const deadline = setTimeout(() => connection.close(), 10_000);
  try {
    let data = bytes(
      `POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: text/xml\r\ncontent-length: ${length}\r\n\r\n`,
      "<methodCall><methodName>",
      Array(Math.max(0, sent - 24)).fill(0x78),
    );
    while (data.length) data = data.subarray(await connection.write(data));
    let text = "";
    const buffer = new Uint8Array(4096);
    while (!text.includes("\r\n\r\n")) {
      const n = await connection.read(buffer);
      if (n === null) break;
      text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    return { status, text, ms: performance.now() - started };
  } finally {
    clearTimeout(deadline);
    try {
      connection.close();
    } catch {
      // Closed by the deadline.
    }
  }
}

/** A listener that records every connection: where an external entity would be fetched from. */
function entityTrap() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: string[] = [];
  const accepting = (async () => {
    try {
      for await (const connection of listener) {
        connections.push((connection.remoteAddr as Deno.NetAddr).hostname);
        connection.close();
      }
    } catch {
      // Closed.
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    connections,
    async close() {
      listener.close();
      await accepting;
    },
  };
}

/** Runs every case against the target, with valid calls going on meanwhile, and checks its memory. */
async function hostileTable(target: Target): Promise<void> {
  const methods = await methodTable(target.port);
  const trap = entityTrap();
  try {
    // Warm up, then measure.
    for (let i = 0; i < 20; i++) await post(target.port, encodeCall(target.samples[0]!));
    const rssBefore = await rssKiB(target.pid);
    const beat = heartbeat(target);
    const cases = hostileCases(target, methods, trap.url);
    const failures: string[] = [];
    // A few at a time: fast, and the service sees concurrent hostile requests.
    for (let i = 0; i < cases.length; i += 8) {
      await Promise.all(
        cases.slice(i, i + 8).map(async (hostile) => {
          try {
            const answer = await hostile.send();
            checkAnswer(answer, hostile.expect, hostile.name);
            const maxMs = hostile.maxMs ?? QUICKLY_MS;
            assert(
              answer.ms <= maxMs,
              `${hostile.name}: took ${Math.round(answer.ms)} ms (at most ${maxMs})`,
            );
            if (hostile.minMs) {
              assert(answer.ms >= hostile.minMs, `${hostile.name}: too early (${answer.ms} ms)`);
            }
          } catch (error) {
            failures.push(`${hostile.name}: ${(error as Error).message.split("\n")[0]}`);
          }
        }),
      );
    }
    const { latencies, errors } = await beat.stop();
    const rssAfter = await rssKiB(target.pid);
    console.log(
      `${cases.length} hostile cases; valid calls meanwhile: ${latencies.length}, slowest ` +
        `${Math.round(Math.max(...latencies))} ms; RSS ${Math.round(rssBefore / 1024)} MiB before, ` +
        `${Math.round(rssAfter / 1024)} MiB after`,
    );
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} cases failed`);
    assert.deepEqual(errors, [], "valid calls failed while the hostile ones ran");
    assert(latencies.length >= 5, `only ${latencies.length} valid calls went through meanwhile`);
    assert(Math.max(...latencies) < QUICKLY_MS, `a valid call took ${Math.max(...latencies)} ms meanwhile`);
    assert.deepEqual(trap.connections, [], "an external entity or DTD was fetched");
    // The trap does record a connection: the silence above means something.
    (await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(trap.url).port) })).close();
    await waitUntil(() => trap.connections.length === 1, "the trap to record a connection", 2000);
    assert(rssAfter - rssBefore < 200 * 1024, `RSS grew by ${Math.round((rssAfter - rssBefore) / 1024)} MiB`);
    await assertAlive(target, "after the table");
  } finally {
    await trap.close();
  }
}

/**
 * Many big hostile bodies at once: valid calls are still served, and memory
 * stays bounded (big bodies share a budget: past it, 503).
 */
async function hostileBurst(target: Target): Promise<void> {
  const nearLimit = MiB - 400;
  const bodies = [
    // One huge string to an unknown method.
    rawCall("nao_existe", [`<value><string>${"x".repeat(nearLimit)}</string></value>`]),
    // 50,000 small values, then refused by multicall's limit.
    inMulticall("<value><nil/></value>".repeat(Math.floor(nearLimit / 21))),
    // Deep, and a stream of entities.
    inMulticall("<value><array><data>".repeat(20_000) + "</data></array></value>".repeat(20_000)),
    rawCall("nao_existe", [`<value><string>${"&amp;".repeat(Math.floor(nearLimit / 5))}</string></value>`]),
  ];
  for (const body of bodies) assert(encoder.encode(body).length <= MiB, "a burst body is over the limit");
  const rssBefore = await rssKiB(target.pid);
  const beat = heartbeat(target);
  // In waves: all at once, most would only meet the short request timeout behind the others' parsing.
  const answers: Answer[] = [];
  for (let wave = 0; wave < 4; wave++) {
    answers.push(
      ...await Promise.all(bodies.flatMap((body) => [post(target.port, body), post(target.port, body)])),
    );
  }
  // Twenty clients each send all but the last byte of a 1 MiB body: the budget (16 MiB) holds 17.
  const stalled = await Promise.all(
    Array.from({ length: 20 }, () => stalledRequest(target.port, MiB, MiB - 1)),
  );
  const { latencies, errors } = await beat.stop();
  const rssAfter = await rssKiB(target.pid);

  // A protocol fault; or 503 past the budget; or 408 for a body that waited too long behind the
  // others (each ~1 MiB body costs up to ~150 ms of parsing, and the timeout is short here).
  const statuses = new Map<string, number>();
  for (const answer of [...answers, ...stalled]) {
    let kind = `HTTP ${answer.status}`;
    if (answer.status === 200) {
      const document = responseOf(answer, "a burst body");
      assert(document.kind === "fault" && PROTOCOL_FAULTS.has(document.code), answer.text.slice(0, 300));
      kind = `fault ${document.code}`;
    } else assert([408, 503].includes(answer.status), `a burst body got ${answer.status} ${answer.text}`);
    statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
  }
  const stalledStatuses = stalled.map((answer) => answer.status);
  console.log(
    `burst of ${answers.length} bodies of ~1 MiB and ${stalled.length} stalled ones:`,
    Object.fromEntries(statuses),
    `valid calls meanwhile: ${latencies.length}, slowest ${Math.round(Math.max(...latencies))} ms; ` +
      `RSS ${Math.round(rssBefore / 1024)} MiB before, ${Math.round(rssAfter / 1024)} MiB after`,
  );
  // How many stalled bodies fit before the budget says 503 depends on how busy the machine is; that
  // some are refused, and that the budget is whole again afterwards, does not.
  assert(stalledStatuses.includes(503), `no stalled body was refused: ${stalledStatuses}`);
  assert(stalledStatuses.includes(408), `no stalled body was held until its timeout: ${stalledStatuses}`);
  assert.deepEqual(errors, [], "valid calls failed during the burst");
  assert(latencies.length >= 3, `only ${latencies.length} valid calls went through during the burst`);
  assert(Math.max(...latencies) < 5000, `a valid call took ${Math.max(...latencies)} ms during the burst`);
  assert(rssAfter - rssBefore < 250 * 1024, `RSS grew by ${Math.round((rssAfter - rssBefore) / 1024)} MiB`);
  await assertAlive(target, "after the burst");
  // Every byte reserved was released: a big body is read again, not refused as busy.
  const big = await post(target.port, bodies[0]!);
  const document = responseOf(big, "a big body after the burst");
  assert(document.kind === "fault" && document.code === -32601, `after the burst: ${big.status}`);
}

// ---------------------------------------------------------------------------
// The fuzz loop
// ---------------------------------------------------------------------------

/** What mutations insert: XML syntax, XML-RPC elements, odd numbers and characters. */
const TOKENS = [
  ...(`< > </ /> & ; &amp; &lt; &#0; &#x10FFFF; &#xD800; &bogus; <![CDATA[x]]> ]]> <!-- --> <!DOCTYPE-x> ` +
    `<value> </value> <int> </int> <i4> <i8> <string> </string> <array><data> </data></array> ` +
    `<struct><member><name> </name> </member></struct> <nil/> <boolean> <double> <base64> ` +
    `<dateTime.iso8601> <param> </param> <params> </params> <methodName> </methodName> <methodCall> ` +
    `</methodCall> <fault> -1 0 2147483648 1e309 __proto__ system.multicall <value><nil/></value> é 😀`)
    .split(" "),
  "<?xml version='1.0'?>",
  '<!ENTITY e "e">',
  "9".repeat(400),
  "\u0000",
  "\u0001",
  "\uFFFE",
  "\r\n",
  " ",
];
const RAW_BYTES = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x00], [0xf4, 0x90, 0x80, 0x80]];

function mutate(input: Uint8Array<ArrayBuffer>, random: () => number): Uint8Array<ArrayBuffer> {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const at = (length: number) => Math.floor(random() * (length + 1));
  let body = input;
  const rounds = 1 + Math.floor(random() * 3);
  for (let round = 0; round < rounds; round++) {
    const i = at(body.length);
    const j = Math.min(body.length, i + 1 + Math.floor(random() * 24));
    const token = random() < 0.85 ? encoder.encode(pick(TOKENS)) : new Uint8Array(pick(RAW_BYTES));
    switch (Math.floor(random() * 7)) {
      case 0: // Truncate.
        body = body.slice(0, i);
        break;
      case 1: // Delete a span.
        body = concat(body.slice(0, i), body.slice(j));
        break;
      case 2: // Insert a token.
        body = concat(body.slice(0, i), token, body.slice(i));
        break;
      case 3: // Replace a span with a token.
        body = concat(body.slice(0, i), token, body.slice(j));
        break;
      case 4: // Duplicate a span, many times.
        body = concat(
          body.slice(0, j),
          ...Array(1 + Math.floor(random() * 50)).fill(body.slice(i, j)),
          body.slice(j),
        );
        break;
      case 5: // Flip a byte.
        if (body.length) {
          body = body.slice();
          body[Math.min(i, body.length - 1)] = Math.floor(random() * 256);
        }
        break;
      case 6: { // Swap an element name for another.
        body = encoder.encode(swapElementName(new TextDecoder().decode(body), pick));
        break;
      }
    }
  }
  return body;
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const FUZZ_SEED = Number(Deno.env.get("HOSTILE_SEED") ?? 20261124);

/** Random mutations of valid calls: every answer is a well-formed response or fault, or a 4xx. */
async function fuzz(target: Target, options = { count: 2000, timeMs: 4000, concurrency: 8 }): Promise<void> {
  const seeds = target.samples.map((sample) => encoder.encode(encodeCall(sample)));
  const deadline = performance.now() + options.timeMs;
  const failures: string[] = [];
  const seen = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < options.count && performance.now() < deadline && failures.length < 5) {
      const index = next++;
      // Each mutation has its own generator: reproducible whatever the interleaving.
      const random = prng(FUZZ_SEED * 7919 + index);
      const body = mutate(seeds[Math.floor(random() * seeds.length)]!, random);
      const what = `mutation ${index} (HOSTILE_SEED=${FUZZ_SEED}) ` +
        JSON.stringify(new TextDecoder().decode(body.slice(0, 300)));
      try {
        const answer = await post(target.port, body);
        let kind = `HTTP ${answer.status}`;
        if (answer.status === 200) {
          const document = responseOf(answer, what);
          kind = document.kind === "fault" ? `fault ${document.code}` : "response";
          assert(
            document.kind === "fault" ? PROTOCOL_FAULTS.has(document.code) : document.kind === "response",
            `${what}: ${answer.text}`,
          );
        } else {
          assert(
            answer.status >= 400 && answer.status < 500,
            `${what}: HTTP ${answer.status} ${answer.text}`,
          );
        }
        seen.set(kind, (seen.get(kind) ?? 0) + 1);
      } catch (error) {
        failures.push(`${what}: ${(error as Error).message.split("\n")[0]}`);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  console.log(`fuzz: ${next} mutations (seed ${FUZZ_SEED}):`, Object.fromEntries(seen));
  assert.deepEqual(failures, []);
  assert(next >= 200, `only ${next} mutations in ${options.timeMs} ms`);
  assert((seen.get(`fault ${FaultCode.PARSE_ERROR}`) ?? 0) > 0, "no mutation was a parse error");
  assert((seen.get("response") ?? 0) > 0, "no mutation stayed a valid call");
  await assertAlive(target, "after the fuzz loop");
}

// ---------------------------------------------------------------------------
// The targets
// ---------------------------------------------------------------------------

/** Short, so the stalled case is quick; long enough that twenty 1 MiB bodies arrive in time on a busy machine. */
const REQUEST_TIMEOUT_S = 1;

async function binderTarget() {
  // Probes every hour only: fuzzed registrations must never make it connect anywhere.
  const binder = await startBinder([
    "--request-timeout",
    String(REQUEST_TIMEOUT_S),
    "--check-interval",
    "3600",
    "--drop-after",
    "3600",
  ]);
  let running = true;
  binder.program.status.then(() => running = false);
  const target: Target = {
    port: binder.port,
    pid: binder.program.pid,
    requestTimeoutMs: REQUEST_TIMEOUT_S * 1000,
    running: () => running,
    getStatus: 503,
    samples: [
      { method: "buscar_procedimento", params: ["Fuzz"] },
      { method: "registrar_procedimento", params: ["Fuzz", "127.0.0.1", 9] },
      { method: "remover_procedimento", params: ["Fuzz", "127.0.0.1", 9] },
      { method: "listar_procedimentos", params: [] },
      { method: "system.methodHelp", params: ["buscar_procedimento"] },
      { method: "system.methodSignature", params: ["registrar_procedimento"] },
      {
        method: "system.multicall",
        params: [[
          { methodName: "registrar_procedimento", params: ["Eco", "127.0.0.1", 7] },
          { methodName: "buscar_procedimento", params: ["Eco"] },
        ]],
      },
    ],
  };
  return { target, [Symbol.asyncDispose]: () => binder[Symbol.asyncDispose]() };
}

async function serverTarget() {
  const server = await startServer(undefined, [
    "--db",
    ":memory:",
    "--request-timeout",
    String(REQUEST_TIMEOUT_S),
  ]);
  let running = true;
  server.program.status.then(() => running = false);
  const target: Target = {
    port: server.port,
    pid: server.program.pid,
    requestTimeoutMs: REQUEST_TIMEOUT_S * 1000,
    running: () => running,
    getStatus: 200,
    // No session cookie: calls that name a user are refused at once, so none of them waits.
    samples: [
      { method: "listar_salas", params: [] },
      { method: "registrar_usuario", params: ["fuzz"] },
      { method: "criar_sala", params: ["sala"] },
      { method: "listar_usuarios", params: ["sala"] },
      { method: "entrar_na_sala", params: ["fuzz", "sala"] },
      { method: "enviar_mensagem", params: ["fuzz", "sala", "olá <mundo> & 😀", null] },
      { method: "receber_mensagens", params: ["fuzz", "sala"] },
      { method: "aguardar_mensagens", params: ["fuzz", "sala", 0, 0] },
      { method: "excluir_sala", params: ["fuzz", "sala"] },
      {
        method: "system.multicall",
        params: [[{ methodName: "listar_salas", params: [] }, {
          methodName: "criar_sala",
          params: ["outra"],
        }]],
      },
    ],
  };
  return { target, [Symbol.asyncDispose]: () => server[Symbol.asyncDispose]() };
}

Deno.test("binder: every hostile request gets a fault or a 4xx, quickly, while others are served", async () => {
  await using binder = await binderTarget();
  await hostileTable(binder.target);
  await hostileBurst(binder.target);
});

Deno.test("binder: fuzzed calls get well-formed answers and the binder stays up", async () => {
  await using binder = await binderTarget();
  await fuzz(binder.target);
});

Deno.test("server: every hostile request gets a fault or a 4xx, quickly, while others are served", async () => {
  await using server = await serverTarget();
  await hostileTable(server.target);
  await hostileBurst(server.target);
});

Deno.test("server: fuzzed calls get well-formed answers and the server stays up", async () => {
  await using server = await serverTarget();
  await fuzz(server.target);
});

// ---------------------------------------------------------------------------
// The strict decoder still reads everything the reference client sends
// ---------------------------------------------------------------------------

Deno.test("the strict decoder reads every type Python's xmlrpc.client writes", async () => {
  const xml = await runPython(`
import sys, datetime, xmlrpc.client
print(xmlrpc.client.dumps((
    0, -2**31, 2**31 - 1, True, False, 1.5, -0.25, 1e100, "texto <&> é 😀\\n", "", None,
    xmlrpc.client.Binary(b"\\x00\\xffbin"), datetime.datetime(2026, 11, 24, 15, 28, 12),
    [1, [2, [3]], []], {"a": 1, "__proto__": [1], "b": {"c": None}},
), "metodo.x", allow_none=True), end="")
`);
  const document = parseXmlRpc(xml, "methodCall");
  assert(document.kind === "call");
  assert.equal(document.method, "metodo.x");
  const [binary, date, ...rest] = document.params.splice(11, 2);
  assert.deepEqual(rest, []);
  assert.deepEqual([...(binary as Uint8Array)], [0, 255, 98, 105, 110]);
  // A naive dateTime: its wall clock, in the UTC fields.
  assert.deepEqual(date, new Date(Date.UTC(2026, 10, 24, 15, 28, 12)));
  assert.deepEqual(document.params.slice(0, 11), [
    0,
    -(2 ** 31),
    2 ** 31 - 1,
    true,
    false,
    1.5,
    -0.25,
    1e100,
    "texto <&> é 😀\n",
    "",
    null,
  ]);
  const [list, struct] = document.params.slice(11) as [XmlRpcValue[], Record<string, XmlRpcValue>];
  assert.deepEqual(list, [1, [2, [3]], []]);
  assert.deepEqual(Object.keys(struct), ["a", "__proto__", "b"]);
  assert.equal(Object.getPrototypeOf(struct), Object.prototype, "__proto__ is a member, not the prototype");
  assert.deepEqual(struct.__proto__, [1]);
  assert.deepEqual(struct.b, { c: null });
});

Deno.test("the strict decoder reads dates with and without separators, fraction and zone", () => {
  const date = (text: string) => {
    const document = parseXmlRpc(
      rawCall("m", [`<value><dateTime.iso8601>${text}</dateTime.iso8601></value>`]),
      "methodCall",
    );
    return (document as { params: Date[] }).params[0]!;
  };
  // Naive: the wall clock, in the UTC fields, whatever the time zone.
  assert.deepEqual(date("20261124T15:28:12"), new Date(Date.UTC(2026, 10, 24, 15, 28, 12)));
  assert.deepEqual(date("2026-11-24T15:28:12"), new Date(Date.UTC(2026, 10, 24, 15, 28, 12)));
  assert.deepEqual(date("20261124T152812"), new Date(Date.UTC(2026, 10, 24, 15, 28, 12)));
  assert.deepEqual(date("20240229T00:00:00.5"), new Date(Date.UTC(2024, 1, 29, 0, 0, 0, 500)));
  assert.deepEqual(date("20261124T15:28:12Z"), new Date(Date.UTC(2026, 10, 24, 15, 28, 12)));
  assert.deepEqual(date("20261124T15:28:12-03:00"), new Date(Date.UTC(2026, 10, 24, 18, 28, 12)));
  assert.deepEqual(date("20261124T15:28:12+0530"), new Date(Date.UTC(2026, 10, 24, 9, 58, 12)));
  for (
    const bad of ["20250229T00:00:00", "20261124T15:60:00", "20261124 15:28:12", "20261124T15:28:12+15:00"]
  ) {
    assert.throws(() => date(bad), { code: FaultCode.INVALID_PARAMS }, bad);
  }
});
