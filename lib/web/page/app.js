// @ts-check
/**
 * The chat page: the DOM around a {@linkcode ChatSession}. Names and
 * messages are written with `textContent` only, never as markup. Everything
 * is a native form control or button, so the page works from the keyboard
 * (Enter sends, ↑ ↓ recall lines sent, Esc clears the box) and a screen
 * reader hears the log (`role="log"`) and the status line (`role="status"`).
 *
 * @module
 */

import { ChatSession, randomKey } from "./chat.js";
import { languageOf, TEXTS } from "./texts.js";

/** @typedef {import("./chat.js").ChatMessage} ChatMessage */
/** @typedef {import("./chat.js").Saved} Saved */

const t = TEXTS[languageOf(document.documentElement.lang)];
/** Messages and notices kept in the log; older ones go. */
const LOG_KEPT = 1000;
const TAB_KEY = "rpc-chat.aba";
const STATE_KEY = "rpc-chat.sessao";
/** The fragment a move through the binder carries the session in. */
const RESUME = "#retomar=";

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing`);
  return element;
}

const status = byId("status", HTMLElement);
const joinForm = byId("join", HTMLFormElement);
const nameBox = byId("name", HTMLInputElement);
const joinNote = byId("join-note", HTMLElement);
const chat = byId("chat", HTMLElement);
const roomTitle = byId("room-title", HTMLElement);
const log = byId("log", HTMLOListElement);
const pendingList = byId("pending", HTMLUListElement);
const sayForm = byId("say", HTMLFormElement);
const messageBox = byId("message", HTMLInputElement);
const roomsList = byId("rooms", HTMLUListElement);
const newRoomForm = byId("new-room", HTMLFormElement);
const roomNameBox = byId("room-name", HTMLInputElement);
const membersList = byId("members", HTMLUListElement);
const leaveButton = byId("leave", HTMLButtonElement);
const quitButton = byId("quit", HTMLButtonElement);

// --- the page's words ------------------------------------------------------------

/** @param {string} key */
function textOf(key) {
  const value = /** @type {Record<string, unknown>} */ (t)[key];
  return typeof value === "string" ? value : key;
}

for (const element of document.querySelectorAll("[data-t]")) {
  element.textContent = textOf(element.getAttribute("data-t") ?? "");
}
for (const element of document.querySelectorAll("[data-t-label]")) {
  element.setAttribute("aria-label", textOf(element.getAttribute("data-t-label") ?? ""));
}
document.title = t.title;

// --- where this tab talks to ----------------------------------------------------

/** This tab's own path on the server: the session cookie is scoped to it, so each tab is a user. */
function tabId() {
  let id = sessionStorage.getItem(TAB_KEY);
  if (!id || !/^[0-9a-f]{32}$/.test(id)) {
    id = randomKey();
    sessionStorage.setItem(TAB_KEY, id);
  }
  return id;
}
const endpoint = new URL(`rpc/${tabId()}`, location.origin + "/").href;

/**
 * The binder the page came through (`?binder=HOST:PORT`, written by the binder's redirect), when it
 * is on this host or on a private network: the way to another server if this one stays away.
 */
function binderAddress() {
  const value = new URLSearchParams(location.search).get("binder");
  if (!value || !/^(\[[0-9a-fA-F:.]+\]|[\w.-]+):\d{1,5}$/.test(value)) return undefined;
  const host = value.replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
  const local = host === location.hostname.replace(/^\[|\]$/g, "") ||
    /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.)/.test(host) ||
    /^(::1|f[cd][0-9a-f]{2}:|fe80:)/i.test(host) || /\.local$/i.test(host) || host === "localhost";
  return local ? value : undefined;
}
const binder = binderAddress();

// --- what survives a reload, or a move to another server --------------------------

/**
 * @param {unknown} value
 * @returns {Saved | undefined}
 */
function asSaved(value) {
  if (!value || typeof value !== "object") return undefined;
  const { name, room, cursor, outbox } = /** @type {Record<string, unknown>} */ (value);
  if (typeof name !== "string" || !name) return undefined;
  if (room !== null && typeof room !== "string") return undefined;
  if (cursor !== undefined && !Number.isSafeInteger(cursor)) return undefined;
  const items = Array.isArray(outbox) ? outbox : [];
  /** @type {Saved["outbox"]} */
  const kept = [];
  for (const item of items) {
    if (!item || typeof item.text !== "string" || typeof item.key !== "string") continue;
    kept.push(
      typeof item.to === "string" ? { text: item.text, to: item.to, key: item.key } : {
        text: item.text,
        key: item.key,
      },
    );
  }
  return {
    name,
    room,
    ...(cursor === undefined ? {} : { cursor: /** @type {number} */ (cursor) }),
    outbox: kept,
  };
}

/** @param {string} text */
function parsed(text) {
  try {
    return asSaved(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** The session this tab had: carried in the fragment by a move, else kept across a reload. */
function savedSession() {
  if (location.hash.startsWith(RESUME)) {
    const saved = parsed(decodeURIComponent(location.hash.slice(RESUME.length)));
    history.replaceState(null, "", location.pathname + location.search);
    if (saved) return saved;
  }
  return parsed(sessionStorage.getItem(STATE_KEY) ?? "");
}

/** @param {Saved | undefined} saved */
function save(saved) {
  if (saved) sessionStorage.setItem(STATE_KEY, JSON.stringify(saved));
  else sessionStorage.removeItem(STATE_KEY);
}

/** @param {Saved} saved */
function moveAway(saved) {
  if (!binder) return;
  save(saved);
  location.assign(`http://${binder}/${RESUME}${encodeURIComponent(JSON.stringify(saved))}`);
}

