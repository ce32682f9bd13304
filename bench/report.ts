/**
 * The benchmark's report: the workers' results checked against what was
 * sent (each message must reach every member of its room exactly once), the
 * figures of a run ({@linkcode BenchResult}, printed as one JSON line with
 * `--json`), the Markdown table with the issue's targets, and the progress
 * line shown while the load runs.
 *
 * @module
 */

import { Histogram } from "./loadgen.ts";
import type { SingleCall } from "./single_call.ts";
import type { ProcessStats } from "./system.ts";
import type { Progress, WorkerResult } from "./worker.ts";

/** The figures of a run: what the JSON line carries. */
export interface BenchResult {
  /** What the clients did: long waits, the original polling, or held idle. */
  mode: "long-wait" | "compat" | "idle";
  /** Clients asked for. */
  clients: number;
  /** Clients registered and in their rooms. */
  clients_connected: number;
  /** Of those, the ones talking to each server instance, in the order they started. */
  clients_per_server: number[];
  /** Rooms. */
  rooms: number;
  /** Messages per second asked for (0 when idle). */
  rate: number;
  /** Seconds of load asked for. */
  duration_s: number;
  /** Seconds of load before it, kept out of the latencies (`delivery_p99_by_second_ms` has them). */
  warmup_s: number;
  /** Seconds from the start of the load to the last delivery checked (the duration plus the drain). */
  load_s: number;
  /** Load generator processes. */
  workers: number;
  /** Server instances measured, sharing one store. */
  servers: number;
  /** Their store: the embedded SQLite or a Redis (null with `--server`: not ours to know). */
  store: "sqlite" | "redis" | null;
  /** Messages the server accepted. */
  messages_sent: number;
  /** Each message times the members of its room. */
  deliveries_expected: number;
  /** Deliveries seen. */
  deliveries: number;
  /** Messages a client got more than once. */
  duplicates: number;
  /** Deliveries expected and never seen. */
  missing: number;
  /** Deliveries of messages nobody sent. */
  unexpected: number;
  /** Delivery latency, median, ms. */
  delivery_p50_ms: number | null;
  /** Delivery latency, 90th percentile, ms. */
  delivery_p90_ms: number | null;
  /** Delivery latency, 99th percentile, ms. */
  delivery_p99_ms: number | null;
  /** Delivery latency, the largest, ms. */
  delivery_max_ms: number | null;
  /** The 99th percentile of each second's messages (by the second they were sent in), ms. */
  delivery_p99_by_second_ms: (number | null)[];
  /** Clients holding a pending long wait at the end. */
  held: number;
  /** Calls during the load, all types. */
  calls: number;
  /** Calls per second during the load. */
  calls_per_s: number;
  /** Calls that failed. */
  errors: number;
  /** The first few errors' messages. */
  error_samples: string[];
  /** The server's RSS at the end, MB, all instances together (null with `--server` or without /proc). */
  server_rss_mb: number | null;
  /** The server's peak RSS, MB, the instances' peaks added up. */
  server_rss_peak_mb: number | null;
  /** The server's CPU seconds during the load, all instances together. */
  server_cpu_s: number | null;
  /** The RSS of the bench's own redis-server at the end, MB (null unless `--redis-server`). */
  redis_rss_mb: number | null;
  /** Its CPU seconds during the load. */
  redis_cpu_s: number | null;
  /** Server and redis-server CPU microseconds per delivery: what a delivered message costs the chat. */
  cpu_us_per_delivery: number | null;
  /** The load generator's CPU seconds during the load. */
  load_cpu_s: number | null;
  /** The 99th percentile of the load generator's event-loop lag: what it may add to the latencies. */
  load_lag_p99_ms: number | null;
  /** The call of the single-call measure. */
  single_call_method: string;
  /** Connections of the single-call measure. */
  connections: number;
  /** A raw Deno.serve's calls per second. */
  baseline_calls_per_s: number | null;
  /** The server's calls per second, one call type. */
  single_call_per_s: number | null;
  /** The server's share of the raw Deno.serve's calls per second. */
  single_call_fraction: number | null;
  /** The server's CPU microseconds per call. */
  server_cpu_us_per_call: number | null;
  /** A raw Deno.serve's calls per second, answering as many bytes as `enviar_mensagem`. */
  send_baseline_calls_per_s: number | null;
  /** `enviar_mensagem` calls per second (each stored and logged before its answer). */
  send_calls_per_s: number | null;
  /** Their share of the raw Deno.serve's. */
  send_fraction: number | null;
  /** The server's CPU microseconds per `enviar_mensagem`. */
  server_cpu_us_per_send: number | null;
  /** The machine, in one line. */
  machine: string;
  /** Every client connected, every delivery made exactly once. */
  ok: boolean;
}

