/**
 * The one module the scripts import: the table of contents of rpc-chat's
 * library (`lib/`, one folder a layer).
 *
 * - Exported here, the layers every program loads, the terminal client
 *   included: the XML-RPC codec and the HTTP client (`lib/wire`), the chat
 *   protocol's vocabulary (`lib/chat/protocol.ts`), the texts (`lib/text`),
 *   the client session and the terminal (`lib/client`, `lib/term`), the
 *   programs' helpers (`lib/program`).
 * - The host's side (the HTTP listener, the dispatcher, the chat's rules
 *   and engines, the binder's registry, the chat page, the operator log,
 *   child programs) has a table of contents of its own, `lib/host.ts`, which
 *   the host's programs (binder.ts, server.ts, start.ts) import beside this
 *   one and the client never does. So the client's module graph, all the
 *   binder serves to classmates who run it from its address, holds none of
 *   it.
 *
 * Third-party code, pinned: none that every program loads. The runtime's own
 * modules (`node:sqlite`, `node:util`, `node:buffer`, `node:net`) are the
 * rest; LogTape (`npm:@logtape/logtape@2.4.2`, `npm:@logtape/file@2.3.10`)
 * is pinned in `lib/program/log.ts` and loaded only by a program that logs to
 * a file, and the Redis client (`npm:@redis/client@6.3.1`) in
 * `lib/chat/engines/redis.ts`, loaded only by a server started with
 * `--store`; so the client's module graph holds no npm package and runs from
 * a URL on a LAN with no internet.
 *
 * @module
 */

// The codec: XML-RPC documents to values and back, for calls and responses.
export {
  clip,
  decodeXml,
  encodeCall,
  encodeFault,
  encodeOnce,
  encodeResponse,
  Fault,
  FaultCode,
  localWallClock,
  MAX_NESTING,
  parseXmlRpc,
  type XmlRpcDocument,
  type XmlRpcValue,
} from "./lib/wire/codec.ts";

// Calling: the client, and where services are.
export {
  BadAddress,
  type CallOptions,
  type ClientOptions,
  describeNetworkError,
  endpointUrl,
  type HostPort,
  lanAddresses,
  MAX_ANSWER_BYTES,
  ownLanAddresses,
  parseHostPort,
  parseHostPortList,
  Unreachable,
  XmlRpcClient,
} from "./lib/wire/http_client.ts";

// The chat protocol's vocabulary.
export {
  type ChatMessage,
  EVERYONE,
  forCaller,
  KEEPS_SESSION_HEADER,
  type Lang,
  languageOf,
  MAX_NAME,
  MAX_TEXT,
  misleadingName,
  NAME_PUNCTUATION,
  type NameFlaw,
  nameFlaw,
  type Outcome,
  Reason,
  reasonOf,
  REASONS_HEADER,
  type Refusal,
  refuse,
  RESERVED_NAMES,
  type Result,
  SEND_KEY_HEADER,
  sendKeyOf,
  SERVER,
} from "./lib/chat/protocol.ts";

// The server's notices (who joined, left...), as the client reads them.
export { type Notice, type NoticeKey, noticeOf, NOTICES } from "./lib/text/notices.ts";
// The texts' catalogue is the host's (lib/host.ts); the protocol names its Text, a type only here.
export type { Catalogue, NameKind, PORTUGUESE_TEXTS, Text, TextKey } from "./lib/text/catalogue.ts";

// Programs: flags, languages, permissions, signals.
export {
  type ClientFlags,
  clientFlags,
  type FlagOptions,
  type FlagValues,
  langArgument,
  langFlag,
  localeLang,
  missingValue,
  type Needed,
  netNeeded,
  numberFlag,
  onTerminate,
  parseFlags,
  requirePermissions,
  secondsFlag,
  usageError,
  useLanguage,
} from "./lib/program/flags.ts";

// The words for network errors and bad addresses.
export {
  ADDRESS_FLAWS_EN,
  ADDRESS_FLAWS_PT,
  type AddressFlaw,
  NETWORK_ERRORS_PT,
  type NetworkError,
} from "./lib/text/network.ts";

// The terminal client's texts.
export { EN, PT, TEXTS, type Texts } from "./lib/text/client.ts";

// The client's commands and message lines.
export {
  clockOf,
  type CommandName,
  displayName,
  formatMessage,
  type Input,
  newMessages,
  parseInput,
  sanitize,
  sleep,
  splitMessage,
  splitRecipient,
} from "./lib/client/lines.ts";

// The client session: registration, delivery, recovery.
export {
  ChatSession,
  type ChatView,
  Closed,
  type NoticeKind,
  Problem,
  type SessionOptions,
} from "./lib/client/session.ts";

// The terminal: keys, the line editor, completion.
export {
  cleanPaste,
  complete,
  type Completion,
  type CompletionSources,
  type EditorAction,
  fitInput,
  type FittedInput,
  type Key,
  KeyDecoder,
  LineEditor,
  promptFor,
  textWidth,
  truncate,
  wrapRows,
} from "./lib/term/editor.ts";

// The terminal: lines wrapped and marked.
export {
  dateOf,
  mentions,
  renderDay,
  renderMessage,
  renderNotice,
  type RenderOptions,
} from "./lib/term/render.ts";

// The terminal UI: plain lines or a raw-mode screen.
export {
  ChatUi,
  PlainScreen,
  type Printable,
  type Screen,
  type TerminalOptions,
  TerminalScreen,
  type UiOptions,
} from "./lib/term/ui.ts";

// Standard input and output, line by line.
export { LineStream, readLines, writeStdout } from "./lib/program/io.ts";
