// @ts-check
/**
 * XML-RPC for the page: calls encoded, responses and faults decoded. Plain
 * JavaScript with no DOM and no dependency, so the browser runs it as it is
 * and Deno tests it in-process against the server's codec (`lib/wire/codec.ts`).
 *
 * The decoder reads what XML-RPC needs and nothing more: elements (their
 * attributes ignored), text with the five predefined entities and character
 * references, CDATA sections (the server writes text holding `<` or `&` so),
 * comments and the XML declaration. Anything else (a DOCTYPE, an unknown
 * entity, a stray element) is refused with a {@linkcode Fault} of code -32700.
 *
 * @module
 */

/**
 * A value XML-RPC carries.
 * @typedef {string | number | boolean | null | Date | Uint8Array | XmlRpcArray | XmlRpcStruct} XmlRpcValue
 */
/** @typedef {Array<XmlRpcValue>} XmlRpcArray */
/**
 * A struct: members by name.
 * @typedef {{ [member: string]: XmlRpcValue }} XmlRpcStruct
 */

/** The interoperable code of a document that is not XML-RPC. */
export const PARSE_ERROR = -32700;

/** A fault the server answered (or a document that could not be read): its code and its message. */
export class Fault extends Error {
  /**
   * @param {number} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "Fault";
    /** @readonly */
    this.code = code;
  }
}

// ---------------------------------------------------------------------------
// Encoding calls
// ---------------------------------------------------------------------------

/** Characters XML 1.0 cannot carry (lone surrogates pass, as the server's encoder lets them). */
const NOT_ENCODABLE = /[^\t\n\r\x20-\uFFFD]/;

/**
 * Text as XML element content: `&`, `<`, `>` escaped, and CR as a reference so that it survives.
 * @param {string} text
 * @returns {string}
 */
function escapeText(text) {
  const illegal = NOT_ENCODABLE.exec(text);
  if (illegal) {
    throw new RangeError(`caractere inválido em XML (U+${illegal[0].charCodeAt(0).toString(16)})`);
  }
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/\r/g, "&#xD;");
}

/** @param {number} n */
function pad2(n) {
  return String(n).padStart(2, "0");
}

/**
 * `YYYYMMDDTHH:MM:SS` in local time, as the original programs write it.
 * @param {Date} date
 */
function iso8601(date) {
  return `${date.getFullYear()}${pad2(date.getMonth() + 1)}${pad2(date.getDate())}T` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/**
 * @param {Uint8Array} bytes
 * @returns {string}
 */
function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * One value as XML.
 * @param {unknown} value
 * @returns {string}
 */
function valueXml(value) {
  switch (typeof value) {
    case "string":
      return `<value><string>${escapeText(value)}</string></value>`;
    case "number":
      if (Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
        return `<value><int>${value}</int></value>`;
      }
      if (Number.isSafeInteger(value)) return `<value><i8>${value}</i8></value>`;
      if (!Number.isFinite(value)) throw new RangeError(`XML-RPC não leva ${value}`);
      return `<value><double>${value}</double></value>`;
    case "boolean":
      return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
    case "object": {
      if (value === null) return "<value><nil/></value>";
      if (value instanceof Date) {
        return `<value><dateTime.iso8601>${iso8601(value)}</dateTime.iso8601></value>`;
      }
      if (value instanceof Uint8Array) return `<value><base64>${toBase64(value)}</base64></value>`;
      if (Array.isArray(value)) {
        return `<value><array><data>${value.map(valueXml).join("")}</data></array></value>`;
      }
      let members = "";
      for (const [name, member] of Object.entries(value)) {
        members += `<member><name>${escapeText(name)}</name>${valueXml(member)}</member>`;
      }
      return `<value><struct>${members}</struct></value>`;
    }
    default:
      throw new TypeError(`XML-RPC não leva ${typeof value}`);
  }
}

/**
 * The `methodCall` document of a call.
 * @param {string} method
 * @param {readonly unknown[]} params
 * @returns {string}
 */
export function encodeCall(method, params) {
  const encoded = params.map((param) => `<param>${valueXml(param)}</param>`).join("");
  return `<?xml version="1.0"?><methodCall><methodName>${escapeText(method)}</methodName>` +
    `<params>${encoded}</params></methodCall>`;
}

// ---------------------------------------------------------------------------
// Decoding responses
// ---------------------------------------------------------------------------

/**
 * A piece of the document: an element's start (self-closing or not), its end, or text.
 * @typedef {{ kind: "open"; name: string; empty: boolean } | { kind: "close"; name: string } | { kind: "text"; text: string }} Token
 */

/** Markup and text, one token at a time (`y`: each match starts where the last ended). */
const TOKEN =
  /<\?xml[^?]*\?>|<!--(?:[^-]|-(?!-))*-->|<!\[CDATA\[([\s\S]*?)\]\]>|<(\/?)([A-Za-z_][\w.:-]*)(?:\s+[^<>]*?)?\s*(\/?)>|([^<]+)/y;
const REFERENCE = /&(?:(lt|gt|amp|quot|apos)|#(\d+)|#x([\dA-Fa-f]+));|&/g;
/** @type {Record<string, string>} */
const ENTITIES = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };

/** @param {string} detail */
function malformed(detail) {
  return new Fault(PARSE_ERROR, `resposta XML-RPC inválida: ${detail}`);
}

/**
 * Text with its references replaced.
 * @param {string} text
 * @returns {string}
 */
function decodeText(text) {
  return text.replace(REFERENCE, (whole, entity, decimal, hex) => {
    if (entity) return ENTITIES[entity] ?? whole;
    if (decimal === undefined && hex === undefined) throw malformed("'&' solto no texto");
    const code = decimal !== undefined ? Number(decimal) : parseInt(hex, 16);
    if (!(code === 9 || code === 10 || code === 13 || (code >= 0x20 && code <= 0x10ffff))) {
      throw malformed(`referência a um caractere inválido (${code})`);
    }
    return String.fromCodePoint(code);
  });
}

/**
 * The document as tokens; comments and the declaration dropped, text and CDATA merged.
 * @param {string} xml
 * @returns {Token[]}
 */
function tokenize(xml) {
  /** @type {Token[]} */
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < xml.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(xml);
    if (!match) throw malformed(`marcação inesperada na posição ${at}`);
    const [whole, cdata, slash, name, selfClosing, text] = match;
    /** @type {string | undefined} */
    let content;
    if (cdata !== undefined) content = cdata;
    else if (text !== undefined) content = decodeText(text);
    else if (name !== undefined) {
      if (slash && selfClosing) throw malformed(`</${name}/>`);
      tokens.push(slash ? { kind: "close", name } : { kind: "open", name, empty: selfClosing === "/" });
    } else if (whole.startsWith("<?") && at !== 0) throw malformed("declaração XML fora do início");
    if (content !== undefined) {
      const last = tokens[tokens.length - 1];
      if (last?.kind === "text") last.text += content;
      else tokens.push({ kind: "text", text: content });
    }
  }
  return tokens;
}

