#!/usr/bin/env -S deno run --allow-net --allow-run=deno,cat,redis-server --allow-write
/**
 * The benchmark of rpc-chat: how fast and how large the chat can be, measured.
 *
 * ```sh
 * deno run --allow-net --allow-run=deno,cat,redis-server --allow-write bench.ts \
 *   [--clients 1000] [--rooms 10] [--rate 200] [--duration 10] [--warmup 0] [--server H:P] [--compat] [--json]
 * deno run ... bench.ts --idle 10000 --duration 30
 * deno run ... bench.ts --servers 2 --redis-server     # or --store redis://H:P
 * ```
 *
 * It starts its own binder and server (`binder.ts` and `server.ts` as
 * subprocesses with the permissions the README gives them, the server's
 * database and log in a temporary directory) or targets `--server`. With
 * `--servers N` it starts N instances of the server in the same binder,
 * sharing the Redis of `--store` (or its own `redis-server`, in the same
 * temporary directory, with `--redis-server`); each client talks to one
 * instance, at the address the binder lists for it, the members of each
 * room taking turns over the instances, so messages cross instances. It
 * registers the clients, puts them in the rooms and keeps every one of them
 * receiving through the long wait (`aguardar_mensagens` with a cursor) while
 * senders post `--rate` messages per second in total, spread over the rooms,
 * for `--duration` seconds. Every delivery is checked: each message must
 * reach every member of its room exactly once. `--compat` drives only the
 * original methods, the way the original client did (`receber_mensagens`
 * every 2 s, deduplicated by id, or by author, time and text), so any server
 * of the original protocol can be measured. `--idle N` holds N clients, each
 * with a pending long wait, for `--duration` seconds, then sends one message
 * per room and checks that all of them get it.
 *
 * In the same run it measures a raw `Deno.serve` baseline (a trivial handler
 * answering as many bytes as the server does, in a process of its own) and
 * the server under the same request load, one call type at `--connections`
 * connections: the distance to the limit of the HTTP stack.
 *
 * Processes: this one coordinates and reads the server's RSS and CPU time in
 * `/proc/<pid>/status` and `/proc/<pid>/stat` (through `cat`: Deno grants
 * `/proc` only to `--allow-all`). The load comes from `--workers` worker
 * processes (this same file with `--worker` and only `--allow-net`) that speak
 * HTTP/1.1 over raw TCP, one keep-alive connection per client plus a few for
 * the senders, so the load generator never shares the server's event loop.
 *
 * This file is the coordinator: the flags and the phases of a run. The rest
 * is in `bench/`: `system.ts` starts the binder and the servers and reads
 * `/proc`; `redis_server.ts` the `redis-server` of `--redis-server`; `worker.ts` is the worker process and its JSON-lines protocol;
 * `loadgen.ts` its raw HTTP connections, calls and latency histogram;
 * `single_call.ts` the raw `Deno.serve` comparison; `report.ts` the check,
 * the JSON result and the table.
 *
 * @module
 */

import { numberFlag, parseFlags, parseHostPort, usageError, type XmlRpcValue } from "../lib/mod.ts";
import { HttpConnection, rawCall, sleep } from "./loadgen.ts";
import { type BenchResult, buildResult, fmt, formatTable, progressLine } from "./report.ts";
import { parseRedisUrl, redisMissing, RedisServer } from "../tools/redis_server.ts";
import { baselineMain, measureSingleCall } from "./single_call.ts";
import {
  type Address,
  checkOpenFiles,
  combinedStats,
  describeMachine,
  type ProcessStats,
  startServers,
  totalCpu,
} from "./system.ts";
import {
  POLL_MS,
  type Progress,
  sendersFor,
  type WorkerConfig,
  workerMain,
  WorkerProcess,
} from "./worker.ts";

export type { BenchResult } from "./report.ts";

