/**
 * One chat for several server instances: `server.ts --store redis://HOST:PORT[/DB]`.
 *
 * Everything the instances share lives in Redis: users and their sessions,
 * rooms with their members and creators, messages under one growing id, the
 * rate limits, presence. Each call is one Lua script, so its checks and its
 * writes happen at once in Redis or not at all (two instances never both
 * take a name), and a message's id, its storage and the event that
 * announces it are one step: ids grow in the order messages are stored,
 * so a cursor means the same on every instance.
 *
 * Live delivery: an instance keeps its own long waits; a stored message is
 * published whole on one channel (Redis pub/sub), and every instance keeps
 * each room's latest and wakes the waits it may concern, which read them
 * there; what the instance may not hold is read from Redis. A wait whose
 * session and membership Redis already proved (and no event changed since:
 * `moved`, `gone`, `del`) costs no round trip. The wake-up is only a hint:
 * Redis is the truth, so a wake-up lost (the subscription dropped for a
 * moment) costs latency, never a message; all waits read Redis again when
 * the subscription comes back, and nothing is taken as known meanwhile.
 *
 * The Redis client (`npm:@redis/client`, pinned below) is loaded only here,
 * and only when a server is started with `--store`: the client's module
 * graph and the default server hold no npm package.
 *
 * @module
 */

import {
  BURST_SECONDS,
  type ChatEngine,
  type ChatOptions,
  checkName,
  checkScripts,
  checkText,
  type Delivery,
  deliveryAfter,
  firstAfter,
  HISTORY,
  HISTORY_KEPT,
  HISTORY_SLACK,
  type Joined,
  LAST_WORDS_MS,
  latestVisible,
  LIMITS,
  limitsOf,
  lookup,
  MAX_BATCH,
  MAX_NAME,
  MAX_WAIT_MS,
  type Message,
  quoted,
  RECENT_KEPT,
  silentHolderSeconds,
  sortedNames,
  StoreError,
  visibleTo,
} from "../rules.ts";
import { clip } from "../../wire/codec.ts";
import { nameKey } from "../names.ts";
import { Deadlines } from "../../wire/deadlines.ts";
import type { Logger } from "../../program/log.ts";
import { EVERYONE, type Outcome, Reason, type Refusal, refuse, SERVER } from "../protocol.ts";
import { loadText, render, storeText, type Text, text } from "../../text/catalogue.ts";

/** The Redis client, pinned; imported only by {@linkcode RedisChat.open}. */
export const REDIS_CLIENT = "npm:@redis/client@6.3.1";

/** The one environment variable the Redis client reads (so `--allow-env` names it alone). */
export const REDIS_ENV = "REDIS_DEBUG_MAINTENANCE";

/** A Redis URL as logs and faults may show it: no user, no password. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    return parsed.href.replace(/\/$/, "");
  } catch {
    return "redis://?";
  }
}

/** Every key and the channel start with this, so the chat can share a Redis with other data. */
const PREFIX = "rpc-chat:";
/** The messages a join or a read of the latest looks at, newest first, to find the latest visible ones. */
const RECENT_SCAN = 500;
/** The messages after a cursor one read looks at: a reader skips others' private messages by the thousand. */
const AFTER_SCAN = 2000;
/** How long Redis remembers a send key: the same message sent again within it is stored once. */
const SEND_KEY_MS = 3_600_000;
/** Sessions or rooms one slice of the sweep ends, at most. */
const SWEEP_BATCH = 256;
/** A call whose Redis does not answer in this long is refused (the server never hangs on it). */
const COMMAND_TIMEOUT_MS = 5000;
/** Stands for the user's name in the notice templates the scripts fill in (no name holds a '%'). */
const NAME_SLOT = "%NAME%";
/** Stands for the room's name in the deletion notice (no name holds a '%'). */
const ROOM_SLOT = "%ROOM%";

/**
 * What the scripts share: the clock, users, sessions, rate limits, posting, leaving, dropping a room. KEYS[1]
 * is the channel of the chat's events (pub/sub ignores the database number: each database has its own).
 * `historyKept` is the bound every room is cut back to, {@linkcode HISTORY_SLACK} messages past it.
 */
const prelude = (historyKept: number) => `
local P = ARGV[1]
local EVENTS = KEYS[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function getUser(name)
  local json = redis.call('HGET', P .. 'users', name)
  if json then return cjson.decode(json) end
end
local function putUser(u) redis.call('HSET', P .. 'users', u.name, cjson.encode(u)) end
-- The user a call acts as (ARGV 2 to 4: name, session, compat), or the refusal. A sign of life.
local function auth()
  local u = getUser(ARGV[2])
  if not u then return nil, {'no', 'notRegistered'} end
  if ARGV[3] == '' then
    if ARGV[4] ~= '1' or u.proved then return nil, {'no', 'noSession'} end
  elseif ARGV[3] ~= u.token then return nil, {'no', 'otherSession', u.name}
  elseif not u.proved then u.proved = true; putUser(u) end
  redis.call('ZADD', P .. 'seen', now, u.name)
  return u
end
-- A token bucket (ARGV 5: the rate), filled up to ${BURST_SECONDS} s of the rate; full again, it is gone.
-- The twin of takeToken (rules.ts), bound to it by the contract's rate-limit case.
local function take(key)
  local rate = tonumber(ARGV[5])
  local k = P .. 'bucket:' .. key
  local b = redis.call('GET', k)
  local tokens = rate * ${BURST_SECONDS}
  if b then
    local colon = string.find(b, ':', 1, true)
    local at = tonumber(string.sub(b, colon + 1))
    tokens = math.min(rate * ${BURST_SECONDS}, tonumber(string.sub(b, 1, colon - 1)) + (now - at) / 1000 * rate)
  end
  if tokens < 1 then return false end
  redis.call('SET', k, (tokens - 1) .. ':' .. now, 'PX', ${BURST_SECONDS * 1000})
  return true
end
-- A template with each slot (the user's name unless said) filled in.
local function fill(template, name, slot)
  slot = slot or '${NAME_SLOT}'
  local out, from = {}, 1
  while true do
    local at = string.find(template, slot, from, true)
    if not at then break end
    out[#out + 1] = string.sub(template, from, at - 1)
    out[#out + 1] = name
    from = at + #slot
  end
  out[#out + 1] = string.sub(template, from)
  return table.concat(out)
end
-- Stores a message (its JSON without id, room, time and identities) under the next id, and says so.
local function post(room, rest, fromId, toId)
  local id = redis.call('INCR', P .. 'lastid')
  local head = '{"id":' .. id .. ',"room":' .. cjson.encode(room) .. ',"timestamp":' .. now
  if fromId then head = head .. ',"fromId":' .. cjson.encode(fromId) end
  if toId then head = head .. ',"toId":' .. cjson.encode(toId) end
  local message = head .. ',' .. rest
  local messages = P .. 'msgs:' .. room
  redis.call('ZADD', messages, id, message)
  -- A room keeps its latest ${historyKept} messages (Redis holds them in memory); the rule is the contract's
  -- ("history kept per room"), counted per room whatever ids the other rooms take.
  if redis.call('ZCARD', messages) > ${historyKept + HISTORY_SLACK} then
    redis.call('ZREMRANGEBYRANK', messages, 0, -${historyKept + 1})
  end
  redis.call('ZADD', P .. 'activity', now, room)
  redis.call('PUBLISH', EVENTS, message)
  return id
end
local function leaveRoom(u, leftTemplate)
  redis.call('SREM', P .. 'members:' .. u.room, u.name)
  post(u.room, fill(leftTemplate, u.name))
  u.room = nil
end
local function bye(u, leftTemplate)
  if u.room then leaveRoom(u, leftTemplate) end
  redis.call('HDEL', P .. 'users', u.name)
  if u.key and redis.call('HGET', P .. 'userkeys', u.key) == u.name then redis.call('HDEL', P .. 'userkeys', u.key) end
  redis.call('HDEL', P .. 'tokens', u.token)
  redis.call('ZREM', P .. 'seen', u.name)
  redis.call('DEL', P .. 'bucket:m:' .. u.id, P .. 'bucket:c:' .. u.id)
  redis.call('PUBLISH', EVENTS, cjson.encode({k = 'gone', u = u.name}))
end
-- A room out of the chat; its messages stay readable for keepMs (its members' last words) or go now.
local function dropRoom(room, keepMs)
  local json = redis.call('HGET', P .. 'rooms', room)
  local info = json and cjson.decode(json) or {}
  local creatorId = info.creatorId
  if info.key and redis.call('HGET', P .. 'roomkeys', info.key) == room then
    redis.call('HDEL', P .. 'roomkeys', info.key)
  end
  if creatorId and redis.call('HINCRBY', P .. 'creators', creatorId, -1) <= 0 then
    redis.call('HDEL', P .. 'creators', creatorId)
  end
  redis.call('HDEL', P .. 'rooms', room)
  redis.call('DEL', P .. 'members:' .. room)
  redis.call('ZREM', P .. 'activity', room)
  if keepMs then redis.call('PEXPIRE', P .. 'msgs:' .. room, keepMs)
  else redis.call('DEL', P .. 'msgs:' .. room) end
  redis.call('PUBLISH', EVENTS, cjson.encode({k = 'del', r = room}))
end
-- Whether a message with this send key was stored for this user already (within the key's hour).
local function sentBefore(u, key)
  return key ~= '' and redis.call('EXISTS', P .. 'sent:' .. u.name .. ':' .. key) == 1
end
-- The send key remembered, once its message is stored: a send refused (slowed, say) leaves no trace of it,
-- so its retry is stored (the contract's "sends refused, then retried with the same key").
local function keepSendKey(u, key)
  if key ~= '' then redis.call('SET', P .. 'sent:' .. u.name .. ':' .. key, '1', 'PX', ${SEND_KEY_MS}) end
end
-- A room by its name, or by its name's key (a variant of the name: 'Geral' for 'geral'): the name and
-- whether the room exists. The key is names.ts's, made in TypeScript (Lua knows no Unicode).
local function findRoom(name, key)
  if redis.call('HEXISTS', P .. 'rooms', name) == 1 then return name, true end
  if key and key ~= '' then
    local found = redis.call('HGET', P .. 'roomkeys', key)
    if found and redis.call('HEXISTS', P .. 'rooms', found) == 1 then return found, true end
  end
  return name, false
end
local function withMessages(result, messages)
  for i, m in ipairs(messages) do result[#result + 1] = m end
  return result
end
`;

