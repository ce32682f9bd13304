/**
 * The strict call decoder deps.ts used before its hand-written scanner: `sax`
 * in strict mode plus the XML-RPC checks, copied verbatim (but for the
 * imports and the exported name). `decode_test.ts` compares the two on
 * thousands of valid and mutated calls; nothing else may import this.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import sax from "npm:sax@1.2.4";
import { Fault, FaultCode, MAX_NESTING, type XmlRpcDocument, type XmlRpcValue } from "../../lib/mod.ts";

function firstLine(text: string): string {
  return text.split("\n", 1)[0]!;
}

interface SaxParser {
  onopentag(node: { name: string }): void;
  onclosetag(name: string): void;
  ontext(text: string): void;
  oncdata(text: string): void;
  ondoctype(): void;
  onsgmldeclaration(): void;
  onerror(error: Error): void;
  write(text: string): SaxParser;
  close(): SaxParser;
}
const saxParser = (sax as unknown as { parser(strict: boolean, options: object): SaxParser }).parser;

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
/** The only children that may repeat; any other appears at most once. */
const REPEATABLE = new Set(["params>param", "data>value", "struct>member"]);
/** Elements whose text is content; elsewhere only whitespace may appear. */
const TEXT_ELEMENTS = new Set(["methodName", "name", "value", ...SCALARS]);
/** Characters XML 1.0 forbids anywhere, even as character references. */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

interface Frame {
  readonly name: string;
  text: string;
  /** The value a child gave: of a param, fault, value or member; the items of params or data. */
  value: XmlRpcValue | undefined;
  readonly items: XmlRpcValue[];
  readonly members: { [member: string]: XmlRpcValue };
  /** A member's name, or the method's. */
  key: string | undefined;
  readonly seen: Set<string>;
}

function invalidRequest(detail: string): Fault {
  return new Fault(FaultCode.INVALID_REQUEST, `Requisição inválida: ${detail}`);
}