/** What a run does: the flags, read. */
export interface BenchOptions {
  /** Clients, each in one room, each receiving live. */
  clients: number;
  /** Rooms; client i is in room i mod rooms. */
  rooms: number;
  /** Messages per second in total. */
  rate: number;
  /** Seconds of load. */
  durationS: number;
  /** Seconds of load before those, delivered and checked but not in the latency figures. */
  warmupS: number;
  /** `host:port` of a server to measure instead of starting one. */
  server: string | undefined;
  /** Server instances to start, in the same binder. */
  servers: number;
  /** `redis://H:P[/DB]` for every instance's `--store`. */
  store: string | undefined;
  /** Start a `redis-server` of our own for the store. */
  redisServer: boolean;
  /** Only the original methods. */
  compat: boolean;
  /** Hold the clients idle, then one message per room. */
  idle: boolean;
  /** Load processes. */
  workers: number;
  /** Connections of the single-call measure. */
  connections: number;
  /** Seconds of each single-call measure; 0 skips it. */
  baselineS: number;
  /** Print the figures as one JSON line too. */
  json: boolean;
}

// ---------------------------------------------------------------------------
// Progress, on stderr
// ---------------------------------------------------------------------------

const encoder = new TextEncoder();

/** On a terminal, rewrites the status line; elsewhere, prints only the final ones. */
function progress(text: string, final = false): void {
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}${final ? "\n" : ""}`));
  } else if (final) Deno.stderr.writeSync(encoder.encode(`${text}\n`));
}

function say(text: string): void {
  progress(text, true);
}

// ---------------------------------------------------------------------------
// The phases of a run
// ---------------------------------------------------------------------------

/** Registers a cleanup of the run: they run in reverse order, and their failures are ignored. */
type Defer = (cleanup: () => Promise<unknown>) => void;

/** A server instance to measure: with its pid when it is ours. */
interface Instance extends Address {
  pid?: number;
}

/** What is measured: `--server`, or a binder and servers of our own on their store. */
interface Target {
  /** The instances, in the order they started; the first takes the setup and the single-call measure. */
  instances: Instance[];
  /** The store, when the servers are ours. */
  store: "sqlite" | "redis" | null;
  /** The Redis URL, when the store is one. */
  storeUrl?: string;
  /** The process id of our own redis-server (`--redis-server`). */
  redisPid?: number;
}

/** The Redis of `--store`, or one of our own in `dir` with `--redis-server`, or none. */
async function redisStore(
  options: BenchOptions,
  dir: string,
  defer: Defer,
): Promise<{ url?: string; pid?: number }> {
  if (!options.redisServer) return { url: options.store };
  const missing = await redisMissing();
  if (missing) throw new Error(`--redis-server: ${missing}`);
  const redis = await RedisServer.start({ dir: `${dir}/redis` });
  defer(() => redis.close());
  return { url: redis.url, pid: redis.pid };
}

/** The server of `--server`, or ours, started in a temporary directory and checked for enough open files. */
async function systemUnderTest(options: BenchOptions, defer: Defer): Promise<Target> {
  if (options.server) return { instances: [parseHostPort(options.server, 8001)], store: null };
  const dir = await Deno.makeTempDir({ prefix: "rpc-chat-bench-" });
  defer(() => Deno.remove(dir, { recursive: true }));
  const redis = await redisStore(options, dir, defer);
  // The workers pace their users themselves; the sending measure is one user as fast as the server goes.
  const maxRate = 100_000;
  const instances = await startServers(
    dir,
    { compat: options.compat, maxRate, servers: options.servers, store: redis.url },
    defer,
  );
  const perWorker = Math.ceil(options.clients / options.workers);
  // Each instance: its share of the clients, the workers' senders, and the single-call measure's connections.
  const perInstance = Math.ceil(options.clients / options.servers);
  const needs = perInstance + options.workers * sendersFor(perWorker) + options.connections + 100;
  for (const instance of instances) {
    await checkOpenFiles(
      instance.pid,
      needs,
      (limit) =>
        `o servidor pode abrir só ${limit} arquivos, e ${perInstance} clientes precisam de ${needs}: ` +
        `aumente o limite (ulimit -n ${needs})`,
    );
  }
  return {
    instances,
    store: redis.url === undefined ? "sqlite" : "redis",
    storeUrl: redis.url,
    redisPid: redis.pid,
  };
}

function describeRun(options: BenchOptions, target: Target): string {
  const instances = target.instances.map((i) => `${i.host}:${i.port}` + (i.pid ? ` (pid ${i.pid})` : ""));
  const store = target.store === null
    ? ""
    : `, store ${target.store}` + (target.storeUrl ? ` ${target.storeUrl}` : "") +
      (target.redisPid ? ` (redis-server pid ${target.redisPid})` : "");
  return `rpc-chat bench: ${fmt(options.clients)} clients, ${options.rooms} rooms, ` +
    (options.idle
      ? `idle for ${options.durationS} s`
      : `${fmt(options.rate)} msg/s for ${options.durationS} s`) +
    `, ${options.compat ? "compat (receber_mensagens every 2 s)" : "long wait"}, ` +
    `${instances.length > 1 ? `${instances.length} servers` : "server"} ${instances.join(", ")}${store}`;
}

/** This run's rooms, created by a user of their own (a server without --compat takes rooms only from a session). */
async function createRooms(target: Address, runId: string, count: number): Promise<string[]> {
  const rooms = Array.from({ length: count }, (_, r) => `b${runId}-sala${r}`);
  const setup = new HttpConnection(target.host, target.port);
  try {
    const { cookie } = await rawCall(setup, "registrar_usuario", [`b${runId}-salas`], { timeoutMs: 30_000 });
    for (const room of rooms) {
      const { value } = await rawCall(setup, "criar_sala", [room], { cookie, timeoutMs: 30_000 });
      if ((value as XmlRpcValue[])[0] !== true) throw new Error(`criar_sala ${room}: ${value}`);
    }
  } finally {
    setup.close();
  }
  return rooms;
}

/** The worker processes, each with its share of the clients, checked for enough open files. */
async function startWorkers(
  options: BenchOptions,
  share: Omit<WorkerConfig, "worker" | "first" | "last">,
  defer: Defer,
): Promise<WorkerProcess[]> {
  const workers: WorkerProcess[] = [];
  for (let w = 0; w < options.workers; w++) {
    const worker = await WorkerProcess.start(import.meta.url, {
      ...share,
      worker: w,
      first: Math.floor((w * options.clients) / options.workers),
      last: Math.floor(((w + 1) * options.clients) / options.workers),
    });
    workers.push(worker);
    defer(() => worker.stop());
  }
  // Each worker holds a connection per client of its own, plus its senders.
  const perWorker = Math.ceil(options.clients / options.workers);
  const needs = perWorker + sendersFor(perWorker) + 100;
  await checkOpenFiles(
    workers[0]!.pid,
    needs,
    (limit) =>
      `um processo de carga pode abrir só ${limit} arquivos e precisa de ${needs}: ` +
      `aumente o limite (ulimit -n) ou use mais --workers`,
  );
  return workers;
}

/** The clients in their rooms: the members of each room, the clients of each instance, the cursor to start at. */
interface ConnectedClients {
  roomSize: number[];
  perServer: number[];
  cursor: number;
}

/** Every worker's clients registered and in their rooms. */
async function connectClients(
  workers: WorkerProcess[],
  rooms: string[],
): Promise<ConnectedClients> {
  const start = performance.now();
  const connected = await Promise.all(workers.map((w) => w.ask({ cmd: "connect" }, 600_000)));
  const roomSize = rooms.map((_, r) => connected.reduce((n, c) => n + c.joined[r]!, 0));
  const perServer = connected[0]!.onServer.map((_, s) => connected.reduce((n, c) => n + c.onServer[s]!, 0));
  say(
    `${fmt(roomSize.reduce((a, b) => a + b, 0))} clients registered and in their rooms in ${
      fmt((performance.now() - start) / 1000, 1)
    } s`,
  );
  return { roomSize, perServer, cursor: Math.max(...connected.map((c) => c.cursor)) };
}

/** The load as it runs: the workers' progress, shown every second, and when it is over. */
class LoadWatch {
  #lastShown = 0;

  constructor(
    readonly options: BenchOptions,
    readonly workers: WorkerProcess[],
    readonly roomSize: number[],
    readonly startAt: number,
  ) {}

  /** Deliveries the messages sent so far call for. */
  expected(): number {
    return this.workers.reduce(
      (n, w) => n + (w.latest?.sentByRoom.reduce((sum, sent, r) => sum + sent * this.roomSize[r]!, 0) ?? 0),
      0,
    );
  }

  #sum(pick: (progress: Progress) => number): number {
    return this.workers.reduce((n, w) => n + (w.latest ? pick(w.latest) : 0), 0);
  }

  /** The progress line, at most once a second unless final. */
  show(final = false): void {
    if (!final && Date.now() - this.#lastShown < 1000) return;
    this.#lastShown = Date.now();
    const line = progressLine(
      (Date.now() - this.startAt) / 1000,
      this.options.warmupS + this.options.durationS,
      this.workers.map((w) => w.latest),
      this.expected(),
    );
    progress(line, final);
  }

  /** Until the duration is over: the clients holding a long wait at the end. */
  async duration(): Promise<number> {
    const end = this.startAt + (this.options.warmupS + this.options.durationS) * 1000;
    let held = 0;
    for (let guard = 0; guard < 100_000 && Date.now() < end; guard++) {
      await sleep(Math.min(100, end - Date.now()));
      if (this.options.idle && Date.now() >= end - 600) held = Math.max(held, this.#sum((p) => p.waiting));
      this.show();
    }
    return this.options.idle ? held : this.#sum((p) => p.waiting);
  }

  /** Until every delivery is made, or nothing moved for a while (then some never will be). */
  async drain(): Promise<void> {
    const stillMs = this.options.compat ? 2 * POLL_MS + 3000 : 5000;
    const drainUntil = Date.now() + 60_000;
    let moved = Date.now();
    let seen = -1;
    for (let guard = 0; guard < 10_000 && Date.now() < drainUntil && Date.now() - moved < stillMs; guard++) {
      await sleep(100);
      const done = this.workers.every((w) => w.latest?.sendingDone && w.latest.pendingSends === 0);
      const delivered = this.#sum((p) => p.deliveries);
      const sent = this.#sum((p) => p.sentByRoom.reduce((a, b) => a + b, 0));
      if (done && delivered >= this.expected()) break;
      if (delivered + sent !== seen) {
        seen = delivered + sent;
        moved = Date.now();
      }
      this.show();
    }
    this.show(true);
  }
}

/** Processes before and after the load. */
interface BeforeAfter {
  before: ProcessStats | null;
  after: ProcessStats | null;
}

/** What the coordinator saw of the load. */
interface LoadSeen {
  held: number;
  loadS: number;
  server: BeforeAfter;
  redis: BeforeAfter;
  loadCpuS: number | null;
}

/** The load, from the start to the last delivery, with the servers', Redis' and the workers' figures around it. */
async function runLoad(
  options: BenchOptions,
  workers: WorkerProcess[],
  clients: ConnectedClients,
  target: Target,
): Promise<LoadSeen> {
  const durationMs = (options.warmupS + options.durationS) * 1000;
  const warmupMs = options.warmupS * 1000;
  const pids = workers.map((w) => w.pid);
  const serverPids = target.instances.flatMap((i) => i.pid ?? []);
  const redisPids = target.redisPid ? [target.redisPid] : [];
  const server: BeforeAfter = { before: await combinedStats(serverPids), after: null };
  const redis: BeforeAfter = { before: await combinedStats(redisPids), after: null };
  const loadBefore = await totalCpu(pids);
  const startAt = Date.now() + 300;
  const rate = options.idle ? 0 : options.rate / workers.length;
  for (const worker of workers) {
    await worker.send({
      cmd: "run",
      cursor: clients.cursor,
      startAt,
      rate,
      durationMs,
      warmupMs,
      ping: options.idle,
    });
  }
  const watch = new LoadWatch(options, workers, clients.roomSize, startAt);
  const held = await watch.duration();
  await watch.drain();
  server.after = await combinedStats(serverPids);
  redis.after = await combinedStats(redisPids);
  const loadAfter = await totalCpu(pids);
  return {
    held,
    loadS: (Date.now() - startAt) / 1000,
    server,
    redis,
    loadCpuS: loadAfter !== null && loadBefore !== null ? loadAfter - loadBefore : null,
  };
}

/** Runs the benchmark and returns its figures; progress goes to stderr. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
  await using cleanups = new AsyncDisposableStack();
  const defer: Defer = (cleanup) => cleanups.defer(() => cleanup().then(() => {}, () => {}));
  const machine = await describeMachine();
  const runId = crypto.randomUUID().slice(0, 6);
  const target = await systemUnderTest(options, defer);
  say(describeRun(options, target));
  const first = target.instances[0]!;
  const rooms = await createRooms(first, runId, options.rooms);
  const share = { servers: target.instances, compat: options.compat, runId, rooms };
  const workers = await startWorkers(options, share, defer);
  const singleRun = {
    ...share,
    host: first.host,
    port: first.port,
    serverPid: first.pid,
    workers,
    script: import.meta.url,
    connections: options.connections,
    baselineS: options.baselineS,
  };
  const single = await measureSingleCall(singleRun, "read");
  const send = await measureSingleCall(singleRun, "send");
  for (const measured of [single, send]) {
    if (measured.fraction === null) continue;
    say(
      `single call (${measured.method}, ${options.connections} connections): raw Deno.serve ${
        fmt(measured.baseline)
      }/s, ours ${fmt(measured.ours)}/s = ${fmt(measured.fraction * 100)}%`,
    );
  }
  const clients = await connectClients(workers, rooms);
  const load = await runLoad(options, workers, clients, target);
  const results = await Promise.all(workers.map((w) => w.ask({ cmd: "finish" }, 60_000)));
  return buildResult({
    ...load,
    mode: options.idle ? "idle" : options.compat ? "compat" : "long-wait",
    clients: options.clients,
    servers: target.instances.length,
    store: target.store,
    roomSize: clients.roomSize,
    perServer: clients.perServer,
    rate: options.rate,
    durationS: options.durationS,
    warmupS: options.warmupS,
    single,
    send,
    connections: options.connections,
    machine,
  }, results);
}

// ---------------------------------------------------------------------------
// Program
// ---------------------------------------------------------------------------

const USAGE = `bench.ts: the benchmark of rpc-chat