/**
 * The scripts, one per call. ARGV 1 is the key prefix; for the calls acting
 * as a user, 2 to 4 are name, session and compat, and 5 the rate.
 */
const SCRIPTS = {
  /** 6 user JSON, 7 token, 8 max users, 9 source address, 10 the name's key, 11 '1' when it mixes scripts. */
  register: `
    local name = ARGV[2]
    if redis.call('HEXISTS', P .. 'users', name) == 1 then
      local seen = redis.call('ZSCORE', P .. 'seen', name)
      return {'no', 'nameTaken', seen and tostring(now - tonumber(seen)) or '0'}
    end
    local resembled = redis.call('HGET', P .. 'userkeys', ARGV[10])
    if resembled and redis.call('HEXISTS', P .. 'users', resembled) == 1 then
      return {'no', 'nameResembles', resembled}
    end
    if ARGV[11] == '1' then return {'no', 'mixesScripts'} end
    if redis.call('HLEN', P .. 'users') >= tonumber(ARGV[8]) then return {'no', 'usersFull'} end
    if ARGV[9] ~= '' and not take('a:' .. ARGV[9]) then return {'no', 'registrationsLimited'} end
    redis.call('HSET', P .. 'users', name, ARGV[6])
    redis.call('HSET', P .. 'userkeys', ARGV[10], name)
    redis.call('HSET', P .. 'tokens', ARGV[7], name)
    redis.call('ZADD', P .. 'seen', now, name)
    return {'ok'}`,
  /** Nothing but the session's check: a sign of life. */
  alive: `
    local u, no = auth()
    if not u then return no end
    return {'ok'}`,
  /** 6 the leave notice's template. */
  unregister: `
    local u, no = auth()
    if not u then return no end
    bye(u, ARGV[6])
    return {'ok'}`,
  /**
   * 6 room, 7 max rooms, 8 max rooms per creator, 9 source address, 10 '1' when the name breaks the policy,
   * 11 the name's key, 12 '1' when it mixes scripts.
   */
  createRoom: `
    local creator
    if ARGV[3] ~= '' then
      local name = redis.call('HGET', P .. 'tokens', ARGV[3])
      if name then creator = getUser(name) end
    end
    if not creator and ARGV[4] ~= '1' then return {'no', 'noSession'} end
    if ARGV[10] == '1' then return {'no', 'badName'} end
    local room = ARGV[6]
    if redis.call('HEXISTS', P .. 'rooms', room) == 1 then return {'no', 'roomExists'} end
    local resembled = redis.call('HGET', P .. 'roomkeys', ARGV[11])
    if resembled and redis.call('HEXISTS', P .. 'rooms', resembled) == 1 then
      return {'no', 'roomResembles', resembled}
    end
    if ARGV[12] == '1' then return {'no', 'mixesScripts'} end
    if redis.call('HLEN', P .. 'rooms') >= tonumber(ARGV[7]) then return {'no', 'roomsFull'} end
    if creator then
      if tonumber(redis.call('HGET', P .. 'creators', creator.id) or '0') >= tonumber(ARGV[8]) then
        return {'no', 'creatorRoomsFull'}
      end
      if not take('c:' .. creator.id) then return {'no', 'actionsLimited'} end
      redis.call('HINCRBY', P .. 'creators', creator.id, 1)
      redis.call('ZADD', P .. 'seen', now, creator.name)
    elseif ARGV[9] ~= '' and not take('a:' .. ARGV[9]) then return {'no', 'actionsLimited'} end
    redis.call('HSET', P .. 'rooms', room, cjson.encode({creator = creator and creator.name, creatorId = creator and creator.id, key = ARGV[11]}))
    redis.call('HSET', P .. 'roomkeys', ARGV[11], room)
    redis.call('DEL', P .. 'msgs:' .. room, P .. 'lastwords:' .. room)
    redis.call('ZADD', P .. 'activity', now, room)
    return {'ok', creator and creator.name or ''}`,
  /** 6 room, 7 the deletion notice (the room's name in its slot), 8 the room's key. */
  deleteRoom: `
    local u, no = auth()
    if not u then return no end
    local room, exists = findRoom(ARGV[6], ARGV[8])
    if not exists then return {'no', 'roomMissing'} end
    local json = redis.call('HGET', P .. 'rooms', room)
    local creatorId = cjson.decode(json).creatorId
    if not creatorId or creatorId ~= u.id then return {'no', 'notCreator', room} end
    if not take('c:' .. u.id) then return {'no', 'actionsLimited'} end
    post(room, fill(ARGV[7], room, '${ROOM_SLOT}'))
    local lastWords = P .. 'lastwords:' .. room
    redis.call('DEL', lastWords)
    for _, name in ipairs(redis.call('SMEMBERS', P .. 'members:' .. room)) do
      local member = getUser(name)
      if member and member.room == room then member.room = nil; putUser(member) end
      redis.call('SADD', lastWords, name)
    end
    redis.call('PEXPIRE', lastWords, ${LAST_WORDS_MS})
    dropRoom(room, ${LAST_WORDS_MS})
    return {'ok', room}`,
  /** 2 room, 3 its key. */
  listMembers: `
    local room, exists = findRoom(ARGV[2], ARGV[3])
    if not exists then return {'no', 'roomMissing'} end
    return withMessages({'ok'}, redis.call('SMEMBERS', P .. 'members:' .. room))`,
  /** 6 room, 7 the join notice's template, 8 the leave notice's, 9 the room's key. */
  join: `
    local u, no = auth()
    if not u then return no end
    local room, exists = findRoom(ARGV[6], ARGV[9])
    if not exists then return {'no', 'roomMissingToJoin'} end
    if u.room ~= room then
      if not take('c:' .. u.id) then return {'no', 'actionsLimited'} end
      if u.room then leaveRoom(u, ARGV[8]) end
      u.room = room
      putUser(u)
      redis.call('SADD', P .. 'members:' .. room, u.name)
      post(room, fill(ARGV[7], u.name))
      redis.call('PUBLISH', EVENTS, cjson.encode({k = 'moved', u = u.name}))
    end
    local members = table.concat(redis.call('SMEMBERS', P .. 'members:' .. room), '\\n')
    local result = {'ok', u.id, redis.call('GET', P .. 'lastid') or '0', members, room}
    return withMessages(result, redis.call('ZREVRANGE', P .. 'msgs:' .. room, 0, ${RECENT_SCAN - 1}))`,
  /** 6 the leave notice's template. */
  leave: `
    local u, no = auth()
    if not u then return no end
    if not u.room then return {'no', 'inNoRoom'} end
    if not take('c:' .. u.id) then return {'no', 'actionsLimited'} end
    local room = u.room
    leaveRoom(u, ARGV[6])
    putUser(u)
    redis.call('PUBLISH', EVENTS, cjson.encode({k = 'moved', u = u.name}))
    return {'ok', room}`,
  /**
   * 6 room, 7 recipient ('' for the room), 8 the message's JSON rest, 9 '1' when the text breaks the policy,
   * 10 the send key ('' for none), 11 the room's key.
   */
  send: `
    local u, no = auth()
    if not u then return no end
    local room, exists = findRoom(ARGV[6], ARGV[11])
    if not exists then return {'no', 'roomMissing'} end
    if u.room ~= room then return {'no', 'notInRoom', room} end
    if ARGV[9] == '1' then return {'no', 'badText'} end
    local toId
    if ARGV[7] ~= '' then
      local to = getUser(ARGV[7])
      if not to or redis.call('SISMEMBER', P .. 'members:' .. room, ARGV[7]) == 0 then
        return {'no', 'recipientAbsent', room}
      end
      toId = to.id
    end
    if not sentBefore(u, ARGV[10]) then
      if not take('m:' .. u.id) then return {'no', 'rateLimited'} end
      post(room, ARGV[8], u.id, toId)
      keepSendKey(u, ARGV[10])
    end
    return {'ok'}`,
  /** 6 recipient, 7 the message's JSON rest, 8 '1' when the text breaks the policy, 9 the send key. */
  sendPrivate: `
    local u, no = auth()
    if not u then return no end
    local to = getUser(ARGV[6])
    if not to then return {'no', 'recipientOffline'} end
    if not to.room then return {'no', 'recipientInNoRoom', to.name} end
    if ARGV[8] == '1' then return {'no', 'badText'} end
    if not sentBefore(u, ARGV[9]) then
      if not take('m:' .. u.id) then return {'no', 'rateLimited'} end
      post(to.room, ARGV[7], u.id, to.id)
      if u.room and u.room ~= to.room then post(u.room, ARGV[7], u.id, to.id) end
      keepSendKey(u, ARGV[9])
    end
    return {'ok', to.room, u.room or ''}`,
  /**
   * 6 room, 7 cursor ('' for the latest), 8 the room's key. A member reads; so does a member of a room
   * deleted a moment ago, once, after a cursor (its last words). Answers the reader's identity, the last id,
   * the room's name, '1' for a member (not last words), messages.
   */
  read: `
    local u, no = auth()
    if not u then return no end
    local room, exists = findRoom(ARGV[6], ARGV[8])
    local member = exists and u.room == room
    if not member then
      if ARGV[7] == '' or redis.call('SREM', P .. 'lastwords:' .. room, u.name) == 0 then
        if not exists then return {'no', 'roomMissing'} end
        return {'no', 'notInRoom', room}
      end
    end
    local last = redis.call('GET', P .. 'lastid') or '0'
    local result = {'ok', u.id, last, room, member and '1' or ''}
    if ARGV[7] == '' then
      return withMessages(result, redis.call('ZREVRANGE', P .. 'msgs:' .. room, 0, ${RECENT_SCAN - 1}))
    end
    local cursor = math.min(tonumber(ARGV[7]), tonumber(last))
    result[3] = tostring(cursor)
    local after = redis.call('ZRANGEBYSCORE', P .. 'msgs:' .. room, '(' .. cursor, '+inf', 'LIMIT', 0, ${AFTER_SCAN})
    return withMessages(result, after)`,
  /** 2.. names: signs of life for users with waits here (never bringing back one who is gone). */
  touch: `
    for i = 2, #ARGV do redis.call('ZADD', P .. 'seen', 'XX', now, ARGV[i]) end
    return {'ok'}`,
  /** 2 this instance, 3 the lease (ms): whether this instance sweeps (it holds or takes the lease). */
  lease: `
    local holder = redis.call('GET', P .. 'sweeper')
    if holder == ARGV[2] then redis.call('PEXPIRE', P .. 'sweeper', ARGV[3]) return {'ok'} end
    if not holder then redis.call('SET', P .. 'sweeper', ARGV[2], 'PX', ARGV[3]) return {'ok'} end
    return {'no', 'held'}`,
  /** 2 session TTL, 3 room TTL (ms), 4 the leave notice's template, 5 how many at most: one slice. */
  sweep: `
    local limit = tonumber(ARGV[5])
    local ended, removed = {}, {}
    for _, name in ipairs(redis.call('ZRANGEBYSCORE', P .. 'seen', '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, limit)) do
      local u = getUser(name)
      if u then bye(u, ARGV[4]) else redis.call('ZREM', P .. 'seen', name) end
      ended[#ended + 1] = name
    end
    for _, room in ipairs(redis.call('ZRANGEBYSCORE', P .. 'activity', '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0, limit)) do
      if redis.call('SCARD', P .. 'members:' .. room) == 0 then
        dropRoom(room, nil)
        removed[#removed + 1] = room
      else
        -- Not idle while someone is in it; its last leave will start its idle time again.
        redis.call('ZADD', P .. 'activity', now, room)
      end
    end
    return {'ok', table.concat(ended, '\\n'), table.concat(removed, '\\n')}`,
} as const;