// --- showing ----------------------------------------------------------------------

/** @param {number} n */
function pad2(n) {
  return String(n).padStart(2, "0");
}

/** @param {Date} date */
function clock(date) {
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}`;
}

/**
 * An element with text (as text, never markup) and classes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} text
 * @param {string[]} [classes]
 * @returns {HTMLElementTagNameMap[K]}
 */
function element(tag, text, classes = []) {
  const made = document.createElement(tag);
  made.textContent = text;
  if (classes.length) made.classList.add(...classes);
  return made;
}

/** @param {HTMLLIElement} item */
function append(item) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  while (log.childElementCount > LOG_KEPT) log.firstElementChild?.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** @type {ChatSession} */
let session;

/** @type {import("./chat.js").View} */
const view = {
  message(message, history) {
    const item = document.createElement("li");
    const time = element("time", clock(message.timestamp));
    time.dateTime = message.timestamp.toISOString();
    item.append(time, " ");
    const isPrivate = message.destino !== "todos";
    if (message.origem === "SERVER") {
      item.classList.add("notice");
      item.append(element("span", message.conteudo, ["text"]));
    } else {
      if (isPrivate) {
        item.classList.add("private");
        item.append(element("span", t.privateTag, ["tag"]), " ");
      }
      if (message.origem === session.name) item.classList.add("own");
      const who = isPrivate ? `${message.origem} → ${message.destino}:` : `${message.origem}:`;
      item.append(element("span", who, ["who"]), " ", element("span", message.conteudo, ["text"]));
    }
    if (history) item.classList.add("history");
    append(item);
  },
  notice(text, kind) {
    if (chat.hidden) {
      joinNote.textContent = text;
      return;
    }
    append(element("li", text, ["local", kind]));
  },
  roomChanged(room) {
    roomTitle.textContent = room === null ? t.noRoom : t.inRoom(room);
    for (const button of roomsList.querySelectorAll("button.room")) {
      button.classList.toggle("current", button.textContent === room);
    }
    leaveButton.disabled = room === null;
  },
  members(users) {
    membersList.replaceChildren(...users.map((user) => {
      const button = element("button", user, ["plain"]);
      button.type = "button";
      button.title = t.privateTo(user);
      button.setAttribute("aria-label", t.privateTo(user));
      button.addEventListener("click", () => {
        messageBox.value = `/msg ${/\s/.test(user) ? `"${user}"` : user} `;
        messageBox.focus();
      });
      const item = document.createElement("li");
      item.append(button);
      return item;
    }));
  },
  rooms(rooms) {
    roomsList.replaceChildren(...rooms.map((room) => {
      const join = element("button", room, ["room"]);
      join.type = "button";
      join.title = t.joinRoom(room);
      join.classList.toggle("current", room === session.room);
      join.addEventListener("click", () => run(() => session.join(room)));
      const remove = element("button", "✕", ["remove"]);
      remove.type = "button";
      remove.title = t.removeRoom(room);
      remove.setAttribute("aria-label", t.removeRoom(room));
      remove.addEventListener("click", () => {
        if (confirm(`${t.removeRoom(room)}?`)) run(() => session.deleteRoom(room));
      });
      const item = document.createElement("li");
      item.append(join, remove);
      return item;
    }));
  },
  connection(online) {
    status.classList.toggle("offline", !online);
    status.textContent = online ? t.connected(session.name ?? "", location.host) : t.offline;
  },
  pending(items) {
    pendingList.hidden = items.length === 0;
    pendingList.replaceChildren(...items.map((item) => {
      const line = document.createElement("li");
      line.append(
        element("span", `(${t.pending})`, ["tag"]),
        element("span", item.to === undefined ? item.text : `→ ${item.to}: ${item.text}`),
      );
      return line;
    }));
  },
  help() {
    for (const line of t.help) append(element("li", line, ["local", "info"]));
  },
};

/**
 * Runs an action of the user's; an unexpected error shows in the log instead of vanishing.
 * @param {() => Promise<unknown>} action
 */
function run(action) {
  action().catch((error) => view.notice(t.fault(String(error?.message ?? error)), "error"));
}

function newSession() {
  session = new ChatSession({ endpoint, view, texts: t, save, moveAway: binder ? moveAway : undefined });
}

/** @param {boolean} chatting */
function showChat(chatting) {
  chat.hidden = !chatting;
  joinForm.hidden = chatting;
  (chatting ? messageBox : nameBox).focus();
}

// --- the controls -------------------------------------------------------------------

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = nameBox.value.trim();
  if (!name) return;
  joinNote.textContent = "";
  const button = joinForm.querySelector("button");
  if (button) button.disabled = true;
  session.register(name).then((ok) => {
    if (ok) {
      showChat(true);
      log.replaceChildren();
      view.notice(t.welcome(name), "info");
      view.connection(true);
    }
  }, (error) => {
    joinNote.textContent = t.fault(String(error?.message ?? error));
  }).finally(() => {
    if (button) button.disabled = false;
  });
});

/** Lines sent, for ↑ and ↓. */
const sent = /** @type {string[]} */ ([]);
let recalled = 0;

sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const line = messageBox.value;
  if (!line.trim()) return;
  messageBox.value = "";
  if (sent[sent.length - 1] !== line) sent.push(line);
  recalled = sent.length;
  session.handle(line).then((outcome) => {
    if (outcome === "quit") quitted();
  }, (error) => view.notice(t.fault(String(error?.message ?? error)), "error"));
});

messageBox.addEventListener("keydown", (event) => {
  if (event.key === "Escape") messageBox.value = "";
  else if (event.key === "ArrowUp" && recalled > 0) {
    messageBox.value = sent[--recalled] ?? "";
    event.preventDefault();
  } else if (event.key === "ArrowDown" && recalled < sent.length) {
    messageBox.value = sent[++recalled] ?? "";
    event.preventDefault();
  }
});

newRoomForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = roomNameBox.value.trim();
  if (!room) return;
  roomNameBox.value = "";
  run(() => session.join(room, { create: true }));
});

leaveButton.addEventListener("click", () => run(() => session.leave()));
quitButton.addEventListener("click", () => run(() => session.quit().then(quitted)));

/** After /fim: back to choosing a name, with a session of its own. */
function quitted() {
  newSession();
  showChat(false);
  joinNote.textContent = t.bye;
  status.textContent = "";
  view.members([]);
  view.rooms([]);
  view.pending([]);
}

// --- start ------------------------------------------------------------------------------

newSession();
const saved = savedSession();
if (saved) {
  showChat(true);
  status.textContent = t.connecting;
  run(() => session.resume(saved));
} else {
  showChat(false);
}
