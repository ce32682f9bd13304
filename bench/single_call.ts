/**
 * The distance to the limit of the HTTP stack: one call type at
 * `--connections` connections, against a raw `Deno.serve` (a trivial handler
 * answering as many bytes as the server does, in a process of its own:
 * `bench.ts --baseline-server SIZE`) and against the server, in alternating
 * rounds, the workers sending. Two call types are measured: a cheap read
 * (`aguardar_mensagens` answering one message, or `receber_mensagens`) and
 * sending (`enviar_mensagem`, stored and logged before it is answered).
 *
 * @module
 */

import { announceReady, ChildProgram, encodeCall, type XmlRpcValue } from "../lib/mod.ts";
import {
  type HammerCount,
  type HammerTarget,
  HttpConnection,
  httpRequest,
  rawCall,
  responseValue,
} from "./loadgen.ts";
import { processStats } from "./system.ts";
import { messageText, type WorkerProcess } from "./worker.ts";

const HAMMER_WARMUP_MS = 300;

// ---------------------------------------------------------------------------
// The raw Deno.serve baseline, a process of its own
// ---------------------------------------------------------------------------

/** The baseline process: a trivial handler answering `size` bytes; prints its ready line, ends with its stdin. */
export function baselineMain(size: number): void {
  const body = `<?xml version="1.0"?>${"x".repeat(Math.max(0, size - 21))}`;
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ hostname, port }) => announceReady({ programa: "baseline", host: hostname, porta: port }),
  }, async (request) => {
    await request.arrayBuffer();
    return new Response(body, { headers: { "content-type": "text/xml; charset=utf-8" } });
  });
  // Ends when the coordinator closes our stdin (or kills us).
  (async () => {
    for await (const _ of Deno.stdin.readable) { /* nothing to read */ }
    await server.shutdown();
    Deno.exit(0);
  })();
}

// ---------------------------------------------------------------------------
// The measure
// ---------------------------------------------------------------------------

/** What the single-call measure needs to know of the run. */
export interface SingleCallRun {
  /** The chat server (with several instances, the first: one call type to one process). */
  host: string;
  /** The chat server's port. */
  port: number;
  /** The server's process id, when it is ours: its CPU time is read. */
  serverPid?: number;
  /** Marks this run's names. */
  runId: string;
  /** The workers that send the calls. */
  workers: WorkerProcess[];
  /** The benchmark's entry point, which runs the baseline with `--baseline-server`. */
  script: string | URL;
  /** Only the original methods: `receber_mensagens`, no session. */
  compat: boolean;
  /** Connections, over all the workers. */
  connections: number;
  /** Seconds of each measure; 0 skips it. */
  baselineS: number;
}

/** The single-call figures: calls per second of each, and the server's CPU time per call. */
export interface SingleCall {
  /** The call measured. */
  method: string;
  /** Calls per second to the raw Deno.serve. */
  baseline: number | null;
  /** Calls per second to the server. */
  ours: number | null;
  /** ours / baseline. */
  fraction: number | null;
  /** The server's CPU microseconds per call (null without /proc or with `--server`). */
  cpuUsPerCall: number | null;
}

/** Which call to measure: the cheap read, or sending. */
export type SingleCallKind = "read" | "send";

/** One call type at `connections` connections, against a raw Deno.serve and against the server. */
export async function measureSingleCall(run: SingleCallRun, kind: SingleCallKind): Promise<SingleCall> {
  const method = kind === "send"
    ? "enviar_mensagem"
    : run.compat
    ? "receber_mensagens"
    : "aguardar_mensagens";
  if (run.baselineS <= 0) return { method, baseline: null, ours: null, fraction: null, cpuUsPerCall: null };
  const probe = await probeCall(run, method, kind);
  const baseline = ChildProgram.deno(run.script, ["--allow-net"], ["--baseline-server", String(probe.size)], {
    stdin: "piped",
    stderr: "inherit",
  });
  try {
    const { porta } = await baseline.ready(30_000);
    const raw = { host: "127.0.0.1", port: porta, body: probe.body };
    const ours = { host: run.host, port: run.port, body: probe.body, cookie: probe.cookie };
    return { method, ...await measureRounds(run, raw, ours) };
  } finally {
    await baseline.stop();
  }
}

