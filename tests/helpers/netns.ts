/**
 * Hosts on a LAN, on one machine: each host is a network namespace with one
 * interface (`eth0`, its loopback brought up too) plugged by a veth pair into
 * a bridge that lives in a namespace of its own. Addresses are in a private
 * test range, `10.77.N.0/24` with N drawn per LAN, on that bridge only:
 * nothing is added to the machine's own network. Names are unique per test
 * run (`rpcchat-PID-RANDOM-host`), and {@linkcode Lan} removes everything
 * when disposed, also when the test failed; LANs left by a run that was
 * killed are removed by the next one.
 *
 * It needs Linux, root and `ip` (iproute2): {@linkcode LAN_UNAVAILABLE} says
 * why not, for `Deno.test({ ignore })`.
 *
 * @module
 */

import type { ChildOptions } from "../../lib/mod.ts";
import { Program, testUnless } from "./programs.ts";

const PREFIX = "rpcchat";
const decoder = new TextDecoder();

/** Runs `ip` with these arguments; throws with its stderr when it fails. */
async function ip(...args: string[]): Promise<string> {
  const { success, stdout, stderr } = await new Deno.Command("ip", { args, stdin: "null" }).output();
  if (!success) throw new Error(`ip ${args.join(" ")}: ${decoder.decode(stderr).trim()}`);
  return decoder.decode(stdout);
}

/** Our namespaces that exist now. */
async function namespaces(): Promise<string[]> {
  return (await ip("netns", "list")).split("\n").map((line) => line.split(" ")[0]!)
    .filter((name) => name.startsWith(`${PREFIX}-`));
}

/** Deletes a namespace after ending what still runs in it (only programs a test started there). */
async function removeNamespace(name: string): Promise<void> {
  const pids = (await ip("netns", "pids", name).catch(() => "")).split(/\s+/).filter(Boolean);
  for (const pid of pids) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await ip("netns", "delete", name).catch(() => {});
}

/** LANs of test runs that ended without cleaning up (killed): their process is gone. */
async function removeAbandoned(): Promise<void> {
  for (const name of await namespaces()) {
    const pid = Number(name.split("-")[1]);
    if (Number.isInteger(pid) && pid !== Deno.pid && !existsSync(`/proc/${pid}`)) await removeNamespace(name);
  }
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** One host of a {@linkcode Lan}. */
export interface LanHost {
  /** Its name in the test (`a`, `b`...). */
  readonly name: string;
  /** Its network namespace. */
  readonly namespace: string;
  /** Its address on the LAN. */
  readonly address: string;
}

/** Several hosts on one bridged LAN; `await using` removes it all. */
export class Lan implements AsyncDisposable {
  /** The LAN's network in CIDR (`10.77.N.0/24`), as `--allow-register` takes it. */
  readonly network: string;
  /** The hosts by name. */
  readonly hosts: Readonly<Record<string, LanHost>>;
  readonly #namespaces: string[];

  private constructor(network: string, hosts: Record<string, LanHost>, namespaces: string[]) {
    this.network = network;
    this.hosts = hosts;
    this.#namespaces = namespaces;
  }

  /** Makes one host per name (addresses `.1`, `.2`... in that order) on a new bridge. */
  static async create(names: string[]): Promise<Lan> {
    await removeAbandoned();
    const id = `${PREFIX}-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const subnet = 1 + Math.floor(Math.random() * 254);
    const bridge = `${id}-lan`;
    const made: string[] = [];
    const hosts: Record<string, LanHost> = {};
    try {
      await ip("netns", "add", bridge);
      made.push(bridge);
      await ip("-n", bridge, "link", "add", "br0", "type", "bridge");
      await ip("-n", bridge, "link", "set", "br0", "up");
      for (const [i, name] of names.entries()) {
        const namespace = `${id}-${name}`;
        const address = `10.77.${subnet}.${i + 1}`;
        await ip("netns", "add", namespace);
        made.push(namespace);
        // Both ends are made inside namespaces: the machine's own interfaces are never touched.
        await ip(
          "-n",
          bridge,
          "link",
          "add",
          `port${i}`,
          "type",
          "veth",
          "peer",
          "name",
          "eth0",
          "netns",
          namespace,
        );
        await ip("-n", bridge, "link", "set", `port${i}`, "master", "br0", "up");
        await ip("-n", namespace, "address", "add", `${address}/24`, "dev", "eth0");
        await ip("-n", namespace, "link", "set", "eth0", "up");
        await ip("-n", namespace, "link", "set", "lo", "up");
        hosts[name] = { name, namespace, address };
      }
    } catch (error) {
      for (const namespace of made) await removeNamespace(namespace);
      throw error;
    }
    return new Lan(`10.77.${subnet}.0/24`, hosts, made);
  }

  /** The words that run a command on a host: `ip netns exec NAMESPACE`, which becomes the command (same pid). */
  prefix(host: string): string[] {
    const { namespace } = this.hosts[host] ?? {};
    if (!namespace) throw new Error(`no host ${host} on this LAN`);
    return ["ip", "netns", "exec", namespace];
  }

  /** Starts `command` on a host (see {@linkcode Lan.prefix}). */
  run(host: string, command: string[], options: ChildOptions = {}): Program {
    const [ip, ...args] = [...this.prefix(host), ...command];
    return new Program(ip!, args, options);
  }

  /** Removes the hosts and the bridge, ending whatever still runs on them. */
  async [Symbol.asyncDispose](): Promise<void> {
    for (const namespace of this.#namespaces.reverse()) await removeNamespace(namespace);
  }
}

/**
 * Why LANs cannot be made here (not Linux, not root, no `ip`, namespaces
 * refused), or undefined when they can: tried once, for real.
 */
async function lanUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return `network namespaces are Linux only (this is ${Deno.build.os})`;
  if (Deno.uid() !== 0) return "not root: ip netns needs root (CI runs as root)";
  try {
    await ip("-V");
  } catch {
    return "no ip command (the iproute2 package)";
  }
  try {
    await (await Lan.create(["probe"]))[Symbol.asyncDispose]();
  } catch (error) {
    return `network namespaces cannot be made here: ${(error as Error).message}`;
  }
  return undefined;
}

/** Why the LAN tests are skipped on this machine; undefined when they run. */
export const LAN_UNAVAILABLE: string | undefined = await lanUnavailable();

/** A test across hosts: skipped, with its reason in the name, where there are no namespaces. */
export function lanTest(name: string, fn: () => Promise<void>): void {
  testUnless(LAN_UNAVAILABLE, name, fn);
}
