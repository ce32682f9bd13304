/**
 * The client's module graph as Deno runs it: the modules `cliente.ts`
 * reaches through code imports (type-only imports are never loaded), as
 * `deno info --json` tells; their paths and sizes.
 *
 * ```sh
 * deno run --allow-run --allow-read tools/client_graph.ts
 * ```
 *
 * @module
 */

/** One module of a graph: its specifier, size, code dependencies, and the error resolving it, if any. */
export interface InfoModule {
  specifier: string;
  size?: number;
  error?: string;
  dependencies?: { code?: { specifier: string } }[];
}

/** `deno info --json` of a module: every module of its graph (code and types), and its roots. */
export async function denoInfo(entry: string): Promise<{ modules: InfoModule[]; roots: string[] }> {
  const output = await new Deno.Command(Deno.execPath(), { args: ["info", "--json", entry] }).output();
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

/** The modules `entry` reaches through code imports, from `deno info --json`: specifier and size. */
export async function codeGraph(entry: string): Promise<{ specifier: string; size: number }[]> {
  const info = await denoInfo(entry);
  const bySpecifier = new Map(info.modules.map((module) => [module.specifier, module]));
  const seen = new Set<string>();
  const queue = [...info.roots];
  while (queue.length) {
    const specifier = queue.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (dependency.code) queue.push(dependency.code.specifier);
    }
  }
  return [...seen].sort().map((specifier) => ({ specifier, size: bySpecifier.get(specifier)?.size ?? 0 }));
}

if (import.meta.main) {
  const graph = await codeGraph(new URL("../cliente.ts", import.meta.url).href);
  for (const { specifier, size } of graph) console.log(`${String(size).padStart(8)}  ${specifier}`);
  console.log(
    `${String(graph.reduce((sum, { size }) => sum + size, 0)).padStart(8)}  in all (${graph.length} modules)`,
  );
}
