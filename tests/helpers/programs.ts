/**
 * Shared test helpers: start the real programs as subprocesses with the
 * permissions the docs give, talk to them over loopback, run Python's
 * stdlib XML-RPC client, and wait on conditions instead of sleeping.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type ChatMessage,
  ChildProgram,
  endpointUrl,
  type Logger,
  PERMISSIONS,
  XmlRpcClient,
} from "../../lib/mod.ts";

export { freePort } from "../../tools/redis_server.ts";

/** The exact permissions the docs give each program (docs/binder.md, server.md, cliente.md). */
export const BINDER_PERMISSIONS: string[] = [...PERMISSIONS.binder];
/** The server's, for its default files (`chat.db`, `chat_server.log`) in its working directory. */
export const SERVER_PERMISSIONS: string[] = [...PERMISSIONS.server];
/** The client's: the network, nothing else. */
export const CLIENT_PERMISSIONS: string[] = [...PERMISSIONS.cliente];

/** The repository's root directory, as a path ending in `/`. */
export const ROOT: string = new URL("../..", import.meta.url).pathname;
const encoder = new TextEncoder();

/**
 * A task's command line, from deno.json: what `deno task NAME` runs. A task is
 * `{ description, command }` (so `deno task` lists what each does) or a plain string.
 */
export async function taskCommand(name: string): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const task = config.tasks?.[name];
  const command = typeof task === "string" ? task : task?.command;
  if (typeof command !== "string") throw new Error(`no task ${name} in deno.json`);
  return command;
}

/** A program under test: a {@linkcode ChildProgram} that can also wait for several matching lines. */
export class Program extends ChildProgram {
  /** Waits until `count` stdout lines match; returns them. */
  async waitForLines(pattern: RegExp, count: number, timeoutMs = 10_000): Promise<string[]> {
    let seen = 0;
    await this.waitFor(
      (line) => pattern.test(line) && ++seen >= count ? true : undefined,
      `${count} lines matching ${pattern}`,
      { timeoutMs },
    );
    return this.lines.filter((line) => pattern.test(line));
  }
}

/** The command line of a Deno script of this repository with exactly these permissions (and --no-prompt). */
export function scriptCommand(script: string, permissions: readonly string[], args: string[] = []): string[] {
  return [Deno.execPath(), "run", "--no-prompt", ...permissions, `${ROOT}${script}`, ...args];
}

/** Starts a Deno script of this repository with exactly these permissions (and --no-prompt). */
export function startScript(
  script: string,
  permissions: string[],
  args: string[] = [],
  options: { stdin?: boolean; cwd?: string; env?: Record<string, string> } = {},
): Program {
  const [command, ...rest] = scriptCommand(script, permissions, args);
  return new Program(
    command!,
    rest,
    { cwd: ROOT, ...options, stdin: options.stdin ? "piped" : "null" },
  );
}