Usage: deno run --allow-net --allow-run=deno,cat,redis-server --allow-write bench.ts [options]
       deno task bench [options]

Options:
  --clients N            clients, each in one room, each receiving live (default: 1000)
  --rooms N              rooms; client i is in room i mod N (default: 10)
  --rate N               messages per second in total, spread over the rooms (default: 200)
  --duration S           seconds of load (default: 10)
  --warmup S             seconds of load before those, every delivery checked but none in the
                         latency figures: the processes' code compiled first (default: 0)
  --idle N               N clients, each holding a pending long wait for --duration seconds,
                         then one message per room (ignores --clients and --rate)
  --server H:P           measure this server instead of starting a binder and a server
  --servers N            start N server instances in the same binder, the clients spread over them;
                         N > 1 needs --store or --redis-server (default: 1)
  --store URL            every instance's store, redis://H:P[/DB] (default: the embedded SQLite)
  --redis-server         start a redis-server of its own (temporary directory, free port) as the store
  --compat               only the original methods: receber_mensagens every 2 s per client
  --workers N            load processes (default: 1; the machine has ${navigator.hardwareConcurrency} cores)
  --connections N        connections for the single-call measure (default: 20)
  --baseline-seconds S   seconds of each single-call measure; 0 skips it (default: 3)
  --json                 also print the figures as one JSON line, last
  -h, --help             this help