/** Reads tokens in order, skipping the whitespace between elements. */
class Reader {
  /** @param {Token[]} tokens */
  constructor(tokens) {
    this.tokens = tokens;
    this.at = 0;
  }

  /** The next token, whitespace included. */
  next() {
    const token = this.tokens[this.at++];
    if (!token) throw malformed("o documento acaba antes da hora");
    return token;
  }

  /** The next token that is not whitespace. */
  nextElement() {
    for (;;) {
      const token = this.next();
      if (token.kind !== "text") return token;
      if (token.text.trim()) throw malformed(`texto fora de lugar: '${token.text.trim().slice(0, 20)}'`);
    }
  }

  /**
   * The start of this element; true when it closes itself.
   * @param {string} name
   */
  open(name) {
    const token = this.nextElement();
    if (token.kind !== "open" || token.name !== name) throw malformed(`esperava <${name}>`);
    return token.empty;
  }

  /** @param {string} name */
  close(name) {
    const token = this.nextElement();
    if (token.kind !== "close" || token.name !== name) throw malformed(`esperava </${name}>`);
  }

  /**
   * The text up to the end of this element (after its start).
   * @param {string} name
   */
  textUntil(name) {
    let text = "";
    for (;;) {
      const token = this.next();
      if (token.kind === "text") text += token.text;
      else if (token.kind === "close" && token.name === name) return text;
      else throw malformed(`<${name}> só leva texto`);
    }
  }

  /** Nothing but whitespace left. */
  finish() {
    for (const token of this.tokens.slice(this.at)) {
      if (token.kind !== "text" || token.text.trim()) throw malformed("sobra depois do documento");
    }
  }

  /**
   * Whether the next element is the end of this one (consumed if so).
   * @param {string} name
   */
  closes(name) {
    const start = this.at;
    const token = this.nextElement();
    if (token.kind === "close" && token.name === name) return true;
    this.at = start;
    return false;
  }
}

const INTEGER = /^[+-]?\d+$/;
const DOUBLE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATE_TIME =
  /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.(\d{1,3})\d*)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * `YYYYMMDDTHH:MM:SS` (local time without a zone); separators, fraction and zone optional.
 * @param {string} text
 * @returns {Date | undefined}
 */
function dateTime(text) {
  const match = DATE_TIME.exec(text);
  if (!match) return undefined;
  const [year, month, day, hours, minutes, seconds] = match.slice(1, 7).map(Number);
  if (
    year === undefined || month === undefined || day === undefined || hours === undefined ||
    minutes === undefined || seconds === undefined
  ) return undefined;
  const ms = Number((match[7] ?? "").padEnd(3, "0"));
  if (month < 1 || month > 12 || day < 1 || hours > 23 || minutes > 59 || seconds > 59) return undefined;
  const zone = match[8];
  const date = new Date(0);
  if (!zone) {
    date.setFullYear(year, month - 1, day);
    date.setHours(hours, minutes, seconds, ms);
    return date.getDate() === day ? date : undefined;
  }
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hours, minutes, seconds, ms);
  if (date.getUTCDate() !== day) return undefined;
  const digits = zone.slice(1).replace(":", "");
  const offset = zone === "Z" ? 0 : Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0");
  if (offset > 14 * 60) return undefined;
  return new Date(date.getTime() - (zone.startsWith("-") ? -offset : offset) * 60_000);
}

