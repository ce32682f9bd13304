/**
 * The benchmark's worker: a process of its own (`bench.ts --worker`, only
 * `--allow-net`) that holds a share of the clients, each on a keep-alive
 * connection of its own receiving through the long wait (or polling, with
 * `--compat`), sends its share of the messages, and checks every delivery.
 *
 * The protocol, one JSON object a line: the coordinator writes commands to
 * the worker's stdin ({@linkcode WorkerCommand}); the worker answers on its
 * stdout, each answer's `type` first ({@linkcode WorkerAnswer}), and prints
 * its progress every 250 ms while the load runs. {@linkcode workerMain} is
 * the worker's side, {@linkcode WorkerProcess} the coordinator's.
 *
 * @module
 */

import { ChildProgram, readLines, type XmlRpcValue } from "../lib/mod.ts";
import type { Address } from "./system.ts";
import {
  clock,
  type DecodeCache,
  hammer,
  type HammerCount,
  type HammerOptions,
  Histogram,
  type HistogramData,
  HttpConnection,
  rawCall,
  sleep,
} from "./loadgen.ts";

/** The longest wait a client asks for; the server caps it at 25 s. */
const WAIT_MS = 25_000;
/** The original client receives every 2 s. */
export const POLL_MS = 2000;
/** Sender connections open at first to each instance; more open when all are busy, up to one per client, as real clients have. */
const SENDER_CONNECTIONS = 16;
/** But no more than this per worker and instance: file descriptors are counted. */
const MAX_SENDER_CONNECTIONS = 1024;
const LAG_TICK_MS = 20;
const SETUP_CONCURRENCY = 64;
const PROGRESS_EVERY_MS = 250;
const FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit";

/** The most sender connections a worker with this many clients on one instance opens to it. */
export function sendersFor(clients: number): number {
  return Math.min(MAX_SENDER_CONNECTIONS, Math.max(SENDER_CONNECTIONS, clients));
}

/** Messages carry their identity and the moment they were sent: `b|run|worker|seq|ms|filler`. */
export function messageText(runId: string, worker: number, seq: number): string {
  return `b|${runId}|${worker}|${seq}|${clock().toFixed(3)}|${FILLER}`;
}

// ---------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------

/** A worker's share of the run. */
export interface WorkerConfig {
  /**
   * The chat server's instances: client g talks to instance
   * floor(g / rooms) mod instances, so each room's members take turns over
   * them (and a message crosses instances to reach its room).
   */
  servers: Address[];
  /** Only the original methods: poll, no session cookie. */
  compat: boolean;
  /** Marks this run's names and messages. */
  runId: string;
  /** This worker's number. */
  worker: number;
  /** This worker's clients: global indexes first..last-1; client g is in room g mod rooms. */
  first: number;
  /** One past this worker's last client. */
  last: number;
  /** The rooms' names. */
  rooms: string[];
}

/** Start the load: receive from `cursor` on, send from `startAt` (ms since the epoch). */
export interface RunCommand {
  /** The command. */
  cmd: "run";
  /** The room cursor after every client joined: the messages before it are not the run's. */
  cursor: number;
  /** When to start sending, in milliseconds since the epoch. */
  startAt: number;
  /** Messages per second this worker sends. */
  rate: number;
  /** How long it sends (the warm-up included). */
  durationMs: number;
  /** The first part of it, whose messages are checked but kept out of the latencies. */
  warmupMs?: number;
  /** After the duration, one message to each room this worker pings. */
  ping: boolean;
}

/** What the coordinator writes to a worker's stdin. */
export type WorkerCommand =
  | { cmd: "config"; config: WorkerConfig }
  | ({ cmd: "hammer" } & HammerOptions)
  | { cmd: "connect" }
  | RunCommand
  | { cmd: "progress" }
  | { cmd: "finish" };

