import assert from "node:assert/strict";
import { type DecodeCache, Histogram, HttpConnection, httpRequest, responseValue } from "./loadgen.ts";
import { formatTable } from "./report.ts";
import { encodeOnce, encodeResponse } from "../lib/mod.ts";
import { REDIS_UNAVAILABLE, testUnless } from "../tests/helpers/redis.ts";
import { assertUsageError, runScript, taskCommand } from "../tests/helpers/programs.ts";

/** The permissions `deno task bench` gives the benchmark (deno.json: `deno run PERMISSIONS bench/bench.ts`). */
const BENCH_PERMISSIONS: string[] = await (async () => {
  const words = (await taskCommand("bench")).split(" ");
  assert.deepEqual([...words.slice(0, 2), words.at(-1)], ["deno", "run", "bench/bench.ts"]);
  return words.slice(2, -1);
})();

const FIELDS = [
  "clients",
  "messages_sent",
  "deliveries_expected",
  "deliveries",
  "duplicates",
  "delivery_p50_ms",
  "delivery_p99_ms",
  "delivery_p99_by_second_ms",
  "calls_per_s",
  "server_rss_mb",
  "server_cpu_s",
  "cpu_us_per_delivery",
  "errors",
  "baseline_calls_per_s",
  "single_call_per_s",
  "single_call_fraction",
  "send_baseline_calls_per_s",
  "send_calls_per_s",
  "send_fraction",
] as const;

async function bench(args: string[]): Promise<Record<string, unknown>> {
  const { code, stdout, stderr } = await runScript("bench/bench.ts", BENCH_PERMISSIONS, [...args, "--json"]);
  assert.equal(code, 0, `bench exited ${code}:\n${stdout}\n${stderr}`);
  const lines = stdout.trim().split("\n");
  assert.match(stdout, /\| deliveries \/ expected/, "the readable table comes first");
  return JSON.parse(lines.at(-1)!);
}

Deno.test("a small benchmark run: every message reaches every member of its room exactly once", async () => {
  const result = await bench([
    "--clients",
    "6",
    "--rooms",
    "2",
    "--rate",
    "20",
    "--duration",
    "2",
    "--warmup",
    "0.5",
    "--baseline-seconds",
    "0.3",
  ]);
  for (const field of FIELDS) assert.ok(field in result, `the JSON line has ${field}`);
  assert.equal(result.warmup_s, 0.5);
  assert.equal(result.servers, 1);
  assert.deepEqual(result.clients_per_server, [6]);
  assert.equal(result.store, "sqlite");
  assert.equal(result.redis_rss_mb, null, "no redis-server of its own");
  assert.equal(result.clients, 6);
  assert.equal(result.messages_sent, 50, "20 a second for 2 s and the warm-up's half second");
  assert.equal(
    result.deliveries_expected,
    150,
    "each message to the 3 members of its room, the warm-up's too",
  );
  assert.ok((result.delivery_p99_by_second_ms as unknown[]).length >= 2, "a p99 for each second sent in");
  assert.equal(result.deliveries, result.deliveries_expected);
  assert.equal(result.duplicates, 0);
  assert.equal(result.errors, 0);
  for (
    const field of [
      "delivery_p50_ms",
      "delivery_p99_ms",
      "server_rss_mb",
      "baseline_calls_per_s",
      "send_calls_per_s",
    ]
  ) {
    assert.equal(typeof result[field], "number", field);
    assert.ok((result[field] as number) > 0, field);
  }
  assert.ok((result.single_call_fraction as number) > 0 && (result.single_call_fraction as number) < 2);
  assert.ok((result.send_fraction as number) > 0 && (result.send_fraction as number) < 2);
});

Deno.test("the benchmark drives the original methods with --compat, and holds idle clients with --idle", async () => {
  const compat = await bench([
    "--compat",
    "--clients",
    "4",
    "--rooms",
    "2",
    "--rate",
    "10",
    "--duration",
    "1",
    "--baseline-seconds",
    "0",
  ]);
  assert.equal(compat.single_call_per_s, null, "--baseline-seconds 0 skips the single-call measure");
  assert.equal(compat.deliveries, compat.deliveries_expected);
  assert.equal(compat.deliveries_expected, 20);
  assert.equal(compat.duplicates, 0);

  const idle = await bench(["--idle", "12", "--rooms", "3", "--duration", "1", "--baseline-seconds", "0"]);
  assert.equal(idle.held, 12, "every idle client holds a pending long wait");
  assert.equal(idle.messages_sent, 3, "one message per room at the end");
  assert.equal(idle.deliveries, 12);
  assert.equal(idle.duplicates, 0);
});

