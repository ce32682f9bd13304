/**
 * Real terminals for the tests: a tmux server of our own runs programs in
 * panes of known sizes; keys go in with `send-keys`, pastes with
 * `paste-buffer -p` (bracketed), and what the terminal shows comes back with
 * `capture-pane`. Every wait is on a condition.
 *
 * @module
 */

import { waitUntil } from "./programs.ts";

/** Why the terminal tests cannot run here (tmux is not installed), or undefined when they can. */
export const TMUX_UNAVAILABLE: string | undefined =
  new Deno.Command("sh", { args: ["-c", "command -v tmux"], stdout: "null", stderr: "null" })
      .outputSync().success
    ? undefined
    : "tmux não está instalado (apt-get install tmux)";

/**
 * A tmux server of our own (its own socket): each session runs one client in
 * a terminal of known size. Bells are counted per session in `@bells`.
 */
export class Tmux implements AsyncDisposable {
  readonly socket = `rpc-chat-${Deno.pid}-${Math.random().toString(36).slice(2)}`;

  async run(...args: string[]): Promise<string> {
    const { code, stdout, stderr } = await new Deno.Command("tmux", { args: ["-L", this.socket, ...args] })
      .output();
    if (code !== 0) throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
    return new TextDecoder().decode(stdout);
  }

  /** A session `name` running `command` in a terminal of `columns` × `rows`. */
  async start(name: string, command: string[], columns = 80, rows = 24): Promise<Pane> {
    await this.run(
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      String(columns),
      "-y",
      String(rows),
      "--",
      ...command,
    );
    await this.run("set-option", "-t", name, "remain-on-exit", "on");
    await this.run("set-hook", "-t", name, "alert-bell", `set -F @bells "#{e|+:#{?@bells,#{@bells},0},1}"`);
    return new Pane(this, name);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.run("kill-server").catch(() => {});
  }
}

/** One client in a tmux pane: keys in, the screen out. */
export class Pane {
  constructor(readonly tmux: Tmux, readonly name: string) {}

  /** Keys by tmux's names (`Enter`, `C-c`, `M-b`, `C-Left`...). */
  async keys(...keys: string[]): Promise<void> {
    await this.tmux.run("send-keys", "-t", this.name, ...keys);
  }

  /** Text typed as it is. */
  async type(text: string): Promise<void> {
    await this.tmux.run("send-keys", "-t", this.name, "-l", text);
  }

  /** A bracketed paste (the client turned bracketed paste mode on). */
  async paste(text: string): Promise<void> {
    await this.tmux.run("set-buffer", "-b", this.name, "--", text);
    await this.tmux.run("paste-buffer", "-p", "-d", "-b", this.name, "-t", this.name);
  }

  /** A tmux format for this pane (`#{pane_title}`, `#{cursor_x}`...). */
  async show(format: string): Promise<string> {
    return (await this.tmux.run("display-message", "-p", "-t", this.name, format)).trimEnd();
  }

  /** The visible screen (with `escapes`, its colours too; with `history`, the scrollback as well). */
  screen(options: { escapes?: boolean; history?: boolean } = {}): Promise<string> {
    return this.tmux.run(
      "capture-pane",
      "-p",
      "-t",
      this.name,
      ...(options.escapes ? ["-e"] : []),
      ...(options.history ? ["-S", "-"] : []),
    );
  }

  /** The screen's rows, the empty ones at the end dropped. */
  async rows(): Promise<string[]> {
    return (await this.screen()).trimEnd().split("\n");
  }

  /** The row the input line is on: the last one that is not empty. */
  async bottom(): Promise<string> {
    return (await this.rows()).at(-1)!;
  }

  async waitFor(pattern: RegExp, options: { history?: boolean; timeoutMs?: number } = {}): Promise<string> {
    let screen = "";
    await waitUntil(
      async () => pattern.test(screen = await this.screen({ history: options.history })),
      `${pattern} on ${this.name}'s screen`,
      options.timeoutMs ?? 10_000,
    ).catch((error) => {
      throw new Error(`${error.message}:\n${screen}`);
    });
    return screen;
  }

  async waitForBottom(pattern: RegExp): Promise<void> {
    let bottom = "";
    await waitUntil(async () => pattern.test(bottom = await this.bottom()), `${pattern} at the bottom`)
      .catch(async (error) => {
        throw new Error(`${error.message}: ${JSON.stringify(bottom)}\n${await this.screen()}`);
      });
  }

  async bells(): Promise<number> {
    return Number(await this.show("#{@bells}") || 0);
  }
}