It starts binder.ts and server.ts (database and logs in a temporary directory) unless --server is
given, and exits 1 when a delivery is missing or made twice.
Internal: --worker and --baseline-server SIZE start the processes it spawns.`;
function printUsage(): void {
  console.log(USAGE);
}

const FLAGS = {
  clients: { type: "string", default: "1000" },
  rooms: { type: "string", default: "10" },
  rate: { type: "string", default: "200" },
  duration: { type: "string", default: "10" },
  warmup: { type: "string", default: "0" },
  idle: { type: "string" },
  server: { type: "string" },
  servers: { type: "string", default: "1" },
  store: { type: "string" },
  "redis-server": { type: "boolean", default: false },
  compat: { type: "boolean", default: false },
  workers: { type: "string", default: "1" },
  connections: { type: "string", default: "20" },
  "baseline-seconds": { type: "string", default: "3" },
  json: { type: "boolean", default: false },
  worker: { type: "boolean", default: false },
  "baseline-server": { type: "string" },
} as const;

/** The run the flags ask for; a bad flag ends the program with its usage error. */
function benchOptions(program: string, flags: ReturnType<typeof parseFlags<typeof FLAGS>>): BenchOptions {
  const int = (flag: string, text: string, min: number, max: number) =>
    numberFlag(program, flag, text, { min, max, integer: true });
  const idle = flags.idle === undefined ? undefined : int("--idle", flags.idle, 1, 100_000);
  const options: BenchOptions = {
    clients: idle ?? int("--clients", flags.clients, 1, 100_000),
    rooms: int("--rooms", flags.rooms, 1, 10_000),
    rate: numberFlag(program, "--rate", flags.rate, { min: 0, max: 1_000_000 }),
    durationS: numberFlag(program, "--duration", flags.duration, { min: 0.1, max: 3600 }),
    warmupS: numberFlag(program, "--warmup", flags.warmup, { min: 0, max: 600 }),
    server: flags.server,
    servers: int("--servers", flags.servers, 1, 64),
    store: flags.store,
    redisServer: flags["redis-server"],
    compat: flags.compat,
    idle: idle !== undefined,
    workers: int("--workers", flags.workers, 1, 64),
    connections: int("--connections", flags.connections, 1, 10_000),
    baselineS: numberFlag(program, "--baseline-seconds", flags["baseline-seconds"], { min: 0, max: 600 }),
    json: flags.json,
  };
  if (options.server !== undefined) {
    try {
      parseHostPort(options.server, 8001);
    } catch (error) {
      usageError(program, `--server: ${(error as Error).message}`);
    }
    if (options.servers > 1 || options.store !== undefined || options.redisServer) {
      usageError(program, "--server mede um servidor que já roda: sem --servers, --store ou --redis-server");
    }
  }
  if (options.store !== undefined) {
    try {
      parseRedisUrl(options.store);
    } catch {
      usageError(
        program,
        `--store: esperado redis://HOST:PORTA[/BANCO], não ${JSON.stringify(options.store)}`,
      );
    }
    if (options.redisServer) usageError(program, "--store ou --redis-server, não os dois");
  }
  if (options.servers > 1 && options.store === undefined && !options.redisServer) {
    usageError(
      program,
      `--servers ${options.servers} precisa de --store redis://H:P ou --redis-server ` +
        "(servidores separados seriam chats separados)",
    );
  }
  return options;
}

/**
 * The program: runs the benchmark the flags ask for and prints the table
 * (and the JSON line with `--json`); exits 1 when a delivery is missing or
 * made twice. With `--worker` or `--baseline-server` it is one of the
 * processes a run starts.
 */
export async function main(args: string[] = Deno.args): Promise<void> {
  const program = "bench.ts";
  const flags = parseFlags(program, printUsage, args, FLAGS);
  if (flags.worker) return await workerMain();
  if (flags["baseline-server"] !== undefined) {
    return baselineMain(numberFlag(program, "--baseline-server", flags["baseline-server"], {
      min: 0,
      max: 1 << 24,
      integer: true,
    }));
  }
  const options = benchOptions(program, flags);
  let result: BenchResult;
  try {
    result = await runBench(options);
  } catch (error) {
    console.error(`${program}: ${(error as Error).message}`);
    Deno.exit(1);
  }
  console.log(formatTable(result));
  if (result.error_samples.length) console.log(`errors, for example: ${result.error_samples.join("; ")}`);
  if (options.json) console.log(JSON.stringify(result));
  Deno.exit(result.ok ? 0 : 1);
}

if (import.meta.main) await main();