/** The answer to `connect`: this worker's clients in each room, and the highest cursor they saw. */
export interface Connected {
  /** The answer's type. */
  type: "connected";
  /** How many of this worker's clients joined each room. */
  joined: number[];
  /** How many of them talk to each instance. */
  onServer: number[];
  /** The highest room cursor they were given. */
  cursor: number;
}

/** How the load goes, printed every 250 ms once it runs. */
export interface Progress {
  /** The answer's type. */
  type: "progress";
  /** Messages sent to each room so far. */
  sentByRoom: number[];
  /** Every message is sent (their answers may still come). */
  sendingDone: boolean;
  /** Sends not answered yet. */
  pendingSends: number;
  /** Deliveries seen so far. */
  deliveries: number;
  /** Messages a client got twice. */
  duplicates: number;
  /** Calls made so far. */
  calls: number;
  /** Calls that failed. */
  errors: number;
  /** Clients with a long wait pending. */
  waiting: number;
  /** Clients this worker holds. */
  clients: number;
}

/** The answer to `finish`: everything this worker saw. */
export interface WorkerResult {
  /** The answer's type. */
  type: "result";
  /** Every message sent, as its key and its room. */
  sent: [key: string, room: number][];
  /** How many deliveries of each message key. */
  counts: Record<string, number>;
  /** The delivery latencies. */
  histogram: HistogramData;
  /** The delivery latencies by the second of the load their message was sent in (0: the first). */
  bySecond: HistogramData[];
  /** Deliveries seen. */
  deliveries: number;
  /** Messages a client got twice. */
  duplicates: number;
  /** Calls made during the load. */
  calls: number;
  /** Calls that failed. */
  errors: number;
  /** The first few errors' messages. */
  errorSamples: string[];
  /** How late this process's timers fired during the load: its own event loop's lag. */
  lag: HistogramData;
}

/** The answer to `hammer`: what {@linkcode hammer} counted. */
export type HammerAnswer = { type: "hammer" } & HammerCount;

/** What a worker prints on stdout, one a line. */
export type WorkerAnswer = Connected | Progress | WorkerResult | HammerAnswer;

/** The commands that have an answer, and their answers. */
export interface Answers {
  /** Clients registered and in their rooms. */
  connect: Connected;
  /** Calls counted. */
  hammer: HammerAnswer;
  /** How the load goes. */
  progress: Progress;
  /** Everything seen. */
  finish: WorkerResult;
}

/** The `type` each command's answer starts with. */
const ANSWER_TYPE: { [C in keyof Answers]: Answers[C]["type"] } = {
  connect: "connected",
  hammer: "hammer",
  progress: "progress",
  finish: "result",
};

// ---------------------------------------------------------------------------
// The worker's side
// ---------------------------------------------------------------------------

interface Client {
  readonly index: number;
  readonly name: string;
  readonly room: number;
  /** Its instance, an index of the config's `servers`. */
  readonly server: number;
  readonly connection: HttpConnection;
  cookie: string | undefined;
  cursor: number;
  lastId: number;
  previous: Set<string>;
  waiting: boolean;
}

/**
 * The sender connections to one instance: an idle one is taken, a new one
 * opened while all are busy (up to `cap`), else the first given back.
 */
class SenderPool {
  /** The most connections it opens. */
  cap = SENDER_CONNECTIONS;
  readonly #all: HttpConnection[] = [];
  readonly #idle: HttpConnection[] = [];
  readonly #waiting: ((connection: HttpConnection) => void)[] = [];

  constructor(readonly server: Address) {
    for (let i = 0; i < SENDER_CONNECTIONS; i++) this.#open();
  }

  #open(): void {
    const connection = new HttpConnection(this.server.host, this.server.port);
    this.#all.push(connection);
    this.#idle.push(connection);
  }

  /** A connection of its own until {@linkcode SenderPool.give} hands it back. */
  async take(): Promise<HttpConnection> {
    if (!this.#idle.length && this.#all.length < this.cap) this.#open();
    return this.#idle.pop() ?? await new Promise<HttpConnection>((resolve) => this.#waiting.push(resolve));
  }

  /** Gives a taken connection back: to the first waiting, or idle. */
  give(connection: HttpConnection): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(connection);
    else this.#idle.push(connection);
  }

  close(): void {
    for (const connection of this.#all) connection.close();
  }
}