Deno.test("several instances need a shared store: --servers 2 alone is one usage line and exit 2", async () => {
  for (
    const [args, message] of [
      [["--servers", "2"], /--servers 2 precisa de --store redis:\/\/H:P ou --redis-server/],
      [["--store", "http://x"], /--store: esperado redis:\/\/HOST:PORTA/],
      [["--store", "redis://127.0.0.1:1", "--redis-server"], /--store ou --redis-server, não os dois/],
      [["--server", "127.0.0.1:1", "--servers", "2", "--store", "redis://h:1"], /--server mede um servidor/],
    ] as const
  ) {
    await assertUsageError("bench/bench.ts", BENCH_PERMISSIONS, args, message);
  }
});

testUnless(
  REDIS_UNAVAILABLE,
  "the benchmark on a Redis of its own: one instance, then two sharing it, every delivery made once",
  async () => {
    const small = ["--clients", "8", "--rooms", "2", "--rate", "20", "--duration", "1.5"];
    const one = await bench([...small, "--redis-server", "--baseline-seconds", "0.3"]);
    assert.equal(one.servers, 1);
    assert.deepEqual(one.clients_per_server, [8]);
    assert.equal(one.store, "redis");
    assert.equal(typeof one.send_calls_per_s, "number");
    // Two instances: each room's members on both, so every message crosses from one to the other.
    const two = await bench([...small, "--servers", "2", "--redis-server", "--baseline-seconds", "0"]);
    assert.equal(two.servers, 2);
    assert.deepEqual(two.clients_per_server, [4, 4], "half the clients on each instance");
    assert.equal(two.store, "redis");
    for (const result of [one, two]) {
      assert.equal(result.clients_connected, 8);
      assert.equal(result.messages_sent, 30);
      assert.equal(result.deliveries_expected, 120, "each message to the 4 members of its room");
      assert.equal(result.deliveries, result.deliveries_expected);
      assert.equal(result.duplicates, 0);
      assert.equal(result.errors, 0);
      assert.ok((result.redis_rss_mb as number) > 0, "redis-server's RSS read");
      assert.equal(typeof result.redis_cpu_s, "number");
    }
  },
);

