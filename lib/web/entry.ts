/**
 * The way in for a browser: `GET /` on the binder answers with a redirect to
 * a live `ChatService` (the next in the binder's rotation among those its
 * probes found alive, checked once more with a connection), which serves the
 * chat page on its own origin. Never cached: the next visit may go elsewhere.
 *
 * Where the server registered an address the browser cannot reach (loopback,
 * or a wildcard), the redirect uses the host the browser reached the binder
 * by. The page learns the binder's address (`?binder=HOST:PORT`), its way to
 * another server if its own stays away. With no server alive, a small page
 * says so and asks again every few seconds (a `refresh`, no script), keeping
 * the fragment a page that moves here carries its session in.
 *
 * @module
 */

import { languageOf } from "../chat/protocol.ts";
import { endpointUrl } from "../wire/http_client.ts";
import type { IncomingRequest } from "../wire/http_server.ts";

/** Where the chat services are, as the binder knows them. */
export interface ChatServices {
  /** The next live `ChatService` in the rotation; undefined when there is none. */
  next(): { host: string; port: number } | undefined;
  /** How many are registered: at most so many are tried for one visit. */
  count(): number;
  /** Whether one answers now; by default a TCP connection within a second. */
  probe?(host: string, port: number): Promise<boolean>;
}

/** The headers of every answer: a redirect and the waiting page alike. */
const HEADERS = {
  "content-security-policy":
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
} as const;

/** Seconds between the waiting page's attempts. */
const RETRY_S = 3;

const WAITING = {
  pt: {
    lang: "pt-BR",
    title: "rpc-chat: nenhum servidor no ar",
    text: `Nenhum servidor de chat está no ar agora. Esta página tenta de novo a cada ${RETRY_S} segundos.`,
  },
  en: {
    lang: "en",
    title: "rpc-chat: no server up",
    text: `No chat server is up right now. This page tries again every ${RETRY_S} seconds.`,
  },
} as const;

/** Loopback and wildcard addresses: a browser on another host cannot use them. */
function unreachableFromElsewhere(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  return /^127\./.test(bare) || bare === "::1" || bare === "localhost" || bare === "0.0.0.0" ||
    bare === "::" ||
    bare === "";
}

/**
 * The host a browser should use for a server registered as `registered`,
 * when it reached the binder by `reachedBy`: the registered one, unless only
 * the binder's own machine could use it and the browser is elsewhere.
 */
export function hostForBrowser(registered: string, reachedBy: string): string {
  if (!unreachableFromElsewhere(registered) || unreachableFromElsewhere(reachedBy)) return registered;
  return reachedBy.replace(/^\[|\]$/g, "");
}

async function connects(host: string, port: number): Promise<boolean> {
  try {
    const connection = await Deno.connect({ hostname: host, port, signal: AbortSignal.timeout(1000) });
    connection.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * The answer to a browser's GET or HEAD of `/` (a query allowed): a redirect
 * to a live ChatService, or the waiting page (503). Undefined for any other
 * path: not the way in.
 */
export async function chatEntry(
  request: IncomingRequest,
  services: ChatServices,
): Promise<Response | undefined> {
  const afterScheme = request.url.indexOf("//") + 2;
  const slash = request.url.indexOf("/", afterScheme);
  if (slash < 0 || request.url.slice(slash).split("?", 1)[0] !== "/") return undefined;
  // The Host header as the browser sent it: how it reaches this binder.
  const binderHost = request.url.slice(afterScheme, slash);
  let reachedBy = "";
  try {
    reachedBy = new URL(`http://${binderHost}/`).hostname;
  } catch {
    // A Host header that is no host: the registered address is all there is.
  }
  const probe = services.probe ?? connects;
  for (let tries = Math.max(1, services.count()); tries > 0; tries--) {
    const found = services.next();
    if (!found) break;
    if (!await probe(found.host, found.port)) continue;
    const url = new URL(endpointUrl(hostForBrowser(found.host, reachedBy), found.port));
    if (reachedBy) url.searchParams.set("binder", binderHost);
    return new Response(null, { status: 302, headers: { ...HEADERS, location: url.href } });
  }
  const words = WAITING[languageOf(request.headers.get("accept-language"))];
  const page = `<!doctype html>
<html lang="${words.lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${RETRY_S}"><title>${words.title}</title></head>
<body><h1>rpc-chat</h1><p role="status">${words.text}</p></body>
</html>
`;
  return new Response(request.method === "HEAD" ? null : page, {
    status: 503,
    headers: { ...HEADERS, "content-type": "text/html; charset=utf-8", "retry-after": String(RETRY_S) },
  });
}
