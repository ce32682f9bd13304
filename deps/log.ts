/**
 * The operator log: one line format for every program,
 * `2026-11-24 15:28:12 [INFO] texto`, on the console and, for the programs
 * that keep a log file (the chat server's `chat_server.log`), in that file.
 *
 * The file sink is LogTape's (`npm:@logtape/file`). It is loaded only when a
 * file is asked for, through a computed specifier, so the client's and the
 * binder's module graphs hold no npm package: a classmate who runs the client
 * from a URL needs nothing but Deno and the address.
 *
 * @module
 */

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

/** LogTape's packages, pinned; imported only by {@linkcode openLog} with a file. */
const LOGTAPE = "npm:@logtape/logtape@2.4.2";
const LOGTAPE_FILE = "npm:@logtape/file@2.3.10";

/** The parts of LogTape we use (declared here: a type import would put LogTape in every module graph). */
interface LogTapeRecord {
  readonly level: string;
  readonly message: readonly unknown[];
  readonly timestamp: number;
}
type LogTapeSink = (record: LogTapeRecord) => void;
interface LogTape {
  configure(config: {
    reset: boolean;
    sinks: Record<string, LogTapeSink>;
    loggers: { category: string | string[]; sinks: string[]; lowestLevel: string }[];
  }): Promise<void>;
  dispose(): Promise<void>;
  getLogger(category: string): Logger;
}
interface LogTapeFile {
  getFileSink(
    path: string,
    options: {
      formatter: (record: LogTapeRecord) => string;
      bufferSize: number;
      flushInterval: number;
      nonBlocking: boolean;
    },
  ): LogTapeSink;
}

/** Bytes of log lines the file sink holds before it writes them (it also writes every `FILE_FLUSH_MS`). */
const FILE_BUFFER_BYTES = 64 * 1024;
const FILE_FLUSH_MS = 1000;

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** `2026-11-24 15:28:12` in local time, the format of the original log. */
export function localTimestamp(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function formatLine(timestamp: number, level: string, message: string): string {
  return `${localTimestamp(new Date(timestamp))} [${level.toUpperCase()}] ${message}\n`;
}

function formatRecord(record: LogTapeRecord): string {
  const message = record.message.map((part) => typeof part === "string" ? part : String(part)).join("");
  return formatLine(record.timestamp, record.level, message);
}

const stdoutEncoder = new TextEncoder();

/** Log lines not yet on stdout: written together once per turn of the event loop, not one write each. */
let pendingLines: string[] = [];
let flushScheduled = false;

function queueStdout(line: string): void {
  pendingLines.push(line);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushStdout);
  }
}

/** Writes the log lines still queued for stdout (a program does before it exits). */
export function flushStdout(): void {
  flushScheduled = false;
  if (pendingLines.length === 0) return;
  const text = pendingLines.join("");
  pendingLines = [];
  writeAll(text);
}

/**
 * Writes all of `text` to stdout at once (a short write is continued), after
 * the log lines queued before it; quiet once nobody reads.
 */
export function writeStdout(text: string): void {
  flushStdout();
  writeAll(text);
}

function writeAll(text: string): void {
  const bytes = stdoutEncoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += Deno.stdout.writeSync(bytes.subarray(offset));
    } catch {
      return; // Nobody is reading any more.
    }
  }
}

/** A log on the console only (or nowhere, when `quiet`). */
function consoleLog(quiet: boolean): Log {
  const write = (level: string) => (message: string) => {
    if (!quiet) queueStdout(formatLine(Date.now(), level, message));
  };
  return {
    info: write("info"),
    warn: write("warning"),
    error: write("error"),
    close: () => Promise.resolve(flushStdout()),
  };
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
  if (!options.file) return consoleLog(options.quiet ?? false);
  const logtape: LogTape = await import(LOGTAPE);
  const { getFileSink }: LogTapeFile = await import(LOGTAPE_FILE);
  const sinks: Record<string, LogTapeSink> = {
    // Off the hot path: lines are written in batches, without blocking the event loop, at least every
    // second; a kill -9 can lose what was not yet written (never a message: those are in the database).
    file: getFileSink(options.file, {
      formatter: formatRecord,
      nonBlocking: true,
      bufferSize: FILE_BUFFER_BYTES,
      flushInterval: FILE_FLUSH_MS,
    }),
  };
  if (!options.quiet) sinks.console = (record) => queueStdout(formatRecord(record));
  await logtape.configure({
    reset: true,
    sinks,
    loggers: [
      { category, sinks: Object.keys(sinks), lowestLevel: "info" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  const logger = logtape.getLogger(category);
  return {
    info: (message) => logger.info(message),
    warn: (message) => logger.warn(message),
    error: (message) => logger.error(message),
    close: async () => {
      await logtape.dispose();
      flushStdout();
    },
  };
}
