/**
 * The XML-RPC codec: the one decoder and the one encoder of every program,
 * for calls and responses alike.
 *
 * - {@linkcode parseXmlRpc}: strict, one-pass decoding of a `methodCall` or
 *   a `methodResponse` (faults included).
 * - {@linkcode encodeCall}, {@linkcode encodeResponse}, {@linkcode encodeFault}:
 *   plain string building, byte for byte what `npm:xmlrpc` writes where it
 *   wrote valid XML-RPC (the tests compare them), with {@linkcode encodeOnce}
 *   for values many answers carry.
 * - {@linkcode decodeXml}: a document's bytes to text, in the encoding it
 *   declares.
 *
 * Conventions, for agreeing with Python's `xmlrpc.client` and other peers:
 * whole numbers within 32 bits are `<int>`, every other number (`-0`, whole
 * numbers past 32 bits) a `<double>` in decimal notation, never with an
 * exponent; NaN and the infinities are refused. A naive `dateTime.iso8601`
 * (no zone, as the original programs write it) is a wall-clock reading, held
 * in a `Date`'s UTC fields: it reads and writes the same whatever the
 * process's time zone ({@linkcode localWallClock} makes one of an instant).
 *
 * @module
 */

import { Buffer } from "node:buffer";

// ---------------------------------------------------------------------------
// Values and faults
// ---------------------------------------------------------------------------

/** A value XML-RPC can carry. */
export type XmlRpcValue =
  | string
  | number
  | boolean
  | null
  | Date
  | Uint8Array
  | XmlRpcValue[]
  | { [member: string]: XmlRpcValue };

/** The interoperable fault codes (specs.xmlrpc-epi "fault code interop"). */
export const FaultCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /**
   * Ours, in the range XML-RPC leaves to servers: the server could not use its store and applied
   * nothing (a failed commit, Redis away): the same call may be made again later.
   */
  UNAVAILABLE: -32001,
} as const;

/** An XML-RPC fault: thrown by methods, rethrown by the client. */
export class Fault extends Error {
  /** Makes a fault with its code ({@linkcode FaultCode} or a method's own) and its message. */
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "Fault";
  }
}

// ---------------------------------------------------------------------------
// Strict decoding of calls
// ---------------------------------------------------------------------------
//
// A hand-written scanner reads the document in one pass and hands each element
// to the XML-RPC rules as it opens and closes, so a document is refused at its
// first error. It reads only the XML that XML-RPC needs: elements (attributes
// are checked and ignored), text with the five predefined entities and
// character references, CDATA sections, comments, processing instructions, and
// the XML declaration at the very start. Any other markup (a DOCTYPE, an
// ENTITY) is refused: no entity is ever expanded or fetched.

/** A decoded XML-RPC document: a call, a response or a fault. */
export type XmlRpcDocument =
  | { kind: "call"; method: string; params: XmlRpcValue[] }
  | { kind: "response"; value: XmlRpcValue }
  | { kind: "fault"; code: number; message: string };

/** Arrays and structs nested deeper than this are refused: no method needs it, and it bounds the work. */
export const MAX_NESTING = 32;

const SCALARS = ["int", "i4", "i8", "boolean", "string", "double", "dateTime.iso8601", "base64", "nil"];
/** What each element may contain. */
const CHILDREN: Record<string, readonly string[]> = {
  methodCall: ["methodName", "params"],
  methodResponse: ["params", "fault"],
  params: ["param"],
  param: ["value"],
  fault: ["value"],
  value: [...SCALARS, "array", "struct"],
  array: ["data"],
  data: ["value"],
  struct: ["member"],
  member: ["name", "value"],
};
/** The only children that may repeat, one for each of these parents; any other appears at most once. */
const REPEATABLE: Record<string, string> = { params: "param", data: "value", struct: "member" };
/** Each child's bit in its parent's `seen` (a scalar's: 1024). */
const CHILD_BIT: Record<string, number> = {
  methodName: 1,
  params: 2,
  param: 4,
  value: 8,
  fault: 16,
  array: 32,
  data: 64,
  struct: 128,
  member: 256,
  name: 512,
};
const SCALAR_BIT = 1024;
/** Elements whose text is content; elsewhere only whitespace may appear. */
const TEXT_ELEMENTS = new Set(["methodName", "name", "value", ...SCALARS]);
/** Characters XML 1.0 forbids anywhere, even as character references. */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** An element or attribute name: XML 1.0's name characters within the BMP, as `npm:sax` takes them (the tests compare the two decoders). */
const NAME =
  /[:_A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD][:_A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\u00B7\u0300-\u036F\u203F-\u2040.\d-]*/y;