/** Runs a script to its end; returns its exit code and output. */
export async function runScript(
  script: string,
  permissions: string[],
  args: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const [command, ...rest] = scriptCommand(script, permissions, args);
  const { code, stdout, stderr } = await new Deno.Command(command!, {
    args: rest,
    cwd: ROOT,
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** A binder on a free loopback port, with its address and a client. */
export interface RunningBinder {
  program: Program;
  port: number;
  address: string;
  client: XmlRpcClient;
}

export async function startBinder(extraArgs: string[] = []): Promise<RunningBinder & AsyncDisposable> {
  const program = startScript("binder.ts", BINDER_PERMISSIONS, [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    ...extraArgs,
  ]);
  const { porta: port } = await program.ready();
  return {
    program,
    port,
    address: `127.0.0.1:${port}`,
    client: new XmlRpcClient(endpointUrl("127.0.0.1", Number(port)), { timeoutMs: 5000 }),
    [Symbol.asyncDispose]: () => program[Symbol.asyncDispose](),
  };
}

/** Runs a Python 3 program (stdin-fed source) with arguments; fails the test on a non-zero exit. */
export async function runPython(source: string, args: string[] = []): Promise<string> {
  const child = new Deno.Command("python3", {
    args: ["-", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(encoder.encode(source));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  if (code !== 0) {
    throw new Error(`python3 exited ${code}:\n${decoder.decode(stdout)}\n${decoder.decode(stderr)}`);
  }
  return decoder.decode(stdout);
}

/** Why Python 3 cannot be the reference peer here (no `python3` on the PATH), or undefined when it runs. */
export function pythonUnavailable(): string | undefined {
  try {
    const { success } = new Deno.Command("python3", { args: ["-c", "import xmlrpc.client, http.client"] })
      .outputSync();
    return success ? undefined : "python3 cannot import xmlrpc.client";
  } catch {
    return "no python3 on the PATH";
  }
}

/**
 * A test that runs only when `reason` is undefined; otherwise it is
 * ignored, with the reason in its name and printed once, so a machine
 * without what it needs shows it skipped, never passed.
 */
export function testUnless(
  reason: string | undefined,
  name: string,
  fn: () => Promise<void>,
  options: Pick<Deno.TestDefinition, "sanitizeOps" | "sanitizeResources"> = {},
): void {
  if (reason) console.log(`skipped: ${name}: ${reason}`);
  Deno.test({
    ...options,
    name: reason ? `${name} (skipped: ${reason})` : name,
    ignore: reason !== undefined,
    fn,
  });
}

/** Polls a condition (a cheap check, on loopback) until it holds. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Posts a raw body to an endpoint (to send what no well-behaved client would). */
export async function postRaw(port: number, body: BodyInit, headers: HeadersInit = {}): Promise<Response> {
  return await fetch(endpointUrl("127.0.0.1", port), {
    method: "POST",
    headers: { "content-type": "text/xml", ...headers },
    body,
  });
}

/** A listening TCP socket on a free loopback port: a stand-in endpoint for the binder to probe. */
export function listenOnFreePort(): Deno.TcpListener {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Accept and drop connections, so probes see a live endpoint.
  (async () => {
    try {
      for await (const connection of listener) connection.close();
    } catch {
      // Closed.
    }
  })();
  return listener;
}

/** Runs a call that must fail and returns what it threw, checking its class. */
export async function rejection<E extends Error = Error>(
  run: () => Promise<unknown>,
  errorClass?: new (...args: never[]) => E,
): Promise<E> {
  try {
    await run();
  } catch (error) {
    if (errorClass && !(error instanceof errorClass)) throw error;
    return error as E;
  }
  throw new Error("expected the call to fail, and it succeeded");
}

/** Runs a script that must refuse its arguments: exit 2, nothing on stdout, one line on stderr matching `message`. */
export async function assertUsageError(
  script: string,
  permissions: readonly string[],
  args: readonly string[],
  message: RegExp,
): Promise<void> {
  const { code, stdout, stderr } = await runScript(script, [...permissions], [...args]);
  assert.equal(code, 2, `${args}: ${stderr}`);
  assert.equal(stdout, "");
  assert.equal(stderr.trim().split("\n").length, 1, stderr);
  assert.match(stderr, message);
}

/** A chat server on a free loopback port, in a directory of its own (its log and database). */
export interface RunningServer {
  program: Program;
  port: number;
  address: string;
  /** Where its `chat_server.log` and `chat.db` are. */
  dir: string;
  /** A new client with a session jar of its own. */
  client(): XmlRpcClient;
}

/**
 * Starts server.ts with the documented permissions in `dir` (a new temporary
 * directory unless given: reuse one to restart on the same database),
 * registered in the given binder.
 */
export async function startServer(
  binder: { address: string } | undefined,
  extraArgs: string[] = [],
  options: { dir?: string; port?: number; permissions?: readonly string[] } = {},
): Promise<RunningServer & AsyncDisposable> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "rpc-chat-server-" });
  const program = startScript("server.ts", [...options.permissions ?? SERVER_PERMISSIONS], [
    "--host",
    "127.0.0.1",
    "--port",
    String(options.port ?? 0),
    "--binder",
    binder?.address ?? "127.0.0.1:1",
    "--register-interval",
    "0.2",
    ...extraArgs,
  ], { cwd: dir });
  const { porta: port } = await program.ready();
  return {
    program,
    port,
    address: `127.0.0.1:${port}`,
    dir,
    client: () => new XmlRpcClient(endpointUrl("127.0.0.1", Number(port)), { timeoutMs: 5000 }),
    [Symbol.asyncDispose]: async () => {
      await program[Symbol.asyncDispose]();
      if (!options.dir) await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Starts cliente.ts with the documented permissions, scripted through stdin,
 * against the given binder; Portuguese unless the args say otherwise, and
 * quick retries so reconnection tests stay short.
 */
export function startClient(
  binder: { address: string },
  args: string[] = [],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Program {
  return startScript("cliente.ts", CLIENT_PERMISSIONS, clientArgs(binder, args), { stdin: true, ...options });
}

/** cliente.ts's arguments for tests: this binder, Portuguese, quick retries, then `args`. */
export function clientArgs(binder: { address: string }, args: string[] = []): string[] {
  return ["--binder", binder.address, "--retry", "0.2", "--lang", "pt", ...args];
}

const TIME = String.raw`\[\d\d:\d\d:\d\d\]`;

/** A scripted client's notice that it is back with the service at `host`:`port`, in `room` (pt). */
export function backInRoom(port: number, room: string, host = "127.0.0.1"): RegExp {
  return new RegExp(
    `^\\* Reconectado ao ChatService em ${escapeRegExp(host)}:${port} como .+, de volta à sala ${
      escapeRegExp(room)
    }\\.$`,
  );
}

/** A text as a regular expression that matches exactly it. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A chat line as a scripted client prints it: `[HH:MM:SS] text`, matched whole. */
export function said(text: string): RegExp {
  return new RegExp(`^${TIME} ${escapeRegExp(text)}$`);
}

/** How many of a program's lines match. */
export function count(program: Program, pattern: RegExp): number {
  return program.lines.filter((line) => pattern.test(line)).length;
}

/** A scripted terminal client and the name it chats under. */
export interface Chatter {
  client: Program;
  name: string;
}

/** The terminal clients {@linkcode clientOnEach} started, and the first it saw on each instance. */
export interface ClientsOnEach extends AsyncDisposable {
  /** Every client started, in order. */
  all: Program[];
  /** The first client on each instance, by the `HOST:PORT` its client printed. */
  on: Map<string, Chatter>;
}

/**
 * Starts terminal clients one by one (`start(name)`, named `t0`, `t1`...),
 * each until it is in `room`, until each of `instances` (`HOST:PORT`, as
 * "Conectado ao ChatService em HOST:PORT." names it) has one: the binder
 * hands the instances out in turn. Disposing it kills them all.
 */
export async function clientOnEach(
  start: (name: string) => Program,
  instances: readonly string[],
  room: string,
  timeoutMs = 10_000,
): Promise<ClientsOnEach> {
  const all: Program[] = [];
  const dispose = async () => {
    for (const client of all) await client[Symbol.asyncDispose]();
  };
  const on = new Map<string, Chatter>();
  try {
    for (let i = 0; on.size < instances.length && i < 3 * instances.length; i++) {
      const client = start(`t${i}`);
      all.push(client);
      const [, address] = await client.waitForLine(/^\* Conectado ao ChatService em (.+)\.$/, timeoutMs);
      await client.waitForLine(new RegExp(`^\\* Você está na sala ${escapeRegExp(room)}\\.`), timeoutMs);
      if (!on.has(address!)) on.set(address!, { client, name: `t${i}` });
    }
    assert.deepEqual([...on.keys()].sort(), [...instances].sort(), "a terminal client on each instance");
  } catch (error) {
    await dispose();
    throw error;
  }
  return { all, on, [Symbol.asyncDispose]: dispose };
}

/** `from` says `text` in its room; waits until `to` sees it. */
export async function say(from: Chatter, to: Chatter, text: string, timeoutMs?: number): Promise<void> {
  await from.client.write(`${text}\n`);
  await to.client.waitForLine(said(`${from.name}: ${text}`), timeoutMs);
}

/**
 * Once `moving`'s instance is dead: `staying` says something, `moving`
 * (through another instance now) sees it and answers, and `staying` sees
 * that. Each of these lines and of `before` (who said what before the fall)
 * is seen exactly once by both, and `moving` never registered again (its
 * session lives in the shared store).
 */
export async function assertCarriesOn(
  moving: Chatter,
  staying: Chatter,
  before: [Chatter, string][],
  timeoutMs = 15_000,
): Promise<void> {
  await say(staying, moving, "durante a queda", timeoutMs);
  await say(moving, staying, "depois da queda", timeoutMs);
  await moving.client.waitForLine(said(`${moving.name}: depois da queda`), timeoutMs);
  const lines: [Chatter, string][] = [...before, [staying, "durante a queda"], [moving, "depois da queda"]];
  for (const { client } of [moving, staying]) {
    for (const [who, text] of lines) {
      assert.equal(
        count(client, said(`${who.name}: ${text}`)),
        1,
        `${who.name}: ${text} in\n${client.output}`,
      );
    }
  }
  assert.equal(count(moving.client, /Registrando de novo/), 0, moving.client.output);
}

/** A temporary directory, removed when disposed. */
export async function tempDir(prefix: string): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** The Python stand-in for the original server (only the original methods), registered in the binder. */
export async function startOriginalServer(
  binder: { address: string },
  extraArgs: string[] = [],
): Promise<{ program: Program; port: number } & AsyncDisposable> {
  const program = new Program("python3", [
    `${ROOT}tests/testdata/original_server.py`,
    "--binder",
    binder.address,
    ...extraArgs,
  ], { cwd: ROOT });
  const { porta: port } = await program.ready();
  return { program, port, [Symbol.asyncDispose]: () => program[Symbol.asyncDispose]() };
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence, so a fuzz run replays. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Every message `user` may see in `room` after `cursor`, read in pages by
 * `aguardar_mensagens` (no wait) through `client` until the cursor stops moving.
 */
export async function readAll<M = ChatMessage>(
  client: XmlRpcClient,
  user: string,
  room: string,
  cursor = 0,
): Promise<M[]> {
  const all: M[] = [];
  for (;;) {
    const [ok, page] = await client.call<[boolean, { mensagens: M[]; cursor: number }]>(
      "aguardar_mensagens",
      [user, room, cursor, 0],
    );
    assert(ok, String(page));
    all.push(...page.mensagens);
    if (page.cursor === cursor) return all;
    cursor = page.cursor;
  }
}

/** Chat messages as lines: `origem: conteudo`, or `origem -> destino: conteudo` when private. */
export function texts(messages: readonly { origem: string; destino: string; conteudo: string }[]): string[] {
  return messages.map((m) =>
    m.destino === "todos" ? `${m.origem}: ${m.conteudo}` : `${m.origem} -> ${m.destino}: ${m.conteudo}`
  );
}

/** The XML-RPC element names the fuzzers swap for one another. */
const ELEMENT_NAMES = [
  "value",
  "int",
  "string",
  "array",
  "data",
  "struct",
  "member",
  "name",
  "param",
  "params",
  "nil",
];

/**
 * The fuzzers' element-name swap: the first `<NAME>` or `</NAME>` of one
 * picked name becomes another picked name (the name to find is picked first,
 * then its replacement, so a seed replays the same run).
 */
export function swapElementName(text: string, pick: <T>(items: readonly T[]) => T): string {
  return text.replace(new RegExp(`<(/?)${pick(ELEMENT_NAMES)}>`), `<$1${pick(ELEMENT_NAMES)}>`);
}

/** A log that drops every line: for cores tested in-process. */
export const silentLog: Logger = { info() {}, warn() {}, error() {} };