type ScriptName = keyof typeof SCRIPTS;

/** The part of `@redis/client` this module uses (declared here: a type import would load it for everyone). */
interface RedisConnection {
  connect(): Promise<unknown>;
  sendCommand<T = unknown>(args: readonly string[]): Promise<T>;
  subscribe(channel: string, listener: (message: string) => void): Promise<void>;
  on(event: "error" | "ready" | "end", listener: (error?: Error) => void): unknown;
  duplicate(): RedisConnection;
  close(): Promise<void>;
  destroy(): void;
  readonly isReady: boolean;
}
interface RedisModule {
  createClient(options: Record<string, unknown>): RedisConnection;
}

/** Whom a call acts as: the name and session it claims, checked by the call's script in Redis. */
export interface Claim {
  /** The name as looked up. */
  readonly name: string;
  /** The name as the call gave it, for the refusals that quote it. */
  readonly raw: string;
  /** The session cookie, or '' without one. */
  readonly session: string;
}

/** What a script answers: `ok` and its values, or `no`, the refusal's key and an argument. */
type Answer = [status: "ok" | "no", ...values: string[]];

/** A message as Redis keeps it: JSON, its notice as {@linkcode storeText} made it. */
type StoredMessage = Omit<Message, "notice"> & { notice?: string };