/** The clients, senders and checks of one worker process. */
class Worker {
  readonly #config: WorkerConfig;
  readonly #clients: Client[] = [];
  readonly #counts = new Map<string, number>();
  readonly #histogram = new Histogram();
  /** The latencies by second of sending: a tail's moment says whether it was the start, or all along. */
  readonly #bySecond: Histogram[] = [];
  #startAt = 0;
  /** Messages sent before this are the warm-up's (ms since the epoch). */
  #measuredFrom = 0;
  readonly #sent: [string, number][] = [];
  readonly #sentByRoom: number[];
  readonly #errorSamples: string[] = [];
  readonly #decoded: DecodeCache = new Map();
  readonly #lag = new Histogram();
  #lagTimer: ReturnType<typeof setInterval> | undefined;
  /** One per instance, in the config's order. */
  readonly #senders: SenderPool[];
  #deliveries = 0;
  #duplicates = 0;
  #calls = 0;
  #errors = 0;
  #running = false;
  #callsBeforeRun = 0;
  #sendingDone = false;
  #pendingSends = 0;
  #hardDeadline = Infinity;
  #loops: Promise<void>[] = [];

  constructor(config: WorkerConfig) {
    this.#config = config;
    this.#sentByRoom = config.rooms.map(() => 0);
    this.#senders = config.servers.map((server) => new SenderPool(server));
  }