/** What the coordinator knows of a run, besides what the workers saw. */
export interface RunFacts {
  /** What the clients did. */
  mode: BenchResult["mode"];
  /** Clients asked for. */
  clients: number;
  /** Members of each room. */
  roomSize: number[];
  /** Clients of each instance. */
  perServer: number[];
  /** Messages per second asked for. */
  rate: number;
  /** Seconds of load asked for. */
  durationS: number;
  /** Seconds of warm-up before the duration. */
  warmupS: number;
  /** Seconds the load and the drain took. */
  loadS: number;
  /** Clients holding a pending long wait at the end. */
  held: number;
  /** Server instances. */
  servers: number;
  /** Their store, when we started them. */
  store: BenchResult["store"];
  /** The server's instances together before and after the load (null with `--server` or without /proc). */
  server: { before: ProcessStats | null; after: ProcessStats | null };
  /** The bench's own redis-server before and after the load (null unless it started one). */
  redis: { before: ProcessStats | null; after: ProcessStats | null };
  /** The workers' CPU seconds during the load. */
  loadCpuS: number | null;
  /** The single-call figures: the cheap read. */
  single: SingleCall;
  /** The single-call figures: sending. */
  send: SingleCall;
  /** Connections of the single-call measure. */
  connections: number;
  /** The machine, in one line. */
  machine: string;
}

/** Each message sent against its deliveries: how many were expected, missing, extra, and never sent. */
function checkDeliveries(results: WorkerResult[], roomSize: number[]) {
  const counts = new Map<string, number>();
  for (const result of results) {
    for (const [key, n] of Object.entries(result.counts)) counts.set(key, (counts.get(key) ?? 0) + n);
  }
  let expected = 0;
  let missing = 0;
  let extra = 0;
  const sent = new Set<string>();
  for (const result of results) {
    for (const [key, room] of result.sent) {
      sent.add(key);
      const want = roomSize[room]!;
      const got = counts.get(key) ?? 0;
      expected += want;
      if (got < want) missing += want - got;
      if (got > want) extra += got - want;
    }
  }
  let unexpected = 0;
  for (const [key, n] of counts) if (!sent.has(key)) unexpected += n;
  return { sent: sent.size, expected, missing, extra, unexpected };
}

function merged(histograms: WorkerResult["histogram"][]): Histogram {
  const histogram = new Histogram();
  for (const data of histograms) histogram.merge(data);
  return histogram;
}

function round(n: number | null, digits = 2): number | null {
  return n === null ? null : Math.round(n * 10 ** digits) / 10 ** digits;
}

/** The figures of a run, from what the coordinator knows and what the workers saw. */
export function buildResult(facts: RunFacts, results: WorkerResult[]): BenchResult {
  const check = checkDeliveries(results, facts.roomSize);
  const latency = merged(results.map((r) => r.histogram));
  const sum = (pick: (r: WorkerResult) => number) => results.reduce((n, r) => n + pick(r), 0);
  const deliveries = sum((r) => r.deliveries);
  const duplicates = sum((r) => r.duplicates) + check.extra;
  const calls = sum((r) => r.calls);
  const clientsConnected = facts.roomSize.reduce((a, b) => a + b, 0);
  const { before, after } = facts.server;
  const redis = facts.redis;
  const { single, send } = facts;
  const serverCpuS = after && before ? after.cpuS - before.cpuS : undefined;
  const redisCpuS = redis.after && redis.before ? redis.after.cpuS - redis.before.cpuS : undefined;
  return {
    mode: facts.mode,
    clients: facts.clients,
    clients_connected: clientsConnected,
    clients_per_server: facts.perServer,
    rooms: facts.roomSize.length,
    rate: facts.mode === "idle" ? 0 : facts.rate,
    duration_s: facts.durationS,
    warmup_s: facts.warmupS,
    load_s: round(facts.loadS, 1)!,
    workers: results.length,
    servers: facts.servers,
    store: facts.store,
    messages_sent: check.sent,
    deliveries_expected: check.expected,
    deliveries,
    duplicates,
    missing: check.missing,
    unexpected: check.unexpected,
    delivery_p50_ms: round(latency.quantile(0.5)),
    delivery_p90_ms: round(latency.quantile(0.9)),
    delivery_p99_ms: round(latency.quantile(0.99)),
    delivery_max_ms: latency.count ? round(latency.max) : null,
    delivery_p99_by_second_ms: Array.from(
      { length: Math.max(0, ...results.map((r) => r.bySecond.length)) },
      (_, second) => round(merged(results.flatMap((r) => r.bySecond[second] ?? [])).quantile(0.99)),
    ),
    held: facts.held,
    calls,
    calls_per_s: Math.round(calls / facts.loadS),
    errors: sum((r) => r.errors),
    error_samples: results.flatMap((r) => r.errorSamples).slice(0, 5),
    server_rss_mb: after ? round(after.rssMb, 1) : null,
    server_rss_peak_mb: after ? round(after.peakMb, 1) : null,
    server_cpu_s: serverCpuS === undefined ? null : round(serverCpuS),
    redis_rss_mb: redis.after ? round(redis.after.rssMb, 1) : null,
    redis_cpu_s: redisCpuS === undefined ? null : round(redisCpuS),
    cpu_us_per_delivery: serverCpuS !== undefined && deliveries
      ? round((serverCpuS + (redisCpuS ?? 0)) / deliveries * 1e6, 1)
      : null,
    load_cpu_s: round(facts.loadCpuS),
    load_lag_p99_ms: round(merged(results.map((r) => r.lag)).quantile(0.99)),
    single_call_method: single.method,
    connections: facts.connections,
    baseline_calls_per_s: single.baseline === null ? null : Math.round(single.baseline),
    single_call_per_s: single.ours === null ? null : Math.round(single.ours),
    single_call_fraction: round(single.fraction, 3),
    server_cpu_us_per_call: round(single.cpuUsPerCall, 1),
    send_baseline_calls_per_s: send.baseline === null ? null : Math.round(send.baseline),
    send_calls_per_s: send.ours === null ? null : Math.round(send.ours),
    send_fraction: round(send.fraction, 3),
    server_cpu_us_per_send: round(send.cpuUsPerCall, 1),
    machine: facts.machine,
    ok: clientsConnected === facts.clients && check.missing === 0 && duplicates === 0 &&
      check.unexpected === 0 && deliveries === check.expected,
  };
}

