/**
 * Standard input and output, line by line: the lines of a stream, and
 * stdout written whole, after the log lines queued for it. What every
 * program needs, the terminal client included.
 *
 * @module
 */

/**
 * Splits text into lines (`\n` or `\r\n`; a last line without one is kept).
 * Written here because the runtime has none: `TextLineStream` lives in the
 * standard library on JSR, which these machines cannot reach.
 */
export class LineStream extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop()!;
        for (const part of parts) controller.enqueue(part.endsWith("\r") ? part.slice(0, -1) : part);
      },
      flush(controller) {
        if (rest) controller.enqueue(rest);
      },
    });
  }
}

/** The lines of a byte stream, decoded as UTF-8. */
export function readLines(stream: ReadableStream<Uint8Array>): ReadableStream<string> {
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(new LineStream());
}

// ---------------------------------------------------------------------------
// Stdout
// ---------------------------------------------------------------------------

const stdoutEncoder = new TextEncoder();

/** Log lines not yet on stdout: written together once per turn of the event loop, not one write each. */
let pendingLines: string[] = [];
let flushScheduled = false;

export function queueStdout(line: string): void {
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
