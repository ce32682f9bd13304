/**
 * The system under test and the machine it runs on: the real `binder.ts`
 * and one or more `server.ts` instances started with the permissions the
 * README gives them (their files in a temporary directory), each found in
 * the binder's list the way a client would find it, and what `/proc` says
 * about processes and the machine (read through `cat`: Deno grants `/proc`
 * only to `--allow-all`).
 *
 * @module
 */

import { ChildProgram, endpointUrl, PERMISSIONS, XmlRpcClient } from "../lib/mod.ts";
import { sleep } from "./loadgen.ts";

const READY_TIMEOUT_MS = 30_000;

/** Where a server instance listens. */
export interface Address {
  /** Where the binder says the instance is. */
  host: string;
  /** Its port. */
  port: number;
}

/** A server instance of our own, ready and registered. */
export interface StartedServer extends Address {
  /** Its process id. */
  pid: number;
}

/** How the bench's servers run. */
export interface ServerOptions {
  /** The original clients, without sessions. */
  compat: boolean;
  /** Each server's `--max-rate`. */
  maxRate: number;
  /** Instances, all registered in the same binder. */
  servers: number;
  /** `redis://H:P[/DB]`, passed to each as `--store`; without it, the embedded SQLite. */
  store: string | undefined;
}

/**
 * A server's permissions and store flags: the README's defaults for the
 * embedded SQLite (`chat.db` and `chat_server.log` in its working
 * directory), or, on a Redis, no database and a log of its own
 * (`server-N.log`), since the instances share the directory.
 */
function storeSetup(instance: number, store: string | undefined): { permissions: string[]; args: string[] } {
  if (store === undefined) return { permissions: [...PERMISSIONS.server], args: [] };
  const log = `server-${instance}.log`;
  // The README's permissions for a server on Redis, its write permission for this log instead of the default one.
  const permissions = PERMISSIONS.clusterServer.filter((permission) =>
    !permission.startsWith("--allow-write=")
  );
  return { permissions: [...permissions, `--allow-write=${log}`], args: ["--store", store, "--log", log] };
}

/**
 * Starts a binder and `options.servers` servers on loopback, in `dir`
 * (`--compat` if asked, `--max-rate` as given, the caps on users and rooms
 * lifted, `--store` when given), waits for their ready lines and for every
 * instance to be in the binder's list; `defer` receives how to stop each one.
 * The instances in the order they were started, at the addresses the binder
 * gives for them.
 */
export async function startServers(
  dir: string,
  options: ServerOptions,
  defer: (cleanup: () => Promise<unknown>) => void,
): Promise<StartedServer[]> {
  const loopback = ["--host", "127.0.0.1", "--port", "0"];
  const binder = ChildProgram.deno(new URL("../binder.ts", import.meta.url), PERMISSIONS.binder, loopback, {
    stderr: "inherit",
  });
  defer(() => binder.stop());
  const binderPort = (await binder.ready(READY_TIMEOUT_MS)).porta;
  const servers = Array.from({ length: options.servers }, (_, i) => {
    const { permissions, args } = storeSetup(i + 1, options.store);
    const server = ChildProgram.deno(new URL("../server.ts", import.meta.url), permissions, [
      ...loopback,
      "--binder",
      `127.0.0.1:${binderPort}`,
      "--max-rate",
      String(options.maxRate),
      // The load is many users from one address, and as many rooms as asked: no caps in the way.
      ...["--max-users", "--max-rooms", "--max-rooms-per-user"].flatMap((flag) => [flag, "1000000"]),
      ...(options.compat ? ["--compat"] : []),
      ...args,
    ], { cwd: dir, stderr: "inherit" });
    defer(() => server.stop());
    return server;
  });
  const ports = await Promise.all(
    servers.map(async (server) => (await server.ready(READY_TIMEOUT_MS)).porta),
  );
  const registered = await lookUpServers(binderPort, ports);
  return servers.map((server, i) => ({ ...registered[i]!, pid: server.pid }));
}

/** An entry of the binder's list (`listar_procedimentos`). */
interface BinderEntry {
  nome: string;
  endereco: string;
  porta: number;
}

/**
 * The instances listening on `ports`, as the binder lists them under
 * `ChatService` (each registers just after its ready line): their addresses,
 * in the order of `ports`.
 */