function clip(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/**
 * Decodes an XML-RPC document strictly: well-formed XML (no DOCTYPE, so no
 * entity is ever expanded or fetched), only XML-RPC elements where the spec
 * puts them, scalar values checked whole (`<int>12abc</int>` is refused, not
 * read as 12), at most {@linkcode MAX_NESTING} levels of arrays and structs.
 * Throws a {@linkcode Fault}: -32700 for bad XML, -32600 for XML that is not
 * the expected XML-RPC document, -32602 for a bad value.
 */
export function saxParseXmlRpc(text: string, root: "methodCall" | "methodResponse"): XmlRpcDocument {
  const illegal = NOT_XML_CHAR.exec(text);
  if (illegal) throw notXml(illegal[0]);
  const stack: Frame[] = [];
  let result: XmlRpcDocument | undefined;
  let nesting = 0;
  const parser = saxParser(true, {});
  parser.onerror = (error) => {
    throw new Fault(FaultCode.PARSE_ERROR, `XML inválido: ${firstLine(error.message)}`);
  };
  parser.ondoctype = parser.onsgmldeclaration = () => {
    throw new Fault(FaultCode.PARSE_ERROR, "XML inválido: DOCTYPE e entidades não são aceitos");
  };
  parser.onopentag = ({ name }) => {
    const parent = stack.at(-1);
    if (!parent) {
      if (result) throw new Fault(FaultCode.PARSE_ERROR, "XML inválido: mais de um elemento raiz");
      if (name !== root) throw invalidRequest(`a raiz é <${clip(name)}>, e não <${root}>`);
    } else {
      if (!CHILDREN[parent.name]?.includes(name)) {
        throw invalidRequest(`<${parent.name}> não pode conter <${clip(name)}>`);
      }
      const repeated = parent.name === "value" ? parent.seen.size > 0 : parent.seen.has(name);
      if (repeated && !REPEATABLE.has(`${parent.name}>${name}`)) {
        throw invalidRequest(`<${parent.name}> com mais de um <${name}>`);
      }
      parent.seen.add(name);
    }
    if ((name === "array" || name === "struct") && ++nesting > MAX_NESTING) {
      throw new Fault(
        FaultCode.INVALID_PARAMS,
        `Parâmetros inválidos: arrays e structs aninhados em mais de ${MAX_NESTING} níveis`,
      );
    }
    stack.push({ name, text: "", value: undefined, items: [], members: {}, key: undefined, seen: new Set() });
  };
  parser.ontext = parser.oncdata = (chunk) => {
    const frame = stack.at(-1);
    if (!frame) return; // Whitespace around the root (sax refuses anything else there).
    if (TEXT_ELEMENTS.has(frame.name)) {
      const illegal = NOT_XML_CHAR.exec(chunk);
      if (illegal) throw notXml(illegal[0]);
      frame.text += chunk;
    } else if (chunk.trim()) throw invalidRequest(`texto fora de lugar em <${frame.name}>`);
  };
  parser.onclosetag = (name) => {
    const frame = stack.pop()!;
    const parent = stack.at(-1)!;
    const missing = (child: string) => invalidRequest(`<${name}> sem <${child}>`);
    switch (name) {
      case "methodName":
      case "name":
        parent.key = frame.text;
        break;
      case "value": {
        if (frame.seen.size && frame.text.trim()) throw invalidRequest("<value> com texto e um tipo");
        const value = frame.seen.size ? frame.value! : frame.text;
        if (parent.name === "data") parent.items.push(value);
        else parent.value = value;
        break;
      }
      case "param":
        if (!frame.seen.has("value")) throw missing("value");
        parent.items.push(frame.value!);
        break;
      case "params":
        parent.value = frame.items;
        break;
      case "fault":
      case "array":
        if (!frame.seen.size) throw missing(name === "fault" ? "value" : "data");
        parent.value = frame.value;
        nesting -= name === "array" ? 1 : 0;
        break;
      case "data":
        parent.value = frame.items;
        break;
      case "struct":
        parent.value = frame.members;
        nesting--;
        break;
      case "member":
        if (frame.key === undefined) throw missing("name");
        if (!frame.seen.has("value")) throw missing("value");
        // defineProperty: a member named __proto__ is data, not the object's prototype.
        Object.defineProperty(parent.members, frame.key, {
          value: frame.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
        break;
      case "methodCall":
        if (!frame.key?.trim()) throw invalidRequest("a chamada não tem nome de método (<methodName>)");
        result = {
          kind: "call",
          method: frame.key,
          params: (frame.value as XmlRpcValue[] | undefined) ?? [],
        };
        break;
      case "methodResponse":
        result = responseOf(frame);
        break;
      default: // A scalar.
        parent.value = scalar(name, frame.text);
    }
  };
  try {
    parser.write(text).close();
  } catch (error) {
    if (error instanceof Fault) throw error;
    // sax itself may throw (a character reference beyond U+10FFFF, say).
    throw new Fault(FaultCode.PARSE_ERROR, `XML inválido: ${firstLine((error as Error).message)}`);
  }
  if (!result) throw new Fault(FaultCode.PARSE_ERROR, "XML inválido: documento vazio");
  return result;
}

function notXml(char: string): Fault {
  const code = char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
  return new Fault(FaultCode.PARSE_ERROR, `XML inválido: o caractere U+${code} não é permitido em XML`);
}

function responseOf(frame: Frame): XmlRpcDocument {
  if (frame.seen.size !== 1) throw invalidRequest("<methodResponse> precisa de <params> ou <fault>");
  if (frame.seen.has("params")) {
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

/** `YYYYMMDDTHH:MM:SS` (local time, as the original programs write it); separators, fraction and zone optional. */
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
  const zone = match[8];
  const date = new Date(0);
  if (!zone) {
    date.setFullYear(year, month - 1, day);
    date.setHours(hours, minutes, seconds, ms);
    return date.getDate() === day ? date : undefined; // Not 30 February.
  }
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hours, minutes, seconds, ms);
  if (date.getUTCDate() !== day) return undefined;
  const digits = zone.slice(1).replace(":", "");
  const offset = zone === "Z" ? 0 : Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || "0");
  if (offset > 14 * 60) return undefined;
  return new Date(date.getTime() - (zone.startsWith("-") ? -offset : offset) * 60_000);
}