/** How a wait was woken: for a message this instance knows, or to ask Redis; false: not woken. */
type Woken = "recent" | "redis" | false;

/** A wait's wake-up (see `RedisChat.#arm`). */
interface WakeUp {
  readonly waiter: Waiter;
  /** How it was woken; false at its deadline or when settled first. */
  readonly woken: Promise<Woken>;
  /** Ends it now, as `result` (false: not woken); once only, later calls do nothing. */
  settle(result: Woken): void;
}

/** A long wait of this instance: whom it reads for (once known) and how it is woken. */
interface Waiter {
  reader: string | undefined;
  readonly wake: (how: "recent" | "redis") => void;
}

/**
 * The chat on Redis, for as many instances as share it. The same rules,
 * refusals and texts as the SQLite `ChatService`; what differs is said in
 * the README ("Running more than one server").
 */
export class RedisChat implements ChatEngine<Claim> {
  readonly #redis: RedisConnection;
  readonly #events: RedisConnection;
  /** Where Redis is, as logs and faults show it (no password). */
  readonly #url: string;
  /** The channel of this chat's events: one per Redis database, as pub/sub knows no databases. */
  readonly #channel: string;
  /** Each script's source: the prelude (with the history bound) and the script. */
  readonly #sources: (name: ScriptName) => string;
  #closed = false;
  /** Room names' keys, as {@linkcode RedisChat.#keyOf} made them. */
  readonly #roomKeys = new Map<string, string>();
  readonly #options: ChatOptions;
  readonly #limits: Required<Pick<ChatOptions, keyof typeof LIMITS>>;
  readonly #log: Logger;
  readonly #shas = new Map<ScriptName, string>();
  /** This instance, for the sweep's lease. */
  readonly #instance = crypto.randomUUID();
  /** The long waits here, by room. */
  readonly #waiters = new Map<string, Set<Waiter>>();
  /** The long waits here, by user name: a new one past --max-waits ends the oldest; a user gone ends all. */
  readonly #waitsByUser = new Map<string, Set<(recheck?: "recheck") => void>>();
  readonly #waitDeadlines = new Deadlines(50);
  /** When Redis commands give up: up to a quarter of a second past their 5 s. */
  readonly #commandDeadlines = new Deadlines(250);
  /**
   * Each room's latest messages as their events brought them: every message of the room with an id
   * above `after` (at most {@linkcode RECENT_KEPT}), each parsed (and put on the wire) once here
   * however many of this instance's waits it is for.
   */
  readonly #recent = new Map<string, { after: number; messages: Message[] }>();
  /**
   * Members as Redis last proved them (the session checked, the user in the room), by user name: a wait
   * for that room with that session is answered here, with no round trip, until an event says the user
   * moved, left or is gone, or the room went (or the events stopped coming: then none is trusted).
   */
  readonly #members = new Map<string, { session: string; reader: string; room: string }>();
  /** Grows at every forgetting: a read answered before one is not remembered (it may predate the change). */
  #membersEpoch = 0;
  /** Users answered from {@linkcode RedisChat.#members} since the last housekeeping: their signs of life. */
  readonly #seenHere = new Set<string>();
  /** Every message with an id above this came by its event (Infinity: none known yet)... */
  #knownAfter = Infinity;
  /** ...up to this one. */
  #lastEventId = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #sweeping = false;
  #stopped = false;
  /** The notices' templates (JSON rests with {@linkcode NAME_SLOT} for the user's name). */
  readonly #joinedTemplate = noticeRest(text("joinedNotice", NAME_SLOT));
  readonly #leftTemplate = noticeRest(text("leftNotice", NAME_SLOT));

  private constructor(redis: RedisConnection, events: RedisConnection, url: string, options: ChatOptions) {
    this.#redis = redis;
    this.#events = events;
    this.#url = redactedUrl(url);
    this.#channel = eventsChannel(url);
    const head = prelude(options.historyKept ?? HISTORY_KEPT);
    this.#sources = (name) => head + SCRIPTS[name];
    this.#options = options;
    this.#limits = limitsOf(options);
    this.#log = options.log;
  }