async function lookUpServers(binderPort: number, ports: number[]): Promise<Address[]> {
  const binder = new XmlRpcClient(endpointUrl("127.0.0.1", binderPort), { timeoutMs: 5000 });
  let found: (BinderEntry | undefined)[] = [];
  for (let i = 0; i < 100; i++) {
    const [, entries] = await binder.call<[boolean, BinderEntry[]]>("listar_procedimentos", []);
    found = ports.map((port) => entries.find((e) => e.nome === "ChatService" && e.porta === port));
    if (found.every(Boolean)) return found.map((e) => ({ host: e!.endereco, port: e!.porta }));
    await sleep(100);
  }
  const missing = ports.filter((_, i) => !found[i]);
  throw new Error(`servidor(es) na(s) porta(s) ${missing.join(", ")} não se registraram no binder`);
}

// ---------------------------------------------------------------------------
// What /proc says
// ---------------------------------------------------------------------------

const decoder = new TextDecoder();

/** The text of files under /proc, one after the other ("" unless all can be read). */
async function readProc(...paths: string[]): Promise<string> {
  try {
    const { stdout, success } = await new Deno.Command("cat", {
      args: paths,
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return success ? decoder.decode(stdout) : "";
  } catch {
    return "";
  }
}

/** A process' memory and CPU time. */
export interface ProcessStats {
  /** Resident set size, MB. */
  rssMb: number;
  /** The peak resident set size, MB. */
  peakMb: number;
  /** User and system CPU time, seconds. */
  cpuS: number;
}

/** RSS, peak RSS and CPU seconds of a process, from /proc (null where there is no /proc). */
export async function processStats(pid: number): Promise<ProcessStats | null> {
  const text = await readProc(`/proc/${pid}/status`, `/proc/${pid}/stat`);
  if (!text) return null;
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  // /proc/<pid>/stat: after "(comm)", field 14 and 15 are utime and stime in clock ticks (100 per second).
  const stat = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rssMb: kb("VmRSS") / 1024, peakMb: kb("VmHWM") / 1024, cpuS: ticks / 100 };
}

/**
 * These processes together (their RSS, peaks and CPU time added up: the
 * peak is an upper bound, the processes need not peak at once), or null
 * without /proc or without processes.
 */
export async function combinedStats(pids: number[]): Promise<ProcessStats | null> {
  if (!pids.length) return null;
  const total: ProcessStats = { rssMb: 0, peakMb: 0, cpuS: 0 };
  for (const pid of pids) {
    const stats = await processStats(pid);
    if (!stats) return null;
    total.rssMb += stats.rssMb;
    total.peakMb += stats.peakMb;
    total.cpuS += stats.cpuS;
  }
  return total;
}

/** CPU seconds of these processes together, or null without /proc. */
export async function totalCpu(pids: number[]): Promise<number | null> {
  return (await combinedStats(pids))?.cpuS ?? null;
}

/** The open-file limit of a process, from /proc/<pid>/limits. */
async function openFileLimit(pid: number): Promise<number | null> {
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(await readProc(`/proc/${pid}/limits`));
  if (!match) return null;
  return match[1] === "unlimited" ? Infinity : Number(match[1]);
}

/** Throws `explain(limit)` when a process may open fewer than `needs` files (where /proc tells). */
export async function checkOpenFiles(
  pid: number,
  needs: number,
  explain: (limit: number) => string,
): Promise<void> {
  const limit = await openFileLimit(pid);
  if (limit !== null && limit < needs) throw new Error(explain(limit));
}

/** The machine, in one line: cores, memory, CPU model, Deno. */
export async function describeMachine(): Promise<string> {
  const cores = navigator.hardwareConcurrency;
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(await readProc("/proc/meminfo"))?.[1] ?? NaN);
  const memoryGb = Number.isFinite(memKb) ? Math.round(memKb / 1024 / 1024 * 10) / 10 : null;
  const cpu = /^model name\s*:\s*(.+)$/m.exec(await readProc("/proc/cpuinfo"))?.[1]?.trim() ?? "?";
  return `${cores} cores (${cpu}), ${memoryGb ?? "?"} GiB RAM, Deno ${Deno.version.deno} on ${Deno.build.os}`;
}
