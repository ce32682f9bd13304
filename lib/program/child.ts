/**
 * Programs talking to programs: the ready line every server prints once it
 * serves, the one way to read a stream as lines, and {@linkcode ChildProgram},
 * which starts a program (our scripts with their exact permissions), splits
 * its output into lines and waits on them. start.ts, the benchmark and the
 * tests all start and watch children through it.
 *
 * @module
 */

import { readLines, writeStdout } from "./io.ts";

// ---------------------------------------------------------------------------
// The ready line
// ---------------------------------------------------------------------------

/**
 * What a program announces once it serves, on one stdout line of its own:
 * `rpc-chat-pronto {"programa":"server","host":"0.0.0.0","porta":8001}`.
 * Log lines are for people and may be reworded; this line is the contract.
 */
export interface ReadyLine {
  /** Which program: `binder`, `server`... */
  programa: string;
  /** The interface it listens on, as given (`0.0.0.0` for all). */
  host: string;
  /** The port it really listens on (`--port 0` picks one). */
  porta: number;
}

/** The tag that starts a ready line. */
export const READY_TAG = "rpc-chat-pronto";

/** Prints the ready line. */
export function announceReady(ready: ReadyLine): void {
  writeStdout(`${READY_TAG} ${JSON.stringify(ready)}\n`);
}