  /**
   * Connects to the Redis at `url` (two connections: calls, and the
   * events); throws a {@linkcode StoreError} saying why when it cannot.
   * Later losses of Redis are survived: calls are refused while it is
   * away, and both connections come back by themselves.
   */
  static async open(url: string, options: ChatOptions): Promise<RedisChat> {
    // The client reads one variable once connected: without the permission, say so before anything.
    if (Deno.permissions.querySync({ name: "env", variable: REDIS_ENV }).state !== "granted") {
      throw new StoreError(
        `com --store, rode com --allow-env=${REDIS_ENV} (o cliente do Redis lê essa variável)`,
      );
    }
    const { createClient }: RedisModule = await import(REDIS_CLIENT);
    // No retries before the first connection: a wrong address is said at start, not retried forever.
    let connected = false;
    const redis = createClient({
      url,
      // Refused at once while Redis is away: a caller hears so instead of waiting for it.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: 3000,
        reconnectStrategy: (retries: number, cause: Error) =>
          connected ? Math.min(50 * 2 ** retries, 1000) : cause,
      },
      commandOptions: { timeout: COMMAND_TIMEOUT_MS },
    });
    const events = redis.duplicate();
    const shown = redactedUrl(url);
    const chat = new RedisChat(redis, events, url, options);
    let lost = false;
    redis.on("error", (error) => {
      if (connected && !lost) options.log.error(`Redis indisponível em ${shown}: ${error?.message}`);
      lost = true;
    });
    redis.on("ready", () => {
      if (connected && lost) options.log.info(`Redis de volta em ${shown}`);
      lost = false;
    });
    // Events may be missed from now on: no membership is trusted until they come again (and all are read).
    events.on("error", () => chat.#forget());
    try {
      await redis.connect();
      await events.connect();
    } catch (error) {
      redis.destroy();
      events.destroy();
      throw new StoreError(`não foi possível conectar ao Redis em ${shown}: ${(error as Error).message}`);
    }
    connected = true;
    await events.subscribe(chat.#channel, (message) => chat.#event(message));
    // Back after a loss: the events of the gap are gone, so every wait reads again.
    events.on("ready", () => chat.#resubscribed());
    return chat;
  }

  // --- users and sessions ---------------------------------------------------

  /** Registers a unique name across every instance. */
  async register(
    rawName: string,
    token: string,
    source?: string,
    keepsSession = false,
  ): Promise<Outcome<Text>> {
    const checked = checkName("user", rawName);
    if (!checked[0]) return checked;
    const name = checked[1];
    const key = nameKey(name);
    // Refused in Redis after whether the name resembles one in use, so that such a refusal names it.
    const mixed = checkScripts("user", name);
    const user = JSON.stringify({ name, key, id: crypto.randomUUID(), token, proved: keepsSession });
    const answer = await this.#run("register", [
      name,
      "",
      "",
      String(this.#options.maxRate),
      user,
      token,
      String(this.#limits.maxUsers),
      source ?? "",
      key,
      mixed ? "1" : "",
    ]);
    if (answer[0] === "no") {
      return mixed && answer[1] === "mixesScripts" ? mixed : this.#refusal(answer, name);
    }
    this.#log.info(`Usuário registrado: ${name}${source ? ` (de ${source})` : ""}`);
    return [true, text("registered", name)];
  }

  /** The claim a call makes; its script checks it in Redis. */
  authorize(session: string | undefined, rawName: string): Claim {
    return { name: lookup(rawName), raw: rawName, session: session ?? "" };
  }

  /** A sign of life: the call's script checks the session and counts it. */
  async keepAlive(user: Claim): Promise<Outcome<Text>> {
    const answer = await this.#run("alive", this.#as(user));
    return answer[0] === "no" ? this.#refusal(answer, user.raw, user) : [true, text("sessionKept")];
  }

  /** Ends a session: leaves the room with the usual notice, frees the name, ends its waits everywhere. */
  async unregister(user: Claim, why: string): Promise<Outcome<Text>> {
    const answer = await this.#moving(user.name, "unregister", this.#as(user, this.#leftTemplate));
    if (answer[0] === "no") return this.#refusal(answer, user.raw, user);
    this.#log.info(`Usuário saiu (${why}): ${user.name}`);
    return [true, text("goodbye", user.name)];
  }

  // --- rooms ------------------------------------------------------------------

  /** Creates a room for whoever the session proves (none: only with --compat, and nobody may delete it). */
  async createRoom(rawName: string, session: string | undefined, source?: string): Promise<Outcome<Text>> {
    if (session === undefined && !this.#options.compat) {
      return refuse(Reason.SESSION_INVALID, text("noSession"));
    }
    // A name that breaks the policy is refused where the SQLite chat refuses it: after the session's check.
    const checked = checkName("room", rawName);
    const name = checked[0] ? checked[1] : "";
    const mixed = checked[0] ? checkScripts("room", name) : undefined;
    const answer = await this.#run("createRoom", [
      "",
      session ?? "",
      this.#options.compat ? "1" : "",
      String(this.#options.maxRate),
      name,
      String(this.#limits.maxRooms),
      String(this.#limits.maxRoomsPerUser),
      source ?? "",
      checked[0] ? "" : "1",
      checked[0] ? nameKey(name) : "",
      mixed ? "1" : "",
    ]);
    if (answer[0] === "no") {
      if (!checked[0] && answer[1] === "badName") return checked;
      return mixed && answer[1] === "mixesScripts" ? mixed : this.#refusal(answer, name);
    }
    this.#log.info(`Sala criada: ${name}${answer[1] ? ` (por ${answer[1]})` : ""}`);
    return [true, text("roomCreated", name)];
  }

  /** Deletes a room its creator asks to delete: its members get a notice and are out, on every instance. */
  async deleteRoom(user: Claim, roomName: string): Promise<Outcome<Text>> {
    const named = lookup(roomName);
    const notice = noticeRest(text("roomDeletedNotice", ROOM_SLOT, user.name));
    const answer = await this.#moving(
      undefined,
      "deleteRoom",
      this.#as(user, named, notice, this.#keyOf(named)),
    );
    if (answer[0] === "no") return this.#refusal(answer, roomName, user);
    const room = answer[1]!;
    this.#log.info(`Sala excluída: ${room} (por ${user.name})`);
    return [true, text("roomDeleted", room)];
  }

  /** How many users are registered on every instance, in a room or not. */
  countUsers(): Promise<number> {
    return this.#command<number>(["HLEN", `${PREFIX}users`]);
  }

  /** The rooms' names, sorted. */
  async listRooms(): Promise<Outcome<readonly string[]>> {
    const names = await this.#command<string[]>(["HKEYS", `${PREFIX}rooms`]);
    return [true, sortedNames(names)];
  }

  /** Who is in a room, on any instance, sorted. */
  async listMembers(roomName: string): Promise<Outcome<string[]>> {
    const named = lookup(roomName);
    const answer = await this.#run("listMembers", [named, this.#keyOf(named)]);
    if (answer[0] === "no") return this.#refusal(answer, roomName);
    return [true, sortedNames(answer.slice(1))];
  }

  /** Joins a room (leaving the current one first): members, recent history and the cursor. */
  async join(user: Claim, roomName: string): Promise<Outcome<Joined>> {
    const named = lookup(roomName);
    const answer = await this.#moving(
      user.name,
      "join",
      this.#as(user, named, this.#joinedTemplate, this.#leftTemplate, this.#keyOf(named)),
    );
    if (answer[0] === "no") return this.#refusal(answer, roomName, user);
    const [, reader, last, members, room = named, ...newest] = answer;
    this.#log.info(`${user.name} entrou na sala ${room}`);
    return [true, {
      sala: room,
      usuarios: members ? sortedNames(members.split("\n")) : [],
      mensagens: latestVisible(newest.map((json) => this.#parse(room, json)).reverse(), reader!, HISTORY),
      cursor: Number(last),
    }];
  }

  /** Leaves the current room, with the usual notice. */
  async leave(user: Claim): Promise<Outcome<Text>> {
    const answer = await this.#moving(user.name, "leave", this.#as(user, this.#leftTemplate));
    if (answer[0] === "no") return this.#refusal(answer, user.raw, user);
    this.#log.info(`${user.name} saiu da sala ${answer[1]}`);
    return [true, text("leftRoom", answer[1]!)];
  }

  // --- messages ---------------------------------------------------------------

  /** Posts to the user's room, or privately to one member; stored in Redis once it answers. */
  async send(
    user: Claim,
    roomName: string,
    rawText: string,
    recipient: string | null,
    key?: string,
  ): Promise<Outcome<Text>> {
    // A text that breaks the policy is refused where the SQLite chat refuses it: after the room's checks.
    const checked = checkText(rawText);
    const room = lookup(roomName);
    const to = recipient === null ? EVERYONE : lookup(recipient) || EVERYONE;
    const rest = checked[0]
      ? messageRest(to === EVERYONE ? "broadcast" : "unicast", user.name, to, checked[1])
      : "";
    const answer = await this.#run(
      "send",
      this.#as(
        user,
        room,
        to === EVERYONE ? "" : to,
        rest,
        checked[0] ? "" : "1",
        key ?? "",
        this.#keyOf(room),
      ),
    );
    if (answer[0] === "no") {
      if (!checked[0] && answer[1] === "badText") return checked;
      return answer[1] === "recipientAbsent"
        ? refuse(Reason.RECIPIENT_ABSENT, text("recipientAbsent", clip(to, MAX_NAME), answer[2] ?? room))
        : this.#refusal(answer, roomName, user);
    }
    if (to === EVERYONE) this.#log.info(`Mensagem de ${user.name} na sala ${room}`);
    else this.#log.info(`Mensagem privada de ${user.name} para ${to} na sala ${room}`);
    return [true, text("sent")];
  }

  /** A private message to anyone online, stored in their room and, when it is another, in the sender's. */
  async sendPrivate(
    user: Claim,
    rawRecipient: string,
    rawText: string,
    key?: string,
  ): Promise<Outcome<Text>> {
    const checked = checkText(rawText);
    const to = lookup(rawRecipient);
    const rest = checked[0] ? messageRest("unicast", user.name, to, checked[1]) : "";
    const answer = await this.#run("sendPrivate", this.#as(user, to, rest, checked[0] ? "" : "1", key ?? ""));
    if (answer[0] === "no") {
      return !checked[0] && answer[1] === "badText" ? checked : this.#refusal(answer, rawRecipient, user);
    }
    const rooms = answer.slice(1).filter(Boolean);
    this.#log.info(`Mensagem privada de ${user.name} para ${to} (${[...new Set(rooms)].join(", ")})`);
    return [true, text("sent")];
  }

  /** The original receive: the latest messages the user may see in their room. */
  async recentMessages(user: Claim, roomName: string): Promise<Outcome<Message[]>> {
    const named = lookup(roomName);
    const answer = await this.#run("read", this.#as(user, named, "", this.#keyOf(named)));
    if (answer[0] === "no") return this.#refusal(answer, roomName, user);
    const [, reader, , room = named, , ...newest] = answer;
    return [true, latestVisible(newest.map((json) => this.#parse(room, json)).reverse(), reader!, HISTORY)];
  }

  /**
   * Live delivery: the messages after `cursor` this user may see; when
   * there are none, waits up to `waitMs` for a wake-up from any instance,
   * and reads again.
   */
  async waitMessages(
    user: Claim,
    roomName: string,
    cursor: number,
    waitMs: number,
  ): Promise<Outcome<Delivery>> {
    /** The room as named, until Redis says its name (a variant names the room of the name it resembles). */
    let room = lookup(roomName);
    const roomKey = this.#keyOf(room);
    const until = Date.now() + Math.min(Math.max(waitMs, 0), MAX_WAIT_MS);
    let ended = waitMs <= 0 || this.#stopped;
    /** Ends the wake-up armed now, if any. */
    let disarm: (() => void) | undefined;
    /** Ends it; or, with "recheck" (the user moved), has Redis say again whether it may go on. */
    const endWait = (recheck?: "recheck") => {
      if (recheck) return wait?.settle("redis");
      ended = true;
      disarm?.();
    };
    /** The user's waits here; this one counts among them once Redis has said it is the user's. */
    let waits: Set<(recheck?: "recheck") => void> | undefined;
    /** The reader's identity, once Redis has said it (the first read, or one before it that proved the member). */
    let reader = this.#knownMember(user, room);
    let askRedis = reader === undefined;
    let wait: WakeUp | undefined;
    try {
      for (;;) {
        // Redis answers the first read (it checks the session and the membership) unless an earlier one proved
        // them and no event changed them since, the last one, and any this instance's recent messages may not
        // cover; after a wake-up for a message, they answer.
        let delivery = askRedis ? undefined : this.#fromRecent(room, reader!, cursor);
        // Armed before a read in Redis: a message stored while the read is on its way still wakes it. A read
        // here is synchronous (no event comes in between): armed only when it found nothing.
        if (!delivery?.mensagens.length) {
          wait = ended || this.#stopped ? undefined : this.#arm(room, until);
          disarm = wait && (() => wait!.settle(false));
        }
        if (!delivery) {
          const epoch = this.#membersEpoch;
          const answer = await this.#run("read", this.#as(user, room, String(cursor), roomKey));
          if (answer[0] === "no") return this.#refusal(answer, roomName, user);
          const [, readerId, from, named = room, member, ...after] = answer;
          reader = readerId!;
          if (named !== room) {
            // Named by a variant: wait where the room's events come, and read again from there.
            wait?.settle(false);
            room = named;
            continue;
          }
          if (member === "1" && user.session !== "" && epoch === this.#membersEpoch) {
            this.#members.set(user.name, { session: user.session, reader, room });
          }
          delivery = afterCursor(after.map((json) => this.#parse(room, json)), reader, Number(from));
        }
        if (!waits && !ended) {
          // The caller proved to be the user: a wait past --max-waits ends the oldest.
          waits = this.#waitsByUser.get(user.name) ?? new Set();
          this.#waitsByUser.set(user.name, waits);
          if (waits.size >= this.#limits.maxWaits) {
            const oldest = waits.values().next().value!;
            waits.delete(oldest);
            oldest();
          }
          waits.add(endWait);
        }
        if (delivery.mensagens.length > 0 || !wait || ended) return [true, delivery];
        cursor = delivery.cursor;
        wait.waiter.reader = reader;
        // Woken for a message: read it here (and wait again if it was not for this reader). Woken to ask
        // Redis (a room deleted, the subscription back), or at the deadline: ask Redis, the last time then.
        const woken = await wait.woken;
        if (!woken) ended = true;
        askRedis = woken !== "recent";
      }
    } finally {
      wait?.settle(false);
      waits?.delete(endWait);
      if (waits?.size === 0 && this.#waitsByUser.get(user.name) === waits) {
        this.#waitsByUser.delete(user.name);
      }
    }
  }

  // --- housekeeping -----------------------------------------------------------

  /**
   * Every `sweepEveryMs`: signs of life for the users waiting here, and,
   * on the one instance that holds the sweep's lease, the sweep of the
   * whole chat (silent sessions, idle empty rooms), in slices.
   */
  start(sweepEveryMs: number): void {
    this.#sweeper ??= setInterval(() => {
      if (this.#sweeping) return;
      this.#sweeping = true;
      this.#housekeeping(sweepEveryMs).catch((error) => this.#log.error(`Limpeza falhou: ${error.message}`))
        .finally(() => this.#sweeping = false);
    }, sweepEveryMs);
  }

  /** Nothing to tell the rooms: the chat goes on in the other instances. */
  announceStop(): Promise<number> {
    return Promise.resolve(0);
  }

  /** Ends every wait here, now and from now on, and the sweeping. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const waits of this.#waitsByUser.values()) for (const end of waits) end();
    this.#wakeAll();
  }

  /** Where the chat is kept: the Redis address (no password). */
  describe(): string {
    return `Redis: ${this.#url}`;
  }

  /** Redis going away is survived (calls are refused meanwhile): never gone for good. */
  stillThere(): boolean {
    return true;
  }

  /** Closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Closes both connections to Redis (once). */
  async close(): Promise<void> {
    this.stop();
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#redis.close(), this.#events.close()]);
  }

  // --- inner workings ---------------------------------------------------------

  /** A room name's key ({@linkcode nameKey}), remembered for the few hundred names in use. */
  #keyOf(name: string): string {
    let key = this.#roomKeys.get(name);
    if (key === undefined) {
      if (this.#roomKeys.size >= 1024) this.#roomKeys.clear();
      this.#roomKeys.set(name, key = nameKey(name));
    }
    return key;
  }

  /** The arguments of a script acting as `user`: name, session, compat, rate, then `rest`. */
  #as(user: Claim, ...rest: string[]): string[] {
    return [user.name, user.session, this.#options.compat ? "1" : "", String(this.#options.maxRate), ...rest];
  }

  /**
   * A wake-up for a wait in `room`: `woken` says how it was woken (for a message this instance knows,
   * or to ask Redis), false at `until` or when settled first.
   */
  #arm(room: string, until: number): WakeUp {
    let resolve!: (woken: Woken) => void;
    const woken = new Promise<Woken>((done) => resolve = done);
    const waiters = this.#waiters.get(room) ?? new Set();
    this.#waiters.set(room, waiters);
    const settle = (result: Woken) => {
      cancelTimer();
      waiters.delete(waiter);
      if (waiters.size === 0 && this.#waiters.get(room) === waiters) this.#waiters.delete(room);
      resolve(result);
    };
    const waiter: Waiter = { reader: undefined, wake: (how) => settle(how) };
    const cancelTimer = this.#waitDeadlines.after(Math.max(0, until - Date.now()), () => settle(false));
    waiters.add(waiter);
    return { waiter, woken, settle };
  }

  /**
   * An event from any instance: a message stored (the message itself: kept
   * in the room's recent messages, and the waits that may see it woken), a
   * user gone (their waits end), a room deleted (its recent messages go).
   */
  #event(json: string): void {
    let event: StoredMessage | { k: string; r?: string; u?: string };
    try {
      event = JSON.parse(json);
    } catch {
      return;
    }
    if ("id" in event) return this.#arrived(toMessage(event));
    if (event.k === "moved") {
      // A wait taken here on what was known before is asked again in Redis (events come in order: no message
      // stored after the move reached it first).
      this.#forget(event.u!);
      for (const recheck of this.#waitsByUser.get(event.u!) ?? []) recheck("recheck");
    } else if (event.k === "gone") {
      this.#forget(event.u!);
      for (const end of this.#waitsByUser.get(event.u!) ?? []) end();
    } else if (event.k === "del") {
      this.#forgetRoom(event.r!);
      // Known empty from here on (a room made again with the name starts empty); older cursors ask Redis.
      this.#recent.set(event.r!, { after: this.#lastEventId, messages: [] });
      for (const waiter of this.#waiters.get(event.r!) ?? []) waiter.wake("redis");
    }
  }

  /**
   * A message as its event brought it. Ids come one by one, in order (each
   * is given, stored and published in one script), so a jump means events
   * were missed: then only what comes after counts as known.
   */
  #arrived(message: Message): void {
    if (this.#knownAfter === Infinity || message.id !== this.#lastEventId + 1) {
      this.#recent.clear();
      this.#knownAfter = message.id - 1;
    }
    this.#lastEventId = message.id;
    let recent = this.#recent.get(message.room);
    if (!recent) this.#recent.set(message.room, recent = { after: this.#knownAfter, messages: [] });
    recent.messages.push(message);
    if (recent.messages.length > RECENT_KEPT) recent.after = recent.messages.shift()!.id;
    for (const waiter of this.#waiters.get(message.room) ?? []) {
      const reader = waiter.reader;
      if (reader === undefined || visibleTo(message, reader)) waiter.wake("recent");
    }
  }

  /**
   * What a reader may see in a room after a cursor, from this instance's
   * recent messages; undefined when they may not hold all of it (then Redis
   * is asked).
   */
  #fromRecent(room: string, reader: string, cursor: number): Delivery | undefined {
    const recent = this.#recent.get(room);
    if (cursor < (recent?.after ?? this.#knownAfter) || cursor > this.#lastEventId) return undefined;
    return deliveryAfter(recent?.messages ?? [], reader, cursor);
  }

  /** A message Redis answered: the same object as its event brought, when this instance still has it. */
  #parse(room: string, json: string): Message {
    const id = Number(json.slice(6, json.indexOf(",", 6)));
    const messages = this.#recent.get(room)?.messages ?? [];
    const known = messages[firstAfter(messages, id - 1)];
    if (known?.id === id) return known;
    return toMessage(JSON.parse(json));
  }

  /** The subscription is back after a loss: its events of the gap are gone, so nothing recent is known. */
  #resubscribed(): void {
    this.#forget();
    this.#recent.clear();
    this.#knownAfter = Infinity;
    this.#lastEventId = 0;
    this.#wakeAll();
  }

  /** A user's membership (or everyone's) no longer known here: the next read asks Redis. */
  #forget(name?: string): void {
    this.#membersEpoch++;
    if (name === undefined) this.#members.clear();
    else this.#members.delete(name);
  }

  /** A room gone: its members' membership no longer known here. */
  #forgetRoom(room: string): void {
    this.#membersEpoch++;
    for (const [name, known] of this.#members) if (known.room === room) this.#members.delete(name);
  }

  /** The reader's identity when Redis proved this session a member of `room` and nothing said otherwise since. */
  #knownMember(user: Claim, room: string): string | undefined {
    if (user.session === "" || !this.#events.isReady) return undefined;
    const known = this.#members.get(user.name);
    if (known === undefined || known.session !== user.session || known.room !== room) return undefined;
    this.#seenHere.add(user.name);
    return known.reader;
  }

  #wakeAll(): void {
    for (const waiters of this.#waiters.values()) for (const waiter of waiters) waiter.wake("redis");
  }

  async #housekeeping(sweepEveryMs: number): Promise<void> {
    // The sign of life a read in Redis gives, for the users answered here meanwhile.
    const waiting = [...new Set([...this.#waitsByUser.keys(), ...this.#seenHere])];
    this.#seenHere.clear();
    if (waiting.length) await this.#run("touch", waiting);
    const lease = await this.#run("lease", [this.#instance, String(Math.max(3 * sweepEveryMs, 3000))]);
    if (lease[0] === "no") return;
    for (;;) {
      const [, ended, removed] = await this.#run("sweep", [
        String(this.#options.sessionTtlMs),
        String(this.#options.roomTtlMs),
        this.#leftTemplate,
        String(SWEEP_BATCH),
      ]);
      const users = ended ? ended.split("\n") : [];
      const rooms = removed ? removed.split("\n") : [];
      for (const name of users) this.#log.info(`Usuário saiu (sessão expirada): ${name}`);
      for (const room of rooms) this.#log.info(`Sala removida por inatividade: ${room}`);
      if (users.length < SWEEP_BATCH && rooms.length < SWEEP_BATCH) return;
    }
  }

  /**
   * Runs a script that may move a user out of their room (`name`; undefined: any user, a room deleted): the
   * membership known here is forgotten before it is sent and again once it is answered, so no wait here is
   * answered from what it changed, whenever its event comes.
   */
  async #moving(name: string | undefined, script: ScriptName, args: string[]): Promise<Answer> {
    this.#forget(name);
    try {
      return await this.#run(script, args);
    } finally {
      this.#forget(name);
    }
  }

  /** Runs a script (loading it again after a Redis restart emptied its script cache). */
  async #run(name: ScriptName, args: string[]): Promise<Answer> {
    let sha = this.#shas.get(name);
    for (let attempt = 0;; attempt++) {
      if (!sha) {
        sha = await this.#command<string>(["SCRIPT", "LOAD", this.#sources(name)]);
        this.#shas.set(name, sha);
      }
      try {
        return await this.#command<Answer>(["EVALSHA", sha, "1", this.#channel, PREFIX, ...args]);
      } catch (error) {
        if (attempt > 0 || !String((error as Error).message).startsWith("NOSCRIPT")) throw error;
        sha = undefined;
      }
    }
  }

  /**
   * One command, answered within {@linkcode COMMAND_TIMEOUT_MS}. Redis away
   * when it is asked is a {@linkcode StoreError} that says nothing was done
   * (the call may be made again); a command sent whose answer does not come
   * back (the connection dropped, Redis hung) is one that says it is not
   * known, since the script may have run.
   */
  async #command<T>(args: string[]): Promise<T> {
    if (!this.#redis.isReady) {
      throw new StoreError(
        `O servidor perdeu o contato com o Redis em ${this.#url}; nada foi feito. Tente de novo em instantes.`,
      );
    }
    let cancel: (() => void) | undefined;
    try {
      // The client's own timeout stops counting once a command is written: a hung Redis would hold us forever.
      // One shared timer per slot, not one per command (every call makes one or two).
      const late = new Promise<never>((_, reject) => {
        cancel = this.#commandDeadlines.after(
          COMMAND_TIMEOUT_MS,
          () => reject(new Error(`sem resposta em ${COMMAND_TIMEOUT_MS / 1000} s`)),
        );
      });
      return await Promise.race([this.#redis.sendCommand<T>(args), late]);
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (message.startsWith("NOSCRIPT")) throw error;
      // Once per loss, not once per call: the connection's own error is logged when it goes.
      if (this.#redis.isReady) this.#log.error(`Redis (${args[0]}) falhou: ${clip(message, 200)}`);
      throw new StoreError(
        isErrorReply(error)
          ? `O Redis em ${this.#url} recusou o pedido (${clip(message, 120)}): não se sabe o que foi feito.`
          : `O servidor não recebeu a resposta do Redis em ${this.#url} (${
            clip(message, 120)
          }): não se sabe se foi feito.`,
        { unknownOutcome: true },
      );
    } finally {
      cancel?.();
    }
  }

  /**
   * A script's refusal as the chat says it: `subject` is the name the call
   * gave for what it is about (a room, a recipient), `user` whom it acted as.
   */
  #refusal(answer: Answer, subject: string, user?: Claim): Refusal {
    const [, key, arg] = answer;
    const name = quoted(subject);
    const rate = this.#options.maxRate;
    switch (key) {
      case "notRegistered":
        return refuse(Reason.NOT_REGISTERED, text("notRegistered", user ? quoted(user.raw) : name));
      case "noSession":
        return refuse(Reason.SESSION_INVALID, text("noSession"));
      case "otherSession":
        return refuse(Reason.SESSION_INVALID, text("otherSession", arg!));
      case "nameTaken": {
        const silent = silentHolderSeconds(Number(arg ?? 0), this.#options.sessionTtlMs);
        return refuse(
          Reason.NAME_TAKEN,
          silent ? text("nameTakenSilent", name, silent) : text("nameTaken", name),
        );
      }
      case "nameResembles":
        return refuse(Reason.NAME_TAKEN, text("nameResembles", name, arg!));
      case "usersFull":
        return refuse(Reason.LIMIT_REACHED, text("usersFull", this.#limits.maxUsers));
      case "registrationsLimited":
        return refuse(Reason.RATE_LIMITED, text("registrationsLimited", rate));
      case "roomExists":
        return refuse(Reason.ROOM_EXISTS, text("roomExists", name));
      case "roomResembles":
        return refuse(Reason.ROOM_EXISTS, text("roomResembles", name, arg!));
      case "roomsFull":
        return refuse(Reason.LIMIT_REACHED, text("roomsFull", this.#limits.maxRooms));
      case "creatorRoomsFull":
        return refuse(Reason.LIMIT_REACHED, text("creatorRoomsFull", this.#limits.maxRoomsPerUser));
      case "actionsLimited":
        return refuse(Reason.RATE_LIMITED, text("actionsLimited", rate));
      case "rateLimited":
        return refuse(Reason.RATE_LIMITED, text("rateLimited", rate));
      case "roomMissing":
        return refuse(Reason.ROOM_MISSING, text("roomMissing", name));
      case "roomMissingToJoin":
        return refuse(Reason.ROOM_MISSING, text("roomMissingToJoin", name));
      case "notInRoom":
        return refuse(Reason.NOT_IN_ROOM, text("notInRoom", arg ?? name));
      case "inNoRoom":
        return refuse(Reason.NOT_IN_ROOM, text("inNoRoom"));
      case "notCreator":
        return refuse(Reason.NOT_CREATOR, text("notCreator", arg ?? name));
      case "recipientOffline":
        return refuse(Reason.RECIPIENT_ABSENT, text("recipientOffline", name));
      case "recipientInNoRoom":
        return refuse(Reason.RECIPIENT_ABSENT, text("recipientInNoRoom", arg!));
      default:
        throw new StoreError(
          `O servidor recebeu do Redis uma resposta que não conhece (${clip(String(key), 40)}).`,
        );
    }
  }
}

/** The channel of the chat's events in the Redis database of `url`: database 0 keeps the plain name. */
function eventsChannel(url: string): string {
  const db = Number(new URL(url).pathname.replace(/\//g, "") || 0);
  return db ? `${PREFIX}events:${db}` : `${PREFIX}events`;
}

/** Whether Redis answered with an error (the client's `ErrorReply`), rather than not answering. */
function isErrorReply(error: unknown): boolean {
  for (let proto = Object.getPrototypeOf(error); proto; proto = Object.getPrototypeOf(proto)) {
    if (proto.constructor?.name === "ErrorReply") return true;
  }
  return false;
}

/** A message's JSON without its opening brace: the script puts the id, room, time and identities before it. */
function messageRest(
  tipo: "broadcast" | "unicast",
  origem: string,
  destino: string,
  conteudo: string,
): string {
  return JSON.stringify({ tipo, origem, destino, conteudo }).slice(1);
}

/** A notice's JSON rest: Portuguese for the original clients, and its Text for everyone else's language. */
function noticeRest(said: Text): string {
  return JSON.stringify({
    tipo: "broadcast",
    origem: SERVER,
    destino: EVERYONE,
    conteudo: render(said, "pt"),
    notice: storeText(said),
  }).slice(1);
}

function toMessage(stored: StoredMessage): Message {
  return { ...stored, notice: loadText(stored.notice) };
}

/**
 * What a reader may see of the messages after a cursor, at most
 * {@linkcode MAX_BATCH}; the cursor moves past what it may not see too.
 */
function afterCursor(oldestFirst: Message[], reader: string, cursor: number): Delivery {
  const mensagens: Message[] = [];
  let next = cursor;
  for (const message of oldestFirst) {
    if (visibleTo(message, reader)) {
      if (mensagens.length === MAX_BATCH) break;
      mensagens.push(message);
    }
    next = message.id;
  }
  return { mensagens, cursor: next };
}
