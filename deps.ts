/**
 * The one module the scripts import: a table of contents of rpc-chat's wire
 * layer and program helpers, which live in `deps/`.
 *
 * Third-party code, pinned: none that every program loads. The runtime's own
 * modules (`node:sqlite`, `node:util`, `node:buffer`, `node:net`) are the
 * rest; LogTape (`npm:@logtape/logtape@2.4.2`, `npm:@logtape/file@2.3.10`)
 * is pinned in `lib/program/log.ts` and loaded only by a program that logs to a
 * file, and the Redis client (`npm:@redis/client@6.3.1`) in
 * `lib/chat/engines/redis.ts`, loaded only by a server started with `--store`; so the
 * client's module graph holds no npm package and runs from a URL on a LAN
 * with no internet.
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

// Serving: method tables of plain functions, the dispatcher, the HTTP handler.
export {
  type ArgsOf,
  type Call,
  CONNECTION_FLAGS,
  CONNECTION_USAGE,
  connectionOptions,
  type HandlerOptions,
  MAX_MULTICALL,
  type MethodTable,
  type Param,
  type ParamType,
  REGISTER_KEY_HEADER,
  rpc,
  type RpcMethod,
  type ServeOptions,
  serveOrExit,
  serveXmlRpc,
  SESSION_COOKIE,
  type ValueOf,
  xmlRpcHandler,
} from "./lib/rpc/dispatcher.ts";

// HTTP/1.1 with connection limits: what serveXmlRpc serves on.
export {
  type ConnectionInfo,
  describeError,
  type HttpHandler,
  type HttpServeOptions,
  type HttpServer,
  type IncomingRequest,
  outOfFiles,
  type PlainResponse,
  serveHttp,
  toResponse,
} from "./lib/wire/http_server.ts";

// Calling: the client, and where services are.
export {
  ADDRESS_FLAWS_EN,
  ADDRESS_FLAWS_PT,
  type AddressFlaw,
  BadAddress,
  type CallOptions,
  type ClientOptions,
  describeNetworkError,
  endpointUrl,
  type HostPort,
  lanAddresses,
  MAX_ANSWER_BYTES,
  NETWORK_ERRORS_PT,
  type NetworkError,
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

// When two names are one (UTS #39): look-alikes and mixed scripts.
export { bareKey, imitatesReserved, mixesScripts, nameKey, skeleton } from "./lib/chat/names.ts";

// The servers' texts in Portuguese and English: the core says a Text, the method tables render it.
export {
  type Catalogue,
  counted,
  everyText,
  loadText,
  type NameKind,
  noticeOf,
  PORTUGUESE_TEXTS,
  render,
  storeText,
  type Text,
  text,
  type TextKey,
} from "./lib/text/catalogue.ts";

// The chat's shapes and rules, whichever store holds it (the server's SQLite, or Redis for a cluster).
export {
  type Bucket,
  BURST_SECONDS,
  type Chat,
  type ChatEngine,
  type ChatOptions,
  checkName,
  checkText,
  type Delivery,
  firstAfter,
  fullBucket,
  HISTORY,
  HISTORY_KEPT,
  HISTORY_SLACK,
  type Joined,
  LAST_WORDS_MS,
  LIMITS,
  limitsOf,
  lookup,
  MAX_BATCH,
  MAX_LOOKUP,
  MAX_NAME,
  MAX_TEXT,
  MAX_WAIT_MS,
  type Maybe,
  type Message,
  quoted,
  sortedNames,
  StoreError,
  takeToken,
  visibleTo,
} from "./lib/chat/rules.ts";

// The two engines: SQLite (one server, the default) and Redis (several servers; its client loaded only by `--store`).
export {
  LATEST_VISIBLE,
  MessageStore,
  SqliteChat,
  type User,
  VISIBILITY_INDEXES,
  VISIBLE_AFTER,
} from "./lib/chat/engines/sqlite.ts";
export { type Claim, redactedUrl, REDIS_CLIENT, RedisChat } from "./lib/chat/engines/redis.ts";

// The ChatService method table, over either engine.
export { chatMethods } from "./lib/chat/methods.ts";

// Programs: flags, the log, signals, child programs and their ready lines.
export {
  checkFlags,
  CLIENT_FLAGS,
  type ClientFlags,
  clientFlags,
  type FlagOptions,
  type FlagValues,
  langArgument,
  localeLang,
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
export { type Log, type Logger, openLog, writeStdout } from "./lib/program/log.ts";
export {
  announceReady,
  type ChildOptions,
  ChildProgram,
  denoRun,
  LineStream,
  parseReadyLine,
  PERMISSIONS,
  readLines,
  READY_TAG,
  type ReadyLine,
} from "./lib/program/child.ts";

// Networks: who may register in the binder (`--allow-register`).
export { BlockList, isIP } from "node:net";

// Many deadlines on few timers (request bodies, long waits).
export { Deadlines } from "./lib/wire/deadlines.ts";

// Storage: the embedded database of the chat server.
export { DatabaseSync } from "node:sqlite";