/**
 * A scalar's text as its value; undefined when it is not one.
 * @param {string} type
 * @param {string} text
 * @returns {XmlRpcValue | undefined}
 */
function scalar(type, text) {
  const trimmed = text.trim();
  switch (type) {
    case "string":
      return text;
    case "int":
    case "i4": {
      const value = INTEGER.test(trimmed) ? Number(trimmed) : NaN;
      return value >= -(2 ** 31) && value < 2 ** 31 ? value : undefined;
    }
    case "i8": {
      const value = INTEGER.test(trimmed) ? Number(trimmed) : NaN;
      return Number.isSafeInteger(value) ? value : undefined;
    }
    case "boolean":
      return trimmed === "1" ? true : trimmed === "0" ? false : undefined;
    case "double":
      return DOUBLE.test(trimmed) && Number.isFinite(Number(trimmed)) ? Number(trimmed) : undefined;
    case "dateTime.iso8601":
      return dateTime(trimmed);
    case "base64": {
      const base64 = text.replace(/\s+/g, "");
      if (base64.length % 4 !== 0 || !BASE64.test(base64)) return undefined;
      return Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
    }
    case "nil":
      return trimmed === "" ? null : undefined;
  }
  return undefined;
}

/** Arrays and structs nested deeper than this are refused, as the server refuses them. */
const MAX_NESTING = 32;

/**
 * A `<value>` whose start was read.
 * @param {Reader} reader
 * @param {boolean} empty
 * @param {number} depth
 * @returns {XmlRpcValue}
 */
function readValue(reader, empty, depth) {
  if (empty) return "";
  let text = "";
  for (;;) {
    const token = reader.next();
    if (token.kind === "text") {
      text += token.text;
      continue;
    }
    // No type: a string, its text as it is.
    if (token.kind === "close" && token.name === "value") return text;
    if (token.kind !== "open" || text.trim()) throw malformed("<value> com texto e elemento");
    const value = readTyped(reader, token.name, token.empty, depth);
    reader.close("value");
    return value;
  }
}

/**
 * A typed value whose start was read.
 * @param {Reader} reader
 * @param {string} type
 * @param {boolean} empty
 * @param {number} depth
 * @returns {XmlRpcValue}
 */
function readTyped(reader, type, empty, depth) {
  if (type === "array" || type === "struct") {
    if (depth >= MAX_NESTING) throw malformed(`mais de ${MAX_NESTING} níveis`);
    if (type === "array") {
      /** @type {XmlRpcValue[]} */
      const items = [];
      if (empty) throw malformed("<array/> sem <data>");
      if (!reader.open("data")) {
        while (!reader.closes("data")) items.push(readValue(reader, reader.open("value"), depth + 1));
      }
      reader.close("array");
      return items;
    }
    /** @type {[string, XmlRpcValue][]} */
    const members = [];
    if (!empty) {
      while (!reader.closes("struct")) {
        if (reader.open("member")) throw malformed("<member/> vazio");
        const name = reader.open("name") ? "" : reader.textUntil("name");
        members.push([name, readValue(reader, reader.open("value"), depth + 1)]);
        reader.close("member");
      }
    }
    // fromEntries defines each member as its own property: a member named __proto__ is one like any other.
    return Object.fromEntries(members);
  }
  const value = scalar(type, empty ? "" : reader.textUntil(type));
  if (value === undefined) throw malformed(`<${type}> inválido`);
  return value;
}

/**
 * The value a `methodResponse` carries; a fault it carries is thrown as a {@linkcode Fault}.
 * @param {string} xml
 * @returns {XmlRpcValue}
 */
export function decodeResponse(xml) {
  const reader = new Reader(tokenize(xml));
  reader.open("methodResponse");
  const first = reader.nextElement();
  if (first.kind !== "open" || first.empty) throw malformed("esperava <params> ou <fault>");
  let result;
  if (first.name === "params") {
    reader.open("param");
    result = readValue(reader, reader.open("value"), 0);
    reader.close("param");
    reader.close("params");
  } else if (first.name === "fault") {
    const fault = readValue(reader, reader.open("value"), 0);
    reader.close("fault");
    const { faultCode, faultString } = /** @type {{ faultCode?: unknown; faultString?: unknown }} */ (fault);
    if (!Number.isInteger(faultCode) || typeof faultString !== "string") {
      throw malformed("<fault> sem faultCode e faultString");
    }
    reader.close("methodResponse");
    reader.finish();
    throw new Fault(/** @type {number} */ (faultCode), faultString);
  } else throw malformed(`<${first.name}> em <methodResponse>`);
  reader.close("methodResponse");
  reader.finish();
  return result;
}