/** The ready line's contents, or undefined when the line is not one. */
export function parseReadyLine(line: string): ReadyLine | undefined {
  if (!line.startsWith(`${READY_TAG} `)) return undefined;
  try {
    const ready = JSON.parse(line.slice(READY_TAG.length + 1));
    if (
      typeof ready?.programa === "string" && typeof ready.host === "string" && Number.isInteger(ready.porta)
    ) {
      return ready as ReadyLine;
    }
  } catch {
    // Not JSON: not a ready line.
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Child programs
// ---------------------------------------------------------------------------

/**
 * The exact permissions each of our programs runs with, as the README
 * documents them: start.ts, the benchmark and the tests start them so.
 */
export const PERMISSIONS = {
  binder: ["--allow-net"],
  server: [
    "--allow-net",
    "--allow-sys=networkInterfaces",
    "--allow-read=chat.db",
    "--allow-write=chat_server.log,chat.db",
  ],
  cliente: ["--allow-net"],
  /** The server on a Redis (`--store`): no database file; the Redis client reads one variable of its own. */
  clusterServer: [
    "--allow-net",
    "--allow-sys=networkInterfaces",
    "--allow-env=REDIS_DEBUG_MAINTENANCE",
    "--allow-write=chat_server.log",
  ],
} as const satisfies Record<string, readonly string[]>;

/** How a {@linkcode ChildProgram} runs. */
export interface ChildOptions {
  /** Its working directory (default: ours). */
  cwd?: string;
  /** Variables added to its environment. */
  env?: Record<string, string>;
  /** `piped` to {@linkcode ChildProgram.write} to it; default `null`. */
  stdin?: "piped" | "null" | "inherit";
  /** `inherit` lets it write straight to ours; default `piped` (kept as lines). */
  stderr?: "piped" | "inherit";
  /** A file that receives a copy of everything the program prints (created or truncated). */
  outputFile?: string;
  /** Add to {@linkcode ChildOptions.outputFile} instead of truncating it (a program started again). */
  appendOutput?: boolean;
}

const encoder = new TextEncoder();

/** This Deno, where we may run it by its path; else `deno` from PATH (start.ts has `--allow-run=deno`). */
function denoExecutable(): string {
  const path = Deno.execPath();
  return Deno.permissions.querySync({ name: "run", command: path }).state === "granted" ? path : "deno";
}

/** The command and arguments of `deno run --no-prompt` on a script with exactly these permissions. */
export function denoRun(
  script: string | URL,
  permissions: readonly string[],
  args: readonly string[] = [],
): [command: string, args: string[]] {
  return [
    denoExecutable(),
    ["run", "--no-prompt", ...permissions, script instanceof URL ? script.href : script, ...args],
  ];
}

/** A program running as a subprocess, its output kept line by line. */
export class ChildProgram implements AsyncDisposable {
  /** Every stdout line so far. */
  readonly lines: string[] = [];
  /** Every stderr line so far (when piped). */
  readonly stderrLines: string[] = [];
  /** Resolves once the program ended and its output was read. */
  readonly status: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  readonly #listeners = new Set<() => void>();
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #ended = false;

  /** Starts `deno run --no-prompt` on a script with exactly these permissions. */
  static deno(
    script: string | URL,
    permissions: readonly string[],
    args: readonly string[] = [],
    options: ChildOptions = {},
  ): ChildProgram {
    return new ChildProgram(...denoRun(script, permissions, args), options);
  }

  /** Starts `command` with `args`. */
  constructor(command: string, args: readonly string[], options: ChildOptions = {}) {
    this.#child = new Deno.Command(command, {
      args: [...args],
      cwd: options.cwd,
      env: options.env,
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: options.stderr ?? "piped",
    }).spawn();
    if (options.stdin === "piped") this.#stdin = this.#child.stdin.getWriter();
    const file = options.outputFile
      ? Deno.openSync(options.outputFile, {
        write: true,
        create: true,
        truncate: !options.appendOutput,
        append: options.appendOutput,
      })
      : undefined;
    const collect = async (stream: ReadableStream<Uint8Array>, into: string[]) => {
      for await (const line of readLines(stream)) {
        file?.writeSync(encoder.encode(`${line}\n`));
        into.push(line);
        for (const listener of this.#listeners) listener();
      }
    };
    const reading = [collect(this.#child.stdout, this.lines)];
    if ((options.stderr ?? "piped") === "piped") reading.push(collect(this.#child.stderr, this.stderrLines));
    this.status = Promise.all(reading).then(() => this.#child.status).finally(() => {
      file?.close();
      this.#ended = true;
      for (const listener of this.#listeners) listener();
    });
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** All stdout so far, one string. */
  get output(): string {
    return this.lines.join("\n");
  }

  /** The last lines it printed (stdout and stderr), to explain a failure. */
  tail(count = 5): string {
    return [...this.lines.slice(-count), ...this.stderrLines.slice(-count)].join("\n");
  }

  /**
   * Waits for the first stdout line, from index `from` on (default: all
   * lines so far), that `pick` turns into a value. Rejects when the program
   * ends first or after `timeoutMs`, with what it printed.
   */
  waitFor<T>(
    pick: (line: string) => T | undefined,
    what: string,
    options: { timeoutMs?: number; from?: number } = {},
  ): Promise<T> {
    let next = options.from ?? 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        for (; next < this.lines.length; next++) {
          const value = pick(this.lines[next]!);
          if (value !== undefined) return finish(() => resolve(value));
        }
        if (this.#ended) finish(() => reject(new Error(`program ended before ${what}:\n${this.tail(20)}`)));
      };
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        settle();
      };
      const timeoutMs = options.timeoutMs ?? 10_000;
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(new Error(`timed out (${timeoutMs} ms) waiting for ${what}:\n${this.tail(20)}`))
          ),
        timeoutMs,
      );
      this.#listeners.add(check);
      check();
    });
  }

  /** Waits until a stdout line matches; returns the match. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> {
    return this.waitFor((line) => line.match(pattern) ?? undefined, `a line matching ${pattern}`, {
      timeoutMs,
    });
  }

  /** Waits for the program's ready line. */
  ready(timeoutMs?: number): Promise<ReadyLine> {
    return this.waitFor(parseReadyLine, "its ready line", { timeoutMs });
  }

  /** Writes to its stdin (started with `stdin: "piped"`). */
  async write(text: string): Promise<void> {
    await this.#stdin!.write(encoder.encode(text));
  }

  /** Closes its stdin: end of input. */
  async closeStdin(): Promise<void> {
    await this.#stdin?.close().catch(() => {});
  }

  /** Sends a signal, if it still runs. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /** Stops it with `signal` (SIGKILL after `graceMs` if it lingers) and waits for it. */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5000): Promise<Deno.CommandStatus> {
    await this.closeStdin();
    this.kill(signal);
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    try {
      return await this.status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills it at once: `await using` in tests. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}