Deno.test("the load generator's responses: ours and Python's decoded once each, faults thrown", () => {
  // Python's xmlrpc.client writes newlines between elements and <value> without a type for strings.
  const python = `<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><array><data>
<value><boolean>1</boolean></value>
<value><struct>
<member>
<name>mensagens</name>
<value><array><data>
<value><struct>
<member>
<name>conteudo</name>
<value><string>x &lt; y</string></value>
</member>
<member>
<name>id</name>
<value><int>7</int></value>
</member>
<member>
<name>vazio</name>
<value><nil/></value>
</member>
</struct></value>
</data></array></value>
</member>
<member>
<name>cursor</name>
<value><i4>7</i4></value>
</member>
<member>
<name>nome</name>
<value>sem tipo</value>
</member>
</struct></value>
</data></array></value>
</param>
</params>
</methodResponse>
`;
  const cache: DecodeCache = new Map();
  const decoded = responseValue(python, cache);
  assert.deepEqual(decoded, [true, {
    mensagens: [{ conteudo: "x < y", id: 7, vazio: null }],
    cursor: 7,
    nome: "sem tipo",
  }]);
  assert.equal(responseValue(python, cache), decoded, "the same text is decoded once");
  // Ours: CDATA (with every ]]> split), empty elements, a cached message.
  const ours = [
    true,
    {
      mensagens: [encodeOnce({ id: 1, conteudo: "a < b & c ]]> d ]]> e", timestamp: new Date(2026, 0, 2) })],
      vazio: {},
      nada: [],
      texto: "",
      fracao: -1.5,
    },
  ];
  assert.deepEqual(responseValue(encodeResponse(ours)), [true, {
    mensagens: [{ id: 1, conteudo: "a < b & c ]]> d ]]> e", timestamp: new Date(2026, 0, 2) }],
    vazio: {},
    nada: [],
    texto: "",
    fracao: -1.5,
  }]);
  const request = new TextDecoder().decode(httpRequest("127.0.0.1", 8001, "<x>é</x>", "sessao=1"));
  assert.match(
    request,
    /^POST \/ HTTP\/1\.1\r\n[\s\S]*content-length: 9\r\ncookie: sessao=1\r\n\r\n<x>é<\/x>$/,
  );
  assert.throws(
    () =>
      responseValue(
        "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>-32601</int></value>" +
          "</member><member><name>faultString</name><value><string>no</string></value></member></struct>" +
          "</value></fault></methodResponse>",
      ),
    /fault -32601: no/,
  );
  assert.match(
    formatTable({
      mode: "long-wait",
      clients: 1,
      clients_connected: 1,
      clients_per_server: [1, 0],
      rooms: 1,
      rate: 1,
      duration_s: 1,
      warmup_s: 0,
      load_s: 1,
      workers: 1,
      servers: 2,
      store: "redis",
      messages_sent: 1,
      deliveries_expected: 1,
      deliveries: 1,
      duplicates: 0,
      missing: 0,
      unexpected: 0,
      delivery_p50_ms: 1,
      delivery_p90_ms: 1,
      delivery_p99_ms: 30,
      delivery_max_ms: 30,
      delivery_p99_by_second_ms: [30, 2, 3],
      held: 1,
      calls: 1,
      calls_per_s: 1,
      errors: 0,
      error_samples: [],
      server_rss_mb: 10,
      server_rss_peak_mb: 10,
      server_cpu_s: 1,
      redis_rss_mb: 8,
      redis_cpu_s: 0.5,
      cpu_us_per_delivery: 1_500_000,
      load_cpu_s: 1,
      load_lag_p99_ms: 1,
      single_call_method: "aguardar_mensagens",
      connections: 20,
      baseline_calls_per_s: 100,
      single_call_per_s: 50,
      single_call_fraction: 0.5,
      server_cpu_us_per_call: 10,
      send_baseline_calls_per_s: 100,
      send_calls_per_s: 55,
      send_fraction: 0.55,
      server_cpu_us_per_send: 20,
      machine: "",
      ok: true,
    }),
    /server instances \/ store \(clients on each\) +\| 2 \/ redis \(1 \+ 0\) +\|[\s\S]*p99 ≤ 20 ms: \*\*not met\*\*[\s\S]*delivery p99 by second sent: best \/ median \/ worst \(ms\) +\| 2\.0 \/ 3\.0 \/ 30\.0 +\|[\s\S]*server RSS at the end \/ peak \(MB\) \(2 instances together\) +\| 10 \/ 10 +\| +\|[\s\S]*CPU per delivery \(server \+ redis-server\) +\| 1,500,000\.0 µs +\|[\s\S]*redis-server CPU during the load +\| 0\.5 s in 1\.0 s \(50% of a core\)[\s\S]*aguardar_mensagens, 20 connections +\| 50 calls\/s = 50% of raw +\| ≥ 60%: \*\*not met\*\*[\s\S]*enviar_mensagem, 20 connections +\| 55 calls\/s = 55% of raw +\| ≥ 50%: met/,
  );
});

Deno.test("latency histograms merge across processes, also with 300,000 samples beyond 2 s", () => {
  const slow = new Histogram();
  for (let i = 0; i < 300_000; i++) slow.add(2000 + i / 100);
  const fast = new Histogram();
  for (let i = 0; i < 100_000; i++) fast.add(1);
  const merged = new Histogram();
  merged.merge(JSON.parse(JSON.stringify(fast.toJSON())));
  merged.merge(JSON.parse(JSON.stringify(slow.toJSON())));
  assert.equal(merged.count, 400_000);
  const fastQuantile = merged.quantile(0.2)!;
  assert.ok(fastQuantile >= 1 && fastQuantile < 1.1, "the upper edge of its 0.05 ms bucket");
  assert.equal(merged.quantile(0.5), 2000 + 99_999 / 100, "the exact sample beyond the buckets");
  assert.equal(merged.max, 2000 + 299_999 / 100);
});

Deno.test("the load generator's HTTP: keep-alive, chunked bodies and cookies", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.text();
    const chunks = [body, "|", "x".repeat(10_000)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks.shift();
        if (chunk === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(chunk));
      },
    });
    return new Response(stream, { headers: { "set-cookie": "sessao=abc; HttpOnly" } });
  });
  const connection = new HttpConnection("127.0.0.1", server.addr.port);
  try {
    for (const body of ["um", "dois"]) {
      const response = await connection.request(httpRequest("127.0.0.1", server.addr.port, body), 5000);
      assert.equal(response.status, 200);
      assert.deepEqual(response.setCookie, ["sessao=abc; HttpOnly"]);
      assert.equal(new TextDecoder().decode(response.body), `${body}|${"x".repeat(10_000)}`);
    }
  } finally {
    connection.close();
    await server.shutdown();
  }
});