  #error(error: unknown): void {
    this.#errors++;
    if (this.#errorSamples.length < 5) {
      this.#errorSamples.push(error instanceof Error ? error.message : String(error));
    }
  }

  /** A call of a client's; counted when it succeeds. */
  async #call(connection: HttpConnection, method: string, params: XmlRpcValue[], cookie?: string) {
    const waits = method === "aguardar_mensagens";
    // The members of a room receive the same bytes: decode them once.
    const receives = waits || method === "receber_mensagens";
    const answer = await rawCall(connection, method, params, {
      cookie: this.#config.compat ? undefined : cookie,
      timeoutMs: waits ? WAIT_MS + 15_000 : 30_000,
      decoded: receives ? this.#decoded : undefined,
    });
    this.#calls++;
    return answer;
  }

  /** Registers this worker's clients and puts them in their rooms. */
  async connect(): Promise<Connected> {
    const { first, last, rooms } = this.#config;
    const answer: Connected = {
      type: "connected",
      joined: rooms.map(() => 0),
      onServer: this.#config.servers.map(() => 0),
      cursor: 0,
    };
    let next = first;
    await Promise.all(
      Array.from({ length: Math.min(SETUP_CONCURRENCY, last - first) }, async () => {
        while (next < last) {
          const joined = await this.#setupClient(next++);
          if (joined === undefined) continue;
          answer.joined[joined.client.room]!++;
          answer.onServer[joined.client.server]!++;
          answer.cursor = Math.max(answer.cursor, joined.cursor);
          this.#clients.push(joined.client);
        }
      }),
    );
    this.#clients.sort((a, b) => a.index - b.index);
    for (const [s, pool] of this.#senders.entries()) {
      pool.cap = sendersFor(this.#clients.filter((client) => client.server === s).length);
    }
    return answer;
  }

  /** One client registered and in its room, with the room's cursor; undefined (an error counted) if not. */
  async #setupClient(index: number): Promise<{ client: Client; cursor: number } | undefined> {
    const { rooms, runId, servers } = this.#config;
    const server = Math.floor(index / rooms.length) % servers.length;
    const client: Client = {
      index,
      name: `b${runId}-${index}`,
      room: index % rooms.length,
      server,
      connection: new HttpConnection(servers[server]!.host, servers[server]!.port),
      cookie: undefined,
      cursor: 0,
      lastId: 0,
      previous: new Set(),
      waiting: false,
    };
    try {
      const registered = await this.#call(client.connection, "registrar_usuario", [client.name]);
      if ((registered.value as XmlRpcValue[])[0] !== true) throw new Error(`registro: ${registered.value}`);
      client.cookie = registered.cookie;
      const { value } = await this.#call(
        client.connection,
        "entrar_na_sala",
        [client.name, rooms[client.room]!],
        client.cookie,
      );
      const [ok, state] = value as [boolean, { cursor?: number }];
      if (ok !== true) throw new Error(`entrar_na_sala: ${state}`);
      return { client, cursor: Number(state.cursor ?? 0) };
    } catch (error) {
      this.#error(error);
      client.connection.close();
      return undefined;
    }
  }

  /** Starts receiving and sending; returns at once ({@linkcode Worker.progress} tells how it goes). */
  run(command: RunCommand): void {
    this.#running = true;
    this.#startAt = command.startAt;
    this.#measuredFrom = command.startAt + (command.warmupMs ?? 0);
    this.#callsBeforeRun = this.#calls;
    this.#hardDeadline = command.startAt + command.durationMs + 120_000;
    // A busy load generator would add its own delays to every figure: measure them.
    let due = performance.now() + LAG_TICK_MS;
    this.#lagTimer = setInterval(() => {
      const now = performance.now();
      this.#lag.add(now - due);
      due = now + LAG_TICK_MS;
    }, LAG_TICK_MS);
    for (const [i, client] of this.#clients.entries()) {
      client.cursor = command.cursor;
      client.lastId = command.cursor;
      const offset = (i / Math.max(1, this.#clients.length)) * POLL_MS;
      this.#loops.push(
        this.#config.compat ? this.#pollLoop(client, command.startAt + offset) : this.#waitLoop(client),
      );
    }
    this.#loops.push(this.#sendLoop(command));
  }

  /** The receiving client: one long wait after another, from its cursor on. */
  async #waitLoop(client: Client): Promise<void> {
    const room = this.#config.rooms[client.room]!;
    while (this.#running && Date.now() < this.#hardDeadline) {
      let value: XmlRpcValue;
      client.waiting = true;
      try {
        ({ value } = await this.#call(
          client.connection,
          "aguardar_mensagens",
          [client.name, room, client.cursor, WAIT_MS],
          client.cookie,
        ));
      } catch (error) {
        if (!this.#running) break;
        this.#error(error);
        await sleep(100);
        continue;
      } finally {
        client.waiting = false;
      }
      const [ok, payload] = value as [
        boolean,
        { mensagens: { id: number; conteudo: string }[]; cursor: number },
      ];
      if (ok !== true) {
        this.#error(`aguardar_mensagens: ${payload}`);
        await sleep(100);
        continue;
      }
      const now = clock();
      for (const message of payload.mensagens) {
        if (message.id <= client.lastId) {
          this.#duplicates++;
          continue;
        }
        client.lastId = message.id;
        this.#record(message.conteudo, now);
      }
      client.cursor = payload.cursor;
    }
  }

  /** The original client: the last messages every 2 s, deduplicated against the previous answer. */
  async #pollLoop(client: Client, firstAt: number): Promise<void> {
    const room = this.#config.rooms[client.room]!;
    let due = firstAt;
    while (this.#running && Date.now() < this.#hardDeadline) {
      await sleep(due - Date.now());
      if (!this.#running) break;
      due += POLL_MS;
      let value: XmlRpcValue;
      try {
        ({ value } = await this.#call(
          client.connection,
          "receber_mensagens",
          [client.name, room],
          client.cookie,
        ));
      } catch (error) {
        if (!this.#running) break;
        this.#error(error);
        continue;
      }
      const [ok, messages] = value as [boolean, Record<string, XmlRpcValue>[]];
      if (ok !== true) {
        this.#error(`receber_mensagens: ${messages}`);
        continue;
      }
      const now = clock();
      const seen = new Set<string>();
      for (const message of messages) {
        const key = typeof message.id === "number"
          ? `#${message.id}`
          : `${message.origem}\u0000${message.timestamp}\u0000${message.conteudo}`;
        if (seen.has(key)) {
          this.#duplicates++;
          continue;
        }
        seen.add(key);
        if (!client.previous.has(key)) this.#record(String(message.conteudo), now);
      }
      client.previous = seen;
    }
  }

  /** A delivery of one of this run's messages: counted, and its latency. */
  #record(text: string, now: number): void {
    if (!text.startsWith("b|")) return;
    const [, runId, worker, seq, sentAt] = text.split("|", 5);
    if (runId !== this.#config.runId) return;
    const key = `${worker}|${seq}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#deliveries++;
    const sent = Number(sentAt);
    const latency = now - sent;
    if (sent >= this.#measuredFrom) this.#histogram.add(latency);
    const second = Math.max(0, Math.floor((sent - this.#startAt) / 1000));
    (this.#bySecond[second] ??= new Histogram()).add(latency);
  }

  /** Sends on schedule, `rate` a second spread over the clients; then the pings. */
  async #sendLoop(command: RunCommand): Promise<void> {
    const clients = this.#clients;
    const total = Math.floor(command.rate * command.durationMs / 1000);
    const sends: Promise<void>[] = [];
    if (clients.length && command.rate > 0) {
      const interval = 1000 / command.rate;
      for (let seq = 0; seq < total && this.#running;) {
        await sleep(command.startAt + seq * interval - Date.now());
        // Catch up with everything due: the schedule, not the timer, sets the rate.
        while (seq < total && command.startAt + seq * interval <= Date.now()) {
          sends.push(this.#send(clients[seq % clients.length]!, seq));
          seq++;
        }
      }
    }
    if (command.ping) {
      await sleep(command.startAt + command.durationMs - Date.now());
      // One message to each room whose first client is ours: every room gets exactly one.
      for (const client of clients) {
        if (client.index < this.#config.rooms.length) sends.push(this.#send(client, total + client.index));
      }
    }
    await Promise.all(sends);
    this.#sendingDone = true;
  }

  /** One message from `client`, on a sender connection to its instance (a new one if all are busy). */
  async #send(client: Client, seq: number): Promise<void> {
    this.#pendingSends++;
    // Sends never wait behind each other while there are fewer connections than clients: the load
    // stays what --rate says however slowly the server answers (an open loop).
    const senders = this.#senders[client.server]!;
    const connection = await senders.take();
    try {
      const text = messageText(this.#config.runId, this.#config.worker, seq);
      const { value } = await this.#call(
        connection,
        "enviar_mensagem",
        [client.name, this.#config.rooms[client.room]!, text, null],
        client.cookie,
      );
      const [ok, message] = value as [boolean, string];
      if (ok === true) {
        this.#sent.push([`${this.#config.worker}|${seq}`, client.room]);
        this.#sentByRoom[client.room]!++;
      } else this.#error(`enviar_mensagem: ${message}`);
    } catch (error) {
      this.#error(error);
    } finally {
      this.#pendingSends--;
      senders.give(connection);
    }
  }

  /** How the load goes. */
  progress(): Progress {
    return {
      type: "progress",
      sentByRoom: this.#sentByRoom,
      sendingDone: this.#sendingDone,
      pendingSends: this.#pendingSends,
      deliveries: this.#deliveries,
      duplicates: this.#duplicates,
      calls: this.#calls,
      errors: this.#errors,
      waiting: this.#clients.reduce((n, c) => n + (c.waiting ? 1 : 0), 0),
      clients: this.#clients.length,
    };
  }

  /** Stops everything and hands over what was seen. */
  finish(): WorkerResult {
    this.#running = false;
    clearInterval(this.#lagTimer);
    for (const client of this.#clients) client.connection.close();
    for (const senders of this.#senders) senders.close();
    return {
      type: "result",
      sent: this.#sent,
      counts: Object.fromEntries(this.#counts),
      histogram: this.#histogram.toJSON(),
      bySecond: Array.from(this.#bySecond, (histogram) => (histogram ?? new Histogram()).toJSON()),
      deliveries: this.#deliveries,
      duplicates: this.#duplicates,
      calls: this.#calls - this.#callsBeforeRun,
      errors: this.#errors,
      errorSamples: this.#errorSamples,
      lag: this.#lag.toJSON(),
    };
  }
}

function emit(answer: WorkerAnswer): void {
  console.log(JSON.stringify(answer));
}

/** A worker process: commands on stdin, one JSON line per answer on stdout; ends with `finish` or stdin. */
export async function workerMain(): Promise<void> {
  let worker: Worker | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;
  for await (const line of readLines(Deno.stdin.readable)) {
    const command = JSON.parse(line) as WorkerCommand;
    switch (command.cmd) {
      case "config":
        worker = new Worker(command.config);
        break;
      case "hammer":
        emit({ type: "hammer", ...await hammer(command) });
        break;
      case "connect":
        emit(await worker!.connect());
        break;
      case "run":
        worker!.run(command);
        ticker = setInterval(() => emit(worker!.progress()), PROGRESS_EVERY_MS);
        break;
      case "progress":
        emit(worker!.progress());
        break;
      case "finish":
        clearInterval(ticker);
        emit(worker!.finish());
        Deno.exit(0);
    }
  }
  // The coordinator is gone: so are we.
  Deno.exit(0);
}

// ---------------------------------------------------------------------------
// The coordinator's side
// ---------------------------------------------------------------------------

/** A worker process, as the coordinator drives it: commands, answers and its latest progress. */
export class WorkerProcess {
  readonly #child: ChildProgram;
  #latest: Progress | undefined;
  /** Stdout lines already looked at for progress. */
  #scanned = 0;

  private constructor(child: ChildProgram) {
    this.#child = child;
  }

  /** Starts `script --worker` (the benchmark's entry point) with only `--allow-net`, and configures it. */
  static async start(script: string | URL, config: WorkerConfig): Promise<WorkerProcess> {
    const child = ChildProgram.deno(script, ["--allow-net"], ["--worker"], {
      stdin: "piped",
      stderr: "inherit",
    });
    const worker = new WorkerProcess(child);
    await worker.send({ cmd: "config", config });
    return worker;
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** The newest progress it printed, if any. */
  get latest(): Progress | undefined {
    const lines = this.#child.lines;
    let newest: string | undefined;
    for (; this.#scanned < lines.length; this.#scanned++) {
      if (lines[this.#scanned]!.startsWith('{"type":"progress"')) newest = lines[this.#scanned];
    }
    if (newest !== undefined) this.#latest = JSON.parse(newest);
    return this.#latest;
  }

  /** Writes a command that has no answer. */
  async send(command: WorkerCommand): Promise<void> {
    await this.#child.write(`${JSON.stringify(command)}\n`);
  }

  /** Writes a command and waits for its answer: the first printed after the command was written. */
  async ask<C extends keyof Answers>(
    command: WorkerCommand & { cmd: C },
    timeoutMs: number,
  ): Promise<Answers[C]> {
    const prefix = `{"type":"${ANSWER_TYPE[command.cmd]}"`;
    const from = this.#child.lines.length;
    await this.send(command);
    return await this.#child.waitFor(
      (line) => line.startsWith(prefix) ? JSON.parse(line) as Answers[C] : undefined,
      `the worker's answer to ${command.cmd}`,
      { timeoutMs, from },
    );
  }

  /** Kills it and waits for it. */
  async stop(): Promise<void> {
    await this.#child.stop("SIGKILL");
  }
}
