/**
 * The operator log: one line format for every program,
 * `2026-11-24 15:28:12 [INFO] texto`, on the console and, for the programs
 * that keep a log file (the chat server's `chat_server.log`), in that file.
 *
 * Each line is formatted once and leaves the hot path at once: console lines
 * are written together once per turn of the event loop; file lines are
 * gathered here (64 KiB or a quarter of a second, whichever comes first: an
 * operator watching the file sees each line within a second) and handed to
 * LogTape's file sink (`npm:@logtape/file`, non-blocking mode) as one record,
 * written in one write and synced off the event loop. (Handed line by line,
 * the sink writes each line with an asynchronous write of its own, one trip
 * to a helper thread each: about a seventh of the server's time while it
 * stores 15,000 messages a second.) On `kill -9` the file can lose the lines
 * of the last quarter of a second at most (64 KiB at most, plus a batch being
 * written) and the console those of the last turn; never a message (those are in the
 * database before they are acknowledged). A clean stop ({@linkcode Log.close})
 * writes everything.
 *
 * The file sink is loaded only when a file is asked for, through a computed
 * specifier, so the client's and the binder's module graphs hold no npm
 * package: a classmate who runs the client from a URL needs nothing but Deno
 * and the address.
 *
 * @module
 */

import { flushStdout, queueStdout } from "./io.ts";

/** What programs and their cores log through: plain lines, never message text. */
export interface Logger {
  /** What happened: a user registered, a room was removed. */
  info(message: string): void;
  /** Something the operator may need to act on: the binder is unreachable. */
  warn(message: string): void;
  /** A failure: a bug, a write that did not happen. */
  error(message: string): void;
}

/** An open log: a {@linkcode Logger} that must be closed (flushed) before the program exits. */
export interface Log extends Logger {
  /** Flushes and closes the sinks. */
  close(): Promise<void>;
}

/** LogTape's file sink, pinned; imported only by {@linkcode openLog} with a file. */
const LOGTAPE_FILE = "npm:@logtape/file@2.3.10";

/** Bytes of log lines gathered before they go to the file sink (they also go every `FILE_FLUSH_MS`). */
const FILE_BUFFER_BYTES = 64 * 1024;
const FILE_FLUSH_MS = 250;

/**
 * The record LogTape's sinks take, with our line already formatted in it
 * (declared here: a type import would put LogTape in every module graph).
 */
interface LineRecord {
  readonly category: readonly string[];
  readonly level: string;
  readonly message: readonly unknown[];
  readonly rawMessage: string;
  readonly timestamp: number;
  readonly properties: Record<string, unknown>;
  /** The whole formatted line, newline included. */
  readonly line: string;
}
type FileSink = ((record: LineRecord) => void) & { [Symbol.asyncDispose](): Promise<void> };
interface LogTapeFile {
  getFileSink(
    path: string,
    options: {
      formatter: (record: LineRecord) => string;
      bufferSize: number;
      flushInterval: number;
      nonBlocking: boolean;
    },
  ): FileSink;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `2026-11-24 15:28:12` in local time, the format of the original log. */
export function localTimestamp(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** The timestamp of the current second, formatted once for all its lines. */
let stampSecond = -1;
let stamp = "";

function formatLine(timestamp: number, level: string, message: string): string {
  const second = Math.floor(timestamp / 1000);
  if (second !== stampSecond) {
    stampSecond = second;
    stamp = localTimestamp(new Date(timestamp));
  }
  return `${stamp} [${level}] ${message}\n`;
}

/**
 * Opens the log of a program: every line to the console (stdout, unless
 * `quiet`) and, when `file` is given, to that file too. Throws when the file
 * cannot be opened (a `NotCapable` error without the write permission).
 */
export async function openLog(
  category: string,
  options: { file?: string; quiet?: boolean } = {},
): Promise<Log> {
  let fileSink: FileSink | undefined;
  if (options.file) {
    const { getFileSink }: LogTapeFile = await import(LOGTAPE_FILE);
    fileSink = getFileSink(options.file, {
      formatter: (record) => record.line,
      nonBlocking: true,
      // Every record is a batch already: the sink writes it at once (one write) and syncs it off the event loop.
      bufferSize: 0,
      flushInterval: FILE_FLUSH_MS,
    });
  }
  const categories = [category];
  /** File lines not yet handed to the sink, and their length (UTF-16 units: about the bytes, for a cap). */
  let batch: string[] = [];
  let batchLength = 0;
  let batchLevel = "info";
  let batchTimer: ReturnType<typeof setTimeout> | undefined;
  const handOver = () => {
    if (batchTimer !== undefined) clearTimeout(batchTimer);
    batchTimer = undefined;
    if (batch.length === 0) return;
    const line = batch.join("");
    const level = batchLevel;
    batch = [];
    batchLength = 0;
    batchLevel = "info";
    fileSink!({
      category: categories,
      level,
      message: [line],
      rawMessage: line,
      timestamp: Date.now(),
      properties: {},
      line,
    });
  };
  const write = (level: string, label: string) => (message: string) => {
    const line = formatLine(Date.now(), label, message);
    if (!options.quiet) queueStdout(line);
    if (!fileSink) return;
    batch.push(line);
    batchLength += line.length;
    if (level !== "info") batchLevel = level;
    if (batchLength >= FILE_BUFFER_BYTES) handOver();
    else if (batchTimer === undefined) batchTimer = setTimeout(handOver, FILE_FLUSH_MS);
  };
  return {
    info: write("info", "INFO"),
    warn: write("warning", "WARNING"),
    error: write("error", "ERROR"),
    close: async () => {
      if (fileSink) handOver();
      await fileSink?.[Symbol.asyncDispose]();
      flushStdout();
    },
  };
}

/**
 * At most `max` lines of one kind in every window of `windowMs`; past that,
 * one line with how many were left out, once the window is over. What anyone
 * may cause (lookups, refusals) is logged so: else anyone could fill the
 * operator's disk.
 */
export class LogBudget {
  #windowStart = 0;
  #written = 0;
  #dropped = 0;
  constructor(readonly log: Logger, readonly what: string, readonly max = 20, readonly windowMs = 10_000) {}

  /** Logs the line (made only when it is written: a flood drops most of them) or counts it dropped. */
  info(line: string | (() => string)): void {
    const now = Date.now();
    if (now - this.#windowStart >= this.windowMs) {
      if (this.#dropped) {
        this.log.info(
          `... e mais ${this.#dropped} ${this.what} não registradas no log nos últimos ${
            this.windowMs / 1000
          } s`,
        );
      }
      this.#windowStart = now;
      this.#written = this.#dropped = 0;
    }
    if (this.#written < this.max) {
      this.#written++;
      this.log.info(typeof line === "string" ? line : line());
    } else this.#dropped++;
  }
}

/** Caller-given text in the log: at most this many characters, invisible ones shown as escapes. */
const MAX_LOGGED = 64;

/** Caller-given text as the log shows it: clipped, with control and invisible characters escaped. */
export function shown(text: string): string {
  const clipped = text.length > MAX_LOGGED
    ? `${text.slice(0, MAX_LOGGED)}... (${text.length} caracteres)`
    : text;
  return clipped.replace(
    /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu,
    (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`,
  );
}

/** An unexpected error in one log line: its stack (or name and message), lines joined with " | ". */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.stack ?? `${error.name}: ${error.message}` : String(error);
  return text.replace(/\s*\n\s*/g, " | ");
}