// ---------------------------------------------------------------------------
// For people: the progress line and the table
// ---------------------------------------------------------------------------

/** A count with thousands separators (`digits` decimals), or `n/a`. */
export function fmt(n: number | null, digits = 0): string {
  if (n === null || !Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** One line on how the load goes, from the workers' latest progress. */
export function progressLine(
  elapsedS: number,
  totalS: number,
  progress: (Progress | undefined)[],
  expected: number,
): string {
  const sum = (pick: (p: Progress) => number) => progress.reduce((n, p) => n + (p ? pick(p) : 0), 0);
  const sent = sum((p) => p.sentByRoom.reduce((a, b) => a + b, 0));
  return `[${elapsedS.toFixed(1).padStart(5)}/${totalS} s] sent ${fmt(sent)}  delivered ${
    fmt(sum((p) => p.deliveries))
  }/${fmt(expected)}  waiting ${fmt(sum((p) => p.waiting))}  calls ${fmt(sum((p) => p.calls))}  errors ${
    fmt(sum((p) => p.errors))
  }`;
}

type Row = [figure: string, value: string, target: string];

const verdict = (met: boolean) => met ? "met" : "**not met**";

/** The rows about the clients and their deliveries. */
function deliveryRows(result: BenchResult): Row[] {
  const ms = (n: number | null) => n === null ? "n/a" : `${fmt(n, 1)}`;
  const rows: Row[] = [
    [
      "server instances / store (clients on each)",
      `${result.servers} / ${result.store ?? "n/a"}` +
      (result.servers > 1 ? ` (${result.clients_per_server.map((n) => fmt(n)).join(" + ")})` : ""),
      "",
    ],
    ["clients (connected) / rooms", `${fmt(result.clients_connected)} / ${result.rooms}`, ""],
  ];
  if (result.mode === "idle") {
    rows.push([
      "clients holding a pending long wait",
      fmt(result.held),
      `${fmt(result.clients)}: ${verdict(result.held === result.clients)}`,
    ]);
  }
  rows.push([
    result.mode === "idle"
      ? "messages sent (one per room at the end)"
      : `messages sent (${fmt(result.rate)}/s)`,
    fmt(result.messages_sent),
    "",
  ]);
  rows.push([
    "deliveries / expected",
    `${fmt(result.deliveries)} / ${fmt(result.deliveries_expected)}`,
    `all: ${verdict(result.deliveries === result.deliveries_expected && result.missing === 0)}`,
  ]);
  rows.push(["duplicates", fmt(result.duplicates), `0: ${verdict(result.duplicates === 0)}`]);
  rows.push([
    `delivery latency p50 / p90 / p99 / max (ms)${
      result.warmup_s ? ` after ${fmt(result.warmup_s, 1)} s of warm-up` : ""
    }`,
    `${ms(result.delivery_p50_ms)} / ${ms(result.delivery_p90_ms)} / ${ms(result.delivery_p99_ms)} / ${
      ms(result.delivery_max_ms)
    }`,
    result.mode === "long-wait" ? `p99 ≤ 20 ms: ${verdict((result.delivery_p99_ms ?? Infinity) <= 20)}` : "",
  ]);
  const bySecond = result.delivery_p99_by_second_ms.filter((p99) => p99 !== null).sort((a, b) => a - b);
  if (bySecond.length > 1) {
    rows.push([
      "delivery p99 by second sent: best / median / worst (ms)",
      `${ms(bySecond[0]!)} / ${ms(bySecond[Math.floor(bySecond.length / 2)]!)} / ${ms(bySecond.at(-1)!)}`,
      "",
    ]);
  }
  rows.push(["calls/s during the load (all types)", fmt(result.calls_per_s), ""]);
  rows.push(["errors", fmt(result.errors), ""]);
  return rows;
}

/** The rows about the server's and the load generator's processes. */
function processRows(result: BenchResult): Row[] {
  const rows: Row[] = [];
  const together = result.servers > 1 ? ` (${result.servers} instances together)` : "";
  const ofACore = (cpuS: number | null) =>
    `${fmt(cpuS, 1)} s in ${fmt(result.load_s, 1)} s (${fmt((cpuS ?? 0) / result.load_s * 100)}% of a core)`;
  if (result.server_rss_mb !== null) {
    rows.push([
      `server RSS at the end / peak (MB)${together}`,
      `${fmt(result.server_rss_mb)} / ${fmt(result.server_rss_peak_mb)}`,
      // The target is one server's.
      result.mode === "long-wait" && result.servers === 1
        ? `≤ 300 MB: ${verdict((result.server_rss_peak_mb ?? Infinity) <= 300)}`
        : "",
    ]);
    rows.push([`server CPU during the load${together}`, ofACore(result.server_cpu_s), ""]);
  }
  if (result.cpu_us_per_delivery !== null) {
    rows.push([
      `CPU per delivery (server${result.redis_cpu_s !== null ? " + redis-server" : ""})`,
      `${fmt(result.cpu_us_per_delivery, 1)} µs`,
      "",
    ]);
  }
  if (result.redis_rss_mb !== null) {
    rows.push(["redis-server RSS at the end (MB)", fmt(result.redis_rss_mb), ""]);
    rows.push(["redis-server CPU during the load", ofACore(result.redis_cpu_s), ""]);
  }
  if (result.load_cpu_s !== null) {
    rows.push([
      `load generator CPU (${result.workers} process${result.workers > 1 ? "es" : ""})`,
      `${fmt(result.load_cpu_s, 1)} s (${fmt(result.load_cpu_s / result.load_s * 100)}% of a core), ` +
      `event-loop lag p99 ${fmt(result.load_lag_p99_ms, 1)} ms`,
      "",
    ]);
  }
  return rows;
}

/** The rows of the single-call measures: the cheap read, then sending. */
function singleCallRows(result: BenchResult): Row[] {
  return [
    ...measureRows(result.connections, result.single_call_method, 0.6, {
      baseline: result.baseline_calls_per_s,
      ours: result.single_call_per_s,
      fraction: result.single_call_fraction,
      cpuUs: result.server_cpu_us_per_call,
    }),
    ...measureRows(result.connections, "enviar_mensagem", 0.5, {
      baseline: result.send_baseline_calls_per_s,
      ours: result.send_calls_per_s,
      fraction: result.send_fraction,
      cpuUs: result.server_cpu_us_per_send,
    }),
  ];
}

/** One call type against the raw Deno.serve answering as many bytes, and its target share. */
function measureRows(
  connections: number,
  method: string,
  target: number,
  figures: { baseline: number | null; ours: number | null; fraction: number | null; cpuUs: number | null },
): Row[] {
  if (figures.baseline === null) return [];
  const rows: Row[] = [
    [`raw Deno.serve, ${connections} connections (as many bytes)`, `${fmt(figures.baseline)} calls/s`, ""],
    [
      `${method}, ${connections} connections`,
      `${fmt(figures.ours)} calls/s = ${fmt((figures.fraction ?? 0) * 100)}% of raw`,
      `≥ ${target * 100}%: ${verdict((figures.fraction ?? 0) >= target)}`,
    ],
  ];
  if (figures.cpuUs !== null) rows.push([`server CPU per ${method}`, `${fmt(figures.cpuUs)} µs`, ""]);
  return rows;
}

/** The figures as a Markdown table, with the targets of the issue and whether they are met. */
export function formatTable(result: BenchResult): string {
  const rows = [...deliveryRows(result), ...processRows(result), ...singleCallRows(result)];
  const header: Row = ["figure", "value", "target"];
  const widths = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
