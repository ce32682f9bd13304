/**
 * The system under test and the machine it runs on: the real `binder.ts`
 * and `server.ts` started with the permissions the README gives them (the
 * server's database and log in a temporary directory), the server found the
 * way a client finds it, and what `/proc` says about processes and the
 * machine (read through `cat`: Deno grants `/proc` only to `--allow-all`).
 *
 * @module
 */

import { ChildProgram, endpointUrl, PERMISSIONS, XmlRpcClient } from "../deps.ts";
import { sleep } from "./loadgen.ts";

const READY_TIMEOUT_MS = 30_000;

/** A binder and a server of our own, ready and registered. */
export interface StartedServer {
  /** Where the binder says the server is. */
  host: string;
  /** The server's port. */
  port: number;
  /** The server's process id. */
  pid: number;
}

/**
 * Starts a binder and a server on loopback (the server in `dir`, `--compat`
 * if asked, `--max-rate` as given, the caps on users and rooms lifted) and waits for their ready lines; `defer`
 * receives how to stop each one.
 */
export async function startServer(
  dir: string,
  options: { compat: boolean; maxRate: number },
  defer: (cleanup: () => Promise<unknown>) => void,
): Promise<StartedServer> {
  const loopback = ["--host", "127.0.0.1", "--port", "0"];
  const binder = ChildProgram.deno(new URL("../binder.ts", import.meta.url), PERMISSIONS.binder, loopback, {
    stderr: "inherit",
  });
  defer(() => binder.stop());
  const binderPort = (await binder.ready(READY_TIMEOUT_MS)).porta;
  const server = ChildProgram.deno(new URL("../server.ts", import.meta.url), PERMISSIONS.server, [
    ...loopback,
    "--binder",
    `127.0.0.1:${binderPort}`,
    "--max-rate",
    String(options.maxRate),
    // The load is many users from one address, and as many rooms as asked: no caps in the way.
    ...["--max-users", "--max-rooms", "--max-rooms-per-user"].flatMap((flag) => [flag, "1000000"]),
    ...(options.compat ? ["--compat"] : []),
  ], { cwd: dir, stderr: "inherit" });
  defer(() => server.stop());
  await server.ready(READY_TIMEOUT_MS);
  return { ...await lookUpServer(binderPort), pid: server.pid };
}

/** The server's address, asked of the binder the way a client asks (it registers just after its ready line). */
async function lookUpServer(binderPort: number): Promise<{ host: string; port: number }> {
  const binder = new XmlRpcClient(endpointUrl("127.0.0.1", binderPort), { timeoutMs: 5000 });
  let found: [boolean, { endereco: string; porta: number } | string] = [false, ""];
  for (let i = 0; i < 100 && !found[0]; i++) {
    found = await binder.call("buscar_procedimento", ["ChatService"]);
    if (!found[0]) await sleep(100);
  }
  if (!found[0]) throw new Error("o servidor não se registrou no binder");
  const { endereco, porta } = found[1] as { endereco: string; porta: number };
  return { host: endereco, port: porta };
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

/** CPU seconds of these processes together, or null without /proc. */
export async function totalCpu(pids: number[]): Promise<number | null> {
  let total = 0;
  for (const pid of pids) {
    const stats = await processStats(pid);
    if (!stats) return null;
    total += stats.cpuS;
  }
  return total;
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
