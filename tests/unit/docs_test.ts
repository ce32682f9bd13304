/**
 * The documentation against the programs: the README is a door (its size, the
 * two commands near the top, the test command `.ci/run` runs), every flag a
 * program's `--help` lists is on its page in docs/, every page a document
 * links to exists, every task says what it does, and the history stays in
 * CHANGELOG.md.
 */

import assert from "node:assert/strict";
import {
  BINDER_PERMISSIONS,
  CLIENT_PERMISSIONS,
  ROOT,
  runScript,
  SERVER_PERMISSIONS,
  taskCommand,
} from "../helpers/programs.ts";

const README = await Deno.readTextFile(`${ROOT}README.md`);

/** README.md and every page of docs/, by path from the root. */
async function documents(): Promise<Map<string, string>> {
  const pages = new Map([["README.md", README]]);
  for await (const entry of Deno.readDir(`${ROOT}docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      pages.set(`docs/${entry.name}`, await Deno.readTextFile(`${ROOT}docs/${entry.name}`));
    }
  }
  return pages;
}

Deno.test("the README is a door: at most 20 KB, the host's and the classmate's commands in its first 80 lines", () => {
  assert.ok(new TextEncoder().encode(README).length <= 20_000, "README.md over 20 KB");
  const top = README.split("\n").slice(0, 80);
  assert.ok(top.includes("deno task start"), "the host's command");
  assert.ok(top.includes("deno run --allow-net http://HOST:5000/cliente.ts"), "the classmate's line");
  assert.match(top.join("\n"), /npm install -g deno@2\.9\.6/);
  assert.match(top.join("\n"), /\(docs\/pt-BR\.md\)/, "the Portuguese quick start, linked from the top");
});

Deno.test("the README's test command is the one .ci/run runs", async () => {
  const ci = await Deno.readTextFile(`${ROOT}.ci/run`);
  const tests = README.slice(README.indexOf("## Tests"));
  assert.match(tests, /```sh\ndeno task test\n```/);
  assert.match(ci, /^NO_COLOR=1 deno task test /m);
  assert.match(await taskCommand("test"), /deno test /);
});

Deno.test("every task in deno.json says what it does", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  for (const [name, task] of Object.entries(tasks as Record<string, unknown>)) {
    const { description, command } = task as { description?: unknown; command?: unknown };
    assert.equal(typeof command, "string", `task ${name}: a command`);
    assert.ok(typeof description === "string" && description.length > 10, `task ${name}: a description`);
  }
});

Deno.test("every flag of each program's --help is on its page in docs/", async () => {
  const startWords = (await taskCommand("start")).split(" ");
  const programs: [string, string[], string][] = [
    ["binder.ts", BINDER_PERMISSIONS, "docs/binder.md"],
    ["server.ts", SERVER_PERMISSIONS, "docs/server.md"],
    ["cliente.ts", CLIENT_PERMISSIONS, "docs/cliente.md"],
    ["start.ts", startWords.slice(2, -1), "docs/start.md"],
  ];
  for (const [script, permissions, page] of programs) {
    const { code, stdout } = await runScript(script, permissions, ["--help"]);
    assert.equal(code, 0, `${script} --help`);
    const flags = [...stdout.matchAll(/^\s+(?:-h, )?(--[a-z][a-z-]*)/gm)].map((match) => match[1]!);
    assert.ok(flags.length >= 4, `${script}: the flags of --help`);
    const text = await Deno.readTextFile(`${ROOT}${page}`);
    for (const flag of flags) assert.ok(text.includes(`\`${flag}`), `${page} documents ${flag}`);
  }
});

Deno.test("every link between the documents leads to a file that exists", async () => {
  for (const [path, text] of await documents()) {
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
    for (const [, target] of text.matchAll(/\]\(([^)\s#]+)(?:#[^)\s]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue;
      const file = new URL(`${dir}${target}`, `file://${ROOT}`);
      assert.ok(await Deno.stat(file).then(() => true, () => false), `${path} links to ${target}`);
    }
  }
});

Deno.test("the history stays in CHANGELOG.md: no issue numbers or rounds in the README and docs/", async () => {
  for (const [path, text] of await documents()) {
    assert.doesNotMatch(text, /\bissues? \d+|\bthis round\b|\bearlier rounds?\b/i, path);
  }
});