/**
 * A user in a room of its own with one message: each call of `method`
 * answers that message. The call, the session, and its answer's size.
 */
async function probeCall(
  run: SingleCallRun,
  method: string,
  kind: SingleCallKind,
): Promise<{ body: string; cookie?: string; size: number }> {
  const { host, port, runId } = run;
  const probe = new HttpConnection(host, port);
  try {
    const name = `b${runId}-${kind}`;
    const room = `b${runId}-${kind}`;
    const call = (called: string, params: XmlRpcValue[], cookie?: string) =>
      rawCall(probe, called, params, { cookie, timeoutMs: 10_000 });
    const registered = await call("registrar_usuario", [name]);
    const cookie = run.compat ? undefined : registered.cookie;
    await call("criar_sala", [room], cookie);
    const joined = await call("entrar_na_sala", [name, room], cookie);
    const cursor = Number(((joined.value as XmlRpcValue[])[1] as { cursor?: number }).cursor ?? 0);
    await call("enviar_mensagem", [name, room, messageText("probe", 0, 0), null], cookie);
    const body = kind === "send"
      ? encodeCall(method, [name, room, messageText("probe", 0, 1), null])
      : run.compat
      ? encodeCall(method, [name, room])
      : encodeCall(method, [name, room, cursor, 0]);
    const sample = await probe.request(httpRequest(host, port, body, cookie), 10_000);
    const answer = responseValue(new TextDecoder().decode(sample.body)) as [boolean, unknown];
    if (answer[0] !== true) throw new Error(`${method}: ${answer[1]}`);
    return { body, cookie, size: sample.body.byteLength };
  } finally {
    probe.close();
  }
}

/** Rounds of raw, then ours: a machine busy with something else for a while weighs on both alike. */
async function measureRounds(
  run: SingleCallRun,
  raw: HammerTarget,
  ours: HammerTarget,
): Promise<Omit<SingleCall, "method">> {
  const rounds = Math.max(1, Math.min(3, Math.floor(run.baselineS)));
  const seconds = run.baselineS / rounds;
  const rawTotal = { calls: 0, ms: 0 };
  const oursTotal = { calls: 0, ms: 0 };
  let cpuS: number | null = 0;
  let callsWithWarmup = 0;
  for (let round = 0; round < rounds; round++) {
    const r = await hammerAll(run, seconds, raw);
    rawTotal.calls += r.calls;
    rawTotal.ms += r.ms;
    const before = run.serverPid ? await processStats(run.serverPid) : null;
    const o = await hammerAll(run, seconds, ours);
    const after = run.serverPid ? await processStats(run.serverPid) : null;
    oursTotal.calls += o.calls;
    oursTotal.ms += o.ms;
    cpuS = before && after && cpuS !== null ? cpuS + after.cpuS - before.cpuS : null;
    callsWithWarmup += o.calls * (o.ms + HAMMER_WARMUP_MS) / o.ms;
  }
  const baseline = rawTotal.calls / (rawTotal.ms / 1000);
  const oursPerS = oursTotal.calls / (oursTotal.ms / 1000);
  const cpuUsPerCall = cpuS === null ? null : (cpuS * 1e6) / callsWithWarmup;
  return { baseline, ours: oursPerS, fraction: oursPerS / baseline, cpuUsPerCall };
}

/** All workers hammer one target together for `seconds` (after a warm-up): the calls and the time. */
async function hammerAll(
  run: SingleCallRun,
  seconds: number,
  target: HammerTarget,
): Promise<Omit<HammerCount, "errors">> {
  const { workers } = run;
  const results = await Promise.all(workers.map((worker, w) => {
    const connections = Math.floor(((w + 1) * run.connections) / workers.length) -
      Math.floor((w * run.connections) / workers.length);
    return worker.ask(
      { cmd: "hammer", ...target, connections, warmupMs: HAMMER_WARMUP_MS, ms: seconds * 1000 },
      seconds * 1000 + 60_000,
    );
  }));
  const errors = results.reduce((n, r) => n + r.errors, 0);
  if (errors) throw new Error(`${errors} chamadas falharam medindo ${target.host}:${target.port}`);
  return {
    calls: results.reduce((n, r) => n + r.calls, 0),
    ms: Math.max(...results.map((r) => r.ms)),
  };
}