/** A reference: one of the five predefined entities, or a character by number. Names are case-sensitive. */
const REFERENCE = /&(?:(lt|gt|amp|quot|apos)|#(\d+)|#x([\dA-Fa-f]+));/y;
const ENTITIES: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** XML-RPC's element names by their first character, longest first (so `param` is not taken for `params`). */
const KNOWN_NAMES: Record<number, string[]> = {};
for (
  const name of [...SCALARS, ...Object.keys(CHILDREN), "methodName", "name"].sort((a, b) =>
    b.length - a.length
  )
) {
  (KNOWN_NAMES[name.charCodeAt(0)] ??= []).push(name);
}

const GT = 0x3e, SLASH = 0x2f, BANG = 0x21, QUESTION = 0x3f, EQUALS = 0x3d;

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

function isXmlChar(code: number): boolean {
  return code === 0x09 || code === 0x0a || code === 0x0d || (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

interface Frame {
  readonly name: string;
  text: string;
  /** The value a child gave: of a param, fault, value or member; the items of params or data. */
  value: XmlRpcValue | undefined;
  /** The values of params or data, the members of a struct: made with the first. */
  items: XmlRpcValue[] | undefined;
  members: { [member: string]: XmlRpcValue } | undefined;
  /** A member's name, or the method's. */
  key: string | undefined;
  /** The children seen so far, as their bits ({@linkcode CHILD_BIT}). */
  seen: number;
}

function notWellFormed(detail: string): Fault {
  return new Fault(FaultCode.PARSE_ERROR, `XML inválido: ${detail}`);
}

function invalidRequest(detail: string): Fault {
  return new Fault(FaultCode.INVALID_REQUEST, `Requisição inválida: ${detail}`);
}

function missing(element: string, child: string): Fault {
  return invalidRequest(`<${element}> sem <${child}>`);
}

/** A name or value cut short for an error message. */
export function clip(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * Decodes an XML-RPC document strictly: well-formed XML (no DOCTYPE, so no
 * entity is ever expanded or fetched), only XML-RPC elements where the spec
 * puts them, scalar values checked whole (`<int>12abc</int>` is refused, not
 * read as 12), at most {@linkcode MAX_NESTING} levels of arrays and structs.
 * Throws a {@linkcode Fault}: -32700 for bad XML, -32600 for XML that is not
 * the expected XML-RPC document, -32602 for a bad value.
 *
 * A response may carry characters XML forbids (control characters): the
 * original Python server writes message text as it came, and one such message
 * must not make a room unreadable. Whoever shows the text cleans it.
 */
export function parseXmlRpc(text: string, root: "methodCall" | "methodResponse"): XmlRpcDocument {
  // XML's end-of-line handling (XML 1.0, 2.11), before anything else: CRLF and a lone CR are read as LF,
  // in text and CDATA alike; a CR written as `&#13;` stays one.
  if (text.includes("\r")) text = text.replace(/\r\n?/g, "\n");
  const illegal = root === "methodCall" ? NOT_XML_CHAR.exec(text) : null;
  if (illegal) throw notXml(illegal[0]);
  const builder = new DocumentBuilder(root);
  new XmlScanner(text, builder).scan();
  if (builder.stack.length) throw notWellFormed(`<${clip(builder.stack.at(-1)!.name)}> não foi fechado`);
  if (!builder.result) throw notWellFormed("documento vazio");
  return builder.result;
}

/** The XML side: markup, text and references, in one pass; elements and text go to the builder. */
class XmlScanner {
  #pos = 0;
  /** The next '&' at or after the position last asked for, -1 when none is left (-2: not looked for yet). */
  #amp = -2;

  constructor(readonly text: string, readonly builder: DocumentBuilder) {}

  scan(): void {
    const text = this.text;
    const start = text.charCodeAt(0) === 0xfeff ? 1 : 0; // A byte order mark left in the text.
    this.#pos = start;
    while (this.#pos < text.length) {
      const lt = text.indexOf("<", this.#pos);
      const end = lt < 0 ? text.length : lt;
      if (end > this.#pos) this.#textUpTo(end);
      if (lt < 0) return;
      this.#pos = lt;
      const next = text.charCodeAt(lt + 1);
      if (next === SLASH) this.#closeTag();
      else if (next === BANG) this.#declaration();
      else if (next === QUESTION) this.#processingInstruction(lt === start);
      else this.#openTag();
    }
  }

  /** Text up to `end`: content of a text element; elsewhere whitespace only. */
  #textUpTo(end: number): void {
    const builder = this.builder;
    if (!builder.stack.length) {
      for (let i = this.#pos; i < end; i++) {
        if (!isXmlSpace(this.text.charCodeAt(i))) throw notWellFormed("texto fora do elemento raiz");
      }
    } else {
      builder.text(this.#decode(this.#pos, end, true));
    }
    this.#pos = end;
  }

  /**
   * The text between `from` and `to` with its references replaced. At a bad
   * reference in content (`isContent`), what came before goes to the builder
   * first: text out of place is reported as such even when a bad reference
   * follows it.
   */
  #decode(from: number, to: number, isContent: boolean): string {
    const text = this.text;
    let amp = this.#ampersand(from);
    if (amp < 0 || amp >= to) return text.slice(from, to);
    let decoded = "";
    while (amp >= 0 && amp < to) {
      decoded += text.slice(from, amp);
      REFERENCE.lastIndex = amp;
      const match = REFERENCE.exec(text);
      const code = match?.[2] !== undefined
        ? parseInt(match[2], 10)
        : match?.[3] !== undefined
        ? parseInt(match[3], 16)
        : undefined;
      if (!match || REFERENCE.lastIndex > to || (code !== undefined && !isXmlChar(code))) {
        if (isContent) this.builder.text(decoded);
        const semicolon = text.indexOf(";", amp);
        const shown = semicolon < 0 || semicolon > to ? text.slice(amp, to) : text.slice(amp, semicolon + 1);
        throw notWellFormed(`referência inválida '${clip(shown, 20)}'`);
      }
      decoded += code === undefined ? ENTITIES[match[1]!]! : String.fromCodePoint(code);
      from = REFERENCE.lastIndex;
      amp = this.#ampersand(from);
    }
    return decoded + text.slice(from, to);
  }

  /** The first '&' at or after `at` (positions only grow): searched once for all, not once per text. */
  #ampersand(at: number): number {
    if (this.#amp !== -1 && this.#amp < at) this.#amp = this.text.indexOf("&", at);
    return this.#amp;
  }

  /** The name at `at`, or undefined when none starts there. */
  #name(at: number): string | undefined {
    // Most names are XML-RPC's own, followed by '>' or '/': found without the regular expression.
    const text = this.text;
    const known = KNOWN_NAMES[text.charCodeAt(at)];
    if (known) {
      for (const name of known) {
        const after = text.charCodeAt(at + name.length);
        if ((after === GT || after === SLASH) && text.startsWith(name, at)) return name;
      }
    }
    NAME.lastIndex = at;
    return NAME.test(text) ? text.slice(at, NAME.lastIndex) : undefined;
  }

  #skipSpace(at: number): number {
    while (isXmlSpace(this.text.charCodeAt(at))) at++;
    return at;
  }

  /** `<name attribute="value" ...>` or `<name .../>`. */
  #openTag(): void {
    const text = this.text;
    const name = this.#name(this.#pos + 1);
    if (name === undefined) throw notWellFormed("'<' sem nome de elemento");
    let at = this.#pos + 1 + name.length;
    let attributes: Set<string> | undefined;
    for (;;) {
      const spaced = isXmlSpace(text.charCodeAt(at));
      at = this.#skipSpace(at);
      const c = text.charCodeAt(at);
      if (c === GT || (c === SLASH && text.charCodeAt(at + 1) === GT)) {
        this.#pos = at + (c === GT ? 1 : 2);
        this.builder.open(name);
        if (c === SLASH) this.builder.close();
        return;
      }
      const attribute = spaced ? this.#name(at) : undefined;
      if (attribute === undefined) {
        throw notWellFormed(at < text.length ? `<${clip(name)}> malformado` : `<${clip(name)}> incompleto`);
      }
      if (attributes?.has(attribute)) throw notWellFormed(`atributo '${clip(attribute)}' repetido`);
      (attributes ??= new Set()).add(attribute);
      at = this.#attributeValue(this.#skipSpace(at + attribute.length), name);
    }
  }

  /** `= "value"` (or 'value') at `at`, checked and ignored; where it ends. */
  #attributeValue(at: number, element: string): number {
    const text = this.text;
    if (text.charCodeAt(at) !== EQUALS) throw notWellFormed(`atributo sem valor em <${clip(element)}>`);
    at = this.#skipSpace(at + 1);
    const quote = text[at];
    const end = quote === '"' || quote === "'" ? text.indexOf(quote, at + 1) : -1;
    if (end < 0) throw notWellFormed(`valor de atributo sem aspas em <${clip(element)}>`);
    if (text.slice(at + 1, end).includes("<")) {
      throw notWellFormed(`'<' em um valor de atributo em <${clip(element)}>`);
    }
    this.#decode(at + 1, end, false);
    return end + 1;
  }

  /** `</name>`: closes the element open last. */
  #closeTag(): void {
    const name = this.#name(this.#pos + 2);
    if (name === undefined) throw notWellFormed("'</' sem nome de elemento");
    const end = this.#skipSpace(this.#pos + 2 + name.length);
    if (this.text.charCodeAt(end) !== GT) throw notWellFormed(`</${clip(name)}> malformado`);
    const open = this.builder.stack.at(-1);
    if (!open) throw notWellFormed(`</${clip(name)}> sem <${clip(name)}>`);
    if (open.name !== name) throw notWellFormed(`</${clip(name)}> onde se esperava </${clip(open.name)}>`);
    this.#pos = end + 1;
    this.builder.close();
  }

  /** `<!-- comment -->` or `<![CDATA[text]]>`; any other `<!` (DOCTYPE, ENTITY...) is refused. */
  #declaration(): void {
    const text = this.text;
    if (text.startsWith("<!--", this.#pos)) {
      const end = text.indexOf("--", this.#pos + 4);
      if (end < 0) throw notWellFormed("comentário não fechado");
      if (text.charCodeAt(end + 2) !== GT) throw notWellFormed("'--' dentro de um comentário");
      this.#pos = end + 3;
    } else if (text.startsWith("<![CDATA[", this.#pos)) {
      const end = text.indexOf("]]>", this.#pos + 9);
      if (end < 0) throw notWellFormed("seção CDATA não fechada");
      if (!this.builder.stack.length) throw notWellFormed("seção CDATA fora do elemento raiz");
      this.builder.text(text.slice(this.#pos + 9, end));
      this.#pos = end + 3;
    } else {
      throw notWellFormed("DOCTYPE e entidades não são aceitos");
    }
  }

  /** `<?target ...?>`, ignored; `<?xml ...?>`, the XML declaration, only at the very start. */
  #processingInstruction(atStart: boolean): void {
    const text = this.text;
    const end = text.indexOf("?>", this.#pos + 2);
    if (end < 0) throw notWellFormed("instrução de processamento não fechada");
    let targetEnd = this.#pos + 2;
    while (targetEnd < end && !isXmlSpace(text.charCodeAt(targetEnd)) && text[targetEnd] !== "?") targetEnd++;
    if (!atStart && text.slice(this.#pos + 2, targetEnd).toLowerCase() === "xml") {
      throw notWellFormed("a declaração <?xml ...?> só pode vir no início do documento");
    }
    this.#pos = end + 2;
  }
}

/** The XML-RPC side: which element may be where, and the value each one gives. */
class DocumentBuilder {
  readonly stack: Frame[] = [];
  result: XmlRpcDocument | undefined;
  #nesting = 0;

  constructor(readonly root: "methodCall" | "methodResponse") {}

  open(name: string): void {
    const parent = this.stack.at(-1);
    if (!parent) {
      if (this.result) throw notWellFormed("mais de um elemento raiz");
      if (name !== this.root) throw invalidRequest(`a raiz é <${clip(name)}>, e não <${this.root}>`);
    } else {
      if (!CHILDREN[parent.name]?.includes(name)) {
        throw invalidRequest(`<${parent.name}> não pode conter <${clip(name)}>`);
      }
      const bit = CHILD_BIT[name] ?? SCALAR_BIT;
      const repeated = parent.name === "value" ? parent.seen !== 0 : (parent.seen & bit) !== 0;
      if (repeated && REPEATABLE[parent.name] !== name) {
        throw invalidRequest(`<${parent.name}> com mais de um <${name}>`);
      }
      parent.seen |= bit;
    }
    if ((name === "array" || name === "struct") && ++this.#nesting > MAX_NESTING) {
      throw new Fault(
        FaultCode.INVALID_PARAMS,
        `Parâmetros inválidos: arrays e structs aninhados em mais de ${MAX_NESTING} níveis`,
      );
    }
    this.stack.push({
      name,
      text: "",
      value: undefined,
      items: undefined,
      members: undefined,
      key: undefined,
      seen: 0,
    });
  }

  /** Text or CDATA inside the element open last. */
  text(chunk: string): void {
    const frame = this.stack.at(-1)!;
    if (TEXT_ELEMENTS.has(frame.name)) frame.text += chunk;
    else if (chunk.trim()) throw invalidRequest(`texto fora de lugar em <${frame.name}>`);
  }

  /** Closes the element open last. */
  close(): void {
    const frame = this.stack.pop()!;
    const parent = this.stack.at(-1)!;
    const name = frame.name;
    switch (name) {
      case "methodName":
      case "name":
        parent.key = frame.text;
        break;
      case "value": {
        if (frame.seen && frame.text.trim()) throw invalidRequest("<value> com texto e um tipo");
        const value = frame.seen ? frame.value! : frame.text;
        if (parent.name === "data") (parent.items ??= []).push(value);
        else parent.value = value;
        break;
      }
      case "param":
        if (!(frame.seen & CHILD_BIT.value!)) throw missing(name, "value");
        (parent.items ??= []).push(frame.value!);
        break;
      case "params":
        parent.value = frame.items ?? [];
        break;
      case "fault":
      case "array":
        if (!frame.seen) throw missing(name, name === "fault" ? "value" : "data");
        parent.value = frame.value;
        this.#nesting -= name === "array" ? 1 : 0;
        break;
      case "data":
        parent.value = frame.items ?? [];
        break;
      case "struct":
        parent.value = frame.members ?? {};
        this.#nesting--;
        break;
      case "member":
        if (frame.key === undefined) throw missing(name, "name");
        if (!(frame.seen & CHILD_BIT.value!)) throw missing(name, "value");
        parent.members ??= {};
        if (frame.key === "__proto__") {
          // A member named __proto__ is data, not the object's prototype.
          Object.defineProperty(parent.members, frame.key, {
            value: frame.value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else parent.members[frame.key] = frame.value!;
        break;
      case "methodCall":
        if (!frame.key?.trim()) throw invalidRequest("a chamada não tem nome de método (<methodName>)");
        this.result = {
          kind: "call",
          method: frame.key,
          params: (frame.value as XmlRpcValue[] | undefined) ?? [],
        };
        break;
      case "methodResponse":
        this.result = responseOf(frame);
        break;
      default: // A scalar.
        parent.value = scalar(name, frame.text);
    }
  }
}

function notXml(char: string): Fault {
  const code = char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
  return new Fault(FaultCode.PARSE_ERROR, `XML inválido: o caractere U+${code} não é permitido em XML`);
}

function responseOf(frame: Frame): XmlRpcDocument {
  if (frame.seen !== CHILD_BIT.params && frame.seen !== CHILD_BIT.fault) {
    throw invalidRequest("<methodResponse> precisa de <params> ou <fault>");
  }
  if (frame.seen === CHILD_BIT.params) {
    const params = frame.value as XmlRpcValue[];
    if (params.length !== 1) throw invalidRequest("<methodResponse> precisa de exatamente um <param>");
    return { kind: "response", value: params[0]! };
  }
  const fault = frame.value as { faultCode?: unknown; faultString?: unknown };
  if (!Number.isInteger(fault?.faultCode) || typeof fault.faultString !== "string") {
    throw invalidRequest("<fault> precisa de {faultCode: int, faultString: string}");
  }
  return { kind: "fault", code: fault.faultCode as number, message: fault.faultString };
}

const INTEGER = /^[+-]?\d+$/;
const DOUBLE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATE_TIME =
  /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.(\d{1,3})\d*)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** A scalar's text, checked whole; a bad one is a -32602 fault. */
function scalar(type: string, text: string): XmlRpcValue {
  const trimmed = text.trim();
  let value: XmlRpcValue | undefined;
  switch (type) {
    case "string":
      return text;
    case "int":
    case "i4":
      value = INTEGER.test(trimmed) ? Number(trimmed) : undefined;
      if (value !== undefined && (value < -(2 ** 31) || value >= 2 ** 31)) value = undefined;
      break;
    case "i8":
      value = INTEGER.test(trimmed) ? Number(trimmed) : undefined;
      if (!Number.isSafeInteger(value)) value = undefined;
      break;
    case "boolean":
      value = trimmed === "1" ? true : trimmed === "0" ? false : undefined;
      break;
    case "double":
      value = DOUBLE.test(trimmed) && Number.isFinite(Number(trimmed)) ? Number(trimmed) : undefined;
      break;
    case "base64": {
      const base64 = text.replace(/\s+/g, "");
      if (base64.length % 4 === 0 && BASE64.test(base64)) value = Buffer.from(base64, "base64");
      break;
    }
    case "dateTime.iso8601":
      value = dateTime(trimmed);
      break;
    case "nil":
      value = trimmed === "" ? null : undefined;
      break;
  }
  if (value === undefined) {
    throw new Fault(
      FaultCode.INVALID_PARAMS,
      `Parâmetros inválidos: '${clip(text)}' não é um ${type} válido`,
    );
  }
  return value;
}

/**
 * `YYYYMMDDTHH:MM:SS`, separators, a fraction (to the millisecond) and a zone
 * optional. Naive (no zone, as the original programs write it): a wall-clock
 * reading, in the Date's UTC fields, whatever the process's time zone. With
 * a zone: that instant.
 */
function dateTime(text: string): Date | undefined {
  const match = DATE_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day, hours, minutes, seconds] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Number((match[7] ?? "").padEnd(3, "0"));
  if (month < 1 || month > 12 || day < 1 || hours > 23 || minutes > 59 || seconds > 59) return undefined;
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: years 0 to 99 are years, not 1900 to 1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hours, minutes, seconds, ms);
  if (date.getUTCDate() !== day) return undefined; // Not 30 February.
  const zone = match[8];
  if (!zone || zone === "Z") return date;
  const digits = zone.slice(1).replace(":", "");
  const offset = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0");
  if (offset > 14 * 60) return undefined;
  return new Date(date.getTime() - (zone.startsWith("-") ? -offset : offset) * 60_000);
}

/**
 * The wall-clock time of `instant` in this process's time zone, as a naive
 * `dateTime.iso8601` carries it (in the UTC fields): what the original
 * Python server writes with `datetime.now()`.
 */
export function localWallClock(instant: Date | number): Date {
  const local = new Date(instant);
  const wall = new Date(0);
  wall.setUTCFullYear(local.getFullYear(), local.getMonth(), local.getDate());
  wall.setUTCHours(local.getHours(), local.getMinutes(), local.getSeconds(), local.getMilliseconds());
  return wall;
}

// ---------------------------------------------------------------------------
// Bytes to text
// ---------------------------------------------------------------------------

const UTF8 = new TextDecoder("utf-8", { fatal: true });
/** The names of ISO-8859-1 (which WHATWG's TextDecoder reads as windows-1252, unlike XML parsers). */
const LATIN1 = new Set([
  "iso-8859-1",
  "iso8859-1",
  "iso_8859-1",
  "iso_8859-1:1987",
  "iso88591",
  "latin1",
  "latin-1",
  "l1",
  "iso-ir-100",
  "csisolatin1",
  "cp819",
  "ibm819",
]);
const ASCII = new Set(["us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "csascii"]);
const CHARSET = /;\s*charset\s*=\s*"?([^\s;"]+)"?/i;
const DECLARED = /^<\?xml\s[^?]*?\bencoding\s*=\s*(["'])([A-Za-z][\w.:-]*)\1/;

/**
 * The text of an XML document's bytes, in the encoding it declares (RFC
 * 7303): a byte order mark, else the `charset` of its media type, else the
 * XML declaration's `encoding`, else UTF-8. ISO-8859-1
 * is ISO-8859-1 (byte for code point), as XML parsers read it. Bytes that
 * are not of that encoding, or an encoding unknown, are a -32700 fault: text
 * is never replaced silently.
 */
export function decodeXml(bytes: Uint8Array, contentType?: string | null): string {
  let declared = bomEncoding(bytes) ?? (contentType ? CHARSET.exec(contentType)?.[1] : undefined);
  if (declared === undefined) {
    // Nearly every document is UTF-8 with no charset (Python's client, ours): decoded once, its declaration
    // read from the text; only one that declares another encoding is decoded again, from its bytes.
    let text: string | undefined;
    try {
      text = UTF8.decode(bytes);
    } catch {
      // Not UTF-8: whatever it declares says how to read it.
    }
    declared = text === undefined ? xmlDeclarationEncoding(bytes) : DECLARED.exec(text)?.[2];
    const utf8 = declared === undefined || /^utf-?8$/i.test(declared);
    if (text !== undefined && utf8) return text;
  }
  const label = declared?.toLowerCase() ?? "utf-8";
  const invalid = () =>
    new Fault(FaultCode.PARSE_ERROR, `XML inválido: o documento não é ${clip(label)} válido`);
  if (LATIN1.has(label) || ASCII.has(label)) {
    if (ASCII.has(label) && bytes.some((byte) => byte > 0x7f)) throw invalid();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  }
  let decoder: TextDecoder;
  try {
    decoder = label === "utf-8" || label === "utf8" ? UTF8 : new TextDecoder(label, { fatal: true });
  } catch {
    throw new Fault(FaultCode.PARSE_ERROR, `XML inválido: codificação '${clip(label)}' desconhecida`);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw invalid();
  }
}

function bomEncoding(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return "utf-8";
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return "utf-16be";
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return "utf-16le";
  return undefined;
}

/** The `encoding` of an XML declaration at the very start, read as ASCII. */
function xmlDeclarationEncoding(bytes: Uint8Array): string | undefined {
  // `<?xml ` then the declaration, in its first 200 bytes at most.
  if (bytes[0] !== 0x3c || bytes[1] !== 0x3f || bytes[2] !== 0x78) return undefined;
  const head = bytes.subarray(0, 200);
  const end = head.indexOf(0x3e);
  return DECLARED.exec(String.fromCharCode(...head.subarray(0, end < 0 ? head.length : end + 1)))?.[2];
}

// ---------------------------------------------------------------------------
// Encoding responses and calls
// ---------------------------------------------------------------------------
//
// Every answer goes through here, so it is plain string building: the same
// bytes the codec's serializer (xmlbuilder) writes, about 13 times faster,
// but where the codec wrote what peers misread: text with two `]]>` (broken
// XML), a CR in CDATA (read as LF), numbers that are not whole ones within
// 32 bits (`<int>1e+21</int>`, `<int>0</int>` for -0), and dates (in local
// time). Strings with `<`, `&` or `]]>` are CDATA sections, as the codec
// wrote them, but for strings with a CR: those are escaped text with `&#xD;`.
// Whole numbers within 32 bits are <int>; every other number a <double> in
// decimal notation. A Date is written by its UTC fields (see the module's
// conventions).

/** Characters XML 1.0 cannot carry: refused, as the codec did (it let lone surrogates pass, and so do we). */
const NOT_ENCODABLE = /[^\t\n\r\x20-\uFFFD]/;
const TO_ESCAPE = /[&<>\r]/;
const AS_CDATA = /[<&]|\]\]>/;

function checkEncodable(text: string): string {
  const illegal = NOT_ENCODABLE.exec(text);
  if (illegal) {
    throw new Error(
      `Caractere inválido em XML (U+${illegal[0].charCodeAt(0).toString(16)}) na posição ${illegal.index}`,
    );
  }
  return text;
}

function escapeText(text: string): string {
  checkEncodable(text);
  if (!TO_ESCAPE.test(text)) return text;
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r/g, "&#xD;");
}

function stringXml(text: string): string {
  if (text.length === 0) return "<string/>";
  if (AS_CDATA.test(text) && !text.includes("\r")) {
    // Every `]]>` split in two sections (the codec split only the first: two made broken XML).
    return `<string><![CDATA[${checkEncodable(text.replaceAll("]]>", "]]]]><![CDATA[>"))}]]></string>`;
  }
  return `<string>${escapeText(text)}</string>`;
}

/** Values marked by {@linkcode encodeOnce}, and their XML once written. */
const encodedOnce = new WeakSet<object>();
const encodedXml = new WeakMap<object, string>();

/**
 * Marks a struct or array that many answers carry (a chat message sent to a
 * whole room): it is encoded the first time and its XML reused after. The
 * value is frozen; what it holds must not change either.
 */
export function encodeOnce<T extends object>(value: T): Readonly<T> {
  encodedOnce.add(value);
  return Object.freeze(value);
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/**
 * `YYYYMMDDTHH:MM:SS` of the Date's UTC fields (a wall-clock reading, see
 * {@linkcode localWallClock}): what the original Python programs write and
 * parse. The year has four digits (0000 to 9999, else it is refused), and
 * milliseconds are dropped: the format has none.
 */
function iso8601(date: Date): string {
  const year = date.getUTCFullYear();
  if (!(year >= 0 && year <= 9999)) {
    const shown = Number.isNaN(date.getTime()) ? "data inválida" : date.toISOString();
    throw new Error(`Data que XML-RPC não representa (anos 0000 a 9999): ${shown}`);
  }
  return `${String(year).padStart(4, "0")}${pad2(date.getUTCMonth() + 1)}${pad2(date.getUTCDate())}T` +
    `${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}:${pad2(date.getUTCSeconds())}`;
}

/**
 * A number as XML-RPC carries it: whole numbers within 32 bits as `<int>`;
 * any other (`-0`, fractions, whole numbers past 32 bits, which an `<int>`
 * cannot hold and peers wrap or refuse) as a `<double>` in decimal notation,
 * exact and with a point, as the spec writes doubles (no exponent). NaN and
 * the infinities have no XML-RPC form: refused.
 */
function numberXml(value: number): string {
  if (Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 && !Object.is(value, -0)) {
    return `<value><int>${value}</int></value>`;
  }
  if (!Number.isFinite(value)) throw new Error(`Número que XML-RPC não representa: ${value}`);
  return `<value><double>${decimalNotation(value)}</double></value>`;
}

/** A finite number's shortest exact digits (as `String` gives them) written out without an exponent. */
function decimalNotation(value: number): string {
  if (Object.is(value, -0)) return "-0.0";
  const text = String(value);
  const e = text.indexOf("e");
  if (e < 0) return text.includes(".") ? text : `${text}.0`;
  const sign = text[0] === "-" ? "-" : "";
  const mantissa = text.slice(sign.length, e);
  const point = mantissa.indexOf(".");
  const digits = mantissa.replace(".", "");
  // Where the point falls in `digits`, once the exponent has moved it.
  const at = (point < 0 ? mantissa.length : point) + Number(text.slice(e + 1));
  if (at <= 0) return `${sign}0.${"0".repeat(-at)}${digits}`;
  if (at >= digits.length) return `${sign}${digits}${"0".repeat(at - digits.length)}.0`;
  return `${sign}${digits.slice(0, at)}.${digits.slice(at)}`;
}

function valueXml(value: unknown): string {
  switch (typeof value) {
    case "string":
      return `<value>${stringXml(value)}</value>`;
    case "number":
      return numberXml(value);
    case "boolean":
      return value ? "<value><boolean>1</boolean></value>" : "<value><boolean>0</boolean></value>";
    case "object": {
      if (value === null) return "<value><nil/></value>";
      if (value instanceof Date) {
        return `<value><dateTime.iso8601>${iso8601(value)}</dateTime.iso8601></value>`;
      }
      if (value instanceof Uint8Array) {
        const base64 = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
        return base64 ? `<value><base64>${base64}</base64></value>` : "<value><base64/></value>";
      }
      const cached = encodedXml.get(value);
      if (cached !== undefined) return cached;
      let xml: string;
      if (Array.isArray(value)) {
        let items = "";
        for (let i = 0; i < value.length; i++) items += valueXml(value[i]);
        xml = items
          ? `<value><array><data>${items}</data></array></value>`
          : "<value><array><data/></array></value>";
      } else {
        let members = "";
        for (const key of Object.keys(value)) {
          const name = key ? `<name>${escapeText(key)}</name>` : "<name/>";
          members += `<member>${name}${valueXml((value as Record<string, unknown>)[key])}</member>`;
        }
        xml = members ? `<value><struct>${members}</struct></value>` : "<value><struct/></value>";
      }
      if (encodedOnce.has(value)) encodedXml.set(value, xml);
      return xml;
    }
    default: // undefined, a function: an empty <value/>, as the codec wrote.
      return "<value/>";
  }
}

/** Documents of results marked by {@linkcode encodeOnce}: a result many callers get is one string for all. */
const encodedDocuments = new WeakMap<object, string>();

/** The `methodResponse` document that carries a result. Throws for text XML cannot carry. */
export function encodeResponse(result: unknown): string {
  const once = typeof result === "object" && result !== null && encodedOnce.has(result);
  const cached = once ? encodedDocuments.get(result) : undefined;
  if (cached !== undefined) return cached;
  const xml = `<?xml version="1.0"?><methodResponse><params><param>${
    valueXml(result)
  }</param></params></methodResponse>`;
  if (once) encodedDocuments.set(result, xml);
  return xml;
}

/** The `methodCall` document of a call. */
export function encodeCall(method: string, params: readonly unknown[]): string {
  let xml = "";
  for (const param of params) xml += `<param>${valueXml(param)}</param>`;
  const name = method ? `<methodName>${escapeText(method)}</methodName>` : "<methodName/>";
  return `<?xml version="1.0"?><methodCall>${name}${
    xml ? `<params>${xml}</params>` : "<params/>"
  }</methodCall>`;
}

/** The `methodResponse` document of a fault. */
export function encodeFault(code: number, message: string): string {
  return `<?xml version="1.0"?><methodResponse><fault>${
    valueXml({ faultCode: code, faultString: message })
  }</fault></methodResponse>`;
}
