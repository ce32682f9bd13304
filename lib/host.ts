/**
 * The host's side, its table of contents: what only the host's programs
 * (binder, server, start.ts) import beside `deps.ts`, never the
 * terminal client. The
 * HTTP/1.1 listener (`wire/http_server.ts`), the dispatcher with
 * introspection and multicall (`rpc/`), the chat's rules, names, method
 * table and its two engines (`chat/`), the binder's registry (`binder/`),
 * the client's modules as the binder serves them and the chat page
 * (`program/client_modules.ts`, `web/`).
 *
 * @module
 */

// Serving: method tables of plain functions, the dispatcher, introspection and multicall.
export {
  type ArgsOf,
  type Call,
  MAX_MULTICALL,
  type MethodTable,
  type Param,
  type ParamType,
  rpc,
  type RpcMethod,
  type ValueOf,
} from "./rpc/dispatcher.ts";

// XML-RPC over HTTP: the handler.
export {
  type HandlerOptions,
  REGISTER_KEY_HEADER,
  type ServeOptions,
  serveXmlRpc,
  SESSION_COOKIE,
  xmlRpcHandler,
} from "./wire/xmlrpc_http.ts";

// Serving, for a program: connection flags, and one line and exit when it cannot listen.
export { CONNECTION_FLAGS, CONNECTION_USAGE, connectionOptions, serveOrExit } from "./program/serve.ts";

// HTTP/1.1 with connection limits: what serveXmlRpc serves on.
export {
  type ConnectionInfo,
  type HttpHandler,
  type HttpServeOptions,
  type HttpServer,
  type IncomingRequest,
  outOfFiles,
  type PlainResponse,
  serveHttp,
  toResponse,
} from "./wire/http_server.ts";

// The chat's shapes and rules, whichever store holds it (the server's SQLite, or Redis for a cluster).
export {
  type Bucket,
  type Chat,
  type ChatEngine,
  type ChatOptions,
  checkName,
  checkText,
  type Delivery,
  deliveryAfter,
  firstAfter,
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
  MAX_WAIT_MS,
  type Maybe,
  type Message,
  quoted,
  sortedNames,
  StoreError,
  takeToken,
  visibleTo,
} from "./chat/rules.ts";

// The two engines: SQLite (one server, the default) and Redis (several servers; its client loaded only by `--store`).
export {
  LATEST_VISIBLE,
  MessageStore,
  SqliteChat,
  type User,
  VISIBILITY_INDEXES,
  VISIBLE_AFTER,
} from "./chat/engines/sqlite.ts";

export { type Claim, REDIS_CLIENT, RedisChat } from "./chat/engines/redis.ts";

// The ChatService method table, over either engine.
export { chatMethods } from "./chat/methods.ts";

// Storage: the embedded database of the chat server.
export { DatabaseSync } from "node:sqlite";

// The binder: its registry and its method table.
export {
  type Answer,
  Binder,
  type BinderOptions,
  type Endpoint,
  type EndpointState,
  LOOPBACK,
  type Network,
  parseNetwork,
  type Registrant,
  sourceOf,
} from "./binder/registry.ts";
export { binderMethods, chatServices } from "./binder/methods.ts";

// What the binder serves on GET: the client's modules, and a browser's way in to the chat page.
export { CLIENT_MODULES, serveClientModule, TYPESCRIPT } from "./program/client_modules.ts";
export { chatEntry, type ChatServices, hostForBrowser } from "./web/entry.ts";

// The chat page, served by the chat server on its own origin.
export { PAGE_FILES, PAGE_HEADERS, servePage } from "./web/serve.ts";

// The chat server in its binders.
export { advertisedHost, BinderRegistration } from "./program/registration.ts";

// Programs: the operator log, child programs and their ready lines.
export { describeError, type Log, LogBudget, type Logger, openLog, shown } from "./program/log.ts";

export {
  announceReady,
  type ChildOptions,
  ChildProgram,
  denoRun,
  parseReadyLine,
  PERMISSIONS,
  READY_TAG,
  type ReadyLine,
} from "./program/child.ts";

// Many deadlines on few timers (request bodies, long waits).
export { Deadlines } from "./wire/deadlines.ts";

// The servers' texts in Portuguese and English: the core says a Text, the method tables render it.
export { counted, everyText, loadText, PORTUGUESE_TEXTS, render, storeText, text } from "./text/catalogue.ts";
